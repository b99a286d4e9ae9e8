"""The sync orchestration, as a deterministic generator.

start_run -> reconcile_writes (settle writes earlier runs left unrecorded; not on a dry run) ->
collect_tenant per tenant (fan-out, retried) -> push_changes per batch of collected tenants
(fan-in to the PSA push) -> finish_run -> notify_run.

Only small summaries pass through here (Durable keeps them in the orchestration history);
snapshots and plans stay in Table Storage. No I/O, no wall clock, no randomness: time comes
from ``context.current_utc_datetime`` so replays take the same path.

Progress: every collection is scheduled at once, then their results are taken in order a group
at a time; the pushes (tens of batches, the first ones small) are taken as each finishes. After
each, the Durable custom status (``RunProgress``: phase, tenants collected and pushed out of N,
failures so far) is updated, so a caller of ``GET /api/runs/{runId}`` sees a long run move.
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
from shared.functions import COLLECT_TENANT, FINISH_RUN, NOTIFY_RUN, PUSH_CHANGES, RECONCILE_WRITES, START_RUN

ORCHESTRATION_VERSION = "2"
"""The orchestration's version: host.json's ``extensions.durableTask.defaultVersion`` (a test keeps
them equal). Durable gives every new instance this version for good; with ``CurrentOrOlder`` a
worker runs instances of its version or older and leaves newer ones (``Reject``) to a newer worker,
so an upgrade during a run is safe. An instance replays the steps of its own version: raise both
when the sequence of activities an instance schedules changes, and keep the older path."""

PUSH_BATCH_SIZE = 25
"""Most tenants one push activity plans and writes: a batch shares its PSA reads (agreements,
products), so larger batches cost fewer PSA calls."""
MIN_PUSH_BATCH = 10
PUSH_BATCHES = 32
"""A large run is split into about this many pushes (never smaller than ``MIN_PUSH_BATCH``
tenants), so the push phase reports progress every few seconds instead of once at its end."""
FIRST_PUSH_BATCH = 1
"""The first batches of a large run grow from this size by one tenant each up to the batch
size: pushes that start together then finish one after another, not all at once."""
PROGRESS_GROUP = 10
"""Collections whose results are taken together before the progress is updated."""
COLLECT_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=15_000, max_number_of_attempts=3)
PUSH_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=30_000, max_number_of_attempts=3)


def batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def push_batches(tenant_ids: list[str]) -> list[list[str]]:
    """The collected tenants in push batches: one batch up to ``PUSH_BATCH_SIZE``; above, batches
    of ``push_batch_size`` that the first ones ramp up to from ``FIRST_PUSH_BATCH``."""
    if len(tenant_ids) <= PUSH_BATCH_SIZE:
        return [tenant_ids] if tenant_ids else []
    size = push_batch_size(len(tenant_ids))
    found: list[list[str]] = []
    start, step = 0, FIRST_PUSH_BATCH
    while start < len(tenant_ids):
        take = min(step, size)
        found.append(tenant_ids[start:start + take])
        start, step = start + take, step + 1
    return found


def push_batch_size(tenants: int) -> int:
    """One batch up to ``PUSH_BATCH_SIZE`` tenants; above, about ``PUSH_BATCHES`` batches of
    ``MIN_PUSH_BATCH`` to ``PUSH_BATCH_SIZE`` tenants."""
    if tenants <= PUSH_BATCH_SIZE:
        return PUSH_BATCH_SIZE
    return max(MIN_PUSH_BATCH, min(PUSH_BATCH_SIZE, -(-tenants // PUSH_BATCHES)))


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


def as_completed(context: Any, tasks: list[Any],
                 on_each: Callable[[list[Any]], None]) -> Generator[Any, Any, list[Any]]:
    """The results of ``tasks`` in the order they finish, calling ``on_each`` with the results so
    far after each one. For a few long tasks (the pushes): each ``task_any`` over those still
    running costs their number, so this is for tens of tasks, not thousands. A failed task raises,
    as ``task_all`` would."""
    pending = list(tasks)
    results: list[Any] = []
    while pending:
        done = yield context.task_any(pending)
        pending = [task for task in pending if task is not done]
        value = done.result  # Durable: the output, or the exception of a failed activity
        if isinstance(value, Exception):
            raise value
        results.append(value)
        on_each(results)
    return results


def version_of(context: Any) -> int:
    """The instance's orchestration version; 1 for an instance started before versions were set."""
    value = getattr(context, "version", None)
    return int(value) if isinstance(value, str) and value.isdigit() else 1


def sync(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    request = SyncRequest.model_validate(context.get_input())
    version = version_of(context)
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
        if started.refused is None and not request.dry_run:
            reconciled = yield context.call_activity_with_retry(
                RECONCILE_WRITES, PUSH_RETRY, PushRequest(run_id=request.run_id, tenant_ids=[]).to_json())
            pushes.append(PushSummary.model_validate(reconciled))
        report(phase="collecting", tenants_total=len(started.tenants))
        collect_tasks = [
            context.call_activity_with_retry(
                COLLECT_TENANT, COLLECT_RETRY,
                CollectRequest(run_id=request.run_id, tenant_id=t.tenant_id, name=t.name, group_ids=t.group_ids,
                               mailboxes=t.mailboxes, managed_devices=t.managed_devices, sign_ins=t.sign_ins,
                               partner=t.partner).to_json())
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
            # version 1 pushed batches of 25; its instances replay the batches they scheduled
            for batch in (push_batches(collected_ids) if version >= 2 else batches(collected_ids, PUSH_BATCH_SIZE))
        ]
        pushes += [PushSummary.model_validate(p) for p in (yield from as_completed(context, push_tasks, pushed))]
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
