"""A run page opened before the run's first activity recorded it follows the run."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from dashboard.pages import starting_report
from local_runner.host import LocalInstance
from shared.contracts import SYNC_INSTANCE_ID, SyncRequest

RUN = "20261201T120000Z-0a1b2c3d"


class Client:
    def __init__(self, instance: LocalInstance | None) -> None:
        self.instance = instance

    async def get_status(self, instance_id: str, show_input: bool = False) -> Any:
        """As the Durable client: the input only when asked for."""
        assert instance_id == SYNC_INSTANCE_ID
        if self.instance is None or show_input:
            return self.instance
        return dataclasses.replace(self.instance, input_=None)


def instance(status: df.OrchestrationRuntimeStatus, started_with: Any) -> LocalInstance:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    return LocalInstance(SYNC_INSTANCE_ID, "sync", status, now, now, input_=started_with)


def request() -> SyncRequest:
    return SyncRequest(run_id=RUN, trigger="manual", requested_by="admin@msp.example",
                       requested_at=datetime(2026, 12, 1, 12, tzinfo=UTC), dry_run=True)


def test_the_run_the_orchestration_was_started_for_is_shown_running() -> None:
    for started_with in (request().to_json(), request().model_dump_json(by_alias=True)):
        report = asyncio.run(starting_report(Client(instance(df.OrchestrationRuntimeStatus.Running, started_with)),
                                             RUN))
        assert report is not None
        assert (report["status"], report["dryRun"], report["requestedBy"]) == ("running", True, "admin@msp.example")
        assert report["changes"] == [] and report["tenants"] == []


def test_another_run_a_finished_orchestration_or_none_is_not_shown() -> None:
    other = request().model_copy(update={"run_id": "20261201T120001Z-0a1b2c3e"}).to_json()
    assert asyncio.run(starting_report(Client(instance(df.OrchestrationRuntimeStatus.Running, other)), RUN)) is None
    done = instance(df.OrchestrationRuntimeStatus.Completed, request().to_json())
    assert asyncio.run(starting_report(Client(done), RUN)) is None
    assert asyncio.run(starting_report(Client(None), RUN)) is None
    garbled = instance(df.OrchestrationRuntimeStatus.Running, {"runId": RUN})
    assert asyncio.run(starting_report(Client(garbled), RUN)) is None
