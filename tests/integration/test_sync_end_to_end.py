"""Whole syncs of the sample MSP, as `make run` and the Function App run them, on Azurite and the
emulators: what is written, what is held or deferred, and what is never written twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from emulators.graph import GraphEmulator
from local_runner.azurite import Azurite
from shared.adapters.connectwise import ConnectWiseClient
from shared.adapters.tables import TableStore
from shared.bootstrap import default_psa_factory
from shared.domain.model import ContactDetails
from shared.errors import PsaError
from shared.ports import NewLine, PsaPort
from shared.services.decisions import audit_query, audit_trail
from shared.services.lease import acquire
from tests.integration.msp import (
    CONTOSO,
    FABRIKAM,
    LITWARE,
    NORTHWIND,
    PROSEWARE,
    SPB,
    TAILSPIN,
    WOODGROVE,
    Msp,
    running_msp,
)

pytestmark = pytest.mark.integration


def summary(report: dict[str, Any], *statuses: str) -> list[tuple[str, str, int | None, int]]:
    """The billing changes of the statuses (contact changes apart: ``contacts``)."""
    return sorted((c["tenantName"], c["kind"], c["oldQuantity"], c["newQuantity"])
                  for c in report["changes"] if c["status"] in statuses and not c["kind"].endswith("-contact"))


def contacts(report: dict[str, Any], *statuses: str) -> list[tuple[str, str]]:
    return sorted((c["kind"], c["licence"]) for c in report["changes"]
                  if c["status"] in statuses and c["kind"].endswith("-contact"))


# Litware's two companies keep their users as contacts: one contact brought up to date, nine made.
FIRST_RUN_CONTACTS = sorted([("update-contact", "Lena Park")] + [
    ("create-contact", name) for name in ("Omar Haddad", "Priya Nair", "Tom Becker", "Sofia Rossi", "Wei Chen",
                                          "Marta Kowalski", "Jon Silva", "Aisha Bello", "Kenji Mori")])


FIRST_RUN_WRITES = [
    ("Fabrikam Ltd", "create-line", None, 26),
    ("Fabrikam Ltd", "period-record", None, 5),   # Exchange P1 is lowered without a credit
    ("Fabrikam Ltd", "prorate", None, 2),
    ("Fabrikam Ltd", "set-details", 20, 20),
    ("Fabrikam Ltd", "set-quantity", 5, 4),
    ("Fabrikam Ltd", "set-quantity", 20, 22),
    ("Litware Inc", "prorate", None, 1),
    ("Litware Inc", "set-quantity", 3, 4),
    ("Proseware Ltd", "create-line", None, 3),
]


def test_first_run_brings_billing_in_line_and_second_run_writes_nothing(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        first = msp.sync()
        assert first["status"] == "partial"  # Tailspin cannot be read
        assert summary(first, "applied") == FIRST_RUN_WRITES
        assert summary(first, "held") == [("Wingtip Toys", "set-quantity", 6, 5),
                                          ("Woodgrove Bank", "set-quantity", 1250, 1200)]
        assert summary(first, "deferred") == [("Northwind Traders", "set-quantity", 10, 9)]
        quantities = msp.cw_quantities()
        assert {k: quantities[k] for k in (500, 501, 510, 520, 530, 540, 550, 560, 570)} == {
            500: 22, 501: 4, 510: 10, 520: 6, 530: 10, 540: 1250, 550: 6, 560: 4, 570: 20}
        assert contacts(first, "applied") == FIRST_RUN_CONTACTS
        writes = msp.cw_writes()
        assert writes == len(FIRST_RUN_WRITES) + len(FIRST_RUN_CONTACTS)

        second = msp.sync()
        assert summary(second, "applied") == []
        assert contacts(second, "applied") == []
        assert msp.cw_writes() == writes, "an unchanged day writes nothing, and prorates nothing again"
        assert summary(second, "held") == [("Wingtip Toys", "set-quantity", 6, 5),
                                           ("Woodgrove Bank", "set-quantity", 1250, 1200)]
        assert len(msp.services.decisions.approvals("pending")) == 2, "the same held decreases are asked once"


def test_prorate_lines_run_to_the_end_of_the_period_at_the_full_price(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        report = msp.sync(tenants=[LITWARE])
        [prorate] = [c for c in report["changes"] if c["kind"] == "prorate"]
        assert (prorate["effectiveDate"], prorate["endDate"]) == ("2026-11-25", "2026-11-30")
        assert (Decimal(prorate["unitPrice"]), prorate["amount"]) == (Decimal(22), "4.40")
        addition = msp.cw_addition(int(prorate["additionId"]))
        assert addition["quantity"] == 1
        assert addition["cancelledDate"].startswith("2026-11-30")
        assert addition["serialNumber"] == prorate["tag"]


def test_a_tenant_whose_token_fails_keeps_its_billing_and_is_reported(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        report = msp.sync()
        tailspin = next(t for t in report["tenants"] if t["tenantId"] == TAILSPIN)
        assert tailspin["status"] == "auth-failed"
        assert tailspin["errorCode"] == "AADSTS700016"
        assert "adminconsent" in tailspin["error"]
        assert msp.cw_quantities()[520] == 6, "a tenant that cannot be read is never billed less"
        assert not [c for c in report["changes"] if c["tenantId"] == TAILSPIN]
        assert msp.services.snapshots.latest(TAILSPIN) is None


def test_a_throttled_tenant_still_syncs(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        report = msp.sync(tenants=[NORTHWIND])
        [rule] = msp.emulators.emulator("graph").faults.rules()
        assert rule["fired"] == 2, "Northwind's user reads were answered 429 twice"
        assert report["tenants"][0]["status"] == "ok"
        assert report["tenants"][0]["users"] == 9


def test_paging_over_999_users(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        report = msp.sync(tenants=[WOODGROVE])
        [woodgrove] = report["tenants"]
        assert woodgrove["users"] == 1200
        graph = msp.emulators.emulator("graph")
        assert graph.count_requests(r"^/v1.0/\$batch$") == 1, "first pages of every read in one batch"
        assert graph.count_requests("^/v1.0/users$") == 1, "1,200 users: the second page of 999 follows"
        snapshot = msp.services.snapshots.latest(WOODGROVE)
        assert snapshot is not None and len(snapshot.users_holding(SPB)) == 1200


def test_a_dry_run_writes_nothing_and_shows_the_exact_plan(azurite: Azurite, store: TableStore,
                                                           tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        before = msp.cw_quantities()
        dry = msp.sync(dry_run=True)
        assert msp.cw_writes() == 0
        assert msp.cw_quantities() == before
        assert msp.services.decisions.approvals() == [], "a dry run asks for no decision"
        assert summary(dry, "dry-run") == FIRST_RUN_WRITES
        assert contacts(dry, "dry-run") == FIRST_RUN_CONTACTS
        assert msp.services.decisions.contact_links(LITWARE) == [], "a dry run records no contact as SeatSync's"
        real = msp.sync()
        plan = [(c["kind"], c["newQuantity"], c["amount"], c["status"].replace("dry-run", "applied"))
                for c in dry["changes"]]
        assert sorted(plan, key=str) == sorted([(c["kind"], c["newQuantity"], c["amount"], c["status"])
                                                for c in real["changes"]], key=str)


def test_only_the_requested_tenants_are_synced(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        report = msp.sync(tenants=[FABRIKAM, CONTOSO])
        assert {t["tenantId"] for t in report["tenants"]} == {FABRIKAM, CONTOSO}
        assert msp.cw_quantities()[560] == 3


def test_a_failed_psa_write_is_reported_and_others_still_apply(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        msp.emulators.emulator("connectwise").faults.add(
            {"kind": "error", "status": 400, "path": "/additions/501$", "method": "PATCH"})
        report = msp.sync(tenants=[FABRIKAM])
        by_line = {c["additionId"]: c for c in report["changes"] if c["kind"] == "set-quantity"}
        assert by_line["500"]["status"] == "applied"
        assert by_line["501"]["status"] == "failed"
        assert "501" in by_line["501"]["error"]
        assert report["status"] == "partial"
        assert msp.cw_quantities()[501] == 5
        entries = audit_trail(msp.services.decisions, audit_query(msp.config, "Fabrikam", None, None))
        assert [e.event for e in entries if e.line_id == "501"] == ["failed"]


def test_a_held_decrease_is_applied_once_approved(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        msp.sync(tenants=[WOODGROVE])
        [held] = msp.services.decisions.approvals("pending")
        assert (held.change.old_quantity, held.change.new_quantity) == (1250, 1200)
        assert msp.cw_quantities()[540] == 1250
        msp.decide(held.hold_key, approve=True, by="carol@msp.example")
        report = msp.sync(tenants=[WOODGROVE])
        assert summary(report, "applied") == [("Woodgrove Bank", "period-record", None, 1250),
                                              ("Woodgrove Bank", "set-quantity", 1250, 1200)]
        assert msp.cw_quantities()[540] == 1200
        assert msp.services.decisions.approval(held.hold_key).status == "applied"  # type: ignore[union-attr]
        events = [e.event for e in audit_trail(msp.services.decisions, audit_query(msp.config, WOODGROVE, None, None))]
        assert events == ["held", "approved", "applied", "applied"]  # the period's record, then the decrease


def test_a_rejected_decrease_is_not_asked_again(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        msp.sync(tenants=[WOODGROVE])
        [held] = msp.services.decisions.approvals("pending")
        msp.decide(held.hold_key, approve=False, by="carol@msp.example")
        report = msp.sync(tenants=[WOODGROVE])
        assert summary(report, "rejected") == [("Woodgrove Bank", "set-quantity", 1250, 1200)]
        assert msp.services.decisions.approvals("pending") == []
        assert msp.cw_quantities()[540] == 1250


def test_an_approval_is_not_applied_stale(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        msp.sync(tenants=[WOODGROVE])
        [held] = msp.services.decisions.approvals("pending")
        msp.decide(held.hold_key, approve=True, by="carol@msp.example")
        graph = msp.emulators.emulator("graph")
        assert isinstance(graph, GraphEmulator)
        graph.remove_user(WOODGROVE, "banker00001@woodgrovebank.onmicrosoft.com")  # the count moves on: 1,199
        report = msp.sync(tenants=[WOODGROVE])
        assert summary(report, "held") == [("Woodgrove Bank", "set-quantity", 1250, 1199)]
        assert msp.cw_quantities()[540] == 1250, "the approval of 1,200 is not applied to a count of 1,199"


class CrashAfterWrite:
    """A PSA client that dies once right after a create succeeded at the PSA (before SeatSync
    could record it), like a host restart would."""

    def __init__(self, inner: PsaPort, crashed: list[str]) -> None:
        self._inner = inner
        self._crashed = crashed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create_line(self, line: NewLine) -> Any:
        created = self._inner.create_line(line)
        if not self._crashed:
            self._crashed.append(created.line_id)
            raise RuntimeError("worker died right after the PSA write")
        return created


def test_a_crash_right_after_the_psa_write_never_duplicates_a_prorate_line(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    crashed: list[str] = []

    def factory(msp: Msp) -> Any:
        real = default_psa_factory(msp.services.settings, msp.services.secrets, lambda s: None)
        return lambda connection: CrashAfterWrite(real(connection), crashed)

    with running_msp(azurite, store, tmp_path, psa_factory=factory) as msp:
        report = msp.sync(tenants=[LITWARE])
        assert crashed, "the first attempt crashed after writing"
        prorates = [a for a in msp.cw_additions(106) if str(a.get("serialNumber", "")).startswith("seatsync:c:")]
        assert len(prorates) == 1, "the retried push found the prorate line by its tag"
        assert prorates[0]["id"] == int(crashed[0])
        assert msp.cw_quantities()[560] == 4
        assert summary(report, "applied") == [("Litware Inc", "set-quantity", 3, 4)]
        assert summary(report, "recovered") == [("Litware Inc", "prorate", None, 1)], \
            "the write the crashed attempt made is found in the PSA and recorded"
        assert report["totals"]["changesRecovered"] == 1
        [entry] = [e for e in msp.services.decisions.ledger(LITWARE) if e.kind == "prorate"]
        assert (entry.line_id, entry.run_id, entry.recovered_by) == (crashed[0], report["runId"], report["runId"])
        events = [(e.kind, e.event) for e in audit_trail(msp.services.decisions,
                                                         audit_query(msp.config, LITWARE, None, None))]
        # the quantity's intent was stored with the prorate's, before the first write: the retry
        # finds it not written (the crash came first), says so, and writes it
        assert [event for event in events if not event[0].endswith("-contact")] == [
            ("prorate", "recovered"), ("set-quantity", "not-written"), ("set-quantity", "applied")]
        assert msp.services.decisions.intents() == [], "every intent is settled"
        again = msp.sync(tenants=[LITWARE])
        assert summary(again, "applied") == []
        assert len([a for a in msp.cw_additions(106) if a.get("serialNumber")]) == 1


class RefuseFirstProrate:
    """A PSA client that notes the tenant's open write intents at every write and refuses the
    first prorate line (an HTTP 400: certainly not written)."""

    def __init__(self, inner: PsaPort, msp: Msp, seen: list[list[str]]) -> None:
        self._inner, self._msp, self._seen = inner, msp, seen
        self._refused = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _note(self) -> None:
        self._seen.append(sorted(i.change.change_id for i in self._msp.services.decisions.intents(FABRIKAM)))

    def create_line(self, line: NewLine) -> Any:
        self._note()
        if line.tag and line.tag.startswith("seatsync:c:") and not self._refused:
            self._refused = True
            raise PsaError("connectwise", "the agreement refuses the addition", status=400, method="POST",
                           url="/finance/agreements/additions")
        return self._inner.create_line(line)

    def set_quantity(self, *args: Any, **kwargs: Any) -> Any:
        self._note()
        return self._inner.set_quantity(*args, **kwargs)

    def update_line(self, *args: Any, **kwargs: Any) -> Any:
        self._note()
        return self._inner.update_line(*args, **kwargs)


def test_a_tenants_intents_are_stored_before_its_first_write_and_an_unsent_ones_closed(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """Every write of a tenant has its intent stored before its PSA call: all of them, in one
    request, before the first. A write then not sent (its licence's prorate line was refused) has
    its intent closed with the tenant's records: nothing is left to settle, nothing is recorded
    written that the PSA does not hold."""
    seen: list[list[str]] = []

    def factory(msp: Msp) -> Any:
        real = default_psa_factory(msp.services.settings, msp.services.secrets, lambda s: None)
        return lambda connection: RefuseFirstProrate(real(connection), msp, seen)

    with running_msp(azurite, store, tmp_path, psa_factory=factory) as msp:
        report = msp.sync(tenants=[FABRIKAM])
        writes = {c["changeId"]: c for c in report["changes"] if c["status"] in ("applied", "failed")}
        assert len(writes) == 6 and seen, "six writes planned, the PSA called"
        assert all(set(ids) == set(writes) for ids in seen[:1]), "every intent stored before the first write"
        assert all(set(ids) <= set(writes) for ids in seen)
        failed = sorted((c["kind"], c["error"].split(":")[0]) for c in writes.values() if c["status"] == "failed")
        assert failed == [("prorate", "connectwise"), ("set-details", "not attempted"),
                          ("set-quantity", "not attempted")], "the licence's other writes wait for the next run"
        applied = {i for i, c in writes.items() if c["status"] == "applied"}
        assert {e.change_id for e in msp.services.decisions.ledger(FABRIKAM)} == applied
        events = [e.event for e in msp.services.decisions.audit_trail(FABRIKAM)]
        assert "not-written" not in events and events.count("applied") == len(applied)
        assert msp.services.decisions.intents() == [], "the unsent write's intent is closed"


class CrashAfterContact(CrashAfterWrite):
    """Dies once right after the PSA created a contact."""

    def create_line(self, line: NewLine) -> Any:
        return self._inner.create_line(line)

    def create_contact(self, company_id: str, details: ContactDetails) -> Any:
        created = self._inner.create_contact(company_id, details)
        if not self._crashed:
            self._crashed.append(created.contact_id)
            raise RuntimeError("worker died right after the PSA created a contact")
        return created


def test_a_crash_right_after_a_contact_is_created_never_duplicates_it(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    crashed: list[str] = []

    def factory(msp: Msp) -> Any:
        real = default_psa_factory(msp.services.settings, msp.services.secrets, lambda s: None)
        return lambda connection: CrashAfterContact(real(connection), crashed)

    with running_msp(azurite, store, tmp_path, psa_factory=factory) as msp:
        report = msp.sync(tenants=[LITWARE])
        assert crashed, "the first attempt crashed after the PSA created a contact"
        held = msp.emulators.emulator("connectwise").state()["contacts"]
        [made] = [c for c in held if c["id"] == int(crashed[0])]
        address = next(i["value"] for i in made["communicationItems"] if i["communicationType"] == "Email")
        assert [c["id"] for c in held if any(i["value"] == address for i in c["communicationItems"])] == [made["id"]]
        assert len(held) == 2 + 9, "the two contacts there before and one for each user who had none"
        recovered = {(c["kind"], c["additionId"]) for c in report["changes"] if c["status"] == "recovered"}
        assert ("create-contact", crashed[0]) in recovered, "the contact the crashed attempt made is recorded"
        assert sorted(kind for kind, _ in recovered) == ["create-contact", "prorate", "set-quantity",
                                                         "update-contact"], \
            "the writes made before the crash (billing first, then contacts) are recovered, none made twice"
        assert not [c for c in report["changes"] if c["status"] == "failed"]
        assert contacts(report, "applied", "recovered") == FIRST_RUN_CONTACTS
        links = {link.contact_id for link in msp.services.decisions.contact_links(LITWARE)}
        assert crashed[0] in links and len(links) == 10, "every contact SeatSync made or matched is recorded"
        assert msp.services.decisions.intents() == [], "every intent is settled"
        again = msp.sync(tenants=[LITWARE])
        assert contacts(again, "applied") == []
        assert len(msp.emulators.emulator("connectwise").state()["contacts"]) == 11


def test_a_tenant_split_between_two_companies(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        msp.sync(tenants=[LITWARE])
        rows, _ = msp.services.runs.reconciliation(msp.services.runs.latest_run_id() or "")
        assert sorted((r.company_id, r.counted, r.target) for r in rows) == [("25", 6, 6), ("26", 4, 4)]


def test_split_subscriptions_bill_through_their_own_lines(azurite: Azurite, store: TableStore,
                                                          tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        report = msp.sync(tenants=[PROSEWARE])
        [created] = [c for c in report["changes"] if c["kind"] == "create-line"]
        addition = msp.cw_addition(int(created["additionId"]))
        assert (addition["product"]["identifier"], addition["quantity"], addition["unitPrice"]) == (
            "M365-BP-MONTHLY", 3, 26.4)
        assert msp.cw_quantities()[570] == 20


def test_gdap_customers_not_yet_added_are_reported(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        report = msp.sync(tenants=[CONTOSO])
        assert [t["name"] for t in report["gdap"]["notConfigured"]] == ["Adatum Corporation"]



def test_a_deferred_decrease_is_applied_at_the_renewal(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        first = msp.sync(tenants=[NORTHWIND])
        [deferred] = [c for c in first["changes"] if c["status"] == "deferred"]
        assert deferred["dueDate"] == "2027-03-01"
        assert msp.cw_quantities()[530] == 10, "Microsoft bills the seats until the renewal: so does the PSA"
        msp.services.clock = lambda: datetime(2027, 3, 1, 2, 0, tzinfo=UTC)
        renewal = msp.sync(tenants=[NORTHWIND])
        assert summary(renewal, "applied") == [("Northwind Traders", "set-quantity", 10, 9)]
        assert msp.cw_quantities()[530] == 9
        assert msp.services.decisions.deferrals(NORTHWIND) == [], "the deferral is done"
        events = [e.event for e in audit_trail(msp.services.decisions, audit_query(msp.config, NORTHWIND, None, None))]
        assert events == ["deferred", "applied"]


def test_one_run_at_a_time_whatever_started_it(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        other = "20261125T015900Z-0000000f"
        assert acquire(msp.services.runs, msp.services.decisions, other, timedelta(minutes=5)).refused is None
        refused = msp.sync(tenants=[LITWARE])
        assert refused["status"] == "failed"
        assert f"run {other} is still in progress" in refused["error"]
        assert msp.cw_writes() == 0
        msp.services.runs.release_lease(other)
        assert msp.sync(tenants=[LITWARE])["status"] == "succeeded"
        assert msp.sync(tenants=[LITWARE])["status"] == "succeeded", "a finished run frees the lease"


def test_a_line_seatsync_created_and_the_msp_ended_is_never_created_again(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """Proseware's line is created, then the MSP cancels it in ConnectWise: the next runs leave the
    line cancelled and create nothing, and tell a person; an addition of the same product the MSP
    adds beside a billing SeatSync line freezes both and is reported."""
    with running_msp(azurite, store, tmp_path) as msp:
        first = msp.sync(tenants=[PROSEWARE])
        [created] = [c for c in first["changes"] if c["kind"] == "create-line"]
        psa = msp.services.psa_clients(msp.services.config())(created["psa"])
        [line] = [ln for ln in psa.list_lines([created["agreementId"]]) if ln.line_id == created["additionId"]]
        assert isinstance(psa, ConnectWiseClient)
        psa.cancel_line(line, date(2026, 11, 30))  # the MSP ends the line in ConnectWise
        msp.services.clock = lambda: datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
        writes = msp.cw_writes()

        for _ in range(2):
            report = msp.sync(tenants=[PROSEWARE])
            assert [c for c in report["changes"] if c["kind"] == "create-line"] == []
            [problem] = [p for p in report["problems"] if p["kind"] == "line-cancelled"]
            assert (problem["lineId"], problem["agreementId"], problem["blocks"]) == (
                created["additionId"], created["agreementId"], True)
            assert "was cancelled on 2026-11-30" in problem["message"]
            assert "SeatSync creates a new line" in problem["action"]
        assert msp.cw_writes() == writes, "billing the MSP stopped is not restarted"

        # the MSP gives SeatSync's line back its seats, then adds its own line of the product beside it
        psa.create_line(NewLine(created["agreementId"], line.product_id, 2, date(2026, 12, 2), Decimal(26),
                                tag=line.tag))
        psa.create_line(NewLine(created["agreementId"], line.product_id, 2, date(2026, 12, 2), Decimal(26)))
        writes = msp.cw_writes()
        report = msp.sync(tenants=[PROSEWARE])
        [problem] = [p for p in report["problems"] if p["kind"] == "several-candidate-lines"]
        assert "bill this licence side by side" in problem["message"]
        assert [c for c in report["changes"] if c["agreementId"] == created["agreementId"]] == []
        assert msp.cw_writes() == writes, "neither line is raised or lowered until a person chooses"
