"""Onboarding on Azurite and the Graph and ConnectWise emulators: the sample MSP's GDAP customers
matched to its PSA companies, through the service, the HTTP endpoint and the command line;
bulk apply stores one new configuration version with who and when; invalid rows are refused whole."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
import yaml

from admin_api import config_routes as routes
from local_runner import config_cli
from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from shared.bootstrap import set_services
from shared.services.onboarding import onboarding_suggestions
from tests.auth_support import platform_auth, signed_in
from tests.integration.msp import ADATUM, FABRIKAM, TAILSPIN, Msp, running_msp, sample_scenario

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures(platform_auth.__name__)]

LAMNA = "7b6a1b82-0007-4a71-a283-000000000007"
WIDE_WORLD = "8c7b2c93-0008-4b82-b394-000000000008"
ALICE = signed_in("alice@msp.example")


def scenario() -> dict[str, Any]:
    """The sample MSP, plus: Adatum's own domain on its PSA company's website and two departments;
    a tenant known to the PSA only through its contacts' email addresses; one nobody knows."""
    document, _ = sample_scenario()
    graph = document["graph"]
    adatum = next(t for t in graph["tenants"] if t["tenantId"] == ADATUM)
    adatum["domains"] = ["adatum.example"]
    adatum["users"] = [{"userPrincipalName": "ann@adatum.example", "displayName": "Ann", "department": "Sales"},
                       {"userPrincipalName": "bo@adatum.example", "displayName": "Bo", "department": "Finance"}]
    graph["tenants"].append({"tenantId": LAMNA, "displayName": "Lamna Healthcare",
                             "defaultDomain": "lamnahealthcare.onmicrosoft.com", "domains": ["lamna.example"]})
    graph["tenants"].append({"tenantId": WIDE_WORLD, "displayName": "Wide World Importers",
                             "defaultDomain": "wideworldimporters.onmicrosoft.com"})
    cw = document["connectwise"]
    for company in cw["companies"]:
        if company["name"] == "Adatum Corporation":
            company["website"] = "https://www.adatum.example/"
    cw["companies"].append({"id": 901, "identifier": "LHC", "name": "LHC Group"})
    cw["companies"].append({"id": 902, "identifier": "AdatumSales", "name": "Adatum Sales"})
    cw["contacts"] = [
        {"companyId": 901, "firstName": "Lee", "email": "lee@lamna.example"},
        {"companyId": 901, "firstName": "Max", "emails": ["max@LAMNA.example", "max.home@gmail.com"]},
        {"companyId": 901, "firstName": "Noa", "email": "noa@lamna.example"},
        {"companyId": 902, "firstName": "Ola", "email": "ola@gmail.com"},
    ]
    return document


@pytest.fixture
def msp(azurite: Azurite, store: TableStore, tmp_path: Path) -> Iterator[Msp]:
    with running_msp(azurite, store, tmp_path, scenario=scenario()) as running:
        set_services(running.services)
        try:
            yield running
        finally:
            set_services(None)


def call(method: str, body: Any = None, *, params: dict[str, str] | None = None,
         headers: dict[str, str] | None = None) -> func.HttpResponse:
    request = func.HttpRequest(method, "https://seatsync.example.net/api/onboarding",
                               body=b"" if body is None else json.dumps(body).encode(),
                               headers={**ALICE, **(headers or {})}, params=params or {})
    response: func.HttpResponse = routes.onboarding.build().get_user_function()(request)
    return response


def company_of(msp: Msp, name: str) -> str:
    state = msp.emulators.emulator("connectwise").state()
    return str(next(c["id"] for c in state["companies"] if c["name"] == name))


def test_suggestions_for_the_sample_msp(msp: Msp) -> None:
    found, inputs = onboarding_suggestions(msp.services)
    by_tenant = {s.tenant_id: s for s in found}
    assert set(by_tenant) >= {ADATUM, LAMNA, WIDE_WORLD, FABRIKAM, TAILSPIN}
    assert [s.configured for s in found] == sorted(s.configured for s in found), "tenants to onboard come first"

    adatum = by_tenant[ADATUM]
    assert not adatum.configured and adatum.level == "high"
    assert adatum.best is not None and (adatum.best.psa, adatum.best.name) == ("connectwise", "Adatum Corporation")
    assert adatum.best.company_id == company_of(msp, "Adatum Corporation")
    assert "same name" in adatum.reason and "website adatum.example is a domain of the tenant" in adatum.reason
    assert set(adatum.domains) == {"adatum.onmicrosoft.com", "adatum.example"}

    lamna = by_tenant[LAMNA]
    assert lamna.best is not None and lamna.best.name == "LHC Group" and lamna.level == "high"
    assert "3 contacts' email addresses are at lamna.example" in lamna.reason

    wide_world = by_tenant[WIDE_WORLD]
    assert wide_world.best is None and wide_world.level == "none"
    assert "no PSA company has a similar name or shares a domain" in wide_world.reason

    tailspin = by_tenant[TAILSPIN]
    assert tailspin.configured and tailspin.domains_note is not None and "AADSTS700016" in tailspin.domains_note
    assert tailspin.best is not None and tailspin.best.name == "Tailspin Toys", "matched by name alone"

    fabrikam = by_tenant[FABRIKAM]
    assert fabrikam.configured and "already configured, billing to connectwise 19" in fabrikam.reason
    assert inputs.unreadable == {}


def test_the_endpoint_lists_suggestions_and_a_review_file(msp: Msp) -> None:
    response = call("GET", params={"configured": "false"})
    assert response.status_code == 200
    body = json.loads(response.get_body())
    assert {t["tenantId"] for t in body["tenants"]} == {ADATUM, LAMNA, WIDE_WORLD}
    assert body["summary"] == {"high": 2, "medium": 0, "low": 0, "none": 1, "configured": 0}
    adatum = next(t for t in body["tenants"] if t["tenantId"] == ADATUM)
    assert adatum["suggestion"]["name"] == "Adatum Corporation" and adatum["level"] == "high"
    assert adatum["domainsRead"] is True

    review = call("GET", params={"format": "yaml", "configured": "false"})
    assert review.mimetype == "application/yaml"
    rows = yaml.safe_load(review.get_body())["rows"]
    assert {(r["tenantId"], r["action"]) for r in rows} == {(ADATUM, "accept"), (LAMNA, "accept"),
                                                             (WIDE_WORLD, "skip")}


def test_accepting_the_high_confidence_ones_stores_a_new_version_with_who_and_when(msp: Msp) -> None:
    before = msp.services.config_repository.current()[1]
    started = datetime.now(UTC)
    response = call("POST", {"accept": "all-high-confidence"})
    assert response.status_code == 200
    result = json.loads(response.get_body())
    assert {t["name"] for t in result["added"]} == {"Adatum Corporation", "Lamna Healthcare"}
    assert result["replaced"] == []
    config, version = msp.services.config_repository.current()
    assert version is not None and before is not None and version.number == before.number + 1
    assert response.headers["ETag"] == f'"{version.version_id}"' and result["version"] == version.version_id
    assert version.saved_by == "alice@msp.example"
    assert version.saved_at >= started - timedelta(seconds=5)
    assert version.comment == "onboarding: 2 tenant(s) added (high-confidence suggestions accepted)"
    adatum = config.tenant(ADATUM)
    assert adatum is not None and adatum.name == "Adatum Corporation"
    assert [(c.psa, c.company_id, c.name) for c in adatum.companies] == [
        ("connectwise", company_of(msp, "Adatum Corporation"), "Adatum Corporation")]
    assert config.tenant(WIDE_WORLD) is None
    assert [t.tenant_id for t in config.tenants[:5]] == [t.tenant_id for t in msp.config.tenants[:5]]

    again = json.loads(call("POST", {"accept": "all-high-confidence"}).get_body())
    assert again["changed"] is False, "nothing left to accept"
    assert msp.services.config_repository.current()[1] == version


def test_confirmed_and_overridden_rows_are_applied_in_bulk(msp: Msp) -> None:
    rows = [{"tenantId": WIDE_WORLD, "companyId": company_of(msp, "Woodgrove Bank"), "name": "Wide World"},
            {"tenantId": ADATUM.upper(), "psa": "connectwise", "companyId": int(company_of(msp, "Adatum Corporation"))},
            {"tenantId": LAMNA, "action": "skip"}]
    response = call("POST", {"rows": rows, "comment": "first batch"})
    assert response.status_code == 200, response.get_body()
    config, version = msp.services.config_repository.current()
    assert version is not None and version.comment == "first batch"
    wide_world = config.tenant(WIDE_WORLD)
    assert wide_world is not None and wide_world.name == "Wide World"
    assert wide_world.companies[0].name == "Woodgrove Bank"
    assert config.tenant(ADATUM) is not None and config.tenant(LAMNA) is None


def authority(msp: Msp) -> str:
    """Where the sample's Graph app is consented: the emulator plays Entra ID."""
    return msp.services.settings.require_graph().authority_host


def test_invalid_rows_are_rejected_whole(msp: Msp) -> None:
    before = msp.services.config_repository.current()
    rows = [{"tenantId": ADATUM, "companyId": company_of(msp, "Adatum Corporation")},
            {"tenantId": LAMNA, "companyId": "999"},
            {"tenantId": "9d8c3da4-0009-4c93-a4a5-000000000009", "companyId": "901"},
            {"tenantId": FABRIKAM, "companyId": "19"}]
    response = call("POST", rows)
    assert response.status_code == 400
    body = json.loads(response.get_body())
    assert body["problems"] == [
        "rows[1].companyId: no company 999 in PSA connection 'connectwise'",
        "rows[2].tenantId: 9d8c3da4-0009-4c93-a4a5-000000000009 is not a customer with GDAP access "
        "(not in delegatedAdminCustomers); to add a tenant outside GDAP, a Global Administrator of the customer "
        f"grants the SeatSync app admin consent at {authority(msp)}/9d8c3da4-0009-4c93-a4a5-000000000009/"
        "adminconsent?client_id=5e1f0c2a-7d3b-4c8e-9a6f-2b4d8e1c3f70, and the row says access: consent",
        f"rows[3].tenantId: Fabrikam Ltd ({FABRIKAM}) is already configured; set replace: true to replace its "
        "companies",
    ]
    assert body["field"] == "rows[1].companyId"
    assert msp.services.config_repository.current() == before, "not even the valid row was added"


def test_a_tenant_split_between_companies_with_overlapping_filters_is_refused(msp: Msp) -> None:
    before = msp.services.config_repository.current()[1]
    rows = [{"tenantId": ADATUM, "companyId": company_of(msp, "Adatum Corporation"),
             "userFilter": {"department": ["Sales", "Finance"]}},
            {"tenantId": ADATUM, "companyId": company_of(msp, "Adatum Sales"), "userFilter": {"department": ["sales"]}}]
    response = call("POST", rows)
    assert response.status_code == 400
    body = json.loads(response.get_body())
    assert body["errors"] == [{"field": "rows[1].userFilter", "message": (
        f"1 user(s) match the filters of rows[0] (connectwise {company_of(msp, 'Adatum Corporation')}) and rows[1] "
        f"(connectwise {company_of(msp, 'Adatum Sales')}) and would be billed twice: ann@adatum.example")}]
    assert msp.services.config_repository.current()[1] == before

    rows[0]["userFilter"] = {"department": ["Finance"]}
    assert call("POST", rows).status_code == 200
    adatum = msp.services.config_repository.current()[0].tenant(ADATUM)
    assert adatum is not None and [c.user_filter.department for c in adatum.companies  # type: ignore[union-attr]
                                   ] == [("Finance",), ("sales",)]


def test_bad_requests_name_the_field(msp: Msp) -> None:
    for body, field in [({"accept": "everything"}, "accept"), ({"rowz": []}, "rowz"), ([{"action": "skip"}], "rows")]:
        response = call("POST", body)
        assert response.status_code == 400
        assert json.loads(response.get_body())["field"] == field
    assert call("GET", params={"configured": "maybe"}).status_code == 400


# ------------------------------------------------------------------------ command line


@pytest.fixture
def cli(msp: Msp, azurite: Azurite, store: TableStore, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> argparse.ArgumentParser:
    for key, value in {**msp.emulators.environment(), "SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string,
                       "SEATSYNC_TABLE_PREFIX": store.prefix}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    root = argparse.ArgumentParser(prog="seatsync")
    root.add_argument("--settings", type=Path)
    config_cli.add_commands(root.add_subparsers(dest="command", required=True))
    return root


def run(parser: argparse.ArgumentParser, *argv: str) -> int:
    args = parser.parse_args(list(argv))
    return int(args.handler(args))


def test_onboard_writes_a_review_file_and_applies_it(cli: argparse.ArgumentParser, msp: Msp, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    review = tmp_path / "review.yaml"
    assert run(cli, "onboard", "--output", str(review)) == 0
    printed = capsys.readouterr().out
    assert "Adatum Corporation" in printed and "0.99 high" in printed
    assert "new         Wide World Importers" in printed and "0.00 none" in printed
    assert "3 high, 0 medium" not in printed and "2 high" in printed
    text = review.read_text(encoding="utf-8")
    assert text.startswith("# SeatSync onboarding review.")
    document = yaml.safe_load(text)
    wide_world = next(r for r in document["rows"] if r["tenantId"] == WIDE_WORLD)
    assert (wide_world["action"], wide_world["psa"], wide_world["companyId"]) == ("skip", "connectwise", None)
    # the admin overrides: Wide World bills to Woodgrove's company; Lamna is left out
    wide_world.update(action="accept", companyId=company_of(msp, "Woodgrove Bank"))
    next(r for r in document["rows"] if r["tenantId"] == LAMNA)["action"] = "skip"
    review.write_text(yaml.safe_dump(document), encoding="utf-8")

    assert run(cli, "onboard", "--apply", str(review), "--by", "carol") == 0
    printed = capsys.readouterr().out
    assert "added     Adatum Corporation" in printed and "added     Wide World Importers" in printed
    config, version = msp.services.config_repository.current()
    assert version is not None and (version.saved_by, version.comment) == ("carol", "onboarding: applied review.yaml")
    assert config.tenant(ADATUM) is not None and config.tenant(WIDE_WORLD) is not None
    assert config.tenant(LAMNA) is None

    assert run(cli, "tenants", "list") == 0
    listing = capsys.readouterr().out
    assert f"{WIDE_WORLD}  Wide World Importers" in listing
    assert "connectwise 19" in listing and "tenants (" in listing
    assert run(cli, "profiles", "list") == 0
    assert "billing profiles" in capsys.readouterr().out


def test_onboard_accepts_the_high_confidence_ones(cli: argparse.ArgumentParser, msp: Msp,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cli, "onboard", "--accept-high-confidence", "--by", "dave", "--comment", "monthly onboarding") == 0
    printed = capsys.readouterr().out
    assert "added     Lamna Healthcare" in printed and "saved as configuration version" in printed
    version = msp.services.config_repository.current()[1]
    assert version is not None and (version.saved_by, version.comment) == ("dave", "monthly onboarding")
