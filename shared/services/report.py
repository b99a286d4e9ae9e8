"""The run report: what a run did, per tenant and per change, as JSON and as readable text.

Built from what the run stored (runs, tenant outcomes, changes), so the same report can be
produced after the fact for any run, by the CLI or an HTTP endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.margin_store import MarginRepository
from shared.adapters.run_store import RunRepository, UnlinkedLicence
from shared.adapters.source_store import SourceRepository
from shared.config.partners import DEFAULT_PARTNER
from shared.config.schema import SeatSyncConfig
from shared.contracts import RunSummary, StartedRun, SyncRequest, TenantWork
from shared.domain.model import ChangeStatus, PlannedChange
from shared.domain.problems import problem_to_json
from shared.domain.sku_names import sku_display_name
from shared.errors import NotFoundError
from shared.services.lease import liveness
from shared.services.reconcile import render_sections, run_reconciliation, run_reconciliation_summary
from shared.services.reconcile import to_json as reconciliation_json
from shared.text import short, table


class ReportError(NotFoundError):
    """No such run."""


def starting_report(started: SyncRequest | None, run_id: str) -> dict[str, Any] | None:
    """The report of run ``run_id`` when the running orchestration was started for it (``started``,
    its input) but the run has not recorded itself yet (its first activity has not run): shown as
    running, so that the caller who was just given the run id follows it instead of hearing that
    no such run exists. None when the orchestration is not this run's."""
    if started is None or started.run_id != run_id:
        return None
    return {"runId": run_id, "status": "running", "dryRun": started.dry_run, "trigger": started.trigger,
            "requestedBy": started.requested_by, "startedAt": started.requested_at.isoformat(), "finishedAt": None,
            "error": None, "totals": None, "changes": [], "tenants": [], "unlinked": []}


def build_report(runs: RunRepository, run_id: str, config: SeatSyncConfig | None = None,
                 margins: MarginRepository | None = None, sources: SourceRepository | None = None) -> dict[str, Any]:
    """The run's report; with ``margins`` and ``sources`` (and the configuration) it also has the
    subscription sources' status and the reconciliation of purchased, assigned and billed seats
    with cost and margin. The whole document, every tenant and change in it: what the JSON
    forms give. The text report of a large run is made without it (``report_text``)."""
    head, started = _recorded_head(runs, run_id)
    names = tenant_names(config)
    tenants = sorted(tenant_entries(runs, run_id, names, started), key=tenant_order(names))
    problems = [{**p, "tenantName": t["name"]} for t in tenants for p in t["problems"]]
    changes = sorted(change_entries(runs, run_id, names), key=change_order)
    reconciliation, unlinked = runs.reconciliation(run_id)
    return {
        **head,
        "tenants": tenants,
        "changes": changes,
        "problems": problems,
        "unlinked": [unlinked_entry(u) for u in unlinked],
        "licences": [{"tenantId": r.tenant_id, "tenantName": r.tenant_name, "licence": r.label, "source": r.source,
                      "psa": r.psa, "companyId": r.company_id, "agreementId": r.agreement_id, "lineId": r.line_id,
                      "purchased": r.purchased, "counted": r.counted, "billedBefore": r.billed_before,
                      "target": r.target, "unitPrice": None if r.unit_price is None else str(r.unit_price)}
                     for r in reconciliation],
        **_run_sections(runs, run_id, config, margins, sources, started),
    }


def _run_sections(runs: RunRepository, run_id: str, config: SeatSyncConfig | None, margins: MarginRepository | None,
                  sources: SourceRepository | None, started: StartedRun | None,
                  money_summary: bool = False) -> dict[str, Any]:
    """The report's parts that are about the run as a whole: sources, money, GDAP. With
    ``money_summary`` (a large run's text report) the reconciliation is its totals and counts."""
    return {
        "sources": ([s.to_json() for s in sources.statuses(run_id, [c.name for c in config.subscription_sources])]
                    if sources is not None and config is not None else []),
        "reconciliation": (None if margins is None or config is None
                           else run_reconciliation_summary(runs, margins, run_id, config) if money_summary
                           else reconciliation_json(run_reconciliation(runs, margins, run_id, config))),
        "gdap": {
            "notConfigured": [t.to_json() for t in started.gdap_not_configured] if started else [],
            "configuredNotInGdap": [t.to_json() for t in started.configured_not_in_gdap] if started else [],
            "error": started.gdap_error if started else None,
            "partnerErrors": dict(started.partner_errors) if started else {},
            "guarded": [{"tenantId": t.tenant_id, "name": t.name, "partner": t.partner, "standing": t.standing,
                         "reason": t.guard} for t in started.guarded()] if started else [],
            "relationshipsEnding": [r.to_json() for r in started.relationships_ending] if started else [],
        },
    }


def run_page_report(runs: RunRepository, run_id: str, config: SeatSyncConfig | None = None) -> dict[str, Any]:
    """What the dashboard's run page shows, and nothing more: the heading, the tenants, the
    changes and the licences nobody bills (read from each tenant's stored list, not from its
    reconciliation). The reconciliation, the sources, the GDAP lists and the run's start record
    (hundreds of tenants' work) are left to ``build_report``, the API's whole report."""
    request = runs.request(run_id)
    if request is None:
        raise ReportError("runId", f"no run {run_id or '(none recorded yet)'} is recorded")
    head = _head(runs, run_id, request, runs.summary(run_id), None)
    names = tenant_names(config)
    return {**head, "tenants": sorted(tenant_entries(runs, run_id, names, None), key=tenant_order(names)),
            "changes": sorted(change_entries(runs, run_id, names), key=change_order),
            "unlinked": [unlinked_entry(u) for u in runs.unlinked(run_id)]}


def tenant_names(config: SeatSyncConfig | None) -> dict[str, str]:
    """Configured tenant names by tenant id: the report's order and the changes' tenant names."""
    return {t.tenant_id: t.name for t in (config.tenants if config else ())}


def tenant_order(names: dict[str, str]) -> Callable[[dict[str, Any]], str]:
    """The report's order of tenants: by configured name (a tenant no longer configured, by id)."""
    return lambda tenant: names.get(tenant["tenantId"], tenant["tenantId"])


def change_order(change: dict[str, Any]) -> tuple[str, str, str]:
    """The report's order of changes: by tenant name, licence and change id."""
    return change["tenantName"], change["skuId"], change["changeId"]


def tenant_entries(runs: RunRepository, run_id: str, names: dict[str, str], started: StartedRun | None,
                   page_size: int | None = None) -> Iterator[dict[str, Any]]:
    """The report's entry of each tenant of the run, in the store's order, read a page at a time.
    What the run set out to do with a tenant is its guard (the guarded ones are in the run's
    record) and, for a tenant with no outcome, its partner account: the run's tenants are read for
    that only when such a tenant is met (a collected tenant's outcome names its account)."""
    guarded = {t.tenant_id: t for t in started.guarded()} if started else {}
    works: dict[str, TenantWork] | None = None
    for row in runs.iter_tenant_rows(run_id, page_size):
        tenant_id, outcome = row["tenantId"], row["outcome"]
        work = guarded.get(tenant_id)
        if work is None and started is not None and not (outcome and outcome.partner):
            if works is None:
                works = {t.tenant_id: t for t in runs.iter_started_tenants(started)}
            work = works.get(tenant_id)
        yield tenant_entry(row, names, work)


def tenant_entry(row: dict[str, Any], names: dict[str, str], work: TenantWork | None) -> dict[str, Any]:
    """One tenant in the report: its outcome, push error and problems (``RunRepository.tenant_rows``),
    and what the run set out to do with it (``work``: its partner account and guard)."""
    outcome = row["outcome"]
    status = outcome.status if outcome else "not-collected"
    if outcome and outcome.status == "ok" and row["pushError"]:
        status = "push-failed"
    return {
        "tenantId": row["tenantId"],
        "name": outcome.name if outcome else names.get(row["tenantId"], ""),
        "status": status,
        "partner": (outcome.partner if outcome and outcome.partner else work.partner if work else None),
        "guard": work.guard if work else None,
        "signInsUnavailable": outcome.sign_ins_unavailable if outcome else None,
        "error": (outcome.error if outcome and outcome.error else row["pushError"]),
        "errorCode": outcome.error_code if outcome else None,
        "licences": outcome.sku_count if outcome and outcome.status == "ok" else None,
        "users": outcome.user_count if outcome and outcome.status == "ok" else None,
        "warnings": outcome.warnings if outcome else [],
        "problems": [problem_to_json(p) for p in row["problems"]],
    }


def change_entries(runs: RunRepository, run_id: str, names: dict[str, str],
                   page_size: int | None = None) -> Iterator[dict[str, Any]]:
    """The report's entry of each change of the run, in the store's order, read a page at a time."""
    for change, error in runs.iter_changes(run_id, page_size):
        yield change_entry(change, error, names)


def change_entry(change: PlannedChange, error: str | None, names: dict[str, str]) -> dict[str, Any]:
    return {
        "changeId": change.change_id,
        "kind": change.kind.value,
        "tenantId": change.tenant_id,
        "tenantName": names.get(change.tenant_id, ""),
        "skuId": change.sku_id,
        "licence": change.label or sku_display_name(change.sku_id),
        "psa": change.psa,
        "companyId": change.company_id,
        "agreementId": change.agreement_id,
        "additionId": change.line_id,
        "oldQuantity": change.old_quantity,
        "newQuantity": None if change.about_contact else change.new_quantity,
        "applied": change.status in (ChangeStatus.APPLIED, ChangeStatus.RECOVERED),
        "status": change.status.value,
        "reason": change.reason,
        "error": error,
        "unitPrice": None if change.unit_price is None else str(change.unit_price),
        "oldUnitPrice": None if change.old_unit_price is None else str(change.old_unit_price),
        "amount": None if change.amount is None else str(change.amount),
        "effectiveDate": change.effective_date.isoformat() if change.effective_date else None,
        "endDate": change.end_date.isoformat() if change.end_date else None,
        "holdKey": change.hold_key,
        "dueDate": change.due_date.isoformat() if change.due_date else None,
        "tag": change.tag,
        "contact": change.contact.given() if change.contact is not None else None,
    }


def unlinked_entry(u: UnlinkedLicence) -> dict[str, Any]:
    return {"tenantId": u.tenant_id, "tenantName": u.tenant_name, "skuId": u.sku_id, "licence": u.label,
            "purchased": u.purchased, "assigned": u.assigned}


def report_head(runs: RunRepository, run_id: str) -> dict[str, Any]:
    """The report's heading alone (request, status, times, totals and API calls): what a page
    that links to the report shows of a run, without reading its tenants and changes."""
    request = runs.request(run_id)
    if request is None:
        raise ReportError("runId", f"no run {run_id or '(none recorded yet)'} is recorded")
    return _head(runs, run_id, request, runs.summary(run_id), runs.started(run_id))


def _recorded_head(runs: RunRepository, run_id: str, started: StartedRun | None = None
                   ) -> tuple[dict[str, Any], StartedRun | None]:
    """The report's heading of a recorded run, and its start record (``ReportError`` when no run
    ``run_id`` is recorded); ``started``: the start record when the caller holds it already."""
    request = runs.request(run_id)
    if request is None:
        raise ReportError("runId", f"no run {run_id or '(none recorded yet)'} is recorded")
    started = started if started is not None and started.run_id == run_id else runs.started(run_id)
    return _head(runs, run_id, request, runs.summary(run_id), started), started


def _head(runs: RunRepository, run_id: str, request: SyncRequest, summary: RunSummary | None,
          started: StartedRun | None) -> dict[str, Any]:
    run_status, run_error = (summary.status, summary.error) if summary else liveness(runs, run_id)
    return {
        "runId": run_id,
        "status": run_status,
        "dryRun": request.dry_run,
        "trigger": request.trigger,
        "requestedBy": request.requested_by,
        "startedAt": request.requested_at.isoformat(),
        "finishedAt": summary.finished_at.isoformat() if summary and summary.finished_at else None,
        "error": run_error,
        "tookOver": started.took_over if started else None,
        "totals": summary.to_json() if summary else None,
        "calls": {"graph": summary.graph_calls if summary else None,
                  "psa": summary.psa_calls if summary else None},
    }


CONTACT_WORDS = {"create-contact": "contact created", "update-contact": "contact updated",
                 "deactivate-contact": "contact deactivated", "reactivate-contact": "contact reactivated"}


def _what(change: dict[str, Any]) -> str:
    kind = change["kind"]
    if kind in CONTACT_WORDS:
        return CONTACT_WORDS[kind]
    if kind in ("prorate", "credit"):
        start, end = change["effectiveDate"], change["endDate"]
        span = f" {start[5:]}..{end[5:]}" if start and end else ""
        return f"{kind}{span}"
    if kind == "period-record":
        return "period-record (the quantity invoiced, not billed)"
    if kind == "create-line":
        return "new line"
    if kind == "set-details":
        if change.get("oldUnitPrice") and change.get("unitPrice"):
            return f"unit price {change['oldUnitPrice']} -> {change['unitPrice']}"
        return "price/description" if change.get("unitPrice") else "description"
    return "quantity"


def _result(change: dict[str, Any], run_day: str = "") -> str:
    status = change["status"]
    effective = change.get("effectiveDate")
    if status in ("applied", "dry-run") and change["kind"] == "set-quantity" and effective and run_day \
            and effective > run_day:
        return f"{status}, effective {effective}"
    if status == "deferred" and change.get("dueDate"):
        return f"deferred to {change['dueDate']}"
    if status == "held":
        return "held for approval"
    if status == "recovered":
        return "recovered (written earlier, recorded now)"
    if change["error"]:
        return f"{status}: {short(change['error'], 50)}"
    return str(status)


SUMMARY_TENANTS = 25
"""Above this many tenants (or twice as many changes) the text report summarises: it lists only
the tenants and changes that need attention, and counts the rest."""


def summarises(report: dict[str, Any]) -> bool:
    return len(report["tenants"]) > SUMMARY_TENANTS or len(report["changes"]) > 2 * SUMMARY_TENANTS


def _needs_attention(tenant: dict[str, Any]) -> bool:
    return tenant["status"] != "ok" or bool(tenant["error"] or tenant["warnings"] or tenant["problems"]
                                            or tenant.get("guard") or tenant.get("signInsUnavailable"))


def _notes(tenant: dict[str, Any]) -> list[str]:
    notes = list(tenant["warnings"])
    if tenant.get("guard"):
        notes.insert(0, "guarded: decreases held (see below)")
    if tenant.get("signInsUnavailable"):
        notes.append("sign-ins not read")
    return notes


CHANGE_STATUSES = ("applied", "dry-run", "held", "deferred", "rejected", "failed", "recovered")


@dataclass
class ReportTally:
    """What the text report shows of a run's tenants and changes, gathered from them one at a
    time: counts of all of them, and the entries it lists. ``full`` keeps every entry; ``False``
    only those that need a person (tenants that need attention, failed and held changes); None
    decides as ``summarises`` does, keeping every entry until the run turns out to be large. So
    the report of a run of thousands of tenants holds what it lists, never every tenant."""

    full: bool | None = None
    tenants_total: int = 0
    tenants_ok: int = 0
    partners: set[str] = field(default_factory=set)
    tenants: list[dict[str, Any]] = field(default_factory=list)
    changes_total: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGE_STATUSES, 0))
    by_kind: dict[str, int] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def summary(self) -> bool:
        if self.full is not None:
            return not self.full
        return self.tenants_total > SUMMARY_TENANTS or self.changes_total > 2 * SUMMARY_TENANTS

    def add_tenant(self, tenant: dict[str, Any]) -> None:
        self.tenants_total += 1
        self.tenants_ok += tenant["status"] == "ok"
        self.partners.add(tenant.get("partner") or DEFAULT_PARTNER)
        if not self.summary or _needs_attention(tenant):
            self.tenants.append(tenant)
        self._prune()

    def add_change(self, change: dict[str, Any]) -> None:
        self.changes_total += 1
        if change["status"] in self.by_status:
            self.by_status[change["status"]] += 1
        kind = _what(change).split(" ")[0]
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        if not self.summary or change["status"] in ("failed", "held"):
            self.changes.append(change)
        self._prune()

    def _prune(self) -> None:
        """Once the run turns out to be large, drop what a summary does not list."""
        if self.summary and len(self.tenants) + len(self.changes) > SUMMARY_TENANTS * 3:
            self.tenants = [t for t in self.tenants if _needs_attention(t)]
            self.changes = [c for c in self.changes if c["status"] in ("failed", "held")]

    def ordered(self, names: dict[str, str]) -> ReportTally:
        """The kept entries in the report's order (``tenant_order``, ``change_order``)."""
        self.tenants.sort(key=tenant_order(names))
        self.changes.sort(key=change_order)
        return self

    @classmethod
    def of(cls, tenants: Iterable[dict[str, Any]], changes: Iterable[dict[str, Any]],
           full: bool | None = None) -> ReportTally:
        tally = cls(full)
        for tenant in tenants:
            tally.add_tenant(tenant)
        for change in changes:
            tally.add_change(change)
        return tally


def report_text(runs: RunRepository, run_id: str, config: SeatSyncConfig | None = None,
                margins: MarginRepository | None = None, sources: SourceRepository | None = None,
                full: bool | None = None, page_size: int | None = None,
                started: StartedRun | None = None) -> tuple[dict[str, Any], str]:
    """The run's report as text, the same as ``render_text(build_report(...))``, made from the
    run's tenants and changes read a page at a time and kept only when the text lists them (see
    ``ReportTally``); with the report's heading (``report_head``, and ``firstError``: the first
    tenant's error in the report's order, for a one-line reason of a failed run). ``started``:
    what the run set out to do, when the caller holds it (a process that ran the sync does)."""
    head, started = _recorded_head(runs, run_id, started)
    names = tenant_names(config)
    tally = ReportTally.of(tenant_entries(runs, run_id, names, started, page_size),
                           change_entries(runs, run_id, names, page_size), full).ordered(names)
    unlinked: list[dict[str, Any]] = []
    count = 0
    for _tenant, _rows, licences in runs.iter_reconciliation(run_id, page_size):
        count += len(licences)
        unlinked += [unlinked_entry(u) for u in licences[:UNLINKED_SHOWN - len(unlinked)]]
    frame = {**head, "unlinked": unlinked, "unlinkedCount": count,
             # from the tenants kept, as build_report has them: every tenant with a problem needs attention
             "problems": [{**p, "tenantName": t["name"]} for t in tally.tenants for p in t["problems"]],
             **_run_sections(runs, run_id, config, margins, sources, started, money_summary=tally.summary)}
    errors = [t["error"] for t in tally.tenants if t["error"]]
    return {**head, "firstError": errors[0] if errors else None}, _render(frame, tally)


UNLINKED_SHOWN = 20


def render_text(report: dict[str, Any], full: bool | None = None) -> str:
    """The report as text. ``full`` lists every tenant and change; by default a large run (more
    than ``SUMMARY_TENANTS`` tenants) is summarised: the tenants and changes that need attention
    are listed, the others counted, so the report fits on a screen plus what needs a person."""
    return _render(report, ReportTally.of(report["tenants"], report["changes"], full))


def _render(report: dict[str, Any], tally: ReportTally) -> str:
    """The text of a report: its heading and run-wide parts from ``report``, its tenants and
    changes from ``tally`` (their counts, and the entries listed, in the report's order)."""
    summary = tally.summary
    totals = report.get("totals") or {}
    mode = "DRY RUN, nothing written" if report["dryRun"] else "live"
    out = [
        f"SeatSync run {report['runId']} ({mode}): {report['status'].upper()}",
        f"  trigger {report['trigger']} by {report['requestedBy']}; started {report['startedAt']}"
        + (f"; finished {report['finishedAt']}" if report["finishedAt"] else ""),
    ]
    if report.get("error"):
        out.append(f"  run error: {report['error']}")
    if report.get("tookOver"):
        out.append(f"  before it: {report['tookOver']}")
    tenants = tally.tenants
    ok = tally.tenants_ok
    out += ["", f"Tenants: {tally.tenants_total} ({ok} synced, {tally.tenants_total - ok} not synced)"]
    shown_tenants = [t for t in tenants if _needs_attention(t)] if summary else tenants
    if summary:
        quiet = tally.tenants_total - len(shown_tenants)
        out.append(f"  {quiet} synced without warnings or problems (--all lists them)"
                   + (f"; the {len(shown_tenants)} that need attention:" if shown_tenants else ""))
    partners = tally.partners
    if shown_tenants:
        several = len(partners) > 1  # the partner account each tenant was read through, when it varies
        out += table(
            ["STATUS", "TENANT", *(["PARTNER"] if several else []), "LICENCES", "USERS", "NOTE"],
            [[t["status"], short(t["name"], 32), *([short(t.get("partner") or DEFAULT_PARTNER, 16)] if several else []),
              "-" if t["licences"] is None else str(t["licences"]),
              "-" if t["users"] is None else str(t["users"]),
              short(t["errorCode"] or ("see below" if t["error"] else "; ".join(_notes(t))), 60)]
             for t in shown_tenants], indent="  ", rule=True,
        )
    changes = tally.changes
    verb = "planned" if report["dryRun"] else "applied"
    counts = tally.by_status
    parts = [f"{counts['applied'] + counts['dry-run']} {verb}"]
    parts += [f"{counts[s]} {label}" for s, label in (("recovered", "recovered"), ("held", "held for approval"),
                                                       ("deferred", "deferred"), ("rejected", "rejected earlier"),
                                                       ("failed", "failed"))
              if counts[s]]
    out += ["", f"Changes: {tally.changes_total} ({', '.join(parts)}); "
                f"{totals.get('lines_unchanged', totals.get('linesUnchanged', 0))} lines already right"]
    shown_changes = [c for c in changes if c["status"] == "failed"] if summary else changes
    if summary and tally.changes_total:
        out.append("  by kind: " + ", ".join(f"{n} {kind}" for kind, n in sorted(tally.by_kind.items(),
                                                                                 key=lambda k: -k[1]))
                   + " (--all lists every change)"
                   + (f"; the {len(shown_changes)} that failed:" if shown_changes else ""))
    if shown_changes:
        out += table(
            ["TENANT", "LICENCE", "CHANGE", "LINE", "FROM", "TO", "AMOUNT", "RESULT"],
            [[short(c["tenantName"], 24), short(c["licence"], 32), _what(c), c["additionId"] or "new",
              "" if c["oldQuantity"] is None else str(c["oldQuantity"]),
              "" if c["newQuantity"] is None else str(c["newQuantity"]),
              c["amount"] or "", _result(c, report["startedAt"][:10])] for c in shown_changes],
            indent="  ", rule=True,
        )
    held = [c for c in changes if c["status"] == "held"]
    if held and not report["dryRun"]:
        out += ["", f"Waiting for approval: {len(held)} (seatsync approvals list; approve or reject by id)"]
        out += [f"  - {c['holdKey']}  {c['tenantName']}: {c['licence']} {c['oldQuantity']} -> {c['newQuantity']}"
                for c in held]
    guarded = report["gdap"].get("guarded") or []
    if guarded:
        out += ["", f"Guarded tenants, nothing lowered until a person approves: {len(guarded)}"]
        out += [f"  - {g['name']} (partner account {g['partner']}): {g['reason']}" for g in guarded]
    failures = [f"{t['name']}: {t['error']}" for t in tenants if t["error"]]
    if failures:
        out += ["", f"Tenants not synced: {len(failures)}"]
        out += [f"  - {line}" for line in failures]
    problems = report.get("problems") or []
    if problems:
        kinds: dict[str, int] = {}
        for problem in problems:
            kinds[problem["kind"]] = kinds.get(problem["kind"], 0) + 1
        out += ["", f"Billing problems: {len(problems)} ("
                + ", ".join(f"{k.replace('-', ' ')}: {n}" for k, n in sorted(kinds.items())) + ")"]
        shown = problems[:SUMMARY_TENANTS * 2] if summary else problems
        for problem in shown:
            licence = f"{problem['licence']}: " if problem["licence"] else ""
            frozen = " Nothing written for it." if problem["blocks"] else ""
            out.append(f"  - [{problem['kind']}] {problem['tenantName']}: {licence}{problem['message']}.{frozen}")
            out += [f"      {fact['label']}: {fact['value']}" for fact in problem["facts"]]
            out.append(f"      What to do: {problem['action']}")
        if len(shown) < len(problems):
            out.append(f"  ... and {len(problems) - len(shown)} more (--all lists every problem)")
    unlinked = report.get("unlinked") or []
    unlinked_count = report.get("unlinkedCount", len(unlinked))
    if unlinked_count:
        out += ["", f"Licences no mapping bills (seatsync unlinked): {unlinked_count}"]
        out += [f"  - {u['tenantName']}: {u['licence']} ({u['assigned']} assigned of {u['purchased']})"
                for u in unlinked[:UNLINKED_SHOWN]]
        if unlinked_count > UNLINKED_SHOWN:
            out.append(f"  ... and {unlinked_count - UNLINKED_SHOWN} more")
    sources = report.get("sources") or []
    if sources:
        out += ["", "Subscription sources:"]
    for source in sources:
        state = f"could not be read: {short(source['error'], 90)}" if source["error"] else (
            f"{source['customers']} customers, {source['subscriptions']} subscriptions, {source['calls']} requests")
        if source.get("costError"):
            state += f"; costs not read: {short(source['costError'], 60)}"
        out.append(f"  - {source['source']} ({source['kind']}): {state}")
    money = report.get("reconciliation")
    if money and (money["licences"] or money.get("licenceCount")):
        out += ["", f"Reconciliation (amounts a month; prices in {money['currency']}):"]
        out += render_sections(money, summary)
    gdap = report["gdap"]
    if gdap["notConfigured"]:
        out += ["", f"GDAP customers not yet added to SeatSync: {len(gdap['notConfigured'])}"]
        out += [f"  - {t['name']} ({t['tenantId']})" for t in gdap["notConfigured"][:20]]
        if len(gdap["notConfigured"]) > 20:
            out.append(f"  ... and {len(gdap['notConfigured']) - 20} more")
    told = {g["tenantId"] for g in gdap.get("guarded") or []}  # listed above with what is held
    ended = [t for t in gdap.get("configuredNotInGdap") or [] if t["tenantId"] not in told]
    if ended and not gdap["error"]:
        out += ["", f"Configured tenants GDAP no longer lists (renew GDAP or remove them): {len(ended)}"]
        out += [f"  - {t['name']} ({t['tenantId']})" for t in ended[:20]]
        if len(ended) > 20:
            out.append(f"  ... and {len(ended) - 20} more")
    ending = gdap.get("relationshipsEnding") or []
    if ending:
        out += ["", f"GDAP relationships ending soon: {len(ending)}"]
        out += [f"  - {r['name']}: '{r['relationship']}' (partner account {r['partner']}) ends on {r['end'][:10]}"
                for r in ending]
    if gdap["error"]:
        out += ["", f"GDAP customers could not be listed: {gdap['error']}"]
    calls = report["calls"]
    out += ["", f"API calls: Microsoft Graph {calls['graph']}, PSA {calls['psa']}"]
    return "\n".join(out) + "\n"
