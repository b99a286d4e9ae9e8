"""The sync orchestration, as a deterministic generator.

start_run -> reconcile_writes (settle writes earlier runs left unrecorded; not on a dry run) ->
collect_tenant per tenant (fan-out, retried), with share_psa_reads beside it (each PSA connection's
agreements and products the run needs, read once and stored for the pushes) -> push_changes per
batch of collected tenants -> finish_run -> notify_run.

Bounded fan-out (version 3): a run of more tenants than one chunk holds (``SEATSYNC_SYNC_CHUNK``,
200 by default) is run in sub-orchestrations (``sync_chunk``), a chunk each, at most
``SEATSYNC_SYNC_PARALLEL_CHUNKS`` at once: first each chunk is collected, then each is pushed. The
tenants stay in Table Storage (``start_run`` stores them; a chunk reads its own with ``load_chunk``)
and every chunk answers totals, so the orchestration's history holds a few events per chunk
whatever the number of tenants: Durable's guidance for large fan-outs (keep inputs and outputs
small, split the fan-out across sub-orchestrations, since a fan-in runs on one instance).

A push works at most ``SEATSYNC_PUSH_ACTIVITY_SECONDS`` and hands back the tenants it did not start
(``tenantsLeft``, for example while a PSA's request window made it wait); they are pushed by
another activity, so no activity runs into the Function App's ``functionTimeout``.

Only small summaries pass through here (Durable keeps them in the orchestration history);
snapshots and plans stay in Table Storage. No I/O, no wall clock, no randomness: time comes
from ``context.current_utc_datetime`` so replays take the same path.

Progress: every collection is scheduled at once, then their results are taken in order a group
at a time; the pushes (tens of batches, the first ones small) are taken as each finishes; a large
run's chunks as each finishes. After each, the Durable custom status (``RunProgress``: phase,
tenants collected and pushed out of N, failures so far) is updated, so a caller of
``GET /api/runs/{runId}`` sees a long run move.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import azure.durable_functions as df

from shared.contracts import (
    ChunkRequest,
    CollectRequest,
    CollectTotals,
    FanOut,
    PushRequest,
    PushSummary,
    RunProgress,
    RunSummary,
    StartedRun,
    StartRun,
    SyncRequest,
    TenantOutcome,
    TenantWork,
    summarize,
    summarize_totals,
)
from shared.errors import RunNotRecordedError
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
from shared.run_failures import run_failure
from shared.text import short

ORCHESTRATION_VERSION = "3"
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
           on_group: Callable[[list[Any]], None], also: list[Any] | None = None) -> Generator[Any, Any, list[Any]]:
    """The results of ``tasks``, in order, like ``task_all``, calling ``on_group`` with the results
    so far after each ``group`` of them; ``also`` are tasks to schedule with them (their results
    are taken by the caller).

    The first ``task_any`` over every task schedules them all at once (Durable schedules what is
    yielded), so taking the results a group at a time holds nothing back: it only decides when
    the orchestrator wakes to report progress. A failed task raises when its group is taken, as
    ``task_all`` would."""
    results: list[Any] = []
    if len(tasks) > group or also:
        yield context.task_any([*tasks, *(also or [])])
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
    if version >= 3:
        return (yield from _sync_fanned_out(context, request))
    return (yield from _sync_v2(context, request, version))


def _sync_v2(context: Any, request: SyncRequest, version: int) -> Generator[Any, Any, dict[str, Any]]:
    """Versions 1 and 2: every tenant in the orchestration's own history (kept for the instances
    started before version 3)."""
    progress = RunProgress(run_id=request.run_id, phase="starting", dry_run=request.dry_run)
    context.set_custom_status(progress.to_json())
    started, error = yield from _start(context, request, request.to_json())

    outcomes: list[TenantOutcome] = []
    pushes: list[PushSummary] = []

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
        if error is None and not request.dry_run:
            reconciled = yield context.call_activity_with_retry(
                RECONCILE_WRITES, PUSH_RETRY, PushRequest(run_id=request.run_id, tenant_ids=[]).to_json())
            pushes.append(PushSummary.model_validate(reconciled))
        report(phase="collecting", tenants_total=len(started.tenants))
        collect_tasks = [collect_task(context, request.run_id, t) for t in started.tenants]
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
        error = run_failure(exc)

    summary: RunSummary = summarize(
        request, outcomes, pushes, extra_graph_calls=started.graph_calls,
        finished_at=context.current_utc_datetime, error=error, gdap_error=started.gdap_error,
    )
    return (yield from _finish(context, summary, report))


def _start(context: Any, request: SyncRequest, payload: dict[str, Any]
           ) -> Generator[Any, Any, tuple[StartedRun, str | None]]:
    """The started run and the error that stops it before any tenant: another run holds the lease
    (``refused``), or the start itself failed (Table Storage unreachable, say). A failed start is
    then recorded and alerted like any failed run, by ``_finish``, instead of failing the
    orchestration where nothing records it."""
    try:
        started = StartedRun.model_validate((yield context.call_activity(START_RUN, payload)))
    except Exception as exc:  # the start activity failed: the run is recorded as failed
        return StartedRun(run_id=request.run_id, tenants=[]), run_failure(exc)
    return started, started.refused


def _finish(context: Any, summary: RunSummary, report: Callable[..., None]) -> Generator[Any, Any, dict[str, Any]]:
    """Record the run and alert a person. Should that fail too (Table Storage still unreachable
    after ``finish_run``'s own retries), the custom status says so in one line and the
    orchestration fails with it: nothing else could be recorded."""
    try:
        report(phase="finishing")
        yield context.call_activity(FINISH_RUN, summary.to_json())
        report(phase="notifying")
        yield context.call_activity(NOTIFY_RUN, summary.to_json())
    except Exception as exc:
        failure = run_failure(exc).replace("so the run stopped", "so the run could not be recorded", 1)
        if summary.error and "Table Storage could not be reached" not in summary.error:
            failure = f"{failure} (the run had failed: {short(summary.error, 200)})"
        report(phase="failed", error=failure)
        raise RunNotRecordedError(failure) from None
    report(phase="finished", tenants_failed=summary.tenants_failed)
    return summary.to_json()


def collect_task(context: Any, run_id: str, tenant: TenantWork) -> Any:
    return context.call_activity_with_retry(
        COLLECT_TENANT, COLLECT_RETRY,
        CollectRequest(run_id=run_id, tenant_id=tenant.tenant_id, name=tenant.name, group_ids=list(tenant.group_ids),
                       mailboxes=tenant.mailboxes, managed_devices=tenant.managed_devices, sign_ins=tenant.sign_ins,
                       partner=tenant.partner).to_json())


DEFAULT_FAN_OUT = FanOut(chunk_size=200, parallel_chunks=4, activity_seconds=420)


def _sync_fanned_out(context: Any, request: SyncRequest) -> Generator[Any, Any, dict[str, Any]]:
    """Version 3: the shared PSA reads beside the collection, pushes that hand back what they could
    not start, and a large run in chunks of sub-orchestrations."""
    progress = RunProgress(run_id=request.run_id, phase="starting", dry_run=request.dry_run)
    context.set_custom_status(progress.to_json())
    started, error = yield from _start(context, request, StartRun(request=request).to_json())
    fan = started.fan_out or DEFAULT_FAN_OUT

    totals = CollectTotals()
    pushes: list[PushSummary] = []

    def report(**changes: Any) -> None:
        nonlocal progress
        progress = progress.model_copy(update=changes)
        context.set_custom_status(progress.to_json())

    try:
        if error is None and not request.dry_run:
            reconciled = yield context.call_activity_with_retry(
                RECONCILE_WRITES, PUSH_RETRY, PushRequest(run_id=request.run_id, tenant_ids=[]).to_json())
            pushes.append(PushSummary.model_validate(reconciled))
        report(phase="collecting", tenants_total=started.total)
        if started.total:
            reads = context.call_activity_with_retry(
                SHARE_PSA_READS, PUSH_RETRY,
                PushRequest(run_id=request.run_id, tenant_ids=[], dry_run=request.dry_run).to_json())
            run = _in_chunks(context, request, started, fan, reads, report) if started.chunks else \
                _at_once(context, request, started, fan, reads, report)
            totals, pushed = yield from run
            pushes += pushed
    except Exception as exc:  # an activity failed after its retries: the run is recorded as failed
        error = run_failure(exc)

    summary = summarize_totals(request, totals, pushes, extra_graph_calls=started.graph_calls,
                               finished_at=context.current_utc_datetime, error=error, gdap_error=started.gdap_error)
    return (yield from _finish(context, summary, report))


def _shared_reads(reads: Any) -> Generator[Any, Any, list[PushSummary]]:
    """The shared PSA reads' cost. The activity records a PSA it could not read for the pushes;
    should it fail altogether (its store unavailable after its retries), no reads are shared and
    every push reads what it needs itself, reporting what it cannot read: the run goes on."""
    try:
        return [PushSummary.model_validate((yield reads))]
    except Exception:
        return []


def _at_once(context: Any, request: SyncRequest, started: StartedRun, fan: FanOut, reads: Any,
             report: Callable[..., None]) -> Generator[Any, Any, tuple[CollectTotals, list[PushSummary]]]:
    """A run that fits in one chunk: its tenants in this orchestration's history, as in version 2."""

    def collected(results: list[Any]) -> None:
        report(tenants_collected=len(results),
               tenants_failed=sum(1 for r in results if TenantOutcome.model_validate(r).status != "ok"))

    collect_tasks = [collect_task(context, request.run_id, t) for t in started.tenants]
    outcomes = [TenantOutcome.model_validate(o)
                for o in (yield from gather(context, collect_tasks, PROGRESS_GROUP, collected, also=[reads]))]
    pushes = yield from _shared_reads(reads)
    collected_ids = [o.tenant_id for o in outcomes if o.status == "ok"]
    failed = len(outcomes) - len(collected_ids)
    totals = CollectTotals(tenants=len(outcomes), collected=len(collected_ids),
                           graph_calls=sum(o.graph_calls for o in outcomes))
    report(phase="pushing", tenants_to_push=len(collected_ids))

    def pushed(done: list[PushSummary]) -> None:
        report(tenants_pushed=sum(p.tenants for p in done),
               tenants_failed=failed + sum(len(p.tenants_failed) for p in done),
               changes_applied=sum(p.applied for p in done), changes_held=sum(p.held for p in done),
               changes_deferred=sum(p.deferred for p in done), changes_failed=sum(p.failed for p in done))

    pushes += yield from push_all(context, request.run_id, collected_ids, request.dry_run, fan.activity_seconds,
                                  pushed)
    return totals, pushes


def _in_chunks(context: Any, request: SyncRequest, started: StartedRun, fan: FanOut, reads: Any,
               report: Callable[..., None]) -> Generator[Any, Any, tuple[CollectTotals, list[PushSummary]]]:
    """A large run: each chunk collected by a sub-orchestration, then each chunk pushed by one, at
    most ``parallel_chunks`` at once; the progress moves as each chunk finishes."""
    run_id = request.run_id
    collected: list[CollectTotals] = []

    def chunk_collected(_: int, value: Any) -> None:
        collected.append(CollectTotals.model_validate(value))
        report(tenants_collected=sum(c.tenants for c in collected),
               tenants_failed=sum(len(c.failed) for c in collected))

    def collect(index: int) -> Any:
        return context.call_sub_orchestrator(
            SYNC_CHUNK, ChunkRequest(run_id=run_id, chunk=index, chunk_size=fan.chunk_size, step="collect",
                                     dry_run=request.dry_run).to_json(),
            f"{run_id}-collect-{index:05d}")

    first = [collect(i) for i in range(min(fan.parallel_chunks, started.chunks))]
    yield context.task_any([reads, *first])  # the shared reads are scheduled beside the first chunks
    by_chunk = [CollectTotals.model_validate(v) for v in (
        yield from bounded(context, first, collect, started.chunks, fan.parallel_chunks, chunk_collected))]
    pushes = yield from _shared_reads(reads)
    totals = CollectTotals(tenants=sum(c.tenants for c in by_chunk), collected=sum(c.collected for c in by_chunk),
                           graph_calls=sum(c.graph_calls for c in by_chunk))
    failed = totals.tenants - totals.collected
    report(phase="pushing", tenants_to_push=totals.collected)

    to_push = [i for i, c in enumerate(by_chunk) if c.collected]
    done: list[PushSummary] = []

    def chunk_pushed(_: int, value: Any) -> None:
        done.append(PushSummary.model_validate(value))
        report(tenants_pushed=sum(p.tenants for p in done),
               tenants_failed=failed + sum(len(p.tenants_failed) for p in done),
               changes_applied=sum(p.applied for p in done), changes_held=sum(p.held for p in done),
               changes_deferred=sum(p.deferred for p in done), changes_failed=sum(p.failed for p in done))

    def push(position: int) -> Any:
        index = to_push[position]
        return context.call_sub_orchestrator(
            SYNC_CHUNK, ChunkRequest(run_id=run_id, chunk=index, chunk_size=fan.chunk_size, step="push",
                                     dry_run=request.dry_run, skip=by_chunk[index].failed,
                                     activity_seconds=fan.activity_seconds).to_json(),
            f"{run_id}-push-{index:05d}")

    first_pushes = [push(i) for i in range(min(fan.parallel_chunks, len(to_push)))]
    results = yield from bounded(context, first_pushes, push, len(to_push), fan.parallel_chunks, chunk_pushed)
    return totals, pushes + [PushSummary.model_validate(v) for v in results]


def chunk(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    """The ``sync_chunk`` sub-orchestration: one chunk of a large run's tenants, collected (every
    collection at once: a chunk is bounded) or pushed (in batches). It answers totals only."""
    request = ChunkRequest.model_validate(context.get_input())
    tenants = [TenantWork.model_validate(t) for t in (
        yield context.call_activity_with_retry(LOAD_CHUNK, COLLECT_RETRY, request.to_json()))]
    if request.step == "collect":
        outcomes = [TenantOutcome.model_validate(o) for o in (
            (yield context.task_all([collect_task(context, request.run_id, t) for t in tenants])) if tenants else [])]
        return CollectTotals(tenants=len(outcomes), collected=sum(1 for o in outcomes if o.status == "ok"),
                             failed=[i for i, o in enumerate(outcomes) if o.status != "ok"],
                             graph_calls=sum(o.graph_calls for o in outcomes)).to_json()
    skip = set(request.skip)
    tenant_ids = [t.tenant_id for i, t in enumerate(tenants) if i not in skip]
    pushed = yield from push_all(context, request.run_id, tenant_ids, request.dry_run, request.activity_seconds)
    return PushSummary.merged(pushed).to_json()


def push_all(context: Any, run_id: str, tenant_ids: list[str], dry_run: bool, seconds: int | None,
             on_each: Callable[[list[PushSummary]], None] | None = None) -> Generator[Any, Any, list[PushSummary]]:
    """Push ``tenant_ids`` in batches, taken as each finishes; the tenants a push hands back (its
    time ran out) are pushed by another. A push always does at least one tenant, so this ends."""

    def push(batch: list[str]) -> Any:
        return context.call_activity_with_retry(
            PUSH_CHANGES, PUSH_RETRY,
            PushRequest(run_id=run_id, tenant_ids=batch, dry_run=dry_run, activity_seconds=seconds).to_json())

    pending = [push(batch) for batch in push_batches(tenant_ids)]
    results: list[PushSummary] = []
    while pending:
        done = yield context.task_any(pending)
        pending = [task for task in pending if task is not done]
        value = done.result  # Durable: the output, or the exception of a failed activity
        if isinstance(value, Exception):
            raise value
        summary = PushSummary.model_validate(value)
        results.append(summary)
        if summary.tenants_left:
            pending.append(push(summary.tenants_left))
        if on_each is not None:
            on_each(results)
    return results


def bounded(context: Any, first: list[Any], start: Callable[[int], Any], total: int, width: int,
            on_done: Callable[[int, Any], None]) -> Generator[Any, Any, list[Any]]:
    """The results of ``total`` tasks, in order, with at most ``width`` scheduled at a time:
    ``first`` are the tasks of the first indexes (already made), ``start(i)`` makes the others as
    earlier ones finish; ``on_done(i, result)`` after each. A failed task raises."""
    running = list(enumerate(first))
    following = len(first)
    results: list[Any] = [None] * total
    while running:
        done = yield context.task_any([task for _, task in running])
        index = next(i for i, task in running if task is done)
        running = [(i, task) for i, task in running if task is not done]
        value = done.result
        if isinstance(value, Exception):
            raise value
        results[index] = value
        on_done(index, value)
        if following < total and len(running) < width:
            running.append((following, start(following)))
            following += 1
    return results
