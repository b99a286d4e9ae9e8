"""ConnectWise PSA (Manage) REST client: the ``PsaPort`` for ConnectWise.

Agreements map to ``Agreement`` and agreement additions to ``BilledLine``. Reads page through
``Link`` headers with the largest page ConnectWise serves (1,000), ask only for the fields the
mapping needs and fail loudly rather than return a partial list: a broken or looping ``Link``,
a full page without one, a record seen twice or a field with an unexpected value all raise
``PsaError`` naming the record and field.

Writes: ``set_quantity`` PATCHes ``quantity`` with a JSON-Patch array; ``create_line`` POSTs an
addition after checking ConnectWise's own field limits, so an over-long invoice description is
refused before anything is sent. A POST that fails with a 5xx or a timeout is not retried (see
``RetryingHttp``): the error says the addition may exist, and the caller checks before writing
again.

Every request carries ``Authorization: Basic base64(companyId+publicKey:privateKey)`` and the
integration's ``clientId`` header. Errors from ConnectWise (``{"code", "message", "errors":
[{"code", "message", "resource", "field"}]}``) become ``ConnectWiseApiError`` (a ``PsaError``)
whose message names the record and each field; refused credentials become ``PsaAuthError`` with
what to check.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import requests

from shared.adapters.http import RetryingHttp
from shared.adapters.psa_records import (
    RecordFields,
    json_answer,
    numeric_id,
    utc_midnight,
    whole_number,
)
from shared.domain.model import (
    Agreement,
    AgreementType,
    BilledLine,
    BillingAttributes,
    BillMode,
    ContactDetails,
    Product,
    PsaCapabilities,
    PsaCompany,
    PsaContact,
    PsaTicket,
    TicketSpec,
)
from shared.errors import PsaAuthError, PsaError
from shared.ports import NewLine
from shared.telemetry import ContextThreadPool

MAX_PAGE_SIZE = 1000
SERIAL_NUMBER_MAX = 50
INVOICE_DESCRIPTION_MAX = 6000
# Conditions of ``id in (...)`` lists are chunked to keep URLs under ConnectWise's advice of
# 2,000 characters.
ID_CHUNK = 100

BILL_MODES: Mapping[str, BillMode] = {
    "Billable": BillMode.BILLABLE,
    "DoNotBill": BillMode.DO_NOT_BILL,
    "NoCharge": BillMode.NO_CHARGE,
}
BILL_CUSTOMER = {mode: name for name, mode in BILL_MODES.items()}
AGREEMENT_STATUSES = frozenset({"Active", "Cancelled", "Expired", "Inactive"})

AGREEMENT_FIELDS = ("id,name,type/id,type/name,company/id,agreementStatus,cancelledFlag,billingCycle/id,"
                    "billingCycle/name,startDate,endDate,prorateFlag,nextInvoiceDate")
ADDITION_FIELDS = ("id,agreementId,product/id,product/identifier,quantity,unitPrice,unitCost,billCustomer,"
                   "effectiveDate,cancelledDate,description,invoiceDescription,serialNumber,taxableFlag,"
                   "invoiceGrouping/id,invoiceGrouping/name,uom,purchaseItemFlag,specialOrderFlag")
COMPANY_FIELDS = "id,identifier,name,website,status/name,deletedFlag"
CONTACT_FIELDS = "id,firstName,lastName,company/id,inactiveFlag,title,communicationItems"
# A contact's field limits (ConnectWise's contact screen and API), checked before anything is sent.
CONTACT_LIMITS = {"firstName": 30, "lastName": 30, "title": 50}
COMMUNICATION_VALUE_MAX = 250
# The communication types contact sync writes: the primary address, the direct line and the mobile
# (ConnectWise's default setup table names them so; their ids are read from it).
EMAIL_TYPE, DIRECT_TYPE, MOBILE_TYPE = "Email", "Direct", "Mobile"
CONTACT_SYNC_FIELDS = frozenset({"first_name", "last_name", "email", "title", "phone", "mobile"})
TICKET_FIELDS = "id,summary,board/id,company/id,status/id,status/name,closedFlag"
TICKET_SUMMARY_MAX = 100
CATALOG_FIELDS = "id,identifier,description,customerDescription,price,cost,inactiveFlag,taxableFlag,unitOfMeasure/name"
AGREEMENT_TYPE_FIELDS = "id,name,prorateFlag,billingCycle/name,inactiveFlag"

# Billing cycle names are an MSP-editable setup table; these are the spellings understood.
_CYCLES = {
    "monthly": "monthly", "month": "monthly",
    "annual": "annual", "annually": "annual", "yearly": "annual", "year": "annual",
    "quarterly": "quarterly", "quarter": "quarterly",
    "semiannual": "semi-annual", "semiannually": "semi-annual", "biannual": "semi-annual",
    "halfyearly": "semi-annual",
    "bimonthly": "bi-monthly",
    "weekly": "weekly",
    "biweekly": "bi-weekly", "fortnightly": "bi-weekly",
}


# --------------------------------------------------------------------------- value objects


@dataclass(frozen=True)
class FieldError:
    """One entry of a ConnectWise error's ``errors`` list."""

    field: str
    code: str
    message: str


class ConnectWiseApiError(PsaError):
    """ConnectWise refused a request; ``code`` is its error code and ``field_errors`` its
    per-field errors (empty when it gave none)."""

    def __init__(self, psa: str, message: str, record: str | None = None, status: int | None = None,
                 method: str | None = None, url: str | None = None, code: str | None = None,
                 field_errors: Sequence[FieldError] = ()) -> None:
        self.code = code
        self.field_errors = tuple(field_errors)
        super().__init__(psa, message, record, status, method, url)


# --------------------------------------------------------------------------- helpers


def quote_condition(value: str) -> str:
    """A string literal for ``conditions`` (double quotes, backslash escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def billing_cycle_name(raw: str) -> str | None:
    """``Monthly`` -> ``monthly``, ``Annual``/``Yearly`` -> ``annual`` ...; None if unknown."""
    return _CYCLES.get(re.sub(r"[^a-z]", "", raw.lower()))


def _numeric_id(value: str, what: str) -> int:
    return numeric_id(value, f"a ConnectWise {what} id")


class _Fields(RecordFields):
    """Typed reads of one ConnectWise record; a reference to another record is an object."""

    def reference(self, key: str, optional: bool = False) -> Mapping[str, Any] | None:
        value = self.raw.get(key)
        if value is None:
            if optional:
                return None
            raise self.fail(key, "is missing")
        if not isinstance(value, Mapping):
            raise self.fail(key, f"expected an object, got {value!r}")
        return value


# --------------------------------------------------------------------------- the client


class ConnectWiseClient:
    """ConnectWise PSA over its REST API, implementing ``PsaPort``. Thread-safe.

    ``base_url`` is the API root, e.g. ``https://api-na.myconnectwise.net/v2025_1/apis/3.0``
    (``discover_api_url`` finds it from the site and company id). Pass ``http`` to share a
    ``RetryingHttp`` (or to control its sleeping in tests), otherwise one is made with
    ``verify`` (True, or a CA bundle path).
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        company_id: str,
        public_key: str,
        private_key: str,
        client_id: str,
        *,
        http: RetryingHttp | None = None,
        verify: bool | str = True,
        page_size: int = MAX_PAGE_SIZE,
        max_workers: int = 4,
        api_version: str | None = None,
        invoiced_when_unknown: bool = True,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError(f"ConnectWise API URL must be https://host/<codebase>/apis/3.0, got {base_url!r}")
        for label, value in (("company id", company_id), ("public key", public_key),
                             ("private key", private_key), ("clientId", client_id)):
            if not value or not value.strip():
                raise ValueError(f"ConnectWise {label} is empty")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self._name = name
        self.invoiced_when_unknown = invoiced_when_unknown
        self.base_url = base_url.strip().rstrip("/")
        self.company_id = company_id
        self.page_size = page_size
        self.max_workers = max(1, max_workers)
        self.http = http or RetryingHttp("ConnectWise", verify=verify)
        token = base64.b64encode(f"{company_id}+{public_key}:{private_key}".encode()).decode("ascii")
        accept = "application/json" if api_version is None else (
            f"application/vnd.connectwise.com+json; version={api_version}")
        self._headers = {"Authorization": f"Basic {token}", "clientId": client_id, "Accept": accept}
        self._psa = "ConnectWise" if name.lower() in ("", "connectwise") else f"ConnectWise ({name})"
        self._lock = threading.Lock()
        self._company_of: dict[int, int] = {}
        self._communication_types: dict[str, int] | None = None
        self._closed_statuses: dict[int, int] = {}

    # ------------------------------------------------------------------ PsaPort
    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> PsaCapabilities:
        """ConnectWise bills one quantity per addition: a mid-period change is prorated with a
        separate addition; SeatSync tags its own additions in the serial number. An agreement's
        ``nextInvoiceDate`` says which periods are invoiced; where it is empty, the connection's
        setting decides."""
        return PsaCapabilities(kind="connectwise", prorate="separate-line",
                               description_limit=INVOICE_DESCRIPTION_MAX, tag_limit=SERIAL_NUMBER_MAX,
                               invoiced_when_unknown=self.invoiced_when_unknown, contact_fields=CONTACT_SYNC_FIELDS)

    @property
    def calls(self) -> int:
        """Requests sent through this client's ``RetryingHttp`` (retries included)."""
        return self.http.calls

    def get_agreement(self, agreement_id: str) -> Agreement:
        ident = _numeric_id(agreement_id, "agreement")
        raw = self._call("GET", f"/finance/agreements/{ident}", record=f"agreement {ident}",
                         params={"fields": AGREEMENT_FIELDS})
        return self._agreement(raw)

    def get_agreements(self, agreement_ids: Iterable[str]) -> list[Agreement]:
        """The agreements that exist among ``agreement_ids``, one ``id in (...)`` read per 100."""
        ids = list(dict.fromkeys(_numeric_id(a, "agreement") for a in agreement_ids))
        found: list[Agreement] = []
        for start in range(0, len(ids), ID_CHUNK):
            listed = ",".join(str(ident) for ident in ids[start:start + ID_CHUNK])
            found += self.find_agreements(f"id in ({listed})", record=f"agreements {listed}")
        return found

    def list_agreements(self, company_id: str) -> list[Agreement]:
        """Every agreement of a company, whatever its status (``Agreement.active`` tells)."""
        ident = _numeric_id(company_id, "company")
        return self.find_agreements(f"company/id={ident}", record=f"agreements of company {ident}")

    def find_agreements(self, conditions: str | None = None, *, record: str = "agreements") -> list[Agreement]:
        """Agreements matching ConnectWise ``conditions`` (all of them when None)."""
        rows = self._get_all("/finance/agreements", record, conditions=conditions, fields=AGREEMENT_FIELDS)
        return [self._agreement(row) for row in rows]

    def list_lines(self, agreement_ids: Iterable[str], *, known: Iterable[Agreement] = ()) -> list[BilledLine]:
        """The additions of the agreements, in the order given (agreement by agreement, each by
        addition id). One paged read per agreement, ``max_workers`` at a time; any failure
        raises (never a partial list). The company of each agreement comes from ``known`` or an
        earlier read, else from one read per 100 agreements."""
        ids = list(dict.fromkeys(_numeric_id(a, "agreement") for a in agreement_ids))
        self._remember(known)
        companies = self._companies_of(ids)
        if len(ids) <= 1 or self.max_workers == 1:
            chunks = [self._lines_of(ident, companies[ident]) for ident in ids]
        else:
            with ContextThreadPool(max_workers=min(self.max_workers, len(ids)),
                                    thread_name_prefix="connectwise") as pool:
                chunks = list(pool.map(lambda ident: self._lines_of(ident, companies[ident]), ids))
        return [line for chunk in chunks for line in chunk]

    def set_quantity(self, line: BilledLine, quantity: int, effective_date: date) -> BilledLine:
        """Set an addition's quantity (JSON-Patch ``replace``). ConnectWise keeps one quantity
        per addition, so ``effective_date`` is not written: a mid-period change is billed by a
        separate prorate addition (``create_line``) carrying its own dates."""
        whole_number(quantity, "quantity")
        agreement, addition = self._line_ids(line)
        record = f"agreement {agreement} addition {addition}"
        raw = self._call("PATCH", f"/finance/agreements/{agreement}/additions/{addition}", record=record,
                         json=[{"op": "replace", "path": "quantity", "value": quantity}])
        return self._line(raw, agreement, line.company_id)

    def create_line(self, line: NewLine) -> BilledLine:
        """Create an addition. Checked before sending: a whole quantity, a numeric product id,
        ``invoice_description`` <= 6,000 and ``tag`` (serialNumber) <= 50 characters, an end
        date not before the effective date."""
        agreement = _numeric_id(line.agreement_id, "agreement")
        record = f"agreement {agreement} new addition of product {line.product_id}"
        problems: list[FieldError] = []
        try:
            quantity = whole_number(line.quantity, "quantity")
        except ValueError as exc:
            problems.append(FieldError("quantity", "InvalidField", str(exc)))
            quantity = 0
        if not str(line.product_id).strip().isdigit():
            problems.append(FieldError("product", "InvalidField",
                                       f"product id must be a ConnectWise catalog id, got {line.product_id!r}"))
        if len(line.invoice_description) > INVOICE_DESCRIPTION_MAX:
            problems.append(FieldError("invoiceDescription", "MaxLengthField",
                                       f"is {len(line.invoice_description)} characters; ConnectWise allows "
                                       f"at most {INVOICE_DESCRIPTION_MAX}"))
        if line.tag is not None and len(line.tag) > SERIAL_NUMBER_MAX:
            problems.append(FieldError("serialNumber", "MaxLengthField",
                                       f"(the tag) is {len(line.tag)} characters; ConnectWise allows at most "
                                       f"{SERIAL_NUMBER_MAX}"))
        grouping = line.billing.invoice_grouping if line.billing else None
        if grouping is not None and not grouping.strip().isdigit():
            problems.append(FieldError("invoiceGrouping", "InvalidField",
                                       f"invoice grouping must be a ConnectWise invoice grouping id, got {grouping!r}"))
        if line.end_date is not None and line.end_date < line.effective_date:
            problems.append(FieldError("cancelledDate", "InvalidField",
                                       f"end date {line.end_date} is before the effective date "
                                       f"{line.effective_date}"))
        if problems:
            raise ConnectWiseApiError(self._psa, "; ".join(f"{p.field}: {p.message}" for p in problems),
                                      record, code="InvalidObject", field_errors=problems)
        body: dict[str, Any] = {
            "product": {"id": int(str(line.product_id).strip())},
            "quantity": quantity,
            "billCustomer": BILL_CUSTOMER[line.bill_mode],
            "effectiveDate": utc_midnight(line.effective_date),
        }
        if line.end_date is not None:
            body["cancelledDate"] = utc_midnight(line.end_date)
        if line.unit_price is not None:
            body["unitPrice"] = float(line.unit_price)
        if line.unit_cost is not None:
            body["unitCost"] = float(line.unit_cost)
        if line.description:
            body["description"] = line.description
        if line.invoice_description:
            body["invoiceDescription"] = line.invoice_description
        if line.tag:
            body["serialNumber"] = line.tag
        body.update(self._billing_body(line.billing))
        raw = self._call("POST", f"/finance/agreements/{agreement}/additions", record=record, json=body,
                         creating=True)
        return self._line(raw, agreement, str(self._companies_of([agreement])[agreement]))

    @staticmethod
    def _billing_body(billing: BillingAttributes | None) -> dict[str, Any]:
        """The addition fields that carry ``billing`` (those it says; none for None)."""
        if billing is None:
            return {}
        body: dict[str, Any] = {}
        if billing.taxable is not None:
            body["taxableFlag"] = billing.taxable
        if billing.invoice_grouping is not None:
            body["invoiceGrouping"] = {"id": int(billing.invoice_grouping)}
        if billing.unit_of_measure:
            body["uom"] = billing.unit_of_measure
        if billing.purchase_item is not None:
            body["purchaseItemFlag"] = billing.purchase_item
        if billing.special_order is not None:
            body["specialOrderFlag"] = billing.special_order
        return body

    # ------------------------------------------------------------------ more of the PSA
    def get_line(self, agreement_id: str, line_id: str) -> BilledLine:
        """One addition (e.g. to check whether a write that failed mid-way happened)."""
        agreement = _numeric_id(agreement_id, "agreement")
        addition = _numeric_id(line_id, "addition")
        raw = self._call("GET", f"/finance/agreements/{agreement}/additions/{addition}",
                         record=f"agreement {agreement} addition {addition}", params={"fields": ADDITION_FIELDS})
        return self._line(raw, agreement, str(self._companies_of([agreement])[agreement]))

    def update_line(self, line: BilledLine, *, description: str | None = None,
                    invoice_description: str | None = None, unit_price: Decimal | None = None,
                    unit_cost: Decimal | None = None, tag: str | None = None) -> BilledLine:
        """Replace the given fields of an addition (None leaves a field as it is)."""
        agreement, addition = self._line_ids(line)
        record = f"agreement {agreement} addition {addition}"
        operations: list[dict[str, Any]] = []
        problems: list[FieldError] = []
        if description is not None:
            operations.append({"op": "replace", "path": "description", "value": description})
        if invoice_description is not None:
            if len(invoice_description) > INVOICE_DESCRIPTION_MAX:
                problems.append(FieldError("invoiceDescription", "MaxLengthField",
                                           f"is {len(invoice_description)} characters; ConnectWise allows at "
                                           f"most {INVOICE_DESCRIPTION_MAX}"))
            operations.append({"op": "replace", "path": "invoiceDescription", "value": invoice_description})
        if unit_price is not None:
            operations.append({"op": "replace", "path": "unitPrice", "value": float(unit_price)})
        if unit_cost is not None:
            operations.append({"op": "replace", "path": "unitCost", "value": float(unit_cost)})
        if tag is not None:
            if len(tag) > SERIAL_NUMBER_MAX:
                problems.append(FieldError("serialNumber", "MaxLengthField",
                                           f"(the tag) is {len(tag)} characters; ConnectWise allows at most "
                                           f"{SERIAL_NUMBER_MAX}"))
            operations.append({"op": "replace", "path": "serialNumber", "value": tag})
        if problems:
            raise ConnectWiseApiError(self._psa, "; ".join(f"{p.field}: {p.message}" for p in problems),
                                      record, code="InvalidObject", field_errors=problems)
        if not operations:
            return line
        raw = self._call("PATCH", f"/finance/agreements/{agreement}/additions/{addition}", record=record,
                         json=operations)
        return self._line(raw, agreement, line.company_id)

    def cancel_line(self, line: BilledLine, cancelled_date: date) -> BilledLine:
        """Stop billing an addition from ``cancelled_date`` (its history stays)."""
        agreement, addition = self._line_ids(line)
        raw = self._call("PATCH", f"/finance/agreements/{agreement}/additions/{addition}",
                         record=f"agreement {agreement} addition {addition}",
                         json=[{"op": "replace", "path": "cancelledDate", "value": utc_midnight(cancelled_date)}])
        return self._line(raw, agreement, line.company_id)

    def delete_line(self, line: BilledLine) -> None:
        """Delete an addition (prefer ``cancel_line``, which keeps the billing history)."""
        agreement, addition = self._line_ids(line)
        self._call("DELETE", f"/finance/agreements/{agreement}/additions/{addition}",
                   record=f"agreement {agreement} addition {addition}")

    def list_companies(self, conditions: str | None = "deletedFlag=false") -> list[PsaCompany]:
        rows = self._get_all("/company/companies", "companies", conditions=conditions, fields=COMPANY_FIELDS)
        companies = []
        for row in rows:
            f = _Fields.of(row, self._psa, "company")
            status = f.reference("status", optional=True)
            companies.append(PsaCompany(
                psa=self._name,
                company_id=str(f.integer("id")),
                identifier=f.text("identifier", optional=False) or "",
                name=f.text("name", optional=False) or "",
                website=f.text("website"),
                status=(f.text("name", status, "status/name") or "") if status else "",
                deleted=f.flag("deletedFlag"),
            ))
        return companies

    def list_contacts(self, company_id: str | None = None, email: str | None = None) -> list[PsaContact]:
        """Contacts of a company and/or with an email address (any of their email items)."""
        conditions = None
        if company_id is not None:
            conditions = f"company/id={_numeric_id(company_id, 'company')}"
        child = None
        if email is not None:
            child = (f"communicationItems/value={quote_condition(email)} and "
                     'communicationItems/communicationType="Email"')
        rows = self._get_all("/company/contacts", "contacts", conditions=conditions, fields=CONTACT_FIELDS,
                             child_conditions=child)
        return [self._contact(row) for row in rows]

    def _contact(self, row: Any) -> PsaContact:
        """A contact: its email items as its addresses (the default one first), its first Direct
        and Mobile phone items as its phone and mobile."""
        f = _Fields.of(row, self._psa, "contact")
        company = f.reference("company")
        items = self._items(f)
        emails = [item for item in items
                  if item.get("communicationType") == "Email" and isinstance(item.get("value"), str)]
        emails.sort(key=lambda item: not item.get("defaultFlag"))
        return PsaContact(
            psa=self._name,
            contact_id=str(f.integer("id")),
            company_id=str(f.integer("id", company, "company/id")) if company else "",
            first_name=f.text("firstName") or "",
            last_name=f.text("lastName") or "",
            emails=tuple(item["value"] for item in emails),
            inactive=f.flag("inactiveFlag"),
            title=f.text("title"),
            phone=self._phone(items, DIRECT_TYPE),
            mobile=self._phone(items, MOBILE_TYPE),
        )

    @staticmethod
    def _items(f: _Fields) -> list[Mapping[str, Any]]:
        items = f.raw.get("communicationItems") or []
        if not isinstance(items, list):
            raise f.fail("communicationItems", f"expected a list, got {items!r}")
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise f.fail(f"communicationItems[{index}]", f"expected an object, got {item!r}")
        return items

    @staticmethod
    def _type_name(item: Mapping[str, Any]) -> str:
        kind = item.get("type")
        return str(kind.get("name") or "") if isinstance(kind, Mapping) else ""

    def _phone(self, items: list[Mapping[str, Any]], type_name: str) -> str | None:
        for item in items:
            if item.get("communicationType") == "Phone" and self._type_name(item).casefold() == type_name.casefold() \
                    and isinstance(item.get("value"), str):
                return str(item["value"])
        return None

    def communication_types(self) -> dict[str, int]:
        """The ids of the communication types by description (case-insensitive), read once."""
        with self._lock:
            known = self._communication_types
        if known is None:
            rows = self._get_all("/company/communicationTypes", "communication types",
                                 fields="id,description,phoneFlag,emailFlag")
            known = {}
            for row in rows:
                f = _Fields.of(row, self._psa, "communication type")
                known[(f.text("description") or "").casefold()] = f.integer("id")
            with self._lock:
                self._communication_types = known
        return known

    def _type_ref(self, name: str, record: str) -> dict[str, Any]:
        ident = self.communication_types().get(name.casefold())
        if ident is None:
            raise ConnectWiseApiError(self._psa, f"ConnectWise has no communication type named {name!r} (System > "
                                      "Setup Tables > Communication Types): contact sync writes the address, direct "
                                      "line and mobile as Email, Direct and Mobile", record, code="InvalidObject")
        return {"id": ident, "name": name}

    def _contact_problems(self, details: ContactDetails, creating: bool) -> list[FieldError]:
        problems: list[FieldError] = []
        for key, value in (("firstName", details.first_name), ("lastName", details.last_name),
                           ("title", details.title)):
            if value is not None and len(value) > CONTACT_LIMITS[key]:
                problems.append(FieldError(key, "MaxLengthField", f"is {len(value)} characters; ConnectWise allows "
                                           f"at most {CONTACT_LIMITS[key]}"))
        if creating and not details.first_name:
            problems.append(FieldError("firstName", "NullValue", "a contact needs a first name"))
        for key, value in (("email", details.email), ("phone", details.phone), ("mobile", details.mobile)):
            if value is not None and len(value) > COMMUNICATION_VALUE_MAX:
                problems.append(FieldError("communicationItems", "MaxLengthField", f"the {key} is {len(value)} "
                                           f"characters; ConnectWise allows at most {COMMUNICATION_VALUE_MAX}"))
        return problems

    def _communication_items(self, current: list[Mapping[str, Any]], details: ContactDetails,
                             record: str) -> list[dict[str, Any]] | None:
        """The contact's communication items with ``details``' address, direct line and mobile
        written in: the address becomes the default Email item (an existing item of that address,
        or the default one's value replaced, or a new one); the phones replace the value of the first
        Direct / Mobile item or are added. None when nothing changes."""
        items = [dict(item) for item in current]
        changed = False
        if details.email is not None:
            wanted = details.email
            emails = [item for item in items if item.get("communicationType") == "Email"]
            same = next((item for item in emails if str(item.get("value") or "").casefold() == wanted.casefold()), None)
            default = next((item for item in emails if item.get("defaultFlag")), None)
            if same is not None and same is default and same.get("value") == wanted:
                pass
            elif same is not None:
                for item in emails:
                    item["defaultFlag"] = item is same
                same["value"] = wanted
                changed = True
            elif default is not None:
                default["value"] = wanted
                changed = True
            else:
                for item in emails:
                    item["defaultFlag"] = False
                items.append({"type": self._type_ref(EMAIL_TYPE, record), "value": wanted, "defaultFlag": True,
                              "communicationType": "Email"})
                changed = True
        for value, type_name in ((details.phone, DIRECT_TYPE), (details.mobile, MOBILE_TYPE)):
            if value is None:
                continue
            phone: dict[str, Any] | None = next((i for i in items if i.get("communicationType") == "Phone"
                                                 and self._type_name(i).casefold() == type_name.casefold()), None)
            if phone is None:
                items.append({"type": self._type_ref(type_name, record), "value": value,
                              "defaultFlag": not any(i.get("communicationType") == "Phone" for i in items),
                              "communicationType": "Phone"})
                changed = True
            elif phone.get("value") != value:
                phone["value"] = value
                changed = True
        return items if changed else None

    def create_contact(self, company_id: str, details: ContactDetails) -> PsaContact:
        """POST a contact of the company: names, title, and the address, direct line and mobile as
        communication items. Checked before sending: a first name, ConnectWise's field limits."""
        company = _numeric_id(company_id, "company")
        record = f"company {company} new contact {details.email or details.first_name or ''}".strip()
        problems = self._contact_problems(details, creating=True)
        if problems:
            raise ConnectWiseApiError(self._psa, "; ".join(f"{p.field}: {p.message}" for p in problems), record,
                                      code="InvalidObject", field_errors=problems)
        body: dict[str, Any] = {"firstName": details.first_name, "company": {"id": company}, "inactiveFlag": False}
        if details.last_name is not None:
            body["lastName"] = details.last_name
        if details.title is not None:
            body["title"] = details.title
        items = self._communication_items([], details, record)
        if items:
            body["communicationItems"] = items
        raw = self._call("POST", "/company/contacts", record=record, json=body, creating=True)
        return self._contact(raw)

    def update_contact(self, contact: PsaContact, details: ContactDetails, *,
                       active: bool | None = None) -> PsaContact:
        """PATCH the fields given (JSON-Patch ``replace``; the communication items as a whole, read
        just before) and, when ``active`` is given, ``inactiveFlag``. Nothing is sent when nothing
        changes."""
        if contact.psa != self._name:
            raise ValueError(f"contact {contact.contact_id} belongs to PSA connection {contact.psa!r}, not "
                             f"{self._name!r}")
        ident = _numeric_id(contact.contact_id, "contact")
        record = f"contact {ident}"
        problems = self._contact_problems(details, creating=False)
        if problems:
            raise ConnectWiseApiError(self._psa, "; ".join(f"{p.field}: {p.message}" for p in problems), record,
                                      code="InvalidObject", field_errors=problems)
        operations: list[dict[str, Any]] = []
        for path, value in (("firstName", details.first_name), ("lastName", details.last_name),
                            ("title", details.title)):
            if value is not None:
                operations.append({"op": "replace", "path": path, "value": value})
        if details.email is not None or details.phone is not None or details.mobile is not None:
            current = self._call("GET", f"/company/contacts/{ident}", record=record,
                                 params={"fields": "id,communicationItems"})
            items = self._communication_items(self._items(_Fields.of(current, self._psa, "contact")), details, record)
            if items is not None:
                operations.append({"op": "replace", "path": "communicationItems", "value": items})
        if active is not None:
            operations.append({"op": "replace", "path": "inactiveFlag", "value": not active})
        if not operations:
            return contact
        raw = self._call("PATCH", f"/company/contacts/{ident}", record=record, json=operations)
        return self._contact(raw)

    # ------------------------------------------------------------------ service tickets (TicketPort)
    def _ticket(self, row: Any) -> PsaTicket:
        f = _Fields.of(row, self._psa, "ticket")
        company = f.reference("company", optional=True)
        status = f.reference("status", optional=True)
        return PsaTicket(psa=self._name, ticket_id=str(f.ident()),
                         company_id=str(f.integer("id", company, "company/id")) if company else "",
                         summary=f.text("summary") or "",
                         status=(f.text("name", status, "status/name") or "") if status else "",
                         closed=f.flag("closedFlag"))

    def find_ticket(self, spec: TicketSpec, marker: str, *, closed: bool = False) -> PsaTicket | None:
        """``GET /service/tickets`` on the board (open only, unless ``closed``), whose summary
        contains the marker."""
        board = _numeric_id(spec.queue, "board")
        state = "" if closed else "closedFlag=false and "
        rows = self._get_all("/service/tickets", "service tickets", fields=TICKET_FIELDS,
                             conditions=f"board/id={board} and {state}"
                                        f"summary contains {quote_condition(marker.strip('[]'))}")
        found = [t for t in (self._ticket(row) for row in rows) if t.summary.endswith(marker)]
        if closed:
            return max(found, key=lambda t: int(t.ticket_id), default=None)
        return min((t for t in found if not t.closed), key=lambda t: int(t.ticket_id), default=None)

    def get_ticket(self, spec: TicketSpec, ticket_id: str) -> PsaTicket | None:
        ident = _numeric_id(ticket_id, "ticket")
        try:
            row = self._call("GET", f"/service/tickets/{ident}", record=f"ticket {ident}",
                             params={"fields": TICKET_FIELDS})
        except PsaError as exc:
            if exc.status == 404:
                return None
            raise
        return self._ticket(row)

    def open_ticket(self, spec: TicketSpec, company_id: str, summary: str, details: str, marker: str) -> PsaTicket:
        """``POST /service/tickets``: the summary (ConnectWise holds 100 characters: the text is
        shortened, never the marker), the board, the company, the details as the initial
        description, the priority given; the board's default status."""
        board = _numeric_id(spec.queue, "board")
        company = _numeric_id(company_id, "company")
        room = TICKET_SUMMARY_MAX - len(marker) - 1
        if room < 1:
            raise ValueError(f"the marker {marker!r} leaves no room for a summary")
        text = summary if len(summary) <= room else summary[: room - 3].rstrip() + "..."
        body: dict[str, Any] = {"summary": f"{text} {marker}", "board": {"id": board}, "company": {"id": company},
                                "initialDescription": details}
        if spec.priority is not None:
            body["priority"] = {"id": _numeric_id(spec.priority, "priority")}
        raw = self._call("POST", "/service/tickets", record=f"board {board} new ticket {marker}", json=body,
                         creating=True)
        return self._ticket(raw)

    def note_ticket(self, spec: TicketSpec, ticket: PsaTicket, text: str) -> None:
        """``POST /service/tickets/{id}/notes`` as an internal note."""
        ident = _numeric_id(ticket.ticket_id, "ticket")
        self._call("POST", f"/service/tickets/{ident}/notes", record=f"ticket {ident} note",
                   json={"text": text, "internalAnalysisFlag": True, "detailDescriptionFlag": False,
                         "resolutionFlag": False})

    def _closed_status(self, spec: TicketSpec) -> int:
        """The configured closed status, else the board's first active status marked closed."""
        if spec.closed_status is not None:
            return _numeric_id(spec.closed_status, "status")
        board = _numeric_id(spec.queue, "board")
        with self._lock:
            known = self._closed_statuses.get(board)
        if known is not None:
            return known
        rows = self._get_all(f"/service/boards/{board}/statuses", f"statuses of board {board}",
                             conditions="closedStatus=true and inactive=false", fields="id,name,closedStatus")
        ids = sorted(_Fields.of(row, self._psa, "board status").ident() for row in rows)
        if not ids:
            raise PsaError(self._psa, f"board {board} has no active closed status: add one, or give "
                           "notifications.psaTickets.closedStatus", f"board {board}")
        with self._lock:
            self._closed_statuses[board] = ids[0]
        return ids[0]

    def close_ticket(self, spec: TicketSpec, ticket: PsaTicket, text: str) -> PsaTicket:
        """A resolution note, then ``PATCH`` the status to the closed one; the answer must read closed."""
        ident = _numeric_id(ticket.ticket_id, "ticket")
        status = self._closed_status(spec)
        self._call("POST", f"/service/tickets/{ident}/notes", record=f"ticket {ident} note",
                   json={"text": text, "internalAnalysisFlag": True, "detailDescriptionFlag": False,
                         "resolutionFlag": True})
        raw = self._call("PATCH", f"/service/tickets/{ident}", record=f"ticket {ident}",
                         json=[{"op": "replace", "path": "status", "value": {"id": status}}])
        closed = self._ticket(raw)
        if not closed.closed:
            raise PsaError(self._psa, f"status {status} does not close ticket {ident} (ConnectWise answered "
                           f"status {closed.status!r}, not closed)", f"ticket {ident}")
        return closed

    def list_products(self, include_inactive: bool = False) -> list[Product]:
        conditions = None if include_inactive else "inactiveFlag=false"
        rows = self._get_all("/procurement/catalog", "catalog", conditions=conditions, fields=CATALOG_FIELDS)
        return [self._product(row) for row in rows]

    def get_products(self, product_ids: Iterable[str]) -> list[Product]:
        """The catalog items that exist among the ids, one ``id in (...)`` read per 100."""
        ids = list(dict.fromkeys(_numeric_id(p, "product id") for p in product_ids))
        found: list[Product] = []
        for start in range(0, len(ids), ID_CHUNK):
            listed = ",".join(str(ident) for ident in ids[start:start + ID_CHUNK])
            rows = self._get_all("/procurement/catalog", f"catalog items {listed}", conditions=f"id in ({listed})",
                                 fields=CATALOG_FIELDS)
            found += [self._product(row) for row in rows]
        return found

    def get_product(self, product_id: str) -> Product:
        number = _numeric_id(product_id, "product id")
        record = f"catalog item {number}"
        return self._product(self._call("GET", f"/procurement/catalog/{number}", record=record,
                                        params={"fields": CATALOG_FIELDS}))

    def _product(self, row: Any) -> Product:
        f = _Fields.of(row, self._psa, "catalog item")
        return Product(
            psa=self._name,
            product_id=str(f.integer("id")),
            identifier=f.text("identifier", optional=False) or "",
            description=f.text("description") or "",
            price=f.price("price"),
            cost=f.price("cost"),
            inactive=f.flag("inactiveFlag"),
            customer_description=f.text("customerDescription") or "",
            billing=BillingAttributes(taxable=f.flag("taxableFlag"), unit_of_measure=f.text(
                "name", f.reference("unitOfMeasure", optional=True) or {}, "unitOfMeasure/name")),
            unreadable=f.unreadable,  # last: after every read of the record
        )

    def list_agreement_types(self, include_inactive: bool = False) -> list[AgreementType]:
        conditions = None if include_inactive else "inactiveFlag=false"
        rows = self._get_all("/finance/agreements/types", "agreement types", conditions=conditions,
                             fields=AGREEMENT_TYPE_FIELDS)
        types = []
        for row in rows:
            f = _Fields.of(row, self._psa, "agreement type")
            types.append(AgreementType(
                psa=self._name,
                type_id=str(f.integer("id")),
                name=f.text("name", optional=False) or "",
                prorate=f.flag("prorateFlag"),
                billing_cycle=self._cycle(f),
                inactive=f.flag("inactiveFlag"),
            ))
        return types

    def check_connection(self) -> dict[str, Any]:
        """``system/info``: proves the URL, keys, clientId and role in one request."""
        raw = self._call("GET", "/system/info", record="system info", collection=True)
        if not isinstance(raw, dict):
            raise PsaError(self._psa, f"system/info answered {raw!r}", "system info")
        return raw

    @staticmethod
    def discover_api_url(site: str, company_id: str, *, http: RetryingHttp | None = None,
                         verify: bool | str = True) -> str:
        """The API root for a site (``na.myconnectwise.net`` or an on-premises host) from
        ``/login/companyinfo/{companyId}``: ``https://api-na.myconnectwise.net/v2025_1/apis/3.0``.
        Cloud sites get the ``api-`` host prefix ConnectWise requires."""
        base = site.strip().rstrip("/")
        if "://" not in base:
            base = "https://" + base
        parts = urlsplit(base)
        client = http or RetryingHttp("ConnectWise", verify=verify)
        url = f"{parts.scheme}://{parts.netloc}/login/companyinfo/{company_id}"
        try:
            response = client.request("GET", url, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise PsaError("ConnectWise", f"no answer from {parts.netloc}: {exc}", "company info",
                           method="GET", url=url) from exc
        if response.status_code != 200:
            raise PsaError("ConnectWise", f"company {company_id!r} is not known at {parts.netloc}",
                           "company info", response.status_code, "GET", url)
        try:
            info = response.json()
        except (ValueError, RecursionError):
            info = None
        codebase = info.get("Codebase") if isinstance(info, dict) else None
        if not isinstance(codebase, str) or not codebase.strip("/"):
            raise PsaError("ConnectWise", f"company info has no Codebase: {response.text[:200]!r}",
                           "company info", response.status_code, "GET", url)
        is_cloud = info.get("IsCloud") if isinstance(info, dict) else None
        cloud = is_cloud is True or (isinstance(is_cloud, str) and is_cloud.strip().lower() == "true")
        host = parts.netloc
        if cloud and not host.lower().startswith("api-") and host.lower().endswith(
                (".myconnectwise.net", ".connectwisedev.com")):
            host = "api-" + host
        return f"{parts.scheme}://{host}/{codebase.strip('/')}/apis/3.0"

    # ------------------------------------------------------------------ mapping
    def _cycle(self, f: _Fields) -> str | None:
        cycle = f.reference("billingCycle", optional=True)
        if cycle is None:
            return None
        name = f.text("name", cycle, "billingCycle/name", optional=False) or ""
        mapped = billing_cycle_name(name)
        if mapped is None:
            raise f.fail("billingCycle", f"billing cycle {name!r} is not one SeatSync understands "
                         f"(known: Monthly, Quarterly, Semi-Annual, Annual, Weekly, Bi-Weekly, Bi-Monthly)")
        return mapped

    def _agreement(self, raw: Any) -> Agreement:
        f = _Fields.of(raw, self._psa, "agreement")
        ident = f.integer("id")
        company = f.reference("company")
        assert company is not None
        company_id = f.integer("id", company, "company/id")
        agreement_type = f.reference("type", optional=True)
        status = f.text("agreementStatus")
        if status is not None and status not in AGREEMENT_STATUSES:
            raise f.fail("agreementStatus", f"unexpected value {status!r} (expected one of "
                         f"{', '.join(sorted(AGREEMENT_STATUSES))})")
        cancelled = f.flag("cancelledFlag")
        with self._lock:
            self._company_of[ident] = company_id
        return Agreement(
            psa=self._name,
            agreement_id=str(ident),
            company_id=str(company_id),
            name=f.text("name") or "",
            type_name=(f.text("name", agreement_type, "type/name") or "") if agreement_type else "",
            active=(status == "Active" if status is not None else not cancelled) and not cancelled,
            prorate=f.flag("prorateFlag"),
            billing_cycle=self._cycle(f) or "none",
            start_date=f.day("startDate"),
            end_date=f.day("endDate"),
            # ConnectWise invoices an agreement's recurring charges at the start of each cycle;
            # its API has no advance/arrears switch (periodType chooses which additions bill).
            bill_in_advance=True,
            # The start of the first cycle not invoiced yet: invoicing a cycle moves it on.
            next_invoice_date=f.day("nextInvoiceDate"),
        )

    def _line(self, raw: Any, agreement: int, company_id: str) -> BilledLine:
        f = _Fields.of(raw, self._psa, f"agreement {agreement} addition")
        ident = f.integer("id")
        if raw.get("agreementId") is not None and f.integer("agreementId") != agreement:
            raise f.fail("agreementId", f"is {raw.get('agreementId')}, the addition was read from agreement "
                         f"{agreement}")
        product = f.reference("product")
        assert product is not None
        bill_customer = f.text("billCustomer", optional=False) or ""
        mode = BILL_MODES.get(bill_customer)
        if mode is None:
            raise f.fail("billCustomer", f"unexpected value {bill_customer!r} (expected Billable, DoNotBill "
                         "or NoCharge)")
        if raw.get("quantity") is None:
            raise f.fail("quantity", "is missing")
        quantity = f.quantity("quantity")
        serial = f.text("serialNumber")
        return BilledLine(
            psa=self._name,
            line_id=str(ident),
            agreement_id=str(agreement),
            company_id=company_id,
            product_id=str(f.integer("id", product, "product/id")),
            product_identifier=f.text("identifier", product, "product/identifier") or "",
            quantity=quantity if quantity is not None else Decimal(0),
            unit_price=f.price("unitPrice"),
            unit_cost=f.price("unitCost"),
            bill_mode=mode,
            description=f.text("description") or "",
            invoice_description=f.text("invoiceDescription") or "",
            effective_date=f.day("effectiveDate"),
            cancelled_date=f.day("cancelledDate"),
            tag=serial if serial else None,
            billing=self._billing(f),
            unreadable=f.unreadable,  # last: after every read of the record
        )

    @staticmethod
    def _billing(f: _Fields) -> BillingAttributes:
        """An addition's billing attributes: taxable, invoice grouping, unit of measure, purchase
        item and special order (a prorate or credit addition takes them over from its base)."""
        grouping = f.reference("invoiceGrouping", optional=True)
        return BillingAttributes(
            taxable=f.flag("taxableFlag"),
            invoice_grouping=str(f.integer("id", grouping, "invoiceGrouping/id")) if grouping else None,
            unit_of_measure=f.text("uom"),
            purchase_item=f.flag("purchaseItemFlag"),
            special_order=f.flag("specialOrderFlag"),
        )

    def _line_ids(self, line: BilledLine) -> tuple[int, int]:
        if line.psa != self._name:
            raise ValueError(f"line {line.line_id} belongs to PSA connection {line.psa!r}, not {self._name!r}")
        return _numeric_id(line.agreement_id, "agreement"), _numeric_id(line.line_id, "addition")

    def _lines_of(self, agreement: int, company: int) -> list[BilledLine]:
        rows = self._get_all(f"/finance/agreements/{agreement}/additions", f"agreement {agreement} additions",
                             fields=ADDITION_FIELDS, collection=False)
        return [self._line(row, agreement, str(company)) for row in rows]

    def _remember(self, agreements: Iterable[Agreement]) -> None:
        with self._lock:
            for agreement in agreements:
                if agreement.psa == self._name and agreement.agreement_id.isdigit() and agreement.company_id.isdigit():
                    self._company_of[int(agreement.agreement_id)] = int(agreement.company_id)

    def _companies_of(self, agreement_ids: Sequence[int]) -> dict[int, int]:
        """Agreement id -> company id, from what was read before or one ``id in (...)`` read per
        100 agreements. An agreement that does not exist raises."""
        with self._lock:
            known = {ident: self._company_of[ident] for ident in agreement_ids if ident in self._company_of}
        missing = [ident for ident in agreement_ids if ident not in known]
        for start in range(0, len(missing), ID_CHUNK):
            chunk = missing[start:start + ID_CHUNK]
            listed = ",".join(str(ident) for ident in chunk)
            rows = self._get_all("/finance/agreements", f"agreements {listed}", conditions=f"id in ({listed})",
                                 fields="id,company/id")
            for row in rows:
                f = _Fields.of(row, self._psa, "agreement")
                company = f.reference("company")
                assert company is not None
                known[f.integer("id")] = f.integer("id", company, "company/id")
        absent = [ident for ident in agreement_ids if ident not in known]
        if absent:
            raise PsaError(self._psa, "not found (no such agreement, or the API member cannot see it)",
                           f"agreement {', '.join(str(a) for a in absent)}", 404)
        with self._lock:
            self._company_of.update(known)
        return known

    # ------------------------------------------------------------------ HTTP
    def _url(self, path: str) -> str:
        return self.base_url + path

    def _call(self, method: str, path: str, *, record: str, params: Mapping[str, Any] | None = None,
              json: Any = None, creating: bool = False, collection: bool = False) -> Any:
        url = self._url(path)
        response = self._send(method, url, record=record, params=params, json=json, creating=creating)
        if response.status_code >= 400:
            self._raise(response, method, url, record, creating=creating, collection=collection)
        return self._body(response, method, url, record)

    def _send(self, method: str, url: str, *, record: str, params: Mapping[str, Any] | None = None,
              json: Any = None, creating: bool = False) -> requests.Response:
        try:
            return self.http.request(method, url, headers=self._headers, params=params, json=json)
        except requests.RequestException as exc:
            maybe = (" The addition may have been created: read the agreement's additions before "
                     "trying again.") if creating else ""
            raise PsaError(self._psa, f"no answer from ConnectWise ({type(exc).__name__}: {exc}).{maybe}",
                           record, None, method, url) from exc

    def _body(self, response: requests.Response, method: str, url: str, record: str) -> Any:
        if response.status_code == 204:
            return None
        return json_answer(response, self._psa, method, url, record)

    def _raise(self, response: requests.Response, method: str, url: str, record: str, *, creating: bool,
               collection: bool) -> NoReturn:
        status = response.status_code
        try:
            body = json.loads(response.text, parse_float=Decimal) if response.content else None
        except (ValueError, RecursionError):
            body = None
        code = message = None
        field_errors: list[FieldError] = []
        if isinstance(body, dict):
            code = body.get("code") if isinstance(body.get("code"), str) else body.get("error")
            message = body.get("message") if isinstance(body.get("message"), str) else None
            for item in body.get("errors") or []:
                if isinstance(item, dict):
                    field_errors.append(FieldError(str(item.get("field") or item.get("resource") or "?"),
                                                   str(item.get("code") or ""), str(item.get("message") or "")))
        detail = message or (response.text[:300].strip() if response.text else response.reason)
        if status == 401:
            raise PsaAuthError(
                self._psa, "ConnectWise refused the login. Check the company id, the API member's public "
                "and private keys (System > Members > API Members, keys not revoked), that the member is "
                f"active with a security role, and the clientId ({detail})",
                record, status, method, url)
        if status == 403:
            raise PsaAuthError(
                self._psa, "the API member's security role does not allow this request; grant the role "
                f"access to companies, contacts, the product catalog and agreements ({detail})",
                record, status, method, url)
        if status == 400 and ((code or "").lower() == "invalidclientid" or "clientid" in (detail or "").lower()):
            raise PsaAuthError(
                self._psa, "ConnectWise rejected the clientId header: use the clientId registered for this "
                f"integration at developer.connectwise.com ({detail})", record, status, method, url)
        if status == 404:
            hint = ("On ConnectWise cloud a refused login also answers 404: check the company id and keys, "
                    "and that the API URL is https://api-<region>.myconnectwise.net/<codebase>/apis/3.0")
            if collection:
                raise PsaAuthError(self._psa, f"{detail}. {hint}", record, status, method, url)
            raise ConnectWiseApiError(self._psa, f"not found ({detail}). {hint}", record, status, method, url,
                                      code, field_errors)
        if status == 429:
            raise ConnectWiseApiError(self._psa, f"still throttled (HTTP 429) after retrying: {detail}", record,
                                      status, method, url, code, field_errors)
        if field_errors:
            text = "; ".join(f"{e.field}: {e.message}" for e in field_errors)
        else:
            text = detail or f"HTTP {status}"
        if status >= 500 and creating:
            text += (" The addition may have been created: read the agreement's additions before trying "
                     "again.")
        raise ConnectWiseApiError(self._psa, text, record, status, method, url, code, field_errors)

    def _get_all(self, path: str, record: str, *, conditions: str | None = None, fields: str | None = None,
                 child_conditions: str | None = None, collection: bool = True) -> list[Any]:
        """Every record of a collection, page by page. Each page is requested with this
        client's own parameters (conditions included); the ``Link`` header only says whether a
        next page exists and which. Broken or looping links, a full page with no ``Link`` and a
        record seen twice raise ``PsaError``."""
        params: dict[str, Any] = {"pageSize": self.page_size, "orderBy": "id asc"}
        if conditions:
            params["conditions"] = conditions
        if child_conditions:
            params["childConditions"] = child_conditions
        if fields:
            params["fields"] = fields
        url = self._url(path)
        rows: list[Any] = []
        seen: set[Any] = set()
        page = 1
        while True:
            params["page"] = page
            response = self._send("GET", url, record=record, params=params)
            if response.status_code >= 400:
                self._raise(response, "GET", response.url or url, record, creating=False, collection=collection)
            items = self._body(response, "GET", response.url or url, record)
            if not isinstance(items, list):
                raise PsaError(self._psa, f"page {page} is not a list: {str(items)[:200]!r}", record,
                               response.status_code, "GET", response.url)
            for item in items:
                ident = item.get("id") if isinstance(item, dict) else None
                if ident is not None:
                    if ident in seen:
                        raise PsaError(self._psa, f"paging is inconsistent: record {ident} came back twice "
                                       f"(page {page}); the list changed while it was read or the Link is "
                                       "broken", record, response.status_code, "GET", response.url)
                    seen.add(ident)
            rows.extend(items)
            following = self._next_page(response, path, page, len(items), record)
            if following is None:
                return rows
            page = following

    def _next_page(self, response: requests.Response, path: str, page: int, count: int, record: str) -> int | None:
        links = response.links
        where = response.url

        def broken(problem: str) -> PsaError:
            return PsaError(self._psa, f"paging is broken after page {page}: {problem}", record,
                            response.status_code, "GET", where)

        nxt = links.get("next", {}).get("url")
        last = self._link_page(links.get("last", {}).get("url"))
        if nxt is None:
            if last is not None and last > page:
                raise broken(f"no next link although the last page is {last}")
            if not links and count >= self.page_size:
                raise broken("a full page came without a Link header, so the rest cannot be read")
            return None
        # The next page is requested from this client's own URL and parameters, never from the link
        # (which may name another host or codebase on cloud); the link must be for this resource.
        linked = urlsplit(nxt).path.rstrip("/")
        marker = linked.lower().find("/apis/3.0/")
        if marker < 0 or linked[marker + len("/apis/3.0"):].lower() != path.lower():
            raise broken(f"the next link points to another resource ({linked})")
        following = self._link_page(nxt)
        if following is None:
            raise broken(f"the next link has no page number ({nxt})")
        if following != page + 1:
            raise broken(f"the next link goes to page {following}, not {page + 1} (a looping or skipping link)")
        if last is not None and following > last:
            raise broken(f"the next link goes to page {following}, past the last page {last}")
        if count == 0:
            raise broken("an empty page came with a next link")
        return following

    @staticmethod
    def _link_page(url: str | None) -> int | None:
        if not url:
            return None
        query = parse_qs(urlsplit(url).query)
        for key, values in query.items():
            if key.lower() == "page" and values:
                try:
                    return int(values[0])
                except ValueError:
                    return None
        return None
