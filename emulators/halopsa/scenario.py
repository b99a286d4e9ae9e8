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

from emulators.autotask import readers as r

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
    raw = r.mapping(section if section is not None else {}, ROOT, _TOP_KEYS)
    p = ROOT
    applications = []
    for index, item in enumerate(r.listing(raw.get("applications"), f"{p}.applications")):
        at = f"{p}.applications[{index}]"
        entry = r.mapping(item, at, ("clientId", "clientSecret"), ("clientId", "clientSecret"))
        applications.append(Application(r.text(entry["clientId"], f"{at}.clientId"),
                                        r.text(entry["clientSecret"], f"{at}.clientSecret")))
    rate_limit: RateLimit | None = RateLimit()
    if "rateLimit" in raw:
        if raw["rateLimit"] is None:
            rate_limit = None
        else:
            item = r.mapping(raw["rateLimit"], f"{p}.rateLimit", ("requestsPer5Minutes", "retryAfter"))
            rate_limit = RateLimit(
                r.integer(item.get("requestsPer5Minutes", 300), f"{p}.rateLimit.requestsPer5Minutes"),
                r.flag(item.get("retryAfter", True), f"{p}.rateLimit.retryAfter"))
    clients = _clients(r.listing(raw.get("clients"), f"{p}.clients"), f"{p}.clients")
    client_ids = {c.id for c in clients}
    users = _users(r.listing(raw.get("users"), f"{p}.users"), f"{p}.users", client_ids)
    items = _items(r.listing(raw.get("items"), f"{p}.items"), f"{p}.items")
    contracts = _contracts(r.listing(raw.get("contracts"), f"{p}.contracts"), f"{p}.contracts", client_ids)
    invoices = _invoices(r.listing(raw.get("recurringInvoices"), f"{p}.recurringInvoices"), f"{p}.recurringInvoices",
                         client_ids, {c.id: c for c in contracts})
    lines = _lines(r.listing(raw.get("lines"), f"{p}.lines"), f"{p}.lines", {i.id for i in invoices},
                   {i.id: i for i in items})
    tenant = r.optional(raw, "tenant", p, r.text)
    return Scenario(
        today=r.optional(raw, "today", p, r.day),
        tenant=tenant,
        applications=tuple(applications),
        token_lifetime_seconds=r.integer(raw.get("tokenLifetimeSeconds", 3600), f"{p}.tokenLifetimeSeconds"),
        rate_limit=rate_limit,
        allow_negative_prorata=r.flag(raw.get("allowNegativeProRata", False), f"{p}.allowNegativeProRata"),
        clients=clients, users=users, items=items, contracts=contracts, recurring_invoices=invoices, lines=lines,
        faults=r.fault_rules(raw.get("faults"), f"{p}.faults"),
    )


def _clients(entries: list[Any], path: str) -> tuple[ClientEntry, ...]:
    ids = r.assign_ids(entries, path)
    result = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = r.mapping(raw, at, ("id", "name", "ref", "website", "inactive"), ("name",))
        result.append(ClientEntry(ident, r.text(item["name"], f"{at}.name", 255), r.optional(item, "ref", at, r.text),
                                  r.optional(item, "website", at, r.text),
                                  r.flag(item.get("inactive", False), f"{at}.inactive")))
    return tuple(result)


def _users(entries: list[Any], path: str, client_ids: set[int]) -> tuple[UserEntry, ...]:
    ids = r.assign_ids(entries, path)
    allowed = ("id", "clientId", "firstName", "surname", "email", "emails", "inactive", "title")
    result = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = r.mapping(raw, at, allowed, ("clientId", "firstName"))
        client_id = r.integer(item["clientId"], f"{at}.clientId")
        if client_id not in client_ids:
            raise r.fail(f"{at}.clientId", f"no client with id {client_id}")
        emails = r.emails_of(item, at)
        if len(emails) > 3:
            raise r.fail(f"{at}.emails", "a Halo user has at most 3 email addresses (emailaddress, email2, email3)")
        result.append(UserEntry(ident, client_id, r.text(item["firstName"], f"{at}.firstName"),
                                r.text(item.get("surname", ""), f"{at}.surname", allow_empty=True), emails,
                                r.flag(item.get("inactive", False), f"{at}.inactive"),
                                r.optional(item, "title", at, r.text)))
    return tuple(result)


def _items(entries: list[Any], path: str) -> tuple[ItemEntry, ...]:
    ids = r.assign_ids(entries, path)
    allowed = ("id", "name", "description", "price", "cost", "recurring", "inactive", "internalReference")
    result = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = r.mapping(raw, at, allowed, ("name",))
        result.append(ItemEntry(
            ident, r.text(item["name"], f"{at}.name", 255), r.optional(item, "description", at, r.text),
            r.number(item.get("price", 0), f"{at}.price"), r.number(item.get("cost", 0), f"{at}.cost"),
            r.flag(item.get("recurring", True), f"{at}.recurring"),
            r.flag(item.get("inactive", False), f"{at}.inactive"),
            r.optional(item, "internalReference", at, r.text)))
    return tuple(result)


def _contracts(entries: list[Any], path: str, client_ids: set[int]) -> tuple[ContractEntry, ...]:
    ids = r.assign_ids(entries, path)
    allowed = ("id", "clientId", "ref", "type", "startDate", "endDate", "active")
    result = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = r.mapping(raw, at, allowed, ("clientId", "ref", "startDate"))
        client_id = r.integer(item["clientId"], f"{at}.clientId")
        if client_id not in client_ids:
            raise r.fail(f"{at}.clientId", f"no client with id {client_id}")
        start = r.day(item["startDate"], f"{at}.startDate")
        end = r.optional(item, "endDate", at, r.day)
        if end is not None and end < start:
            raise r.fail(f"{at}.endDate", f"{end} is before startDate {start}")
        result.append(ContractEntry(ident, client_id, r.text(item["ref"], f"{at}.ref"),
                                    r.text(item.get("type", "Managed Services"), f"{at}.type"), start, end,
                                    r.flag(item.get("active", True), f"{at}.active")))
    return tuple(result)


def _invoices(entries: list[Any], path: str, client_ids: set[int],
              contracts: dict[int, ContractEntry]) -> tuple[InvoiceEntry, ...]:
    ids = r.assign_ids(entries, path, negative=True)
    allowed = ("id", "clientId", "reference", "period", "startDate", "endDate", "contractId", "disabled")
    result = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = r.mapping(raw, at, allowed, ("clientId", "reference", "startDate"))
        client_id = r.integer(item["clientId"], f"{at}.clientId")
        if client_id not in client_ids:
            raise r.fail(f"{at}.clientId", f"no client with id {client_id}")
        start = r.day(item["startDate"], f"{at}.startDate")
        end = r.optional(item, "endDate", at, r.day)
        if end is not None and end < start:
            raise r.fail(f"{at}.endDate", f"{end} is before startDate {start}")
        contract_id = r.optional(item, "contractId", at, r.integer)
        if contract_id is not None:
            contract = contracts.get(contract_id)
            if contract is None:
                raise r.fail(f"{at}.contractId", f"no contract with id {contract_id}")
            if contract.client_id != client_id:
                raise r.fail(f"{at}.contractId", f"contract {contract_id} belongs to client {contract.client_id}")
        result.append(InvoiceEntry(ident, client_id, r.text(item["reference"], f"{at}.reference"),
                                   r.choice(item.get("period", "Monthly"), f"{at}.period", PERIODS), start, end,
                                   contract_id, r.flag(item.get("disabled", False), f"{at}.disabled")))
    return tuple(result)


def _lines(entries: list[Any], path: str, invoice_ids: set[int], items: dict[int, ItemEntry]) -> tuple[LineEntry, ...]:
    ids = r.assign_ids(entries, path)
    allowed = ("id", "invoiceId", "itemId", "quantity", "unitPrice", "unitCost", "description", "longDescription",
               "internalReference", "oneTimeCharge", "inactive")
    result = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = r.mapping(raw, at, allowed, ("invoiceId", "itemId", "quantity"))
        invoice_id = r.integer(item["invoiceId"], f"{at}.invoiceId", minimum=None)
        if invoice_id not in invoice_ids:
            raise r.fail(f"{at}.invoiceId", f"no recurring invoice with id {invoice_id}")
        item_id = r.integer(item["itemId"], f"{at}.itemId")
        if item_id not in items:
            raise r.fail(f"{at}.itemId", f"no item with id {item_id}")
        result.append(LineEntry(
            ident, invoice_id, item_id, r.number(item["quantity"], f"{at}.quantity", Decimal(0)),
            r.optional(item, "unitPrice", at, r.number), r.optional(item, "unitCost", at, r.number),
            r.optional(item, "description", at, r.text), r.optional(item, "longDescription", at, r.text),
            r.optional(item, "internalReference", at, r.text),
            r.flag(item.get("oneTimeCharge", False), f"{at}.oneTimeCharge"),
            r.flag(item.get("inactive", False), f"{at}.inactive")))
    return tuple(result)
