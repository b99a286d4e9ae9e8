"""The sync orchestrator, driven with the Durable Functions testing pattern
(``orchestrator_generator_wrapper`` over the registered function and a mocked context)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest
from azure.durable_functions.testing import orchestrator_generator_wrapper

from local_runner.local_sync import function_table
from shared.contracts import SyncRequest
from shared.errors import RunNotRecordedError
from shared.functions import (
    ACTIVITIES,
    COLLECT_TENANT,
    FINISH_RUN,
    NOTIFY_RUN,
    ORCHESTRATORS,
    PUSH_CHANGES,
    RECONCILE_WRITES,
    SHARE_PSA_READS,
    START_RUN,
)
from sync_orchestrator import sync_orchestrator
from sync_orchestrator.orchestration import (
    FIRST_PUSH_BATCH,
    MIN_PUSH_BATCH,
    ORCHESTRATION_VERSION,
    PROGRESS_GROUP,
    PUSH_BATCH_SIZE,
    PUSH_BATCHES,
    push_batch_size,
)

NOW = datetime(2026, 11, 25, 2, 0, 5, tzinfo=UTC)
T1 = "11111111-1111-1111-1111-111111111111"
T2 = "22222222-2222-2222-2222-222222222222"
T3 = "33333333-3333-3333-3333-333333333333"


def request(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "run_id": "20261125T020000Z-0a0b0c0d", "trigger": "timer", "requested_by": "schedule",
        "requested_at": datetime(2026, 11, 25, 2, 0, tzinfo=UTC), "dry_run": False,
    }
    values.update(overrides)
    return SyncRequest(**values).to_json()


def task(result: Any = None, error: Exception | None = None) -> Mock:
    mock = Mock()
    if error is not None:
        type(mock).result = property(lambda _self: (_ for _ in ()).throw(error))
    else:
        mock.result = result
    return mock


def outcome(tenant_id: str, status: str = "ok", calls: int = 3) -> dict[str, Any]:
    return {"tenantId": tenant_id, "name": tenant_id[:4], "status": status, "graphCalls": calls,
            "skuCount": 2, "userCount": 10, "error": None if status == "ok" else "AADSTS700016: no app",
            "errorCode": None, "warnings": []}


def push_summary(**values: Any) -> dict[str, Any]:
    base = {"tenants": 1, "planned": 1, "applied": 1, "dryRun": 0, "failed": 0, "unchanged": 2,
            "problems": 0, "psaCalls": 4, "tenantsFailed": []}
    base.update(values)
    return base


class FakeContext:
    """Records the activity calls the orchestrator schedules and answers them from a table."""

    def __init__(self, orchestration_input: dict[str, Any], answers: dict[str, Any]) -> None:
        self.input = orchestration_input
        self.answers = {RECONCILE_WRITES: push_summary(tenants=0, planned=0, applied=0, unchanged=0, psaCalls=0),
                        SHARE_PSA_READS: push_summary(tenants=0, planned=0, applied=0, unchanged=0, psaCalls=0),
                        **answers}
        self.calls: list[tuple[str, Any, bool]] = []
        self.statuses: list[dict[str, Any]] = []
        self.context = Mock()
        self.context.get_input.return_value = orchestration_input
        self.context.version = ORCHESTRATION_VERSION
        self.context.current_utc_datetime = NOW
        self.context.call_activity.side_effect = self._call
        self.context.call_activity_with_retry.side_effect = self._call_with_retry
        self.context.task_all.side_effect = self._task_all
        self.context.task_any.side_effect = self._task_any
        self.context.set_custom_status.side_effect = self.statuses.append
        self.waits: list[tuple[str, int]] = []

    def _answer(self, name: str, payload: Any) -> Mock:
        answer = self.answers[name]
        if callable(answer):
            answer = answer(payload)
        if isinstance(answer, Exception):
            return task(error=answer)
        return task(answer)

    def _call(self, name: str, payload: Any = None) -> Mock:
        self.calls.append((name, payload, False))
        return self._answer(name, payload)

    def _call_with_retry(self, name: str, retry: Any, payload: Any = None) -> Mock:
        assert retry.max_number_of_attempts >= 2, "tenant activities must be retried"
        self.calls.append((name, payload, True))
        return self._answer(name, payload)

    def _task_any(self, tasks: list[Mock]) -> Mock:
        self.waits.append(("any", len(tasks)))
        return task(tasks[0])  # like Durable: the finished task itself, failed or not

    def _task_all(self, tasks: list[Mock]) -> Mock:
        self.waits.append(("all", len(tasks)))
        results = []
        for item in tasks:
            results.append(item.result)  # raises like Durable when one task failed
        return task(results)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


def run(fake: FakeContext) -> Any:
    orchestrator = sync_orchestrator.build().get_user_function().orchestrator_function
    steps = list(orchestrator_generator_wrapper(orchestrator(fake.context)))
    return steps[-1]


def started(*tenant_ids: str, graph_calls: int = 1) -> dict[str, Any]:
    return {"runId": "20261125T020000Z-0a0b0c0d", "graphCalls": graph_calls,
            "tenants": [{"tenantId": t, "name": t[:4]} for t in tenant_ids]}


def test_every_function_name_is_registered() -> None:
    table = function_table()  # indexing the app refuses duplicate names
    assert set(table.activities) == set(ACTIVITIES)
    assert set(table.orchestrators) == set(ORCHESTRATORS)


def test_collects_every_tenant_then_pushes_collected_ones_and_reports() -> None:
    fake = FakeContext(request(), {
        START_RUN: started(T1, T2, T3),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"], "auth-failed" if p["tenantId"] == T2 else "ok"),
        PUSH_CHANGES: lambda p: push_summary(tenants=len(p["tenantIds"]), planned=2, applied=2),
        FINISH_RUN: {"status": "partial"},
        NOTIFY_RUN: {"sent": 0},
    })
    result = run(fake)

    assert fake.names() == [START_RUN, RECONCILE_WRITES, SHARE_PSA_READS, COLLECT_TENANT, COLLECT_TENANT,
                            COLLECT_TENANT, PUSH_CHANGES, FINISH_RUN, NOTIFY_RUN]
    collected = [p["tenantId"] for n, p, retried in fake.calls if n == COLLECT_TENANT and retried]
    assert collected == [T1, T2, T3]
    push = next(p for n, p, _ in fake.calls if n == PUSH_CHANGES)
    assert push["tenantIds"] == [T1, T3], "a tenant that failed collection is never pushed"
    assert push["dryRun"] is False
    assert result["status"] == "partial"
    assert result["tenantsFailed"] == 1
    assert result["changesApplied"] == 2
    assert result["graphCalls"] == 1 + 3 * 3
    assert result["psaCalls"] == 4
    assert result["finishedAt"] == NOW.isoformat().replace("+00:00", "Z")


def test_dry_run_flag_reaches_the_push() -> None:
    fake = FakeContext(request(dry_run=True), {
        START_RUN: started(T1),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"]),
        PUSH_CHANGES: push_summary(applied=0, dryRun=1),
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    result = run(fake)
    push = next(p for n, p, _ in fake.calls if n == PUSH_CHANGES)
    assert push["dryRun"] is True
    assert RECONCILE_WRITES not in fake.names(), "a dry run records nothing, not even earlier writes"
    assert result["dryRun"] is True
    assert result["changesDryRun"] == 1
    assert result["status"] == "succeeded"


def test_pushes_are_batched() -> None:
    tenants = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(PUSH_BATCH_SIZE * 2 + 3)]
    fake = FakeContext(request(), {
        START_RUN: started(*tenants),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"]),
        PUSH_CHANGES: lambda p: push_summary(tenants=len(p["tenantIds"])),
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    run(fake)
    batches = [p["tenantIds"] for n, p, _ in fake.calls if n == PUSH_CHANGES]
    sizes = [len(b) for b in batches]
    assert sizes[0] == FIRST_PUSH_BATCH and max(sizes) <= MIN_PUSH_BATCH
    assert sizes[:-1] == sorted(sizes[:-1]), "the first batches ramp up, so they finish one after another"
    assert [t for b in batches for t in b] == tenants
    small = FakeContext(request(), {**fake.answers, START_RUN: started(*tenants[:PUSH_BATCH_SIZE])})
    run(small)
    assert [len(p["tenantIds"]) for n, p, _ in small.calls if n == PUSH_CHANGES] == [PUSH_BATCH_SIZE]


def test_push_batches_share_reads_but_keep_progress_moving() -> None:
    assert push_batch_size(8) == PUSH_BATCH_SIZE, "a small MSP is pushed in one batch"
    assert push_batch_size(PUSH_BATCH_SIZE) == PUSH_BATCH_SIZE
    assert push_batch_size(300) == MIN_PUSH_BATCH and -(-300 // MIN_PUSH_BATCH) <= PUSH_BATCHES
    assert push_batch_size(5000) == PUSH_BATCH_SIZE


def test_no_push_when_no_tenant_was_collected() -> None:
    fake = FakeContext(request(), {
        START_RUN: started(T1, T2),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"], "failed"),
        PUSH_CHANGES: AssertionError("must not push"),
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    result = run(fake)
    assert PUSH_CHANGES not in fake.names()
    assert result["status"] == "failed"
    assert result["tenantsFailed"] == 2


def test_activity_failure_after_retries_is_recorded_and_notified() -> None:
    fake = FakeContext(request(), {
        START_RUN: started(T1),
        COLLECT_TENANT: RuntimeError("table storage unavailable"),
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    result = run(fake)
    assert fake.names()[-2:] == [FINISH_RUN, NOTIFY_RUN]
    assert result["status"] == "failed"
    assert "table storage unavailable" in result["error"]
    finish_payload = next(p for n, p, _ in fake.calls if n == FINISH_RUN)
    assert finish_payload["status"] == "failed"


def test_a_run_stopped_by_storage_says_so_in_one_line_with_the_fix() -> None:
    """Durable reports the failed activity as its name, the SDK's exception and a stack trace:
    the run records one line naming storage and what to check instead."""
    reported = Exception("Activity function 'push_changes' failed: ServiceRequestError: <urllib3.connection."
                         "HTTPConnection object at 0x7f3a2c1d0e50>: Failed to establish a new connection: [Errno 111] "
                         "Connection refused \n Traceback (most recent call last): ...")
    fake = FakeContext(request(), {
        START_RUN: started(T1), COLLECT_TENANT: lambda p: outcome(p["tenantId"]), PUSH_CHANGES: reported,
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    result = run(fake)
    assert result["status"] == "failed"
    assert result["error"].startswith("Table Storage could not be reached during push_changes, so the run stopped: "
                                      "check SEATSYNC_STORAGE_CONNECTION_STRING")
    assert "\n" not in result["error"] and "urllib3" not in result["error"]


def storage_failed(activity: str) -> Exception:
    """What Durable reports for an activity stopped by Table Storage refusing connections."""
    return Exception(f"Activity function '{activity}' failed: ServiceRequestError: <urllib3.connection."
                     "HTTPConnection object at 0x7f3a2c1d0e50>: Failed to establish a new connection: [Errno 111] "
                     "Connection refused \n Traceback (most recent call last): ...")


def test_a_run_whose_start_failed_is_recorded_as_failed_and_a_person_alerted() -> None:
    fake = FakeContext(request(), {START_RUN: storage_failed(START_RUN), FINISH_RUN: {}, NOTIFY_RUN: {}})
    result = run(fake)
    assert fake.names() == [START_RUN, FINISH_RUN, NOTIFY_RUN], "no reconciliation, no tenant: the run stopped"
    assert result["status"] == "failed"
    assert result["error"].startswith(f"Table Storage could not be reached during {START_RUN}, so the run stopped: "
                                      "check SEATSYNC_STORAGE_CONNECTION_STRING")
    [finished] = [p for n, p, _ in fake.calls if n == FINISH_RUN]
    [notified] = [p for n, p, _ in fake.calls if n == NOTIFY_RUN]
    assert finished == notified and finished["status"] == "failed" and finished["error"] == result["error"]
    assert fake.statuses[-1]["phase"] == "finished"


@pytest.mark.parametrize("start", ["fails", "succeeds"])
def test_a_run_that_cannot_be_recorded_fails_the_orchestration_with_one_line_in_its_custom_status(
        start: str) -> None:
    fake = FakeContext(request(), {
        START_RUN: storage_failed(START_RUN) if start == "fails" else started(T1),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"]), PUSH_CHANGES: push_summary(),
        FINISH_RUN: storage_failed(FINISH_RUN), NOTIFY_RUN: {},
    })
    with pytest.raises(RunNotRecordedError) as raised:
        run(fake)
    line = str(raised.value)
    assert line.startswith(f"Table Storage could not be reached during {FINISH_RUN}, so the run could not be "
                           "recorded: check SEATSYNC_STORAGE_CONNECTION_STRING"), line
    assert "\n" not in line and "urllib3" not in line and line.count("SEATSYNC_STORAGE_CONNECTION_STRING") == 1
    assert fake.statuses[-1] == {**fake.statuses[-2], "phase": "failed", "error": line}
    assert NOTIFY_RUN not in fake.names()


def test_no_tenants_configured_still_finishes() -> None:
    fake = FakeContext(request(), {START_RUN: started(), FINISH_RUN: {}, NOTIFY_RUN: {}})
    result = run(fake)
    assert fake.names() == [START_RUN, RECONCILE_WRITES, FINISH_RUN, NOTIFY_RUN]
    assert result["status"] == "succeeded"
    assert result["tenantsTotal"] == 0


def test_writes_an_earlier_run_left_unrecorded_are_settled_first_and_counted() -> None:
    fake = FakeContext(request(), {
        START_RUN: started(T1),
        RECONCILE_WRITES: push_summary(tenants=0, planned=0, applied=0, unchanged=0, recovered=2, psaCalls=1),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"]),
        PUSH_CHANGES: push_summary(recovered=1),
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    result = run(fake)
    assert fake.names()[:2] == [START_RUN, RECONCILE_WRITES]
    [(_, payload, retried)] = [c for c in fake.calls if c[0] == RECONCILE_WRITES]
    assert retried and payload["runId"] == "20261125T020000Z-0a0b0c0d"
    assert result["changesRecovered"] == 3
    assert result["psaCalls"] == 5
    assert result["status"] == "succeeded"


def test_rejects_a_malformed_input() -> None:
    fake = FakeContext({"runId": "not a run id"}, {})
    with pytest.raises(ValueError, match="run"):
        run(fake)


def test_a_run_refused_because_another_runs_is_recorded_as_failed() -> None:
    refused = {**started(), "refused": "run 20261125T010000Z-00000001 is still in progress; this run did nothing"}
    fake = FakeContext(request(), {START_RUN: refused, FINISH_RUN: {}, NOTIFY_RUN: {}})
    result = run(fake)
    assert fake.names() == [START_RUN, FINISH_RUN, NOTIFY_RUN]
    assert result["status"] == "failed"
    assert "still in progress" in result["error"]


def test_progress_is_the_custom_status_after_each_group_of_tenants() -> None:
    tenants = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(PROGRESS_GROUP * 2 + 3)]
    failing = tenants[4]
    fake = FakeContext(request(), {
        START_RUN: started(*tenants),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"], "failed" if p["tenantId"] == failing else "ok"),
        PUSH_CHANGES: lambda p: push_summary(tenants=len(p["tenantIds"]), applied=2, held=1),
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    run(fake)
    n = len(tenants)
    # every collection is scheduled at once with the shared PSA reads (one task_any over all), then
    # taken a group at a time
    assert fake.waits[:4] == [("any", n + 1), ("all", PROGRESS_GROUP), ("all", PROGRESS_GROUP), ("all", 3)]
    phases = [(s["phase"], s["tenantsCollected"], s["tenantsPushed"], s["tenantsFailed"]) for s in fake.statuses]
    assert phases[0] == ("starting", 0, 0, 0)
    assert ("collecting", PROGRESS_GROUP, 0, 1) in phases
    assert ("collecting", n, 0, 1) in phases
    pushing = [s for s in fake.statuses if s["phase"] == "pushing"]
    assert pushing[0]["tenantsToPush"] == n - 1
    assert pushing[-1]["tenantsPushed"] == n - 1
    assert pushing[-1]["changesApplied"] == 2 * len([p for name, p, _ in fake.calls if name == PUSH_CHANGES])
    assert pushing[-1]["changesHeld"] >= 1
    assert [s["phase"] for s in fake.statuses][-3:] == ["finishing", "notifying", "finished"]
    assert all(s["runId"] == "20261125T020000Z-0a0b0c0d" and s["tenantsTotal"] in (0, n) for s in fake.statuses)


def test_a_failed_collection_ends_the_progress_as_failed_run() -> None:
    fake = FakeContext(request(), {
        START_RUN: started(T1, T2),
        COLLECT_TENANT: RuntimeError("table storage unavailable"),
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    result = run(fake)
    assert result["status"] == "failed"
    assert fake.statuses[-1]["phase"] == "finished"


def test_a_run_whose_psa_refused_every_tenant_failed() -> None:
    """The PSA down or its credentials refused: every collected tenant's push failed to read it."""
    fake = FakeContext(request(), {
        START_RUN: started(T1, T2),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"]),
        PUSH_CHANGES: lambda p: push_summary(tenants=len(p["tenantIds"]), planned=0, applied=0,
                                             tenantsFailed=list(p["tenantIds"])),
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    result = run(fake)
    assert result["status"] == "failed"
    assert result["tenantsFailed"] == 2
    finish_payload = next(p for n, p, _ in fake.calls if n == FINISH_RUN)
    notify_payload = next(p for n, p, _ in fake.calls if n == NOTIFY_RUN)
    assert finish_payload["status"] == notify_payload["status"] == "failed"


def test_a_run_whose_psa_took_no_write_failed() -> None:
    fake = FakeContext(request(), {
        START_RUN: started(T1, T2),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"]),
        PUSH_CHANGES: lambda p: push_summary(tenants=2, planned=3, applied=0, failed=3,
                                             tenantsUnwritten=list(p["tenantIds"])),
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    assert run(fake)["status"] == "failed"


def test_one_tenant_pushed_of_two_is_partial() -> None:
    fake = FakeContext(request(), {
        START_RUN: started(T1, T2),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"]),
        PUSH_CHANGES: push_summary(tenants=2, tenantsFailed=[T2]),
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    assert run(fake)["status"] == "partial"


def test_billing_problems_make_a_run_need_attention_and_gdap_failures_partial() -> None:
    answers = {
        START_RUN: started(T1),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"]),
        PUSH_CHANGES: push_summary(problems=2, problemsByKind={"users-unmatched": 1, "line-cancelled": 1}),
        FINISH_RUN: {}, NOTIFY_RUN: {},
    }
    result = run(FakeContext(request(), answers))
    assert result["status"] == "attention"
    assert (result["problems"], result["problemsByKind"]) == (2, {"line-cancelled": 1, "users-unmatched": 1})
    gdap_down = run(FakeContext(request(), {**answers, START_RUN: {**started(T1), "gdapError": "HTTP 503"}}))
    assert (gdap_down["status"], gdap_down["gdapError"]) == ("partial", "HTTP 503")


@pytest.mark.parametrize("failure", ["raised", "returned"], ids=["local-runner", "durable"])
def test_a_push_that_fails_after_its_retries_fails_the_run(failure: str) -> None:
    error = RuntimeError("PSA unreachable")
    fake = FakeContext(request(), {
        START_RUN: started(T1, T2),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"]),
        PUSH_CHANGES: error,
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    if failure == "returned":  # Durable's task_any hands back the failed task; its result is the exception
        fake.answers[PUSH_CHANGES] = lambda p: None
        fake.context.task_any.side_effect = lambda tasks: task(task(error))
    result = run(fake)
    assert result["status"] == "failed"
    assert "PSA unreachable" in result["error"]


def test_host_json_gives_new_instances_this_orchestration_version() -> None:
    from local_runner.local_sync import default_version

    assert default_version() == ORCHESTRATION_VERSION
    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text(encoding="utf-8"))
    durable = host["extensions"]["durableTask"]
    assert (durable["versionMatchStrategy"], durable["versionFailureStrategy"]) == ("CurrentOrOlder", "Reject")
    assert host["extensionBundle"]["version"].startswith("[4.26.0"), "versioning needs bundle 4.26 or later"


@pytest.mark.parametrize("version", [None, "1"], ids=["before-versions", "version-1"])
def test_an_instance_of_an_older_version_replays_its_own_push_batches(version: str | None) -> None:
    tenants = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(PUSH_BATCH_SIZE * 2 + 3)]
    fake = FakeContext(request(), {
        START_RUN: started(*tenants),
        COLLECT_TENANT: lambda p: outcome(p["tenantId"]),
        PUSH_CHANGES: lambda p: push_summary(tenants=len(p["tenantIds"])),
        FINISH_RUN: {}, NOTIFY_RUN: {},
    })
    fake.context.version = version
    run(fake)
    assert [len(p["tenantIds"]) for n, p, _ in fake.calls if n == PUSH_CHANGES] == [PUSH_BATCH_SIZE] * 2 + [3]
