"""The sync orchestration, as a deterministic generator.

start_run -> collect_tenant per tenant (fan-out, retried) -> push_changes per batch of
collected tenants (fan-in to the PSA push) -> finish_run -> notify_run.

Only small summaries pass through here (Durable keeps them in the orchestration history);
snapshots and plans stay in Table Storage. No I/O, no wall clock, no randomness: time comes
from ``context.current_utc_datetime`` so replays take the same path.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from shared.contracts import (
    CollectRequest,
    PushRequest,
    PushSummary,
    RunSummary,
    StartedRun,
    SyncRequest,
    TenantOutcome,
    summarize,
)
from shared.functions import COLLECT_TENANT, FINISH_RUN, NOTIFY_RUN, PUSH_CHANGES, START_RUN

PUSH_BATCH_SIZE = 25
COLLECT_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=15_000, max_number_of_attempts=3)
PUSH_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=30_000, max_number_of_attempts=3)


def batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def sync(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    request = SyncRequest.model_validate(context.get_input())
    started = StartedRun.model_validate((yield context.call_activity(START_RUN, request.to_json())))

    outcomes: list[TenantOutcome] = []
    pushes: list[PushSummary] = []
    error: str | None = started.refused
    try:
        collect_tasks = [
            context.call_activity_with_retry(
                COLLECT_TENANT, COLLECT_RETRY,
                CollectRequest(run_id=request.run_id, tenant_id=t.tenant_id, name=t.name, group_ids=t.group_ids,
                               mailboxes=t.mailboxes, managed_devices=t.managed_devices).to_json())
            for t in started.tenants
        ]
        if collect_tasks:
            outcomes = [TenantOutcome.model_validate(o) for o in (yield context.task_all(collect_tasks))]

        collected = [o.tenant_id for o in outcomes if o.status == "ok"]
        push_tasks = [
            context.call_activity_with_retry(
                PUSH_CHANGES, PUSH_RETRY,
                PushRequest(run_id=request.run_id, tenant_ids=batch, dry_run=request.dry_run).to_json())
            for batch in batches(collected, PUSH_BATCH_SIZE)
        ]
        if push_tasks:
            pushes = [PushSummary.model_validate(p) for p in (yield context.task_all(push_tasks))]
    except Exception as exc:  # an activity failed after its retries: the run is recorded as failed
        error = f"{type(exc).__name__}: {exc}"

    summary: RunSummary = summarize(
        request, outcomes, pushes, extra_graph_calls=started.graph_calls,
        finished_at=context.current_utc_datetime, error=error,
    )
    yield context.call_activity(FINISH_RUN, summary.to_json())
    yield context.call_activity(NOTIFY_RUN, summary.to_json())
    return summary.to_json()
