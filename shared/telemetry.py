"""Telemetry in Azure: structured logs and metrics of each run, through the Azure Monitor
OpenTelemetry distribution.

What is sent (``infra/monitoring/seatsync-runs.kql`` charts it):

- log events of the ``seatsync.telemetry`` logger — ``run started``, ``tenant collected``,
  ``tenants pushed``, ``run finished`` — whose fields become the record's custom dimensions;
- metrics (``seatsync.*`` counters): tenants synced and failed, changes applied, held, deferred
  and failed, the money changed, Graph and PSA calls, 429s and retries per service.

Every log record of the process carries ``runId`` and ``tenantId`` (the activity's, when it has
them): a log record factory adds them from context variables the activities set.

The distribution is imported only when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set and only
on the first use of the services, never at import, so a cold start without it stays small.
Only the ``seatsync`` logger is exported through it: the Functions host already forwards the
worker's other logs to Application Insights, and exporting them twice would double them. Without a
connection string (the CLI, the tests) the events are ordinary log records and the metrics go to
OpenTelemetry's no-op provider.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from shared import allocator

T = TypeVar("T")

CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
EXPORTED_LOGGER = "seatsync"
events = logging.getLogger("seatsync.telemetry")

_run_id: ContextVar[str | None] = ContextVar("seatsync_run_id", default=None)
_tenant_id: ContextVar[str | None] = ContextVar("seatsync_tenant_id", default=None)
_tally: ContextVar[HttpTally | None] = ContextVar("seatsync_http_tally", default=None)
_lock = threading.Lock()
_configured = False
_factory_installed = False
_meter_provider: Any = None


@dataclass
class ServiceCounts:
    calls: int = 0
    throttled: int = 0
    retries: int = 0


@dataclass
class HttpTally:
    """Requests, 429s and retries per service during one activity (thread-safe)."""

    services: dict[str, ServiceCounts] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, service: str, *, throttled: bool = False, retry: bool = False) -> None:
        with self._lock:
            counts = self.services.setdefault(service, ServiceCounts())
            if throttled:
                counts.throttled += 1
            else:
                counts.calls += 1
                counts.retries += int(retry)

    def add_retries(self, service: str, retries: int) -> None:
        with self._lock:
            self.services.setdefault(service, ServiceCounts()).retries += retries

    def total(self, what: str) -> int:
        with self._lock:
            return sum(getattr(c, what) for c in self.services.values())


def current_tally() -> HttpTally | None:
    """The tally of the running activity; HTTP clients made during it count into it."""
    return _tally.get()


def _install_record_factory() -> None:
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if not hasattr(record, "runId"):
                record.runId = _run_id.get()
            if not hasattr(record, "tenantId"):
                record.tenantId = _tenant_id.get()
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


AUTHENTICATION_SETTING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"


def managed_identity_client(environment: Mapping[str, str]) -> str | None:
    """The user-assigned identity's client id when ingestion must use Entra ID
    (``ClientId=<id>;Authorization=AAD``: the Application Insights resource refuses local auth)."""
    parts = dict(part.split("=", 1) for part in environment.get(AUTHENTICATION_SETTING, "").split(";") if "=" in part)
    return parts.get("ClientId") if parts.get("Authorization", "").upper() == "AAD" else None


def _azure_monitor(environment: Mapping[str, str]) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor  # the distribution: imported on first use

    credential = None
    client_id = managed_identity_client(environment)
    if client_id:
        from azure.identity import ManagedIdentityCredential

        credential = ManagedIdentityCredential(client_id=client_id)
    off = {"enabled": False}
    libraries = ("azure_sdk", "django", "fastapi", "flask", "psycopg2", "requests", "urllib", "urllib3")
    configure_azure_monitor(connection_string=environment[CONNECTION_SETTING], credential=credential,
                            logger_name=EXPORTED_LOGGER, enable_live_metrics=False,
                            instrumentation_options=dict.fromkeys(libraries, off))


def configure(environment: Mapping[str, str],
              setup: Callable[[Mapping[str, str]], None] = _azure_monitor) -> bool:
    """Send telemetry to Application Insights when its connection string is set (once per
    process); True when it is configured."""
    global _configured
    _install_record_factory()
    with _lock:
        if _configured or not environment.get(CONNECTION_SETTING):
            return _configured
        setup(environment)
        logging.getLogger(EXPORTED_LOGGER).setLevel(logging.INFO)  # the events are INFO records
        _configured = True
        return True


def use_meter_provider(provider: Any) -> None:
    """Record metrics with ``provider`` instead of OpenTelemetry's global one (tests)."""
    global _meter_provider
    _meter_provider = provider


_instruments: dict[tuple[int, str], Any] = {}


def _counter(name: str, unit: str, description: str, signed: bool) -> Any:
    from opentelemetry import metrics

    provider = _meter_provider or metrics.get_meter_provider()
    key = (id(provider), name)
    with _lock:
        if key not in _instruments:
            meter = provider.get_meter("seatsync")
            create = meter.create_up_down_counter if signed else meter.create_counter
            _instruments[key] = create(name, unit=unit, description=description)
        return _instruments[key]


def _add(name: str, value: int | float, unit: str, attributes: dict[str, str], description: str,
         signed: bool = False) -> None:
    """Add to a counter (``signed``: one that also goes down, like money credited)."""
    if value:
        _counter(name, unit, description, signed).add(value, attributes)


def _emit(message: str, run_id: str, tenant_id: str | None, fields: dict[str, Any]) -> None:
    """One telemetry event; its run and tenant come from the context, as every record's do."""
    _install_record_factory()
    tokens = (_run_id.set(run_id), _tenant_id.set(tenant_id))
    try:
        events.info(message, extra={"event": message, **fields})
    finally:
        _tenant_id.reset(tokens[1])
        _run_id.reset(tokens[0])


@contextlib.contextmanager
def activity(run_id: str | None, tenant_id: str | None = None) -> Iterator[HttpTally]:
    """Within an activity: its run and tenant on every log record, and a tally of its HTTP calls.
    When it ends, what the C allocator freed goes back to the system (``allocator.release``)."""
    _install_record_factory()
    tally = HttpTally()
    tokens = (_run_id.set(run_id), _tenant_id.set(tenant_id), _tally.set(tally))
    try:
        yield tally
    finally:
        _tally.reset(tokens[2])
        _tenant_id.reset(tokens[1])
        _run_id.reset(tokens[0])
        allocator.release()


class ContextThreadPool(ThreadPoolExecutor):
    """A thread pool whose tasks run in a copy of the submitting thread's context: a worker's log
    records keep the activity's ``runId`` and ``tenantId``, and its HTTP calls count in the
    activity's tally (a plain pool's threads start with empty context variables)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        context = contextvars.copy_context()  # one copy per task: a context runs in one thread at a time
        return super().submit(context.run, fn, *args, **kwargs)


def set_tenant(tenant_id: str | None) -> None:
    """Within a push activity, the tenant being planned and written now (``activity`` restores
    the activity's own when it ends)."""
    _tenant_id.set(tenant_id)


def _http_metrics(run_id: str, tally: HttpTally) -> dict[str, int]:
    fields: dict[str, int] = {}
    for service, counts in sorted(tally.services.items()):
        attributes = {"runId": run_id, "service": service}
        _add("seatsync.http.calls", counts.calls, "{request}", attributes, "HTTP requests sent, retries included")
        _add("seatsync.http.throttled", counts.throttled, "{response}", attributes, "HTTP 429 answers")
        _add("seatsync.http.retries", counts.retries, "{request}", attributes, "HTTP requests sent again")
    fields["httpCalls"] = tally.total("calls")
    fields["throttled"] = tally.total("throttled")
    fields["retries"] = tally.total("retries")
    return fields


def tenant_collected(run_id: str, tenant_id: str, status: str, graph_calls: int, tally: HttpTally) -> None:
    fields = _http_metrics(run_id, tally)
    attributes = {"runId": run_id}
    _add("seatsync.graph.calls", graph_calls, "{request}", attributes, "Microsoft Graph requests")
    _emit("tenant collected", run_id, tenant_id, {"status": status, "graphCalls": graph_calls, **fields})


def tenants_pushed(run_id: str, tenants: list[str], applied: int, held: int, deferred: int, failed: int,
                   prorated: Decimal, recurring: Decimal, psa_calls: int, dry_run: bool, tally: HttpTally) -> None:
    """One push activity's figures. ``prorated``: the prorated charges and credits written;
    ``recurring``: the change of the recurring charges (units changed times the unit price)."""
    fields = _http_metrics(run_id, tally)
    attributes = {"runId": run_id}
    _add("seatsync.psa.calls", psa_calls, "{request}", attributes, "PSA requests")
    _add("seatsync.changes.applied", applied, "{change}", attributes, "changes written to the PSA")
    _add("seatsync.changes.held", held, "{change}", attributes, "decreases held for approval")
    _add("seatsync.changes.deferred", deferred, "{change}", attributes, "decreases deferred to a renewal")
    _add("seatsync.changes.failed", failed, "{change}", attributes, "writes that failed")
    _add("seatsync.money.prorated", float(prorated), "{currency}", attributes,
         "prorated charges and credits written (telemetry only: billing keeps Decimal)", signed=True)
    _add("seatsync.money.recurring", float(recurring), "{currency}", attributes,
         "change of the recurring charges written: units changed times the unit price", signed=True)
    _emit("tenants pushed", run_id, ",".join(tenants)[:8000], {
        "tenants": len(tenants), "applied": applied, "held": held, "deferred": deferred, "failed": failed,
        "prorated": str(prorated), "recurring": str(recurring), "psaCalls": psa_calls, "dryRun": dry_run, **fields})


def run_started(run_id: str, trigger: str, dry_run: bool, tenants: int) -> None:
    _emit("run started", run_id, None, {"trigger": trigger, "dryRun": dry_run, "tenants": tenants})


def run_finished(summary: Any) -> None:
    """The run's totals (a ``RunSummary``), as one event and as metrics."""
    attributes = {"runId": summary.run_id, "status": summary.status}
    _add("seatsync.tenants.synced", summary.tenants_ok, "{tenant}", attributes, "tenants synced")
    _add("seatsync.tenants.failed", summary.tenants_failed, "{tenant}", attributes, "tenants not synced")
    _add("seatsync.runs", 1, "{run}", attributes, "runs finished")
    _emit("run finished", summary.run_id, None, {
        "status": summary.status, "dryRun": summary.dry_run,
        "trigger": summary.trigger, "tenantsTotal": summary.tenants_total, "tenantsSynced": summary.tenants_ok,
        "tenantsFailed": summary.tenants_failed, "changesApplied": summary.changes_applied,
        "changesHeld": summary.changes_held, "changesDeferred": summary.changes_deferred,
        "changesFailed": summary.changes_failed, "graphCalls": summary.graph_calls,
        "psaCalls": summary.psa_calls, "error": summary.error or ""})
