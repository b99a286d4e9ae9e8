"""A sample MSP on real local parts for integration tests: Azurite (through the ``store``
fixture's prefix) and the emulators of a scenario, with SeatSync's services pointed at them."""

from __future__ import annotations

import copy
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulators.base import load_scenario_file
from emulators.launcher import RunningEmulators, start_emulators
from local_runner.azurite import Azurite
from local_runner.demo import sample_files
from local_runner.local_sync import run_local_sync
from shared.adapters.tables import TableStore
from shared.bootstrap import Services
from shared.config.schema import SeatSyncConfig
from shared.config.yaml_io import parse_yaml
from shared.services.decisions import decide
from shared.settings import Settings

FABRIKAM = "1f0a5b2c-0001-4a1b-8c2d-000000000001"
CONTOSO = "2e1b6c3d-0002-4b2c-9d3e-000000000002"
TAILSPIN = "3d2c7d4e-0003-4c3d-ae4f-000000000003"
NORTHWIND = "4c3d8e5f-0004-4d4e-bf50-000000000004"
WOODGROVE = "5b4e9f60-0005-4e5f-8061-000000000005"
ADATUM = "6a5f0a71-0006-4f60-9172-000000000006"
LITWARE = "7c6a1b82-0007-4071-a283-000000000007"
PROSEWARE = "8d7b2c93-0008-4182-b394-000000000008"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # the day the tests' changes are detected
SEATSYNC = Path(sys.executable).parent / "seatsync"


@dataclass
class Msp:
    services: Services
    emulators: RunningEmulators
    config: SeatSyncConfig

    def sync(self, **options: Any) -> dict[str, Any]:
        options.setdefault("requested_by", "tests")
        options.setdefault("retry_delay_scale", 0.0)
        return run_local_sync(self.services, **options)

    def cw_quantities(self) -> dict[int, float]:
        """ConnectWise addition id -> quantity, as the emulator bills it now."""
        state = self.emulators.emulator("connectwise").state()
        return {a["id"]: a["quantity"] for agreement in state["agreements"] for a in agreement.get("additions", [])}

    def cw_additions(self, agreement_id: int) -> list[dict[str, Any]]:
        state = self.emulators.emulator("connectwise").state()
        return [a for agreement in state["agreements"] if agreement["id"] == agreement_id
                for a in agreement.get("additions", [])]

    def cw_addition(self, addition_id: int) -> dict[str, Any]:
        state = self.emulators.emulator("connectwise").state()
        for agreement in state["agreements"]:
            for addition in agreement.get("additions", []):
                if addition["id"] == addition_id:
                    return dict(addition)
        raise KeyError(addition_id)

    def decide(self, hold_key: str, approve: bool, by: str, comment: str | None = None) -> None:
        decide(self.services.decisions, self.services.config(), hold_key, approve, by, comment, NOW)

    def cw_writes(self) -> int:
        """What SeatSync wrote to ConnectWise's billing and contacts (``billing_writes``)."""
        return billing_writes(self.emulators.emulator("connectwise"))


PSA_READS = re.compile(r"/query(/next|/count)?$|/auth/token$", re.IGNORECASE)
"""POSTs that read: Autotask's queries and the token requests."""
ALERT_TICKETS = re.compile(r"/service/tickets|/Tickets|/api/Actions", re.IGNORECASE)
"""The alerts' tickets and their notes (``notifications.psaTickets``): not billing."""


def billing_writes(emulator: Any) -> int:
    """Requests that change what a PSA emulator bills or holds of the customers: its writes,
    without the reads sent as POSTs, its admin endpoints and the alerts' tickets."""
    return sum(1 for entry in emulator.requests_log()
               if not entry["path"].startswith("/_admin") and not ALERT_TICKETS.search(entry["path"])
               and (entry["method"] in ("PATCH", "PUT", "DELETE")
                    or (entry["method"] == "POST" and not PSA_READS.search(entry["path"]))))


def sample_scenario(psa: str = "connectwise") -> tuple[dict[str, Any], str]:
    scenario_path, config_path = sample_files(psa)
    return load_scenario_file(scenario_path), config_path.read_text(encoding="utf-8")


@contextmanager
def running_msp(azurite: Azurite, store: TableStore, tmp: Path, scenario: dict[str, Any] | None = None,
                config_text: str | None = None, edit_config: Any = None,
                psa_factory: Callable[[Msp], Any] | None = None, env: dict[str, str] | None = None
                ) -> Iterator[Msp]:
    """``env`` overrides app settings the emulators give (a wrong secret, say)."""
    sample, sample_config = sample_scenario()
    scenario = copy.deepcopy(scenario if scenario is not None else sample)
    with start_emulators(scenario, tmp / "tls") as emulators:
        settings = {**emulators.environment(), "SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string,
                    "SEATSYNC_TABLE_PREFIX": store.prefix, **(env or {})}
        services = Services(Settings.from_environment(settings), store=store, retry_sleep=lambda seconds: None,
                            clock=lambda: NOW)
        text = emulators.render_config(config_text or sample_config)
        if edit_config is not None:
            document = yaml.safe_load(text)
            edit_config(document)
            text = yaml.safe_dump(document)
        config = parse_yaml(text)
        services.config_repository.save(config, "tests", "fixture")
        msp = Msp(services, emulators, config)
        if psa_factory is not None:
            services._psa_factory = psa_factory(msp)
        yield msp


@contextmanager
def seatsync_paused_at(point: str, args: list[str], env: dict[str, str], tmp: Path
                       ) -> Iterator[subprocess.Popen[str]]:
    """A ``seatsync`` process (``args``), paused when it reaches the checkpoint ``point``
    (``shared/checkpoints.py``); it goes on when the block ends, unless killed in it."""
    signal_file = tmp / f"paused-{secrets.token_hex(3)}"
    process = subprocess.Popen(
        [str(SEATSYNC), *args], cwd=tmp, text=True,
        env={**os.environ, **env, "SEATSYNC_PAUSE_AT": point, "SEATSYNC_PAUSE_FILE": str(signal_file)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not signal_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                _, err = process.communicate(timeout=5)
                pytest.fail(f"the run never reached {point} (exit {process.returncode}): {err[-2000:]}")
            time.sleep(0.05)
        assert signal_file.read_text().split() == [point.split("#")[0], str(process.pid)]
        yield process
    finally:
        signal_file.unlink(missing_ok=True)
        if process.poll() is None:
            process.wait(timeout=120)
        process.communicate()
