"""The messages that pass between the triggers, the orchestrator and the activities.

They are validated models at the edge: Durable Functions stores them in the orchestration
history as JSON, so they stay small (counts and ids; bulk data lives in Table Storage).
"""

from __future__ import annotations

import re
import secrets
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from shared.config.base import share_given_fields
from shared.config.schema import GUID_PATTERN
from shared.functions import SYNC_INSTANCE_ID as SYNC_INSTANCE_ID

_RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


def new_run_id(now: datetime) -> str:
    """Sortable by time, unique: ``20261125T020000Z-1a2b3c4d``."""
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel,
                              cache_strings="keys")
    """``cache_strings="keys"``: see ``shared.config.base.Model`` (a run's thousands of tenants'
    ids and names are read from JSON by every process of the run)."""

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True)


Trigger = Literal["timer", "manual", "local"]


class SyncRequest(Message):
    run_id: str
    trigger: Trigger
    requested_by: str
    requested_at: datetime
    dry_run: bool = False
    tenants: list[str] | None = Field(default=None, description="None: every enabled tenant")

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str) -> str:
        if not _RUN_ID.match(value):
            raise ValueError(f"'{value}' is not a run id")
        return value

    @classmethod
    def started_with(cls, orchestration_input: Any) -> SyncRequest | None:
        """The request a sync orchestration was started with (its Durable status's ``input_``,
        JSON text or already parsed), or None when it is not one: names a run that has not yet
        recorded itself."""
        try:
            if isinstance(orchestration_input, str | bytes):
                return cls.model_validate_json(orchestration_input)
            return cls.model_validate(orchestration_input)
        except ValueError:
            return None


class TenantWork(Message):
    """One tenant a run set out to collect and push. Frozen: every process of a run keeps the
    run's list of them (``Services.started``), so they share their sets of given fields."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str = Field(pattern=GUID_PATTERN)
    name: str
    group_ids: tuple[str, ...] = Field(default=(), description="groups custom licences count")
    mailboxes: bool = False
    managed_devices: bool = False
    sign_ins: bool = Field(default=False, description="read the users' sign-ins (the inactive-users alert)")
    partner: str | None = Field(default=None, description="the partner account the tenant is read through")
    standing: str | None = Field(
        default=None, description="ok, consent, vanished, ended, roles-missing, unknown (shared.domain.lifecycle)")
    guard: str | None = Field(default=None, description="why the tenant's decreases are held for a person")

    @field_validator("partner", "standing")
    @classmethod
    def _one_string_each(cls, value: str | None) -> str | None:
        """A few partner accounts and standings among thousands of tenants: one string each."""
        return sys.intern(value) if value else value

    def model_post_init(self, context: Any, /) -> None:
        share_given_fields(self)


class EndingRelationshipNote(Message):
    """A configured tenant's GDAP relationship that ends soon and does not extend itself."""

    tenant_id: str
    name: str
    partner: str
    relationship: str
    end: datetime
    days_left: int


class StartRun(Message):
    """What the orchestrator asks ``start_run`` from version 3 on (version 2 sends the
    ``SyncRequest`` alone): with ``fan_out``, a run of more tenants than a chunk holds keeps its
    tenants in Table Storage and answers only their number, so that the orchestration's history
    stays small whatever the number of tenants."""

    request: SyncRequest
    fan_out: bool = True


class FanOut(Message):
    """How the orchestrator spreads a run (from the app settings, read by ``start_run``, so that
    a replay takes the same path): tenants per sub-orchestration, sub-orchestrations at once, and
    how long a push activity may work before it hands the rest of its tenants back."""

    chunk_size: int = Field(ge=1)
    parallel_chunks: int = Field(ge=1)
    activity_seconds: int = Field(ge=30)


class StartedRun(Message):
    """What a run set out to do. Its tenants are kept in rows of their own, one a tenant in the
    run's order, as the start makes them (``tenants_stored``; ``RunRepository.iter_started_tenants``
    reads them a range at a time), so that no process holds every tenant of a large run: the
    record holds their number, the guarded ones and the GDAP comparison. ``tenants`` lists them
    in the start's answer to a run of one chunk or less, and in the records of runs started
    before they were kept in rows."""

    run_id: str
    tenants: list[TenantWork]
    gdap_not_configured: list[TenantWork] = Field(
        default_factory=list, description="GDAP customers with no configuration yet")
    configured_not_in_gdap: list[TenantWork] = Field(
        default_factory=list, description="configured tenants GDAP no longer lists")
    gdap_error: str | None = None
    graph_calls: int = 0
    refused: str | None = Field(default=None, description="why the run could not start (another runs)")
    took_over: str | None = Field(default=None, description="a dead run whose lease this run took over, and why")
    relationships_ending: list[EndingRelationshipNote] = Field(
        default_factory=list, description="GDAP relationships of configured tenants that end soon")
    partner_errors: dict[str, str] = Field(
        default_factory=dict, description="partner accounts whose GDAP listing could not be read, and why")

    tenants_total: int = Field(default=0, description="tenants of the run, listed in ``tenants`` or stored in rows")
    chunks: int = Field(default=0, description="chunks of tenants stored for sub-orchestrations (0: listed)")
    fan_out: FanOut | None = None
    tenants_stored: bool = Field(
        default=False, description="the tenants are in rows of their own (``RunRepository.iter_started_tenants``)")
    guarded_tenants: list[TenantWork] = Field(
        default_factory=list, description="the tenants whose decreases are held, when the tenants are stored")

    def guarded(self) -> list[TenantWork]:
        """The tenants whose decreases are held for a person this run."""
        if self.tenants_stored:
            return list(self.guarded_tenants)
        return [t for t in self.tenants if t.guard]

    @property
    def total(self) -> int:
        return self.tenants_total or len(self.tenants)


class ChunkRequest(Message):
    """One chunk of a large run's tenants, for a sub-orchestration (``step`` collect or push) and
    for the activity that reads the chunk's tenants. ``skip``: positions in the chunk not to push
    (their collection failed)."""

    run_id: str
    chunk: int = Field(ge=0)
    chunk_size: int = Field(ge=1)
    step: Literal["collect", "push"] = "collect"
    dry_run: bool = False
    skip: list[int] = Field(default_factory=list)
    activity_seconds: int | None = None


class CollectTotals(Message):
    """What a collection of tenants came to: tenants, how many were read, the positions (in their
    chunk) of those that were not, and the Graph requests."""

    tenants: int = 0
    collected: int = 0
    failed: list[int] = Field(default_factory=list)
    graph_calls: int = 0


class CollectRequest(Message):
    """What to read from one tenant: licences, users and subscriptions always; groups, the mailbox
    report and Intune devices only when the tenant's custom licences (or alerts) need them."""

    run_id: str
    tenant_id: str
    name: str
    group_ids: list[str] = Field(default_factory=list)
    mailboxes: bool = False
    managed_devices: bool = False
    sign_ins: bool = False
    partner: str | None = Field(default=None, description="the partner account whose app reads the tenant "
                                                          "(None: the app settings' account)")


TenantStatus = Literal["ok", "failed", "auth-failed"]


class TenantOutcome(Message):
    tenant_id: str
    name: str
    status: TenantStatus
    error: str | None = None
    error_code: str | None = None
    sku_count: int = 0
    user_count: int = 0
    graph_calls: int = 0
    warnings: list[str] = Field(default_factory=list)
    partner: str | None = Field(default=None, description="the partner account the tenant was read through")
    sign_ins_unavailable: str | None = Field(
        default=None, description="why the users' sign-ins could not be read (not a failure of the tenant)")


class PushRequest(Message):
    run_id: str
    tenant_ids: list[str]
    dry_run: bool = False
    activity_seconds: int | None = Field(
        default=None, description="how long the push may work; the tenants it did not start are handed back")


class PushSummary(Message):
    tenants: int = 0
    planned: int = 0
    applied: int = 0
    dry_run: int = 0
    failed: int = 0
    held: int = 0
    deferred: int = 0
    rejected: int = 0
    unchanged: int = 0
    problems: int = 0
    problems_by_kind: dict[str, int] = Field(default_factory=dict)
    problems_excluded: int = Field(default=0, description="problems whose alerts an exclusion covers")
    psa_calls: int = 0
    prorated_amount: Decimal = Field(default=Decimal(0), description="prorated charges and credits written")
    recurring_change: Decimal = Field(default=Decimal(0),
                                      description="recurring charges changed: units changed times the unit price")
    recovered: int = Field(default=0, description="writes of earlier attempts found in the PSA and recorded")
    not_written: int = Field(default=0, description="open write intents the PSA does not hold (planned again)")
    tenants_failed: list[str] = Field(default_factory=list, description="tenants whose PSA state was not read")
    tenants_unwritten: list[str] = Field(
        default_factory=list, description="tenants with changes to write of which none could be written")
    tenants_left: list[str] = Field(
        default_factory=list, description="tenants not started before the activity's deadline: pushed by another")

    @classmethod
    def merged(cls, summaries: list[PushSummary]) -> PushSummary:
        """The sum of several pushes (a sub-orchestration's, for its parent's history)."""
        total = cls()
        for push in summaries:
            for name in ("tenants", "planned", "applied", "dry_run", "failed", "held", "deferred", "rejected",
                         "unchanged", "problems", "problems_excluded", "psa_calls", "prorated_amount",
                         "recurring_change", "recovered", "not_written"):
                setattr(total, name, getattr(total, name) + getattr(push, name))
            for kind, count in push.problems_by_kind.items():
                total.problems_by_kind[kind] = total.problems_by_kind.get(kind, 0) + count
            total.tenants_failed += push.tenants_failed
            total.tenants_unwritten += push.tenants_unwritten
            total.tenants_left += push.tenants_left
        return total

    def count_problems(self, kinds: dict[str, int], excluded: int) -> None:
        self.problems += sum(kinds.values())
        self.problems_excluded += excluded
        for kind, count in kinds.items():
            self.problems_by_kind[kind] = self.problems_by_kind.get(kind, 0) + count


RunStatus = Literal["running", "succeeded", "attention", "partial", "failed", "died"]
"""``succeeded``: everything synced and no billing problem; ``attention``: everything that could
be synced was, but billing problems need a person; ``partial``: some tenants or changes failed;
``failed``: the run stopped, or no tenant could be collected or pushed; ``died``: the run ended
without finishing (its process or orchestration stopped: never in a summary, the report says
it). Exit codes: 0, 1, 1, 2, 2."""

RunPhase = Literal["starting", "collecting", "pushing", "finishing", "notifying", "finished", "failed"]


class RunProgress(Message):
    """How far a running sync is: the orchestrator's Durable custom status, set as each group of
    tenants is collected or pushed, and returned with the run by ``GET /api/runs/{runId}``.

    ``tenants_collected`` counts tenants whose collection finished (read or failed);
    ``tenants_pushed`` counts collected tenants whose PSA push finished, out of
    ``tenants_to_push``; ``tenants_failed`` counts tenants that failed so far, in either step.
    ``failed`` with ``error`` is the last status of an orchestration that could not record its
    run (Table Storage unreachable as it finished): the one place that says why.
    """

    run_id: str
    phase: RunPhase
    dry_run: bool = False
    tenants_total: int = 0
    tenants_collected: int = 0
    tenants_to_push: int = 0
    tenants_pushed: int = 0
    tenants_failed: int = 0
    changes_applied: int = 0
    changes_held: int = 0
    changes_deferred: int = 0
    changes_failed: int = 0
    error: str | None = None


class RunSummary(Message):
    run_id: str
    status: RunStatus
    dry_run: bool
    trigger: Trigger
    requested_by: str
    started_at: datetime
    finished_at: datetime | None = None
    tenants_total: int = 0
    tenants_ok: int = 0
    tenants_failed: int = 0
    changes_planned: int = 0
    changes_applied: int = 0
    changes_dry_run: int = 0
    changes_failed: int = 0
    changes_held: int = 0
    changes_deferred: int = 0
    changes_rejected: int = 0
    changes_recovered: int = 0
    lines_unchanged: int = 0
    problems: int = 0
    problems_by_kind: dict[str, int] = Field(default_factory=dict)
    problems_excluded: int = 0
    graph_calls: int = 0
    psa_calls: int = 0
    error: str | None = None
    gdap_error: str | None = None

    @property
    def problems_open(self) -> int:
        """Billing problems no alert exclusion acknowledges: they make a run need attention."""
        return max(self.problems - self.problems_excluded, 0)


def run_status(*, error: str | None, tenants: int, collected: int, pushed: int, failed_tenants: int,
               failed_changes: int, gdap_error: str | None, open_problems: int) -> RunStatus:
    """The status of a finished run (see ``RunStatus``): it is only ``succeeded`` when nothing
    failed and no billing problem waits for a person. A run in which tenants were collected but
    none could be pushed (the PSA down, its credentials refused) failed."""
    if error is not None or (tenants and not collected) or (collected and not pushed):
        return "failed"
    if failed_tenants or failed_changes or gdap_error:
        return "partial"
    if open_problems:
        return "attention"
    return "succeeded"


def summarize(request: SyncRequest, outcomes: list[TenantOutcome], pushes: list[PushSummary],
              extra_graph_calls: int, finished_at: datetime, error: str | None = None,
              gdap_error: str | None = None) -> RunSummary:
    """Totals of a run. Pure: the orchestrator calls it on small summaries."""
    totals = CollectTotals(tenants=len(outcomes), collected=sum(1 for o in outcomes if o.status == "ok"),
                           graph_calls=sum(o.graph_calls for o in outcomes))
    return summarize_totals(request, totals, pushes, extra_graph_calls, finished_at, error, gdap_error)


def summarize_totals(request: SyncRequest, collected: CollectTotals, pushes: list[PushSummary],
                     extra_graph_calls: int, finished_at: datetime, error: str | None = None,
                     gdap_error: str | None = None) -> RunSummary:
    """Totals of a run from the totals of its collections (a large run's sub-orchestrations
    answer totals, not each tenant's outcome)."""
    ok, tenants = collected.collected, collected.tenants
    failed_changes = sum(p.failed for p in pushes)
    push_failed_tenants = {t for p in pushes for t in p.tenants_failed}
    unwritten = {t for p in pushes for t in p.tenants_unwritten} - push_failed_tenants
    tenants_failed = tenants - ok + len(push_failed_tenants)
    problems = sum(p.problems for p in pushes)
    excluded = sum(p.problems_excluded for p in pushes)
    by_kind: dict[str, int] = {}
    for push in pushes:
        for kind, count in push.problems_by_kind.items():
            by_kind[kind] = by_kind.get(kind, 0) + count
    pushed = ok - len(push_failed_tenants) - len(unwritten)
    status = run_status(error=error, tenants=tenants, collected=ok, pushed=pushed,
                        failed_tenants=tenants_failed, failed_changes=failed_changes, gdap_error=gdap_error,
                        open_problems=problems - excluded)
    return RunSummary(
        run_id=request.run_id, status=status, dry_run=request.dry_run, trigger=request.trigger,
        requested_by=request.requested_by, started_at=request.requested_at, finished_at=finished_at,
        tenants_total=tenants, tenants_ok=ok - len(push_failed_tenants),
        tenants_failed=tenants_failed,
        changes_planned=sum(p.planned for p in pushes),
        changes_applied=sum(p.applied for p in pushes),
        changes_dry_run=sum(p.dry_run for p in pushes),
        changes_failed=failed_changes,
        changes_held=sum(p.held for p in pushes),
        changes_deferred=sum(p.deferred for p in pushes),
        changes_rejected=sum(p.rejected for p in pushes),
        changes_recovered=sum(p.recovered for p in pushes),
        lines_unchanged=sum(p.unchanged for p in pushes),
        problems=problems,
        problems_by_kind=dict(sorted(by_kind.items())),
        problems_excluded=excluded,
        graph_calls=extra_graph_calls + collected.graph_calls,
        psa_calls=sum(p.psa_calls for p in pushes),
        error=error,
        gdap_error=gdap_error,
    )
