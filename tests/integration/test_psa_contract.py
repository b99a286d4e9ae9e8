"""One behavioural suite that every PSA adapter passes, through ``PsaPort`` only: ConnectWise,
Autotask and HaloPSA, each against its emulator holding the same small MSP (see
``psa_contract_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from emulators.tls import TlsFiles, ensure_tls_files
from shared.config.schema import SeatSyncConfig, parse_config
from shared.domain.contacts import ContactLink, plan_contacts
from shared.domain.model import (
    BilledLine,
    BillingAttributes,
    ChangeKind,
    ContactDetails,
    DirectoryUser,
    PlannedChange,
    PsaContact,
    TenantSnapshot,
)
from shared.domain.writes import check_contact
from shared.errors import PsaError
from shared.ports import NewLine, PsaPort
from shared.services.push import execute_contact
from tests.integration.psa_contract_helpers import (
    AGREEMENT_TYPE,
    LINE_QUANTITY,
    NEXT_PERIOD,
    PERIOD_START,
    TAXABLE_PRODUCT,
    TODAY,
    PsaUnderTest,
    connection_entry,
    ensure_quantity,
    start,
)

KINDS = ["connectwise", "autotask", "halopsa"]
CONTACT_TENANT = "aaaaaaaa-0000-0000-0000-000000000001"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls_files(tmp_path_factory.mktemp("psa-contract-tls"))


@pytest.fixture(scope="module", params=KINDS)
def running_psa(request: pytest.FixtureRequest, tls: TlsFiles) -> Iterator[PsaUnderTest]:
    psa = start(request.param, tls)
    yield psa
    psa.running.stop()


@pytest.fixture
def psa(running_psa: PsaUnderTest) -> PsaUnderTest:
    """The suite's MSP, reset to its start (state, faults, request log) for each test."""
    running_psa.emulator.reset()
    running_psa.sleeps.clear()
    return running_psa


def the_line(client: PsaPort, psa: PsaUnderTest) -> BilledLine:
    lines = client.list_lines([psa.agreement_id])
    return next(line for line in lines if line.line_id == psa.line_id)


# --------------------------------------------------------------------------- reads


def test_reads_companies_contacts_products_and_agreement_types(psa: PsaUnderTest) -> None:
    client = psa.client()
    assert client.name == psa.kind
    assert client.capabilities.kind == psa.kind
    companies = {c.company_id: c for c in client.list_companies()}
    assert {"19", "20"} <= set(companies)
    assert companies["19"].name == "Fabrikam Ltd"
    assert companies["19"].website == "fabrikam.com"
    contacts = client.list_contacts("19")
    assert sorted((c.first_name, c.last_name, c.emails) for c in contacts) == [
        ("Ann", "Lee", ("ann@fabrikam.com",)), ("Bob", "Kay", ("bob@fabrikam.com",))]
    assert all(c.company_id == "19" for c in contacts)
    products = client.list_products()
    assert [(p.identifier, p.price, p.cost) for p in products] == [
        ("M365-BP", Decimal("22.0"), Decimal("19.8")), ("M365-E3", Decimal("36.0"), Decimal("32.4"))]
    assert client.get_product(products[1].product_id).identifier == "M365-E3"
    names = [t.name for t in client.list_agreement_types()]
    assert names
    agreement = client.get_agreement(psa.agreement_id)
    assert agreement.type_name in names
    if psa.kind != "halopsa":  # Halo's recurring invoices carry no type of their own
        assert AGREEMENT_TYPE in names


def test_reads_the_company_agreements_and_their_lines(psa: PsaUnderTest) -> None:
    client = psa.client()
    agreements = client.list_agreements("19")
    assert [a.agreement_id for a in agreements] == [psa.agreement_id]
    agreement = agreements[0]
    assert (agreement.company_id, agreement.active, agreement.billing_cycle) == ("19", True, "monthly")
    assert agreement.start_date == PERIOD_START
    assert agreement.prorate is True
    assert [(a.agreement_id, a.active) for a in client.list_agreements("20")] == [
        (psa.cancelled_agreement_id, False)]
    assert client.get_agreements([psa.missing_agreement_id, psa.agreement_id]) == [agreement]
    lines = client.list_lines([psa.agreement_id])
    assert len(lines) == 1
    line = lines[0]
    assert (line.line_id, line.agreement_id, line.company_id) == (psa.line_id, psa.agreement_id, "19")
    assert line.product_identifier == "M365-BP"
    assert line.quantity == Decimal(LINE_QUANTITY)
    assert line.unit_price == Decimal("22.0")
    assert line.active
    assert line.tag is None
    assert client.get_line(psa.agreement_id, psa.line_id) == line


def test_a_cancelled_agreement_reads_as_not_active(psa: PsaUnderTest) -> None:
    """What makes the plan report an agreement-inactive problem and write nothing for it: a
    ConnectWise agreement cancelled, an Autotask contract made Inactive, a Halo recurring invoice
    disabled."""
    client = psa.client()
    [cancelled] = client.get_agreements([psa.cancelled_agreement_id])
    assert (cancelled.agreement_id, cancelled.company_id, cancelled.active) == (psa.cancelled_agreement_id, "20",
                                                                               False)
    assert client.list_lines([psa.cancelled_agreement_id]) == []


# --------------------------------------------------------------------------- writes


def test_an_increase_is_billed_and_read_back(psa: PsaUnderTest) -> None:
    client = psa.client()
    updated = client.set_quantity(the_line(client, psa), 25, TODAY)
    assert updated.quantity == Decimal(25)
    assert the_line(psa.client(), psa).quantity == Decimal(25)
    assert psa.billed(psa.line_id) == Decimal(25)
    assert psa.writes() >= 1


def test_a_decrease_is_billed_and_read_back(psa: PsaUnderTest) -> None:
    client = psa.client()
    client.set_quantity(the_line(client, psa), 18, TODAY)
    assert the_line(psa.client(), psa).quantity == Decimal(18)
    assert psa.billed(psa.line_id) == Decimal(18)


def test_a_change_from_the_next_billing_period_is_read_back(psa: PsaUnderTest) -> None:
    client = psa.client()
    client.set_quantity(the_line(client, psa), 17, NEXT_PERIOD)
    assert the_line(psa.client(), psa).quantity == Decimal(17)
    assert psa.billed(psa.line_id) in (Decimal(17), Decimal(LINE_QUANTITY))  # Autotask bills 17 from February


# --------------------------------------------------------------------------- billing periods


def test_the_agreement_says_which_periods_are_invoiced(psa: PsaUnderTest) -> None:
    """ConnectWise's nextInvoiceDate and Halo's next creation date: January is invoiced, the next
    invoice is February's. Autotask posts each contract service's periods on its own and says
    nothing at contract level: SeatSync does not need it (Autotask prorates an adjustment whether
    its period is posted or not)."""
    agreement = psa.client().get_agreement(psa.agreement_id)
    assert agreement.next_invoice_date == (None if psa.kind == "autotask" else NEXT_PERIOD)


def test_a_change_from_the_next_period_leaves_what_this_period_is_charged_for(psa: PsaUnderTest) -> None:
    """The line bills 17 from February (``quantity``) while January stays charged for the 20 it was
    invoiced at (``period_quantity``: Autotask's units today, Halo's invoiced quantity plus pending
    pro-rata); ConnectWise bills one quantity per addition (the next invoice's), and SeatSync's
    own records say what January is charged for."""
    client = psa.client()
    client.set_quantity(the_line(client, psa), 17, NEXT_PERIOD)
    line = the_line(psa.client(), psa)
    assert line.quantity == Decimal(17)
    assert line.period_quantity == (None if psa.kind == "connectwise" else Decimal(LINE_QUANTITY))


def test_a_change_back_before_the_next_period_nets_the_pending_one(psa: PsaUnderTest) -> None:
    """20 -> 17 from February, then 20 again: Autotask and Halo charge nothing for January (it is
    charged for 20 already: a change from today writes nothing) and bill 20 from February again
    (the pending change netted from February); ConnectWise's addition simply bills 20 again."""
    client = psa.client()
    client.set_quantity(the_line(client, psa), 17, NEXT_PERIOD)
    written = psa.writes()
    client.set_quantity(the_line(client, psa), LINE_QUANTITY, TODAY)
    assert psa.writes() == written + (1 if psa.kind == "connectwise" else 0)
    client.set_quantity(the_line(client, psa), LINE_QUANTITY, NEXT_PERIOD)
    line = the_line(psa.client(), psa)
    assert (line.quantity, line.period_quantity) == (Decimal(LINE_QUANTITY), None)
    assert psa.billed(psa.line_id) == Decimal(LINE_QUANTITY)


def test_a_new_tagged_line_is_created_and_found_again_by_its_tag(psa: PsaUnderTest) -> None:
    client = psa.client()
    created = client.create_line(NewLine(agreement_id=psa.agreement_id, product_id="2", quantity=3,
                                         effective_date=TODAY, tag="seatsync:e3",
                                         invoice_description="Microsoft 365 E3 for Ann Lee"))
    assert created.tag == "seatsync:e3"
    assert created.quantity == Decimal(3)
    found = [line for line in psa.client().list_lines([psa.agreement_id]) if line.tag == "seatsync:e3"]
    assert [(line.line_id, line.product_identifier, line.quantity) for line in found] == [
        (created.line_id, "M365-E3", Decimal(3))]
    assert psa.billed(created.line_id) == Decimal(3)
    assert found[0].invoice_description == "Microsoft 365 E3 for Ann Lee"


# Each PSA's billing attributes of the taxable product, as its emulator holds them (psa_contract_helpers).
PRODUCT_BILLING = {
    "connectwise": BillingAttributes(taxable=True, unit_of_measure="Seat"),
    "autotask": BillingAttributes(billing_code="7002"),
    "halopsa": BillingAttributes(tax_code="2", nominal_code="4020"),
}


def test_a_new_line_bills_with_its_products_billing_attributes(psa: PsaUnderTest) -> None:
    client = psa.client()
    product = client.get_product(TAXABLE_PRODUCT)
    assert product.billing == PRODUCT_BILLING[psa.kind]
    created = client.create_line(NewLine(agreement_id=psa.agreement_id, product_id=TAXABLE_PRODUCT, quantity=2,
                                         effective_date=TODAY, tag="seatsync:e3", unit_cost=product.cost,
                                         billing=product.billing))
    again = psa.client().get_line(psa.agreement_id, created.line_id)
    assert again.unit_cost == product.cost
    said = {key: value for key, value in vars(product.billing).items() if value is not None}
    assert {key: getattr(again.billing, key) for key in said} == said
    held = psa.billing_held(created.line_id)
    assert {key: held[key] for key in said} == said


def test_a_line_created_from_a_base_line_bills_as_the_base_line(psa: PsaUnderTest) -> None:
    """ConnectWise charges a mid-period change with a separate addition, which must be taxed,
    grouped and costed as its base addition (not as the product's defaults); Autotask and Halo
    prorate on the base line itself, so the charge bills with the base line's attributes there."""
    client = psa.client()
    base = the_line(client, psa)
    product = client.get_product(base.product_id)
    assert base.billing != product.billing or psa.kind == "autotask"  # the base line has attributes of its own
    lines_before = {line.line_id for line in client.list_lines([psa.agreement_id])}
    charged = psa.prorated_increase(client, base, 2)
    lines_after = {line.line_id: line for line in psa.client().list_lines([psa.agreement_id])}
    if client.capabilities.prorate == "separate-line":
        (new_id,) = set(lines_after) - lines_before
        assert lines_after[new_id].billing == base.billing
        assert lines_after[new_id].unit_cost == base.unit_cost == Decimal("18.5")
        assert psa.billing_held(new_id) == {k: v for k, v in vars(base.billing).items() if v is not None}
    else:
        assert set(lines_after) == lines_before and charged.line_id == base.line_id
        assert lines_after[base.line_id].billing == base.billing


def test_a_prorated_increase_is_recorded_the_way_the_psa_prorates(psa: PsaUnderTest) -> None:
    client = psa.client()
    line = the_line(client, psa)
    psa.prorated_increase(client, line, 2)
    psa.assert_prorated(line, 2)
    style = client.capabilities.prorate
    assert style == ("separate-line" if psa.kind == "connectwise" else "native")


def test_a_second_identical_push_writes_nothing(psa: PsaUnderTest) -> None:
    client = psa.client()
    line = the_line(client, psa)
    assert ensure_quantity(client, line, 24, TODAY) is not None
    written = psa.writes()
    assert written >= 1
    again = psa.client()
    assert ensure_quantity(again, line, 24, TODAY) is None
    assert psa.writes() == written
    assert psa.billed(psa.line_id) == Decimal(24)


def test_descriptions_and_prices_are_updated(psa: PsaUnderTest) -> None:
    client = psa.client()
    updated = client.update_line(the_line(client, psa), invoice_description="Ann, Bob and 18 more",
                                 unit_price=Decimal("21.50"))
    assert updated.invoice_description == "Ann, Bob and 18 more"
    again = the_line(psa.client(), psa)
    assert again.invoice_description == "Ann, Bob and 18 more"
    assert again.unit_price == Decimal("21.5")
    assert again.quantity == Decimal(LINE_QUANTITY)


# --------------------------------------------------------------------------- limits and errors


def test_throttling_is_waited_out_as_the_psa_asks(psa: PsaUnderTest) -> None:
    psa.fault(kind="throttle", path=psa.lines_path, times=2, retryAfter=3)
    client = psa.client()
    lines = client.list_lines([psa.agreement_id])
    assert [line.quantity for line in lines] == [Decimal(LINE_QUANTITY)]
    assert psa.sleeps.count(3.0) == 2
    throttled = [e for e in psa.log() if e["fault"] == "throttle"]
    assert len(throttled) == 2


def test_a_write_the_psa_rejects_is_an_error_naming_the_record(psa: PsaUnderTest) -> None:
    client = psa.client()
    with pytest.raises(PsaError) as caught:
        client.create_line(NewLine(agreement_id=psa.agreement_id, product_id="9999", quantity=1, effective_date=TODAY,
                                   tag="seatsync:x"))
    error = caught.value
    assert error.record is not None
    assert psa.agreement_id in error.record
    assert "9999" in str(error)
    assert error.status is not None and error.status >= 400
    assert psa.billed(psa.line_id) == Decimal(LINE_QUANTITY)


def test_a_write_to_a_missing_line_is_an_error_naming_the_line(psa: PsaUnderTest) -> None:
    client = psa.client()
    line = the_line(client, psa)
    ghost = replace(line, line_id="99999")
    with pytest.raises(PsaError) as caught:
        client.update_line(ghost, invoice_description="nobody")
    assert caught.value.record is not None
    assert "99999" in caught.value.record
    assert caught.value.status in (400, 404, 500)


def test_nothing_is_written_for_an_invalid_quantity(psa: PsaUnderTest) -> None:
    client = psa.client()
    line = the_line(client, psa)
    written = psa.writes()
    with pytest.raises(ValueError, match="whole number"):
        client.set_quantity(line, 2.5, date(2026, 1, 20))  # type: ignore[arg-type]
    assert psa.writes() == written


# --------------------------------------------------------------------------- contacts


def contact_config(kind: str) -> SeatSyncConfig:
    """One tenant whose company 19 syncs its contacts through the PSA under test."""
    return parse_config({"psaConnections": [connection_entry(kind)],
                         "tenants": [{"tenantId": CONTACT_TENANT, "name": "Fabrikam",
                                      "companies": [{"psa": kind, "companyId": "19", "syncContacts": True}]}]})


def person(name: str, *skus: str, **fields: Any) -> DirectoryUser:
    given, _, surname = name.partition(" ")
    upn = f"{given.lower()}@fabrikam.com"
    return DirectoryUser(id=f"user-{given.lower()}", user_principal_name=upn, display_name=name, sku_ids=skus,
                         mail=upn, given_name=given, surname=surname or None, **fields)


class ContactSync:
    """What a push does for one company's contacts: read them, plan, write each change, read back
    and keep the links SeatSync records."""

    def __init__(self, psa: PsaUnderTest) -> None:
        self.psa = psa
        self.config = contact_config(psa.kind)
        self.links: list[ContactLink] = []

    def run(self, users: list[DirectoryUser]) -> list[PlannedChange]:
        client = self.psa.client()
        key = (self.psa.kind, "19")
        contacts = {key: client.list_contacts("19")}
        snapshot = TenantSnapshot(tenant_id=CONTACT_TENANT, run_id="r", collected_at=datetime(2026, 1, 15, tzinfo=UTC),
                                  skus=(), users=tuple(users))
        plan = plan_contacts(self.config, self.config.tenants[0], snapshot, contacts, self.links,
                             {self.psa.kind: client.capabilities.contact_fields}, TODAY)
        self.links += plan.links
        after = []
        for change in plan.changes:
            written = execute_contact(change, client, contacts)
            after.append((change, written))
            if change.kind == ChangeKind.CREATE_CONTACT:
                self.links.append(ContactLink(self.psa.kind, "19", change.sku_id.removeprefix("contact:"), written))
        read_back = self.psa.client().list_contacts("19")
        for change, written in after:
            check = check_contact(change, read_back, written)
            assert check.held, f"{change.kind.value}: {check.detail}"
        return list(plan.changes)

    def contact(self, address: str) -> PsaContact:
        return next(c for c in self.psa.client().list_contacts("19") if address in c.emails)


def test_contacts_are_created_updated_deactivated_and_reactivated_and_a_second_run_writes_nothing(
        psa: PsaUnderTest) -> None:
    sync = ContactSync(psa)
    dee = person("Dee Ray", "sku-1", job_title="Accountant", business_phones=("+44 20 7946 0011",),
                 mobile_phone="+44 7700 900011")
    ann = person("Ann Lee", "sku-1", job_title="Buyer")
    bob = person("Bob Kay")  # a contact made by hand whose user holds no licence: never touched
    first = sync.run([dee, ann, bob])
    assert sorted((c.kind.value, c.line_id) for c in first) == [("create-contact", None), ("update-contact", "7")]
    created = sync.contact("dee@fabrikam.com")
    assert (created.first_name, created.last_name, created.title, created.inactive) == (
        "Dee", "Ray", "Accountant", False)
    assert (created.phone, created.mobile) == ("+44 20 7946 0011", "+44 7700 900011")
    assert sync.contact("ann@fabrikam.com").title == "Buyer"
    written = psa.writes()
    assert sync.run([dee, ann, bob]) == []
    assert psa.writes() == written

    promoted = DirectoryUser(**{**vars(ann), "job_title": "Head buyer", "mobile_phone": None})
    unlicensed = DirectoryUser(**{**vars(dee), "sku_ids": ()})
    second = sync.run([unlicensed, promoted, bob])
    assert sorted((c.kind.value, c.line_id) for c in second) == [
        ("deactivate-contact", created.contact_id), ("update-contact", "7")]
    assert sync.contact("dee@fabrikam.com").inactive is True
    assert sync.contact("ann@fabrikam.com").title == "Head buyer"
    assert sync.contact("bob@fabrikam.com").inactive is False
    assert sync.run([unlicensed, promoted, bob]) == []

    back = sync.run([DirectoryUser(**{**vars(dee), "job_title": "Finance lead"}), promoted, bob])
    assert [(c.kind.value, c.line_id) for c in back] == [("reactivate-contact", created.contact_id)]
    again = sync.contact("dee@fabrikam.com")
    assert (again.inactive, again.title) == (False, "Finance lead")
    written = psa.writes()
    assert sync.run([DirectoryUser(**{**vars(dee), "job_title": "Finance lead"}), promoted, bob]) == []
    assert psa.writes() == written


def test_a_contact_write_the_psa_refuses_is_an_error_naming_the_record(psa: PsaUnderTest) -> None:
    client = psa.client()
    with pytest.raises(PsaError) as caught:
        client.create_contact("999", ContactDetails(first_name="Eve", last_name="Nobody", email="eve@x.example"))
    assert caught.value.record is not None and "999" in caught.value.record
    assert all(c.emails != ("eve@x.example",) for c in client.list_contacts())
