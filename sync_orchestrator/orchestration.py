"""The sync orchestration, as a deterministic generator.

start_run -> collect_tenant per tenant (fan-out, retried) -> push_changes per batch of
collected tenants (fan-in to the PSA push) -> finish_run -> notify_run.

Only small summaries pass through here (Durable keeps them in the orchestration history);
snapshots and plans stay in Table Storage. No I/O, no wall clock, no randomness: time comes
from ``context.current_utc_datetime`` so replays take the same path.

Progress: every collection (and every push) is scheduled at once, then their results are taken
in order a group at a time, and after each group the Durable custom status (``RunProgress``:
phase, tenants collected and pushed out of N, failures so far) is updated, so a caller of
``GET /api/runs/{runId}`` sees a long run move.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import azure.durable_functions as df

from shared.contracts import (
    CollectRequest,
    PushRequest,
    PushSummary,
    RunProgress,
    RunSummary,
    StartedRun,
    SyncRequest,
    TenantOutcome,
    summarize,
)
from shared.functions import COLLECT_TENANT, FINISH_RUN, NOTIFY_RUN, PUSH_CHANGES, START_RUN

PUSH_BATCH_SIZE = 25
PROGRESS_GROUP = 10
"""Collections whose results are taken together before the progress is updated."""
COLLECT_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=15_000, max_number_of_attempts=3)
PUSH_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=30_000, max_number_of_attempts=3)


def batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def gather(context: Any, tasks: list[Any], group: int,
           on_group: Callable[[list[Any]], None]) -> Generator[Any, Any, list[Any]]:
    """The results of ``tasks``, in order, like ``task_all``, calling ``on_group`` with the results
    so far after each ``group`` of them.

    The first ``task_any`` over every task schedules them all at once (Durable schedules what is
    yielded), so taking the results a group at a time holds nothing back: it only decides when
    the orchestrator wakes to report progress. A failed task raises when its group is taken, as
    ``task_all`` would."""
    results: list[Any] = []
    if len(tasks) > group:
        yield context.task_any(tasks)
    for part in batches(tasks, group):
        results.extend((yield context.task_all(part)))
        on_group(results)
    return results


def sync(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    request = SyncRequest.model_validate(context.get_input())
    progress = RunProgress(run_id=request.run_id, phase="starting", dry_run=request.dry_run)
    context.set_custom_status(progress.to_json())
    started = StartedRun.model_validate((yield context.call_activity(START_RUN, request.to_json())))

    outcomes: list[TenantOutcome] = []
    pushes: list[PushSummary] = []
    error: str | None = started.refused

    def report(**changes: Any) -> None:
        nonlocal progress
        progress = progress.model_copy(update=changes)
        context.set_custom_status(progress.to_json())

    def collected(results: list[Any]) -> None:
        report(tenants_collected=len(results),
               tenants_failed=sum(1 for r in results if TenantOutcome.model_validate(r).status != "ok"))

    def pushed(results: list[Any]) -> None:
        done = [PushSummary.model_validate(r) for r in results]
        report(tenants_pushed=sum(p.tenants for p in done),
               tenants_failed=collect_failed + sum(len(p.tenants_failed) for p in done),
               changes_applied=sum(p.applied for p in done), changes_held=sum(p.held for p in done),
               changes_deferred=sum(p.deferred for p in done), changes_failed=sum(p.failed for p in done))

    collect_failed = 0
    try:
        report(phase="collecting", tenants_total=len(started.tenants))
        collect_tasks = [
            context.call_activity_with_retry(
                COLLECT_TENANT, COLLECT_RETRY,
                CollectRequest(run_id=request.run_id, tenant_id=t.tenant_id, name=t.name, group_ids=t.group_ids,
                               mailboxes=t.mailboxes, managed_devices=t.managed_devices).to_json())
            for t in started.tenants
        ]
        outcomes = [TenantOutcome.model_validate(o)
                    for o in (yield from gather(context, collect_tasks, PROGRESS_GROUP, collected))]

        collected_ids = [o.tenant_id for o in outcomes if o.status == "ok"]
        collect_failed = len(outcomes) - len(collected_ids)
        report(phase="pushing", tenants_to_push=len(collected_ids))
        push_tasks = [
            context.call_activity_with_retry(
                PUSH_CHANGES, PUSH_RETRY,
                PushRequest(run_id=request.run_id, tenant_ids=batch, dry_run=request.dry_run).to_json())
            for batch in batches(collected_ids, PUSH_BATCH_SIZE)
        ]
        pushes = [PushSummary.model_validate(p) for p in (yield from gather(context, push_tasks, 1, pushed))]
    except Exception as exc:  # an activity failed after its retries: the run is recorded as failed
        error = f"{type(exc).__name__}: {exc}"

    summary: RunSummary = summarize(
        request, outcomes, pushes, extra_graph_calls=started.graph_calls,
        finished_at=context.current_utc_datetime, error=error, gdap_error=started.gdap_error,
    )
    report(phase="finishing")
    yield context.call_activity(FINISH_RUN, summary.to_json())
    report(phase="notifying")
    yield context.call_activity(NOTIFY_RUN, summary.to_json())
    report(phase="finished", tenants_failed=summary.tenants_failed)
    return summary.to_json()
