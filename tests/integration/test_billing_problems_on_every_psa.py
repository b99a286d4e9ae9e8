"""Billing problems, synced end to end on Azurite and the emulators through each PSA (ConnectWise,
Autotask, HaloPSA): a tenant split by filters with a user no filter matches (then a catch-all
company), a cancelled agreement, a suspended subscription, and a line SeatSync adopted with its
own price (kept by default, changed only when the profile manages adopted lines, shown in the dry
run first). Each run is checked in the PSA's own state, the run report, the audit trail and the
alerts posted to the Teams channel; and a PSA refusing SeatSync's credentials fails the run."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from local_runner.azurite import Azurite
from local_runner.sync_cli import exit_for
from local_runner.wiring import EXIT_FAILED, EXIT_PARTIAL
from shared.adapters.tables import TableStore
from tests.integration.msp import FABRIKAM, LITWARE, NORTHWIND, NOW, Msp, running_msp, sample_scenario
from tests.notification_support import texts

pytestmark = pytest.mark.integration

PSAS = ["connectwise", "autotask", "halopsa"]
CONTOSO = "2e1b6c3d-0002-4b2c-9d3e-000000000002"
TENANTS = [FABRIKAM, CONTOSO, NORTHWIND, LITWARE]
TODAY = NOW.date().isoformat()
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
NORTHWIND_SUBS = ("4c3d8e5f-5b00-4000-8000-000000000001", "4c3d8e5f-5b00-4000-8000-000000000002")
# Line ids are the same in the three samples; ConnectWise and Autotask agreements keep their ids,
# Halo's recurring invoices are negative.
FABRIKAM_BP, CONTOSO_BS, NORTHWIND_E3, LITWARE_SALES, LITWARE_ENG = "500", "510", "530", "550", "560"
CONTOSO_AGREEMENT = {"connectwise": "101", "autotask": "101", "halopsa": "-101"}
WRONG_SECRET = {"connectwise": "CW_PRIVATE_KEY", "autotask": "AUTOTASK_SECRET", "halopsa": "HALO_CLIENT_SECRET"}


def scenario_for(psa: str) -> tuple[dict[str, Any], str]:
    """The PSA's sample MSP with four billing problems waiting in it."""
    scenario, config_text = sample_scenario(psa)
    scenario = copy.deepcopy(scenario)
    scenario[psa]["today"] = TODAY
    tenants = {t["tenantId"]: t for t in scenario["graph"]["tenants"]}
    # Litware is split by department: two more people hold Business Premium, neither with a
    # department (Graph leaves the field out). No company's filter matches them.
    litware = tenants[LITWARE]
    litware["users"] = [*litware.get("users", []),
                        {"userPrincipalName": "lee.blank@litware.onmicrosoft.com", "displayName": "Lee Blank",
                         "licenses": ["SPB"]},
                        {"userPrincipalName": "sam.space@litware.onmicrosoft.com", "displayName": "Sam Space",
                         "licenses": ["SPB"], "officeLocation": "Leeds"}]
    # Contoso Pharma gains two users, but its agreement was cancelled in the PSA.
    contoso = tenants[CONTOSO]
    contoso["generatedUsers"][0]["count"] = 12
    # Northwind: of its two E3 subscriptions one (4 seats) is suspended; 12 users still hold E3.
    northwind = tenants[NORTHWIND]
    northwind["skus"] = [{k: v for k, v in s.items() if k != "enabled"} for s in northwind["skus"]]
    first = northwind["subscriptions"][0]
    northwind["subscriptions"] = [{**first, "totalLicenses": 8},
                                  {**first, "id": NORTHWIND_SUBS[1], "totalLicenses": 4, "status": "Suspended"}]
    northwind["generatedUsers"][0]["count"] = 12
    northwind.pop("faults", None)
    section = scenario[psa]
    if psa == "connectwise":
        next(a for a in section["agreements"] if a["id"] == 101)["cancelled"] = True
        next(a for a in section["additions"] if a["id"] == 500)["unitPrice"] = 20.00
    elif psa == "autotask":
        next(c for c in section["contracts"] if c["id"] == 101)["status"] = "Inactive"
        next(s for s in section["contractServices"] if s["id"] == 500)["adjustedPrice"] = 20.00
    else:
        next(i for i in section["recurringInvoices"] if i["id"] == -101)["disabled"] = True
        next(ln for ln in section["lines"] if ln["id"] == 500)["unitPrice"] = 20.00
    return scenario, config_text


def line_state(msp: Msp, psa: str, line_id: str) -> tuple[int, Decimal]:
    """(quantity billed from the next period on, unit price) of a line, from the emulator's state."""
    state = msp.emulators.emulator(psa).state()
    if psa == "connectwise":
        addition = next(a for g in state["agreements"] for a in g["additions"] if str(a["id"]) == line_id)
        return int(addition["quantity"]), Decimal(str(addition["unitPrice"]))
    if psa == "autotask":
        service = next(s for c in state["contracts"] for s in c["services"] if str(s["id"]) == line_id)
        emulator: Any = msp.emulators.emulator("autotask")
        price = service["adjustedPrice"] if service.get("adjustedPrice") is not None else service["unitPrice"]
        return emulator.units_on(int(line_id), NOW.date()), Decimal(str(price))
    line = next(ln for i in state["recurringInvoices"] for ln in i["lines"] if str(ln["id"]) == line_id)
    return int(line["billed_quantity"]), Decimal(str(line["unit_price"]))


def problems(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p["tenantName"], p["kind"]): p for p in report["problems"]}


def changes(report: dict[str, Any], tenant: str) -> list[tuple[str, str | None, int]]:
    return sorted((c["kind"], c["additionId"], c["newQuantity"]) for c in report["changes"]
                  if c["tenantName"] == tenant and c["kind"] in ("set-quantity", "set-details", "create-line"))


def card_lines(msp: Msp) -> list[str]:
    teams: Any = msp.emulators.emulator("teams")
    posts = teams.posts_for("sample-billing")
    return texts(posts[-1]["cards"][0]) if posts else []


def manage_and_catch_all(document: dict[str, Any]) -> None:
    """The MSP's answers: the profile manages adopted lines' prices; Litware's Engineering company
    becomes its catch-all (it bills everyone no other filter matches)."""
    profile = next(p for p in document["billingProfiles"] if p["name"] == "m365-bp")
    profile["price"] = {**profile.get("price", {}), "manageAdoptedLines": True}
    litware = next(t for t in document["tenants"] if t["tenantId"] == LITWARE)
    engineering = litware["companies"][1]
    engineering.pop("userFilter")
    engineering["catchAll"] = True


def with_answers(msp: Msp, edit: Callable[[dict[str, Any]], None]) -> None:
    from shared.config.schema import dump_config, parse_config

    document = dump_config(msp.services.config())
    edit(document)
    msp.services.config_repository.save(parse_config(document), "tests", "the MSP's answers")


@pytest.mark.parametrize("psa", PSAS)
def test_billing_problems_reach_a_person_and_change_no_bill(psa: str, azurite: Azurite, store: TableStore,
                                                            tmp_path: Path) -> None:
    scenario, config_text = scenario_for(psa)
    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config_text) as msp:
        before = {line: line_state(msp, psa, line) for line in (FABRIKAM_BP, CONTOSO_BS, NORTHWIND_E3)}
        assert before[FABRIKAM_BP] == (20, Decimal("20.00")), "the MSP negotiated 20.00 with Fabrikam"

        # a dry run: every problem in the report, nothing written
        dry = msp.sync(tenants=TENANTS, dry_run=True)
        assert dry["status"] == "attention"
        assert exit_for(dry) == EXIT_PARTIAL
        assert set(problems(dry)) == {
            ("Fabrikam Ltd", "price-differs"), ("Contoso Pharma", "agreement-inactive"),
            ("Northwind Traders", "subscription-not-active"), ("Litware Inc", "users-unmatched")}
        assert {line: line_state(msp, psa, line) for line in before} == before
        # the alerts: one per problem, each with what to do (a dry run sees the same problems)
        card = card_lines(msp)
        assert "Billing problems (4)" in card
        assert any(line.startswith("Litware Inc | Microsoft 365 Business Premium: 2 user(s) hold it") for line in card)
        assert any(line.startswith("Contoso Pharma | Microsoft 365 Business Standard: agreement") for line in card)
        mail = msp.emulators.emulator("graph").state()["sentMail"][-1]["text"]
        assert "Keep the line's price (set the profile's price to match" in mail
        assert "Renew or reactivate the subscription" in mail

        report = msp.sync(tenants=TENANTS)
        assert report["status"] == "attention"
        assert report["totals"]["problems"] == 4
        found = problems(report)

        # the adopted line keeps its own price; its quantity still syncs
        price = found[("Fabrikam Ltd", "price-differs")]
        assert (price["lineId"], price["blocks"]) == (FABRIKAM_BP, False)
        assert "line 500 bills 20.00 a seat, profile 'm365-bp' 22.00" in price["message"]
        assert line_state(msp, psa, FABRIKAM_BP) == (22, Decimal("20.00"))
        assert [(c["unitPrice"], c["oldUnitPrice"]) for c in report["changes"]
                if c["kind"] == "set-details" and c["additionId"] == FABRIKAM_BP] == [(None, None)], \
            "the users' names on the invoice, not the price"

        # the cancelled agreement: nothing written, what to do said
        cancelled = found[("Contoso Pharma", "agreement-inactive")]
        assert (cancelled["agreementId"], cancelled["blocks"]) == (CONTOSO_AGREEMENT[psa], True)
        assert "is not active" in cancelled["message"]
        assert cancelled["action"].startswith("Map the licence to the customer's current agreement")
        assert changes(report, "Contoso Pharma") == []
        assert line_state(msp, psa, CONTOSO_BS) == before[CONTOSO_BS]
        assert msp.services.decisions.audit_trail(CONTOSO) == [], "nothing written, nothing to audit"

        # the suspended subscription never raises the bill: 12 hold E3, 8 seats are active, 10 billed
        lapsed = found[("Northwind Traders", "subscription-not-active")]
        facts = {f["label"]: f["value"] for f in lapsed["facts"]}
        assert facts["State"] == "Suspended"
        assert facts["Since"] == f"at least {TODAY}", "the first run that saw it"
        assert facts["Seats"] == "8 active, 4 suspended"
        assert facts["Subscriptions"] == f"{NORTHWIND_SUBS[1]} Suspended"
        assert (facts["Seats still assigned"], facts["Billing"]) == ("12", "kept at 10, not raised to 12")
        assert changes(report, "Northwind Traders") == []
        assert line_state(msp, psa, NORTHWIND_E3) == before[NORTHWIND_E3]
        assert msp.services.decisions.audit_trail(NORTHWIND) == []

        # the split tenant: two users nobody bills are named; the rest is billed as before
        unmatched = found[("Litware Inc", "users-unmatched")]
        assert unmatched["users"] == ["lee.blank@litware.onmicrosoft.com", "sam.space@litware.onmicrosoft.com"]
        assert unmatched["blocks"] is False
        assert (line_state(msp, psa, LITWARE_SALES)[0], line_state(msp, psa, LITWARE_ENG)[0]) == (6, 4)

        # what the dry run sent does not use up the day's digest: the real run tells them again
        card = card_lines(msp)
        assert "Billing problems (4)" in card
        assert f"Run needs attention: {report['totals']['changesApplied']} changes applied, 4 billing problems" \
            in card
        assert "Billing problems | 4 (agreement inactive: 1, price differs: 1, subscription not active: 1, users " \
               "unmatched: 1)" in card

        # the audit trail: the quantities written, no price
        audit = msp.services.decisions.audit_trail(FABRIKAM)
        assert [(e.event, e.kind) for e in audit if e.line_id == FABRIKAM_BP and e.kind == "set-details"] == [
            ("applied", "set-details")], "only the users' names on the invoice, the price untouched"
        assert all(e.old_unit_price is None for e in audit)

        # the MSP answers: manage the price of adopted lines, and a catch-all company for Litware
        with_answers(msp, manage_and_catch_all)
        planned = msp.sync(tenants=[FABRIKAM, LITWARE], dry_run=True)
        [price_change] = [c for c in planned["changes"] if c["kind"] == "set-details" and
                          c["additionId"] == FABRIKAM_BP]
        assert (price_change["status"], Decimal(price_change["oldUnitPrice"]),
                Decimal(price_change["unitPrice"])) == ("dry-run", Decimal("20.00"), Decimal("22.00"))
        assert "unit price 20.00 -> 22.00" in price_change["reason"]
        assert changes(planned, "Litware Inc") == [("set-quantity", LITWARE_ENG, 6)]
        assert planned["status"] == "succeeded"
        assert line_state(msp, psa, FABRIKAM_BP) == (22, Decimal("20.00")), "a dry run writes nothing"

        applied = msp.sync(tenants=[FABRIKAM, LITWARE])
        assert applied["status"] == "succeeded" and exit_for(applied) == 0
        assert applied["problems"] == []
        assert line_state(msp, psa, FABRIKAM_BP) == (22, Decimal("22.00"))
        assert line_state(msp, psa, LITWARE_ENG)[0] == 6, "4 engineers and the 2 users no filter matches"
        [entry] = [e for e in msp.services.decisions.audit_trail(FABRIKAM)
                   if e.kind == "set-details" and e.old_unit_price is not None]
        assert (entry.event, entry.old_unit_price, entry.unit_price, entry.line_id) == (
            "applied", Decimal("20.00"), Decimal("22.00"), FABRIKAM_BP)


@pytest.mark.parametrize("psa", PSAS)
def test_a_psa_refusing_seatsyncs_credentials_fails_the_run(psa: str, azurite: Azurite, store: TableStore,
                                                            tmp_path: Path) -> None:
    scenario, config_text = scenario_for(psa)
    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config_text,
                     env={WRONG_SECRET[psa]: "not-the-secret"}) as msp:
        before = line_state(msp, psa, FABRIKAM_BP)
        report = msp.sync(tenants=[FABRIKAM, LITWARE])
        assert report["status"] == "failed"
        assert exit_for(report) == EXIT_FAILED
        assert {t["name"]: t["status"] for t in report["tenants"]} == {"Fabrikam Ltd": "push-failed",
                                                                      "Litware Inc": "push-failed"}
        assert all("could not be read" in t["error"] for t in report["tenants"])
        assert line_state(msp, psa, FABRIKAM_BP) == before
        assert msp.services.decisions.audit_trail(FABRIKAM) == [], "nothing was written"
        card = card_lines(msp)
        assert card[2] == "Run failed: 2 of 2 tenants"
        assert any(line.startswith("Tenants failed | Fabrikam Ltd (push failed: PSA agreements and products could "
                                   "not be read") for line in card)
