"""Alert building: every kind's exact content, fingerprints, exclusions and the kinds' rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shared.adapters.run_store import ReconciliationRow, UnlinkedLicence
from shared.config.notifications import AlertExclusion, AlertRule, AlertRules, NotificationSettings
from shared.config.schema import SeatSyncConfig, TenantConfig
from shared.contracts import RunSummary, StartedRun, TenantOutcome, TenantWork
from shared.domain.model import (
    ChangeKind,
    ChangeStatus,
    DirectoryUser,
    Mailbox,
    PlannedChange,
    SkuCount,
    TenantSnapshot,
)
from shared.domain.problems import DEFAULT_ACTIONS, Problem, ProblemKind
from shared.notifications.alerts import (
    Alert,
    Fact,
    Links,
    RunData,
    TenantRow,
    build_alerts,
    fingerprint,
)
from shared.notifications.sample import sample_run_data

RUN = "20261125T020000Z-1a2b3c4d"
NOW = datetime(2026, 11, 25, 2, 5, tzinfo=UTC)
FABRIKAM = "fab00000-0000-4000-8000-000000000001"
NORTHWIND = "00000000-0000-4000-8000-0000000000b2"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
EXO1 = "4b9405b0-7788-4568-add1-99614e613b69"
PBI = "f8a1db68-be16-40ed-86d5-cb42ce701560"
CLIENT = "c1c1c1c1-0000-4000-8000-000000000002"
LINKS = Links(base_url="https://seatsync.contoso-msp.example", graph_client_id=CLIENT)


def summary(**changes: object) -> RunSummary:
    values: dict[str, object] = {
        "run_id": RUN, "status": "succeeded", "dry_run": False, "trigger": "timer", "requested_by": "timer",
        "started_at": datetime(2026, 11, 25, 2, tzinfo=UTC), "finished_at": NOW, "tenants_total": 2,
        "tenants_ok": 2, "changes_applied": 3, "lines_unchanged": 7,
    }
    values.update(changes)
    return RunSummary.model_validate(values)


def ok(tenant_id: str, name: str) -> TenantRow:
    return TenantRow(tenant_id, name, TenantOutcome(tenant_id=tenant_id, name=name, status="ok"))


def snapshot(tenant_id: str = FABRIKAM, *, skus: tuple[SkuCount, ...] = (), users: tuple[DirectoryUser, ...] = (),
             mailboxes: tuple[Mailbox, ...] | None = None) -> TenantSnapshot:
    return TenantSnapshot(tenant_id=tenant_id, run_id=RUN, collected_at=NOW, skus=skus, users=users,
                          mailboxes=mailboxes)


def data(**changes: object) -> RunData:
    values: dict[str, object] = {"run_id": RUN, "summary": summary(), "tenants": (ok(FABRIKAM, "Fabrikam Ltd"),)}
    values.update(changes)
    return RunData(**values)  # type: ignore[arg-type]


def only(kind: str, run: RunData, settings: NotificationSettings | None = None,
         config: SeatSyncConfig | None = None, links: Links = LINKS) -> list[Alert]:
    built = build_alerts(run, settings or NotificationSettings(), links, config)
    return [a for a in built.alerts if a.kind == kind]


def held(**changes: object) -> PlannedChange:
    values: dict[str, object] = {
        "change_id": "c1", "kind": ChangeKind.SET_QUANTITY, "tenant_id": FABRIKAM, "company_id": "250",
        "psa": "connectwise", "agreement_id": "1001", "line_id": "5001", "sku_id": SPB, "old_quantity": 25,
        "new_quantity": 18, "reason": "decrease of 7 seats (28%) is above the 20% safety limit",
        "status": ChangeStatus.HELD,
    }
    values.update(changes)
    return PlannedChange(**values)  # type: ignore[arg-type]


def unlinked(**changes: object) -> UnlinkedLicence:
    values: dict[str, object] = {"tenant_id": FABRIKAM, "tenant_name": "Fabrikam Ltd", "sku_id": PBI,
                                 "sku_part_number": "POWER_BI_PRO", "label": "Power BI Pro", "purchased": 4,
                                 "assigned": 3}
    values.update(changes)
    return UnlinkedLicence(**values)  # type: ignore[arg-type]


def priced(price: str | None, sku: str = SPB) -> ReconciliationRow:
    return ReconciliationRow(
        tenant_id=FABRIKAM, tenant_name="Fabrikam Ltd", psa="connectwise", company_id="250", agreement_id="1001",
        line_id="5001", mapping_key="k", source=f"sku:{sku}", label="Microsoft 365 Business Premium", purchased=25,
        counted=22, target=22, billed_before=22, unit_price=None if price is None else Decimal(price))


# --------------------------------------------------------------------------- each kind, exactly


def test_licence_with_no_billing_mapping() -> None:
    [alert] = only("unlinked-licence", data(unlinked=(unlinked(),)))
    assert alert.title == "Fabrikam Ltd: Power BI Pro has no billing mapping"
    assert alert.line == "Power BI Pro: 4 purchased, 3 assigned"
    assert alert.facts == (Fact("Tenant", "Fabrikam Ltd"), Fact("Licence", "Power BI Pro"), Fact("Purchased", "4"),
                           Fact("Assigned", "3"))
    assert (alert.severity, alert.tenant_id, alert.sku_id, alert.licence) == ("warning", FABRIKAM, PBI, "Power BI Pro")
    assert alert.action_text == "Map it to a billing profile, or exclude it: seatsync unlinked"
    assert (alert.action_url, alert.action_label) == ("https://seatsync.contoso-msp.example/api/dashboard/mapping",
                                                      "Unlinked licences")
    assert alert.key == f"unlinked-licence|{FABRIKAM}|{PBI}"


def test_a_licence_new_to_the_tenant_says_so() -> None:
    [alert] = only("unlinked-licence", data(unlinked=(unlinked(),), new_skus={FABRIKAM: frozenset({PBI})}))
    assert alert.title == "Fabrikam Ltd: new licence Power BI Pro has no billing mapping"
    assert alert.line == "Power BI Pro: 4 purchased, 3 assigned (new)"
    assert alert.facts[-1] == Fact("New", "first seen in this tenant in this run")


def test_unused_licences_with_their_monthly_cost_where_the_price_is_known() -> None:
    snap = snapshot(skus=(SkuCount(SPB, "SPB", purchased=25, consumed=22),
                          SkuCount(EXO1, "EXCHANGESTANDARD", purchased=10, consumed=4)))
    alerts = only("unused-licences", data(snapshots={FABRIKAM: snap}, reconciliation=(priced("22.00"),)))
    assert [a.title for a in alerts] == ["Fabrikam Ltd: 6 unused licences of Exchange Online (Plan 1)",
                                         "Fabrikam Ltd: 3 unused licences of Microsoft 365 Business Premium"]
    exchange, premium = alerts
    assert exchange.line == "Exchange Online (Plan 1): 6 of 10 unused"
    assert Fact("Monthly cost", "") not in exchange.facts and len(exchange.facts) == 5
    assert premium.line == "Microsoft 365 Business Premium: 3 of 25 unused, 66.00 USD a month"
    assert premium.facts == (
        Fact("Tenant", "Fabrikam Ltd"), Fact("Licence", "Microsoft 365 Business Premium"), Fact("Purchased", "25"),
        Fact("Assigned", "22"), Fact("Unused", "3"), Fact("Monthly cost", "66.00 USD (3 at 22.00 USD)"))
    assert premium.action_text == "Assign them, or reduce the subscription (NCE: at its renewal)."
    assert premium.severity == "info"


def test_equal_short_facts_of_a_run_s_alerts_are_one_object() -> None:
    """A run holds thousands of alerts until they are sent: the facts they repeat are shared."""
    snap = snapshot(skus=(SkuCount(SPB, "SPB", purchased=25, consumed=22),
                          SkuCount(EXO1, "EXCHANGESTANDARD", purchased=25, consumed=4)))
    exchange, premium = only("unused-licences", data(snapshots={FABRIKAM: snap}))
    assert exchange.facts[0] == premium.facts[0] == Fact("Tenant", "Fabrikam Ltd")
    assert exchange.facts[0] is premium.facts[0]
    assert exchange.facts[2] is premium.facts[2]  # Purchased: 25
    assert exchange.facts[4] is not premium.facts[4] and exchange.facts[4].value == "21"


def test_unused_licences_skip_free_and_tenant_wide_skus_and_honour_the_minimum() -> None:
    snap = snapshot(skus=(
        SkuCount("f30db892-07e9-47e9-837c-80727f46fd3d", "FLOW_FREE", purchased=10000, consumed=3),
        SkuCount("a403ebcc-fae0-4ca2-8c8c-7a907fd6c235", "POWER_BI_STANDARD", purchased=1000000, consumed=2),
        SkuCount("47794cd0-f0e5-45c5-9033-2eb6b5fc84e0", "MCOPSTNC", purchased=10, consumed=0, applies_to="Company"),
        SkuCount(SPB, "SPB", purchased=25, consumed=24),
        SkuCount(EXO1, "EXCHANGESTANDARD", purchased=5, consumed=5),
    ))
    run = data(snapshots={FABRIKAM: snap})
    assert [a.sku_id for a in only("unused-licences", run)] == [SPB]
    settings = NotificationSettings(alerts=AlertRules(unused_licences={"minimumUnused": 2}))  # type: ignore[arg-type]
    assert only("unused-licences", run, settings) == []


def test_a_row_keeps_what_the_alerts_read_of_its_outcome_and_equal_ones_are_one_object() -> None:
    """A notification holds a row per tenant of the run: thousands of tenants synced without a
    word share one outcome, and a failed one keeps its error, code and partner account."""
    first = TenantRow(FABRIKAM, "Fabrikam Ltd", TenantOutcome(tenant_id=FABRIKAM, name="Fabrikam Ltd", status="ok",
                                                               sku_count=4, user_count=20, warnings=["slow"]))
    second = ok(NORTHWIND, "Northwind")
    assert first.outcome is second.outcome
    assert first.outcome is not None and first.outcome.status == "ok" and first.outcome.partner is None
    failed = TenantRow(NORTHWIND, "Northwind", TenantOutcome(
        tenant_id=NORTHWIND, name="Northwind", status="auth-failed", error_code="AADSTS65001", error="no consent",
        partner="europe"))
    assert failed.outcome is not None and failed.outcome is not second.outcome
    assert (failed.outcome.status, failed.outcome.error_code, failed.outcome.error, failed.outcome.partner) == (
        "auth-failed", "AADSTS65001", "no consent", "europe")
    run = data(tenants=(first, failed))
    assert run.row(NORTHWIND.upper()) is failed and run.row(FABRIKAM) is first and run.row("unknown") is None


def test_invalid_auth_with_the_aadsts_code_and_the_consent_link() -> None:
    outcome = TenantOutcome(tenant_id=NORTHWIND, name="Northwind Traders", status="auth-failed",
                            error_code="AADSTS700016", error="cannot get a token: AADSTS700016: Application not found")
    [alert] = only("auth-failed", data(tenants=(TenantRow(NORTHWIND, "Northwind Traders", outcome),)))
    what = ("The SeatSync app is not consented in this tenant: a Global Administrator of the customer grants "
            "admin consent.")
    assert alert.title == "Northwind Traders: cannot sign in (AADSTS700016)"
    assert alert.line == f"AADSTS700016: {what}"
    assert alert.facts == (Fact("Tenant", "Northwind Traders"), Fact("Error code", "AADSTS700016"),
                           Fact("Error", "cannot get a token: AADSTS700016: Application not found"),
                           Fact("What to do", what),
                           Fact("Admin consent",
                                f"https://login.microsoftonline.com/{NORTHWIND}/adminconsent?client_id={CLIENT}"))
    assert alert.action_url == (f"https://login.microsoftonline.com/{NORTHWIND}/adminconsent?client_id={CLIENT}")
    assert alert.action_label == "Grant consent: Northwind Traders"
    assert alert.severity == "critical"


@pytest.mark.parametrize(("code", "link", "starts"), [
    ("AADSTS65001", f"https://login.microsoftonline.com/{NORTHWIND}/adminconsent?client_id={CLIENT}",
     "Admin consent is missing"),
    ("AADSTS7000215", "https://entra.microsoft.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/"
                      f"~/Credentials/appId/{CLIENT}", "The client secret is wrong"),
    ("AADSTS7000222", "https://entra.microsoft.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/"
                      f"~/Credentials/appId/{CLIENT}", "The client secret has expired"),
    ("AADSTS53003", None, "A Conditional Access policy blocks the app"),
    ("AADSTS90002", None, "The tenant does not exist"),
    (None, f"https://login.microsoftonline.com/{NORTHWIND}/adminconsent?client_id={CLIENT}",
     "Check the app's admin consent"),
])
def test_each_aadsts_code_says_what_to_do(code: str | None, link: str | None, starts: str) -> None:
    outcome = TenantOutcome(tenant_id=NORTHWIND, name="Northwind", status="auth-failed", error_code=code)
    [alert] = only("auth-failed", data(tenants=(TenantRow(NORTHWIND, "Northwind", outcome),)))
    assert alert.action_text.startswith(starts)
    assert alert.action_url == link
    assert alert.facts[1] == Fact("Error code", code or "none given")


def test_without_the_graph_client_id_or_public_url_there_are_no_links() -> None:
    outcome = TenantOutcome(tenant_id=NORTHWIND, name="Northwind", status="auth-failed", error_code="AADSTS65001")
    run = data(tenants=(TenantRow(NORTHWIND, "Northwind", outcome),), changes=((held(), None),),
               summary=summary(status="partial", tenants_failed=1))
    alerts = build_alerts(run, NotificationSettings(), Links()).alerts
    assert all(a.action_url is None for a in alerts)
    assert {a.kind for a in alerts} == {"run-failed", "auth-failed", "changes-held", "run-summary"}


def test_gdap_tenant_not_yet_added() -> None:
    started = StartedRun(run_id=RUN, tenants=[], gdap_not_configured=[
        TenantWork(tenant_id="c0000000-0000-4000-8000-000000000004", name="Contoso Retail")])
    [alert] = only("gdap-not-added", data(started=started))
    assert alert.title == "Contoso Retail is a GDAP customer not yet in SeatSync"
    assert alert.line == "in GDAP, not configured"
    assert alert.facts == (Fact("Tenant", "Contoso Retail"),
                           Fact("Tenant ID", "c0000000-0000-4000-8000-000000000004"))
    assert alert.action_text.startswith("Add them to the configuration (seatsync config export")


def test_shared_mailbox_holding_a_licence_matches_by_upn_ignoring_case() -> None:
    users = (DirectoryUser("1", "Info@Fabrikam.example", "Info", sku_ids=(EXO1, PBI)),
             DirectoryUser("2", "alice@fabrikam.example", "Alice", sku_ids=(SPB,)),
             DirectoryUser("3", "old@fabrikam.example", "Old", sku_ids=(EXO1,)),
             DirectoryUser("4", "free@fabrikam.example", "Free shared"))
    mailboxes = (Mailbox("info@fabrikam.example", "Info", "Shared"), Mailbox("alice@fabrikam.example", "Alice", "User"),
                 Mailbox("old@fabrikam.example", "Old", "Shared", is_deleted=True),
                 Mailbox("free@fabrikam.example", "Free shared", "Shared"))
    snap = snapshot(skus=(SkuCount(EXO1, "EXCHANGESTANDARD", 3, 3), SkuCount(PBI, "POWER_BI_PRO", 1, 1)),
                    users=users, mailboxes=mailboxes)
    [alert] = only("shared-mailbox-licensed", data(snapshots={FABRIKAM: snap}))
    assert alert.title == "Fabrikam Ltd: shared mailbox Info@Fabrikam.example holds a licence"
    assert alert.line == "Info@Fabrikam.example: Exchange Online (Plan 1), Power BI Pro"
    assert alert.facts == (Fact("Tenant", "Fabrikam Ltd"), Fact("Mailbox", "Info@Fabrikam.example"),
                           Fact("Licences", "Exchange Online (Plan 1), Power BI Pro"))
    assert alert.action_text.startswith("A shared mailbox needs no licence unless it is over 50 GB")


def test_no_shared_mailbox_alert_when_the_mailbox_report_was_not_read() -> None:
    users = (DirectoryUser("1", "info@fabrikam.example", "Info", sku_ids=(EXO1,)),)
    assert only("shared-mailbox-licensed", data(snapshots={FABRIKAM: snapshot(users=users, mailboxes=None)})) == []


def test_changes_held_for_approval() -> None:
    [alert] = only("changes-held", data(changes=((held(), None), (held(change_id="c2", status=ChangeStatus.APPLIED),
                                                                  None))))
    assert alert.title == "Fabrikam Ltd: Microsoft 365 Business Premium 25 → 18 held for approval"
    assert alert.line == ("Microsoft 365 Business Premium: 25 → 18 (decrease of 7 seats (28%) is above the 20% "
                          "safety limit)")
    assert alert.facts == (
        Fact("Tenant", "Fabrikam Ltd"), Fact("Licence", "Microsoft 365 Business Premium"), Fact("Quantity", "25 → 18"),
        Fact("Where", "connectwise agreement 1001, line 5001"),
        Fact("Why held", "decrease of 7 seats (28%) is above the 20% safety limit"))
    assert (alert.action_text, alert.action_url, alert.action_label) == (
        "Approve or dismiss: seatsync approvals list", "https://seatsync.contoso-msp.example/api/dashboard/approvals",
        "Review approvals")
    dry = data(summary=summary(dry_run=True), changes=((held(), None),))
    assert only("changes-held", dry) == [], "a dry run holds nothing for approval"
    assert Fact("Held for approval", "1") in only("run-summary", dry)[0].facts


def test_a_failed_or_partial_run() -> None:
    failed_outcome = TenantOutcome(tenant_id=NORTHWIND, name="Northwind", status="failed", error="HTTP 503")
    run = data(summary=summary(status="partial", tenants_failed=1, tenants_ok=1, changes_failed=1),
               tenants=(ok(FABRIKAM, "Fabrikam Ltd"), TenantRow(NORTHWIND, "Northwind", failed_outcome)),
               changes=((held(status=ChangeStatus.FAILED), "HTTP 400"),))
    [alert] = only("run-failed", run)
    assert alert.title == "Run partly failed: 1 of 2 tenants, 1 change"
    assert alert.line == "1 of 2 tenants, 1 change failed"
    assert alert.facts == (Fact("Run", RUN), Fact("Status", "partial"),
                           Fact("Tenants failed", "Northwind (HTTP 503)"),
                           Fact("Changes failed", "1: Fabrikam Ltd: Microsoft 365 Business Premium set-quantity "
                                                  "(HTTP 400)"))
    assert alert.action_text == f"See what failed: seatsync report {RUN}"
    assert alert.action_url == f"https://seatsync.contoso-msp.example/api/dashboard/runs/{RUN}"

    crashed = data(summary=summary(status="failed", tenants_total=0, tenants_ok=0, error="StoreError: boom"),
                   tenants=())
    [alert] = only("run-failed", crashed)
    assert alert.title == "Run failed"
    assert alert.line == "StoreError: boom"
    assert alert.facts == (Fact("Run", RUN), Fact("Status", "failed"), Fact("Error", "StoreError: boom"))
    assert only("run-failed", data()) == [], "a run that succeeded is no failure"


def test_writes_recorded_late_and_a_dead_run_reach_a_person() -> None:
    dead = "run 20261124T020000Z-0000dead died without finishing: its process (pid 4242 on host1) has ended"
    started = StartedRun(run_id=RUN, tenants=[], took_over=dead)
    recovered = held(change_id="c9", kind=ChangeKind.CREATE_LINE, old_quantity=None, new_quantity=26, line_id=None,
                     status=ChangeStatus.RECOVERED)
    [alert] = only("writes-recovered", data(started=started, changes=((recovered, None),)))
    assert alert.title == "1 write found in the PSA and recorded"
    assert alert.facts == (Fact("Run", RUN), Fact("Earlier run", dead),
                           Fact("Writes recorded late", "1: Fabrikam Ltd: Microsoft 365 Business Premium "
                                                        "create-line 26"))
    assert alert.severity == "warning" and alert.action_url == f"https://seatsync.contoso-msp.example/api/dashboard/runs/{RUN}"
    [only_dead] = only("writes-recovered", data(started=started))
    assert (only_dead.title, only_dead.line) == ("An earlier run died without finishing", dead)
    assert only("writes-recovered", data()) == [], "nothing recovered, nobody died: no alert"
    excluded = NotificationSettings.model_validate({"exclusions": [{"tenantId": FABRIKAM}]})
    assert only("writes-recovered", data(started=started), excluded), "a run's alert is never excluded"


def test_run_summary_counts_applied_held_and_deferred() -> None:
    changes = ((held(), None), (held(change_id="c2", status=ChangeStatus.DEFERRED), None),
               (held(change_id="c3", status=ChangeStatus.DEFERRED), None))
    [alert] = only("run-summary", data(changes=changes, unlinked=(unlinked(),)))
    assert alert.title == "Run succeeded: 3 changes applied"
    assert alert.facts == (
        Fact("Status", "succeeded"), Fact("Tenants", "2 of 2 synced"), Fact("Tenants failed", "0"),
        Fact("Changes applied", "3"), Fact("Held for approval", "1"), Fact("Deferred", "2"),
        Fact("Changes failed", "0"), Fact("Lines unchanged", "7"), Fact("Billing problems", "0"),
        Fact("Open alerts", "2"))
    [dry] = only("run-summary", data(summary=summary(dry_run=True, changes_applied=0, changes_dry_run=4)))
    assert dry.title == "Run succeeded (dry run): 4 changes planned"
    assert Fact("Changes planned", "4") in dry.facts


def test_the_sample_run_has_one_alert_of_every_kind_in_display_order() -> None:
    alerts = build_alerts(sample_run_data(NOW), NotificationSettings(), LINKS).alerts
    assert [a.kind for a in alerts] == ["run-failed", "auth-failed", "billing-problem", "changes-held",
                                        "unlinked-licence", "unused-licences", "shared-mailbox-licensed",
                                        "gdap-not-added", "gdap-ended", "run-summary"]


# --------------------------------------------------------------------------- fingerprints


def test_fingerprints_are_stable_and_ignore_wording() -> None:
    first = only("unlinked-licence", data(unlinked=(unlinked(),)))[0]
    again = only("unlinked-licence", data(unlinked=(unlinked(label="Power BI (Pro)"),)))[0]
    assert first.fingerprint == again.fingerprint
    assert first.fingerprint == fingerprint("unlinked-licence", f"{FABRIKAM}|{PBI}", {"purchased": 4})
    assert len(first.fingerprint) == 20


def test_fingerprints_change_with_the_facts_that_matter() -> None:
    base = only("unlinked-licence", data(unlinked=(unlinked(),)))[0]
    more_assigned = only("unlinked-licence", data(unlinked=(unlinked(assigned=4),)))[0]
    more_bought = only("unlinked-licence", data(unlinked=(unlinked(purchased=6),)))[0]
    assert more_assigned.fingerprint == base.fingerprint, "assignments move daily; a purchase is news"
    assert more_bought.fingerprint != base.fingerprint
    assert more_bought.key == base.key

    def auth(code: str) -> Alert:
        outcome = TenantOutcome(tenant_id=NORTHWIND, name="N", status="auth-failed", error_code=code)
        return only("auth-failed", data(tenants=(TenantRow(NORTHWIND, "N", outcome),)))[0]

    assert auth("AADSTS65001").fingerprint != auth("AADSTS7000222").fingerprint

    def unused(consumed: int) -> Alert:
        snap = snapshot(skus=(SkuCount(SPB, "SPB", purchased=25, consumed=consumed),))
        return only("unused-licences", data(snapshots={FABRIKAM: snap}))[0]

    assert unused(20).fingerprint != unused(21).fingerprint
    assert unused(20).fingerprint == unused(20).fingerprint
    held_a = only("changes-held", data(changes=((held(), None),)))[0]
    held_b = only("changes-held", data(changes=((held(new_quantity=17), None),)))[0]
    assert held_a.fingerprint != held_b.fingerprint and held_a.key == held_b.key


def test_run_failures_are_one_alert_per_run_and_summaries_are_keyed_by_their_numbers() -> None:
    partial = summary(status="partial", tenants_failed=1)
    one = only("run-failed", data(summary=partial))[0]
    other = only("run-failed", replace(data(summary=partial.model_copy(update={"run_id": "20261126T020000Z-00000000"})),
                                       run_id="20261126T020000Z-00000000"))[0]
    assert one.key != other.key
    same_numbers = only("run-summary", replace(data(), run_id="20261126T020000Z-00000000"))[0]
    assert same_numbers.fingerprint == only("run-summary", data())[0].fingerprint
    assert only("run-summary", data(summary=summary(changes_applied=4)))[0].fingerprint != same_numbers.fingerprint


# --------------------------------------------------------------------------- exclusions and rules


def every_kind() -> RunData:
    return sample_run_data(NOW)


def test_exclusion_of_a_tenant_drops_every_alert_about_it() -> None:
    fabrikam = "fab00000-0000-4000-8000-000000000001"
    settings = NotificationSettings(exclusions=(AlertExclusion(tenant_id=fabrikam.upper()),))
    built = build_alerts(every_kind(), settings, LINKS)
    assert all(a.tenant_id != fabrikam for a in built.alerts)
    assert built.excluded == 4  # billing problem, unlinked, unused, shared mailbox
    assert {a.kind for a in built.alerts} >= {"run-failed", "run-summary", "auth-failed"}


def test_exclusion_of_a_licence_in_every_tenant_or_in_one_tenant() -> None:
    pbi_everywhere = NotificationSettings(exclusions=(AlertExclusion(sku_id=PBI),))
    assert [a for a in build_alerts(every_kind(), pbi_everywhere, LINKS).alerts if a.sku_id == PBI] == []
    spb_in_adatum = NotificationSettings(exclusions=(
        AlertExclusion(tenant_id="ada00000-0000-4000-8000-000000000003", sku_id=SPB),))
    kinds = [a.kind for a in build_alerts(every_kind(), spb_in_adatum, LINKS).alerts if a.sku_id == SPB]
    assert kinds == ["billing-problem", "unused-licences"], \
        "Fabrikam's unmatched users and unused Business Premium stay; Adatum's held change goes"


def test_exclusion_limited_to_some_kinds() -> None:
    rule = AlertExclusion(tenant_id=FABRIKAM, kinds=("unused-licences",))
    kinds = {a.kind for a in build_alerts(every_kind(), NotificationSettings(exclusions=(rule,)), LINKS).alerts
             if a.tenant_id == FABRIKAM}
    assert kinds == {"billing-problem", "unlinked-licence", "shared-mailbox-licensed"}


def test_exclusion_of_a_licence_from_a_shared_mailbox_alert_keeps_its_other_licences() -> None:
    users = (DirectoryUser("1", "info@fabrikam.example", "Info", sku_ids=(EXO1, PBI)),)
    snap = snapshot(users=users, mailboxes=(Mailbox("info@fabrikam.example", "Info", "Shared"),))
    settings = NotificationSettings(exclusions=(AlertExclusion(sku_id=PBI),))
    [alert] = only("shared-mailbox-licensed", data(snapshots={FABRIKAM: snap}), settings)
    assert alert.line == "info@fabrikam.example: Exchange Online (Plan 1)"
    assert alert.sku_id == EXO1


def test_licences_excluded_from_billing_raise_no_licence_alerts() -> None:
    config = SeatSyncConfig(tenants=(TenantConfig(tenant_id=FABRIKAM, name="Fabrikam Ltd",
                                                  excluded_licences=(SPB,)),), excluded_licences=(EXO1,))
    built = build_alerts(every_kind(), NotificationSettings(), LINKS, config)
    assert [a for a in built.alerts if a.kind == "unused-licences"] == []
    assert [a for a in built.alerts if a.kind == "shared-mailbox-licensed"] == []


def test_disabled_kinds_are_not_built() -> None:
    rules = AlertRules(unused_licences={"enabled": False}, run_summary=AlertRule(enabled=False))  # type: ignore[arg-type]
    kinds = {a.kind for a in build_alerts(every_kind(), NotificationSettings(alerts=rules), LINKS).alerts}
    assert "unused-licences" not in kinds and "run-summary" not in kinds
    assert "unlinked-licence" in kinds


# --------------------------------------------------------------------------- billing problems


def cancelled_line() -> Problem:
    return Problem(ProblemKind.LINE_CANCELLED, FABRIKAM, "line 5001 was cancelled on 2026-10-31; billing is not "
                   "restarted automatically", source=f"sku:{SPB}", label="Microsoft 365 Business Premium",
                   psa="connectwise", company_id="250", agreement_id="1001", line_id="5001")


def with_problems(*problems: Problem, **summary_changes: object) -> RunData:
    return data(tenants=(replace(ok(FABRIKAM, "Fabrikam Ltd"), problems=problems),),
                summary=summary(status="attention", problems=len(problems), **summary_changes))


def test_a_billing_problem_names_where_it_is_and_what_to_do() -> None:
    [alert] = only("billing-problem", with_problems(cancelled_line()))
    assert alert.title == ("Fabrikam Ltd: Microsoft 365 Business Premium: line 5001 was cancelled on 2026-10-31; "
                           "billing is not restarted automatically")
    assert alert.facts == (
        Fact("Tenant", "Fabrikam Ltd"), Fact("Licence", "Microsoft 365 Business Premium"),
        Fact("Problem", "Line cancelled"),
        Fact("What is wrong", "line 5001 was cancelled on 2026-10-31; billing is not restarted automatically"),
        Fact("Where", "connectwise company 250, agreement 1001, line 5001"),
        Fact("Billing", "nothing written for this line until it is fixed"),
        Fact("What to do", DEFAULT_ACTIONS[ProblemKind.LINE_CANCELLED]))
    assert alert.line.endswith(DEFAULT_ACTIONS[ProblemKind.LINE_CANCELLED])
    assert (alert.tenant_id, alert.sku_id, alert.problem, alert.severity) == (
        FABRIKAM, SPB, ProblemKind.LINE_CANCELLED, "warning")
    assert alert.action_url == f"https://seatsync.contoso-msp.example/api/dashboard/runs/{RUN}"


def test_a_billing_problem_lists_its_users_and_facts_and_changes_when_they_do() -> None:
    unmatched = Problem(ProblemKind.USERS_UNMATCHED, FABRIKAM, "2 users hold it but match no company's user filter",
                        source=f"sku:{SPB}", label="Microsoft 365 Business Premium",
                        users=tuple(f"u{i}@fabrikam.example" for i in range(12)),
                        facts=(("Seats nobody bills", "12"),), blocks=False)
    [alert] = only("billing-problem", with_problems(unmatched))
    assert Fact("Users", ", ".join(f"u{i}@fabrikam.example" for i in range(10)) + ", +2 more") in alert.facts
    assert Fact("Seats nobody bills", "12") in alert.facts
    assert Fact("Billing", "synced; this is reported beside it") in alert.facts
    [fewer] = only("billing-problem", with_problems(replace(unmatched, users=unmatched.users[:11])))
    assert (fewer.key, fewer.fingerprint != alert.fingerprint) == (alert.key, True)
    [same] = only("billing-problem", with_problems(replace(unmatched, message="reworded")))
    assert same.key == alert.key


def test_billing_problems_are_excluded_per_tenant_licence_or_problem_kind() -> None:
    price = Problem(ProblemKind.PRICE_DIFFERS, FABRIKAM, "the line bills 20.00, the profile 22.00",
                    source=f"sku:{SPB}", blocks=False)
    run = with_problems(cancelled_line(), price)
    assert len(only("billing-problem", run)) == 2
    for rule, left in [
        (AlertExclusion(tenant_id=FABRIKAM), []),
        (AlertExclusion(sku_id=SPB, kinds=("billing-problem",)), []),
        (AlertExclusion(sku_id=PBI), [ProblemKind.LINE_CANCELLED, ProblemKind.PRICE_DIFFERS]),
        (AlertExclusion(tenant_id=FABRIKAM, problems=(ProblemKind.PRICE_DIFFERS,)), [ProblemKind.LINE_CANCELLED]),
        (AlertExclusion(tenant_id=FABRIKAM, kinds=("unused-licences",)),
         [ProblemKind.LINE_CANCELLED, ProblemKind.PRICE_DIFFERS]),
    ]:
        settings = NotificationSettings(exclusions=(rule,))
        assert sorted(a.problem for a in only("billing-problem", run, settings) if a.problem) == left, rule


def test_an_exclusion_by_problem_kind_only_narrows_billing_problems() -> None:
    with pytest.raises(ValueError, match="'problems' narrows billing-problem alerts"):
        AlertExclusion(tenant_id=FABRIKAM, kinds=("unused-licences",), problems=(ProblemKind.PRICE_DIFFERS,))
    rule = AlertExclusion(tenant_id=FABRIKAM, problems=(ProblemKind.PRICE_DIFFERS,))
    assert not rule.covers("unused-licences", FABRIKAM, SPB)
    assert rule.covers("billing-problem", FABRIKAM, SPB, ProblemKind.PRICE_DIFFERS)


def test_billing_problems_can_be_turned_off() -> None:
    rules = AlertRules(billing_problem=AlertRule(enabled=False))
    assert only("billing-problem", with_problems(cancelled_line()), NotificationSettings(alerts=rules)) == []
    assert rules.digest("billing-problem") == "daily"


def test_a_run_that_needs_attention_says_so_with_its_problem_counts() -> None:
    run = with_problems(cancelled_line(), problems_by_kind={"line-cancelled": 1})
    [alert] = only("run-summary", run)
    assert alert.title == "Run needs attention: 3 changes applied, 1 billing problem"
    assert alert.severity == "warning"
    assert Fact("Billing problems", "1 (line cancelled: 1)") in alert.facts
    assert only("run-failed", run) == [], "problems are not failures: they have their own alerts"
    acknowledged = with_problems(cancelled_line(), problems_by_kind={"line-cancelled": 1}, problems_excluded=1)
    assert Fact("Billing problems", "1 (line cancelled: 1); 1 acknowledged by exclusions") in \
        only("run-summary", acknowledged)[0].facts


def test_a_gdap_listing_failure_is_part_of_the_run_failed_alert() -> None:
    run = data(summary=summary(status="partial", gdap_error="HTTP 503 from delegatedAdminCustomers"))
    [alert] = only("run-failed", run)
    assert alert.title == "Run partly failed: the GDAP customer list"
    assert Fact("GDAP customers not listed", "HTTP 503 from delegatedAdminCustomers") in alert.facts


def test_a_tenant_whose_psa_lines_were_not_read_is_named_with_the_reason() -> None:
    row = replace(ok(NORTHWIND, "Northwind"), push_error="PSA lines could not be read, nothing planned: HTTP 500")
    run = data(summary=summary(status="partial", tenants_failed=1, tenants_ok=1),
               tenants=(ok(FABRIKAM, "Fabrikam Ltd"), row))
    [alert] = only("run-failed", run)
    assert Fact("Tenants failed", "Northwind (push failed: PSA lines could not be read, nothing planned: HTTP 500)") \
        in alert.facts


def test_the_run_failed_alert_shows_a_long_reason_whole_so_its_value_is_visible() -> None:
    reason = ("PSA lines could not be read, nothing planned: ConnectWise agreement 100 addition 551 (Microsoft 365 "
              "Business Premium for the sales team, tagged seatsync:l:0123456789abcdef): quantity is 1E+300, beyond "
              "the 2,147,483,647 SeatSync accepts")
    assert len(reason) > 200
    runaway = "HTTP 500: " + "x" * 5000
    rows = (replace(ok(NORTHWIND, "Northwind"), push_error=reason), replace(ok(FABRIKAM, "Fabrikam Ltd"),
                                                                            push_error=runaway))
    run = data(summary=summary(status="partial", tenants_failed=2, error="E" * 3000), tenants=rows)
    [alert] = only("run-failed", run)
    tenants = next(f.value for f in alert.facts if f.title == "Tenants failed")
    assert f"Northwind (push failed: {reason})" in tenants
    fabrikam = tenants.split("Fabrikam Ltd (", 1)[1].split("), Northwind", 1)[0]
    assert len(fabrikam) == 1000 and fabrikam.endswith("…"), "a runaway text is bounded"
    assert len(next(f.value for f in alert.facts if f.title == "Error")) == 1000


def test_a_configured_tenant_gdap_no_longer_lists_is_told_unless_the_list_was_not_read() -> None:
    started = StartedRun(run_id=RUN, tenants=[TenantWork(tenant_id=NORTHWIND, name="Northwind Traders")],
                         configured_not_in_gdap=[TenantWork(tenant_id=NORTHWIND, name="Northwind Traders")])
    [alert] = only("gdap-ended", data(started=started))
    assert alert.title == "Northwind Traders is configured but no longer a GDAP customer"
    assert (alert.tenant_id, alert.severity) == (NORTHWIND, "warning")
    assert alert.action_text.startswith("Renew the GDAP relationship")
    unread = started.model_copy(update={"gdap_error": "HTTP 503"})
    assert only("gdap-ended", data(started=unread)) == [], "an unread list says nothing about a tenant"


# --------------------------------------------------------------------------- tenant names


def test_a_tenant_is_named_by_its_row_then_as_the_run_set_out_then_by_its_reconciliation() -> None:
    contoso = "c0000000-0000-4000-8000-0000000000c3"
    started = StartedRun(run_id=RUN, tenants=[TenantWork(tenant_id=FABRIKAM, name="Fabrikam (as started)"),
                                              TenantWork(tenant_id=NORTHWIND, name="Northwind (as started)")],
                         gdap_not_configured=[TenantWork(tenant_id=contoso, name="Contoso (GDAP)")])
    run = data(started=started, reconciliation=(priced("10"), replace(priced("10"), tenant_id=NORTHWIND,
                                                                      tenant_name="Northwind (reconciled)")))
    assert run.tenant_name(FABRIKAM) == "Fabrikam Ltd"  # its row
    assert "_started_names" not in run.__dict__, "a tenant with a row maps no other names"
    assert run.tenant_name(NORTHWIND) == "Northwind (as started)"
    assert run.tenant_name(contoso) == "Contoso (GDAP)"
    assert run.tenant_name(FABRIKAM.upper()) == "Fabrikam Ltd", "without case, when nothing else names it"
    assert run.tenant_name("unknown") == "unknown"
    reconciled = replace(priced("10"), tenant_id=NORTHWIND, tenant_name="Northwind (reconciled)")
    without_start = data(reconciliation=(reconciled,))
    assert without_start.tenant_name(NORTHWIND) == "Northwind (reconciled)"
