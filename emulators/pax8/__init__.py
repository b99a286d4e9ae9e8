"""Pax8 partner API emulator: see ``emulators.pax8.emulator`` and the "Pax8 emulator" section of
docs/emulators.md."""

from emulators.pax8.emulator import Pax8Emulator
from emulators.pax8.scenario import Scenario, parse_scenario

__all__ = ["Pax8Emulator", "Scenario", "parse_scenario"]
