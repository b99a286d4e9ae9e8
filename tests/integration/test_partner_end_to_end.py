"""Partner-side truth end to end, on Azurite and the emulators: the sample MSP with Partner Center
configured (terms, costs, provenance, reconciliation, alerts, `seatsync reconcile` and
`GET /api/reconciliation`); a monthly and an annual subscription of one licence that only the
source tells apart; and a source that cannot be read, which changes nothing."""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
import yaml

from admin_api.reconcile_routes import reconciliation_http
from local_runner.azurite import Azurite
from local_runner.cli import main
from shared.adapters.tables import TableStore
from shared.bootstrap import set_services
from shared.notifications.alerts import Links, build_alerts
from shared.notifications.service import gather_run_data, gather_run_level, iter_run_parts
from tests.integration.msp import CONTOSO, FABRIKAM, NOW, Msp, running_msp, sample_scenario

pytestmark = pytest.mark.integration

PARTNER = "0a0a0a0a-0000-4000-8000-000000000001"
APP = "6d2b9f4e-8a1c-4b3d-9e5f-7a6b5c4d3e2f"
TENANT = "9e8d7c6b-0009-4a1b-8c2d-000000000009"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
ANNUAL = "9e8d7c6b-5b00-4000-8000-00000000000a"
MONTHLY = "9e8d7c6b-5b00-4000-8000-00000000000b"
ANNUAL_MS = "9e8d7c6b-5c00-4000-8000-00000000000a"
MONTHLY_MS = "9e8d7c6b-5c00-4000-8000-00000000000b"


def licence(report: dict[str, Any], tenant: str, label: str) -> dict[str, Any]:
    return next(x for x in report["reconciliation"]["licences"] if x["tenantName"] == tenant and x["licence"] == label)


@pytest.fixture(scope="module")
def synced(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Msp, dict[str, Any]]]:
    from azure.data.tables import TableServiceClient

    store = TableStore(TableServiceClient.from_connection_string(azurite.connection_string), "tpartnere2e")
    try:
        with running_msp(azurite, store, Path(tmp_path_factory.mktemp("partner"))) as msp:
            yield msp, msp.sync()
    finally:
        store.drop_all()


def test_the_sample_reads_partner_center_and_bills_as_before(synced: tuple[Msp, dict[str, Any]]) -> None:
    msp, report = synced
    assert report["status"] == "partial", "Tailspin is still not consented"
    [source] = report["sources"]
    assert (source["source"], source["kind"], source["error"], source["customers"]) == (
        "partner-center", "partner-center", None, 7)
    [deferred] = [c for c in report["changes"] if c["status"] == "deferred"]
    assert deferred["dueDate"] == "2027-03-01"
    assert "[Partner Center: P1Y term, billed monthly, ends 2027-02-28]" in deferred["reason"]
    [exchange] = [c for c in report["changes"] if c["tenantName"] == "Fabrikam Ltd" and c["oldQuantity"] == 5]
    assert exchange["status"] == "applied" and "[Partner Center: P1Y term" in exchange["reason"]
    state = msp.emulators.emulator("partnercenter").state()
    assert state["tokensIssued"] == 1


def test_the_sample_reconciliation(synced: tuple[Msp, dict[str, Any]]) -> None:
    _, report = synced
    fabrikam = licence(report, "Fabrikam Ltd", "Microsoft 365 Business Premium")
    assert (fabrikam["purchased"], fabrikam["purchasedFrom"], fabrikam["assigned"], fabrikam["billed"]) == (
        25, "Partner Center (partner-center)", 22, 22)
    assert fabrikam["revenue"] == {"amount": "484.00", "currency": "USD"}
    assert fabrikam["cost"] == {"amount": "400.00", "currency": "USD"}, "25 seats at 16.00"
    assert fabrikam["margin"] == {"amount": "84.00", "currency": "USD"} and fabrikam["marginPercent"] == "17.4"
    assert (fabrikam["unusedSeats"], fabrikam["lockedSeats"], fabrikam["lockedUntil"]) == (3, 3, "2027-01-01")
    assert fabrikam["moneyLeaking"] == {"amount": "48.00", "currency": "USD"}
    standard = licence(report, "Contoso Pharma", "Microsoft 365 Business Standard")
    assert standard["cost"] == {"amount": "108.00", "currency": "USD"}, "12 seats billed annually at 108.00: a month"
    power_bi = licence(report, "Contoso Pharma", "Power BI Pro")
    assert (power_bi["purchased"], power_bi["boughtElsewhere"], power_bi["billed"]) == (0, 3, 0)
    project = licence(report, "Contoso Pharma", "Planner and Project Plan 3")
    assert (project["purchased"], project["purchasedFrom"], project["assigned"], project["billed"]) == (
        2, "Partner Center (partner-center)", 2, 0), "sold by the MSP, billed by no mapping yet"
    assert [(u["tenantName"], u["licence"]) for u in report["unlinked"]] == [
        ("Contoso Pharma", "Planner and Project Plan 3")]
    monthly = licence(report, "Proseware Ltd", "Microsoft 365 Business Premium")
    assert monthly["billed"] == 23 and monthly["termBasis"].startswith("Partner Center: P1Y term")
    northwind = licence(report, "Northwind Traders", "Office 365 E3")
    assert (northwind["billed"], northwind["unusedSeats"], northwind["moneyFoundSeats"]) == (10, 1, 0)
    totals = report["reconciliation"]["totals"]
    assert [m["currency"] for m in totals["revenue"]] == ["USD"]
    renewals = report["reconciliation"]["renewals"]
    assert [(r["tenantName"], r["licence"], r["renewal"], r["unusedSeats"]) for r in renewals] == [
        ("Proseware Ltd", "Microsoft 365 Business Premium", "2026-12-10", 2),
        ("Fabrikam Ltd", "Exchange Online (Plan 1)", "2026-12-15", 1)]


def test_the_report_text_shows_the_money(synced: tuple[Msp, dict[str, Any]]) -> None:
    from shared.services.report import render_text

    _, report = synced
    text = render_text(report)
    assert "Subscription sources:\n  - partner-center (partner-center): 7 customers, 10 subscriptions" in text
    assert "Reconciliation (amounts a month; prices in USD):" in text
    assert "Bought elsewhere" in text and "  - Contoso Pharma: Power BI Pro: 3 of 3 seats" in text
    assert "Renewals with unused seats" in text


def test_a_run_s_alerts_built_a_tenant_at_a_time_are_those_of_the_whole_run(
        synced: tuple[Msp, dict[str, Any]]) -> None:
    """Notifying a run of thousands of tenants takes their licences, snapshots and money in parts;
    the alerts (money ones included) are the same as those made from the whole run at once."""
    msp, report = synced
    services, config, run_id = msp.services, msp.services.config(), report["runId"]
    whole = build_alerts(gather_run_data(services.runs, services.snapshots, config, run_id,
                                         margins=services.margins), config.notifications, Links(), config)
    run = gather_run_level(services.runs, config, run_id)
    assert run.licences == () and run.snapshots == {} and run.reconciliation == ()
    parts = list(iter_run_parts(services.runs, services.snapshots, config, run, margins=services.margins, size=1))
    assert len(parts) == len(run.tenants) > 1
    for part in parts:
        held = {t.tenant_id for t in part.tenants}
        assert len(held) == 1, "a part holds its own tenants only"
        assert {line.facts.tenant_id for line in part.licences} <= held
        assert set(part.snapshots) <= held and {r.tenant_id for r in part.reconciliation} <= held
    in_parts = build_alerts(run, config.notifications, Links(), config, parts=parts)
    assert {"margin-below-floor", "renewal-unused", "unlinked-licence"} <= {a.kind for a in in_parts.alerts}
    assert in_parts == whole


def test_money_alerts(synced: tuple[Msp, dict[str, Any]]) -> None:
    msp, report = synced
    config = msp.services.config()
    data = gather_run_data(msp.services.runs, msp.services.snapshots, config, report["runId"],
                           margins=msp.services.margins)
    alerts = build_alerts(data, config.notifications, Links(), config).alerts
    kinds = {a.kind for a in alerts}
    assert {"margin-below-floor", "renewal-unused"} <= kinds
    low = [a.title for a in alerts if a.kind == "margin-below-floor"]
    # one licence of the sample earns less than the floor, as an MSP would see it: not every licence
    assert low == ["Proseware Ltd: Microsoft 365 Business Premium earns -3.5 % (floor 10 %)"]
    renewal = [a.title for a in alerts if a.kind == "renewal-unused"]
    assert "Fabrikam Ltd: Exchange Online (Plan 1) renews on 2026-12-15 with 1 unused seat" in renewal
    unlinked = [a.licence for a in alerts if a.kind == "unlinked-licence" and a.tenant_id == CONTOSO]
    assert unlinked == ["Planner and Project Plan 3"], "Power BI Pro was bought elsewhere: not a licence to bill"


def test_reconcile_on_the_command_line_and_over_http(synced: tuple[Msp, dict[str, Any]], azurite: Azurite,
                                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    msp, report = synced
    monkeypatch.setenv("SEATSYNC_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("SEATSYNC_TABLE_PREFIX", "tpartnere2e")
    monkeypatch.chdir(tmp_path)
    month = report["runId"][:4] + "-" + report["runId"][4:6]
    assert main(["reconcile", "--month", month, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    row = next(r for r in rows if r["tenant"] == "Northwind Traders")
    assert (row["purchased"], row["assigned"], row["billed"], row["cost"], row["currency"]) == (
        "10", "9", "10", "207.00", "USD")
    assert main(["reconcile"]) == 0
    assert "Money leaking" in capsys.readouterr().out
    assert main(["reconcile", "--month", "2026-13"]) == 3
    assert main(["reconcile", "--month", "2020-01"]) == 3, "no run in that month: nothing the input names"
    set_services(msp.services)
    try:
        response = reconciliation_http.build().get_user_function()(
            func.HttpRequest("GET", "https://x/api/reconciliation", body=b"", params={"month": month}))
        body = json.loads(response.get_body())
        assert response.status_code == 200 and body["runId"] == report["runId"]
        assert body["licences"] == report["reconciliation"]["licences"]
        bad = reconciliation_http.build().get_user_function()(
            func.HttpRequest("GET", "https://x/api/reconciliation", body=b"", params={"month": "May"}))
        assert bad.status_code == 400 and json.loads(bad.get_body())["field"] == "month"
    finally:
        set_services(None)


# --------------------------------------------------------------------------- monthly vs annual


def split_scenario() -> tuple[dict[str, Any], str]:
    """One tenant with Business Premium bought twice on the same day: 20 seats annual, 5 monthly.
    The tenant's subscriptions look alike; Partner Center says the monthly one renewed 3 days
    ago. Two seats of the monthly subscription's mapping are no longer used."""
    sample, _ = sample_scenario()
    graph = copy.deepcopy(sample["graph"])
    graph["tenants"] = [{
        "tenantId": TENANT, "displayName": "Bellows College", "defaultDomain": "bellows.onmicrosoft.com",
        "skus": [{"skuId": SPB, "skuPartNumber": "SPB"}],
        "subscriptions": [
            {"id": ANNUAL, "skuPartNumber": "SPB", "totalLicenses": 20, "createdDateTime": "2026-06-22T00:00:00Z",
             "nextLifecycleDateTime": "2027-06-22T00:00:00Z", "commerceSubscriptionId": ANNUAL_MS},
            {"id": MONTHLY, "skuPartNumber": "SPB", "totalLicenses": 5, "createdDateTime": "2026-06-22T00:00:00Z",
             "nextLifecycleDateTime": "2026-12-22T00:00:00Z", "commerceSubscriptionId": MONTHLY_MS}],
        "generatedUsers": [{"count": 23, "prefix": "scholar", "licenses": ["SPB"]}]}]
    graph.pop("faults", None)
    scenario = {
        "graph": graph,
        "connectwise": {
            "companyId": "seatsyncmsp", "today": NOW.date().isoformat(),
            "credentials": sample["connectwise"]["credentials"],
            "companies": [{"id": 40, "identifier": "Bellows", "name": "Bellows College"}],
            "catalog": [{"id": 5, "identifier": "M365-BP-ANNUAL", "description": "Business Premium (annual)",
                         "price": 20.90, "cost": 19.80},
                        {"id": 6, "identifier": "M365-BP-MONTHLY", "description": "Business Premium (monthly)",
                         "price": 26.40, "cost": 23.76}],
            "agreementTypes": [{"id": 1, "name": "Microsoft 365", "prorate": True, "billingCycle": "Monthly"}],
            "agreements": [{"id": 400, "name": "Bellows Microsoft 365", "companyId": 40, "typeId": 1,
                            "startDate": "2026-01-01"}],
            "additions": [{"id": 900, "agreementId": 400, "productIdentifier": "M365-BP-ANNUAL", "quantity": 20},
                          {"id": 901, "agreementId": 400, "productIdentifier": "M365-BP-MONTHLY", "quantity": 5}],
        },
        "partnercenter": {
            "today": NOW.date().isoformat(), "partnerTenantId": PARTNER,
            "applications": [{"clientId": APP, "clientSecret": "sample-partner-center-secret"}],
            "customers": [{"id": TENANT, "companyName": "Bellows College", "subscriptions": [
                {"id": ANNUAL_MS, "offerId": "CFQ7TTC0LCHC:0002", "offerName": "Microsoft 365 Business Premium",
                 "quantity": 20, "termDuration": "P1Y", "billingCycle": "monthly", "effectiveStartDate": "2026-06-22",
                 "commitmentEndDate": "2027-06-21", "unitPrice": "19.80"},
                {"id": MONTHLY_MS, "offerId": "CFQ7TTC0LCHC:0002", "offerName": "Microsoft 365 Business Premium",
                 "quantity": 5, "termDuration": "P1M", "billingCycle": "monthly", "effectiveStartDate": "2026-06-22",
                 "commitmentEndDate": "2026-12-21", "unitPrice": "23.76",
                 "refundableQuantity": [{"quantity": 5, "until": "2026-11-29T00:00:00Z"}]}]}],
        },
    }
    config = {
        "psaConnections": [{"name": "connectwise", "type": "connectwise", "url": "${CONNECTWISE_URL}",
                            "companyId": "seatsyncmsp", "publicKey": {"setting": "CW_PUBLIC_KEY"},
                            "privateKey": {"setting": "CW_PRIVATE_KEY"}, "clientId": {"setting": "CW_CLIENT_ID"}}],
        "subscriptionSources": [{"name": "partner-center", "type": "partner-center", "partnerTenantId": PARTNER,
                                 "clientId": {"setting": "PARTNER_CENTER_CLIENT_ID"},
                                 "clientSecret": {"setting": "PARTNER_CENTER_CLIENT_SECRET"},
                                 "url": "${PARTNER_CENTER_URL}", "authorityHost": "${PARTNER_CENTER_URL}"}],
        "billingProfiles": [{"name": "annual", "psa": "connectwise", "productId": "5"},
                            {"name": "monthly", "psa": "connectwise", "productId": "6"}],
        "tenants": [{"tenantId": TENANT, "name": "Bellows College", "companies": [{
            "psa": "connectwise", "companyId": "40", "licences": [
                {"skuId": SPB, "subscriptionIds": [ANNUAL], "agreementId": "400", "lineId": "900",
                 "profile": "annual"},
                {"skuId": SPB, "subscriptionIds": [MONTHLY], "agreementId": "400", "lineId": "901",
                 "profile": "monthly"}]}]}],
    }
    return scenario, yaml.safe_dump(config)


def _without_source(document: dict[str, Any]) -> None:
    document.pop("subscriptionSources")


def test_only_the_source_tells_the_monthly_subscription_from_the_annual(azurite: Azurite, store: TableStore,
                                                                         tmp_path: Path) -> None:
    scenario, config_text = split_scenario()
    with running_msp(azurite, store, tmp_path / "declared", scenario=scenario, config_text=config_text,
                     edit_config=_without_source) as msp:
        report = msp.sync()
        [change] = [c for c in report["changes"] if c["additionId"] == "901"]
        assert (change["status"], change["oldQuantity"], change["newQuantity"]) == ("held", 5, 3)
        assert "[declared annual term]" in change["reason"]
        assert msp.cw_quantities()[901] == 5
    with running_msp(azurite, store, tmp_path / "source", scenario=scenario, config_text=config_text) as msp:
        report = msp.sync()
        [change] = [c for c in report["changes"] if c["additionId"] == "901" and c["kind"] == "set-quantity"]
        assert (change["status"], change["oldQuantity"], change["newQuantity"]) == ("applied", 5, 3)
        assert "renewal on 2026-11-22: Microsoft refunds the seats until 2026-11-28" in change["reason"]
        assert "[Partner Center: P1M term, billed monthly, ends 2026-12-21]" in change["reason"]
        assert msp.cw_quantities()[901] == 3
        [both] = report["reconciliation"]["licences"]
        assert (both["purchased"], both["billed"], both["cost"], both["unusedSeats"]) == (
            25, 23, {"amount": "514.80", "currency": "USD"}, 2)
        assert both["reducible"] == [{"seats": 2, "until": "2026-11-28"}], "the monthly seats can still be reduced"
        assert [(x["lineId"], x["billedBefore"], x["billed"], x["partnerSubscriptions"]) for x in both["lines"]] == [
            ("900", 20, 20, [ANNUAL_MS]), ("901", 5, 3, [MONTHLY_MS])], "each PSA line with the subscription it bills"
        [entry] = [e for e in msp.services.decisions.audit_trail(TENANT)
                   if e.line_id == "901" and e.kind == "set-quantity" and e.event == "applied"]
        assert "Partner Center: P1M term" in entry.reason, "the audit says which term decided"


def test_a_source_that_cannot_be_read_changes_nothing(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    scenario, config_text = split_scenario()
    scenario["partnercenter"]["faults"] = [{"kind": "error", "path": "^/v1/customers$", "status": 503}]
    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config_text) as msp:
        report = msp.sync()
        assert report["status"] == "failed"
        [tenant] = report["tenants"]
        assert tenant["status"] == "failed"
        assert "subscription source 'partner-center'" in tenant["error"] and "billing left as it was" in tenant["error"]
        assert report["changes"] == [] and msp.cw_writes() == 0
        [source] = report["sources"]
        assert "HTTP 503" in source["error"]


def test_one_customers_failed_read_leaves_that_tenant_alone(azurite: Azurite, store: TableStore,
                                                            tmp_path: Path) -> None:
    """Fabrikam's subscriptions cannot be read from Partner Center, nor this month's costs: Fabrikam
    is not synced (its lines untouched), the others are, and margins are unknown."""
    scenario, config_text = sample_scenario()
    scenario = copy.deepcopy(scenario)
    scenario["partnercenter"]["faults"] = [
        {"kind": "error", "path": f"^/v1/customers/{FABRIKAM}/subscriptions$", "status": 500},
        {"kind": "error", "path": "^/v1/invoices/unbilled/lineitems$", "status": 503}]
    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config_text) as msp:
        before = msp.cw_additions(100)
        report = msp.sync()
        statuses = {t["name"]: t["status"] for t in report["tenants"]}
        assert statuses["Fabrikam Ltd"] == "failed" and statuses["Litware Inc"] == "ok"
        fabrikam = next(t for t in report["tenants"] if t["name"] == "Fabrikam Ltd")
        assert "the subscriptions of customer Fabrikam Ltd could not be read" in fabrikam["error"]
        assert not [c for c in report["changes"] if c["tenantName"] == "Fabrikam Ltd"]
        assert msp.cw_additions(100) == before
        assert any(c["tenantName"] == "Litware Inc" and c["status"] == "applied" for c in report["changes"])
        [source] = report["sources"]
        assert source["error"] is None and "HTTP 503" in source["costError"]
        litware = licence(report, "Litware Inc", "Microsoft 365 Business Premium")
        assert litware["cost"] is None and litware["margin"] is None and litware["revenue"] is not None
