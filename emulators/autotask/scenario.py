"""The ``autotask:`` section of a scenario file, validated strictly.

Every problem raises ``EmulatorError`` naming the entry and key, e.g.
``autotask.contractServices[3].units: must be an integer, got 'ten'``. Unknown keys are errors,
so a misspelt key never silently falls back to a default. Ids may be omitted: they are then
assigned in file order after the largest id given (deterministic).

See docs/emulators.md ("Autotask emulator") for every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from emulators.scenario_reader import Node, Unique, assign_ids, day, fail, listing, number, text

ROOT = "autotask"

# Picklists of a fresh Autotask database as the emulator serves them (value -> label).
CONTRACT_TYPES = {1: "Time & Materials", 3: "Fixed Price", 4: "Block Hours", 6: "Retainer", 7: "Recurring Service",
                  8: "Per Ticket"}
CONTRACT_TYPE_NAMES = {"TimeAndMaterials": 1, "FixedPrice": 3, "BlockHours": 4, "Retainer": 6,
                       "RecurringService": 7, "PerTicket": 8}
PERIOD_TYPES = {1: "Monthly", 2: "Quarterly", 3: "Semi-Annual", 4: "Yearly"}
PERIOD_MONTHS = {1: 1, 2: 3, 3: 6, 4: 12}
COMPANY_TYPES = {1: "Customer", 2: "Lead", 3: "Prospect", 4: "Dead", 6: "Cancelation", 7: "Vendor", 8: "Partner"}
CONTRACT_STATUSES = {"Active": 1, "Inactive": 0}
RECURRING_SERVICE = 7

INTERNAL_DESCRIPTION_MAX = 100
# A Service's billing code (Admin > Billing codes: Material / Service codes), which carries its tax
# category; every contract service of the service bills with it.
DEFAULT_BILLING_CODE = 29682801
INVOICE_DESCRIPTION_MAX = 1000


@dataclass(frozen=True)
class ApiUser:
    username: str
    secret: str
    integration_code: str


@dataclass(frozen=True)
class Threshold:
    limit: int = 10000
    timeframe_minutes: int = 60
    other_usage: int = 0


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    active: bool = True


@dataclass(frozen=True)
class CompanyEntry:
    id: int
    name: str
    number: str | None = None
    website: str | None = None
    active: bool = True
    company_type: int = 1


@dataclass(frozen=True)
class ContactEntry:
    id: int
    company_id: int
    first_name: str
    last_name: str = ""
    emails: tuple[str, ...] = ()
    active: bool = True
    title: str | None = None
    phone: str | None = None
    mobile: str | None = None


@dataclass(frozen=True)
class ServiceEntry:
    id: int
    name: str
    description: str | None = None
    invoice_description: str | None = None
    unit_price: Decimal = Decimal(0)
    unit_cost: Decimal = Decimal(0)
    active: bool = True
    period_type: int = 1
    billing_code_id: int = DEFAULT_BILLING_CODE


@dataclass(frozen=True)
class ContractEntry:
    id: int
    name: str
    company_id: int
    start_date: date
    end_date: date
    period_type: int = 1
    category_id: int | None = None
    status: int = 1
    contract_type: int = RECURRING_SERVICE
    number: str | None = None


@dataclass(frozen=True)
class ContractServiceEntry:
    id: int
    contract_id: int
    service_id: int
    units: int = 0
    effective_date: date | None = None  # None: the contract's start
    unit_price: Decimal | None = None  # None: the service's
    adjusted_price: Decimal | None = None  # None: billed at the unit price
    unit_cost: Decimal | None = None
    invoice_description: str | None = None
    internal_description: str | None = None


@dataclass(frozen=True)
class AdjustmentEntry:
    contract_service_id: int
    effective_date: date
    unit_change: int


@dataclass(frozen=True)
class Scenario:
    today: date | None = None
    zone_name: str = "America East"
    ci: int = 1
    web_url: str = "https://ww1.autotask.net/"
    users: tuple[ApiUser, ...] = ()
    threshold: Threshold = Threshold()
    thread_limit: int = 3
    latency_seconds: float = 0.0
    categories: tuple[Category, ...] = (Category(1, "Standard"),)
    companies: tuple[CompanyEntry, ...] = ()
    contacts: tuple[ContactEntry, ...] = ()
    services: tuple[ServiceEntry, ...] = ()
    contracts: tuple[ContractEntry, ...] = ()
    contract_services: tuple[ContractServiceEntry, ...] = ()
    adjustments: tuple[AdjustmentEntry, ...] = ()
    faults: tuple[dict[str, Any], ...] = field(default_factory=tuple)


_TOP_KEYS = ("today", "zoneName", "ci", "webUrl", "users", "threshold", "threadLimit", "latencySeconds",
             "contractCategories", "companies", "contacts", "services", "contracts", "contractServices",
             "adjustments", "faults")


def _label_value(raw: Any, path: str, table: dict[int, str]) -> int:
    """A picklist given by its label (``Monthly``) or its value (``1``)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw in table:
            return raw
    elif isinstance(raw, str):
        for value, label in table.items():
            if label.lower() == raw.strip().lower():
                return value
    raise fail(path, f"must be one of {', '.join(table.values())}, got {raw!r}")


def parse_scenario(section: Any) -> Scenario:
    """Validate the ``autotask:`` section (None or {} gives an empty database)."""
    root = Node.section(section, ROOT, _TOP_KEYS)
    users = tuple(_user(item, f"{root.at('users')}[{i}]") for i, item in enumerate(root.listing("users")))
    seen_users: dict[str, int] = {}
    for index, user in enumerate(users):
        key = user.username.lower()
        if key in seen_users:
            raise fail(f"{root.at('users')}[{index}].username",
                       f"duplicate username (also {root.at('users')}[{seen_users[key]}])")
        seen_users[key] = index

    threshold = Threshold()
    if root.has("threshold"):
        item = Node(root.raw["threshold"], root.at("threshold"), ("limit", "timeframeMinutes", "otherUsage"))
        threshold = Threshold(
            limit=item.integer("limit", 10000),
            timeframe_minutes=item.integer("timeframeMinutes", 60),
            other_usage=item.integer("otherUsage", 0, minimum=0),
        )
    categories = _categories(root.raw.get("contractCategories"), root.at("contractCategories"))
    companies = _companies(root)
    company_ids = {c.id for c in companies}
    contacts = _contacts(root, company_ids)
    services = _services(root)
    contracts = _contracts(root, company_ids, categories)
    contract_services = _contract_services(root, {c.id: c for c in contracts}, {s.id: s for s in services})
    adjustments = _adjustments(root, {c.id: c for c in contract_services}, {c.id: c for c in contracts})
    latency = root.number("latencySeconds", 0, Decimal(0))
    return Scenario(
        today=root.optional("today", day),
        zone_name=root.text("zoneName", "America East"),
        ci=root.integer("ci", 1, minimum=0),
        web_url=root.text("webUrl", "https://ww1.autotask.net/"),
        users=users,
        threshold=threshold,
        thread_limit=root.integer("threadLimit", 3),
        latency_seconds=float(latency),
        categories=categories,
        companies=companies,
        contacts=contacts,
        services=services,
        contracts=contracts,
        contract_services=contract_services,
        adjustments=adjustments,
        faults=root.faults(),
    )


def _user(raw: Any, path: str) -> ApiUser:
    item = Node(raw, path, ("username", "secret", "integrationCode"), ("username", "secret", "integrationCode"))
    username = item.text("username")
    if "@" not in username:
        raise fail(item.at("username"), f"an API user's username is an email address, got {username!r}")
    return ApiUser(username, item.text("secret"), item.text("integrationCode"))


def _categories(value: Any, path: str) -> tuple[Category, ...]:
    if value is None:
        return (Category(1, "Standard"),)
    entries = listing(value, path)
    result: list[Category] = []
    names = Unique("category")
    ids = assign_ids([e if isinstance(e, dict) else {} for e in entries], path)
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        if isinstance(raw, str):
            name, active = text(raw, at, 100), True
        else:
            item = Node(raw, at, ("id", "name", "active"), ("name",))
            name = item.text("name", max_length=100)
            active = item.flag("active", True)
        names.add(name, at, at)
        result.append(Category(ident, name, active))
    return tuple(result)


def _companies(root: Node) -> tuple[CompanyEntry, ...]:
    allowed = ("id", "name", "number", "website", "active", "type")
    result = []
    for ident, item in root.entries("companies", allowed, ("name",)):
        result.append(CompanyEntry(
            id=ident,
            name=item.text("name", max_length=100),
            number=item.optional("number", text, 50),
            website=item.optional("website", text),
            active=item.flag("active", True),
            company_type=_label_value(item.raw.get("type", "Customer"), item.at("type"), COMPANY_TYPES),
        ))
    return tuple(result)


def _contacts(root: Node, company_ids: set[int]) -> tuple[ContactEntry, ...]:
    allowed = ("id", "companyId", "firstName", "lastName", "email", "emails", "active", "title", "phone", "mobile")
    result = []
    for ident, item in root.entries("contacts", allowed, ("companyId", "firstName")):
        company_id = item.reference("companyId", company_ids, "company")
        emails = item.emails()
        if len(emails) > 3:
            raise fail(item.at("emails"), "an Autotask contact has at most 3 email addresses")
        result.append(ContactEntry(
            id=ident, company_id=company_id,
            first_name=item.text("firstName", max_length=50),
            last_name=item.text("lastName", "", max_length=50, allow_empty=True),
            emails=emails,
            active=item.flag("active", True),
            title=item.optional("title", text),
            phone=item.optional("phone", text),
            mobile=item.optional("mobile", text),
        ))
    return tuple(result)


def _services(root: Node) -> tuple[ServiceEntry, ...]:
    allowed = ("id", "name", "description", "invoiceDescription", "unitPrice", "unitCost", "active", "periodType",
               "billingCodeId")
    result = []
    names = Unique("service name")
    for ident, item in root.entries("services", allowed, ("name",)):
        name = item.text("name", max_length=1000)
        names.add(name, item.at("name"), item.path)
        result.append(ServiceEntry(
            id=ident, name=name,
            description=item.optional("description", text, 400),
            invoice_description=item.optional("invoiceDescription", text, INVOICE_DESCRIPTION_MAX),
            unit_price=item.number("unitPrice", 0),
            unit_cost=item.number("unitCost", 0),
            active=item.flag("active", True),
            period_type=_label_value(item.raw.get("periodType", "Monthly"), item.at("periodType"), PERIOD_TYPES),
            billing_code_id=item.integer("billingCodeId", DEFAULT_BILLING_CODE),
        ))
    return tuple(result)


def _contracts(root: Node, company_ids: set[int], categories: tuple[Category, ...]) -> tuple[ContractEntry, ...]:
    allowed = ("id", "name", "companyId", "startDate", "endDate", "periodType", "category", "status", "type",
               "number")
    by_name = {c.name.lower(): c.id for c in categories}
    result = []
    for ident, item in root.entries("contracts", allowed, ("name", "companyId", "startDate", "endDate")):
        company_id = item.reference("companyId", company_ids, "company")
        start = item.day("startDate")
        end = item.day("endDate")
        item.ordered("startDate", start, "endDate", end)
        category_id = None
        if item.has("category"):
            name = item.text("category")
            category_id = by_name.get(name.lower())
            if category_id is None:
                raise fail(item.at("category"), f"no contract category {name!r} (known: "
                           f"{', '.join(c.name for c in categories)})")
        type_name = item.choice("type", CONTRACT_TYPE_NAMES, "RecurringService")
        result.append(ContractEntry(
            id=ident, name=item.text("name", max_length=100), company_id=company_id,
            start_date=start, end_date=end,
            period_type=_label_value(item.raw.get("periodType", "Monthly"), item.at("periodType"), PERIOD_TYPES),
            category_id=category_id,
            status=CONTRACT_STATUSES[item.choice("status", CONTRACT_STATUSES, "Active")],
            contract_type=CONTRACT_TYPE_NAMES[type_name],
            number=item.optional("number", text, 50),
        ))
    return tuple(result)


def _contract_services(root: Node, contracts: dict[int, ContractEntry],
                       services: dict[int, ServiceEntry]) -> tuple[ContractServiceEntry, ...]:
    allowed = ("id", "contractId", "serviceId", "units", "effectiveDate", "unitPrice", "adjustedPrice", "unitCost",
               "invoiceDescription", "internalDescription")
    result = []
    pairs: dict[tuple[int, int], str] = {}
    for ident, item in root.entries("contractServices", allowed, ("contractId", "serviceId")):
        contract_id = item.reference("contractId", contracts, "contract")
        contract = contracts[contract_id]
        if contract.contract_type != RECURRING_SERVICE:
            raise fail(item.at("contractId"), f"contract {contract_id} is not a Recurring Service contract")
        service_id = item.reference("serviceId", services, "service")
        if (contract_id, service_id) in pairs:
            raise fail(item.at("serviceId"), f"service {service_id} is already on contract {contract_id} "
                       f"({pairs[(contract_id, service_id)]})")
        pairs[(contract_id, service_id)] = item.path
        effective = item.optional("effectiveDate", day)
        if effective is not None and not contract.start_date <= effective <= contract.end_date:
            raise fail(item.at("effectiveDate"), f"{effective} is outside contract {contract_id} "
                       f"({contract.start_date}..{contract.end_date})")
        internal = item.optional("internalDescription", text, INTERNAL_DESCRIPTION_MAX)
        result.append(ContractServiceEntry(
            id=ident, contract_id=contract_id, service_id=service_id,
            units=item.integer("units", 0, minimum=0),
            effective_date=effective,
            unit_price=item.optional("unitPrice", number),
            adjusted_price=item.optional("adjustedPrice", number),
            unit_cost=item.optional("unitCost", number),
            invoice_description=item.optional("invoiceDescription", text, INVOICE_DESCRIPTION_MAX, allow_empty=True),
            internal_description=internal,
        ))
    return tuple(result)


def _adjustments(root: Node, contract_services: dict[int, ContractServiceEntry],
                 contracts: dict[int, ContractEntry]) -> tuple[AdjustmentEntry, ...]:
    keys = ("contractServiceId", "effectiveDate", "unitChange")
    result = []
    for index, raw in enumerate(root.listing("adjustments")):
        item = Node(raw, f"{root.at('adjustments')}[{index}]", keys, keys)
        service_id = item.reference("contractServiceId", contract_services, "contract service")
        entry = contract_services[service_id]
        contract = contracts[entry.contract_id]
        effective = item.day("effectiveDate")
        if not contract.start_date <= effective <= contract.end_date:
            raise fail(item.at("effectiveDate"), f"{effective} is outside contract {contract.id} "
                       f"({contract.start_date}..{contract.end_date})")
        change = item.integer("unitChange", minimum=None)
        if change == 0:
            raise fail(item.at("unitChange"), "must not be 0")
        result.append(AdjustmentEntry(service_id, effective, change))
    return tuple(result)
