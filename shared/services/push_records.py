"""What a push records of its tenants that no PSA write depends on, written for the whole batch.

A push plans and writes a batch of tenants. Some of what it records of each tenant is the
material of the run's report, dashboard and history, and nothing about a PSA write waits for it:
the plan's problems, the reconciliation of its licences (and their billing history), its
licence facts (margins), the changes of a tenant that has nothing to write (held, deferred, dry
run) and the tenant's latest billable licences. Those rows share a partition across the batch
(the run's, or the single ``tenants`` partition of the latest licences), so they are held here
until the batch ends and then written in a few entity group transactions instead of a few
requests per tenant.

The write-intent bookkeeping is never held here: a write's intent is stored before its PSA call
and the write is recorded (ledger, change, audit) right after the tenant's read-back, as before.
A push that fails part-way still records what it holds for the tenants it finished (one try,
without waiting on storage); its retry, which plans those tenants again, writes them anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from shared.adapters.margin_store import MarginRepository
from shared.adapters.run_store import ReconciliationRow, RunRepository, UnlinkedLicence
from shared.adapters.snapshot_store import LatestLicences, SnapshotRepository
from shared.domain.model import PlannedChange
from shared.domain.problems import Problem
from shared.domain.reconciliation import LicenceFacts

log = logging.getLogger(__name__)
T = TypeVar("T")
Keep = Callable[[str, Callable[[], T]], T]


def at_once(what: str, operation: Callable[[], T]) -> T:
    """A storage operation tried once (the ``Keep`` of a push already failing)."""
    return operation()


@dataclass
class PushRecords:
    """A push's records of its tenants, by tenant (a tenant pushed again in the batch replaces
    its own), until ``write``."""

    run_id: str
    problems: dict[str, tuple[list[Problem], str | None]] = field(default_factory=dict)
    reconciliations: dict[str, tuple[list[ReconciliationRow], list[UnlinkedLicence]]] = field(default_factory=dict)
    facts: dict[str, list[LicenceFacts]] = field(default_factory=dict)
    changes: dict[str, list[PlannedChange]] = field(default_factory=dict)
    licences: dict[str, LatestLicences] = field(default_factory=dict)

    def problem(self, tenant_id: str, problems: list[Problem], push_error: str | None = None) -> None:
        self.problems[tenant_id] = (problems, push_error)

    def write(self, keep: Keep[None], runs: RunRepository, snapshots: SnapshotRepository,
              margins: MarginRepository | None) -> None:
        """Store what is held, a few transactions a kind, and forget it: the latest licences, the
        changes, the reconciliations and their billing history, the licence facts, and last each
        tenant's problems (its row of the run's report)."""
        run_id = self.run_id
        if self.licences:
            licences = list(self.licences.values())
            keep("the tenants' latest licences", lambda: snapshots.record_latest_licences(licences))
        if self.changes:
            changes = [change for found in self.changes.values() for change in found]
            if changes:
                keep("the planned changes", lambda: runs.record_changes(run_id, changes))
        if self.reconciliations:
            reconciled = [(tenant, rows, unlinked) for tenant, (rows, unlinked) in self.reconciliations.items()]
            keep("the tenants' licences", lambda: runs.record_reconciliations(run_id, reconciled))
        if self.facts and margins is not None:
            facts = list(self.facts.items())
            keep("the tenants' margins", lambda: margins.record_many(run_id, facts))
        if self.problems:
            problems = [(tenant, found, error) for tenant, (found, error) in self.problems.items()]
            keep("the tenants' problems", lambda: runs.record_problems_of(run_id, problems))
        self.problems, self.reconciliations, self.facts, self.changes, self.licences = {}, {}, {}, {}, {}

    def write_after_failure(self, runs: RunRepository, snapshots: SnapshotRepository,
                            margins: MarginRepository | None) -> None:
        """``write``, once, for a push that is failing: what the finished tenants showed is kept
        when storage answers; when it does not, the push's own failure is what is raised (its
        retry plans the tenants again)."""
        try:
            self.write(at_once, runs, snapshots, margins)
        except Exception as exc:
            log.warning("the records of %d tenants of a failing push could not be stored (%s: %s); its retry "
                        "records them", len(self.problems), type(exc).__name__, exc)
