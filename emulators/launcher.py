"""Start every emulator a scenario describes, and tell SeatSync how to reach them.

``start_emulators(scenario)`` serves each section of the scenario (``graph``, ``teams``,
``connectwise``, ``autotask``, ``halopsa``, ``partnercenter``, ``pax8``) on its own loopback
port and returns the app settings (``environment()``) and configuration placeholders
(``placeholders()``) that point SeatSync at them: the same settings a real deployment sets, with
the emulators' local CA as the trusted bundle.
"""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.process
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.base import Emulator, EmulatorError, RunningEmulator
from emulators.tls import TlsFiles, ensure_tls_files

# section -> (module, class)
_EMULATORS: dict[str, tuple[str, str]] = {
    "graph": ("emulators.graph", "GraphEmulator"),
    "teams": ("emulators.webhook", "TeamsWebhookEmulator"),
    "connectwise": ("emulators.connectwise", "ConnectWiseEmulator"),
    "autotask": ("emulators.autotask", "AutotaskEmulator"),
    "halopsa": ("emulators.halopsa", "HaloEmulator"),
    "partnercenter": ("emulators.partnercenter", "PartnerCenterEmulator"),
    "pax8": ("emulators.pax8", "Pax8Emulator"),
}
SECTIONS = tuple(_EMULATORS)


@dataclass
class _Served:
    """The address of a served emulator."""

    url: str


@dataclass
class RunningEmulators:
    """Emulators served in this process (``running`` holds them), or in a child process
    (``urls`` only; read their state through the admin API)."""

    scenario: dict[str, Any]
    tls: TlsFiles
    running: dict[str, RunningEmulator] = field(default_factory=dict)
    child: multiprocessing.process.BaseProcess | None = None
    urls: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, section: str) -> RunningEmulator:
        return self.running[section]

    def emulator(self, section: str) -> Emulator:
        return self.running[section].emulator

    @property
    def served(self) -> dict[str, _Served]:
        if self.running:
            return {section: _Served(r.url) for section, r in self.running.items()}
        return {section: _Served(url) for section, url in self.urls.items()}

    def stop(self) -> None:
        for running in self.running.values():
            running.stop()
        self.running.clear()
        if self.child is not None:
            self.child.terminate()
            self.child.join(timeout=10)
            self.child = None

    def __enter__(self) -> RunningEmulators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """App settings that point SeatSync at the emulators (secrets included)."""
        env = {"SEATSYNC_CA_BUNDLE": str(self.tls.ca_certificate)}
        served = self.served
        if "graph" in served:
            partner = self.scenario["graph"]["partner"]
            env.update({
                "GRAPH_CLIENT_ID": partner["clientId"],
                "GRAPH_CLIENT_SECRET": partner["clientSecret"],
                "GRAPH_PARTNER_TENANT_ID": partner["tenantId"],
                "GRAPH_AUTHORITY_HOST": served["graph"].url,
                "GRAPH_ENDPOINT": served["graph"].url,
            })
            # further partner tenants (graph.partners): GRAPH_PARTNER1_..., GRAPH_PARTNER2_..., in order
            for number, other in enumerate(self.scenario["graph"].get("partners") or [], start=1):
                env.update({
                    f"GRAPH_PARTNER{number}_TENANT_ID": str(other.get("tenantId", "")),
                    f"GRAPH_PARTNER{number}_CLIENT_ID": str(other.get("clientId", "")),
                    f"GRAPH_PARTNER{number}_CLIENT_SECRET": str(other.get("clientSecret", "")),
                })
        if "connectwise" in served:
            credential = (self.scenario["connectwise"].get("credentials") or [{}])[0]
            env.update({
                "CW_PUBLIC_KEY": str(credential.get("publicKey", "")),
                "CW_PRIVATE_KEY": str(credential.get("privateKey", "")),
                "CW_CLIENT_ID": str(credential.get("clientId", "")),
            })
        if "teams" in served:
            workflows = (self.scenario.get("teams") or {}).get("workflows") or ["seatsync"]
            first = workflows[0] if isinstance(workflows[0], dict) else {"id": workflows[0]}
            signature = f"?sig={first['sig']}" if first.get("sig") else ""
            env["TEAMS_WEBHOOK_URL"] = f"{served['teams'].url}/workflows/{first['id']}{signature}"
        for section in ("autotask", "halopsa", "partnercenter", "pax8"):
            if section in served:
                env.update(_secrets_of(section, self.scenario[section]))
        return env

    def placeholders(self) -> dict[str, str]:
        """Values for ``${...}`` in a configuration file: the emulators' API base URLs."""
        values: dict[str, str] = {}
        served = self.served
        if "connectwise" in served:
            codebase = self.scenario["connectwise"].get("codebase", "v4_6_release")
            values["CONNECTWISE_URL"] = f"{served['connectwise'].url}/{codebase}/apis/3.0"
        if "autotask" in served:
            # the REST root, as Autotask's discovery URL and zone URLs are: the emulator answers
            # zoneInformation there with itself as the zone, so it serves as either
            values["AUTOTASK_URL"] = f"{served['autotask'].url}/ATServicesRest"
        if "halopsa" in served:
            values["HALOPSA_URL"] = served["halopsa"].url
        if "teams" in served:
            values["TEAMS_URL"] = served["teams"].url
        if "partnercenter" in served:
            # the emulator is both Partner Center's API and the partner tenant's token endpoint
            values["PARTNER_CENTER_URL"] = served["partnercenter"].url
        if "pax8" in served:
            values["PAX8_URL"] = f"{served['pax8'].url}/v1"
            values["PAX8_TOKEN_URL"] = f"{served['pax8'].url}/oauth/token"
        return values

    def render_config(self, template: str) -> str:
        try:
            return string.Template(template).substitute(self.placeholders())
        except KeyError as exc:
            raise EmulatorError(f"the configuration uses ${{{exc.args[0]}}} but no such emulator runs") from None


def _secrets_of(section: str, raw: dict[str, Any] | None) -> dict[str, str]:
    """The app settings of the first API user (Autotask ``users``) or application (Halo, Partner
    Center and Pax8 ``applications``) the scenario registers; empty values when it registers none."""
    if section in ("partnercenter", "pax8"):
        app = ((raw or {}).get("applications") or [{}])[0]
        prefix = "PARTNER_CENTER" if section == "partnercenter" else "PAX8"
        return {f"{prefix}_CLIENT_ID": str(app.get("clientId", "")),
                f"{prefix}_CLIENT_SECRET": str(app.get("clientSecret", ""))}
    if section == "autotask":
        user = ((raw or {}).get("users") or [{}])[0]
        return {"AUTOTASK_USERNAME": str(user.get("username", "")),
                "AUTOTASK_SECRET": str(user.get("secret", "")),
                "AUTOTASK_INTEGRATION_CODE": str(user.get("integrationCode", ""))}
    application = ((raw or {}).get("applications") or [{}])[0]
    return {"HALO_CLIENT_ID": str(application.get("clientId", "")),
            "HALO_CLIENT_SECRET": str(application.get("clientSecret", ""))}


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


def _serve_in_child(scenario: dict[str, Any], tls_dir: str, sections: tuple[str, ...] | None,
                    queue: multiprocessing.Queue[Any]) -> None:
    try:
        started = start_emulators(scenario, Path(tls_dir), sections)
    except BaseException as exc:  # reported to the parent, which raises it
        queue.put(("error", f"{type(exc).__name__}: {exc}"))
        return
    queue.put(("ok", {section: running.url for section, running in started.running.items()}))
    threading.Event().wait()  # serve until terminated


def spawn_emulators(scenario: dict[str, Any], tls_dir: Path, sections: tuple[str, ...] | None = None
                    ) -> RunningEmulators:
    """Serve the emulators from a child process, so that they do not share this process's
    interpreter (benchmarks measure SeatSync, not the emulators)."""
    tls = ensure_tls_files(tls_dir)
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[Any] = context.Queue()
    child = context.Process(target=_serve_in_child, args=(scenario, str(tls_dir), sections, queue), daemon=True)
    child.start()
    kind, value = queue.get(timeout=120)
    if kind != "ok":
        child.terminate()
        raise EmulatorError(f"the emulators did not start: {value}")
    return RunningEmulators(scenario, tls, child=child, urls=dict(value))
