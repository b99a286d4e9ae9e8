"""Billing periods on every PSA, whole syncs on Azurite and the emulators: an increase, a decrease
and their reversal within one period never charge a seat twice nor leave a future entry that
contradicts today's count; a change on the first day of a period bills the whole period at the new
quantity whether the PSA has invoiced that period yet (a prorated charge for all of it) or not (no
proration). Each test checks what the PSA holds, the run report, the audit trail and the alerts.

The sample MSP's Contoso Pharma: 10 Business Standard seats (12.50) billed on one line (510) of one
monthly agreement (Contoso Pharma Microsoft 365), its 10 lab users each holding one; decreases of
its licence apply at once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from emulators.autotask import AutotaskEmulator
from emulators.graph import GraphEmulator
from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from shared.notifications.alerts import Links, build_alerts
from shared.notifications.service import gather_run_data
from shared.services.decisions import audit_query, audit_trail
from tests.integration.msp import CONTOSO, Msp, running_msp, sample_scenario

pytestmark = pytest.mark.integration

PSAS = ["connectwise", "autotask", "halopsa"]
AGREEMENT = {"connectwise": 101, "autotask": 101, "halopsa": -101}
LINE = 510
LAB_USERS = 10
DOMAIN = "contosopharma.onmicrosoft.com"
# What every run of Contoso alerts about, whatever its billing and its PSA: the run's summary,
# Project Plan 3 with no mapping (sold by the MSP; on ConnectWise, whose sample reads Partner Center,
# Power BI Pro is shown as bought by the customer itself, on the others it is unlinked too), Business
# Standard seats bought but not assigned, the sample's GDAP customer not added.
# gdap-ended: the sample's Wingtip Toys left GDAP, and these runs read Contoso only
USUAL_ALERTS = {"run-summary", "unlinked-licence", "unused-licences", "gdap-not-added", "gdap-ended"}

Change = tuple[str, int | None, int, str | None, str | None]  # kind, from, to, effective date, amount


@dataclass
class Contoso:
    """Contoso Pharma synced through one PSA, day after day."""

    psa: str
    msp: Msp
    extras: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)

    @property
    def emulator(self) -> Any:
        return self.msp.emulators.emulator(self.psa)

    def on(self, day: date) -> Contoso:
        """Move SeatSync's and the PSA's clock to ``day`` (02:00 UTC, when the timer runs)."""
        moment = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
        self.msp.services.clock = lambda: moment
        with self.emulator.lock:
            self.emulator.today = day
        return self

    def seats(self, count: int) -> Contoso:
        """Make ``count`` users hold Business Standard (the 10 lab users, fewer, or extra users)."""
        graph = self.msp.emulators.emulator("graph")
        assert isinstance(graph, GraphEmulator)
        labs = {f"lab{n:05d}@{DOMAIN}" for n in range(1, LAB_USERS + 1)}
        wanted_labs = {f"lab{n:05d}@{DOMAIN}" for n in range(1, min(count, LAB_USERS) + 1)}
        wanted_extras = {f"extra{n}@{DOMAIN}" for n in range(1, max(0, count - LAB_USERS) + 1)}
        for upn in sorted((labs - wanted_labs) - self.removed):
            graph.remove_user(CONTOSO, upn)
            self.removed.add(upn)
        for upn in sorted(wanted_labs & self.removed):
            graph.add_user(CONTOSO, {"userPrincipalName": upn, "licenses": ["O365_BUSINESS_PREMIUM"]})
            self.removed.discard(upn)
        for upn in sorted(self.extras - wanted_extras):
            graph.remove_user(CONTOSO, upn)
            self.extras.discard(upn)
        for upn in sorted(wanted_extras - self.extras):
            graph.add_user(CONTOSO, {"userPrincipalName": upn, "licenses": ["O365_BUSINESS_PREMIUM"]})
            self.extras.add(upn)
        return self

    def sync(self) -> dict[str, Any]:
        report = self.msp.sync(tenants=[CONTOSO])
        assert report["status"] == "succeeded", report
        assert [t["status"] for t in report["tenants"]] == ["ok"]
        assert not [c for c in report["changes"] if c["status"] != "applied"], report["changes"]
        return report

    def audit(self, report: dict[str, Any]) -> list[tuple[str, str, int | None, int | None]]:
        entries = audit_trail(self.msp.services.decisions, audit_query(self.msp.config, CONTOSO, None, None))
        return sorted((e.event, e.kind, e.before, e.after) for e in entries if e.run_id == report["runId"])

    def alerts(self, report: dict[str, Any]) -> set[str]:
        services = self.msp.services
        config = services.config()
        data = gather_run_data(services.runs, services.snapshots, config, report["runId"])
        return {alert.kind for alert in build_alerts(data, config.notifications, Links(), config).alerts}

    def checked(self, report: dict[str, Any]) -> list[Change]:
        """The run's changes, after checking that the audit trail holds each as applied and that
        the run raised no alert beyond the usual ones."""
        changes = sorted((c["kind"], c["oldQuantity"], c["newQuantity"], c["effectiveDate"], c["amount"])
                         for c in report["changes"])
        assert self.audit(report) == sorted(("applied", kind, old, new) for kind, old, new, _, _ in changes)
        assert self.alerts(report) == USUAL_ALERTS
        return changes

    def reason(self, report: dict[str, Any], kind: str = "set-quantity") -> str:
        return " | ".join(c["reason"] for c in report["changes"] if c["kind"] == kind)

    # -- what the PSA holds ------------------------------------------------------------------
    def cw_additions(self) -> list[tuple[float, str | None, str | None, str, str]]:
        """Agreement 101's additions: quantity, effective and cancelled days, billing, tag kind."""
        state = self.emulator.state()
        additions = next(a for a in state["agreements"] if a["id"] == AGREEMENT["connectwise"])["additions"]
        return [(a["quantity"], (a["effectiveDate"] or "")[:10] or None, (a["cancelledDate"] or "")[:10] or None,
                 a["billCustomer"], str(a["serialNumber"] or "")[:11]) for a in additions]

    def at_adjustments(self) -> list[tuple[str, int]]:
        assert isinstance(self.emulator, AutotaskEmulator)
        return [(a["effectiveDate"][:10], a["unitChange"]) for a in self.emulator.state()["adjustments"]
                if a["contractServiceID"] == LINE]

    def at_units(self, day: date) -> int:
        assert isinstance(self.emulator, AutotaskEmulator)
        return self.emulator.units_on(LINE, day)

    def halo_line(self) -> dict[str, Any]:
        state = self.emulator.state()
        invoice = next(i for i in state["recurringInvoices"] if i["id"] == AGREEMENT["halopsa"])
        found: dict[str, Any] = next(ln for ln in invoice["lines"] if ln["id"] == LINE)
        return found

    def halo_pending(self) -> list[tuple[str, float, float]]:
        return [(p["date"][:10], p["quantity"], p["unitprice"]) for p in self.halo_line()["prorata_data"]
                if not p["isinvoiced"]]


def apply_contoso_decreases(document: dict[str, Any], *, credit: bool) -> None:
    tenant = next(t for t in document["tenants"] if t["tenantId"] == CONTOSO)
    for licence in tenant["companies"][0]["licences"]:
        licence["decreasePolicy"] = "apply"
        if credit:
            licence["allowNegativeProrate"] = True


@contextmanager
def contoso(psa: str, azurite: Azurite, store: TableStore, tmp_path: Path, *, today: date, credit: bool = False,
            invoiced: bool = True) -> Iterator[Contoso]:
    scenario, config_text = sample_scenario(psa)
    scenario = copy.deepcopy(scenario)
    scenario[psa]["today"] = today.isoformat()
    if credit and psa == "halopsa":
        scenario[psa]["allowNegativeProRata"] = True
    if not invoiced:  # the period containing today is not invoiced yet
        if psa == "connectwise":
            next(a for a in scenario[psa]["agreements"] if a["id"] == 101)["nextInvoiceDate"] = today.isoformat()
        elif psa == "halopsa":
            next(i for i in scenario[psa]["recurringInvoices"] if i["id"] == -101)["nextCreationDate"] = \
                today.isoformat()
    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config_text,
                     edit_config=lambda document: apply_contoso_decreases(document, credit=credit)) as msp:
        yield Contoso(psa, msp).on(today)


NOV = {day: date(2026, 11, day) for day in (20, 23, 25)}
DEC_1 = date(2026, 12, 1)


# --------------------------------------------------------------------------- increase, decrease, reversal


@pytest.mark.parametrize("psa", PSAS)
def test_an_increase_a_decrease_and_their_reversal_within_one_period(
        psa: str, azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """20 November: 12 seats (2 added); 23 November: 10 again (not credited); 25 November: 12 again.
    The 2 seats are charged once for 20..30 November (12.50 x 11/30 = 4.58 a seat), never again."""
    with contoso(psa, azurite, store, tmp_path, today=NOV[20]) as contoso_:
        up = contoso_.seats(12).sync()
        down = contoso_.on(NOV[23]).seats(10).sync()
        again = contoso_.on(NOV[25]).seats(12).sync()

        if psa == "connectwise":
            assert contoso_.checked(up) == [("prorate", None, 2, "2026-11-20", "9.16"),
                                            ("set-quantity", 10, 12, "2026-11-20", None)]
            assert contoso_.checked(down) == [("period-record", None, 10, "2026-11-01", None),
                                              ("set-quantity", 12, 10, "2026-11-23", None)]
            assert "2 seat(s) stay charged to 2026-11-30 (no credit)" in contoso_.reason(down)
            assert contoso_.checked(again) == [("set-quantity", 10, 12, "2026-11-25", None)]
            assert "2 seat(s) already charged to 2026-11-30 this period: not charged again" in contoso_.reason(again)
            assert contoso_.cw_additions() == [
                (12.0, "2026-01-01", None, "Billable", ""),                          # what December bills
                (2.0, "2026-11-20", "2026-11-30", "Billable", "seatsync:c:"),        # the 2 seats, once
                (10.0, "2026-11-01", "2026-11-30", "DoNotBill", "seatsync:i:"),      # November invoiced at 10
            ]
        elif psa == "autotask":
            assert contoso_.checked(up) == [("set-quantity", 10, 12, "2026-11-20", "9.16")]
            assert contoso_.checked(down) == [("set-quantity", 12, 10, "2026-12-01", None)]
            assert contoso_.checked(again) == [("set-quantity", 10, 12, "2026-12-01", None)]
            assert "not charged again" in contoso_.reason(again)
            # the decrease scheduled for 1 December is netted from 1 December: no pending change
            # contradicts today's 12, and November is charged for 12 from the 20th, once
            assert contoso_.at_adjustments() == [("2026-01-01", 10), ("2026-11-20", 2), ("2026-12-01", -2),
                                                 ("2026-12-01", 2)]
            assert [contoso_.at_units(d) for d in (date(2026, 11, 19), NOV[25], DEC_1)] == [10, 12, 12]
        else:
            assert contoso_.checked(up) == [("set-quantity", 10, 12, "2026-11-20", "9.16")]
            assert contoso_.checked(down) == [("set-quantity", 12, 10, "2026-12-01", None)]
            assert contoso_.checked(again) == [("set-quantity", 10, 12, "2026-12-01", None)]
            assert "not charged again" in contoso_.reason(again)
            line = contoso_.halo_line()
            # one pro-rata entry of 2 for 20..30 November; the line bills 12 from December
            assert contoso_.halo_pending() == [("2026-11-20", 2.0, 4.58)]
            assert (line["qty_order"], line["billed_quantity"]) == (10.0, 12.0)
            invoices = contoso_.emulator.state()["invoices"]
            assert [ln["qty_order"] for i in invoices if i["recurring_invoice_id"] == -101 for ln in i["lines"]] == [
                10.0], "November was invoiced at 10"


@pytest.mark.parametrize("psa", PSAS)
def test_a_credited_decrease_and_its_reversal_within_one_period(
        psa: str, azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """20 November: 9 seats, credited for 20..30 November (-4.58); 25 November: 10 again, charged
    for 25..30 November (12.50 x 6/30 = 2.50): the seat is paid for every day it was used, once."""
    with contoso(psa, azurite, store, tmp_path, today=NOV[20], credit=True) as contoso_:
        down = contoso_.seats(9).sync()
        again = contoso_.on(NOV[25]).seats(10).sync()
        if psa == "connectwise":
            assert contoso_.checked(down) == [("credit", None, -1, "2026-11-20", "-4.58"),
                                              ("set-quantity", 10, 9, "2026-11-20", None)]
            assert contoso_.checked(again) == [("prorate", None, 1, "2026-11-25", "2.50"),
                                               ("set-quantity", 9, 10, "2026-11-25", None)]
            assert contoso_.cw_additions() == [
                (10.0, "2026-01-01", None, "Billable", ""),
                (-1.0, "2026-11-20", "2026-11-30", "Billable", "seatsync:c:"),
                (1.0, "2026-11-25", "2026-11-30", "Billable", "seatsync:c:"),
            ]
        else:
            assert contoso_.checked(down) == [("set-quantity", 10, 9, "2026-11-20", "-4.58")]
            assert contoso_.checked(again) == [("set-quantity", 9, 10, "2026-11-25", "2.50")]
            if psa == "autotask":
                assert contoso_.at_adjustments() == [("2026-01-01", 10), ("2026-11-20", -1), ("2026-11-25", 1)]
                assert [contoso_.at_units(d) for d in (NOV[23], NOV[25], DEC_1)] == [9, 10, 10]
            else:
                assert contoso_.halo_pending() == [("2026-11-20", -1.0, 4.58), ("2026-11-25", 1.0, 2.5)]
                assert (contoso_.halo_line()["qty_order"], contoso_.halo_line()["billed_quantity"]) == (10.0, 10.0)


@pytest.mark.parametrize("psa", PSAS)
def test_a_decrease_reversed_before_the_next_period(psa: str, azurite: Azurite, store: TableStore,
                                                   tmp_path: Path) -> None:
    """20 November: 9 seats (not credited: November stays charged for 10); 25 November: 10 again.
    Nothing is charged for November again, and nothing scheduled for December says 9."""
    with contoso(psa, azurite, store, tmp_path, today=NOV[20]) as contoso_:
        down = contoso_.seats(9).sync()
        again = contoso_.on(NOV[25]).seats(10).sync()
        if psa == "connectwise":
            assert contoso_.checked(down) == [("period-record", None, 10, "2026-11-01", None),
                                              ("set-quantity", 10, 9, "2026-11-20", None)]
            assert contoso_.checked(again) == [("set-quantity", 9, 10, "2026-11-25", None)]
            assert [a for a in contoso_.cw_additions() if a[3] == "Billable"] == [
                (10.0, "2026-01-01", None, "Billable", "")], "no prorate line: the seat was never charged again"
        else:
            assert contoso_.checked(down) == [("set-quantity", 10, 9, "2026-12-01", None)]
            assert contoso_.checked(again) == [("set-quantity", 9, 10, "2026-12-01", None)]
            if psa == "autotask":
                assert contoso_.at_adjustments() == [("2026-01-01", 10), ("2026-12-01", -1), ("2026-12-01", 1)]
                assert [contoso_.at_units(d) for d in (NOV[25], DEC_1)] == [10, 10]
            else:
                assert contoso_.halo_pending() == []
                assert contoso_.halo_line()["qty_order"] == 10.0
        assert "1 seat(s) already charged to 2026-11-30 this period: not charged again" in contoso_.reason(again)


# --------------------------------------------------------------------------- the first day of a period


@pytest.mark.parametrize("psa", PSAS)
def test_a_change_on_the_first_day_of_a_period_not_invoiced_yet_and_of_one_invoiced(
        psa: str, azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """1 December, December not invoiced yet: 11 seats; the PSA will invoice the whole month at 11,
    nothing is prorated. Then December is invoiced (at 11) and the count is 12 the same day: the
    added seat is charged for the whole month (31/31 days: 12.50)."""
    with contoso(psa, azurite, store, tmp_path, today=DEC_1, invoiced=False) as contoso_:
        before = contoso_.seats(11).sync()
        if psa == "connectwise":
            assert contoso_.checked(before) == [("set-quantity", 10, 11, "2026-12-01", None)]
            assert "the period 01 Dec 2026..31 Dec 2026 is not invoiced yet; ConnectWise invoices it at 11" in \
                contoso_.reason(before)
            contoso_.emulator.invoice_agreement(AGREEMENT[psa])
        elif psa == "autotask":  # Autotask prorates an adjustment itself whether its period is posted or not
            assert contoso_.checked(before) == [("set-quantity", 10, 11, "2026-12-01", "12.50")]
        else:
            assert contoso_.checked(before) == [("set-quantity", 10, 11, "2026-12-01", None)]
            assert "is not invoiced yet; Halo invoices it at 11" in contoso_.reason(before)
            assert (contoso_.halo_line()["qty_order"], contoso_.halo_pending()) == (11.0, [])
            created = contoso_.emulator.create_invoice(AGREEMENT[psa])
            assert [ln["qty_order"] for ln in created["lines"] if ln["_itemid"] == 2] == [11.0]

        after = contoso_.seats(12).sync()
        if psa == "connectwise":
            assert contoso_.checked(after) == [("prorate", None, 1, "2026-12-01", "12.50"),
                                               ("set-quantity", 11, 12, "2026-12-01", None)]
            assert "the period 01 Dec 2026..31 Dec 2026 is invoiced (next invoice 01 Jan 2027)" in \
                contoso_.reason(after)
            assert contoso_.cw_additions() == [(12.0, "2026-01-01", None, "Billable", ""),
                                               (1.0, "2026-12-01", "2026-12-31", "Billable", "seatsync:c:")]
        elif psa == "autotask":
            assert contoso_.checked(after) == [("set-quantity", 11, 12, "2026-12-01", "12.50")]
            assert contoso_.at_adjustments() == [("2026-01-01", 10), ("2026-12-01", 1), ("2026-12-01", 1)]
            assert contoso_.at_units(DEC_1) == 12
        else:
            assert contoso_.checked(after) == [("set-quantity", 11, 12, "2026-12-01", "12.50")]
            assert contoso_.halo_pending() == [("2026-12-01", 1.0, 12.5)]
            assert (contoso_.halo_line()["qty_order"], contoso_.halo_line()["billed_quantity"]) == (11.0, 12.0)


# --------------------------------------------------------------------------- an invoiced period with no invoice


def test_a_halo_period_invoiced_with_no_invoice_listed_is_a_billing_problem_and_nothing_is_written(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """Halo says November is invoiced (the recurring invoice's next creation date is 1 December)
    but lists no invoice for it (deleted): what November is charged for is unknown, so the two new
    seats are not charged on a guess. The line stays as it was, the run needs attention, and a
    person is told which recurring invoice it is."""
    with contoso("halopsa", azurite, store, tmp_path, today=NOV[20]) as contoso_:
        assert contoso_.emulator.delete_invoices(AGREEMENT["halopsa"]) == 1
        report = contoso_.seats(12).msp.sync(tenants=[CONTOSO])
        assert report["status"] == "attention"
        assert [t["status"] for t in report["tenants"]] == ["ok"]
        assert [c for c in report["changes"] if c["status"] in ("applied", "failed")] == []
        [problem] = [p for p in report["problems"] if p["kind"] == "period-invoice-missing"]
        assert problem["lineId"] == str(LINE)
        assert "recurring invoice -101 (Contoso Pharma Microsoft 365) has invoiced the current period" in \
            problem["message"]
        assert "Halo lists no invoice created from it" in problem["message"]
        # the PSA: line 510 as before the run
        assert (contoso_.halo_line()["qty_order"], contoso_.halo_pending()) == (10.0, [])
        assert contoso_.audit(report) == []
        assert "billing-problem" in contoso_.alerts(report)
