"""ConnectWise PSA (Manage) REST API emulator: see ``emulators.connectwise.emulator`` and the
"ConnectWise PSA emulator" section of docs/emulators.md."""

from emulators.connectwise.emulator import ConnectWiseEmulator
from emulators.connectwise.scenario import Scenario, parse_scenario

__all__ = ["ConnectWiseEmulator", "Scenario", "parse_scenario"]
