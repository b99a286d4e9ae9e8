"""Start every emulator a scenario describes, and tell SeatSync how to reach them.

``start_emulators(scenario)`` serves each section of the scenario (``graph``, ``teams``,
``connectwise``, ``autotask``, ``halopsa``) on its own loopback port and returns the app settings
(``environment()``) and configuration placeholders (``placeholders()``) that point SeatSync at
them: the same settings a real deployment sets, with the emulators' local CA as the trusted
bundle.
"""

from __future__ import annotations

import importlib
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.base import Emulator, EmulatorError, RunningEmulator
from emulators.tls import TlsFiles, ensure_tls_files

# section -> (module, class)
_EMULATORS: dict[str, tuple[str, str]] = {
    "graph": ("emulators.graph", "GraphEmulator"),
    "teams": ("emulators.graph", "TeamsWebhookEmulator"),
    "connectwise": ("emulators.connectwise", "ConnectWiseEmulator"),
    "autotask": ("emulators.autotask", "AutotaskEmulator"),
    "halopsa": ("emulators.halopsa", "HaloEmulator"),
}
SECTIONS = tuple(_EMULATORS)


@dataclass
class RunningEmulators:
    scenario: dict[str, Any]
    tls: TlsFiles
    running: dict[str, RunningEmulator] = field(default_factory=dict)

    def __getitem__(self, section: str) -> RunningEmulator:
        return self.running[section]

    def emulator(self, section: str) -> Emulator:
        return self.running[section].emulator

    def stop(self) -> None:
        for running in self.running.values():
            running.stop()
        self.running.clear()

    def __enter__(self) -> RunningEmulators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """App settings that point SeatSync at the emulators (secrets included)."""
        env = {"SEATSYNC_CA_BUNDLE": str(self.tls.ca_certificate)}
        if "graph" in self.running:
            partner = self.scenario["graph"]["partner"]
            env.update({
                "GRAPH_CLIENT_ID": partner["clientId"],
                "GRAPH_CLIENT_SECRET": partner["clientSecret"],
                "GRAPH_PARTNER_TENANT_ID": partner["tenantId"],
                "GRAPH_AUTHORITY_HOST": self.running["graph"].url,
                "GRAPH_ENDPOINT": self.running["graph"].url,
            })
        if "connectwise" in self.running:
            credential = (self.scenario["connectwise"].get("credentials") or [{}])[0]
            env.update({
                "CW_PUBLIC_KEY": str(credential.get("publicKey", "")),
                "CW_PRIVATE_KEY": str(credential.get("privateKey", "")),
                "CW_CLIENT_ID": str(credential.get("clientId", "")),
            })
        for section in ("autotask", "halopsa"):
            if section in self.running:
                env.update(_secrets_of(section, self.scenario[section]))
        return env

    def placeholders(self) -> dict[str, str]:
        """Values for ``${...}`` in a configuration file: the emulators' API base URLs."""
        values: dict[str, str] = {}
        if "connectwise" in self.running:
            codebase = self.scenario["connectwise"].get("codebase", "v4_6_release")
            values["CONNECTWISE_URL"] = f"{self.running['connectwise'].url}/{codebase}/apis/3.0"
        if "autotask" in self.running:
            values["AUTOTASK_URL"] = f"{self.running['autotask'].url}/ATServicesRest"
        if "halopsa" in self.running:
            values["HALOPSA_URL"] = self.running["halopsa"].url
        if "teams" in self.running:
            values["TEAMS_URL"] = self.running["teams"].url
        return values

    def render_config(self, template: str) -> str:
        try:
            return string.Template(template).substitute(self.placeholders())
        except KeyError as exc:
            raise EmulatorError(f"the configuration uses ${{{exc.args[0]}}} but no such emulator runs") from None


def _secrets_of(section: str, raw: dict[str, Any]) -> dict[str, str]:
    credential = (raw.get("credentials") or [{}])[0]
    if section == "autotask":
        return {"AUTOTASK_USERNAME": str(credential.get("username", "")),
                "AUTOTASK_SECRET": str(credential.get("secret", "")),
                "AUTOTASK_INTEGRATION_CODE": str(credential.get("integrationCode", ""))}
    return {"HALO_CLIENT_ID": str(credential.get("clientId", "")),
            "HALO_CLIENT_SECRET": str(credential.get("clientSecret", ""))}


def emulator_for(section: str, raw: Any) -> Emulator:
    try:
        module_name, class_name = _EMULATORS[section]
    except KeyError:
        raise EmulatorError(f"unknown scenario section '{section}' (known: {', '.join(SECTIONS)})") from None
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    emulator: Emulator = cls(raw)
    return emulator


def start_emulators(scenario: dict[str, Any], tls_dir: Path, sections: tuple[str, ...] | None = None
                    ) -> RunningEmulators:
    """Serve the scenario's sections (or only ``sections``); stops what started if one fails."""
    unknown = [s for s in scenario if s not in _EMULATORS and s != "description"]
    if unknown:
        raise EmulatorError(f"unknown scenario section(s): {', '.join(unknown)}")
    tls = ensure_tls_files(tls_dir)
    started = RunningEmulators(scenario, tls)
    try:
        for section in sections or tuple(s for s in SECTIONS if s in scenario):
            started.running[section] = RunningEmulator(emulator_for(section, scenario[section]), tls).start()
    except BaseException:
        started.stop()
        raise
    return started
