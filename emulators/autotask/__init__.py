"""Autotask PSA REST API emulator: see ``emulators.autotask.emulator`` and the "Autotask
emulator" section of docs/emulators.md."""

from emulators.autotask.emulator import AutotaskEmulator
from emulators.autotask.scenario import Scenario, parse_scenario

__all__ = ["AutotaskEmulator", "Scenario", "parse_scenario"]
