"""Microsoft Partner Center emulator: see ``emulators.partnercenter.emulator`` and the "Partner
Center emulator" section of docs/emulators.md."""

from emulators.partnercenter.emulator import PartnerCenterEmulator
from emulators.partnercenter.scenario import Scenario, parse_scenario

__all__ = ["PartnerCenterEmulator", "Scenario", "parse_scenario"]
