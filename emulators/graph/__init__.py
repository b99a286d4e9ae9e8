"""Microsoft Graph and Entra ID token endpoint emulator (see docs/emulators.md)."""

from emulators.graph.emulator import GraphEmulator, graph_error
from emulators.graph.scenario import AUTH_MODES, load_directory, stable_id

__all__ = ["AUTH_MODES", "GraphEmulator", "graph_error", "load_directory", "stable_id"]
