"""The Microsoft side on Azurite and the emulators: several partner accounts, a tenant that
vanished from the partner's customers (nothing lowered until a person approves), a GDAP
relationship ending soon, a tenant added by admin consent, and licensed users who do not sign in."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from emulators.graph import stable_id
from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from shared.errors import ConfigError
from shared.notifications.alerts import Alert, Links, build_alerts
from shared.notifications.service import gather_run_data
from shared.services.onboarding import apply_rows, onboarding_suggestions, parse_rows
from shared.services.report import render_text
from tests.integration.msp import (
    ADATUM,
    CONTOSO,
    FABRIKAM,
    LITWARE,
    NORTHWIND,
    NOW,
    TAILSPIN,
    Msp,
    running_msp,
    sample_scenario,
)

pytestmark = pytest.mark.integration

EU_PARTNER = "0b0b0b0b-0000-4000-8000-000000000002"
EU_CLIENT = "6f2a1d3b-8e4c-4d9f-a07b-3c5e9f2d4a81"
DEFAULT_CLIENT = "5e1f0c2a-7d3b-4c8e-9a6f-2b4d8e1c3f70"
EU_ACCOUNT = {"name": "eu", "tenantId": EU_PARTNER, "clientId": {"setting": "GRAPH_PARTNER1_CLIENT_ID"},
              "clientSecret": {"setting": "GRAPH_PARTNER1_CLIENT_SECRET"}}


def scenario_with(edit: Any) -> dict[str, Any]:
    scenario, _ = sample_scenario()
    graph = scenario["graph"]
    graph["partners"] = [{"tenantId": EU_PARTNER, "displayName": "Contoso Partner EU",
                          "defaultDomain": "seatsynceu.onmicrosoft.com", "clientId": EU_CLIENT,
                          "clientSecret": "eu-client-secret"}]
    edit({t["tenantId"]: t for t in graph["tenants"]})
    return scenario


def with_eu_account(document: dict[str, Any]) -> None:
    document["partnerAccounts"] = [EU_ACCOUNT]


def tenant(report: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    return next(t for t in report["tenants"] if t["tenantId"] == tenant_id)


def alerts(msp: Msp, report: dict[str, Any], kind: str) -> list[Alert]:
    """The run's alerts of ``kind``, built from what the run stored."""
    config = msp.services.config()
    data = gather_run_data(msp.services.runs, msp.services.snapshots, config, report["runId"])
    links = Links(graph_client_id=DEFAULT_CLIENT, partner_clients={"eu": EU_CLIENT})
    return [a for a in build_alerts(data, config.notifications, links, config).alerts if a.kind == kind]


def posted(msp: Msp) -> str:
    return json.dumps(msp.emulators.emulator("teams").state()["posts"])


def test_two_partner_accounts_read_an_overlapping_customer_once_through_the_first(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    def edit(tenants: dict[str, dict[str, Any]]) -> None:
        tenants[CONTOSO]["relationships"] = [{"partner": EU_PARTNER}]   # a customer of both partner tenants
        tenants[LITWARE]["gdap"] = "none"                                 # a customer of the EU partner only
        tenants[LITWARE]["relationships"] = [{"partner": EU_PARTNER}]
        tenants[ADATUM]["relationships"] = [{"partner": EU_PARTNER}]     # not yet added, listed by both

    with running_msp(azurite, store, tmp_path, scenario=scenario_with(edit), edit_config=with_eu_account) as msp:
        report = msp.sync(tenants=[CONTOSO, LITWARE])
        assert (tenant(report, CONTOSO)["partner"], tenant(report, CONTOSO)["status"]) == ("default", "ok")
        assert (tenant(report, LITWARE)["partner"], tenant(report, LITWARE)["status"]) == ("eu", "ok")
        assert [t["guard"] for t in report["tenants"]] == [None, None]
        graph = msp.emulators.emulator("graph").state()
        tokens = {t["tenantId"]: t["tokensByApp"] for t in graph["tenants"]}
        assert tokens[CONTOSO] == {DEFAULT_CLIENT: 1}, "the overlapping customer is read once, with the first app"
        assert tokens[LITWARE] == {EU_CLIENT: 1}
        batches = [e for e in msp.emulators.emulator("graph").requests_log()
                   if e["path"] == "/v1.0/$batch" and e["tenant"] == CONTOSO]
        assert len(batches) == 1
        assert [(t["tenantId"], t["partner"]) for t in report["gdap"]["notConfigured"]] == [(ADATUM, "default")]
        text = render_text(report)
        assert "PARTNER" in text and "Litware Inc" in text
        row = next(line for line in text.splitlines() if "Litware Inc" in line and " eu " in line)
        assert row.split()[0] == "ok"
        run = msp.services.runs.tenant_rows(report["runId"])
        assert {r["tenantId"]: r["outcome"].partner for r in run} == {CONTOSO: "default", LITWARE: "eu"}, \
            "the tenant's run record names the partner account"


def test_a_vanished_tenant_is_never_lowered_until_a_person_approves(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    def edit(tenants: dict[str, dict[str, Any]]) -> None:
        tenants[FABRIKAM]["gdap"] = "none"   # no longer a GDAP customer; the app is still consented

    with running_msp(azurite, store, tmp_path, scenario=scenario_with(edit), edit_config=with_eu_account) as msp:
        first = msp.sync(tenants=[FABRIKAM])
        fabrikam = tenant(first, FABRIKAM)
        assert fabrikam["status"] == "ok", "it is still read with the app's consent"
        assert fabrikam["guard"] == ("it is no longer among the GDAP customers of partner accounts 'default', 'eu': "
                                     "the customer may have left, or the relationship was removed")
        [held] = [c for c in first["changes"] if c["status"] == "held"]
        assert (held["licence"], held["oldQuantity"], held["newQuantity"]) == ("Exchange Online (Plan 1)", 5, 4)
        assert held["reason"].endswith("held for approval: " + fabrikam["guard"] + "; nothing is lowered until a "
                                       "person approves")
        assert msp.cw_quantities()[501] == 5, "Exchange P1 (decreases applied at once) is not lowered"
        assert msp.cw_quantities()[500] == 22, "an increase is still billed"
        assert FABRIKAM in [t["tenantId"] for t in first["gdap"]["configuredNotInGdap"]]
        [alert] = alerts(msp, first, "tenant-guarded")
        assert alert.title == "Fabrikam Ltd is no longer a GDAP customer: its decreases wait for a person"
        assert {f.title: f.value for f in alert.facts}["Held for approval"] == "Exchange Online (Plan 1) 5 → 4"
        assert "Tenants whose decreases wait for a person" in posted(msp), "the alert reached the Teams channel"
        assert "Guarded tenants, nothing lowered until a person approves: 1" in render_text(first)

        again = msp.sync(tenants=[FABRIKAM])
        assert [c["holdKey"] for c in again["changes"] if c["status"] == "held"] == [held["holdKey"]]
        assert msp.cw_quantities()[501] == 5
        assert len(msp.services.decisions.approvals("pending", FABRIKAM)) == 1, "asked once"

        msp.decide(held["holdKey"], approve=True, by="ana@msp.example", comment="the customer cancelled Exchange")
        released = msp.sync(tenants=[FABRIKAM])
        assert tenant(released, FABRIKAM)["guard"] is not None, "still vanished"
        assert [(c["licence"], c["status"]) for c in released["changes"] if c["kind"] == "set-quantity"] == [
            ("Exchange Online (Plan 1)", "applied")]
        assert msp.cw_quantities()[501] == 4, "the approved decrease is applied"


def test_an_ended_relationship_guards_and_one_ending_soon_raises_an_alert(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    def edit(tenants: dict[str, dict[str, Any]]) -> None:
        tenants[NORTHWIND]["gdapEndDateTime"] = (NOW + timedelta(days=12)).isoformat()
        tenants[CONTOSO]["gdap"] = "expired"
        tenants[CONTOSO]["gdapEndDateTime"] = (NOW - timedelta(days=3)).isoformat()

    with running_msp(azurite, store, tmp_path, scenario=scenario_with(edit), edit_config=with_eu_account) as msp:
        report = msp.sync(tenants=[NORTHWIND, CONTOSO])
        assert tenant(report, NORTHWIND)["guard"] is None
        assert tenant(report, CONTOSO)["guard"] == (
            "its GDAP relationship 'SeatSync-Contoso Pharma' with partner account 'default' ended on 2026-11-22 "
            "(status expired)")
        [ending] = report["gdap"]["relationshipsEnding"]
        assert (ending["name"], ending["partner"], ending["end"][:10], ending["daysLeft"]) == (
            "Northwind Traders", "default", "2026-12-07", 12)
        [alert] = alerts(msp, report, "gdap-expiring")
        assert alert.title == "Northwind Traders: GDAP relationship 'SeatSync-Northwind Traders' ends on 2026-12-07"
        assert "GDAP relationships ending soon" in posted(msp)
        assert "GDAP relationships ending soon: 1" in render_text(report)


def test_a_tenant_added_by_admin_consent_syncs_without_gdap_and_a_missing_consent_names_the_link(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    def edit(tenants: dict[str, dict[str, Any]]) -> None:
        tenants[CONTOSO]["gdap"] = "none"
        tenants[LITWARE]["gdap"] = "none"
        tenants[LITWARE]["consentedApps"] = [EU_PARTNER]

    def config(document: dict[str, Any]) -> None:
        with_eu_account(document)
        for entry in document["tenants"]:
            if entry["tenantId"] in (CONTOSO, TAILSPIN):
                entry["access"] = "consent"
            if entry["tenantId"] == LITWARE:
                entry.update(access="consent", partner="eu")

    with running_msp(azurite, store, tmp_path, scenario=scenario_with(edit), edit_config=config) as msp:
        report = msp.sync(tenants=[CONTOSO, LITWARE, TAILSPIN])
        assert [(t["name"], t["status"], t["partner"], t["guard"]) for t in report["tenants"]] == [
            ("Contoso Pharma", "ok", "default", None), ("Litware Inc", "ok", "eu", None),
            ("Tailspin Toys", "auth-failed", "default", None)]
        missing = {t["tenantId"] for t in report["gdap"]["configuredNotInGdap"]}
        assert not missing & {CONTOSO, LITWARE, TAILSPIN}, "consent tenants are not missing from GDAP"
        tokens = {t["tenantId"]: t["tokensByApp"] for t in msp.emulators.emulator("graph").state()["tenants"]}
        assert tokens[LITWARE] == {EU_CLIENT: 1}
        link = f"/{TAILSPIN}/adminconsent?client_id={DEFAULT_CLIENT}"
        assert link in tenant(report, TAILSPIN)["error"]
        [alert] = alerts(msp, report, "auth-failed")
        assert alert.action_url is not None and alert.action_url.endswith(link)
        assert {f.title: f.value for f in alert.facts}["Admin consent"] == alert.action_url


def test_licensed_users_who_do_not_sign_in_are_alerted_with_their_monthly_cost(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    def edit(tenants: dict[str, dict[str, Any]]) -> None:
        fabrikam = tenants[FABRIKAM]
        fabrikam["generatedUsers"][1]["lastSignInDaysAgo"] = 130   # the 4 frontline Exchange P1 users
        fabrikam["users"][1]["lastSignInDaysAgo"] = "never"         # Ben Okafor (Business Premium)
        tenants[NORTHWIND]["entraPremium"] = False
        tenants[CONTOSO]["missingPermissions"] = ["AuditLog.Read.All"]

    def config(document: dict[str, Any]) -> None:
        document["notifications"]["alerts"] = {"inactiveUsers": {"enabled": True, "days": 90}}

    with running_msp(azurite, store, tmp_path, scenario=scenario_with(edit), edit_config=config) as msp:
        report = msp.sync(tenants=[FABRIKAM, NORTHWIND, CONTOSO])
        assert [t["status"] for t in report["tenants"]] == ["ok", "ok", "ok"], "no tenant fails for its sign-ins"
        assert tenant(report, FABRIKAM)["signInsUnavailable"] is None
        assert "Microsoft Entra ID P1 or P2" in tenant(report, NORTHWIND)["signInsUnavailable"]
        assert "AuditLog.Read.All" in tenant(report, CONTOSO)["signInsUnavailable"]
        by_tenant = {a.tenant_id: a for a in alerts(msp, report, "inactive-users")}
        fabrikam = by_tenant[FABRIKAM]
        assert fabrikam.title == "Fabrikam Ltd: 5 licensed users with no sign-in for 90 days"
        facts = {f.title: f.value for f in fabrikam.facts}
        assert facts["Monthly cost"] == "38.00 USD at the PSA's unit prices", "4 x 4.00 (Exchange P1) + 22.00 (BP)"
        assert facts["Users"].startswith("ben.okafor@fabrikam.onmicrosoft.com (no sign-in since created 2024-01-01),")
        assert by_tenant[NORTHWIND].title == "Northwind Traders: users' sign-ins cannot be read"
        assert by_tenant[CONTOSO].title == "Contoso Pharma: users' sign-ins cannot be read"
        assert (by_tenant[CONTOSO].action_url or "").endswith(f"/{CONTOSO}/adminconsent?client_id={DEFAULT_CLIENT}")
        pages = [e for e in msp.emulators.emulator("graph").requests_log()
                 if e["tenant"] == FABRIKAM and e["path"] == "/v1.0/users"]
        assert pages == [], "Fabrikam's 27 users' sign-ins came in the batch: no page beyond 120"
        snapshot = msp.services.snapshots.latest(FABRIKAM)
        assert snapshot is not None and snapshot.sign_ins is not None
        ben = next(u for u in snapshot.users if u.user_principal_name.startswith("ben.okafor"))
        record = snapshot.sign_ins.of(ben.id)
        assert record is not None and record.last is None, "Graph gives null signInActivity: no sign-in recorded"
        assert ben.id == stable_id(FABRIKAM, "ben.okafor@fabrikam.onmicrosoft.com")


ALPINE = "9e9e9e9e-0010-4a1b-8c2d-000000000010"
LAMNA = "9d8c3da4-0009-4c93-a4a5-000000000009"


def test_onboarding_adds_a_tenant_by_admin_consent_and_shows_the_link_where_consent_is_missing(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    def edit(tenants: dict[str, dict[str, Any]]) -> None:
        tenants[ADATUM]["gdap"] = "none"   # outside GDAP: its administrator consented the app

    scenario = scenario_with(edit)
    scenario["graph"]["tenants"].append({"tenantId": ALPINE, "displayName": "Alpine Ski House", "gdap": "none",
                                         "auth": "not-consented"})
    with running_msp(azurite, store, tmp_path, scenario=scenario, edit_config=with_eu_account) as msp:
        config = msp.services.config()
        rows = parse_rows({"rows": [{"tenantId": ADATUM, "companyId": "24", "access": "consent"}]}, ["connectwise"])
        result = apply_rows(msp.services, rows, "ana@msp.example")
        added = msp.services.config().tenant(ADATUM)
        assert result.changed and added is not None
        assert (added.name, added.access, added.partner) == ("Adatum Corporation", "consent", None), \
            "the name is read from the tenant itself"

        refused = parse_rows([{"tenantId": ALPINE, "companyId": "24", "access": "consent"},
                              {"tenantId": LAMNA, "companyId": "24"}], ["connectwise"])
        with pytest.raises(ConfigError) as caught:
            apply_rows(msp.services, refused, "ana@msp.example")
        authority = msp.services.settings.require_graph().authority_host
        assert caught.value.problems == [
            f"rows[0].tenantId: the SeatSync app of partner account 'default' cannot read tenant {ALPINE} "
            f"(AADSTS700016): a Global Administrator of the customer grants it admin consent at {authority}/"
            f"{ALPINE}/adminconsent?client_id={DEFAULT_CLIENT}, then apply again",
            f"rows[1].tenantId: {LAMNA} is not a customer with GDAP access (not in delegatedAdminCustomers); to add "
            "a tenant outside GDAP, a Global Administrator of the customer grants the SeatSync app admin consent at "
            f"{authority}/{LAMNA}/adminconsent?client_id={DEFAULT_CLIENT}, and the row says access: consent"]
        eu_row = parse_rows([{"tenantId": ALPINE, "companyId": "24", "access": "consent", "partner": "eu"}],
                            ["connectwise"])
        with pytest.raises(ConfigError) as caught:
            apply_rows(msp.services, eu_row, "ana@msp.example")
        assert f"adminconsent?client_id={EU_CLIENT}" in caught.value.problems[0], "the link is the eu app's"
        assert msp.services.config().tenant(ALPINE) is None

        found, _ = onboarding_suggestions(msp.services)
        tailspin = next(s for s in found if s.tenant_id == TAILSPIN)
        assert tailspin.domains_note == (
            "AADSTS700016: the app cannot sign in to the tenant (not consented, or GDAP access missing); a Global "
            f"Administrator of the customer grants admin consent at {authority}/{TAILSPIN}/adminconsent?client_id="
            f"{DEFAULT_CLIENT}")
        assert config.tenant(ADATUM) is None
