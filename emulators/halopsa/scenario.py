"""The ``halopsa:`` section of a scenario file, validated strictly.

Every problem raises ``EmulatorError`` naming the entry and key, e.g.
``halopsa.lines[3].quantity: must be a number, got 'ten'``. Unknown keys are errors. Ids may
be omitted: they are assigned in file order after the largest id given; recurring invoices
have negative ids, as in Halo, assigned below the smallest one given.

See docs/emulators.md ("HaloPSA emulator") for every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from emulators.scenario_reader import Node, day, fail, integer, number, text

ROOT = "halopsa"

# Billing periods of recurring invoices: name -> (Halo ``period`` value, months, days). Halo's value
# for Monthly (2) is the one observed in Halo's own answers; the others are the emulator's numbering.
PERIODS: dict[str, tuple[int, int, int]] = {
    "Weekly": (1, 0, 7), "Monthly": (2, 1, 0), "Quarterly": (3, 3, 0), "Yearly": (4, 12, 0),
    "Six-Monthly": (5, 6, 0), "Two-Monthly": (6, 2, 0), "Fortnightly": (7, 0, 14),
}


@dataclass(frozen=True)
class Application:
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class RateLimit:
    requests_per_5_minutes: int = 300
    retry_after: bool = True


@dataclass(frozen=True)
class ClientEntry:
    id: int
    name: str
    ref: str | None = None
    website: str | None = None
    inactive: bool = False


@dataclass(frozen=True)
class UserEntry:
    id: int
    client_id: int
    first_name: str
    surname: str = ""
    emails: tuple[str, ...] = ()
    inactive: bool = False
    title: str | None = None
    phone: str | None = None
    mobile: str | None = None


@dataclass(frozen=True)
class ItemEntry:
    id: int
    name: str
    description: str | None = None
    price: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    recurring: bool = True
    inactive: bool = False
    internal_reference: str | None = None
    tax_code: int = 0
    nominal_code: str = ""


@dataclass(frozen=True)
class ContractEntry:
    id: int
    client_id: int
    ref: str
    type_name: str
    start_date: date
    end_date: date | None = None
    active: bool = True


@dataclass(frozen=True)
class InvoiceEntry:
    id: int
    client_id: int
    reference: str
    period: str
    start_date: date
    end_date: date | None = None
    contract_id: int | None = None
    disabled: bool = False
    # The start of the first period Halo has not invoiced yet (its ``nextcreationdate``); None: the
    # period after the one containing today (the current period is invoiced).
    next_creation_date: date | None = None


@dataclass(frozen=True)
class LineEntry:
    id: int
    invoice_id: int
    item_id: int
    quantity: Decimal
    unit_price: Decimal | None = None
    unit_cost: Decimal | None = None
    description: str | None = None
    long_description: str | None = None
    internal_reference: str | None = None
    one_time_charge: bool = False
    inactive: bool = False
    tax_code: int | None = None  # None: the item's
    nominal_code: str | None = None  # None: the item's
    invoiced_quantity: Decimal | None = None  # on the last invoice Halo created; None: ``quantity``


@dataclass(frozen=True)
class Scenario:
    today: date | None = None
    tenant: str | None = None
    applications: tuple[Application, ...] = ()
    token_lifetime_seconds: int = 3600
    rate_limit: RateLimit | None = RateLimit()
    allow_negative_prorata: bool = False
    clients: tuple[ClientEntry, ...] = ()
    users: tuple[UserEntry, ...] = ()
    items: tuple[ItemEntry, ...] = ()
    contracts: tuple[ContractEntry, ...] = ()
    recurring_invoices: tuple[InvoiceEntry, ...] = ()
    lines: tuple[LineEntry, ...] = ()
    faults: tuple[dict[str, Any], ...] = field(default_factory=tuple)


_TOP_KEYS = ("today", "tenant", "applications", "tokenLifetimeSeconds", "rateLimit", "allowNegativeProRata",
             "clients", "users", "items", "contracts", "recurringInvoices", "lines", "faults")


def parse_scenario(section: Any) -> Scenario:
    """Validate the ``halopsa:`` section (None or {} gives an empty Halo)."""
    root = Node.section(section, ROOT, _TOP_KEYS)
    applications = []
    for index, raw in enumerate(root.listing("applications")):
        entry = Node(raw, f"{root.at('applications')}[{index}]", ("clientId", "clientSecret"),
                     ("clientId", "clientSecret"))
        applications.append(Application(entry.text("clientId"), entry.text("clientSecret")))
    rate_limit: RateLimit | None = RateLimit()
    if "rateLimit" in root.raw:
        if root.raw["rateLimit"] is None:
            rate_limit = None
        else:
            item = Node(root.raw["rateLimit"], root.at("rateLimit"), ("requestsPer5Minutes", "retryAfter"))
            rate_limit = RateLimit(item.integer("requestsPer5Minutes", 300), item.flag("retryAfter", True))
    clients = _clients(root)
    client_ids = {c.id for c in clients}
    users = _users(root, client_ids)
    items = _items(root)
    contracts = _contracts(root, client_ids)
    invoices = _invoices(root, client_ids, {c.id: c for c in contracts})
    lines = _lines(root, {i.id for i in invoices}, {i.id: i for i in items})
    tenant = root.optional("tenant", text)
    return Scenario(
        today=root.optional("today", day),
        tenant=tenant,
        applications=tuple(applications),
        token_lifetime_seconds=root.integer("tokenLifetimeSeconds", 3600),
        rate_limit=rate_limit,
        allow_negative_prorata=root.flag("allowNegativeProRata", False),
        clients=clients, users=users, items=items, contracts=contracts, recurring_invoices=invoices, lines=lines,
        faults=root.faults(),
    )


def _clients(root: Node) -> tuple[ClientEntry, ...]:
    result = []
    for ident, item in root.entries("clients", ("id", "name", "ref", "website", "inactive"), ("name",)):
        result.append(ClientEntry(ident, item.text("name", max_length=255), item.optional("ref", text),
                                  item.optional("website", text), item.flag("inactive", False)))
    return tuple(result)


def _users(root: Node, client_ids: set[int]) -> tuple[UserEntry, ...]:
    allowed = ("id", "clientId", "firstName", "surname", "email", "emails", "inactive", "title", "phone", "mobile")
    result = []
    for ident, item in root.entries("users", allowed, ("clientId", "firstName")):
        client_id = item.reference("clientId", client_ids, "client")
        emails = item.emails()
        if len(emails) > 3:
            raise fail(item.at("emails"), "a Halo user has at most 3 email addresses (emailaddress, email2, email3)")
        result.append(UserEntry(ident, client_id, item.text("firstName"), item.text("surname", "", allow_empty=True),
                                emails, item.flag("inactive", False), item.optional("title", text),
                                item.optional("phone", text), item.optional("mobile", text)))
    return tuple(result)


def _items(root: Node) -> tuple[ItemEntry, ...]:
    allowed = ("id", "name", "description", "price", "cost", "recurring", "inactive", "internalReference", "taxCode",
               "nominalCode")
    result = []
    for ident, item in root.entries("items", allowed, ("name",)):
        result.append(ItemEntry(
            ident, item.text("name", max_length=255), item.optional("description", text),
            item.number("price", 0), item.number("cost", 0), item.flag("recurring", True),
            item.flag("inactive", False), item.optional("internalReference", text),
            item.integer("taxCode", 0, minimum=0), item.text("nominalCode", "", allow_empty=True)))
    return tuple(result)


def _dated(item: Node, client_ids: set[int]) -> tuple[int, date, date | None]:
    """The ``clientId``, ``startDate`` and ``endDate`` of a contract or a recurring invoice."""
    client_id = item.reference("clientId", client_ids, "client")
    start = item.day("startDate")
    end = item.optional("endDate", day)
    item.ordered("startDate", start, "endDate", end)
    return client_id, start, end


def _contracts(root: Node, client_ids: set[int]) -> tuple[ContractEntry, ...]:
    allowed = ("id", "clientId", "ref", "type", "startDate", "endDate", "active")
    result = []
    for ident, item in root.entries("contracts", allowed, ("clientId", "ref", "startDate")):
        client_id, start, end = _dated(item, client_ids)
        result.append(ContractEntry(ident, client_id, item.text("ref"), item.text("type", "Managed Services"), start,
                                    end, item.flag("active", True)))
    return tuple(result)


def _invoices(root: Node, client_ids: set[int], contracts: dict[int, ContractEntry]) -> tuple[InvoiceEntry, ...]:
    allowed = ("id", "clientId", "reference", "period", "startDate", "endDate", "contractId", "disabled",
               "nextCreationDate")
    result = []
    for ident, item in root.entries("recurringInvoices", allowed, ("clientId", "reference", "startDate"),
                                    negative=True):
        client_id, start, end = _dated(item, client_ids)
        contract_id = item.optional("contractId", integer)
        if contract_id is not None:
            contract = contracts.get(contract_id)
            if contract is None:
                raise fail(item.at("contractId"), f"no contract with id {contract_id}")
            if contract.client_id != client_id:
                raise fail(item.at("contractId"), f"contract {contract_id} belongs to client {contract.client_id}")
        next_creation = item.optional("nextCreationDate", day)
        if next_creation is not None and next_creation < start:
            raise fail(item.at("nextCreationDate"), f"is before the start date {start}")
        result.append(InvoiceEntry(ident, client_id, item.text("reference"),
                                   item.choice("period", PERIODS, "Monthly"), start, end,
                                   contract_id, item.flag("disabled", False), next_creation))
    return tuple(result)


def _lines(root: Node, invoice_ids: set[int], items: dict[int, ItemEntry]) -> tuple[LineEntry, ...]:
    allowed = ("id", "invoiceId", "itemId", "quantity", "unitPrice", "unitCost", "description", "longDescription",
               "internalReference", "oneTimeCharge", "inactive", "taxCode", "nominalCode", "invoicedQuantity")
    result = []
    for ident, item in root.entries("lines", allowed, ("invoiceId", "itemId", "quantity")):
        invoice_id = item.reference("invoiceId", invoice_ids, "recurring invoice", minimum=None)
        item_id = item.reference("itemId", items, "item")
        result.append(LineEntry(
            ident, invoice_id, item_id, item.number("quantity", minimum=Decimal(0)),
            item.optional("unitPrice", number), item.optional("unitCost", number),
            item.optional("description", text), item.optional("longDescription", text),
            item.optional("internalReference", text),
            item.flag("oneTimeCharge", False),
            item.flag("inactive", False),
            item.optional("taxCode", integer, minimum=0),
            item.optional("nominalCode", text, allow_empty=True),
            item.optional("invoicedQuantity", number)))
    return tuple(result)
