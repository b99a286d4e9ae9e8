"""A large run's bounded fan-out, driven with the Durable Functions testing pattern
(``orchestrator_generator_wrapper`` over the registered orchestrators and mocked contexts): 5,000
tenants in chunks of sub-orchestrations, a few at a time, with a small orchestration history."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from unittest.mock import Mock

import pytest
from azure.durable_functions.testing import orchestrator_generator_wrapper

from shared.contracts import FanOut, StartedRun, SyncRequest, TenantWork
from shared.functions import (
    COLLECT_TENANT,
    FINISH_RUN,
    LOAD_CHUNK,
    NOTIFY_RUN,
    PUSH_CHANGES,
    RECONCILE_WRITES,
    SHARE_PSA_READS,
    START_RUN,
    SYNC_CHUNK,
)
from shared.services.runs import fanned_out
from sync_orchestrator import sync_chunk, sync_orchestrator
from sync_orchestrator.orchestration import ORCHESTRATION_VERSION

RUN = "20261125T020000Z-0a0b0c0d"
NOW = datetime(2026, 11, 25, 2, 0, 5, tzinfo=UTC)
CHUNK, PARALLEL = 200, 4
FAN_OUT = FanOut(chunk_size=CHUNK, parallel_chunks=PARALLEL, activity_seconds=420)


def tenant_id(index: int) -> str:
    return f"{index:08x}-0000-4000-8000-000000000000"


def task(result: Any) -> Mock:
    mock = Mock()
    mock.result = result
    return mock


class Recorder:
    """What every orchestration of the run scheduled: per instance, the calls and their inputs
    and outputs (what Durable keeps in that instance's history)."""

    def __init__(self, tenants: int, failing: set[int], hand_back: set[str]) -> None:
        self.tenants = tenants
        self.failing = failing
        self.hand_back = hand_back  # a push of a batch holding one of these hands back half of it, once
        self.history: dict[str, list[tuple[str, Any, Any]]] = {}
        self.waits: dict[str, list[int]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.pushed: list[str] = []

    def answer(self, name: str, payload: Any) -> Any:
        if name == START_RUN:  # what start_run answers: the tenants listed, or only counted beyond a chunk
            listed = StartedRun(run_id=RUN, tenants=[TenantWork(tenant_id=tenant_id(i), name=f"Customer {i}")
                                                     for i in range(self.tenants)])
            return fanned_out(listed, FAN_OUT).to_json()
        if name in (RECONCILE_WRITES, SHARE_PSA_READS):
            return {"tenants": 0, "psaCalls": 31 if name == SHARE_PSA_READS else 0}
        if name == LOAD_CHUNK:
            first = payload["chunk"] * payload["chunkSize"]
            return [{"tenantId": tenant_id(i), "name": f"Customer {i}"}
                    for i in range(first, min(first + payload["chunkSize"], self.tenants))]
        if name == COLLECT_TENANT:
            index = int(payload["tenantId"][:8], 16)
            ok = index not in self.failing
            return {"tenantId": payload["tenantId"], "name": payload["name"], "status": "ok" if ok else "failed",
                    "graphCalls": 2, "error": None if ok else "AADSTS700016"}
        if name == PUSH_CHANGES:
            ids = payload["tenantIds"]
            left = [] if not self.hand_back.intersection(ids) else ids[len(ids) // 2:]
            self.hand_back -= set(ids)
            done = ids[:len(ids) - len(left)]
            self.pushed += done
            return {"tenants": len(done), "planned": len(done), "applied": len(done), "psaCalls": len(done) * 3,
                    "tenantsLeft": left}
        if name in (FINISH_RUN, NOTIFY_RUN):
            return {}
        raise AssertionError(f"unexpected activity {name}")


class Context:
    """A mocked ``DurableOrchestrationContext`` for one instance; a sub-orchestration is the
    registered orchestrator driven with a context of its own."""

    def __init__(self, recorder: Recorder, instance: str, orchestration_input: Any) -> None:
        self.recorder = recorder
        self.instance = instance
        recorder.history[instance] = []
        recorder.waits[instance] = []
        self.context = Mock()
        self.context.get_input.return_value = orchestration_input
        self.context.version = ORCHESTRATION_VERSION
        self.context.current_utc_datetime = NOW
        self.context.call_activity.side_effect = self._activity
        self.context.call_activity_with_retry.side_effect = lambda name, retry, payload=None: self._activity(
            name, payload)
        self.context.call_sub_orchestrator.side_effect = self._sub
        self.context.task_all.side_effect = lambda tasks: task([t.result for t in tasks])
        self.context.task_any.side_effect = self._any
        if instance == "parent":
            self.context.set_custom_status.side_effect = recorder.statuses.append

    def _activity(self, name: str, payload: Any = None) -> Mock:
        result = self.recorder.answer(name, payload)
        self.recorder.history[self.instance].append((name, payload, result))
        return task(result)

    def _sub(self, name: str, payload: Any = None, instance_id: str | None = None) -> Mock:
        assert name == SYNC_CHUNK and instance_id and instance_id.startswith(RUN)
        child = Context(self.recorder, instance_id, payload)
        orchestrator = sync_chunk.build().get_user_function().orchestrator_function
        result = list(orchestrator_generator_wrapper(orchestrator(child.context)))[-1]
        self.recorder.history[self.instance].append((name, payload, result))
        return task(result)

    def _any(self, tasks: list[Mock]) -> Mock:
        self.recorder.waits[self.instance].append(len(tasks))
        return task(tasks[0])


def run(tenants: int, failing: set[int] | None = None, hand_back: set[str] | None = None) -> tuple[Recorder, Any]:
    recorder = Recorder(tenants, failing or set(), hand_back or set())
    request = SyncRequest(run_id=RUN, trigger="timer", requested_by="schedule",
                          requested_at=datetime(2026, 11, 25, 2, 0, tzinfo=UTC)).to_json()
    parent = Context(recorder, "parent", request)
    orchestrator = sync_orchestrator.build().get_user_function().orchestrator_function
    return recorder, list(orchestrator_generator_wrapper(orchestrator(parent.context)))[-1]


def size(history: list[tuple[str, Any, Any]]) -> int:
    """Bytes of inputs and outputs an instance's history holds."""
    return sum(len(json.dumps(payload)) + len(json.dumps(result)) for _, payload, result in history)


def test_five_thousand_tenants_in_chunks_keep_every_history_small() -> None:
    failing = set(range(0, 5000, 97))
    recorder, summary = run(5000, failing, hand_back={tenant_id(1234)})
    collected = [tenant_id(i) for i in range(5000) if i not in failing]

    assert summary["status"] == "partial"
    assert (summary["tenantsTotal"], summary["tenantsFailed"]) == (5000, len(failing))
    assert sorted(recorder.pushed) == sorted(collected), "every collected tenant pushed exactly once"
    assert summary["changesApplied"] == len(collected)
    assert summary["graphCalls"] == 2 * 5000
    assert summary["psaCalls"] == 31 + 3 * len(collected), "the shared reads are counted once"

    parent = recorder.history["parent"]
    chunks = 5000 // CHUNK
    assert [name for name, _, _ in parent].count(SYNC_CHUNK) == 2 * chunks
    assert len(parent) <= 2 * chunks + 5
    assert size(parent) < 40_000, "the parent's history holds totals, not tenants"
    assert all(n <= PARALLEL + 1 for n in recorder.waits["parent"]), "at most four chunks at once (and the reads)"
    children = {k: v for k, v in recorder.history.items() if k != "parent"}
    assert len(children) == 2 * chunks
    assert max(size(h) for h in children.values()) < 120_000
    assert max(len(h) for h in children.values()) <= CHUNK + 2


def test_the_progress_moves_as_each_chunk_finishes() -> None:
    recorder, _ = run(1000)
    phases = [(s["phase"], s["tenantsCollected"], s["tenantsPushed"]) for s in recorder.statuses]
    assert phases[0] == ("starting", 0, 0)
    assert [c for p, c, _ in phases if p == "collecting"] == [0, 200, 400, 600, 800, 1000]
    assert [n for p, _, n in phases if p == "pushing"] == [0, 200, 400, 600, 800, 1000]
    assert [p for p, _, _ in phases][-3:] == ["finishing", "notifying", "finished"]
    assert all(s["tenantsTotal"] in (0, 1000) for s in recorder.statuses)


def test_a_push_that_hands_tenants_back_has_them_pushed_by_another() -> None:
    recorder, summary = run(150, hand_back={tenant_id(10), tenant_id(90)})
    pushes = [p["tenantIds"] for name, p, _ in recorder.history["parent"] if name == PUSH_CHANGES]
    assert sorted(recorder.pushed) == [tenant_id(i) for i in range(150)], "every tenant pushed once"
    handed = [batch for name, _, result in recorder.history["parent"] if name == PUSH_CHANGES
              for batch in [result["tenantsLeft"]] if batch]
    assert len(handed) == 2 and all(batch in pushes for batch in handed), "each half handed back pushed again"
    assert all(p["activitySeconds"] == 420 for name, p, _ in recorder.history["parent"] if name == PUSH_CHANGES)
    assert summary["tenantsTotal"] == 150
    assert [name for name, _, _ in recorder.history["parent"]].count(SYNC_CHUNK) == 0, "one chunk: no sub-orchestration"


@pytest.mark.parametrize(("tenants", "chunks"), [(200, 0), (201, 2), (5000, 25)])
def test_a_run_is_split_only_beyond_one_chunk(tenants: int, chunks: int) -> None:
    listed = StartedRun(run_id=RUN, tenants=[TenantWork(tenant_id=tenant_id(i), name=str(i)) for i in range(tenants)])
    shaped = fanned_out(listed, FAN_OUT)
    assert (shaped.chunks, shaped.total, len(shaped.tenants)) == (chunks, tenants, 0 if chunks else tenants)
    assert shaped.fan_out == FAN_OUT


def test_a_push_stops_well_before_the_function_timeout() -> None:
    from pathlib import Path

    from shared.settings import DEFAULT_PUSH_ACTIVITY_SECONDS, Settings

    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text(encoding="utf-8"))
    hours, minutes, seconds = (int(part) for part in host["functionTimeout"].split(":"))
    assert hours * 3600 + minutes * 60 + seconds >= DEFAULT_PUSH_ACTIVITY_SECONDS + 120
    settings = Settings.from_environment({"SEATSYNC_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
                                          "SEATSYNC_SYNC_CHUNK": "50", "SEATSYNC_PUSH_ACTIVITY_SECONDS": "300"})
    assert (settings.sync_chunk, settings.sync_parallel_chunks, settings.push_activity_seconds) == (50, 4, 300)
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match="SEATSYNC_SYNC_CHUNK must be a whole number of tenants from 10 to 1000"):
        Settings.from_environment({"SEATSYNC_STORAGE_CONNECTION_STRING": "x", "SEATSYNC_SYNC_CHUNK": "5"})
