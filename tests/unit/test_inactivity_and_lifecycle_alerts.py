"""Inactive licensed users (shared.domain.inactivity) and the alerts of the Microsoft side: a
guarded tenant, a GDAP relationship ending soon, inactive users with their monthly cost, and the
consent link of the partner account that reads a tenant."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.adapters.run_store import ReconciliationRow
from shared.config.notifications import AlertRules, InactiveUsersRule, NotificationSettings
from shared.contracts import EndingRelationshipNote, RunSummary, StartedRun, TenantOutcome, TenantWork
from shared.domain.inactivity import inactive_users
from shared.domain.model import (
    ChangeKind,
    ChangeStatus,
    DirectoryUser,
    Mailbox,
    PlannedChange,
    SignIn,
    SignIns,
    SkuCount,
    TenantSnapshot,
)
from shared.notifications.alerts import Alert, Links, RunData, TenantRow, build_alerts, for_alerts

RUN = "20261125T020000Z-1a2b3c4d"
NOW = datetime(2026, 11, 25, 2, 5, tzinfo=UTC)
FABRIKAM = "fab00000-0000-4000-8000-000000000001"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
EXO1 = "4b9405b0-7788-4568-add1-99614e613b69"
FLOW_FREE = "f30db892-07e9-47e9-837c-80727f46fd3d"
CLIENT = "c1c1c1c1-0000-4000-8000-000000000002"
EU_CLIENT = "e0e0e0e0-0000-4000-8000-000000000003"
LINKS = Links(base_url="https://seatsync.contoso-msp.example", graph_client_id=CLIENT,
              partner_clients={"eu": EU_CLIENT})
INACTIVE_ON = NotificationSettings(alerts=AlertRules(inactive_users=InactiveUsersRule(enabled=True, days=90)))


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def user(uid: str, upn: str, *skus: str, enabled: bool = True) -> DirectoryUser:
    return DirectoryUser(uid, upn, upn.split("@")[0].title(), account_enabled=enabled, sku_ids=skus)


USERS = (
    user("u1", "ana@fabrikam.example", SPB, FLOW_FREE),      # last signed in 200 days ago
    user("u2", "ben@fabrikam.example", SPB, EXO1),           # signed in yesterday
    user("u3", "cy@fabrikam.example", EXO1),                 # never signed in, created a year ago
    user("u4", "dee@fabrikam.example", SPB),                 # never signed in, created last week
    user("u5", "ed@fabrikam.example", SPB, enabled=False),   # disabled: its own billing problem
    user("u6", "flo@fabrikam.example", FLOW_FREE),           # a free licence only
)
SIGN_INS = SignIns(users=(
    SignIn("u1", days_ago(200), days_ago(900)), SignIn("u2", days_ago(1), days_ago(900)),
    SignIn("u3", None, days_ago(365)), SignIn("u4", None, days_ago(7)), SignIn("u5", days_ago(300)),
    SignIn("u6", days_ago(500)),
))
SKUS = (SkuCount(SPB, "SPB", 10, 4), SkuCount(EXO1, "EXCHANGESTANDARD", 5, 2),
        SkuCount(FLOW_FREE, "FLOW_FREE", 10000, 2))


def snapshot(sign_ins: SignIns | None = SIGN_INS) -> TenantSnapshot:
    return TenantSnapshot(tenant_id=FABRIKAM, run_id=RUN, collected_at=NOW, skus=SKUS, users=USERS,
                          sign_ins=sign_ins)


def summary(**changes: object) -> RunSummary:
    values: dict[str, object] = {"run_id": RUN, "status": "succeeded", "dry_run": False, "trigger": "timer",
                                 "requested_by": "timer", "started_at": NOW, "finished_at": NOW}
    values.update(changes)
    return RunSummary.model_validate(values)


def run(**changes: object) -> RunData:
    values: dict[str, object] = {
        "run_id": RUN, "summary": summary(),
        "tenants": (TenantRow(FABRIKAM, "Fabrikam Ltd", TenantOutcome(tenant_id=FABRIKAM, name="Fabrikam Ltd",
                                                                      status="ok")),)}
    values.update(changes)
    return RunData(**values)  # type: ignore[arg-type]


def only(kind: str, data: RunData, settings: NotificationSettings | None = None) -> list[Alert]:
    return [a for a in build_alerts(data, settings or NotificationSettings(), LINKS).alerts if a.kind == kind]


def facts(alert: Alert) -> dict[str, str]:
    return {f.title: f.value for f in alert.facts}


def test_inactive_users_hold_a_paid_licence_and_have_not_signed_in_for_the_days() -> None:
    found = inactive_users(snapshot(), 90, paid=lambda sku: sku != FLOW_FREE)
    assert [(u.user.user_principal_name, u.sku_ids, u.idle_days(NOW)) for u in found] == [
        ("ana@fabrikam.example", (SPB,), 200), ("cy@fabrikam.example", (EXO1,), 365)]
    assert found[1].last is None, "cy never signed in: counted from the account's creation"
    assert [u.user.user_principal_name for u in inactive_users(snapshot(), 250, paid=lambda s: True)] == [
        "cy@fabrikam.example", "flo@fabrikam.example"]
    assert inactive_users(snapshot(None), 90, paid=lambda s: True) == [], "sign-ins not read: nothing said"
    unknown = snapshot(SignIns(users=()))
    assert [u.since for u in inactive_users(unknown, 90, paid=lambda s: s == SPB)] == [None, None, None], \
        "a user Entra knows nothing of counts as inactive"


def test_the_inactive_users_alert_names_them_and_what_they_cost_a_month() -> None:
    prices = (ReconciliationRow(tenant_id=FABRIKAM, tenant_name="Fabrikam Ltd", psa="connectwise", company_id="19",
                                agreement_id="100", line_id="500", mapping_key="m", source=f"sku:{SPB}",
                                label="Microsoft 365 Business Premium", purchased=10, counted=4, target=4,
                                billed_before=4, unit_price=Decimal("22.00")),)
    [alert] = only("inactive-users", run(snapshots={FABRIKAM: snapshot()}, reconciliation=prices), INACTIVE_ON)
    assert alert.title == "Fabrikam Ltd: 2 licensed users with no sign-in for 90 days"
    assert alert.line == "2 users idle 90+ days, 22.00 USD a month"
    assert facts(alert) == {
        "Tenant": "Fabrikam Ltd", "Inactive for": "90 days or more",
        "Users": "ana@fabrikam.example (last sign-in 2026-05-09), cy@fabrikam.example (no sign-in since created "
                 "2025-11-25)",
        "Licences": "Exchange Online (Plan 1), Microsoft 365 Business Premium",
        "Monthly cost": "22.00 USD at the PSA's unit prices; 1 without a known price"}
    assert only("inactive-users", run(snapshots={FABRIKAM: snapshot()})) == [], "off unless enabled"


def test_a_tenant_that_cannot_give_sign_ins_is_said_once_not_failed() -> None:
    reason = ("the SeatSync app lacks the application permission AuditLog.Read.All in this tenant "
              "(Authorization_RequestDenied): add it to the app registration and grant admin consent again")
    data = run(snapshots={FABRIKAM: snapshot(SignIns(unavailable=reason))})
    [alert] = only("inactive-users", data, INACTIVE_ON)
    assert alert.title == "Fabrikam Ltd: users' sign-ins cannot be read"
    assert alert.severity == "info"
    assert facts(alert)["Billing"] == "not affected: sign-ins only feed this alert"
    assert alert.action_url == f"https://login.microsoftonline.com/{FABRIKAM}/adminconsent?client_id={CLIENT}"
    again = only("inactive-users", run(snapshots={FABRIKAM: snapshot(SignIns(unavailable=reason + "!"))}),
                 INACTIVE_ON)
    assert again[0].fingerprint == alert.fingerprint, "one notice per tenant, however the reason is worded"
    assert only("run-failed", data) == [], "the tenant did not fail"


def guarded_start(**work: object) -> StartedRun:
    values: dict[str, object] = {
        "tenant_id": FABRIKAM, "name": "Fabrikam Ltd", "partner": "default", "standing": "vanished",
        "guard": "it is no longer among the GDAP customers of partner account 'default': the customer may have "
                 "left, or the relationship was removed"}
    values.update(work)
    return StartedRun(run_id=RUN, tenants=[TenantWork.model_validate(values)])


def test_a_guarded_tenant_raises_an_alert_naming_what_happened_and_what_is_held() -> None:
    held = PlannedChange(change_id="c1", kind=ChangeKind.SET_QUANTITY, tenant_id=FABRIKAM, company_id="19",
                         psa="connectwise", agreement_id="100", line_id="500", sku_id=SPB, old_quantity=10,
                         new_quantity=9, reason="held for approval: ...", status=ChangeStatus.HELD,
                         label="Microsoft 365 Business Premium")
    [alert] = only("tenant-guarded", run(started=guarded_start(), changes=((held, None),)))
    assert alert.title == "Fabrikam Ltd is no longer a GDAP customer: its decreases wait for a person"
    assert facts(alert)["What happened"].startswith("it is no longer among the GDAP customers")
    assert facts(alert)["Held for approval"] == "Microsoft 365 Business Premium 10 → 9"
    assert facts(alert)["Partner account"] == "default"
    assert alert.action_url == LINKS.approvals()
    assert alert.severity == "warning"
    [quiet] = only("tenant-guarded", run(started=guarded_start(standing="ended")))
    assert quiet.title == "Fabrikam Ltd has no GDAP relationship in force: its decreases wait for a person"
    assert facts(quiet)["Held for approval"] == "no decrease this run; any decrease will wait for a person"
    assert only("tenant-guarded", run(started=guarded_start(guard=None, standing="ok"))) == []


def test_a_gdap_relationship_ending_soon_names_the_customer_and_the_day() -> None:
    note = EndingRelationshipNote(tenant_id=FABRIKAM, name="Fabrikam Ltd", partner="eu",
                                  relationship="SeatSync-Fabrikam", end=NOW + timedelta(days=12), days_left=12)
    [alert] = only("gdap-expiring", run(started=StartedRun(run_id=RUN, tenants=[], relationships_ending=[note])))
    assert alert.title == "Fabrikam Ltd: GDAP relationship 'SeatSync-Fabrikam' ends on 2026-12-07"
    assert alert.line == "relationship 'SeatSync-Fabrikam' ends on 2026-12-07 (in 12 days)"
    assert facts(alert) == {"Tenant": "Fabrikam Ltd", "Partner account": "eu", "Relationship": "SeatSync-Fabrikam",
                            "Ends": "2026-12-07 (in 12 days)"}


def test_the_consent_link_is_the_app_of_the_partner_account_that_reads_the_tenant() -> None:
    def failed(partner: str | None) -> RunData:
        outcome = TenantOutcome(tenant_id=FABRIKAM, name="Fabrikam Ltd", status="auth-failed",
                                error_code="AADSTS700016", error="not consented", partner=partner)
        return run(tenants=(TenantRow(FABRIKAM, "Fabrikam Ltd", outcome),))

    [eu] = only("auth-failed", failed("eu"))
    assert eu.action_url == f"https://login.microsoftonline.com/{FABRIKAM}/adminconsent?client_id={EU_CLIENT}"
    assert facts(eu)["Partner account"] == "eu"
    assert facts(eu)["Admin consent"] == eu.action_url
    [default] = only("auth-failed", failed("default"))
    assert default.action_url == f"https://login.microsoftonline.com/{FABRIKAM}/adminconsent?client_id={CLIENT}"
    assert "Partner account" not in facts(default)
    [unknown] = only("auth-failed", failed("gone"))
    assert unknown.action_url is None, "no link rather than the wrong app's"


def test_the_snapshot_kept_for_alerts_holds_only_what_they_read_and_gives_the_same_alerts() -> None:
    """A run's data keeps each tenant's snapshot until its alerts are built: only the licences,
    the shared mailboxes' users and (sign-ins read) the enabled licensed users are kept, and every
    licence alert comes out the same as from the whole snapshot."""
    mailboxes = (Mailbox("info@fabrikam.example", "Info", "Shared"), Mailbox("ben@fabrikam.example", "Ben", "User"),
                 Mailbox("gone@fabrikam.example", "Gone", "Shared", is_deleted=True))
    shared_user = user("u7", "info@fabrikam.example", EXO1)
    unlicensed = user("u8", "guest@fabrikam.example")
    whole = replace(snapshot(), users=(*USERS, shared_user, unlicensed), mailboxes=mailboxes,
                    groups={"g": ()}, subscriptions=())
    kept = for_alerts(whole)
    assert [u.id for u in kept.users] == ["u1", "u2", "u3", "u4", "u6", "u7"], "licensed and enabled, or shared"
    assert kept.mailboxes == (mailboxes[0],) and kept.groups == {}
    assert kept.sign_ins is not None and [s.user_id for s in kept.sign_ins.users] == ["u1", "u2", "u3", "u4", "u6"]
    settings = NotificationSettings(alerts=AlertRules(
        inactive_users=InactiveUsersRule(enabled=True, days=90)))
    for snap, kind in ((whole, "inactive-users"), (whole, "shared-mailbox-licensed"), (whole, "unused-licences")):
        from_whole = only(kind, run(snapshots={FABRIKAM: snap}), settings)
        assert from_whole, kind
        assert only(kind, run(snapshots={FABRIKAM: for_alerts(snap)}), settings) == from_whole, kind
    unread = replace(whole, sign_ins=None)
    assert [u.id for u in for_alerts(unread).users] == ["u7"], "sign-ins not read: only the shared mailbox's user"
    assert only("shared-mailbox-licensed", run(snapshots={FABRIKAM: for_alerts(unread)})) == only(
        "shared-mailbox-licensed", run(snapshots={FABRIKAM: unread}))
