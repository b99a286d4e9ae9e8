"""The ``connectwise:`` section of a scenario file, validated strictly.

Every problem raises ``EmulatorError`` naming the entry and key, e.g.
``connectwise.additions[3].quantity: must be a number, got 'ten'``. Unknown keys are errors
too, so a misspelt key never silently falls back to a default. Ids may be omitted: they are
then assigned in file order after the largest id given (deterministic).

See docs/emulators.md ("ConnectWise PSA emulator") for every key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from emulators.base import EmulatorError, FaultRule

ROOT = "connectwise"
BILL_CUSTOMER = ("Billable", "DoNotBill", "NoCharge")
PERIOD_TYPES = ("Current", "Future", "Both", "Undefined")
INVOICING_CYCLES = ("ContractYear", "CalendarYear")
SERIAL_NUMBER_MAX = 50
INVOICE_DESCRIPTION_MAX = 6000

T = TypeVar("T")


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
    taxable: bool = False
    sequence_number: Decimal | None = None
    prorate_current_period: bool = False


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


# --------------------------------------------------------------------------- value readers


def _fail(path: str, message: str) -> EmulatorError:
    return EmulatorError(f"{path}: {message}")


def _mapping(value: Any, path: str, allowed: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"must be a mapping, got {value!r}")
    allowed_set = set(allowed)
    for key in value:
        if key not in allowed_set:
            raise _fail(f"{path}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed_set))})")
    for key in required:
        if value.get(key) is None:
            raise _fail(f"{path}.{key}", "is required")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(path, f"must be a list, got {value!r}")
    return value


def _int(value: Any, path: str, minimum: int | None = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise _fail(path, f"must be at least {minimum}, got {value}")
    return value


def _str(value: Any, path: str, max_length: int | None = None, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"must be a string, got {value!r}")
    if not allow_empty and not value.strip():
        raise _fail(path, "must not be empty")
    if max_length is not None and len(value) > max_length:
        raise _fail(path, f"must be at most {max_length} characters, got {len(value)}")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"must be true or false, got {value!r}")
    return value


def _number(value: Any, path: str, minimum: Decimal | None = None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise _fail(path, f"must be a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise _fail(path, f"must be a number, got {value!r}") from exc
    if not number.is_finite():
        raise _fail(path, f"must be a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise _fail(path, f"must be at least {minimum}, got {value}")
    return number


def _date(value: Any, path: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
        except ValueError:
            pass
    raise _fail(path, f"must be a date like 2026-01-01, got {value!r}")


def _choice(value: Any, path: str, choices: Iterable[str]) -> str:
    options = tuple(choices)
    if value not in options:
        raise _fail(path, f"must be one of {', '.join(options)}, got {value!r}")
    return str(value)


def _opt(raw: dict[str, Any], key: str, path: str, reader: Callable[[Any, str], T]) -> T | None:
    value = raw.get(key)
    return None if value is None else reader(value, f"{path}.{key}")


def _assign_ids(entries: list[Any], path: str) -> list[int]:
    """Explicit ids are kept (and must be unique); missing ones follow the largest, in order."""
    explicit: dict[int, int] = {}
    for index, raw in enumerate(entries):
        if isinstance(raw, dict) and raw.get("id") is not None:
            ident = _int(raw["id"], f"{path}[{index}].id")
            if ident in explicit:
                raise _fail(f"{path}[{index}].id", f"duplicate id {ident} (also {path}[{explicit[ident]}])")
            explicit[ident] = index
    following = max(explicit, default=0) + 1
    ids: list[int] = []
    for raw in entries:
        if isinstance(raw, dict) and raw.get("id") is not None:
            ids.append(int(raw["id"]))
        else:
            ids.append(following)
            following += 1
    return ids


# --------------------------------------------------------------------------- the section

_TOP_KEYS = (
    "codebase", "companyId", "companyName", "versionCode", "cloud", "requireClientId", "today",
    "member", "credentials", "companies", "contacts", "catalog", "agreementTypes", "agreements",
    "additions", "rateLimit", "faults",
)


def parse_scenario(section: Any) -> Scenario:
    """Validate the ``connectwise:`` section (None or {} gives an empty PSA)."""
    if section is None:
        section = {}
    raw = _mapping(section, ROOT, _TOP_KEYS)
    p = ROOT

    codebase = raw.get("codebase", "v4_6_release")
    codebase = _str(codebase, f"{p}.codebase").strip("/")
    if not re.fullmatch(r"v[0-9A-Za-z_.]+", codebase):
        raise _fail(f"{p}.codebase", f"must look like v4_6_release or v2025_1, got {codebase!r}")
    company_id = _str(raw.get("companyId", "seatsyncmsp"), f"{p}.companyId")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", company_id):
        raise _fail(f"{p}.companyId", f"must be letters, digits, '.', '_' or '-', got {company_id!r}")

    credentials = tuple(_credential(item, f"{p}.credentials[{i}]")
                        for i, item in enumerate(_list(raw.get("credentials"), f"{p}.credentials")))
    companies = _companies(_list(raw.get("companies"), f"{p}.companies"), f"{p}.companies")
    company_ids = {c.id for c in companies}
    contacts = _contacts(_list(raw.get("contacts"), f"{p}.contacts"), f"{p}.contacts", company_ids)
    catalog = _catalog(_list(raw.get("catalog"), f"{p}.catalog"), f"{p}.catalog")
    types = _agreement_types(_list(raw.get("agreementTypes"), f"{p}.agreementTypes"), f"{p}.agreementTypes")
    agreements = _agreements(_list(raw.get("agreements"), f"{p}.agreements"), f"{p}.agreements",
                             company_ids, {t.id for t in types}, {c.id: c.company_id for c in contacts})
    additions = _additions(_list(raw.get("additions"), f"{p}.additions"), f"{p}.additions",
                           {a.id: a for a in agreements}, catalog)

    rate_limit = None
    if raw.get("rateLimit") is not None:
        limit = _mapping(raw["rateLimit"], f"{p}.rateLimit", ("requestsPerMinute",), ("requestsPerMinute",))
        rate_limit = RateLimit(_int(limit["requestsPerMinute"], f"{p}.rateLimit.requestsPerMinute"))

    faults = _list(raw.get("faults"), f"{p}.faults")
    for index, rule in enumerate(faults):
        try:
            FaultRule.from_dict(rule)
        except EmulatorError as exc:
            raise _fail(f"{p}.faults[{index}]", str(exc)) from exc

    return Scenario(
        codebase=codebase,
        company_id=company_id,
        company_name=_str(raw.get("companyName", "SeatSync MSP"), f"{p}.companyName"),
        version_code=_str(raw.get("versionCode", "v2025.1"), f"{p}.versionCode"),
        cloud=_bool(raw.get("cloud", False), f"{p}.cloud"),
        require_client_id=_bool(raw.get("requireClientId", True), f"{p}.requireClientId"),
        today=_opt(raw, "today", p, _date),
        member=_str(raw.get("member", "SeatSyncAPI"), f"{p}.member"),
        credentials=credentials,
        companies=companies,
        contacts=contacts,
        catalog=catalog,
        agreement_types=types,
        agreements=agreements,
        additions=additions,
        rate_limit=rate_limit,
        faults=tuple(faults),
    )


def _credential(raw: Any, path: str) -> Credential:
    item = _mapping(raw, path, ("publicKey", "privateKey", "clientId"), ("publicKey", "privateKey"))
    client_id = _opt(item, "clientId", path, _str)
    if client_id is not None and not re.fullmatch(r"[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}", client_id):
        raise _fail(f"{path}.clientId", f"must be a GUID, got {client_id!r}")
    return Credential(_str(item["publicKey"], f"{path}.publicKey"),
                      _str(item["privateKey"], f"{path}.privateKey"), client_id)


def _companies(entries: list[Any], path: str) -> tuple[CompanyEntry, ...]:
    ids = _assign_ids(entries, path)
    allowed = ("id", "identifier", "name", "website", "status", "phoneNumber", "addressLine1", "city",
               "state", "zip", "country", "deleted", "types")
    result: list[CompanyEntry] = []
    identifiers: dict[str, str] = {}
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = _mapping(raw, at, allowed, ("identifier", "name"))
        identifier = _str(item["identifier"], f"{at}.identifier", 30)
        if identifier.lower() in identifiers:
            first = identifiers[identifier.lower()]
            raise _fail(f"{at}.identifier", f"duplicate identifier {identifier!r} (also {first})")
        identifiers[identifier.lower()] = at
        types = item.get("types", ["Client"])
        result.append(CompanyEntry(
            id=ident,
            identifier=identifier,
            name=_str(item["name"], f"{at}.name", 50),
            website=_opt(item, "website", at, _str),
            status=_str(item.get("status", "Active"), f"{at}.status"),
            phone_number=_opt(item, "phoneNumber", at, _str),
            address_line1=_opt(item, "addressLine1", at, _str),
            city=_opt(item, "city", at, _str),
            state=_opt(item, "state", at, _str),
            zip=_opt(item, "zip", at, _str),
            country=_opt(item, "country", at, _str),
            deleted=_bool(item.get("deleted", False), f"{at}.deleted"),
            types=tuple(_str(t, f"{at}.types[{i}]") for i, t in enumerate(_list(types, f"{at}.types"))),
        ))
    return tuple(result)


def _contacts(entries: list[Any], path: str, company_ids: set[int]) -> tuple[ContactEntry, ...]:
    ids = _assign_ids(entries, path)
    allowed = ("id", "companyId", "firstName", "lastName", "email", "emails", "phone", "title", "inactive")
    result: list[ContactEntry] = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = _mapping(raw, at, allowed, ("companyId", "firstName"))
        company_id = _int(item["companyId"], f"{at}.companyId")
        if company_id not in company_ids:
            raise _fail(f"{at}.companyId", f"no company with id {company_id}")
        emails = [_str(item["email"], f"{at}.email")] if item.get("email") is not None else []
        emails += [_str(e, f"{at}.emails[{i}]") for i, e in enumerate(_list(item.get("emails"), f"{at}.emails"))]
        for i, email in enumerate(emails):
            if "@" not in email:
                raise _fail(f"{at}.email" if i == 0 and item.get("email") else f"{at}.emails",
                            f"{email!r} is not an email address")
        result.append(ContactEntry(
            id=ident,
            company_id=company_id,
            first_name=_str(item["firstName"], f"{at}.firstName", 30),
            last_name=_str(item.get("lastName", ""), f"{at}.lastName", 30, allow_empty=True),
            emails=tuple(emails),
            phone=_opt(item, "phone", at, _str),
            title=_opt(item, "title", at, _str),
            inactive=_bool(item.get("inactive", False), f"{at}.inactive"),
        ))
    return tuple(result)


def _catalog(entries: list[Any], path: str) -> tuple[CatalogEntry, ...]:
    ids = _assign_ids(entries, path)
    allowed = ("id", "identifier", "description", "customerDescription", "price", "cost", "inactive",
               "productClass", "taxable", "subcategory", "uom")
    result: list[CatalogEntry] = []
    identifiers: dict[str, str] = {}
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = _mapping(raw, at, allowed, ("identifier", "description"))
        identifier = _str(item["identifier"], f"{at}.identifier", 25)
        if identifier.lower() in identifiers:
            first = identifiers[identifier.lower()]
            raise _fail(f"{at}.identifier", f"duplicate identifier {identifier!r} (also {first})")
        identifiers[identifier.lower()] = at
        result.append(CatalogEntry(
            id=ident,
            identifier=identifier,
            description=_str(item["description"], f"{at}.description", 60),
            price=_number(item.get("price", 0), f"{at}.price", Decimal(0)),
            cost=_number(item.get("cost", 0), f"{at}.cost", Decimal(0)),
            customer_description=_opt(item, "customerDescription", at, _str),
            inactive=_bool(item.get("inactive", False), f"{at}.inactive"),
            product_class=_choice(item.get("productClass", "Agreement"), f"{at}.productClass",
                                  ("Agreement", "Bundle", "Inventory", "NonInventory", "Service")),
            taxable=_bool(item.get("taxable", False), f"{at}.taxable"),
            subcategory=_opt(item, "subcategory", at, _str),
            uom=_str(item.get("uom", "Each"), f"{at}.uom"),
        ))
    return tuple(result)


def _agreement_types(entries: list[Any], path: str) -> tuple[AgreementTypeEntry, ...]:
    ids = _assign_ids(entries, path)
    allowed = ("id", "name", "prorate", "billingCycle", "inactive", "default")
    result: list[AgreementTypeEntry] = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = _mapping(raw, at, allowed, ("name",))
        result.append(AgreementTypeEntry(
            id=ident,
            name=_str(item["name"], f"{at}.name", 50),
            prorate=_bool(item.get("prorate", False), f"{at}.prorate"),
            # absent: Monthly; an explicit null: no billing cycle (a type that does not recur)
            billing_cycle=(_opt(item, "billingCycle", at, _str) if "billingCycle" in item else "Monthly"),
            inactive=_bool(item.get("inactive", False), f"{at}.inactive"),
            default=_bool(item.get("default", False), f"{at}.default"),
        ))
    return tuple(result)


def _agreements(entries: list[Any], path: str, company_ids: set[int], type_ids: set[int],
                contact_companies: dict[int, int]) -> tuple[AgreementEntry, ...]:
    ids = _assign_ids(entries, path)
    allowed = ("id", "name", "companyId", "typeId", "prorate", "billingCycle", "startDate", "endDate",
               "cancelled", "dateCancelled", "reasonCancelled", "contactId", "invoiceProratedAdditions",
               "periodType", "invoicingCycle", "billingTerms", "billAmount", "taxable", "customerPO",
               "parentAgreementId")
    result: list[AgreementEntry] = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = _mapping(raw, at, allowed, ("name", "companyId", "typeId", "startDate"))
        company_id = _int(item["companyId"], f"{at}.companyId")
        if company_id not in company_ids:
            raise _fail(f"{at}.companyId", f"no company with id {company_id}")
        type_id = _int(item["typeId"], f"{at}.typeId")
        if type_id not in type_ids:
            raise _fail(f"{at}.typeId", f"no agreement type with id {type_id}")
        contact_id = _opt(item, "contactId", at, _int)
        if contact_id is not None and contact_companies.get(contact_id) != company_id:
            raise _fail(f"{at}.contactId", f"no contact {contact_id} in company {company_id}")
        start = _date(item["startDate"], f"{at}.startDate")
        end = _opt(item, "endDate", at, _date)
        if end is not None and end < start:
            raise _fail(f"{at}.endDate", f"{end} is before startDate {start}")
        cancelled = _bool(item.get("cancelled", False), f"{at}.cancelled")
        date_cancelled = _opt(item, "dateCancelled", at, _date)
        if date_cancelled is not None and not cancelled:
            raise _fail(f"{at}.dateCancelled", "is only allowed with cancelled: true")
        result.append(AgreementEntry(
            id=ident,
            name=_str(item["name"], f"{at}.name", 100),
            company_id=company_id,
            type_id=type_id,
            start_date=start,
            prorate=_opt(item, "prorate", at, _bool),
            billing_cycle=_opt(item, "billingCycle", at, _str),
            end_date=end,
            cancelled=cancelled,
            date_cancelled=date_cancelled,
            reason_cancelled=_opt(item, "reasonCancelled", at, _str),
            contact_id=contact_id,
            invoice_prorated_additions=_bool(item.get("invoiceProratedAdditions", False),
                                             f"{at}.invoiceProratedAdditions"),
            period_type=_choice(item.get("periodType", "Current"), f"{at}.periodType", PERIOD_TYPES),
            invoicing_cycle=_choice(item.get("invoicingCycle", "ContractYear"), f"{at}.invoicingCycle",
                                    INVOICING_CYCLES),
            billing_terms=_str(item.get("billingTerms", "Net 30"), f"{at}.billingTerms"),
            bill_amount=_number(item.get("billAmount", 0), f"{at}.billAmount"),
            taxable=_bool(item.get("taxable", False), f"{at}.taxable"),
            customer_po=_opt(item, "customerPO", at, _str),
            parent_agreement_id=_opt(item, "parentAgreementId", at, _int),
        ))
    known = {a.id for a in result}
    for index, agreement in enumerate(result):
        if agreement.parent_agreement_id is not None and agreement.parent_agreement_id not in known:
            raise _fail(f"{path}[{index}].parentAgreementId", f"no agreement with id {agreement.parent_agreement_id}")
    return tuple(result)


def _additions(entries: list[Any], path: str, agreements: dict[int, AgreementEntry],
               catalog: tuple[CatalogEntry, ...]) -> tuple[AdditionEntry, ...]:
    ids = _assign_ids(entries, path)
    by_identifier = {c.identifier.lower(): c for c in catalog}
    by_id = {c.id: c for c in catalog}
    allowed = ("id", "agreementId", "productId", "productIdentifier", "quantity", "billCustomer", "unitPrice",
               "unitCost", "effectiveDate", "cancelledDate", "description", "invoiceDescription",
               "serialNumber", "lessIncluded", "taxable", "sequenceNumber", "prorateCurrentPeriod")
    result: list[AdditionEntry] = []
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        at = f"{path}[{index}]"
        item = _mapping(raw, at, allowed, ("agreementId", "quantity"))
        agreement_id = _int(item["agreementId"], f"{at}.agreementId")
        if agreement_id not in agreements:
            raise _fail(f"{at}.agreementId", f"no agreement with id {agreement_id}")
        if (item.get("productId") is None) == (item.get("productIdentifier") is None):
            raise _fail(f"{at}.productIdentifier", "give exactly one of productId and productIdentifier")
        if item.get("productId") is not None:
            product = by_id.get(_int(item["productId"], f"{at}.productId"))
            if product is None:
                raise _fail(f"{at}.productId", f"no catalog item with id {item['productId']}")
        else:
            identifier = _str(item["productIdentifier"], f"{at}.productIdentifier")
            product = by_identifier.get(identifier.lower())
            if product is None:
                raise _fail(f"{at}.productIdentifier", f"no catalog item {identifier!r}")
        effective = _opt(item, "effectiveDate", at, _date)
        cancelled = _opt(item, "cancelledDate", at, _date)
        if effective is not None and cancelled is not None and cancelled < effective:
            raise _fail(f"{at}.cancelledDate", f"{cancelled} is before effectiveDate {effective}")
        result.append(AdditionEntry(
            id=ident,
            agreement_id=agreement_id,
            product_id=product.id,
            quantity=_number(item["quantity"], f"{at}.quantity"),
            bill_customer=_choice(item.get("billCustomer", "Billable"), f"{at}.billCustomer", BILL_CUSTOMER),
            unit_price=_opt(item, "unitPrice", at, _number),
            unit_cost=_opt(item, "unitCost", at, _number),
            effective_date=effective,
            cancelled_date=cancelled,
            description=_opt(item, "description", at, _str),
            invoice_description=(_str(item["invoiceDescription"], f"{at}.invoiceDescription",
                                      INVOICE_DESCRIPTION_MAX, allow_empty=True)
                                 if item.get("invoiceDescription") is not None else None),
            serial_number=(_str(item["serialNumber"], f"{at}.serialNumber", SERIAL_NUMBER_MAX)
                           if item.get("serialNumber") is not None else None),
            less_included=_number(item.get("lessIncluded", 0), f"{at}.lessIncluded", Decimal(0)),
            taxable=_bool(item.get("taxable", False), f"{at}.taxable"),
            sequence_number=_opt(item, "sequenceNumber", at, _number),
            prorate_current_period=_bool(item.get("prorateCurrentPeriod", False), f"{at}.prorateCurrentPeriod"),
        ))
    return tuple(result)
