"""A realistic MSP on each PSA, checked the way an independent reviewer checks it: the PSA's state
read back through the vendors' third-party clients (pyconnectwise, autotask-client, HaloPSA, in
``.venv-clients``), compared with what the documented rules say by hand, beside the run report,
the audit trail and the alerts posted to the Teams channel.

The MSP (``tests/integration/realistic_msp.py``) has seven customers in the states MSPs live in on
20 November 2026: a tenant split by department with users no filter matches and a disabled
account, a catch-all company with no line yet, a cancelled agreement and an ended one, suspended
and Warning subscriptions with seats still assigned, an adopted line at a negotiated price and a
taxable line, three decreases (inside the NCE window, held, deferred) and a licence split between
an annual and a monthly subscription with Partner Center's terms. Every agreement bills monthly
from 1 January 2026: November (30 days) is invoiced, and a seat added on 20 November is charged
11/30 of its price (22.00 -> 8.07, 19.50 -> 7.15, 4.00 -> 1.47).
"""

from __future__ import annotations

import copy
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from emulators.graph import GraphEmulator
from local_runner.azurite import Azurite
from local_runner.sync_cli import exit_for
from shared.adapters.tables import TableStore
from shared.bootstrap import default_psa_factory
from shared.services.report import build_report
from tests.integration import realistic_msp as rm
from tests.integration.msp import Msp, billing_writes, running_msp, seatsync_paused_at
from tests.integration.test_third_party_clients import drive
from tests.notification_support import texts

pytestmark = pytest.mark.integration

PSAS = ["connectwise", "autotask", "halopsa"]
BP, EXO, E3, BS = ("Microsoft 365 Business Premium", "Exchange Online (Plan 1)", "Office 365 E3",
                   "Microsoft 365 Business Standard")
NOV_20, NOV_21, NOV_22, DEC_1, DEC_10 = (date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22),
                                         date(2026, 12, 1), date(2026, 12, 10))


# --------------------------------------------------------------------------- the MSP on one PSA


@dataclass
class Shop:
    """The realistic MSP billed through one PSA, synced day after day."""

    psa: str
    msp: Msp

    @property
    def graph(self) -> GraphEmulator:
        graph = self.msp.emulators.emulator("graph")
        assert isinstance(graph, GraphEmulator)
        return graph

    @property
    def emulator(self) -> Any:
        return self.msp.emulators.emulator(self.psa)

    def on(self, day: date) -> Shop:
        """SeatSync's and the PSAs' clock on ``day``, 02:00 UTC (when the timer runs)."""
        moment = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
        self.msp.services.clock = lambda: moment
        for section in (self.psa, "partnercenter"):
            emulator: Any = self.msp.emulators.emulator(section)
            with emulator.lock:
                emulator.today = day
        return self

    def sync(self, *tenants: str, dry_run: bool = False) -> dict[str, Any]:
        return self.msp.sync(tenants=list(tenants) or None, dry_run=dry_run)

    def psa_writes(self) -> int:
        return billing_writes(self.emulator)

    def cards(self) -> list[list[str]]:
        """Every card posted to the billing channel so far, as its lines."""
        teams: Any = self.msp.emulators.emulator("teams")
        return [texts(post["cards"][0]) for post in teams.posts_for("billing")]

    def audit(self, tenant_id: str) -> list[tuple[str, str, str, int | None, int | None, str | None]]:
        """(day, event, licence, before, after, amount) of the tenant's audit trail."""
        return [(e.at.date().isoformat(), e.event, e.licence, e.before, e.after,
                 None if e.amount is None else str(e.amount))
                for e in self.msp.services.decisions.audit_trail(tenant_id)]

    # -- what the PSA bills, read through the vendor's third-party client ----------------------
    def billed(self, *agreements: int) -> dict[int, list[tuple[Any, ...]]]:
        """Each agreement's lines as the third-party client reads them, in a form that is the same
        on every run (ids and timestamps aside), sorted."""
        readers: dict[str, Callable[[tuple[int, ...]], dict[int, list[tuple[Any, ...]]]]] = {
            "connectwise": self._connectwise, "autotask": self._autotask, "halopsa": self._halo}
        return {a: ordered(lines) for a, lines in readers[self.psa](agreements).items()}

    def _connectwise(self, agreements: tuple[int, ...]) -> dict[int, list[tuple[Any, ...]]]:
        running = self.msp.emulators["connectwise"]
        credential = rm.connectwise_section()["credentials"][0]
        connection = {"companyId": "realisticmsp", "host": f"127.0.0.1:{running.port}",
                      "clientId": credential["clientId"], "publicKey": credential["publicKey"],
                      "privateKey": credential["privateKey"]}
        # pages of 3: the client follows the Link header across pages, as it does on ConnectWise
        pages = drive("connectwise", self.msp.emulators.tls, connection,
                      [{"op": "additions", "agreementId": a, "pageSize": 3} for a in agreements])
        return {a: [(x["product"]["identifier"], whole(x["quantity"]), Decimal(str(x["unitPrice"])), x["billCustomer"],
                     day(x.get("effectiveDate")), day(x.get("cancelledDate")), x["taxableFlag"],
                     (x.get("invoiceGrouping") or {}).get("name"), tag_kind(x.get("serialNumber")))
                    for x in additions]
                for a, additions in zip(agreements, pages, strict=True)}

    def _autotask(self, agreements: tuple[int, ...]) -> dict[int, list[tuple[Any, ...]]]:
        user = rm.autotask_section()["users"][0]
        connection = {"username": user["username"], "secret": user["secret"],
                      "integrationCode": user["integrationCode"], "apiUrl": self.msp.emulators["autotask"].url}
        services, units = drive("autotask", self.msp.emulators.tls, connection, [
            {"op": "query", "entity": "ContractServices",
             "filter": [{"op": "in", "field": "contractID", "value": list(agreements)}]},
            {"op": "query", "entity": "ContractServiceUnits",
             "filter": [{"op": "gte", "field": "contractServiceID", "value": min(rm.LINES)}]}])

        def units_on(service: int, when: date) -> int:
            for record in units:
                starts, ends = (date.fromisoformat(record[key][:10]) for key in ("startDate", "endDate"))
                if record["contractServiceID"] == service and starts <= when <= ends:
                    return whole(record["units"])
            return 0

        found: dict[int, list[tuple[Any, ...]]] = {a: [] for a in agreements}
        for s in services:
            adjusted = None if s.get("adjustedPrice") is None else Decimal(str(s["adjustedPrice"]))
            found[s["contractID"]].append((
                s["serviceID"], Decimal(str(s["unitPrice"])), adjusted, tag_kind(s.get("internalDescription")),
                units_on(s["id"], date(2026, 11, 19)), units_on(s["id"], NOV_20), units_on(s["id"], DEC_1)))
        return found

    def _halo(self, agreements: tuple[int, ...]) -> dict[int, list[tuple[Any, ...]]]:
        application = rm.halo_section()["applications"][0]
        connection = {"baseUrl": self.msp.emulators["halopsa"].url, "tenant": "realisticmsp",
                      "clientId": application["clientId"], "secret": application["clientSecret"]}
        # pages of 3 recurring invoices: the package pages on page_no up to record_count
        (invoices,) = drive("halopsa", self.msp.emulators.tls, connection, [{"op": "invoices", "pageSize": 3}])
        by_id = {invoice["id"]: invoice for invoice in invoices}
        return {a: [(line["_itemid"], whole(line["qty_order"]), Decimal(str(line["unit_price"])), line["tax_code"],
                     tag_kind(line.get("item_internal_reference")),
                     [(p["date"][:10], whole(p["quantity"]), Decimal(str(p["unitprice"])))
                      for p in line["prorata_data"] if not p["isinvoiced"]])
                    for line in by_id[-a]["lines"]]
                for a in agreements}


def ordered(lines: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Lines in an order that does not depend on ids, nor on how a price is written (22.0, 22.00)."""
    def key(line: tuple[Any, ...]) -> str:
        return repr(tuple(f"{value:.2f}" if isinstance(value, Decimal) else value for value in line))
    return sorted(lines, key=key)


def whole(value: Any) -> int:
    number = Decimal(str(value))
    assert number == number.to_integral_value(), f"a fractional quantity {value!r}"
    return int(number)


def day(value: str | None) -> str | None:
    return value[:10] if value else None


def tag_kind(tag: str | None) -> str:
    """SeatSync's tag as the test compares it: ``seatsync:l`` (a licence's line),
    ``seatsync:c:<base line>`` (a prorate or credit line of a base line), a period record whole."""
    if not tag or not tag.startswith("seatsync:"):
        return ""
    if tag.startswith("seatsync:l:"):
        return "seatsync:l"
    if tag.startswith("seatsync:c:"):
        return tag.split(".")[0]
    return tag


@contextmanager
def shop(psa: str, azurite: Azurite, store: TableStore, tmp: Path,
         edit_config: Callable[[dict[str, Any]], None] | None = None,
         read_timeout: float | None = None) -> Iterator[Shop]:
    scenario, config_text = rm.world(psa)

    def factory(msp: Msp) -> Any:
        return default_psa_factory(msp.services.settings, msp.services.secrets, lambda seconds: None,
                                   lambda: msp.services.clock(), read_timeout=read_timeout)

    with running_msp(azurite, store, tmp, scenario=copy.deepcopy(scenario), config_text=config_text,
                     edit_config=edit_config, psa_factory=factory if read_timeout else None) as msp:
        yield Shop(psa, msp).on(rm.TODAY)


def changes(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted((c["tenantName"], c["licence"], c["kind"], c["oldQuantity"], c["newQuantity"], c["status"],
                   c["amount"]) for c in report["changes"])


# --------------------------------------------------------------------------- by hand, per PSA

# 20 November: what every PSA is asked to do (ConnectWise adds its prorate lines and the record of
# the quantity November was invoiced at; Autotask and Halo prorate the change itself, whose
# amount the report shows on the quantity change).
DONE_EVERYWHERE = [
    # the catch-all (2 in London, 1 with no city): a new line charged from today, 3 x 8.07
    ("Birch Logistics", BP, "create-line", None, 3, "applied", "24.21"),
    ("Fir Consulting", BP, "set-quantity", 10, 8, "applied", None),   # bought 4 days ago: inside the NCE window
    ("Fir Consulting", BS, "set-quantity", 6, 5, "deferred", None),   # decreasePolicy defer: to the renewal
    ("Fir Consulting", E3, "set-quantity", 10, 9, "held", None),      # renewed in March: held for approval
    # the monthly subscription (24 - 20 on the annual one) at 22.00 + 20 % = 26.40: 4 x 9.68
    ("Grove Health", BP, "create-line", None, 4, "applied", "38.72"),
]
DONE = {
    "connectwise": sorted([
        *DONE_EVERYWHERE,
        ("Alpine Dental", BP, "set-quantity", 5, 7, "applied", None),  # 5 dentists, the disabled one, " clinical "
        ("Alpine Dental", BP, "prorate", None, 2, "applied", "16.14"),  # 2 x 22.00 x 11/30
        ("Elm Architects", BP, "set-quantity", 8, 10, "applied", None),
        ("Elm Architects", BP, "prorate", None, 2, "applied", "14.30"),  # 2 x 19.50 x 11/30: the line's price
        ("Elm Architects", EXO, "set-quantity", 4, 6, "applied", None),
        ("Elm Architects", EXO, "prorate", None, 2, "applied", "2.94"),  # 2 x 4.00 x 11/30
        ("Fir Consulting", BP, "period-record", None, 10, "applied", None),  # November was invoiced at 10
    ]),
    "autotask": sorted([
        *DONE_EVERYWHERE,
        ("Alpine Dental", BP, "set-quantity", 5, 7, "applied", "16.14"),
        ("Elm Architects", BP, "set-quantity", 8, 10, "applied", "14.30"),
        ("Elm Architects", EXO, "set-quantity", 4, 6, "applied", "2.94"),
    ]),
}
DONE["halopsa"] = DONE["autotask"]

PROBLEMS = {
    ("Alpine Dental", "users-unmatched"): ("2 user(s) hold it but no mapping of it counts them", False),
    ("Alpine Dental", "disabled-users-licensed"): ("1 disabled account(s) hold it and are billed", False),
    ("Cedar Law", "agreement-inactive"): ("(Cedar Law Microsoft 365) is not active", True),
    ("Cedar Law", "agreement-ended"): ("(Cedar Law Exchange) ended on 2026-10-31", True),
    ("Dune Retail", "subscription-not-active"): ("billing kept at", False),
    ("Elm Architects", "price-differs"): ("line 639 bills 19.50 a seat, profile 'm365-bp' 22.00", False),
}
UNTOUCHED = (132, 133, 135, 136, 137)


def billed_after_the_first_sync(psa: str) -> dict[int, list[tuple[Any, ...]]]:
    """What each PSA holds after the first sync, by hand."""
    return {a: ordered(lines) for a, lines in _by_hand(psa).items()}


def _by_hand(psa: str) -> dict[int, list[tuple[Any, ...]]]:
    d = Decimal
    if psa == "connectwise":
        def base(product: str, quantity: int, price: str, taxable: bool = False,
                 grouping: str | None = None) -> tuple[Any, ...]:
            return (product, quantity, d(price), "Billable", "2026-01-01", None, taxable, grouping, "")

        def new(product: str, quantity: int, price: str, tag: str, ends: str | None = "2026-11-30",
                taxable: bool = False, grouping: str | None = None, mode: str = "Billable",
                starts: str = "2026-11-20") -> tuple[Any, ...]:
            return (product, quantity, d(price), mode, starts, ends, taxable, grouping, tag)

        return {
            131: [base("M365-BP", 7, "22.00"), new("M365-BP", 2, "22.00", "seatsync:c:631")],
            134: [new("M365-BP", 3, "22.00", "seatsync:l", ends=None)],
            139: [base("M365-BP", 10, "19.50"), base("EXO-P1", 6, "4.00", True, "Microsoft 365"),
                  # the prorate lines bill like their base lines: the Exchange one is taxed and grouped
                  new("M365-BP", 2, "19.50", "seatsync:c:639"),
                  new("EXO-P1", 2, "4.00", "seatsync:c:640", taxable=True, grouping="Microsoft 365")],
            141: [base("M365-BP", 8, "22.00"), base("O365-E3", 10, "23.00"), base("M365-BS", 6, "12.50"),
                  new("M365-BP", 10, "22.00", "seatsync:i:641.20261101", mode="DoNotBill", starts="2026-11-01")],
            144: [base("M365-BP-ANNUAL", 20, "20.90"),
                  new("M365-BP-MONTHLY", 4, "26.40", "seatsync:l", ends=None)],  # 22.00 + 20 %
        }
    if psa == "autotask":  # (service, unit price, adjusted price, tag, units on 19 Nov, 20 Nov, 1 Dec)
        return {
            131: [(1, d("22.00"), None, "", 5, 7, 7)],
            134: [(1, d("22.00"), None, "seatsync:l", 0, 3, 3)],
            139: [(1, d("22.00"), d("19.50"), "", 8, 10, 10), (4, d("4.00"), None, "", 4, 6, 6)],
            141: [(1, d("22.00"), None, "", 10, 10, 8), (3, d("23.00"), None, "", 10, 10, 10),
                  (2, d("12.50"), None, "", 6, 6, 6)],
            144: [(5, d("20.90"), None, "", 20, 20, 20), (6, d("26.40"), None, "seatsync:l", 0, 4, 4)],
        }
    # Halo: (item, qty_order, unit price, tax code, tag, pending pro-rata entries)
    return {
        131: [(1, 5, d("22.00"), 0, "", [("2026-11-20", 2, d("8.07"))])],
        134: [(1, 0, d("22.00"), 0, "seatsync:l", [("2026-11-20", 3, d("8.07"))])],
        139: [(1, 8, d("19.50"), 0, "", [("2026-11-20", 2, d("7.15"))]),
              (4, 4, d("4.00"), 2, "", [("2026-11-20", 2, d("1.47"))])],
        141: [(1, 8, d("22.00"), 0, "", []), (3, 10, d("23.00"), 0, "", []), (2, 6, d("12.50"), 0, "", [])],
        144: [(5, 20, d("20.90"), 0, "", []), (6, 0, d("26.40"), 0, "seatsync:l", [("2026-11-20", 4, d("9.68"))])],
    }


# --------------------------------------------------------------------------- the first day


@pytest.mark.parametrize("psa", PSAS)
def test_a_dry_run_then_two_runs_bill_the_realistic_msp_as_the_rules_say(
        psa: str, azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with shop(psa, azurite, store, tmp_path) as s:
        changed = (131, 134, 139, 141, 144)
        before = s.billed(*UNTOUCHED)

        # the dry run: the exact plan, nothing written, the billing problems alerted
        dry = s.sync(dry_run=True)
        assert (dry["status"], exit_for(dry), s.psa_writes()) == ("attention", 1, 0)
        planned = {"applied": "dry-run"}
        assert changes(dry) == sorted((*c[:5], planned.get(c[5], c[5]), c[6]) for c in DONE[psa])
        card = s.cards()[-1]
        assert "Billing problems (7)" in card
        assert f"Run needs attention (dry run): {len(DONE[psa]) - 2} changes planned, 7 billing problems" in card

        # the run: what the dry run said, written; every problem reported with what to do
        report = s.sync()
        assert (report["status"], exit_for(report)) == ("attention", 1)
        assert [t["status"] for t in report["tenants"]] == ["ok"] * 7
        assert changes(report) == DONE[psa]
        found = {(p["tenantName"], p["kind"]): p for p in report["problems"]}
        assert set(found) == set(PROBLEMS) | {("Dune Retail", "subscription-not-active")}
        assert len(report["problems"]) == 7, "Dune Retail: Business Premium (suspended) and Exchange (warning)"
        for key, (text, blocks) in PROBLEMS.items():
            assert text in found[key]["message"] and found[key]["blocks"] is blocks, found[key]
            assert found[key]["action"], "each problem says what to do"
        assert found[("Alpine Dental", "users-unmatched")]["users"] == [
            "no.department@alpinedental.onmicrosoft.com", "receptionist@alpinedental.onmicrosoft.com"]
        assert {f["label"]: f["value"] for f in found[("Alpine Dental", "disabled-users-licensed")]["facts"]}[
            "Monthly cost"] == "22.00 USD (1 x 22.00)"
        lapsed = sorted(p["message"].split(":")[0] for p in report["problems"]
                        if p["kind"] == "subscription-not-active")
        assert lapsed == ["suspended since at least 2026-11-20", "warning since at least 2026-11-20"]
        assert "billing kept at 10, not raised to 13" in str(report["problems"])
        assert "billing kept at 4, not raised to 5" in str(report["problems"])

        # what the PSA bills, read through the vendor's client, is what the rules give by hand
        assert s.billed(*changed) == billed_after_the_first_sync(psa)
        assert s.billed(*UNTOUCHED) == before, "frozen, unchanged and not-active lines are left alone"

        # the audit trail: every write and decision, with the amounts
        fir = s.audit(rm.FIR)
        assert ("2026-11-20", "held", E3, 10, 9, None) in fir
        assert ("2026-11-20", "deferred", BS, 6, 5, None) in fir
        assert ("2026-11-20", "applied", BP, 10, 8, None) in fir
        elm = s.audit(rm.ELM)
        amounts = sorted(a[5] for a in elm if a[5] is not None)
        assert amounts == ["14.30", "2.94"]
        assert s.audit(rm.CEDAR) == [] and s.audit(rm.DUNE) == [], "nothing written, nothing audited"

        # the alerts: the billing problems were sent with the dry run today; the run sends the held
        # decrease and its summary
        card = s.cards()[-1]
        assert "Changes held for approval (1)" in card
        assert f"Run needs attention: {len(DONE[psa]) - 2} changes applied, 7 billing problems" in card
        assert "Billing problems | 7 (agreement ended: 1, agreement inactive: 1, disabled users licensed: 1, price " \
               "differs: 1, subscription not active: 2, users unmatched: 1)" in card

        # the same day again: nothing written twice, the decisions still waiting
        writes = s.psa_writes()
        again = s.sync()
        assert s.psa_writes() == writes
        assert changes(again) == [("Fir Consulting", BS, "set-quantity", 6, 5, "deferred", None),
                                  ("Fir Consulting", E3, "set-quantity", 10, 9, "held", None)]
        assert s.billed(*changed) == billed_after_the_first_sync(psa)


# --------------------------------------------------------------------------- day after day


def elm_applies_decreases(document: dict[str, Any]) -> None:
    elm = next(t for t in document["tenants"] if t["tenantId"] == rm.ELM)
    elm["companies"][0]["licences"][0]["decreasePolicy"] = "apply"


def approve(s: Shop, licence: str, old: int, new: int) -> None:
    from shared.services.decisions import decide

    [pending] = [r for r in s.msp.services.decisions.approvals("pending")
                 if (r.change.label, r.change.old_quantity, r.change.new_quantity) == (licence, old, new)]
    decide(s.msp.services.decisions, s.msp.services.config(), pending.hold_key, True, "ana", None,
           s.msp.services.clock())


def approvals(s: Shop) -> list[tuple[str, int | None, int, str]]:
    return sorted((r.change.label, r.change.old_quantity, r.change.new_quantity, r.status)
                  for r in s.msp.services.decisions.approvals())


def billed_at_the_end(psa: str) -> dict[int, list[tuple[Any, ...]]]:
    """Elm and Fir on 10 December, by hand."""
    d = Decimal
    if psa == "connectwise":
        def line(product: str, quantity: int, price: str, tag: str = "", starts: str = "2026-01-01",
                 ends: str | None = None, mode: str = "Billable", taxable: bool = False) -> tuple[Any, ...]:
            return (product, quantity, d(price), mode, starts, ends, taxable,
                    "Microsoft 365" if taxable else None, tag)

        lines = {
            139: [line("M365-BP", 11, "19.50"), line("EXO-P1", 6, "4.00", taxable=True),
                  line("M365-BP", 2, "19.50", "seatsync:c:639", "2026-11-20", "2026-11-30"),
                  line("EXO-P1", 2, "4.00", "seatsync:c:640", "2026-11-20", "2026-11-30", taxable=True),
                  # November was invoiced at 8: the record that kept 22 November's re-increase free
                  line("M365-BP", 8, "19.50", "seatsync:i:639.20261101", "2026-11-01", "2026-11-30", "DoNotBill"),
                  # December was invoiced (at 10) when the 11th architect came: 31/31 x 19.50
                  line("M365-BP", 1, "19.50", "seatsync:c:639", "2026-12-01", "2026-12-31")],
            141: [line("M365-BP", 8, "22.00"), line("O365-E3", 8, "23.00"), line("M365-BS", 6, "12.50"),
                  line("M365-BP", 10, "22.00", "seatsync:i:641.20261101", "2026-11-01", "2026-11-30", "DoNotBill"),
                  line("O365-E3", 10, "23.00", "seatsync:i:642.20261101", "2026-11-01", "2026-11-30", "DoNotBill")],
        }
    elif psa == "autotask":  # units on 19 November, 20 November, 1 December
        lines = {139: [(1, d("22.00"), d("19.50"), "", 8, 10, 11), (4, d("4.00"), None, "", 4, 6, 6)],
                 141: [(1, d("22.00"), None, "", 10, 10, 8), (3, d("23.00"), None, "", 10, 10, 8),
                       (2, d("12.50"), None, "", 6, 6, 6)]}
    else:  # December invoiced: November's pro-rata entries were invoiced and added to the lines
        lines = {139: [(1, 10, d("19.50"), 0, "", [("2026-12-01", 1, d("19.50"))]), (4, 6, d("4.00"), 2, "", [])],
                 141: [(1, 8, d("22.00"), 0, "", []), (3, 8, d("23.00"), 0, "", []), (2, 6, d("12.50"), 0, "", [])]}
    return {a: ordered(found) for a, found in lines.items()}


@pytest.mark.parametrize("psa", PSAS)
def test_decreases_reversals_approvals_and_deferrals_follow_the_count_day_after_day(
        psa: str, azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """Elm: 10 seats (2 added on 20 November), 9 on the 21st (applied, not credited), 10 again on
    the 22nd (charged once), 11 on 1 December once December is invoiced. Fir: the held E3
    decrease approved, then the count moves on (the approval is superseded, the new decrease held,
    approved and applied); the deferred Business Standard decrease no longer stands on the 21st
    (dropped), the subscription renews on 1 December at 6 seats, and the decrease of 10 December
    is deferred to the next renewal, never applied on the strength of November's deferral."""
    tenants = (rm.FIR, rm.ELM)
    fir, elm = "firconsulting.onmicrosoft.com", "elmarchitects.onmicrosoft.com"
    with shop(psa, azurite, store, tmp_path, edit_config=elm_applies_decreases) as s:
        s.sync(*tenants)

        s.on(NOV_21)
        approve(s, E3, 10, 9)
        s.graph.remove_user(rm.FIR, f"analyst9@{fir}")
        s.graph.add_user(rm.FIR, {"userPrincipalName": f"partner6@{fir}", "licenses": ["O365_BUSINESS_PREMIUM"]})
        s.graph.remove_user(rm.ELM, f"architect10@{elm}")
        moved = s.sync(*tenants)
        record = [("Elm Architects", BP, "period-record", None, 8, "applied", None)] if psa == "connectwise" else []
        assert changes(moved) == sorted([*record, ("Elm Architects", BP, "set-quantity", 10, 9, "applied", None),
                                         ("Fir Consulting", E3, "set-quantity", 10, 8, "held", None)])
        assert approvals(s) == [(E3, 10, 8, "pending"), (E3, 10, 9, "superseded")]
        assert "2 seat(s) already charged to 2026-11-30" not in str(moved["changes"])
        assert "1 seat(s) stay charged to 2026-11-30 (no credit)" in str(moved["changes"])

        s.on(NOV_22)
        s.graph.add_user(rm.ELM, {"userPrincipalName": f"architect10@{elm}", "licenses": ["SPB"]})
        back = s.sync(*tenants)
        assert changes(back) == [("Elm Architects", BP, "set-quantity", 9, 10, "applied", None),
                                 ("Fir Consulting", E3, "set-quantity", 10, 8, "held", None)]
        assert "1 seat(s) already charged to 2026-11-30 this period: not charged again" in str(back["changes"])
        approve(s, E3, 10, 8)
        applied = s.sync(rm.FIR)
        record = [("Fir Consulting", E3, "period-record", None, 10, "applied", None)] if psa == "connectwise" else []
        assert changes(applied) == sorted([*record, ("Fir Consulting", E3, "set-quantity", 10, 8, "applied", None)])
        assert approvals(s) == [(E3, 10, 8, "applied"), (E3, 10, 9, "superseded")]

        # 1 December: the Business Standard subscription renews for a year at 6 seats; December is
        # invoiced before the timer runs
        s.on(DEC_1)
        with s.graph.lock:
            for subscription in s.graph._tenant(rm.FIR).subscriptions:
                if subscription.sku_id == rm.BS:
                    subscription.next_lifecycle = "2027-12-01T00:00:00Z"
        if psa == "connectwise":
            for agreement in (139, 141):
                s.emulator.invoice_agreement(agreement)
        elif psa == "halopsa":
            for invoice in (-139, -141):
                s.emulator.create_invoice(invoice)
        s.graph.add_user(rm.ELM, {"userPrincipalName": f"architect11@{elm}", "licenses": ["SPB"]})
        december = s.sync(*tenants)
        prorate = [("Elm Architects", BP, "prorate", None, 1, "applied", "19.50")] if psa == "connectwise" else []
        amount = None if psa == "connectwise" else "19.50"
        assert changes(december) == sorted([*prorate, ("Elm Architects", BP, "set-quantity", 10, 11, "applied",
                                                       amount)])

        # 10 December: outside the new term's 7-day window; deferred to the next renewal
        s.on(DEC_10)
        s.graph.remove_user(rm.FIR, f"partner6@{fir}")
        later = s.sync(*tenants)
        assert changes(later) == [("Fir Consulting", BS, "set-quantity", 6, 5, "deferred", None)]
        [deferred] = later["changes"]
        assert deferred["dueDate"] == "2027-12-01"

        assert s.billed(139, 141) == billed_at_the_end(psa)
        audit = s.audit(rm.FIR)
        for entry in [("2026-11-20", "deferred", BS, 6, 5, None), ("2026-11-21", "approved", E3, 10, 9, None),
                      ("2026-11-21", "superseded", E3, 10, 9, None), ("2026-11-21", "superseded", BS, 6, 5, None),
                      ("2026-11-21", "held", E3, 10, 8, None), ("2026-11-22", "approved", E3, 10, 8, None),
                      ("2026-11-22", "applied", E3, 10, 8, None), ("2026-12-10", "deferred", BS, 6, 5, None)]:
            assert entry in audit, (entry, audit)
        assert not [a for a in audit if a[1] == "applied" and a[2] == BS], "Business Standard is never lowered"


# --------------------------------------------------------------------------- a PSA slow to answer


@pytest.mark.parametrize(("psa", "path"), [("autotask", "/ContractServiceAdjustments$"),
                                           ("halopsa", "/api/RecurringInvoice$")])
def test_a_write_whose_answer_is_lost_is_found_and_never_made_twice(
        psa: str, path: str, azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """The PSA makes Elm's first write but holds its answer past the client's timeout (ConnectWise:
    the fault matrix). SeatSync looks for it at once, finds it, and goes on with the next."""
    with shop(psa, azurite, store, tmp_path, read_timeout=0.5) as s:
        s.emulator.faults.add({"kind": "timeout", "path": path, "method": "POST", "times": 1, "delay": 2})
        report = s.sync(rm.ELM)
        assert changes(report) == sorted([("Elm Architects", BP, "set-quantity", 8, 10, "applied", "14.30"),
                                          ("Elm Architects", EXO, "set-quantity", 4, 6, "applied", "2.94")])
        lost = [c for c in report["changes"] if "answer was lost" in c["reason"]]
        assert len(lost) == 1, report["changes"]
        assert s.billed(139) == {139: billed_after_the_first_sync(psa)[139]}
        assert not s.msp.services.decisions.intents(rm.ELM), "no write left unsettled"
        again = s.sync(rm.ELM)
        assert changes(again) == []
        assert s.billed(139) == {139: billed_after_the_first_sync(psa)[139]}


# --------------------------------------------------------------------------- no prorating


def birch_disables_prorating(document: dict[str, Any]) -> None:
    birch = next(t for t in document["tenants"] if t["tenantId"] == rm.BIRCH)
    for company in birch["companies"]:
        company["disableProrate"] = True


@pytest.mark.parametrize("psa", PSAS)
def test_a_company_that_disables_prorating_is_never_charged_part_of_a_period(
        psa: str, azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """Birch disables prorating: a fourth Leeds user and the catch-all's first line (3 seats) are
    both billed from 1 December, with no partial charge for November, on every PSA."""
    with shop(psa, azurite, store, tmp_path, edit_config=birch_disables_prorating) as s:
        s.graph.add_user(rm.BIRCH, {"userPrincipalName": "leeds4@birchlogistics.onmicrosoft.com", "licenses": ["SPB"],
                                    "city": "Leeds"})
        report = s.sync(rm.BIRCH)
        assert changes(report) == [("Birch Logistics", BP, "create-line", None, 3, "applied", None),
                                   ("Birch Logistics", BP, "set-quantity", 3, 4, "applied", None)]
        # ConnectWise bills an addition's quantity from the next invoice on: the change is dated today;
        # Autotask and Halo date the new quantity the next period's start
        raised = "2026-11-20" if psa == "connectwise" else "2026-12-01"
        assert sorted((c["kind"], c["effectiveDate"]) for c in report["changes"]) == [
            ("create-line", "2026-12-01"), ("set-quantity", raised)]
        d = Decimal
        expected: dict[str, dict[int, list[tuple[Any, ...]]]] = {
            "connectwise": {
                133: [("M365-BP", 4, d("22.00"), "Billable", "2026-01-01", None, False, None, "")],
                134: [("M365-BP", 3, d("22.00"), "Billable", "2026-12-01", None, False, None, "seatsync:l")]},
            # units on 19 November, 20 November, 1 December
            "autotask": {133: [(1, d("22.00"), None, "", 3, 3, 4)],
                         134: [(1, d("22.00"), None, "seatsync:l", 0, 0, 3)]},
            "halopsa": {133: [(1, 4, d("22.00"), 0, "", [])], 134: [(1, 3, d("22.00"), 0, "seatsync:l", [])]},
        }
        assert s.billed(133, 134) == expected[psa]
        assert changes(s.sync(rm.BIRCH)) == [], "the next run finds both already right"


# --------------------------------------------------------------------------- a run killed mid-push


def recovered(done: list[tuple[Any, ...]], tenant: str) -> list[tuple[Any, ...]]:
    return sorted((*c[:5], "recovered", c[6]) for c in done if c[0] == tenant and c[5] == "applied")


@pytest.mark.parametrize("psa", ["autotask", "halopsa"])  # ConnectWise: the fault matrix
def test_a_run_killed_after_its_psa_writes_is_recovered_reported_and_audited_once(
        psa: str, azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """``seatsync sync`` makes Elm's writes and reads them back, and is killed (SIGKILL) before it
    records any. The run started at once takes over, finds every write in the PSA and records it
    as recovered (with its amount) in its report, the ledger and the audit trail, once; the PSA
    bills what a clean run leaves, read through the vendor's client, and nothing is written twice."""
    with shop(psa, azurite, store, tmp_path) as s:
        env = {**s.msp.emulators.environment(), "SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string,
               "SEATSYNC_TABLE_PREFIX": store.prefix, "SEATSYNC_CLOCK": "2026-11-20T02:00:00+00:00"}
        with seatsync_paused_at("after-read-back", ["sync", "--tenant", rm.ELM, "--json", "--quiet"], env,
                                tmp_path) as process:
            dead = s.msp.services.runs.latest_run_id()
            writes = s.psa_writes()
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        again = s.sync(rm.ELM)
        assert dead is not None and dead in (again["tookOver"] or "")
        assert changes(again) == recovered(DONE[psa], "Elm Architects")
        assert s.psa_writes() == writes, "nothing written twice"
        assert s.billed(139) == {139: billed_after_the_first_sync(psa)[139]}
        assert sorted((e for e in s.audit(rm.ELM) if e[1] in ("applied", "recovered")), key=repr) == sorted(
            (("2026-11-20", "recovered", c[1], c[3], c[4], c[6]) for c in recovered(DONE[psa], "Elm Architects")),
            key=repr)
        assert len(s.msp.services.decisions.ledger(rm.ELM)) == len(recovered(DONE[psa], "Elm Architects"))
        assert not s.msp.services.decisions.intents(rm.ELM)
        assert build_report(s.msp.services.runs, dead)["status"] == "died"
        assert "Writes recorded late" in str(s.cards()) or "died without finishing" in str(s.cards())
        assert changes(s.sync(rm.ELM)) == []


# --------------------------------------------------------------------------- a line born this period


def birch_catch_all_applies_decreases(document: dict[str, Any]) -> None:
    birch = next(t for t in document["tenants"] if t["tenantId"] == rm.BIRCH)
    birch["companies"][1]["licences"][0]["decreasePolicy"] = "apply"


def test_a_line_created_after_the_period_was_invoiced_is_never_prorated_twice_on_connectwise(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """Birch's catch-all line is created on 20 November with 3 seats, after November was invoiced:
    ConnectWise charges its part of November on the December invoice, at the quantity it has
    then. One seat leaves on the 21st, two come on the 22nd: the addition alone follows the count,
    with no prorate addition (its seats would be charged twice) and no record of an invoiced
    quantity (November was never invoiced for it)."""
    birch = "birchlogistics.onmicrosoft.com"
    with shop("connectwise", azurite, store, tmp_path, edit_config=birch_catch_all_applies_decreases) as s:
        s.sync(rm.BIRCH)
        s.on(NOV_21)
        s.graph.remove_user(rm.BIRCH, f"nocity@{birch}")
        down = s.sync(rm.BIRCH)
        assert changes(down) == [("Birch Logistics", BP, "set-quantity", 3, 2, "applied", None)]
        s.on(NOV_22)
        for n in (2, 3):
            s.graph.add_user(rm.BIRCH, {"userPrincipalName": f"nocity{n}@{birch}", "licenses": ["SPB"]})
        up = s.sync(rm.BIRCH)
        assert changes(up) == [("Birch Logistics", BP, "set-quantity", 2, 4, "applied", None)]
        [change] = up["changes"]
        assert "started on 2026-11-20, after the period 01 Nov 2026..30 Nov 2026 was invoiced" in change["reason"]
        assert s.billed(134) == {134: [("M365-BP", 4, Decimal("22.00"), "Billable", "2026-11-20", None, False, None,
                                        "seatsync:l")]}
        assert [e[1:] for e in s.audit(rm.BIRCH)] == [("applied", BP, None, 3, "24.21"), ("applied", BP, 3, 2, None),
                                                      ("applied", BP, 2, 4, None)]


@pytest.mark.parametrize("psa", ["autotask", "halopsa"])
def test_a_run_killed_between_the_two_writes_of_one_change_records_the_first_as_made(
        psa: str, azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """Elm drops to 9 on 21 November (November stays charged for 10, 9 from December), then has 11
    on the 22nd: the PSA charges one more seat to 30 November (5.85) and bills 11 from December, in
    two writes. ``seatsync sync`` is killed (SIGKILL) right after the first. The next run records
    the charge as made by the dead run (recovered, with its amount), writes the second once, and
    the PSA bills what the rules say."""
    elm = "elmarchitects.onmicrosoft.com"
    with shop(psa, azurite, store, tmp_path, edit_config=elm_applies_decreases) as s:
        s.sync(rm.ELM)
        s.on(NOV_21)
        s.graph.remove_user(rm.ELM, f"architect10@{elm}")
        s.sync(rm.ELM)
        s.on(NOV_22)
        for n in (10, 11):
            s.graph.add_user(rm.ELM, {"userPrincipalName": f"architect{n}@{elm}", "licenses": ["SPB"]})
        env = {**s.msp.emulators.environment(), "SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string,
               "SEATSYNC_TABLE_PREFIX": store.prefix, "SEATSYNC_CLOCK": "2026-11-22T02:00:00+00:00"}
        with seatsync_paused_at("after-psa-write", ["sync", "--tenant", rm.ELM, "--json", "--quiet"], env,
                                tmp_path) as process:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        again = s.sync(rm.ELM)
        assert changes(again) == [("Elm Architects", BP, "set-quantity", 10, 11, "applied", None),
                                  ("Elm Architects", BP, "set-quantity", 10, 11, "recovered", "5.85")]
        assert ("2026-11-22", "recovered", BP, 10, 11, "5.85") in s.audit(rm.ELM)
        # the second write's intent was stored with the first's, before the first was sent: the dead
        # run never sent it, the next run says so and writes it
        assert [e for e in s.audit(rm.ELM) if e[1] == "not-written"] == [
            ("2026-11-22", "not-written", BP, 10, 11, None)]
        after_the_21st = {"autotask": (1, Decimal("22.00"), Decimal("19.50"), "", 8, 10, 11),
                          "halopsa": (1, 8, Decimal("19.50"), 0, "", [("2026-11-20", 2, Decimal("7.15")),
                                                                      ("2026-11-22", 1, Decimal("5.85"))])}
        assert after_the_21st[psa] in s.billed(139)[139]
        assert changes(s.sync(rm.ELM)) == []


def test_halo_cannot_take_seats_of_a_pending_pro_rata_off_the_next_period_and_says_what_to_do(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """On Halo, Birch's catch-all line created on 20 November (3 seats, inside the invoiced period)
    is a line of quantity 0 with a pending pro-rata entry of 3, which the December invoice adds to
    it. One seat leaves on the 21st: Halo's quantity cannot go below 0, so the line cannot bill 2
    before that invoice. The write fails with that said, a person is told, nothing is lowered."""
    with shop("halopsa", azurite, store, tmp_path, edit_config=birch_catch_all_applies_decreases) as s:
        s.sync(rm.BIRCH)
        s.on(NOV_21)
        s.graph.remove_user(rm.BIRCH, "nocity@birchlogistics.onmicrosoft.com")
        down = s.sync(rm.BIRCH)
        assert changes(down) == [("Birch Logistics", BP, "set-quantity", 3, 2, "failed", None)]
        [failed] = down["changes"]
        assert "3 of them from pro-rata entries Halo has not invoiced yet" in failed["error"]
        assert "it cannot bill 2 before that invoice adds them" in failed["error"]
        assert (down["status"], exit_for(down)) == ("failed", 2)
        assert any("Changes failed" in line for line in s.cards()[-1])
        assert s.billed(134) == {134: [(1, 0, Decimal("22.00"), 0, "seatsync:l", [("2026-11-20", 3, Decimal("8.07"))])]}
