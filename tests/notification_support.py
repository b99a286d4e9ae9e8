"""What tests of notifications share: walking an Adaptive Card, and the card the built-in
sample run renders to (the unit tests render it, the integration tests read it back from the
webhook receiver)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.contracts import SyncRequest, TenantOutcome

if TYPE_CHECKING:
    from shared.bootstrap import Services
    from shared.notifications.alerts import RunData


def texts(node: Any) -> list[str]:
    """Every TextBlock text and fact of a card, in order."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "TextBlock":
            found.append(node["text"])
        if node.get("type") == "FactSet":
            found += [f"{f['title']} | {f['value']}" for f in node["facts"]]
        for value in node.values():
            if isinstance(value, list | dict):
                found += texts(value)
    elif isinstance(node, list):
        for value in node:
            found += texts(value)
    return found


def buttons(node: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if node.get("type") == "Action.OpenUrl":
            found.append((node["title"], node["url"]))
        for value in node.values():
            if isinstance(value, list | dict):
                found += buttons(value)
    elif isinstance(node, list):
        for value in node:
            found += buttons(value)
    return found


def expected_sample_card(run: str) -> list[str]:
    """The texts, in order, of the card for ``shared.notifications.sample``'s run."""
    return [
        "SeatSync: run partly failed, 8 alerts",
        f"25 Nov 2026 02:05 UTC · run {run} · partial",
        "Run partly failed: 1 of 3 tenants",
        f"Run | {run}", "Status | partial", "Tenants failed | Northwind Traders (AADSTS700016)",
        f"See what failed: seatsync report {run}",
        "Tenants SeatSync cannot sign in to (1)",
        "Northwind Traders | AADSTS700016: The SeatSync app is not consented in this tenant: a Global "
        "Administrator of the customer grants admin consent.",
        "Nothing is read or billed for these tenants until this is fixed.",
        "Billing problems (1)",
        "Fabrikam Ltd | Microsoft 365 Business Premium: 1 user holds it but matches no company's user filter: "
        "nobody bills them. Give the tenant a catch-all company (catchAll: true), …",
        "Each item says what to do. Until it is fixed SeatSync writes nothing for a line it cannot decide.",
        "Changes held for approval (1)",
        "Adatum Corp | Microsoft 365 Business Premium: 25 → 18 (decrease of 7 seats (28%) is above the 20% "
        "safety limit)",
        "Approve or dismiss them: seatsync approvals list",
        "Licences with no billing mapping (1)",
        "Fabrikam Ltd | Power BI Pro: 2 purchased, 2 assigned (new)",
        "Map each to a billing profile, or exclude it: seatsync unlinked",
        "Unused licences (1)",
        "Fabrikam Ltd | Microsoft 365 Business Premium: 3 of 25 unused, 66.00 USD a month",
        "Assign them, or reduce the subscription (NCE: at its renewal).",
        "Shared mailboxes holding a licence (1)",
        "Fabrikam Ltd | info@fabrikam.example: Exchange Online (Plan 1)",
        "A shared mailbox needs no licence unless it is over 50 GB or has an archive: remove the licence or "
        "confirm it is needed.",
        "GDAP customers not yet in SeatSync (1)",
        "Contoso Retail | in GDAP, not configured",
        "Add them to the configuration (seatsync config export, add the tenant, seatsync config import), or "
        "exclude them from this alert.",
        "Configured tenants GDAP no longer lists (1)",
        "Northwind Traders | configured, not in GDAP's customer list",
        "Renew the GDAP relationship, or, if the customer left, remove the tenant from the configuration; its "
        "billing is not changed until a person decides.",
        "Run partial: 2 changes applied, 1 billing problem",
        "Status | partial", "Tenants | 2 of 3 synced", "Tenants failed | 1", "Changes applied | 2",
        "Held for approval | 1", "Deferred | 0", "Changes failed | 0", "Lines unchanged | 5",
        "Billing problems | 1 (users unmatched: 1)", "Open alerts | 8",
        f"The whole report: seatsync report {run}",
    ]


def store_run(services: Services, data: RunData) -> str:
    """Write a run as the sync does: request, start, outcomes, changes, lines, snapshots, summary."""
    runs, summary = services.runs, data.summary
    runs.start(SyncRequest(run_id=data.run_id, trigger=summary.trigger, requested_by=summary.requested_by,
                           requested_at=summary.started_at, dry_run=summary.dry_run))
    assert data.started is not None
    runs.record_started(data.started)
    for row in data.tenants:
        outcome = row.outcome
        assert outcome is not None
        runs.record_tenant(data.run_id, TenantOutcome(
            tenant_id=row.tenant_id, name=row.name, status=outcome.status, error=outcome.error,
            error_code=outcome.error_code, partner=outcome.partner))
        if row.problems:
            runs.record_problems(data.run_id, row.tenant_id, list(row.problems))
    runs.record_changes(data.run_id, [c for c, _ in data.changes])
    tenants = {r.tenant_id for r in data.reconciliation} | {u.tenant_id for u in data.unlinked}
    for tenant in sorted(tenants):
        runs.record_reconciliation(data.run_id, tenant, [r for r in data.reconciliation if r.tenant_id == tenant],
                                   [u for u in data.unlinked if u.tenant_id == tenant])
    for snapshot in data.snapshots.values():
        services.snapshots.save(snapshot)
    runs.finish(summary)
    return data.run_id
