"""The ``connectwise:`` section of a scenario file, validated strictly.

Every problem raises ``EmulatorError`` naming the entry and key, e.g.
``connectwise.additions[3].quantity: must be a number, got 'ten'``. Unknown keys are errors
too, so a misspelt key never silently falls back to a default. Ids may be omitted: they are
then assigned in file order after the largest id given (deterministic).

See docs/emulators.md ("ConnectWise PSA emulator") for every key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from emulators.scenario_reader import Node, Unique, day, fail, flag, integer, listing, number, text

ROOT = "connectwise"
BILL_CUSTOMER = ("Billable", "DoNotBill", "NoCharge")
PERIOD_TYPES = ("Current", "Future", "Both", "Undefined")
INVOICING_CYCLES = ("ContractYear", "CalendarYear")
SERIAL_NUMBER_MAX = 50
INVOICE_DESCRIPTION_MAX = 6000


@dataclass(frozen=True)
class Credential:
    public_key: str
    private_key: str
    client_id: str | None = None


@dataclass(frozen=True)
class CompanyEntry:
    id: int
    identifier: str
    name: str
    website: str | None = None
    status: str = "Active"
    phone_number: str | None = None
    address_line1: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    deleted: bool = False
    types: tuple[str, ...] = ("Client",)


@dataclass(frozen=True)
class ContactEntry:
    id: int
    company_id: int
    first_name: str
    last_name: str = ""
    emails: tuple[str, ...] = ()
    phone: str | None = None
    title: str | None = None
    inactive: bool = False
    mobile: str | None = None


@dataclass(frozen=True)
class CatalogEntry:
    id: int
    identifier: str
    description: str
    price: Decimal
    cost: Decimal
    customer_description: str | None = None
    inactive: bool = False
    product_class: str = "Agreement"
    taxable: bool = False
    subcategory: str | None = None
    uom: str = "Each"


@dataclass(frozen=True)
class AgreementTypeEntry:
    id: int
    name: str
    prorate: bool = False
    billing_cycle: str | None = "Monthly"
    inactive: bool = False
    default: bool = False


@dataclass(frozen=True)
class AgreementEntry:
    id: int
    name: str
    company_id: int
    type_id: int
    start_date: date
    prorate: bool | None = None  # None: the agreement type's setting
    billing_cycle: str | None = None  # None: the agreement type's cycle
    end_date: date | None = None
    cancelled: bool = False
    date_cancelled: date | None = None
    reason_cancelled: str | None = None
    contact_id: int | None = None
    invoice_prorated_additions: bool = False
    period_type: str = "Current"
    invoicing_cycle: str = "ContractYear"
    billing_terms: str = "Net 30"
    bill_amount: Decimal = Decimal(0)
    taxable: bool = False
    customer_po: str | None = None
    parent_agreement_id: int | None = None
    # The first day not invoiced yet (ConnectWise's nextInvoiceDate); ``next_invoice_given``
    # False: the cycle after the one containing today (the current cycle is invoiced).
    next_invoice_date: date | None = None
    next_invoice_given: bool = False


@dataclass(frozen=True)
class AdditionEntry:
    id: int
    agreement_id: int
    product_id: int
    quantity: Decimal
    bill_customer: str = "Billable"
    unit_price: Decimal | None = None  # None: the catalog price
    unit_cost: Decimal | None = None  # None: the catalog cost
    effective_date: date | None = None  # None: the agreement's start date
    cancelled_date: date | None = None
    description: str | None = None
    invoice_description: str | None = None
    serial_number: str | None = None
    less_included: Decimal = Decimal(0)
    taxable: bool | None = None  # None: the catalog item's
    sequence_number: Decimal | None = None
    prorate_current_period: bool = False
    invoice_grouping: str | None = None
    purchase_item: bool = False
    special_order: bool = False
    uom: str | None = None  # None: the catalog item's unit of measure


@dataclass(frozen=True)
class RateLimit:
    requests_per_minute: int


@dataclass(frozen=True)
class Scenario:
    codebase: str = "v4_6_release"
    company_id: str = "seatsyncmsp"
    company_name: str = "SeatSync MSP"
    version_code: str = "v2025.1"
    cloud: bool = False
    require_client_id: bool = True
    today: date | None = None
    member: str = "SeatSyncAPI"
    credentials: tuple[Credential, ...] = ()
    companies: tuple[CompanyEntry, ...] = ()
    contacts: tuple[ContactEntry, ...] = ()
    catalog: tuple[CatalogEntry, ...] = ()
    agreement_types: tuple[AgreementTypeEntry, ...] = ()
    agreements: tuple[AgreementEntry, ...] = ()
    additions: tuple[AdditionEntry, ...] = ()
    rate_limit: RateLimit | None = None
    faults: tuple[dict[str, Any], ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- the section

_TOP_KEYS = (
    "codebase", "companyId", "companyName", "versionCode", "cloud", "requireClientId", "today",
    "member", "credentials", "companies", "contacts", "catalog", "agreementTypes", "agreements",
    "additions", "rateLimit", "faults",
)


def parse_scenario(section: Any) -> Scenario:
    """Validate the ``connectwise:`` section (None or {} gives an empty PSA)."""
    root = Node.section(section, ROOT, _TOP_KEYS)

    codebase = root.text("codebase", "v4_6_release").strip("/")
    if not re.fullmatch(r"v[0-9A-Za-z_.]+", codebase):
        raise fail(root.at("codebase"), f"must look like v4_6_release or v2025_1, got {codebase!r}")
    company_id = root.text("companyId", "seatsyncmsp")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", company_id):
        raise fail(root.at("companyId"), f"must be letters, digits, '.', '_' or '-', got {company_id!r}")

    credentials = tuple(_credential(item, f"{root.at('credentials')}[{i}]")
                        for i, item in enumerate(root.listing("credentials")))
    companies = _companies(root)
    company_ids = {c.id for c in companies}
    contacts = _contacts(root, company_ids)
    catalog = _catalog(root)
    types = _agreement_types(root)
    agreements = _agreements(root, company_ids, {t.id for t in types}, {c.id: c.company_id for c in contacts})
    additions = _additions(root, {a.id: a for a in agreements}, catalog)

    rate_limit = None
    if root.has("rateLimit"):
        limit = Node(root.raw["rateLimit"], root.at("rateLimit"), ("requestsPerMinute",), ("requestsPerMinute",))
        rate_limit = RateLimit(limit.integer("requestsPerMinute"))

    faults = root.faults()

    return Scenario(
        codebase=codebase,
        company_id=company_id,
        company_name=root.text("companyName", "SeatSync MSP"),
        version_code=root.text("versionCode", "v2025.1"),
        cloud=root.flag("cloud", False),
        require_client_id=root.flag("requireClientId", True),
        today=root.optional("today", day),
        member=root.text("member", "SeatSyncAPI"),
        credentials=credentials,
        companies=companies,
        contacts=contacts,
        catalog=catalog,
        agreement_types=types,
        agreements=agreements,
        additions=additions,
        rate_limit=rate_limit,
        faults=faults,
    )


def _credential(raw: Any, path: str) -> Credential:
    item = Node(raw, path, ("publicKey", "privateKey", "clientId"), ("publicKey", "privateKey"))
    client_id = item.optional("clientId", text)
    if client_id is not None and not re.fullmatch(r"[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}", client_id):
        raise fail(item.at("clientId"), f"must be a GUID, got {client_id!r}")
    return Credential(item.text("publicKey"), item.text("privateKey"), client_id)


def _identified(root: Node, key: str, allowed: tuple[str, ...], required: tuple[str, ...],
                max_length: int) -> Iterator[tuple[int, str, Node]]:
    """The entries of a list whose ``identifier`` is unique whatever its case, each with its id
    and identifier."""
    identifiers = Unique("identifier")
    for ident, item in root.entries(key, allowed, required):
        identifier = item.text("identifier", max_length=max_length)
        identifiers.add(identifier, item.at("identifier"), item.path)
        yield ident, identifier, item


def _companies(root: Node) -> tuple[CompanyEntry, ...]:
    allowed = ("id", "identifier", "name", "website", "status", "phoneNumber", "addressLine1", "city",
               "state", "zip", "country", "deleted", "types")
    result: list[CompanyEntry] = []
    for ident, identifier, item in _identified(root, "companies", allowed, ("identifier", "name"), 30):
        result.append(CompanyEntry(
            id=ident,
            identifier=identifier,
            name=item.text("name", max_length=50),
            website=item.optional("website", text),
            status=item.text("status", "Active"),
            phone_number=item.optional("phoneNumber", text),
            address_line1=item.optional("addressLine1", text),
            city=item.optional("city", text),
            state=item.optional("state", text),
            zip=item.optional("zip", text),
            country=item.optional("country", text),
            deleted=item.flag("deleted", False),
            types=tuple(text(t, f"{item.at('types')}[{i}]")
                        for i, t in enumerate(listing(item.raw.get("types", ["Client"]), item.at("types")))),
        ))
    return tuple(result)


def _contacts(root: Node, company_ids: set[int]) -> tuple[ContactEntry, ...]:
    allowed = ("id", "companyId", "firstName", "lastName", "email", "emails", "phone", "mobile", "title", "inactive")
    result: list[ContactEntry] = []
    for ident, item in root.entries("contacts", allowed, ("companyId", "firstName")):
        company_id = item.reference("companyId", company_ids, "company")
        emails = item.emails()
        result.append(ContactEntry(
            id=ident,
            company_id=company_id,
            first_name=item.text("firstName", max_length=30),
            last_name=item.text("lastName", "", max_length=30, allow_empty=True),
            emails=emails,
            phone=item.optional("phone", text),
            mobile=item.optional("mobile", text),
            title=item.optional("title", text),
            inactive=item.flag("inactive", False),
        ))
    return tuple(result)


def _catalog(root: Node) -> tuple[CatalogEntry, ...]:
    allowed = ("id", "identifier", "description", "customerDescription", "price", "cost", "inactive",
               "productClass", "taxable", "subcategory", "uom")
    result: list[CatalogEntry] = []
    for ident, identifier, item in _identified(root, "catalog", allowed, ("identifier", "description"), 25):
        result.append(CatalogEntry(
            id=ident,
            identifier=identifier,
            description=item.text("description", max_length=60),
            price=item.number("price", 0, Decimal(0)),
            cost=item.number("cost", 0, Decimal(0)),
            customer_description=item.optional("customerDescription", text),
            inactive=item.flag("inactive", False),
            product_class=item.choice("productClass", ("Agreement", "Bundle", "Inventory", "NonInventory", "Service"),
                                      "Agreement"),
            taxable=item.flag("taxable", False),
            subcategory=item.optional("subcategory", text),
            uom=item.text("uom", "Each"),
        ))
    return tuple(result)


def _agreement_types(root: Node) -> tuple[AgreementTypeEntry, ...]:
    allowed = ("id", "name", "prorate", "billingCycle", "inactive", "default")
    result: list[AgreementTypeEntry] = []
    for ident, item in root.entries("agreementTypes", allowed, ("name",)):
        result.append(AgreementTypeEntry(
            id=ident,
            name=item.text("name", max_length=50),
            prorate=item.flag("prorate", False),
            # absent: Monthly; an explicit null: no billing cycle (a type that does not recur)
            billing_cycle=(item.optional("billingCycle", text) if "billingCycle" in item.raw else "Monthly"),
            inactive=item.flag("inactive", False),
            default=item.flag("default", False),
        ))
    return tuple(result)


def _agreements(root: Node, company_ids: set[int], type_ids: set[int],
                contact_companies: dict[int, int]) -> tuple[AgreementEntry, ...]:
    allowed = ("id", "name", "companyId", "typeId", "prorate", "billingCycle", "startDate", "endDate",
               "cancelled", "dateCancelled", "reasonCancelled", "contactId", "invoiceProratedAdditions",
               "periodType", "invoicingCycle", "billingTerms", "billAmount", "taxable", "customerPO",
               "parentAgreementId", "nextInvoiceDate")
    result: list[AgreementEntry] = []
    for ident, item in root.entries("agreements", allowed, ("name", "companyId", "typeId", "startDate")):
        company_id = item.reference("companyId", company_ids, "company")
        type_id = item.reference("typeId", type_ids, "agreement type")
        contact_id = item.optional("contactId", integer)
        if contact_id is not None and contact_companies.get(contact_id) != company_id:
            raise fail(item.at("contactId"), f"no contact {contact_id} in company {company_id}")
        start = item.day("startDate")
        end = item.optional("endDate", day)
        item.ordered("startDate", start, "endDate", end)
        cancelled = item.flag("cancelled", False)
        date_cancelled = item.optional("dateCancelled", day)
        if date_cancelled is not None and not cancelled:
            raise fail(item.at("dateCancelled"), "is only allowed with cancelled: true")
        result.append(AgreementEntry(
            id=ident,
            name=item.text("name", max_length=100),
            company_id=company_id,
            type_id=type_id,
            start_date=start,
            prorate=item.optional("prorate", flag),
            billing_cycle=item.optional("billingCycle", text),
            end_date=end,
            cancelled=cancelled,
            date_cancelled=date_cancelled,
            reason_cancelled=item.optional("reasonCancelled", text),
            contact_id=contact_id,
            invoice_prorated_additions=item.flag("invoiceProratedAdditions", False),
            period_type=item.choice("periodType", PERIOD_TYPES, "Current"),
            invoicing_cycle=item.choice("invoicingCycle", INVOICING_CYCLES, "ContractYear"),
            billing_terms=item.text("billingTerms", "Net 30"),
            bill_amount=item.number("billAmount", 0),
            taxable=item.flag("taxable", False),
            customer_po=item.optional("customerPO", text),
            parent_agreement_id=item.optional("parentAgreementId", integer),
            next_invoice_date=item.optional("nextInvoiceDate", day),
            next_invoice_given="nextInvoiceDate" in item.raw,
        ))
    known = {a.id for a in result}
    path = root.at("agreements")
    for index, agreement in enumerate(result):
        if agreement.parent_agreement_id is not None and agreement.parent_agreement_id not in known:
            raise fail(f"{path}[{index}].parentAgreementId", f"no agreement with id {agreement.parent_agreement_id}")
    return tuple(result)


def _additions(root: Node, agreements: dict[int, AgreementEntry],
               catalog: tuple[CatalogEntry, ...]) -> tuple[AdditionEntry, ...]:
    by_identifier = {c.identifier.lower(): c for c in catalog}
    by_id = {c.id: c for c in catalog}
    allowed = ("id", "agreementId", "productId", "productIdentifier", "quantity", "billCustomer", "unitPrice",
               "unitCost", "effectiveDate", "cancelledDate", "description", "invoiceDescription",
               "serialNumber", "lessIncluded", "taxable", "sequenceNumber", "prorateCurrentPeriod", "invoiceGrouping",
               "purchaseItem", "specialOrder", "uom")
    result: list[AdditionEntry] = []
    for ident, item in root.entries("additions", allowed, ("agreementId", "quantity")):
        agreement_id = item.reference("agreementId", agreements, "agreement")
        if item.has("productId") == item.has("productIdentifier"):
            raise fail(item.at("productIdentifier"), "give exactly one of productId and productIdentifier")
        if item.has("productId"):
            product = by_id[item.reference("productId", by_id, "catalog item")]
        else:
            identifier = item.text("productIdentifier")
            found = by_identifier.get(identifier.lower())
            if found is None:
                raise fail(item.at("productIdentifier"), f"no catalog item {identifier!r}")
            product = found
        effective = item.optional("effectiveDate", day)
        cancelled = item.optional("cancelledDate", day)
        item.ordered("effectiveDate", effective, "cancelledDate", cancelled)
        result.append(AdditionEntry(
            id=ident,
            agreement_id=agreement_id,
            product_id=product.id,
            quantity=item.number("quantity"),
            bill_customer=item.choice("billCustomer", BILL_CUSTOMER, "Billable"),
            unit_price=item.optional("unitPrice", number),
            unit_cost=item.optional("unitCost", number),
            effective_date=effective,
            cancelled_date=cancelled,
            description=item.optional("description", text),
            invoice_description=item.optional("invoiceDescription", text, INVOICE_DESCRIPTION_MAX, allow_empty=True),
            serial_number=item.optional("serialNumber", text, SERIAL_NUMBER_MAX),
            less_included=item.number("lessIncluded", 0, Decimal(0)),
            taxable=item.optional("taxable", flag),
            sequence_number=item.optional("sequenceNumber", number),
            prorate_current_period=item.flag("prorateCurrentPeriod", False),
            invoice_grouping=item.optional("invoiceGrouping", text, 50),
            purchase_item=item.flag("purchaseItem", False),
            special_order=item.flag("specialOrder", False),
            uom=item.optional("uom", text),
        ))
    return tuple(result)
