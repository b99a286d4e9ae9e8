"""The sample MSP billed through each PSA (ConnectWise, Autotask, HaloPSA), synced on Azurite and
the emulators: the same tenants end up billed the same from the next period on, each PSA holding
the current period's changes its own way (ConnectWise: separate prorate lines; Autotask:
adjustments with an effective date; Halo: pending pro-rata entries), and `seatsync demo --psa`
shows it."""

from __future__ import annotations

import copy
import io
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from local_runner.azurite import Azurite
from local_runner.demo import run_demo
from shared.adapters.tables import TableStore
from tests.integration.msp import NOW, TAILSPIN, Msp, billing_writes, running_msp, sample_scenario

pytestmark = pytest.mark.integration

PSAS = ["connectwise", "autotask", "halopsa"]
TODAY = NOW.date().isoformat()
NEXT_PERIOD = "2026-12-01"  # every sample agreement bills monthly from 1 January 2026
TAILSPIN_AGREEMENT = {"connectwise": 102, "autotask": 102, "halopsa": -102}

Change = tuple[str, str, int | None, int]

# The app settings the emulators' credentials become (what the configurations' {setting: ...} name).
SECRETS = {
    "connectwise": {"CW_PUBLIC_KEY": "samplePublicKey", "CW_PRIVATE_KEY": "samplePrivateKey",
                    "CW_CLIENT_ID": "7b0e3f1a-2c4d-4e5f-8a9b-0c1d2e3f4a5b"},
    "autotask": {"AUTOTASK_USERNAME": "seatsync-api@seatsyncmsp.example", "AUTOTASK_SECRET": "sampleSecret",
                 "AUTOTASK_INTEGRATION_CODE": "SAMPLEINTEGRATIONCODE"},
    "halopsa": {"HALO_CLIENT_ID": "3c9d1e7a-4b2f-4a6e-8d0c-5f1a2b3c4d5e", "HALO_CLIENT_SECRET": "sampleClientSecret"},
}

# What every PSA has done after the first sync, but for how the current period's changes are held.
APPLIED_EVERYWHERE: list[Change] = [
    ("Fabrikam Ltd", "create-line", None, 26),      # managed users (custom licence), a new line
    ("Fabrikam Ltd", "set-details", 20, 20),        # Business Premium: the users' names on the invoice
    ("Fabrikam Ltd", "set-quantity", 5, 4),         # Exchange P1: decreasePolicy apply
    ("Fabrikam Ltd", "set-quantity", 20, 22),       # Business Premium
    ("Litware Inc", "set-quantity", 3, 4),          # Engineering's share of the split tenant
    ("Proseware Ltd", "create-line", None, 3),      # the monthly subscription's own line
]
APPLIED = {
    "connectwise": sorted([*APPLIED_EVERYWHERE, ("Fabrikam Ltd", "prorate", None, 2),
                           ("Fabrikam Ltd", "period-record", None, 5), ("Litware Inc", "prorate", None, 1)], key=str),
    "autotask": sorted(APPLIED_EVERYWHERE, key=str),
    "halopsa": sorted(APPLIED_EVERYWHERE, key=str),
}
HELD = [("Wingtip Toys", "set-quantity", 6, 5),   # guarded: no longer a GDAP customer; applies decreases at once
        ("Woodgrove Bank", "set-quantity", 1250, 1200)]
DEFERRED = [("Northwind Traders", "set-quantity", 10, 9)]

# When each applied quantity change takes effect: ConnectWise changes the addition at once (and
# prorates increases on separate lines); Autotask and Halo date increases today (they prorate them)
# and, with no negative prorating allowed, a decrease from the next billing period.
EFFECTIVE = {
    "connectwise": {("Fabrikam Ltd", 5, 4): TODAY, ("Fabrikam Ltd", 20, 22): TODAY, ("Litware Inc", 3, 4): TODAY},
    "autotask": {("Fabrikam Ltd", 5, 4): NEXT_PERIOD, ("Fabrikam Ltd", 20, 22): TODAY, ("Litware Inc", 3, 4): TODAY},
    "halopsa": {("Fabrikam Ltd", 5, 4): NEXT_PERIOD, ("Fabrikam Ltd", 20, 22): TODAY, ("Litware Inc", 3, 4): TODAY},
}

# (agreement name, product id) -> (quantity billed from the next period on, unit price, tagged by SeatSync):
# the same on every PSA (ids of products are the same in the three samples).
BILLED_FROM_NEXT_PERIOD: dict[tuple[str, str], tuple[int, str, bool]] = {
    ("Fabrikam Microsoft 365", "1"): (22, "22.00", False),
    ("Fabrikam Microsoft 365", "4"): (4, "4.00", False),
    ("Fabrikam Managed Services", "7"): (26, "15.00", True),
    ("Contoso Pharma Microsoft 365", "2"): (10, "12.50", False),
    ("Tailspin Microsoft 365", "1"): (6, "22.00", False),
    ("Northwind Microsoft 365", "3"): (10, "23.00", False),
    ("Woodgrove Microsoft 365", "1"): (1250, "21.00", False),   # its negotiated price, kept
    ("Litware Sales Microsoft 365", "1"): (6, "22.00", False),
    ("Litware Engineering Microsoft 365", "1"): (4, "22.00", False),
    ("Proseware Microsoft 365", "5"): (20, "20.90", False),
    ("Proseware Microsoft 365", "6"): (3, "26.40", True),   # 22.00 + 20 %
    ("Wingtip Microsoft 365", "4"): (6, "4.00", False),      # its decrease waits for a person
}

# How each PSA holds the changes dated inside the current period:
# (agreement name, product id, seats, from, until).
DATED_CHANGES: dict[str, set[tuple[str, str, int, str, str | None]]] = {
    "connectwise": {   # new additions from today; prorate additions to the period's end
        ("Fabrikam Microsoft 365", "1", 2, TODAY, "2026-11-30"),
        ("Fabrikam Microsoft 365", "4", 5, "2026-11-01", "2026-11-30"),  # November was invoiced at 5 (not billed)
        ("Litware Engineering Microsoft 365", "1", 1, TODAY, "2026-11-30"),
        ("Fabrikam Managed Services", "7", 26, TODAY, None),
        ("Proseware Microsoft 365", "6", 3, TODAY, None),
    },
    "autotask": {   # adjustments: Autotask prorates those dated today; the decrease from the next period
        ("Fabrikam Microsoft 365", "1", 2, TODAY, None),
        ("Fabrikam Microsoft 365", "4", -1, NEXT_PERIOD, None),
        ("Litware Engineering Microsoft 365", "1", 1, TODAY, None),
        ("Fabrikam Managed Services", "7", 26, TODAY, None),
        ("Proseware Microsoft 365", "6", 3, TODAY, None),
    },
    "halopsa": {   # pending pro-rata entries; the decrease changed the line's quantity (next invoice)
        ("Fabrikam Microsoft 365", "1", 2, TODAY, None),
        ("Litware Engineering Microsoft 365", "1", 1, TODAY, None),
        ("Fabrikam Managed Services", "7", 26, TODAY, None),
        ("Proseware Microsoft 365", "6", 3, TODAY, None),
    },
}

# What each PSA bills on the current period's invoice for the lines whose billing changed
# (ConnectWise: base additions, prorate lines apart; Autotask: units today; Halo: the lines'
# own quantities, pending pro-rata entries apart).
BILLED_TODAY: dict[str, dict[tuple[str, str], int]] = {
    "connectwise": {("Fabrikam Microsoft 365", "1"): 22, ("Fabrikam Microsoft 365", "4"): 4,
                    ("Litware Engineering Microsoft 365", "1"): 4},
    "autotask": {("Fabrikam Microsoft 365", "1"): 22, ("Fabrikam Microsoft 365", "4"): 5,
                 ("Litware Engineering Microsoft 365", "1"): 4},
    "halopsa": {("Fabrikam Microsoft 365", "1"): 20, ("Fabrikam Microsoft 365", "4"): 4,
                ("Litware Engineering Microsoft 365", "1"): 3},
}


# Litware's contacts (both its companies sync them): Lena Park's contact, found by her alias, is
# brought up to date; the other users get new ones; "Accounts Payable", made by hand, is left alone.
CONTACT_CHANGES = sorted([
    ("25", "update-contact", "Lena Park"), ("25", "create-contact", "Omar Haddad"),
    ("25", "create-contact", "Priya Nair"), ("25", "create-contact", "Tom Becker"),
    ("25", "create-contact", "Sofia Rossi"), ("25", "create-contact", "Wei Chen"),
    ("26", "create-contact", "Marta Kowalski"), ("26", "create-contact", "Jon Silva"),
    ("26", "create-contact", "Aisha Bello"), ("26", "create-contact", "Kenji Mori"),
])
# (company, primary address) -> (first name, last name, title, phone, mobile, active), as each PSA holds them.
CONTACTS_HELD = {
    ("25", "lena.park@litware.example.com"): ("Lena", "Park", "Sales Director", "+1 425 555 0101", "+1 425 555 0191",
                                              True),
    ("25", "ap@litware.example.com"): ("Accounts", "Payable", None, None, None, True),
    ("25", "omar.haddad@litware.example.com"): ("Omar", "Haddad", "Account Manager", "+1 425 555 0102", None, True),
    ("25", "priya.nair@litware.example.com"): ("Priya", "Nair", "Account Manager", "+1 425 555 0103", None, True),
    ("25", "tom.becker@litware.example.com"): ("Tom", "Becker", "Sales Engineer", None, None, True),
    ("25", "sofia.rossi@litware.example.com"): ("Sofia", "Rossi", "Inside Sales", None, None, True),
    ("25", "wei.chen@litware.example.com"): ("Wei", "Chen", "Sales Operations", None, None, True),
    ("26", "marta.kowalski@litware.example.com"): ("Marta", "Kowalski", "Engineering Manager", "+1 425 555 0201", None,
                                                   True),
    ("26", "jon.silva@litware.example.com"): ("Jon", "Silva", "Developer", None, None, True),
    ("26", "aisha.bello@litware.example.com"): ("Aisha", "Bello", "Developer", None, None, True),
    ("26", "kenji.mori@litware.example.com"): ("Kenji", "Mori", None, None, None, True),
}


def summary(report: dict[str, Any], status: str) -> list[Change]:
    """The billing changes of a status (contact changes apart: ``contact_changes``)."""
    return sorted(((c["tenantName"], c["kind"], c["oldQuantity"], c["newQuantity"])
                   for c in report["changes"] if c["status"] == status and not c["kind"].endswith("-contact")),
                  key=str)


def contact_changes(report: dict[str, Any], status: str) -> list[tuple[str, str, str]]:
    return sorted((c["companyId"], c["kind"], c["licence"]) for c in report["changes"]
                  if c["status"] == status and c["kind"].endswith("-contact"))


def contacts_held(msp: Msp, psa: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Litware's contacts as the emulator holds them (the companies 25 and 26)."""
    state = msp.emulators.emulator(psa).state()
    held: dict[tuple[str, str], tuple[Any, ...]] = {}
    if psa == "connectwise":
        for c in state["contacts"]:
            items = c["communicationItems"]
            email = next(i["value"] for i in items if i["communicationType"] == "Email" and i["defaultFlag"])
            phones = {i["type"]["name"]: i["value"] for i in items if i["communicationType"] == "Phone"}
            held[(str(c["company"]["id"]), email)] = (c["firstName"], c["lastName"], c["title"],
                                                      phones.get("Direct"), phones.get("Mobile"), not c["inactiveFlag"])
    elif psa == "autotask":
        for c in state["contacts"]:
            held[(str(c["companyID"]), c["emailAddress"])] = (c["firstName"], c["lastName"], c["title"], c["phone"],
                                                              c["mobilePhone"], c["isActive"] == 1)
    else:
        for u in state["users"]:
            held[(str(u["client_id"]), u["emailaddress"])] = (u["firstname"], u["surname"], u["title"] or None,
                                                              u["phonenumber"] or None, u["mobilenumber"] or None,
                                                              not u["inactive"])
    return {key: value for key, value in held.items() if key[0] in ("25", "26")}


def _day(value: str | None) -> str | None:
    return value[:10] if value else None


def _is_tag(value: Any) -> bool:
    return str(value or "").lower().startswith("seatsync")


def sample(psa: str) -> tuple[dict[str, Any], str]:
    """The PSA's sample, its emulators' day pinned to the tests' day."""
    scenario, config_text = sample_scenario(psa)
    scenario = copy.deepcopy(scenario)
    scenario[psa]["today"] = TODAY
    return scenario, config_text


def billed_from_next_period(msp: Msp, psa: str) -> dict[tuple[str, str], tuple[int, str, bool]]:
    """What the PSA bills from the next period on, read back from the emulator's state."""
    state = msp.emulators.emulator(psa).state()
    billed: dict[tuple[str, str], tuple[int, str, bool]] = {}
    if psa == "connectwise":
        for agreement in state["agreements"]:
            for addition in agreement["additions"]:
                if (_day(addition.get("cancelledDate")) or NEXT_PERIOD) < NEXT_PERIOD:
                    continue  # a prorate line: this period only
                billed[(agreement["name"], str(addition["product"]["id"]))] = (
                    int(addition["quantity"]), f"{addition['unitPrice']:.2f}", _is_tag(addition.get("serialNumber")))
    elif psa == "autotask":
        emulator: Any = msp.emulators.emulator("autotask")
        for contract in state["contracts"]:
            for service in contract["services"]:
                price = service["unitPrice"] if service.get("adjustedPrice") is None else service["adjustedPrice"]
                billed[(contract["contractName"], str(service["serviceID"]))] = (
                    emulator.units_on(service["id"], date.fromisoformat(NEXT_PERIOD)), f"{price:.2f}",
                    _is_tag(service.get("internalDescription")))
    else:
        for invoice in state["recurringInvoices"]:
            for line in invoice["lines"]:
                billed[(invoice["reference"], str(line["_itemid"]))] = (
                    int(line["billed_quantity"]), f"{line['unit_price']:.2f}",
                    _is_tag(line.get("item_internal_reference")))
    return billed


def billed_today(msp: Msp, psa: str) -> dict[tuple[str, str], int]:
    state = msp.emulators.emulator(psa).state()
    if psa == "connectwise":
        return {(a["name"], str(x["product"]["id"])): int(x["quantity"]) for a in state["agreements"]
                for x in a["additions"]
                if not str(x.get("serialNumber") or "").startswith(("seatsync:c:", "seatsync:i:"))}
    if psa == "autotask":
        return {(c["contractName"], str(s["serviceID"])): int(s["units"]) for c in state["contracts"]
                for s in c["services"]}
    return {(i["reference"], str(ln["_itemid"])): int(ln["qty_order"]) for i in state["recurringInvoices"]
            for ln in i["lines"]}


def dated_changes(msp: Msp, psa: str) -> set[tuple[str, str, int, str, str | None]]:
    """The changes the PSA holds dated after the agreements' start (1 January 2026)."""
    state = msp.emulators.emulator(psa).state()
    found: set[tuple[str, str, int, str, str | None]] = set()
    if psa == "connectwise":
        for agreement in state["agreements"]:
            for addition in agreement["additions"]:
                if _day(addition["effectiveDate"]) != "2026-01-01":
                    found.add((agreement["name"], str(addition["product"]["id"]), int(addition["quantity"]),
                               _day(addition["effectiveDate"]) or "", _day(addition.get("cancelledDate"))))
    elif psa == "autotask":
        for contract in state["contracts"]:
            for service in contract["services"]:
                for adjustment in service["adjustments"]:
                    if _day(adjustment["effectiveDate"]) != "2026-01-01":
                        found.add((contract["contractName"], str(service["serviceID"]), adjustment["unitChange"],
                                   _day(adjustment["effectiveDate"]) or "", None))
    else:
        for invoice in state["recurringInvoices"]:
            for line in invoice["lines"]:
                for entry in line["prorata_data"]:
                    if not entry["isinvoiced"]:
                        found.add((invoice["reference"], str(line["_itemid"]), int(entry["quantity"]),
                                   _day(entry["date"]) or "", None))
    return found


def invoice_description(msp: Msp, psa: str, agreement: str, product: str) -> str:
    state = msp.emulators.emulator(psa).state()
    if psa == "connectwise":
        return next(str(x.get("invoiceDescription") or "") for a in state["agreements"] if a["name"] == agreement
                    for x in a["additions"] if str(x["product"]["id"]) == product
                    and not x.get("cancelledDate"))
    if psa == "autotask":
        return next(str(s.get("invoiceDescription") or "") for c in state["contracts"]
                    if c["contractName"] == agreement for s in c["services"] if str(s["serviceID"]) == product)
    return next(str(ln.get("item_longdescription") or "") for i in state["recurringInvoices"]
                if i["reference"] == agreement for ln in i["lines"] if str(ln["_itemid"]) == product)


def agreement_lines(msp: Msp, psa: str, agreement_id: int) -> list[dict[str, Any]]:
    """The raw records of one agreement's lines, as the emulator holds them."""
    state = msp.emulators.emulator(psa).state()
    if psa == "connectwise":
        return [a for agreement in state["agreements"] if agreement["id"] == agreement_id
                for a in agreement["additions"]]
    if psa == "autotask":
        return [s for contract in state["contracts"] if contract["id"] == agreement_id for s in contract["services"]]
    return [ln for invoice in state["recurringInvoices"] if invoice["id"] == agreement_id for ln in invoice["lines"]]


def psa_writes(msp: Msp, psa: str) -> int:
    return billing_writes(msp.emulators.emulator(psa))


@pytest.mark.parametrize("psa", PSAS)
def test_the_sample_msp_syncs_the_same_on_every_psa(psa: str, azurite: Azurite, store: TableStore,
                                                    tmp_path: Path) -> None:
    scenario, config_text = sample(psa)
    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config_text) as msp:
        assert {c.type for c in msp.config.psa_connections} == {psa}
        assert {k: v for k, v in msp.emulators.environment().items() if k in SECRETS[psa]} == SECRETS[psa]
        tailspin_before = agreement_lines(msp, psa, TAILSPIN_AGREEMENT[psa])

        first = msp.sync()
        assert first["status"] == "partial", "Tailspin never consented: the run is partial"
        assert {t["name"]: t["status"] for t in first["tenants"]} == {
            "Fabrikam Ltd": "ok", "Contoso Pharma": "ok", "Tailspin Toys": "auth-failed", "Northwind Traders": "ok",
            "Woodgrove Bank": "ok", "Litware Inc": "ok", "Proseware Ltd": "ok", "Wingtip Toys": "ok"}
        assert next(t for t in first["tenants"] if t["tenantId"] == TAILSPIN)["errorCode"] == "AADSTS700016"
        assert summary(first, "applied") == APPLIED[psa]
        assert contact_changes(first, "applied") == CONTACT_CHANGES
        assert contacts_held(msp, psa) == CONTACTS_HELD
        assert summary(first, "held") == HELD
        assert summary(first, "deferred") == DEFERRED
        assert {c["status"] for c in first["changes"]} == {"applied", "held", "deferred"}
        assert {(c["tenantName"], c["oldQuantity"], c["newQuantity"]): c["effectiveDate"] for c in first["changes"]
                if c["kind"] == "set-quantity" and c["status"] == "applied"} == EFFECTIVE[psa]
        [deferred] = [c for c in first["changes"] if c["status"] == "deferred"]
        assert deferred["dueDate"] == "2027-03-01", "Northwind's decrease waits for its subscription's renewal"
        assert [t["name"] for t in first["gdap"]["notConfigured"]] == ["Adatum Corporation"]
        assert [(p["tenantName"], p["kind"], p["lineId"]) for p in first["problems"]] == [
            ("Woodgrove Bank", "price-differs", "540")], "its negotiated price is kept and reported"
        assert [(t["name"], t["standing"]) for t in first["gdap"]["guarded"]] == [("Wingtip Toys", "vanished")]
        [wingtip] = [c for c in first["changes"] if c["tenantName"] == "Wingtip Toys"]
        assert "no longer among the GDAP customers" in wingtip["reason"]

        assert billed_from_next_period(msp, psa) == BILLED_FROM_NEXT_PERIOD
        assert {k: v for k, v in billed_today(msp, psa).items() if k in BILLED_TODAY[psa]} == BILLED_TODAY[psa]
        assert dated_changes(msp, psa) == DATED_CHANGES[psa]
        names = invoice_description(msp, psa, "Fabrikam Microsoft 365", "1")
        assert names.splitlines()[-1].startswith("Users: Ana Silva, Ben Okafor, Staff 00001"), names
        assert names.count(",") == 21, "the 22 users holding Business Premium are named on the invoice"
        writes = psa_writes(msp, psa)
        assert writes > 0

        second = msp.sync()
        assert second["status"] == "partial"
        assert summary(second, "applied") == []
        assert contact_changes(second, "applied") == []
        assert summary(second, "held") == HELD
        assert summary(second, "deferred") == DEFERRED
        assert psa_writes(msp, psa) == writes, "an unchanged day writes nothing"
        assert billed_from_next_period(msp, psa) == BILLED_FROM_NEXT_PERIOD
        assert len(msp.services.decisions.approvals("pending")) == 2, "each held decrease is asked once"

        assert not [c for r in (first, second) for c in r["changes"] if c["tenantId"] == TAILSPIN]
        assert agreement_lines(msp, psa, TAILSPIN_AGREEMENT[psa]) == tailspin_before, "Tailspin's lines are untouched"


SAMPLE_TICKETS = [
    "Tenants SeatSync cannot sign in to - Tailspin Toys", "Billing problems - Woodgrove Bank",
    "Changes held for approval - Woodgrove Bank", "Changes held for approval - Wingtip Toys",
    "Tenants whose decreases wait for a person - Wingtip Toys"]
"""The tickets the sample's first run opens in its PSA (``notifications.psaTickets``): one for each
alert of the kinds it names, in the customer's company."""


def demo_tickets(text: str, psa: str) -> list[str]:
    """The tickets the demo found in the PSA after the run, read back from the emulator."""
    return [m.group(1) for m in re.finditer(rf"^  {psa} ticket \S+: SeatSync: (.+) \[SeatSync [0-9a-f]{{12}}\]$", text,
                                             re.MULTILINE)]


def test_the_demo_on_connectwise_opens_a_ticket_for_each_alert_its_sample_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("local_runner.demo.WORK_DIR", tmp_path / ".seatsync")
    out = io.StringIO()
    assert run_demo(psa="connectwise", out=out) == 0
    assert demo_tickets(out.getvalue(), "connectwise") == SAMPLE_TICKETS


@pytest.mark.parametrize("psa", ["autotask", "halopsa"])
def test_the_demo_runs_the_sample_on_autotask_and_halo(psa: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("local_runner.demo.WORK_DIR", tmp_path / ".seatsync")
    out = io.StringIO()
    assert run_demo(psa=psa, out=out) == 0
    text = out.getvalue()
    assert f"emulators/scenarios/sample-msp-{psa}.yaml), billed through {psa}" in text
    assert "(live): PARTIAL" in text
    assert "Changes: 19 (16 applied, 2 held for approval, 1 deferred); 3 lines already right" in text
    assert "Guarded tenants, nothing lowered until a person approves: 1" in text
    assert text.count("contact created") == 9 and text.count("contact updated") == 1
    assert "auth-failed  Tailspin Toys" in text
    assert "Billing problems: 1 (price differs: 1)" in text
    assert "What to do: Keep the line's price" in text
    bills = text.split(f"What {psa} bills now:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    rows = {tuple(re.split(r"\s{2,}", row.strip())[:4]) for row in bills[1:]}
    assert len(bills) == 1 + 12, bills
    assert ("Fabrikam Microsoft 365", "Exchange Online (Plan 1)", "5" if psa == "autotask" else "4", "4.00") in rows
    assert ("Fabrikam Microsoft 365", "Microsoft 365 Business Premium", "22", "22.00") in rows
    assert ("Fabrikam Managed Services", "Managed user (support and security)", "26", "15.00") in rows
    assert ("Proseware Microsoft 365", "Microsoft 365 Business Premium (monthly)", "3", "26.40") in rows
    assert ("Tailspin Microsoft 365", "Microsoft 365 Business Premium", "6", "22.00") in rows
    assert ("Wingtip Microsoft 365", "Exchange Online (Plan 1)", "6", "4.00") in rows, "guarded: not lowered"
    tagged = [row for row in bills if row.endswith("(SeatSync)")]
    assert [re.split(r"\s{2,}", row.strip())[0] for row in tagged] == ["Fabrikam Managed Services",
                                                                       "Proseware Microsoft 365"]
    assert demo_tickets(text, psa) == SAMPLE_TICKETS
    if psa == "autotask":
        assert re.search(r"Exchange Online \(Plan 1\)\s+5\s+4\.00  \(4 units from \d{4}-\d{2}-01\)", text)
    else:
        assert re.search(r"Business Premium\s+22\s+22\.00  \(\+2 pro-rata \d{4}-\d{2}-\d{2}\.\.\d{4}-\d{2}-\d{2} at "
                         r"\d+\.\d\d a seat\)", text)
