"""What needs the MSP's attention after a run: every alert kind, built from the run's data.

Pure: the service gathers a run's data into ``RunData`` and ``build_alerts`` turns it into
``Alert`` values, applying the configuration's rules (which kinds are enabled, exclusions per
tenant and licence, licences excluded from billing). Nothing here reads a store or sends.

Each alert has a ``key`` (what it is about: kind, tenant, licence, ...) and a ``fingerprint``
(the key plus the facts that matter). The digest compares fingerprints with what was sent
before: same fingerprint, same alert; a changed fact (another AADSTS code, a different number
of unused seats) is a changed alert, sent again.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from functools import cached_property, lru_cache
from itertools import chain
from typing import TYPE_CHECKING, Any, Literal

from shared.config.notifications import ALERT_KINDS, RUN_KINDS, AlertKind, NotificationSettings
from shared.config.partners import DEFAULT_PARTNER
from shared.contracts import RunSummary, StartedRun, TenantOutcome, TenantStatus
from shared.domain.free_skus import is_free_sku
from shared.domain.inactivity import InactiveUser, inactive_users
from shared.domain.model import ChangeStatus, PlannedChange, TenantSnapshot
from shared.domain.problems import Problem, ProblemKind
from shared.domain.sku_names import sku_display_name

if TYPE_CHECKING:
    from shared.adapters.run_store import ReconciliationRow, UnlinkedLicence
    from shared.config.schema import SeatSyncConfig
    from shared.domain.reconciliation import LicenceLine, Renewal

Severity = Literal["critical", "warning", "info"]

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"


@dataclass(frozen=True)
class KindInfo:
    label: str
    severity: Severity
    action: str


KINDS: dict[AlertKind, KindInfo] = {
    "run-failed": KindInfo("Run failed", "critical", "Open the run report"),
    "writes-recovered": KindInfo("Writes recorded late", "warning",
                                 "Nothing to redo: the PSA holds these writes and SeatSync has now recorded them. "
                                 "Find out why the earlier run stopped (its report)."),
    "auth-failed": KindInfo("Tenants SeatSync cannot sign in to", "critical",
                            "Nothing is read or billed for these tenants until this is fixed."),
    "tenant-guarded": KindInfo("Tenants whose decreases wait for a person", "warning",
                               "Nothing is lowered for these tenants until a person approves each held decrease: "
                               "seatsync approvals list"),
    "billing-problem": KindInfo("Billing problems", "warning",
                                "Each item says what to do. Until it is fixed SeatSync writes nothing for a line "
                                "it cannot decide."),
    "changes-held": KindInfo("Changes held for approval", "warning",
                             "Approve or dismiss them: seatsync approvals list"),
    "unlinked-licence": KindInfo("Licences with no billing mapping", "warning",
                                 "Map each to a billing profile, or exclude it: seatsync unlinked"),
    "unused-licences": KindInfo("Unused licences", "info",
                                "Assign them, or reduce the subscription (NCE: at its renewal)."),
    "shared-mailbox-licensed": KindInfo("Shared mailboxes holding a licence", "info",
                                        "A shared mailbox needs no licence unless it is over 50 GB or "
                                        "has an archive: remove the licence or confirm it is needed."),
    "gdap-ended": KindInfo("Configured tenants GDAP no longer lists", "warning",
                           "Renew the GDAP relationship, or, if the customer left, remove the tenant from the "
                           "configuration; its billing is not changed until a person decides."),
    "gdap-not-added": KindInfo("GDAP customers not yet in SeatSync", "info",
                               "Add them to the configuration (seatsync config export, add the "
                               "tenant, seatsync config import), or exclude them from this alert."),
    "gdap-expiring": KindInfo("GDAP relationships ending soon", "warning",
                              "Extend the relationship (or create a new one) in Partner Center before it ends; "
                              "when it ends, the tenant's decreases wait for a person."),
    "inactive-users": KindInfo("Licensed users who do not sign in", "info",
                               "Check whether each user still needs the licence: remove it, or reduce the "
                               "subscription (NCE: at its renewal)."),
    "reducible-seats": KindInfo("Unused seats you can still reduce", "warning",
                                "Reduce them in Partner Center or Pax8 before the deadline: Microsoft "
                                "refunds them only inside the 7 days after a purchase or renewal."),
    "margin-below-floor": KindInfo("Licences below the margin floor", "warning",
                                   "Check the price (billing profile) against the cost: seatsync reconcile"),
    "renewal-unused": KindInfo("Renewals with unused seats", "info",
                               "Lower the quantity for the next term before it renews (the renewal locks "
                               "it for the whole term)."),
    "run-summary": KindInfo("Run summary", "info", "Open the run report"),
}

# What to do about each AADSTS code: the text, and which link helps ("consent", "credentials").
AUTH_ACTIONS: dict[str, tuple[str, str | None]] = {
    "AADSTS700016": ("The SeatSync app is not consented in this tenant: a Global Administrator of the "
                     "customer grants admin consent.", "consent"),
    "AADSTS65001": ("Admin consent is missing in this tenant: a Global Administrator of the customer "
                    "grants it.", "consent"),
    "AADSTS7000215": ("The client secret is wrong: store the secret's Value (not its ID) as "
                      "graph-client-secret in Key Vault.", "credentials"),
    "AADSTS7000222": ("The client secret has expired: add a new secret to the app registration and "
                      "store it as graph-client-secret in Key Vault.", "credentials"),
    "AADSTS7000112": ("The SeatSync enterprise application is disabled in this tenant: enable it "
                      "(Enterprise applications > Properties).", None),
    "AADSTS90002": ("The tenant does not exist (deleted, or a wrong tenant ID): correct it or remove "
                    "it from the configuration.", None),
    "AADSTS53003": ("A Conditional Access policy blocks the app: exclude its service principal from "
                    "the tenant's workload identity policy.", None),
}
AUTH_DEFAULT_ACTION = ("Check the app's admin consent and your GDAP relationship with this tenant.",
                       "consent")


@dataclass(frozen=True)
class Links:
    """Where alerts point: the dashboard's pages at the app's public URL (a run's report, the
    approvals, the mapping of unlinked licences), which open in a browser after the Entra
    sign-in, and Entra ID."""

    base_url: str | None = None
    graph_client_id: str | None = None
    authority_host: str = DEFAULT_AUTHORITY
    partner_clients: Mapping[str, str] = field(default_factory=dict)
    """The app (client) id of each further partner account, by name (``partnerAccounts``)."""

    def run_report(self, run_id: str) -> str | None:
        return f"{self.base_url.rstrip('/')}/api/dashboard/runs/{run_id}" if self.base_url else None

    def approvals(self) -> str | None:
        return f"{self.base_url.rstrip('/')}/api/dashboard/approvals" if self.base_url else None

    def unlinked(self) -> str | None:
        return f"{self.base_url.rstrip('/')}/api/dashboard/mapping" if self.base_url else None

    def consent(self, tenant_id: str, partner: str | None = None) -> str | None:
        """The tenant's admin-consent page for the app of the partner account that reads it
        (Microsoft's documented form: ``{authority}/{tenant}/adminconsent?client_id={app id}``)."""
        client_id = self.partner_clients.get(partner) if partner else None
        client_id = client_id or (self.graph_client_id if partner in (None, DEFAULT_PARTNER) else None)
        if not client_id:
            return None
        return f"{self.authority_host.rstrip('/')}/{tenant_id}/adminconsent?client_id={client_id}"

    def credentials(self) -> str | None:
        if not self.graph_client_id:
            return None
        return ("https://entra.microsoft.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/"
                f"~/Credentials/appId/{self.graph_client_id}")


@dataclass(frozen=True, slots=True)
class Fact:
    title: str
    value: str


@dataclass(frozen=True, slots=True)
class Alert:
    """One thing to tell the MSP. ``line`` is the one-line form used in lists (card, email),
    ``facts`` the full detail."""

    kind: AlertKind
    key: str
    fingerprint: str
    severity: Severity
    title: str
    line: str
    facts: tuple[Fact, ...]
    tenant_id: str | None = None
    tenant_name: str | None = None
    sku_id: str | None = None
    licence: str | None = None
    action_text: str = ""
    action_url: str | None = None
    action_label: str | None = None
    problem: ProblemKind | None = None

    @property
    def subject(self) -> str:
        """Who or what the alert is about, for the left column of a list."""
        return self.tenant_name or self.tenant_id or KINDS[self.kind].label


@dataclass(frozen=True, slots=True)
class OutcomeBrief:
    """What the alerts read of a tenant's outcome. A run's notification holds a row per tenant,
    so a row keeps this rather than the whole outcome; equal ones are one object (``brief``), so
    that the thousands of tenants synced without a word cost nothing each."""

    status: TenantStatus
    error: str | None = None
    error_code: str | None = None
    partner: str | None = None


@lru_cache(maxsize=256)
def _shared_brief(status: TenantStatus, partner: str | None) -> OutcomeBrief:
    return OutcomeBrief(status, partner=partner)


def brief(outcome: TenantOutcome | OutcomeBrief) -> OutcomeBrief:
    """The ``OutcomeBrief`` of ``outcome``; one shared object per status and partner when it
    carries no error."""
    if outcome.error is None and outcome.error_code is None:
        return _shared_brief(outcome.status, outcome.partner)
    if isinstance(outcome, OutcomeBrief):
        return outcome
    return OutcomeBrief(outcome.status, outcome.error, outcome.error_code, outcome.partner)


@dataclass(frozen=True, slots=True)
class TenantRow:
    """A tenant of the run as the run store holds it: of its outcome (None when it was not
    collected), what the alerts read (``OutcomeBrief``)."""

    tenant_id: str
    name: str
    outcome: OutcomeBrief | TenantOutcome | None
    push_error: str | None = None
    problems: tuple[Problem, ...] = ()

    def __post_init__(self) -> None:
        if self.outcome is not None:
            object.__setattr__(self, "outcome", brief(self.outcome))


ALERTED_CHANGES = frozenset({ChangeStatus.FAILED, ChangeStatus.RECOVERED, ChangeStatus.HELD, ChangeStatus.DEFERRED})


@dataclass(frozen=True)
class RunData:
    """Everything a run stored that alerts are made from."""

    run_id: str
    summary: RunSummary
    started: StartedRun | None = None
    tenants: tuple[TenantRow, ...] = ()
    changes: tuple[tuple[PlannedChange, str | None], ...] = ()
    """The changes alerts are made from (``ALERTED_CHANGES``: failed, recovered, held, deferred),
    with their errors; applied ones are counted by the summary."""
    reconciliation: tuple[ReconciliationRow, ...] = ()
    unlinked: tuple[UnlinkedLicence, ...] = ()
    snapshots: Mapping[str, TenantSnapshot] = field(default_factory=dict)
    new_skus: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Per tenant, the licences first seen in this run."""
    licences: tuple[LicenceLine, ...] = ()
    """The run's reconciliation (purchased, assigned, billed, cost, margin), per licence."""
    renewals: tuple[Renewal, ...] = ()
    """Renewals with unused seats, within the renewal alert's days."""
    unread_snapshots: tuple[str, ...] = ()
    """Tenants collected whose snapshot could not be read when the run was told of: the alerts made
    from a snapshot (unused licences, shared mailboxes, inactive users) are missing for them, and
    the run summary says so rather than a log line alone."""
    started_names: Callable[[], Mapping[str, str]] | None = None
    """The names of the tenants the run set out to do, by id, read when first needed (a run keeps
    its tenants in rows of their own); None: those ``started`` lists."""

    @cached_property
    def _reconciled_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for line in self.reconciliation:
            names.setdefault(line.tenant_id, line.tenant_name)
        return names

    @cached_property
    def _started_names(self) -> dict[str, str]:
        """The names the run set out with; mapped only when a tenant without a row is named."""
        if self.started is None:
            return {}
        names = {w.tenant_id: w.name for w in self.started.gdap_not_configured}
        if self.started_names is not None:
            names.update(self.started_names())
        else:
            names.update((w.tenant_id, w.name) for w in self.started.tenants)
        return names

    def tenant_name(self, tenant_id: str) -> str:
        """The tenant's name: its row's (the run holds a row per tenant, so a run of thousands of
        tenants is not mapped again), else as the run set out with it, else the reconciliation's,
        else its id."""
        row = self.row(tenant_id)
        if row is not None and row.tenant_id == tenant_id:
            return row.name
        name = self._started_names.get(tenant_id)
        if name is None:
            name = self._reconciled_names.get(tenant_id)
        if name is None:
            name = row.name if row is not None else tenant_id
        return name

    @cached_property
    def _rows(self) -> dict[str, TenantRow]:
        # keyed by the row's own id string when it is in lower case already (GUIDs are): no copy each
        return {row.tenant_id if row.tenant_id.islower() else row.tenant_id.lower(): row for row in self.tenants}

    def row(self, tenant_id: str) -> TenantRow | None:
        """The tenant's row (ids compared without case), found by id rather than by a scan: a
        ticket or alert of each of thousands of tenants looks its tenant up."""
        return self._rows.get(tenant_id.lower())


@dataclass(frozen=True)
class BuiltAlerts:
    alerts: tuple[Alert, ...]
    excluded: int


def fingerprint(kind: AlertKind, key: str, facts: Mapping[str, Any]) -> str:
    """A stable digest of an alert's identity and the facts that matter (not of its wording)."""
    canonical = json.dumps({"kind": kind, "key": key, "facts": facts}, sort_keys=True,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# A fact this short is worth sharing: counts, a licence's or tenant's name, a status.
SHARED_FACT_LENGTH = 64


@lru_cache(maxsize=4096)
def _shared_fact(title: str, value: str) -> Fact:
    return Fact(title, value)


def _make(kind: AlertKind, key: str, facts_that_matter: Mapping[str, Any], **fields: Any) -> Alert:
    """An alert. A run holds thousands until they are sent, each with a handful of facts that
    mostly repeat ("Purchased: 25", the licence's name, the tenant's): equal short facts are one
    object (a fact is frozen), and so are the few licence ids and names."""
    for name in ("sku_id", "licence"):
        if fields.get(name):
            fields[name] = sys.intern(fields[name])
    if "facts" in fields:
        fields["facts"] = tuple(_shared_fact(fact.title, fact.value) if len(fact.value) <= SHARED_FACT_LENGTH
                                else fact for fact in fields["facts"])
    return Alert(kind=kind, key=f"{kind}|{key}", fingerprint=fingerprint(kind, key, facts_that_matter),
                 severity=fields.pop("severity", KINDS[kind].severity), **fields)


# --------------------------------------------------------------------------- the kinds


# How much of a failure's reason the run-failed alert shows: the whole of any reason SeatSync
# writes (they name the record, the field and the value, often past the first hundred characters),
# bounded so that a runaway error text cannot swamp the message.
REASON_LIMIT = 1000


def _why_failed(row: TenantRow) -> str:
    """Why a tenant was not synced: the AADSTS code, the collection error, or the PSA read that
    failed, whole (up to ``REASON_LIMIT``), so that the value it names is visible."""
    outcome = row.outcome
    if outcome is None:
        return "not collected"
    if outcome.status != "ok":
        return outcome.error_code or _clip(outcome.error or outcome.status, REASON_LIMIT)
    return _clip(f"push failed: {row.push_error}", REASON_LIMIT) if row.push_error else "push failed"


def run_failed_alert(data: RunData, links: Links) -> Alert | None:
    summary = data.summary
    if summary.status not in ("failed", "partial"):
        return None
    failed_tenants = sorted(
        (row for row in data.tenants
         if row.outcome is None or row.outcome.status != "ok" or row.push_error),
        key=lambda r: r.name.lower())
    failed_changes = [c for c, _ in data.changes if c.status == ChangeStatus.FAILED]
    status = "failed" if summary.status == "failed" else "partly failed"
    counts = []
    if summary.tenants_failed:
        counts.append(f"{summary.tenants_failed} of {summary.tenants_total} tenants")
    if summary.changes_failed:
        counts.append(plural(summary.changes_failed, "change"))
    title = f"Run {status}" + (f": {', '.join(counts)}" if counts else "")
    facts = [Fact("Run", data.run_id), Fact("Status", summary.status)]
    if summary.error:
        facts.append(Fact("Error", _clip(summary.error, REASON_LIMIT)))
    if failed_tenants:
        names = [f"{row.name} ({_why_failed(row)})" for row in failed_tenants[:10]]
        more = len(failed_tenants) - len(names)
        facts.append(Fact("Tenants failed", ", ".join(names) + (f", +{more} more" if more else "")))
    if failed_changes:
        errors = {c.change_id: e for c, e in data.changes}
        shown = [f"{data.tenant_name(c.tenant_id)}: {c.label or sku_display_name(c.sku_id)} {c.kind.value} "
                 f"({_clip(errors.get(c.change_id) or 'no error recorded', REASON_LIMIT)})" for c in failed_changes[:5]]
        more = len(failed_changes) - len(shown)
        facts.append(Fact("Changes failed", f"{len(failed_changes)}: " + "; ".join(shown)
                          + (f"; +{more} more" if more else "")))
    if summary.gdap_error:
        counts.append("the GDAP customer list")
        facts.append(Fact("GDAP customers not listed", _clip(summary.gdap_error, 300)))
        title = f"Run {status}: " + ", ".join(counts)
    line = _clip(summary.error, 200) if summary.error else (", ".join(counts) + " failed" if counts else status)
    return _make(
        "run-failed", data.run_id, {"run": data.run_id, "status": summary.status},
        severity="critical", title=title, line=line, facts=tuple(facts),
        action_text=f"See what failed: seatsync report {data.run_id}",
        action_url=links.run_report(data.run_id), action_label="Open run report",
    )


def writes_recovered_alert(data: RunData, links: Links) -> Alert | None:
    """A run found that an earlier run died, or that writes an earlier run (or attempt) made to
    the PSA were never recorded: it recorded them (``recovered`` changes); a person is told."""
    recovered = [c for c, _ in data.changes if c.status == ChangeStatus.RECOVERED]
    took_over = data.started.took_over if data.started else None
    if not recovered and not took_over:
        return None
    facts = [Fact("Run", data.run_id)]
    if took_over:
        facts.append(Fact("Earlier run", _clip(took_over, 300)))
    if recovered:
        shown = [f"{data.tenant_name(c.tenant_id)}: {c.label or sku_display_name(c.sku_id)} {c.kind.value} "
                 f"{'' if c.old_quantity is None else f'{c.old_quantity} → '}{c.new_quantity}"
                 for c in recovered[:10]]
        more = len(recovered) - len(shown)
        facts.append(Fact("Writes recorded late", f"{len(recovered)}: " + "; ".join(shown)
                          + (f"; +{more} more" if more else "")))
    title = (f"{plural(len(recovered), 'write')} found in the PSA and recorded" if recovered
             else "An earlier run died without finishing")
    line = _clip(took_over, 200) if took_over and not recovered else title
    return _make(
        "writes-recovered", data.run_id, {"run": data.run_id, "recovered": sorted(c.change_id for c in recovered)},
        title=title, line=line, facts=tuple(facts), action_text=KINDS["writes-recovered"].action,
        action_url=links.run_report(data.run_id), action_label="Open run report",
    )


def auth_failed_alerts(data: RunData, links: Links) -> list[Alert]:
    alerts = []
    for row in data.tenants:
        outcome = row.outcome
        if outcome is None or outcome.status != "auth-failed":
            continue
        code = outcome.error_code
        text, link_kind = AUTH_ACTIONS.get(code or "", AUTH_DEFAULT_ACTION)
        url = (links.consent(row.tenant_id, outcome.partner) if link_kind == "consent"
               else links.credentials() if link_kind == "credentials" else None)
        label = ("Grant consent" if link_kind == "consent" else "App credentials" if link_kind else None)
        facts = [Fact("Tenant", row.name), Fact("Error code", code or "none given")]
        if outcome.partner and outcome.partner != DEFAULT_PARTNER:
            facts.append(Fact("Partner account", outcome.partner))
        if outcome.error:
            facts.append(Fact("Error", _clip(outcome.error, 300)))
        facts.append(Fact("What to do", text))
        if url and link_kind == "consent":
            facts.append(Fact("Admin consent", url))
        alerts.append(_make(
            "auth-failed", row.tenant_id, {"code": code or ""},
            title=f"{row.name}: cannot sign in ({code or 'no AADSTS code'})",
            line=f"{code or 'sign-in failed'}: {text}", facts=tuple(facts),
            tenant_id=row.tenant_id, tenant_name=row.name,
            action_text=text, action_url=url, action_label=f"{label}: {_clip(row.name, 24)}" if url and label else None,
        ))
    return alerts


PROBLEM_LABELS: dict[ProblemKind, str] = {kind: kind.value.replace("-", " ").capitalize() for kind in ProblemKind}


def billing_problem_alerts(data: RunData, links: Links) -> list[Alert]:
    """One alert per billing problem of the run: where it is, what is wrong, what to do."""
    alerts = []
    for row in data.tenants:
        for problem in row.problems:
            where = ", ".join(part for part in (
                f"{problem.psa} company {problem.company_id}" if problem.psa and problem.company_id else "",
                f"agreement {problem.agreement_id}" if problem.agreement_id else "",
                f"line {problem.line_id}" if problem.line_id else "") if part)
            facts = [Fact("Tenant", row.name)]
            if problem.label:
                facts.append(Fact("Licence", problem.label))
            facts.append(Fact("Problem", PROBLEM_LABELS[problem.kind]))
            facts.append(Fact("What is wrong", _clip(problem.message, 400)))
            if where:
                facts.append(Fact("Where", where))
            if problem.users:
                shown = ", ".join(problem.users[:10])
                more = len(problem.users) - 10
                facts.append(Fact("Users", shown + (f", +{more} more" if more > 0 else "")))
            facts += [Fact(label, value) for label, value in problem.facts]
            facts.append(Fact("Billing", "nothing written for this line until it is fixed" if problem.blocks
                              else "synced; this is reported beside it"))
            facts.append(Fact("What to do", problem.action))
            alerts.append(_make(
                "billing-problem", problem.key,
                {"message": problem.message, "users": sorted(problem.users), "facts": list(problem.facts)},
                title=f"{row.name}: {problem.text}", line=f"{problem.text}. {problem.action}",
                facts=tuple(facts), tenant_id=problem.tenant_id, tenant_name=row.name, sku_id=problem.sku_id,
                licence=problem.label or None, action_text=problem.action, problem=problem.kind,
                action_url=links.run_report(data.run_id), action_label="Open run report",
            ))
    return alerts


def changes_held_alerts(data: RunData, links: Links) -> list[Alert]:
    if data.summary.dry_run:
        return []  # a dry run records no approvals: its summary counts what it would hold
    alerts = []
    for change, _ in data.changes:
        if change.status != ChangeStatus.HELD:
            continue
        name = data.tenant_name(change.tenant_id)
        licence = sku_display_name(change.sku_id)
        old = "new line" if change.old_quantity is None else str(change.old_quantity)
        quantity = f"{old} → {change.new_quantity}"
        where = f"agreement {change.agreement_id}" + (f", line {change.line_id}" if change.line_id else "")
        facts = [Fact("Tenant", name), Fact("Licence", licence), Fact("Quantity", quantity),
                 Fact("Where", f"{change.psa} {where}")]
        if change.reason:
            facts.append(Fact("Why held", _clip(change.reason, 300)))
        alerts.append(_make(
            "changes-held", f"{change.tenant_id}|{change.psa}|{change.agreement_id}|{change.line_id}|{change.sku_id}",
            {"old": change.old_quantity, "new": change.new_quantity, "kind": change.kind.value},
            title=f"{name}: {licence} {quantity} held for approval",
            line=f"{licence}: {quantity}" + (f" ({_clip(change.reason, 80)})" if change.reason else ""),
            facts=tuple(facts), tenant_id=change.tenant_id, tenant_name=name, sku_id=change.sku_id,
            licence=licence, action_text="Approve or dismiss: seatsync approvals list",
            action_url=links.approvals(), action_label="Review approvals",
        ))
    return alerts


def unlinked_licence_alerts(data: RunData, links: Links) -> list[Alert]:
    alerts = []
    for item in data.unlinked:
        licence = item.label or sku_display_name(item.sku_id, item.sku_part_number)
        new = item.sku_id in data.new_skus.get(item.tenant_id, frozenset())
        counts = f"{item.purchased} purchased, {item.assigned} assigned"
        facts = [Fact("Tenant", item.tenant_name), Fact("Licence", licence), Fact("Purchased", str(item.purchased)),
                 Fact("Assigned", str(item.assigned))]
        if new:
            facts.append(Fact("New", "first seen in this tenant in this run"))
        alerts.append(_make(
            "unlinked-licence", f"{item.tenant_id}|{item.sku_id}", {"purchased": item.purchased},
            title=(f"{item.tenant_name}: new licence {licence} has no billing mapping" if new
                   else f"{item.tenant_name}: {licence} has no billing mapping"),
            line=f"{licence}: {counts}" + (" (new)" if new else ""), facts=tuple(facts),
            tenant_id=item.tenant_id, tenant_name=item.tenant_name, sku_id=item.sku_id, licence=licence,
            action_text="Map it to a billing profile, or exclude it: seatsync unlinked",
            action_url=links.unlinked(), action_label="Unlinked licences",
        ))
    return alerts


def _prices(rows: Iterable[ReconciliationRow]) -> dict[tuple[str, str], Decimal]:
    """Unit price per (tenant, licence) from the run's billed lines (the first known price)."""
    prices: dict[tuple[str, str], Decimal] = {}
    for row in rows:
        if row.unit_price is None or not row.source.startswith("sku:"):
            continue
        sku = row.source.removeprefix("sku:").split("/")[0].lower()
        prices.setdefault((row.tenant_id, sku), row.unit_price)
    return prices


def for_alerts(snapshot: TenantSnapshot) -> TenantSnapshot:
    """``snapshot`` with only what the licence alerts read (``unused_licence_alerts``,
    ``shared_mailbox_alerts``, ``inactive_user_alerts``): its licences; its shared mailboxes and
    their users; and, when its sign-ins were read, its enabled licensed users. A run's data holds a
    snapshot per tenant until its alerts are built, so what no alert reads (other users, groups,
    subscriptions, devices, the partner's facts) is not kept for every tenant at once."""
    shared = tuple(m for m in snapshot.mailboxes or () if m.recipient_type.lower() == "shared" and not m.is_deleted)
    shared_upns = {m.user_principal_name.lower() for m in shared}
    signed = snapshot.sign_ins is not None and snapshot.sign_ins.unavailable is None
    users = tuple(u for u in snapshot.users if u.sku_ids and (
        u.user_principal_name.lower() in shared_upns or (signed and u.account_enabled)))
    kept_ids = {u.id for u in users}
    sign_ins = snapshot.sign_ins
    if sign_ins is not None and sign_ins.unavailable is None:
        sign_ins = replace(sign_ins, users=tuple(r for r in sign_ins.users if r.user_id in kept_ids))
    return replace(snapshot, users=users, subscriptions=(), groups={}, managed_devices=None, partner=None,
                   mailboxes=shared if snapshot.mailboxes is not None else None, sign_ins=sign_ins)


def unused_licence_alerts(data: RunData, links: Links, *, minimum: int, currency: str,
                          billing_excluded: Callable[[str, str], bool]) -> list[Alert]:
    prices = _prices(data.reconciliation)
    alerts = []
    for tenant_id, snapshot in sorted(data.snapshots.items()):
        name = data.tenant_name(tenant_id)
        for sku in snapshot.skus:
            unused = sku.purchased - sku.consumed
            if (unused < minimum or sku.applies_to != "User" or is_free_sku(sku.sku_part_number)
                    or billing_excluded(tenant_id, sku.sku_id)):
                continue
            licence = sku_display_name(sku.sku_id, sku.sku_part_number)
            price = prices.get((tenant_id, sku.sku_id.lower()))
            cost = price * unused if price is not None else None
            facts = [Fact("Tenant", name), Fact("Licence", licence), Fact("Purchased", str(sku.purchased)),
                     Fact("Assigned", str(sku.consumed)), Fact("Unused", str(unused))]
            if cost is not None and price is not None:
                facts.append(Fact("Monthly cost", f"{money(cost, currency)} ({unused} at {money(price, currency)})"))
            line = f"{licence}: {unused} of {sku.purchased} unused"
            if cost is not None:
                line += f", {money(cost, currency)} a month"
            alerts.append(_make(
                "unused-licences", f"{tenant_id}|{sku.sku_id}", {"purchased": sku.purchased, "unused": unused},
                title=f"{name}: {plural(unused, 'unused licence')} of {licence}",
                line=line, facts=tuple(facts), tenant_id=tenant_id, tenant_name=name, sku_id=sku.sku_id,
                licence=licence, action_text=KINDS["unused-licences"].action,
            ))
    return alerts


def shared_mailbox_alerts(data: RunData, links: Links, *,
                          excluded_sku: Callable[[str, str], bool]) -> list[Alert]:
    alerts = []
    for tenant_id, snapshot in sorted(data.snapshots.items()):
        if snapshot.mailboxes is None:
            continue  # the mailbox report was not read: nothing can be said
        name = data.tenant_name(tenant_id)
        users = {u.user_principal_name.lower(): u for u in snapshot.users}
        part_numbers = {s.sku_id: s.sku_part_number for s in snapshot.skus}
        for mailbox in sorted(snapshot.mailboxes, key=lambda m: m.user_principal_name.lower()):
            if mailbox.recipient_type.lower() != "shared" or mailbox.is_deleted:
                continue
            user = users.get(mailbox.user_principal_name.lower())
            if user is None:
                continue
            skus = sorted(s for s in user.sku_ids if not excluded_sku(tenant_id, s))
            if not skus:
                continue
            licences = ", ".join(sorted(sku_display_name(s, part_numbers.get(s)) for s in skus))
            upn = user.user_principal_name
            alerts.append(_make(
                "shared-mailbox-licensed", f"{tenant_id}|{upn.lower()}", {"skus": skus},
                title=f"{name}: shared mailbox {upn} holds a licence",
                line=f"{upn}: {licences}",
                facts=(Fact("Tenant", name), Fact("Mailbox", upn), Fact("Licences", licences)),
                tenant_id=tenant_id, tenant_name=name, sku_id=skus[0] if len(skus) == 1 else None,
                licence=licences, action_text=KINDS["shared-mailbox-licensed"].action,
            ))
    return alerts


def gdap_alerts(data: RunData, links: Links) -> list[Alert]:
    if data.started is None:
        return []
    return [
        _make("gdap-not-added", work.tenant_id, {},
              title=f"{work.name} is a GDAP customer not yet in SeatSync", line="in GDAP, not configured",
              facts=(Fact("Tenant", work.name), Fact("Tenant ID", work.tenant_id)),
              tenant_id=work.tenant_id, tenant_name=work.name, action_text=KINDS["gdap-not-added"].action)
        for work in data.started.gdap_not_configured
    ]


def gdap_ended_alerts(data: RunData, links: Links) -> list[Alert]:
    """Tenants SeatSync bills that GDAP's customer list no longer holds: the relationship ended
    or expired (or the customer left). Nothing is cancelled by itself; a person is told. A tenant
    this run read is guarded (its decreases held) and told by its ``tenant-guarded`` alert instead;
    this one is for those it did not read (disabled, or not asked for)."""
    if data.started is None or data.started.gdap_error:
        return []
    guarded = {work.tenant_id for work in data.started.guarded()}  # told by their tenant-guarded alert
    return [
        _make("gdap-ended", work.tenant_id, {},
              title=f"{work.name} is configured but no longer a GDAP customer",
              line="configured, not in GDAP's customer list", facts=(Fact("Tenant", work.name),
                                                                      Fact("Tenant ID", work.tenant_id)),
              tenant_id=work.tenant_id, tenant_name=work.name, action_text=KINDS["gdap-ended"].action)
        for work in data.started.configured_not_in_gdap if work.tenant_id not in guarded
    ]
def tenant_guarded_alerts(data: RunData, links: Links) -> list[Alert]:
    """Tenants whose partner no longer holds them, or whose GDAP relationship ended or lacks the
    roles SeatSync needs: their decreases are held for a person (shared.domain.lifecycle)."""
    if data.started is None:
        return []
    held: dict[str, list[PlannedChange]] = {}
    for change, _ in data.changes:
        if change.status == ChangeStatus.HELD:
            held.setdefault(change.tenant_id, []).append(change)
    alerts = []
    for work in data.started.guarded():
        what = STANDING_WORDS.get(work.standing or "", "is guarded")
        changes = held.get(work.tenant_id, [])
        facts = [Fact("Tenant", work.name), Fact("Tenant ID", work.tenant_id),
                 Fact("Partner account", work.partner or DEFAULT_PARTNER),
                 Fact("What happened", _clip(work.guard or "", 300))]
        if changes:
            shown = [f"{c.label or sku_display_name(c.sku_id)} {c.old_quantity} → {c.new_quantity}"
                     for c in changes[:5]]
            more = len(changes) - len(shown)
            facts.append(Fact("Held for approval", "; ".join(shown) + (f"; +{more} more" if more > 0 else "")))
        elif data.summary.dry_run:
            facts.append(Fact("Held for approval", "a dry run holds nothing; the report lists what it would hold"))
        else:
            facts.append(Fact("Held for approval", "no decrease this run; any decrease will wait for a person"))
        facts.append(Fact("What to do", GUARD_ACTION))
        alerts.append(_make(
            "tenant-guarded", work.tenant_id, {"standing": work.standing or "", "partner": work.partner or ""},
            title=f"{work.name} {what}: its decreases wait for a person",
            line=_clip(work.guard or what, 160) + (f"; {plural(len(changes), 'decrease')} held" if changes else ""),
            facts=tuple(facts), tenant_id=work.tenant_id, tenant_name=work.name, action_text=GUARD_ACTION,
            action_url=links.approvals(), action_label="Review approvals",
        ))
    return alerts


STANDING_WORDS = {"vanished": "is no longer a GDAP customer", "ended": "has no GDAP relationship in force",
                  "roles-missing": "lacks the GDAP roles SeatSync needs"}
GUARD_ACTION = ("Ask the customer whether they are still yours. If they left, approve the held decreases "
                "(seatsync approvals list) and remove the tenant from the configuration; if not, restore or "
                "renew the GDAP relationship (with the roles SeatSync needs), or add the tenant with "
                "access: consent.")


def gdap_expiring_alerts(data: RunData, links: Links) -> list[Alert]:
    """GDAP relationships of configured tenants that end within the configured days and do not
    extend themselves."""
    if data.started is None:
        return []
    alerts = []
    for note in data.started.relationships_ending:
        day = note.end.date().isoformat()
        when = "today" if note.days_left == 0 else f"in {plural(note.days_left, 'day')}"
        alerts.append(_make(
            "gdap-expiring", f"{note.tenant_id}|{note.partner}|{note.relationship}", {"end": day},
            title=f"{note.name}: GDAP relationship '{note.relationship}' ends on {day}",
            line=f"relationship '{note.relationship}' ends on {day} ({when})",
            facts=(Fact("Tenant", note.name), Fact("Partner account", note.partner),
                   Fact("Relationship", note.relationship), Fact("Ends", f"{day} ({when})")),
            tenant_id=note.tenant_id, tenant_name=note.name, action_text=KINDS["gdap-expiring"].action,
        ))
    return alerts


def inactive_user_alerts(data: RunData, links: Links, *, days: int, currency: str,
                         billing_excluded: Callable[[str, str], bool]) -> list[Alert]:
    """Per tenant: licensed users with no sign-in for ``days`` days, with what their licences cost
    a month at the PSA's unit prices; or, once per tenant, why its sign-ins cannot be read."""
    prices = _prices(data.reconciliation)
    alerts = []
    for tenant_id, snapshot in sorted(data.snapshots.items()):
        if snapshot.sign_ins is None:
            continue
        name = data.tenant_name(tenant_id)
        if snapshot.sign_ins.unavailable is not None:
            reason = snapshot.sign_ins.unavailable
            alerts.append(_make(
                "inactive-users", f"{tenant_id}|unavailable", {"unavailable": True},
                severity="info", title=f"{name}: users' sign-ins cannot be read",
                line=f"sign-ins not read: {_clip(reason, 160)}",
                facts=(Fact("Tenant", name), Fact("Why", _clip(reason, 400)),
                       Fact("Billing", "not affected: sign-ins only feed this alert")),
                tenant_id=tenant_id, tenant_name=name,
                action_text="Grant AuditLog.Read.All (docs/permissions.md) where the tenant has Microsoft Entra ID "
                            "P1 or P2, or exclude the tenant from inactive-users alerts.",
                action_url=links.consent(tenant_id, _partner_of(data, tenant_id)) if "AuditLog" in reason else None,
                action_label="Grant consent" if "AuditLog" in reason else None,
            ))
            continue
        parts = {s.sku_id: s.sku_part_number for s in snapshot.skus}

        def paid(sku_id: str, tenant_id: str = tenant_id, parts: dict[str, str] = parts) -> bool:
            return not is_free_sku(parts.get(sku_id, "")) and not billing_excluded(tenant_id, sku_id)

        found = inactive_users(snapshot, days, paid)
        if not found:
            continue
        cost = Decimal(0)
        priced = 0
        for user in found:
            known = [prices[(tenant_id, s)] for s in user.sku_ids if (tenant_id, s) in prices]
            cost += sum(known, Decimal(0))
            priced += bool(known)
        now = snapshot.collected_at
        shown = [f"{u.user.user_principal_name} ({_idle(u, now)})" for u in found[:10]]
        more = len(found) - len(shown)
        licences = sorted({sku_display_name(s, parts.get(s)) for u in found for s in u.sku_ids})
        facts = [Fact("Tenant", name), Fact("Inactive for", f"{days} days or more"),
                 Fact("Users", ", ".join(shown) + (f", +{more} more" if more > 0 else "")),
                 Fact("Licences", ", ".join(licences))]
        cost_text = ""
        if priced:
            cost_text = money(cost, currency)
            unpriced = f"; {len(found) - priced} without a known price" if priced < len(found) else ""
            facts.append(Fact("Monthly cost", f"{cost_text} at the PSA's unit prices{unpriced}"))
        alerts.append(_make(
            "inactive-users", f"{tenant_id}|inactive",
            {"users": sorted(u.user.user_principal_name.lower() for u in found), "days": days},
            title=f"{name}: {plural(len(found), 'licensed user')} with no sign-in for {days} days",
            line=f"{plural(len(found), 'user')} idle {days}+ days" + (f", {cost_text} a month" if cost_text else ""),
            facts=tuple(facts), tenant_id=tenant_id, tenant_name=name, action_text=KINDS["inactive-users"].action,
        ))
    return alerts


def _partner_of(data: RunData, tenant_id: str) -> str | None:
    row = data.row(tenant_id)
    return row.outcome.partner if row is not None and row.outcome is not None else None


def _idle(user: InactiveUser, now: datetime) -> str:
    if user.last is None:
        return "never signed in" if user.since is None else f"no sign-in since created {user.since.date()}"
    return f"last sign-in {user.last.date()}"


STATUS_WORDS = {"attention": "needs attention"}


def _problem_counts(summary: RunSummary) -> str:
    """``3 (2 users unmatched, 1 price differs)``."""
    if not summary.problems:
        return "0"
    kinds = ", ".join(f"{kind.replace('-', ' ')}: {count}" for kind, count in summary.problems_by_kind.items())
    text = f"{summary.problems} ({kinds})" if kinds else str(summary.problems)
    if summary.problems_excluded:
        text += f"; {summary.problems_excluded} acknowledged by exclusions"
    return text


def reducible_seat_alerts(data: RunData, links: Links) -> list[Alert]:
    """Unused seats that can still be reduced with Microsoft's refund, with their deadline."""
    alerts = []
    for line in data.licences:
        if not line.reducible:
            continue
        facts = line.facts
        seats = line.reducible_seats
        deadline = min(day for _, day in line.reducible)
        cost = f", {line.leaking.times(Decimal(seats) / line.unused)} a month" if line.leaking and line.unused else ""
        alerts.append(_make(
            "reducible-seats", f"{facts.tenant_id}|{facts.sku_id}", {"seats": seats, "until": deadline.isoformat()},
            title=(f"{facts.tenant_name}: {plural(seats, 'unused seat')} of {facts.label} can be reduced until "
                   f"{deadline}"),
            line=f"{facts.label}: {seats} of {facts.purchased} unused, reducible until {deadline}{cost}",
            facts=(Fact("Tenant", facts.tenant_name), Fact("Licence", facts.label),
                   Fact("Purchased", f"{facts.purchased} ({facts.purchased_from})"),
                   Fact("Assigned", str(facts.assigned)), Fact("Reducible", f"{seats} until {deadline}"),
                   Fact("Terms", _clip(facts.term_basis, 200))),
            tenant_id=facts.tenant_id, tenant_name=facts.tenant_name, sku_id=facts.sku_id, licence=facts.label,
            action_text=KINDS["reducible-seats"].action,
        ))
    return alerts


def margin_alerts(data: RunData, links: Links, *, floor: Decimal) -> list[Alert]:
    """Licences whose margin is below the configured floor (a percentage of their revenue)."""
    alerts = []
    for line in data.licences:
        if line.margin_percent is None or line.margin_percent >= floor or line.margin is None:
            continue
        facts = line.facts
        alerts.append(_make(
            "margin-below-floor", f"{facts.tenant_id}|{facts.sku_id}",
            {"percent": str(line.margin_percent), "floor": str(floor)},
            title=f"{facts.tenant_name}: {facts.label} earns {line.margin_percent} % (floor {floor} %)",
            line=f"{facts.label}: margin {line.margin} a month ({line.margin_percent} %), revenue {line.revenue}, "
                 f"cost {line.cost}",
            facts=(Fact("Tenant", facts.tenant_name), Fact("Licence", facts.label), Fact("Billed", str(line.billed)),
                   Fact("Revenue a month", str(line.revenue)), Fact("Cost a month", str(line.cost)),
                   Fact("Margin", f"{line.margin} ({line.margin_percent} %)"), Fact("Floor", f"{floor} %")),
            tenant_id=facts.tenant_id, tenant_name=facts.tenant_name, sku_id=facts.sku_id, licence=facts.label,
            action_text=KINDS["margin-below-floor"].action,
        ))
    return alerts


def renewal_alerts(data: RunData, links: Links) -> list[Alert]:
    """Subscriptions renewing soon while their licence has unused seats."""
    alerts = []
    for renewal in data.renewals:
        sub = renewal.subscription
        day = sub.renewal.isoformat() if sub.renewal else ""
        alerts.append(_make(
            "renewal-unused", f"{renewal.tenant_id}|{renewal.sku_id}|{sub.subscription_id}",
            {"renewal": day, "unused": renewal.unused},
            title=f"{renewal.tenant_name}: {renewal.label} renews on {day} with "
                  f"{plural(renewal.unused, 'unused seat')}",
            line=f"{renewal.label}: renews {day} (in {renewal.days_left} days), {renewal.unused} of "
                 f"{sub.quantity} unused",
            facts=(Fact("Tenant", renewal.tenant_name), Fact("Licence", renewal.label),
                   Fact("Subscription", f"{sub.source} {sub.subscription_id}"), Fact("Renews", day),
                   Fact("Auto-renew", "unknown" if sub.auto_renew is None else ("on" if sub.auto_renew else "off")),
                   Fact("Unused", f"{renewal.unused} of {sub.quantity}")),
            tenant_id=renewal.tenant_id, tenant_name=renewal.tenant_name, sku_id=renewal.sku_id,
            licence=renewal.label, action_text=KINDS["renewal-unused"].action,
        ))
    return alerts


def run_summary_alert(data: RunData, links: Links, open_alerts: int, unread: Sequence[str] = ()) -> Alert:
    """The run in a few facts; ``unread``: the tenants whose licence alerts are missing because
    their snapshots could not be read (a person is told the message is incomplete)."""
    summary = data.summary
    statuses = [c.status for c, _ in data.changes]
    held = statuses.count(ChangeStatus.HELD)
    deferred = statuses.count(ChangeStatus.DEFERRED)
    counted: dict[str, Any] = {
        "status": summary.status, "dryRun": summary.dry_run, "tenants": summary.tenants_total,
        "tenantsOk": summary.tenants_ok, "tenantsFailed": summary.tenants_failed,
        "applied": summary.changes_applied, "held": held, "deferred": deferred,
        "failed": summary.changes_failed, "planned": summary.changes_dry_run, "problems": summary.problems,
    }
    if unread:
        counted["licenceAlertsLeftOut"] = sorted(unread)
    mode = " (dry run)" if summary.dry_run else ""
    status = STATUS_WORDS.get(summary.status, summary.status)
    facts = [
        Fact("Status", summary.status + mode),
        Fact("Tenants", f"{summary.tenants_ok} of {summary.tenants_total} synced"),
        Fact("Tenants failed", str(summary.tenants_failed)),
    ]
    if summary.dry_run:
        facts.append(Fact("Changes planned", str(summary.changes_dry_run)))
    else:
        facts.append(Fact("Changes applied", str(summary.changes_applied)))
    facts += [
        Fact("Held for approval", str(held)),
        Fact("Deferred", str(deferred)),
        Fact("Changes failed", str(summary.changes_failed)),
        Fact("Lines unchanged", str(summary.lines_unchanged)),
        Fact("Billing problems", _problem_counts(summary)),
        Fact("Open alerts", str(open_alerts)),
    ]
    if unread:
        names = sorted(data.tenant_name(t) for t in unread)
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        facts.append(Fact("Licence alerts left out", f"{plural(len(names), 'tenant')} ({shown}): their snapshots "
                                                     "could not be read when the run was told of; see the run "
                                                     "report, or run seatsync notify again"))
    done = (plural(summary.changes_dry_run, "change") + " planned" if summary.dry_run
            else plural(summary.changes_applied, "change") + " applied")
    if summary.problems:
        done += ", " + plural(summary.problems, "billing problem")
    if unread:
        done += f"; licence alerts of {plural(len(unread), 'tenant')} left out"
    return _make(
        "run-summary", "run", counted, severity="critical" if summary.status == "failed" else
        "warning" if summary.status in ("partial", "attention") or unread else "info",
        title=f"Run {status}{mode}: {done}", line=f"{status}{mode}, {done}",
        facts=tuple(facts), action_text=f"The whole report: seatsync report {data.run_id}",
        action_url=links.run_report(data.run_id), action_label="Open run report",
    )


# --------------------------------------------------------------------------- all of them

KIND_ORDER = {kind: index for index, kind in enumerate(ALERT_KINDS)}


def sort_key(alert: Alert) -> tuple[int, str, str, str]:
    return (KIND_ORDER[alert.kind], (alert.tenant_name or "").lower(), (alert.licence or "").lower(), alert.key)


TENANT_PART_KINDS: frozenset[AlertKind] = frozenset({
    "unlinked-licence", "unused-licences", "shared-mailbox-licensed", "inactive-users", "reducible-seats",
    "margin-below-floor", "renewal-unused"})
"""The kinds made from a tenant's own licences, snapshot and money: these can be built from a run's
tenants in parts (``build_alerts``'s ``parts``); the others read the run as a whole."""


@dataclass
class AlertTally:
    """What ``iter_alerts`` counted as it went: the alerts it made and the exclusions that took."""

    alerts: int = 0
    excluded: int = 0


def build_alerts(data: RunData, settings: NotificationSettings, links: Links,
                 config: SeatSyncConfig | None = None, parts: Iterable[RunData] = ()) -> BuiltAlerts:
    """Every enabled alert of a run, exclusions applied, in display order (``iter_alerts``, held)."""
    tally = AlertTally()
    alerts = sorted(iter_alerts(data, settings, links, config, parts, tally), key=sort_key)
    return BuiltAlerts(tuple(alerts), tally.excluded)


def iter_alerts(data: RunData, settings: NotificationSettings, links: Links, config: SeatSyncConfig | None = None,
                parts: Iterable[RunData] = (), tally: AlertTally | None = None) -> Iterator[Alert]:
    """Every enabled alert of a run, exclusions applied, as they are made (not in display order):
    the whole run's kinds, then each part's tenant kinds, then the run's summary. ``tally``
    counts them and the exclusions.

    ``parts``: the run's tenants, a few at a time, each with their reconciliation, licences and
    snapshots (``TENANT_PART_KINDS`` are built from each part as it comes, and the part let go), so
    that notifying a run of thousands of tenants never holds them all; ``data`` then carries what
    the whole run says (its tenants' outcomes, its alerted changes)."""
    rules = settings.alerts

    def billing_excluded(tenant_id: str, sku_id: str) -> bool:
        if config is None:
            return False
        tenant = config.tenant(tenant_id)
        return sku_id.lower() in config.excluded_licences or (
            tenant is not None and config.excluded(tenant, sku_id))

    def excluded_sku(kind: AlertKind) -> Callable[[str, str], bool]:
        # A licence excluded by itself; a whole tenant's exclusion is applied (and counted) below.
        return lambda tenant_id, sku_id: (billing_excluded(tenant_id, sku_id) or (
            settings.excluded(kind, tenant_id, sku_id) and not settings.excluded(kind, tenant_id, None)))

    def one(alert: Alert | None) -> list[Alert]:
        return [alert] if alert else []

    builders: dict[AlertKind, Callable[[RunData], list[Alert]]] = {  # in display order
        "run-failed": lambda of: one(run_failed_alert(of, links)),
        "writes-recovered": lambda of: one(writes_recovered_alert(of, links)),
        "auth-failed": lambda of: auth_failed_alerts(of, links),
        "billing-problem": lambda of: billing_problem_alerts(of, links),
        "changes-held": lambda of: changes_held_alerts(of, links),
        "unlinked-licence": lambda of: unlinked_licence_alerts(of, links),
        "unused-licences": lambda of: unused_licence_alerts(
            of, links, minimum=rules.unused_licences.minimum_unused, currency=settings.currency,
            billing_excluded=billing_excluded),
        "shared-mailbox-licensed": lambda of: shared_mailbox_alerts(
            of, links, excluded_sku=excluded_sku("shared-mailbox-licensed")),
        "tenant-guarded": lambda of: tenant_guarded_alerts(of, links),
        "gdap-not-added": lambda of: gdap_alerts(of, links),
        "gdap-ended": lambda of: gdap_ended_alerts(of, links),
        "gdap-expiring": lambda of: gdap_expiring_alerts(of, links),
        "inactive-users": lambda of: inactive_user_alerts(
            of, links, days=rules.inactive_users.days, currency=settings.currency, billing_excluded=billing_excluded),
        "reducible-seats": lambda of: reducible_seat_alerts(of, links),
        "margin-below-floor": lambda of: margin_alerts(of, links, floor=rules.margin_below_floor.floor_percent),
        "renewal-unused": lambda of: renewal_alerts(of, links),
    }

    def candidates(of: RunData, kinds: Callable[[AlertKind], bool]) -> tuple[list[Alert], int]:
        """The alerts of ``kinds`` made from ``of``: those kept, and how many exclusions took."""
        found = [alert for kind, build in builders.items() if kinds(kind) and rules.enabled(kind)
                 for alert in build(of)]
        kept = [a for a in found if not settings.excluded(a.kind, a.tenant_id, a.sku_id, a.problem)]
        return kept, len(found) - len(kept)

    tally = tally if tally is not None else AlertTally()
    open_alerts = 0
    unread = list(data.unread_snapshots)
    try:
        for of, kinds in chain([(data, lambda kind: True)],
                               ((part, TENANT_PART_KINDS.__contains__) for part in parts)):
            kept, excluded = candidates(of, kinds)
            tally.excluded += excluded
            tally.alerts += len(kept)
            open_alerts += sum(1 for a in kept if a.kind not in RUN_KINDS)
            if of is not data:
                unread += of.unread_snapshots
            yield from kept
        if rules.enabled("run-summary"):
            tally.alerts += 1
            yield run_summary_alert(data, links, open_alerts=open_alerts, unread=unread)
    finally:
        # the alerts hold the facts they share; the cache that found them equal is not kept past the run
        _shared_fact.cache_clear()


def count_by_kind(alerts: Sequence[Alert]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert.kind] = counts.get(alert.kind, 0) + 1
    return counts
