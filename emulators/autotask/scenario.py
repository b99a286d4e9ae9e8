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

from emulators.autotask import readers as r

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
    raise r.fail(path, f"must be one of {', '.join(table.values())}, got {raw!r}")


def parse_scenario(section: Any) -> Scenario:
    """Validate the ``autotask:`` section (None or {} gives an empty database)."""
    raw = r.mapping(section if section is not None else {}, ROOT, _TOP_KEYS)
    p = ROOT
    users = tuple(_user(item, f"{p}.users[{i}]") for i, item in enumerate(r.listing(raw.get("users"), f"{p}.users")))
    seen_users: dict[str, int] = {}
    for index, user in enumerate(users):
        key = user.username.lower()
        if key in seen_users:
            raise r.fail(f"{p}.users[{index}].username", f"duplicate username (also {p}.users[{seen_users[key]}])")
        seen_users[key] = index

    threshold = Threshold()
    if raw.get("threshold") is not None:
        item = r.mapping(raw["threshold"], f"{p}.threshold", ("limit", "timeframeMinutes", "otherUsage"))
        threshold = Threshold(
            limit=r.integer(item.get("limit", 10000), f"{p}.threshold.limit"),
            timeframe_minutes=r.integer(item.get("timeframeMinutes", 60), f"{p}.threshold.timeframeMinutes"),
            other_usage=r.integer(item.get("otherUsage", 0), f"{p}.threshold.otherUsage", minimum=0),
        )
    categories = _categories(raw.get("contractCategories"), f"{p}.contractCategories")
    companies = _companies(r.listing(raw.get("companies"), f"{p}.companies"), f"{p}.companies")
    company_ids = {c.id for c in companies}
    contacts = _contacts(r.listing(raw.get("contacts"), f"{p}.contacts"), f"{p}.contacts", company_ids)
    services = _services(r.listing(raw.get("services"), f"{p}.services"), f"{p}.services")
    contracts = _contracts(r.listing(raw.get("contracts"), f"{p}.contracts"), f"{p}.contracts", company_ids,
                           categories)
    contract_services = _contract_services(r.listing(raw.get("contractServices"), f"{p}.contractServices"),
                                           f"{p}.contractServices", {c.id: c for c in contracts},
                                           {s.id: s for s in services})
    adjustments = _adjustments(r.listing(raw.get("adjustments"), f"{p}.adjustments"), f"{p}.adjustments",
                               {c.id: c for c in contract_services}, {c.id: c for c in contracts})
    latency = r.number(raw.get("latencySeconds", 0), f"{p}.latencySeconds", Decimal(0))
    return Scenario(
        today=r.optional(raw, "today", p, r.day),
        zone_name=r.text(raw.get("zoneName", "America East"), f"{p}.zoneName"),
        ci=r.integer(raw.get("ci", 1), f"{p}.ci", minimum=0),
        web_url=r.text(raw.get("webUrl", "https://ww1.autotask.net/"), f"{p}.webUrl"),
        users=users,
        threshold=threshold,
        thread_limit=r.integer(raw.get("threadLimit", 3), f"{p}.threadLimit"),
        latency_seconds=float(latency),
        categories=categories,
        companies=companies,
        contacts=contacts,
        services=services,
        contracts=contracts,
        contract_services=contract_services,
        adjustments=adjustments,
        faults=r.fault_rules(raw.get("faults"), f"{p}.faults"),
    )


def _user(raw: Any, path: str) -> ApiUser:
    item = r.mapping(raw, path, ("username", "secret", "integrationCode"), ("username", "secret", "integrationCode"))
    username = r.text(item["username"], f"{path}.username")
    if "@" not in username:
        raise r.fail(f"{path}.username", f"an API user's username is an email address, got {username!r}")
    return ApiUser(username, r.text(item["secret"], f"{path}.secret"),
                   r.text(item["integrationCode"], f"{path}.integrationCode"))


def _categories(value: Any, path: str) -> tuple[Category, ...]:
    if value is None:
        return (Category(1, "Standard"),)
    entries = r.listing(value, path)
    result: list[Category] = []
    names: dict[str, int] = {}
    ids = r.assign_ids([e if isinstance(e, dict) else {} for e in entries], path)
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        if isinstance(raw, str):
            name, active = r.text(raw, at, 100), True
        else:
            item = r.mapping(raw, at, ("id", "name", "active"), ("name",))
            name = r.text(item["name"], f"{at}.name", 100)
            active = r.flag(item.get("active", True), f"{at}.active")
        if name.lower() in names:
            raise r.fail(at, f"duplicate category {name!r} (also {path}[{names[name.lower()]}])")
        names[name.lower()] = index
        result.append(Category(ident, name, active))
    return tuple(result)


def _companies(entries: list[Any], path: str) -> tuple[CompanyEntry, ...]:
    ids = r.assign_ids(entries, path)
    allowed = ("id", "name", "number", "website", "active", "type")
    result = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = r.mapping(raw, at, allowed, ("name",))
        result.append(CompanyEntry(
            id=ident,
            name=r.text(item["name"], f"{at}.name", 100),
            number=r.optional(item, "number", at, lambda v, a: r.text(v, a, 50)),
            website=r.optional(item, "website", at, r.text),
            active=r.flag(item.get("active", True), f"{at}.active"),
            company_type=_label_value(item.get("type", "Customer"), f"{at}.type", COMPANY_TYPES),
        ))
    return tuple(result)


def _contacts(entries: list[Any], path: str, company_ids: set[int]) -> tuple[ContactEntry, ...]:
    ids = r.assign_ids(entries, path)
    allowed = ("id", "companyId", "firstName", "lastName", "email", "emails", "active", "title")
    result = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = r.mapping(raw, at, allowed, ("companyId", "firstName"))
        company_id = r.integer(item["companyId"], f"{at}.companyId")
        if company_id not in company_ids:
            raise r.fail(f"{at}.companyId", f"no company with id {company_id}")
        emails = r.emails_of(item, at)
        if len(emails) > 3:
            raise r.fail(f"{at}.emails", "an Autotask contact has at most 3 email addresses")
        result.append(ContactEntry(
            id=ident, company_id=company_id,
            first_name=r.text(item["firstName"], f"{at}.firstName", 50),
            last_name=r.text(item.get("lastName", ""), f"{at}.lastName", 50, allow_empty=True),
            emails=emails,
            active=r.flag(item.get("active", True), f"{at}.active"),
            title=r.optional(item, "title", at, r.text),
        ))
    return tuple(result)


def _services(entries: list[Any], path: str) -> tuple[ServiceEntry, ...]:
    ids = r.assign_ids(entries, path)
    allowed = ("id", "name", "description", "invoiceDescription", "unitPrice", "unitCost", "active", "periodType")
    result = []
    names: dict[str, str] = {}
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = r.mapping(raw, at, allowed, ("name",))
        name = r.text(item["name"], f"{at}.name", 1000)
        if name.lower() in names:
            raise r.fail(f"{at}.name", f"duplicate service name {name!r} (also {names[name.lower()]})")
        names[name.lower()] = at
        result.append(ServiceEntry(
            id=ident, name=name,
            description=r.optional(item, "description", at, lambda v, a: r.text(v, a, 400)),
            invoice_description=r.optional(item, "invoiceDescription", at,
                                           lambda v, a: r.text(v, a, INVOICE_DESCRIPTION_MAX)),
            unit_price=r.number(item.get("unitPrice", 0), f"{at}.unitPrice"),
            unit_cost=r.number(item.get("unitCost", 0), f"{at}.unitCost"),
            active=r.flag(item.get("active", True), f"{at}.active"),
            period_type=_label_value(item.get("periodType", "Monthly"), f"{at}.periodType", PERIOD_TYPES),
        ))
    return tuple(result)


def _contracts(entries: list[Any], path: str, company_ids: set[int],
               categories: tuple[Category, ...]) -> tuple[ContractEntry, ...]:
    ids = r.assign_ids(entries, path)
    allowed = ("id", "name", "companyId", "startDate", "endDate", "periodType", "category", "status", "type",
               "number")
    by_name = {c.name.lower(): c.id for c in categories}
    result = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = r.mapping(raw, at, allowed, ("name", "companyId", "startDate", "endDate"))
        company_id = r.integer(item["companyId"], f"{at}.companyId")
        if company_id not in company_ids:
            raise r.fail(f"{at}.companyId", f"no company with id {company_id}")
        start = r.day(item["startDate"], f"{at}.startDate")
        end = r.day(item["endDate"], f"{at}.endDate")
        if end < start:
            raise r.fail(f"{at}.endDate", f"{end} is before startDate {start}")
        category_id = None
        if item.get("category") is not None:
            name = r.text(item["category"], f"{at}.category")
            category_id = by_name.get(name.lower())
            if category_id is None:
                raise r.fail(f"{at}.category", f"no contract category {name!r} (known: "
                             f"{', '.join(c.name for c in categories)})")
        type_name = r.choice(item.get("type", "RecurringService"), f"{at}.type", CONTRACT_TYPE_NAMES)
        result.append(ContractEntry(
            id=ident, name=r.text(item["name"], f"{at}.name", 100), company_id=company_id,
            start_date=start, end_date=end,
            period_type=_label_value(item.get("periodType", "Monthly"), f"{at}.periodType", PERIOD_TYPES),
            category_id=category_id,
            status=CONTRACT_STATUSES[r.choice(item.get("status", "Active"), f"{at}.status", CONTRACT_STATUSES)],
            contract_type=CONTRACT_TYPE_NAMES[type_name],
            number=r.optional(item, "number", at, lambda v, a: r.text(v, a, 50)),
        ))
    return tuple(result)


def _contract_services(entries: list[Any], path: str, contracts: dict[int, ContractEntry],
                       services: dict[int, ServiceEntry]) -> tuple[ContractServiceEntry, ...]:
    ids = r.assign_ids(entries, path)
    allowed = ("id", "contractId", "serviceId", "units", "effectiveDate", "unitPrice", "unitCost",
               "invoiceDescription", "internalDescription")
    result = []
    pairs: dict[tuple[int, int], str] = {}
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = r.mapping(raw, at, allowed, ("contractId", "serviceId"))
        contract_id = r.integer(item["contractId"], f"{at}.contractId")
        contract = contracts.get(contract_id)
        if contract is None:
            raise r.fail(f"{at}.contractId", f"no contract with id {contract_id}")
        if contract.contract_type != RECURRING_SERVICE:
            raise r.fail(f"{at}.contractId", f"contract {contract_id} is not a Recurring Service contract")
        service_id = r.integer(item["serviceId"], f"{at}.serviceId")
        if service_id not in services:
            raise r.fail(f"{at}.serviceId", f"no service with id {service_id}")
        if (contract_id, service_id) in pairs:
            raise r.fail(f"{at}.serviceId", f"service {service_id} is already on contract {contract_id} "
                         f"({pairs[(contract_id, service_id)]})")
        pairs[(contract_id, service_id)] = at
        effective = r.optional(item, "effectiveDate", at, r.day)
        if effective is not None and not contract.start_date <= effective <= contract.end_date:
            raise r.fail(f"{at}.effectiveDate", f"{effective} is outside contract {contract_id} "
                         f"({contract.start_date}..{contract.end_date})")
        internal = r.optional(item, "internalDescription", at,
                              lambda v, a: r.text(v, a, INTERNAL_DESCRIPTION_MAX))
        result.append(ContractServiceEntry(
            id=ident, contract_id=contract_id, service_id=service_id,
            units=r.integer(item.get("units", 0), f"{at}.units", minimum=0),
            effective_date=effective,
            unit_price=r.optional(item, "unitPrice", at, r.number),
            unit_cost=r.optional(item, "unitCost", at, r.number),
            invoice_description=r.optional(item, "invoiceDescription", at,
                                           lambda v, a: r.text(v, a, INVOICE_DESCRIPTION_MAX, allow_empty=True)),
            internal_description=internal,
        ))
    return tuple(result)


def _adjustments(entries: list[Any], path: str, contract_services: dict[int, ContractServiceEntry],
                 contracts: dict[int, ContractEntry]) -> tuple[AdjustmentEntry, ...]:
    result = []
    for index, raw in enumerate(entries):
        at = f"{path}[{index}]"
        item = r.mapping(raw, at, ("contractServiceId", "effectiveDate", "unitChange"),
                         ("contractServiceId", "effectiveDate", "unitChange"))
        service_id = r.integer(item["contractServiceId"], f"{at}.contractServiceId")
        entry = contract_services.get(service_id)
        if entry is None:
            raise r.fail(f"{at}.contractServiceId", f"no contract service with id {service_id}")
        contract = contracts[entry.contract_id]
        effective = r.day(item["effectiveDate"], f"{at}.effectiveDate")
        if not contract.start_date <= effective <= contract.end_date:
            raise r.fail(f"{at}.effectiveDate", f"{effective} is outside contract {contract.id} "
                         f"({contract.start_date}..{contract.end_date})")
        change = r.integer(item["unitChange"], f"{at}.unitChange", minimum=None)
        if change == 0:
            raise r.fail(f"{at}.unitChange", "must not be 0")
        result.append(AdjustmentEntry(service_id, effective, change))
    return tuple(result)

