"""HaloPSA API emulator: see ``emulators.halopsa.emulator`` and the "HaloPSA emulator" section
of docs/emulators.md."""

from emulators.halopsa.emulator import HaloEmulator
from emulators.halopsa.scenario import Scenario, parse_scenario

__all__ = ["HaloEmulator", "Scenario", "parse_scenario"]
