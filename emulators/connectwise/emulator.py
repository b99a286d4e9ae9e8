"""A ConnectWise PSA (Manage) REST API emulator.

It answers the documented paths under ``/{codebase}/apis/3.0`` with the documented JSON shapes
(field names from ConnectWise's OpenAPI document, as the generated clients list them), the
documented query language (``conditions``, ``childConditions``, ``fields``, ``orderBy``,
``page``/``pageSize`` with ``Link`` headers, forward-only paging), the documented error
envelope (``{"code", "message", "errors"}``) and authentication (``Basic
base64(companyId+publicKey:privateKey)`` plus a ``clientId`` header).

State lives in plain dicts that are the API records themselves; every change replaces a record
with a new dict (copy on write), so a response being serialised is never mutated under it.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

from emulators.base import BadRequest, Request, Response
from emulators.common import PsaEmulator, retry_after
from emulators.connectwise import scenario as sc
from emulators.connectwise.conditions import (
    BOOL,
    DATE,
    LIST,
    NUM,
    REF,
    STR,
    ConditionError,
    FieldSpec,
    compile_child_conditions,
    compile_conditions,
    compile_order_by,
    parse_datetime,
    parse_fields,
    project,
    sort_records,
)
from shared.domain.periods import add_months

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000
API = r"/(?P<codebase>[^/]+)/apis/3\.0"

# Billing cycles of a fresh PSA's setup table; names not listed get the next ids, in order.
DEFAULT_BILLING_CYCLES = ("Monthly", "Quarterly", "Semi-Annual", "Annual", "Weekly", "Bi-Weekly",
                          "Bi-Monthly")

# Billing cycle names (letters only, lower case) -> (months, days) of one cycle.
CYCLE_STEPS = {"monthly": (1, 0), "bimonthly": (2, 0), "quarterly": (3, 0), "semiannual": (6, 0), "annual": (12, 0),
               "yearly": (12, 0), "weekly": (0, 7), "biweekly": (0, 14)}

INFO = {"_info": REF, "_info/lastUpdated": DATE, "_info/updatedBy": STR, "_info/dateEntered": DATE,
        "_info/enteredBy": STR}


def _ref(name: str, *subfields: tuple[str, str]) -> dict[str, str]:
    spec = {name: REF}
    spec.update({f"{name}/{sub}": kind for sub, kind in subfields})
    return spec


_ID_NAME = (("id", NUM), ("name", STR))

COMPANY_SPEC: FieldSpec = {
    "id": NUM, "identifier": STR, "name": STR,
    **_ref("status", *_ID_NAME),
    "addressLine1": STR, "addressLine2": STR, "city": STR, "state": STR, "zip": STR,
    **_ref("country", *_ID_NAME),
    "phoneNumber": STR, "faxNumber": STR, "website": STR, "deletedFlag": BOOL, "dateAcquired": DATE,
    "types": LIST, "types/id": NUM, "types/name": STR,
    **INFO,
}

CONTACT_SPEC: FieldSpec = {
    "id": NUM, "firstName": STR, "lastName": STR,
    **_ref("company", ("id", NUM), ("identifier", STR), ("name", STR)),
    "inactiveFlag": BOOL, "title": STR, "defaultFlag": BOOL,
    "communicationItems": LIST, "communicationItems/id": NUM, "communicationItems/type": REF,
    "communicationItems/type/id": NUM, "communicationItems/type/name": STR,
    "communicationItems/value": STR, "communicationItems/extension": STR,
    "communicationItems/defaultFlag": BOOL, "communicationItems/domain": STR,
    "communicationItems/communicationType": STR,
    **INFO,
}

CATALOG_SPEC: FieldSpec = {
    "id": NUM, "identifier": STR, "description": STR, "inactiveFlag": BOOL,
    **_ref("subcategory", *_ID_NAME), **_ref("type", *_ID_NAME), **_ref("category", *_ID_NAME),
    "productClass": STR, "serializedFlag": BOOL,
    **_ref("unitOfMeasure", *_ID_NAME),
    "price": NUM, "cost": NUM, "priceAttribute": STR, "taxableFlag": BOOL, "customerDescription": STR,
    "recurringFlag": BOOL, "recurringRevenue": NUM, "recurringCost": NUM,
    "dateEntered": DATE,
    **INFO,
}

AGREEMENT_TYPE_SPEC: FieldSpec = {
    "id": NUM, "name": STR, "defaultFlag": BOOL, "inactiveFlag": BOOL, "prorateFlag": BOOL,
    **_ref("billingCycle", *_ID_NAME),
    "invoicingCycle": STR, "billTime": STR, "billExpenses": STR, "billProducts": STR, "employeeCompRate": STR,
    "employeeCompNotExceed": STR,
    **INFO,
}

AGREEMENT_SPEC: FieldSpec = {
    "id": NUM, "name": STR,
    **_ref("type", *_ID_NAME),
    **_ref("company", ("id", NUM), ("identifier", STR), ("name", STR)),
    **_ref("contact", *_ID_NAME),
    **_ref("parentAgreement", *_ID_NAME),
    "customerPO": STR, "startDate": DATE, "endDate": DATE, "noEndingDateFlag": BOOL,
    "cancelledFlag": BOOL, "dateCancelled": DATE, "reasonCancelled": STR,
    "applicationUnits": STR, "applicationLimit": NUM, "applicationCycle": STR,
    "applicationUnlimitedFlag": BOOL, "oneTimeFlag": BOOL,
    **_ref("billingCycle", *_ID_NAME),
    "billOneTimeFlag": BOOL,
    **_ref("billingTerms", *_ID_NAME),
    "invoicingCycle": STR, "billAmount": NUM, "taxable": BOOL, "prorateFirstBill": NUM,
    "billStartDate": DATE, "prorateFlag": BOOL, "invoiceProratedAdditionsFlag": BOOL,
    "invoiceDescription": STR, "billTime": STR, "billExpenses": STR, "billProducts": STR,
    "periodType": STR, "autoInvoiceFlag": BOOL, "nextInvoiceDate": STR, "agreementStatus": STR,
    **INFO,
}

ADDITION_SPEC: FieldSpec = {
    "id": NUM,
    **_ref("product", ("id", NUM), ("identifier", STR)),
    "quantity": NUM, "lessIncluded": NUM, "unitPrice": NUM, "unitCost": NUM, "billCustomer": STR,
    "effectiveDate": DATE, "cancelledDate": DATE, "taxableFlag": BOOL, "serialNumber": STR,
    "invoiceDescription": STR, "purchaseItemFlag": BOOL, "specialOrderFlag": BOOL, "agreementId": NUM,
    "description": STR, "billedQuantity": NUM, "uom": STR, "extPrice": NUM, "extCost": NUM,
    "sequenceNumber": NUM, "margin": NUM, "prorateCost": NUM, "proratePrice": NUM,
    "extendedProrateCost": NUM, "extendedProratePrice": NUM, "prorateCurrentPeriodFlag": BOOL,
    "agreementStatus": STR,
    **_ref("invoiceGrouping", *_ID_NAME),
    **INFO,
}

# The communication types of a fresh PSA's setup table: (id, description, communicationType).
COMMUNICATION_TYPES = ((1, "Email", "Email"), (2, "Direct", "Phone"), (3, "Mobile", "Phone"), (4, "Fax", "Fax"),
                       (5, "Home", "Phone"))
COMMUNICATION_TYPE_SPEC: FieldSpec = {"id": NUM, "description": STR, "phoneFlag": BOOL, "emailFlag": BOOL,
                                      "faxFlag": BOOL, "defaultFlag": BOOL, **INFO}
# Contact fields a client may write; a contact's limits (ConnectWise's contact screen).
CONTACT_WRITABLE = frozenset({"firstName", "lastName", "company", "title", "inactiveFlag", "communicationItems",
                              "nickName", "defaultFlag"})
CONTACT_LIMITS = {"firstName": 30, "lastName": 30, "title": 50, "nickName": 30}
COMMUNICATION_VALUE_MAX = 250

# Service boards of the emulated PSA and their statuses: (board id, name), (status id, board id,
# name, closedStatus, defaultFlag, inactive). Fixed: a scenario holds no service setup.
SERVICE_BOARDS = ((1, "Alerts"), (2, "Help Desk"))
BOARD_STATUSES = ((11, 1, "New", False, True, False), (12, 1, "In Progress", False, False, False),
                  (13, 1, ">Closed", True, False, False), (14, 1, "Closed (old)", True, False, True),
                  (21, 2, "New", False, True, False), (23, 2, ">Closed", True, False, False))
PRIORITIES = ((1, "Priority 1 - Emergency Response"), (2, "Priority 2 - Quick Response"),
              (3, "Priority 3 - Normal Response"), (4, "Priority 4 - Schedule Maintenance"))
DEFAULT_PRIORITY = 3
TICKET_SPEC: FieldSpec = {
    "id": NUM, "summary": STR, "recordType": STR,
    **_ref("board", *_ID_NAME), **_ref("company", ("id", NUM), ("identifier", STR), ("name", STR)),
    **_ref("status", *_ID_NAME), **_ref("priority", *_ID_NAME),
    "closedFlag": BOOL, "closedDate": DATE, "closedBy": STR, "externalXRef": STR, "dateResolved": STR,
    **INFO,
}
BOARD_STATUS_SPEC: FieldSpec = {"id": NUM, "name": STR, **_ref("board", *_ID_NAME), "closedStatus": BOOL,
                                "defaultFlag": BOOL, "inactive": BOOL, "sortOrder": NUM, **INFO}
TICKET_NOTE_SPEC: FieldSpec = {"id": NUM, "ticketId": NUM, "text": STR, "detailDescriptionFlag": BOOL,
                               "internalAnalysisFlag": BOOL, "resolutionFlag": BOOL, "dateCreated": DATE,
                               "createdBy": STR, **INFO}
# Ticket fields a client may write on POST (the initial texts only there) and with PATCH.
TICKET_POST = frozenset({"summary", "board", "company", "status", "priority", "externalXRef", "recordType",
                         "initialDescription", "initialInternalAnalysis", "initialResolution"})
TICKET_PATCH = frozenset({"summary", "board", "company", "status", "priority", "externalXRef"})
TICKET_LIMITS = {"summary": 100, "externalXRef": 100}
NOTE_FLAGS = ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")

# Addition fields a client may write (POST/PUT body, PATCH path); everything else is computed.
ADDITION_WRITABLE = frozenset({
    "product", "quantity", "lessIncluded", "unitPrice", "unitCost", "billCustomer", "effectiveDate",
    "cancelledDate", "taxableFlag", "serialNumber", "invoiceDescription", "purchaseItemFlag",
    "specialOrderFlag", "description", "uom", "sequenceNumber", "prorateCurrentPeriodFlag", "invoiceGrouping",
})


class InvalidObject(Exception):
    """A 400 ``InvalidObject`` answer with per-field errors."""

    def __init__(self, resource: str, errors: list[dict[str, Any]], message: str | None = None) -> None:
        super().__init__(message or f"{resource} object is invalid")
        self.resource = resource
        self.errors = errors
        self.message = message or f"{resource} object is invalid"


def _field_error(code: str, message: str, field: str, resource: str = "addition") -> dict[str, Any]:
    return {"code": code, "message": message, "resource": resource, "field": field}


class _Refused(Exception):
    """A written field's value the PSA refuses: its error code, the message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _number_field(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused("InvalidField", f"The field {key} must be a number.")
    return float(value)


def _text_field(key: str, value: Any, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise _Refused("InvalidField", f"The field {key} must be a string.")
    if limit is not None and len(value) > limit:
        raise _Refused("MaxLengthField", f"The field {key} must be a string with a maximum length of {limit}.")
    return value


def _flag_field(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Refused("InvalidField", f"The field {key} must be true or false.")
    return value


def _date_field(key: str, value: Any) -> str | None:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise _Refused("InvalidField", f"The field {key} must be a datetime (e.g. 2026-01-01T00:00:00Z).")
    return iso(parsed.date())


def iso(value: date | datetime | None) -> str | None:
    """ConnectWise's datetime format: ``2026-01-01T00:00:00Z``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{value.isoformat()}T00:00:00Z"


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _num(value: Decimal | float | int) -> float:
    """A JSON number the way the PSA's serializer writes a double (whole values as ``5.0``)."""
    return float(value)


class ConnectWiseEmulator(PsaEmulator[sc.Scenario]):
    """ConnectWise PSA REST API. ``scenario_section`` is the ``connectwise:`` mapping of a
    scenario (see ``emulators.connectwise.scenario``); ``clock`` is the monotonic clock of the
    optional rate limit (tests pass a fake one) and ``now`` the wall clock of ``_info``."""

    service = "connectwise"
    root = sc.ROOT

    # ------------------------------------------------------------------ state
    def load(self, section: Any) -> None:
        scenario = self.adopt(sc.parse_scenario(section))
        stamp = iso(datetime(self.today.year, self.today.month, self.today.day, tzinfo=UTC))
        self._loaded_stamp = stamp
        self._credentials = {(scenario.company_id.lower(), c.public_key, c.private_key)
                             for c in scenario.credentials}
        self._client_ids = {c.client_id.lower() for c in scenario.credentials if c.client_id}
        self._codebases = {scenario.codebase.lower(), "v4_6_release"}

        self.billing_cycles: dict[str, dict[str, Any]] = {}
        for name in DEFAULT_BILLING_CYCLES:
            self._billing_cycle(name)
        # Invoice groupings (a setup table): the names the scenario's additions use, numbered in order.
        self.invoice_groupings: dict[int, dict[str, Any]] = {}
        for addition in scenario.additions:
            if addition.invoice_grouping is not None:
                self._invoice_grouping(addition.invoice_grouping)

        self.companies = {c.id: self._company_record(c) for c in scenario.companies}
        self.communication_types = self._communication_type_records()
        self.contacts = {c.id: self._contact_record(c) for c in scenario.contacts}
        self._next_contact_id = max(self.contacts, default=0) + 1
        self._next_item_id = max((item["id"] for c in self.contacts.values() for item in c["communicationItems"]),
                                 default=0) + 1
        self.catalog = {c.id: self._catalog_record(c) for c in scenario.catalog}
        self.catalog_by_identifier = {c.identifier.lower(): c.id for c in scenario.catalog}
        self.agreement_types = {t.id: self._agreement_type_record(t) for t in scenario.agreement_types}
        types = {t.id: t for t in scenario.agreement_types}
        self.agreements: dict[int, dict[str, Any]] = {}
        for entry in scenario.agreements:
            self.agreements[entry.id] = self._agreement_record(entry, types[entry.type_id])
        for entry in scenario.agreements:  # parents may come later in the file
            if entry.parent_agreement_id is not None:
                parent = self.agreements[entry.parent_agreement_id]
                self.agreements[entry.id]["parentAgreement"] = {"id": parent["id"], "name": parent["name"]}
        self.additions: dict[int, dict[int, dict[str, Any]]] = {a: {} for a in self.agreements}
        self.addition_owner: dict[int, int] = {}
        for item in scenario.additions:
            record = self._addition_from_entry(item)
            self.additions[item.agreement_id][item.id] = record
            self.addition_owner[item.id] = item.agreement_id
        self._next_addition_id = max(self.addition_owner, default=0) + 1
        self.boards: dict[int, dict[str, Any]] = {ident: {"id": ident, "name": name} for ident, name in SERVICE_BOARDS}
        self.board_statuses: dict[int, dict[str, Any]] = {
            ident: {"id": ident, "name": name, "board": dict(self.boards[board]), "closedStatus": closed,
                    "defaultFlag": default, "inactive": inactive, "sortOrder": ident % 10,
                    "_info": self._info(self._loaded_stamp)}
            for ident, board, name, closed, default, inactive in BOARD_STATUSES}
        self.priorities: dict[int, dict[str, Any]] = {ident: {"id": ident, "name": name} for ident, name in PRIORITIES}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.ticket_notes: dict[int, dict[str, Any]] = {}

    def state(self) -> dict[str, Any]:
        """What the PSA holds now, as its API shows it: companies, contacts, catalog, agreement
        types and agreements, each agreement with its ``additions`` (ordered by id)."""
        agreements = []
        for agreement_id in sorted(self.agreements):
            record = dict(self.agreements[agreement_id])
            record["additions"] = [self.additions[agreement_id][i] for i in sorted(self.additions[agreement_id])]
            agreements.append(record)
        return {
            "codebase": self.scenario.codebase,
            "companyId": self.scenario.company_id,
            "companies": [self.companies[i] for i in sorted(self.companies)],
            "contacts": [self.contacts[i] for i in sorted(self.contacts)],
            "catalog": [self.catalog[i] for i in sorted(self.catalog)],
            "agreementTypes": [self.agreement_types[i] for i in sorted(self.agreement_types)],
            "agreements": agreements,
            "tickets": [dict(self.tickets[i], notes=[n for n in self.ticket_notes.values() if n["ticketId"] == i])
                        for i in sorted(self.tickets)],
        }

    # ------------------------------------------------------------------ record builders
    def _info(self, stamp: str | None = None) -> dict[str, Any]:
        when = stamp or iso(self._now())
        member = self.scenario.member
        return {"lastUpdated": when, "updatedBy": member, "dateEntered": self._loaded_stamp,
                "enteredBy": member}

    def _billing_cycle(self, name: str) -> dict[str, Any]:
        key = name.lower()
        if key not in self.billing_cycles:
            self.billing_cycles[key] = {"id": len(self.billing_cycles) + 1, "name": name}
        return dict(self.billing_cycles[key])

    def _invoice_grouping(self, name: str) -> dict[str, Any]:
        for grouping in self.invoice_groupings.values():
            if grouping["name"].lower() == name.lower():
                return dict(grouping)
        ident = len(self.invoice_groupings) + 1
        self.invoice_groupings[ident] = {"id": ident, "name": name}
        return dict(self.invoice_groupings[ident])

    def _company_ref(self, company_id: int) -> dict[str, Any]:
        company = self.companies[company_id]
        return {"id": company["id"], "identifier": company["identifier"], "name": company["name"]}

    def _company_record(self, c: sc.CompanyEntry) -> dict[str, Any]:
        statuses = {"active": 1, "inactive": 2}
        return {
            "id": c.id, "identifier": c.identifier, "name": c.name,
            "status": {"id": statuses.get(c.status.lower(), 3), "name": c.status},
            "addressLine1": c.address_line1, "addressLine2": None, "city": c.city, "state": c.state,
            "zip": c.zip,
            "country": {"id": 1, "name": c.country} if c.country else None,
            "phoneNumber": c.phone_number, "faxNumber": None, "website": c.website,
            "deletedFlag": c.deleted, "dateAcquired": self._loaded_stamp,
            "types": [{"id": i + 1, "name": t} for i, t in enumerate(c.types)],
            "_info": self._info(self._loaded_stamp),
        }

    def _contact_record(self, c: sc.ContactEntry) -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        for index, email in enumerate(c.emails):
            items.append({"id": c.id * 100 + index + 1, "type": {"id": 1, "name": "Email"}, "value": email,
                          "defaultFlag": index == 0, "domain": "@" + email.split("@", 1)[1],
                          "communicationType": "Email"})
        if c.phone:
            items.append({"id": c.id * 100 + 98, "type": {"id": 2, "name": "Direct"}, "value": c.phone,
                          "defaultFlag": True, "communicationType": "Phone"})
        if c.mobile:
            items.append({"id": c.id * 100 + 99, "type": {"id": 3, "name": "Mobile"}, "value": c.mobile,
                          "defaultFlag": not c.phone, "communicationType": "Phone"})
        return {
            "id": c.id, "firstName": c.first_name, "lastName": c.last_name,
            "company": self._company_ref(c.company_id), "inactiveFlag": c.inactive, "title": c.title,
            "defaultFlag": False, "communicationItems": items, "types": [],
            "_info": self._info(self._loaded_stamp),
        }

    def _communication_type_records(self) -> dict[int, dict[str, Any]]:
        return {ident: {"id": ident, "description": name, "phoneFlag": kind == "Phone", "emailFlag": kind == "Email",
                        "faxFlag": kind == "Fax", "defaultFlag": ident == 1, "_info": self._info(self._loaded_stamp)}
                for ident, name, kind in COMMUNICATION_TYPES}

    def _catalog_record(self, c: sc.CatalogEntry) -> dict[str, Any]:
        return {
            "id": c.id, "identifier": c.identifier, "description": c.description,
            "inactiveFlag": c.inactive,
            "subcategory": {"id": 1, "name": c.subcategory} if c.subcategory else None,
            "type": {"id": 1, "name": "Licence"}, "productClass": c.product_class, "serializedFlag": False,
            "serializedCostFlag": False, "phaseProductFlag": False,
            "unitOfMeasure": {"id": 1, "name": c.uom},
            "price": _num(c.price), "cost": _num(c.cost), "priceAttribute": "FixedFee",
            "taxableFlag": c.taxable, "dropShipFlag": False, "specialOrderFlag": False,
            "customerDescription": c.customer_description or c.description,
            "recurringFlag": c.product_class == "Agreement", "recurringRevenue": _num(c.price),
            "recurringCost": _num(c.cost), "recurringOneTimeFlag": False,
            "category": {"id": 1, "name": "Software"}, "dateEntered": self._loaded_stamp,
            "_info": self._info(self._loaded_stamp),
        }

    def _agreement_type_record(self, t: sc.AgreementTypeEntry) -> dict[str, Any]:
        return {
            "id": t.id, "name": t.name, "defaultFlag": t.default, "inactiveFlag": t.inactive,
            "prorateFlag": t.prorate,
            "billingCycle": self._billing_cycle(t.billing_cycle) if t.billing_cycle else None,
            "invoicingCycle": "ContractYear",
            # required by ConnectWise's schema of an agreement type (the defaults of a new type)
            "billTime": "Billable", "billExpenses": "Billable", "billProducts": "Billable",
            "employeeCompRate": "Actual", "employeeCompNotExceed": "Billing",
            "_info": self._info(self._loaded_stamp),
        }

    def _status(self, start: date, end: date | None, cancelled: bool) -> str:
        if cancelled:
            return "Cancelled"
        if end is not None and end < self.today:
            return "Expired"
        if start > self.today:
            return "Inactive"
        return "Active"

    @staticmethod
    def _cycle_start(anchor: date, cycle_name: str, k: int) -> date | None:
        """The start of cycle ``k`` of an agreement anchored on ``anchor`` (None: a cycle the
        emulator does not know)."""
        step = CYCLE_STEPS.get(re.sub(r"[^a-z]", "", cycle_name.lower()))
        if step is None:
            return None
        months, days = step
        return add_months(anchor, months * k) if months else date.fromordinal(anchor.toordinal() + days * k)

    def _next_cycle(self, anchor: date, cycle_name: str, after: date) -> date | None:
        """The first cycle start after ``after`` (the anchor itself when it is later)."""
        k = 0
        while (start := self._cycle_start(anchor, cycle_name, k)) is not None and start <= after:
            k += 1
        return start

    def _default_next_invoice(self, a: sc.AgreementEntry, cycle_name: str | None) -> date | None:
        """ConnectWise moves nextInvoiceDate on when a cycle is invoiced; a scenario that does not
        say has invoiced every cycle up to the one containing today."""
        if a.next_invoice_given:
            return a.next_invoice_date
        if cycle_name is None or a.cancelled:
            return None
        return self._next_cycle(a.start_date, cycle_name, self.today)

    def invoice_agreement(self, agreement_id: int) -> str | None:
        """Invoice the agreement's next cycle, as Agreement Invoicing does: nextInvoiceDate moves
        to the following cycle. Returns the new nextInvoiceDate."""
        with self.lock:
            record = dict(self.agreements[agreement_id])
            cycle = (record.get("billingCycle") or {}).get("name")
            current = parse_datetime(record["nextInvoiceDate"]) if record.get("nextInvoiceDate") else None
            start = parse_datetime(record["startDate"])
            if cycle is None or current is None or start is None:
                raise ValueError(f"agreement {agreement_id} has no cycle to invoice")
            following = self._next_cycle(start.date(), cycle, current.date())
            record["nextInvoiceDate"] = iso(following)
            record["_info"] = self._info()
            self.agreements[agreement_id] = record
            return iso(following)

    def _agreement_record(self, a: sc.AgreementEntry, agreement_type: sc.AgreementTypeEntry) -> dict[str, Any]:
        cycle_name = a.billing_cycle if a.billing_cycle is not None else agreement_type.billing_cycle
        prorate = a.prorate if a.prorate is not None else agreement_type.prorate
        contact = None
        if a.contact_id is not None:
            person = self.contacts[a.contact_id]
            contact = {"id": person["id"], "name": f"{person['firstName']} {person['lastName']}".strip()}
        return {
            "id": a.id, "name": a.name,
            "type": {"id": agreement_type.id, "name": agreement_type.name},
            "company": self._company_ref(a.company_id),
            "contact": contact,
            "parentAgreement": None,
            "customerPO": a.customer_po,
            "startDate": iso(a.start_date), "endDate": iso(a.end_date),
            "noEndingDateFlag": a.end_date is None,
            "cancelledFlag": a.cancelled,
            "dateCancelled": iso(a.date_cancelled or (self.today if a.cancelled else None)),
            "reasonCancelled": a.reason_cancelled,
            "applicationUnits": "Amount", "applicationLimit": 0.0, "applicationCycle": "CalendarMonth",
            "applicationUnlimitedFlag": False, "oneTimeFlag": False,
            "coverAgreementTime": False, "coverAgreementProduct": False, "coverAgreementExpense": False,
            "coverSalesTax": False, "carryOverUnused": False, "allowOverruns": False,
            "billingCycle": self._billing_cycle(cycle_name) if cycle_name else None,
            "billOneTimeFlag": False,
            "billingTerms": {"id": 1, "name": a.billing_terms},
            "invoicingCycle": a.invoicing_cycle,
            "billAmount": _num(a.bill_amount), "taxable": a.taxable, "prorateFirstBill": 0.0,
            "billStartDate": iso(a.start_date),
            "prorateFlag": prorate,
            "invoiceProratedAdditionsFlag": a.invoice_prorated_additions,
            "invoiceDescription": None,
            "billTime": "Billable", "billExpenses": "Billable", "billProducts": "Billable",
            "billableTimeInvoice": False, "billableExpenseInvoice": False, "billableProductInvoice": True,
            "periodType": a.period_type,
            "autoInvoiceFlag": False,
            "nextInvoiceDate": iso(self._default_next_invoice(a, cycle_name)),
            "agreementStatus": self._status(a.start_date, a.end_date, a.cancelled),
            "_info": self._info(self._loaded_stamp),
        }

    def _addition_from_entry(self, item: sc.AdditionEntry) -> dict[str, Any]:
        product = self.catalog[item.product_id]
        agreement = self.agreements[item.agreement_id]
        effective = item.effective_date or (parse_datetime(agreement["startDate"]) or self._now()).date()
        fields: dict[str, Any] = {
            "product": {"id": product["id"], "identifier": product["identifier"]},
            "quantity": _num(item.quantity),
            "lessIncluded": _num(item.less_included),
            "unitPrice": _num(item.unit_price if item.unit_price is not None else Decimal(str(product["price"]))),
            "unitCost": _num(item.unit_cost if item.unit_cost is not None else Decimal(str(product["cost"]))),
            "billCustomer": item.bill_customer,
            "effectiveDate": iso(effective),
            "cancelledDate": iso(item.cancelled_date),
            "taxableFlag": item.taxable if item.taxable is not None else product["taxableFlag"],
            "serialNumber": item.serial_number,
            "invoiceDescription": (item.invoice_description if item.invoice_description is not None
                                   else product["customerDescription"]),
            "purchaseItemFlag": item.purchase_item,
            "specialOrderFlag": item.special_order,
            "invoiceGrouping": (self._invoice_grouping(item.invoice_grouping) if item.invoice_grouping is not None
                                else None),
            "description": item.description or product["description"],
            "uom": item.uom or product["unitOfMeasure"]["name"],
            "sequenceNumber": _num(item.sequence_number) if item.sequence_number is not None else None,
            "prorateCurrentPeriodFlag": item.prorate_current_period,
        }
        return self._finish_addition(item.id, item.agreement_id, fields, self._loaded_stamp)

    def _finish_addition(self, addition_id: int, agreement_id: int, fields: dict[str, Any],
                         stamp: str | None = None) -> dict[str, Any]:
        """The full addition record: written fields plus what the PSA computes from them."""
        agreement = self.agreements[agreement_id]
        quantity = Decimal(str(fields["quantity"] or 0))
        less = Decimal(str(fields.get("lessIncluded") or 0))
        price = Decimal(str(fields.get("unitPrice") or 0))
        cost = Decimal(str(fields.get("unitCost") or 0))
        billed = quantity - less
        ext_price = billed * price
        ext_cost = billed * cost
        prorate_price, prorate_cost = self._prorate(agreement, fields.get("effectiveDate"), price, cost)
        sequence = fields.get("sequenceNumber")
        if sequence is None:
            sequence = float(len(self.additions.get(agreement_id, {})) + 1)
        record = {
            "id": addition_id,
            "product": fields["product"],
            "quantity": _num(quantity),
            "lessIncluded": _num(less),
            "unitPrice": _num(price),
            "unitCost": _num(cost),
            "billCustomer": fields["billCustomer"],
            "effectiveDate": fields.get("effectiveDate"),
            "cancelledDate": fields.get("cancelledDate"),
            "taxableFlag": bool(fields.get("taxableFlag")),
            "serialNumber": fields.get("serialNumber"),
            "invoiceDescription": fields.get("invoiceDescription"),
            "purchaseItemFlag": bool(fields.get("purchaseItemFlag")),
            "specialOrderFlag": bool(fields.get("specialOrderFlag")),
            "agreementId": agreement_id,
            "description": fields.get("description"),
            "billedQuantity": _num(billed),
            "uom": fields.get("uom") or "Each",
            "extPrice": _money(ext_price),
            "extCost": _money(ext_cost),
            "sequenceNumber": _num(sequence),
            "margin": _money(ext_price - ext_cost),
            "prorateCost": _money(prorate_cost),
            "proratePrice": _money(prorate_price),
            "extendedProrateCost": _money(prorate_cost * billed),
            "extendedProratePrice": _money(prorate_price * billed),
            "prorateCurrentPeriodFlag": bool(fields.get("prorateCurrentPeriodFlag")),
            "agreementStatus": agreement["agreementStatus"],
            "invoiceGrouping": fields.get("invoiceGrouping"),
            "_info": self._info(stamp),
        }
        return record

    def _prorate(self, agreement: dict[str, Any], effective: str | None, price: Decimal,
                 cost: Decimal) -> tuple[Decimal, Decimal]:
        """Monthly agreements with prorate on: an addition effective after the 1st is charged for
        the days left in its first month (days remaining / days in month)."""
        cycle = (agreement.get("billingCycle") or {}).get("name", "")
        when = parse_datetime(effective) if effective else None
        if not agreement.get("prorateFlag") or when is None or str(cycle).lower() != "monthly" or when.day == 1:
            return Decimal(0), Decimal(0)
        days = calendar.monthrange(when.year, when.month)[1]
        share = Decimal(days - when.day + 1) / Decimal(days)
        return price * share, cost * share

    # ------------------------------------------------------------------ errors and auth
    def error_response(self, status: int, message: str, code: str = "Error") -> Response:
        """ConnectWise's error envelope; 429 answers as the developer guide shows it."""
        if status == 429:
            return Response(429, {"error": "ConnectWiseAPI",
                                  "message": "Too many requests. Please try again later."})
        return Response(status, {"code": code, "message": message, "errors": None})

    def _invalid(self, exc: InvalidObject) -> Response:
        return Response(400, {"code": "InvalidObject", "message": exc.message, "errors": exc.errors})

    def auth_failure(self, request: Request) -> Response:
        if self.scenario.cloud:
            # On ConnectWise cloud a refused login can look like a missing resource.
            return self.error_response(404, "The requested resource was not found.", "NotFound")
        return self.error_response(401, "The supplied authentication is incorrect.", "Unauthorized")

    def _authenticate(self, request: Request) -> Response | None:
        client_id = (request.header("clientid") or "").strip()
        if not client_id:
            if self.scenario.require_client_id:
                return self.error_response(
                    400, "A clientId header is required on every request: register one at "
                         "https://developer.connectwise.com/ClientID", "InvalidClientId")
        elif self._client_ids and client_id.lower() not in self._client_ids:
            return self.error_response(
                400, f"clientId {client_id} is not a registered clientId", "InvalidClientId")
        header = request.header("authorization") or ""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            return self.auth_failure(request)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return self.auth_failure(request)
        user, colon, private_key = decoded.partition(":")
        company, plus, public_key = user.partition("+")
        if not colon or not plus or (company.lower(), public_key, private_key) not in self._credentials:
            return self.auth_failure(request)
        return None

    def _throttle(self) -> Response | None:
        limit = self.scenario.rate_limit
        wait = None if limit is None else self._window.admit(limit.requests_per_minute, 60.0)
        if wait is None:
            return None
        seconds = retry_after(wait)
        response = Response(429, {"error": "ConnectWiseAPI",
                                  "message": f"Too many requests. Please try again in {seconds} seconds."})
        response.headers["Retry-After"] = seconds
        return response

    def _api(self, handler: Callable[[Request, Any], Response]) -> Callable[[Request, Any], Response]:
        """Every API route: codebase, rate limit, clientId and credentials, then the handler
        under the state lock, with query and validation errors answered as the PSA does."""

        def wrapped(request: Request, match: Any) -> Response:
            if match.group("codebase").lower() not in self._codebases:
                return self.error_response(404, f"no API at codebase {match.group('codebase')}", "NotFound")
            throttled = self._throttle()
            if throttled is not None:
                return throttled
            refused = self._authenticate(request)
            if refused is not None:
                return refused
            try:
                with self.lock:
                    return handler(request, match)
            except ConditionError as exc:
                return Response(400, {"code": "InvalidObject", "message": str(exc), "errors": [
                    {"code": "InvalidQuery", "message": str(exc), "resource": "query", "field": exc.parameter}]})
            except InvalidObject as exc:
                return self._invalid(exc)

        return wrapped

    # ------------------------------------------------------------------ routes
    def register_routes(self) -> None:
        self.route("GET", r"/login/companyinfo/(?P<company>[^/]+)", self._company_info)
        routes: list[tuple[str, str, Callable[[Request, Any], Response]]] = [
            ("GET", r"/system/info", self._system_info),
            ("GET", r"/company/companies", lambda r, m: self._list(r, self.companies.values(), COMPANY_SPEC)),
            ("GET", r"/company/companies/count", lambda r, m: self._count(r, self.companies.values(), COMPANY_SPEC)),
            ("GET", r"/company/companies/(?P<id>\d+)", lambda r, m: self._one(r, self.companies, m, "Company")),
            ("GET", r"/company/contacts", lambda r, m: self._list(r, self.contacts.values(), CONTACT_SPEC)),
            ("GET", r"/company/contacts/count", lambda r, m: self._count(r, self.contacts.values(), CONTACT_SPEC)),
            ("GET", r"/company/contacts/(?P<id>\d+)", lambda r, m: self._one(r, self.contacts, m, "Contact")),
            ("POST", r"/company/contacts", self._create_contact),
            ("PATCH", r"/company/contacts/(?P<id>\d+)", self._patch_contact),
            ("GET", r"/company/communicationTypes",
             lambda r, m: self._list(r, self.communication_types.values(), COMMUNICATION_TYPE_SPEC)),
            ("GET", r"/service/tickets", lambda r, m: self._list(r, self.tickets.values(), TICKET_SPEC)),
            ("GET", r"/service/tickets/count", lambda r, m: self._count(r, self.tickets.values(), TICKET_SPEC)),
            ("GET", r"/service/tickets/(?P<id>\d+)", lambda r, m: self._one(r, self.tickets, m, "Ticket")),
            ("POST", r"/service/tickets", self._create_ticket),
            ("PATCH", r"/service/tickets/(?P<id>\d+)", self._patch_ticket),
            ("GET", r"/service/tickets/(?P<ticket>\d+)/notes",
             lambda r, m: self._list(r, self._notes_of(m), TICKET_NOTE_SPEC)),
            ("POST", r"/service/tickets/(?P<ticket>\d+)/notes", self._create_note),
            ("GET", r"/service/boards/(?P<board>\d+)/statuses",
             lambda r, m: self._list(r, [st for st in self.board_statuses.values()
                                         if st["board"]["id"] == int(m.group("board"))], BOARD_STATUS_SPEC)),
            ("GET", r"/procurement/catalog", lambda r, m: self._list(r, self.catalog.values(), CATALOG_SPEC)),
            ("GET", r"/procurement/catalog/count", lambda r, m: self._count(r, self.catalog.values(), CATALOG_SPEC)),
            ("GET", r"/procurement/catalog/(?P<id>\d+)", lambda r, m: self._one(r, self.catalog, m, "CatalogItem")),
            ("GET", r"/finance/agreements/types",
             lambda r, m: self._list(r, self.agreement_types.values(), AGREEMENT_TYPE_SPEC)),
            ("GET", r"/finance/agreements/types/count",
             lambda r, m: self._count(r, self.agreement_types.values(), AGREEMENT_TYPE_SPEC)),
            ("GET", r"/finance/agreements/types/(?P<id>\d+)",
             lambda r, m: self._one(r, self.agreement_types, m, "AgreementType")),
            ("GET", r"/finance/agreements", lambda r, m: self._list(r, self.agreements.values(), AGREEMENT_SPEC)),
            ("GET", r"/finance/agreements/count",
             lambda r, m: self._count(r, self.agreements.values(), AGREEMENT_SPEC)),
            ("GET", r"/finance/agreements/(?P<id>\d+)", lambda r, m: self._one(r, self.agreements, m, "Agreement")),
            ("GET", r"/finance/agreements/(?P<agreement>\d+)/additions",
             lambda r, m: self._list(r, self._additions_of(m).values(), ADDITION_SPEC)),
            ("GET", r"/finance/agreements/(?P<agreement>\d+)/additions/count",
             lambda r, m: self._count(r, self._additions_of(m).values(), ADDITION_SPEC)),
            ("GET", r"/finance/agreements/(?P<agreement>\d+)/additions/(?P<id>\d+)", self._get_addition),
            ("POST", r"/finance/agreements/(?P<agreement>\d+)/additions", self._create_addition),
            ("PATCH", r"/finance/agreements/(?P<agreement>\d+)/additions/(?P<id>\d+)", self._patch_addition),
            ("PUT", r"/finance/agreements/(?P<agreement>\d+)/additions/(?P<id>\d+)", self._put_addition),
            ("DELETE", r"/finance/agreements/(?P<agreement>\d+)/additions/(?P<id>\d+)", self._delete_addition),
        ]
        for method, pattern, handler in routes:
            self.route(method, API + pattern, self._api(handler))

    def _company_info(self, request: Request, match: Any) -> Response:
        if match.group("company").lower() != self.scenario.company_id.lower():
            return self.error_response(404, f"company {match.group('company')} was not found", "NotFound")
        host = request.header("host") or "127.0.0.1"
        return Response(200, {
            "CompanyName": self.scenario.company_name,
            "Codebase": self.scenario.codebase + "/",
            "VersionCode": self.scenario.version_code,
            "VersionNumber": "v4.6.99999",
            "CompanyID": self.scenario.company_id,
            "IsCloud": "True" if self.scenario.cloud else "False",
            "SiteUrl": host,
        })

    def _system_info(self, request: Request, match: Any) -> Response:
        return Response(200, {"version": self.scenario.version_code + ".99999", "isCloud": self.scenario.cloud,
                              "serverTimeZone": "Eastern Standard Time", "licenseBits": [],
                              "cloudRegion": "NA" if self.scenario.cloud else None})

    # ------------------------------------------------------------------ queries
    def _filtered(self, request: Request, records: Iterable[dict[str, Any]], spec: FieldSpec) -> list[dict[str, Any]]:
        predicates = []
        conditions = request.arg("conditions")
        if conditions is not None and conditions.strip():
            predicates.append(compile_conditions(conditions, spec))
        child = request.arg("childConditions")
        if child is not None and child.strip():
            predicates.append(compile_child_conditions(child, spec))
        if (request.arg("customFieldConditions") or "").strip():
            raise ConditionError("customFieldConditions: this resource has no custom fields in the emulator",
                                 "customFieldConditions")
        if not predicates:
            return list(records)
        return [record for record in records if all(p(record) for p in predicates)]

    def _count(self, request: Request, records: Iterable[dict[str, Any]], spec: FieldSpec) -> Response:
        return Response(200, {"count": len(self._filtered(request, records, spec))})

    def _one(self, request: Request, store: dict[int, dict[str, Any]], match: Any, entity: str) -> Response:
        record = store.get(int(match.group("id")))
        if record is None:
            return self.error_response(404, f"{entity} with id {match.group('id')} was not found.", "NotFound")
        return Response(200, self._shape(request, record))

    def _shape(self, request: Request, record: dict[str, Any]) -> dict[str, Any]:
        fields = request.arg("fields")
        if fields and fields.strip():
            return project(record, parse_fields(fields))
        return record

    def _list(self, request: Request, records: Iterable[dict[str, Any]], spec: FieldSpec) -> Response:
        matching = self._filtered(request, records, spec)
        size = self._int_arg(request, "pageSize", DEFAULT_PAGE_SIZE)
        size = min(size, MAX_PAGE_SIZE)  # the documented hard limit: larger sizes get 1,000
        forward_only = (request.header("pagination-type") or "").lower() == "forward-only"
        if forward_only:
            return self._forward_only(request, matching, size)
        order = request.arg("orderBy")
        matching.sort(key=lambda record: record["id"])
        if order and order.strip():
            sort_records(matching, compile_order_by(order, spec))
        page = self._int_arg(request, "page", 1)
        last = max(1, math.ceil(len(matching) / size))
        items = matching[(page - 1) * size: page * size]
        response = Response(200, [self._shape(request, record) for record in items])
        links = []
        if page > 1:
            links.append((self._page_url(request, {"page": 1}), "first"))
            links.append((self._page_url(request, {"page": min(page - 1, last)}), "prev"))
        if page < last:
            following = page + 1
            if self.broken_page(request):
                following = page  # a Link that leads back to this very page
            links.append((self._page_url(request, {"page": following}), "next"))
        links.append((self._page_url(request, {"page": last}), "last"))
        response.headers["Link"] = ", ".join(f'<{url}>; rel="{rel}"' for url, rel in links)
        return response

    def _forward_only(self, request: Request, matching: list[dict[str, Any]], size: int) -> Response:
        if (request.arg("orderBy") or "").strip():
            raise ConditionError("orderBy: forward-only paging is always ordered by id", "orderBy")
        after = self._int_arg(request, "pageId", 0, minimum=0)
        matching.sort(key=lambda record: record["id"])
        items = [record for record in matching if record["id"] > after][:size]
        response = Response(200, [self._shape(request, record) for record in items])
        if items:
            next_id = items[-1]["id"]
            if self.broken_page(request):
                next_id = after
            response.headers["Link"] = f'<{self._page_url(request, {"pageId": next_id})}>; rel="next"'
        return response

    def _int_arg(self, request: Request, name: str, default: int, minimum: int = 1) -> int:
        raw = request.arg(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConditionError(f"{name}: {raw!r} is not a whole number", name) from None
        if value < minimum:
            raise ConditionError(f"{name}: must be at least {minimum}, got {value}", name)
        return value

    def _page_url(self, request: Request, replace: dict[str, Any]) -> str:
        """This request's URL for another page: every other parameter kept with the caller's own
        spelling and order, then ``replace`` (``page`` or ``pageId``) last, as ConnectWise writes
        its links (``...?pageSize=50&page=2>; rel="next"``: clients such as pyconnectwise read
        the page number right before the ``>``)."""
        wanted = {key.lower() for key in replace}
        pairs: list[tuple[str, str]] = []
        for key, values in request.query.items():
            if key.lower() not in wanted:
                pairs.extend((key, value) for value in values)
        pairs.extend((key, str(value)) for key, value in replace.items())
        return f"https://{self.host(request)}{request.path}?{urlencode(pairs, quote_via=quote, safe='/')}"

    # ------------------------------------------------------------------ contacts
    def _create_contact(self, request: Request, match: Any) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise InvalidObject("contact", [_field_error("InvalidObject", "The request body must be a contact "
                                                         "object.", "body", "contact")])
        fields = self._validated_contact({"inactiveFlag": False, "communicationItems": []}, body, creating=True)
        ident = self._next_contact_id
        self._next_contact_id += 1
        record = self._finish_contact(ident, fields, None)
        self.contacts[ident] = record
        return Response(201, record)

    def _patch_contact(self, request: Request, match: Any) -> Response:
        ident = int(match.group("id"))
        current = self.contacts.get(ident)
        if current is None:
            raise BadRequest(f"Contact with id {ident} was not found.", 404, "NotFound")
        operations = request.json()
        if not isinstance(operations, list) or not operations:
            raise InvalidObject("contact", [_field_error(
                "InvalidObject", "A PATCH body must be a non-empty JSON array of operations.", "body", "contact")])
        changes: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for index, operation in enumerate(operations):
            if not isinstance(operation, dict):
                errors.append(_field_error("InvalidField", f"operation {index} is not an object", "body", "contact"))
                continue
            op = str(operation.get("op", "")).lower()
            path = str(operation.get("path", "")).lstrip("/")
            head = path.split("/")[0]
            if op not in ("replace", "add", "remove"):
                errors.append(_field_error("InvalidField", f"op {operation.get('op')!r} is not supported", path or "op",
                                           "contact"))
            elif head not in CONTACT_WRITABLE:
                code = "ReadOnlyField" if head in CONTACT_SPEC else "InvalidField"
                message = (f"The field {head} is read only." if head in CONTACT_SPEC
                           else f"{path} is not a field of a contact (paths are case sensitive).")
                errors.append(_field_error(code, message, head or "path", "contact"))
            elif "/" in path:
                continue  # documented: a location inside an object is not updated, yet the answer is 200
            elif op != "remove" and "value" not in operation:
                errors.append(_field_error("InvalidField", f"operation {index} on {path} has no value", path,
                                           "contact"))
            else:
                changes[head] = None if op == "remove" else operation["value"]
        if errors:
            raise InvalidObject("contact", errors)
        base = {key: current.get(key) for key in CONTACT_WRITABLE}
        base["company"] = {"id": current["company"]["id"]}
        fields = self._validated_contact(base, changes, creating=False)
        record = self._finish_contact(ident, fields, current)
        self.contacts[ident] = record
        return Response(200, record)

    def _validated_contact(self, base: dict[str, Any], changes: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        """Merge ``changes`` into ``base`` and check every written field as the PSA does; raises
        ``InvalidObject`` listing every problem."""
        errors: list[dict[str, Any]] = []
        fields = dict(base)
        for key, value in changes.items():
            if key not in CONTACT_WRITABLE:
                if key in CONTACT_SPEC and key not in ("id", "_info"):
                    errors.append(_field_error("ReadOnlyField", f"The field {key} is read only.", key, "contact"))
                elif key not in CONTACT_SPEC:
                    errors.append(_field_error("InvalidField", f"{key} is not a field of a contact.", key, "contact"))
                continue
            try:
                if key in CONTACT_LIMITS:
                    fields[key] = None if value is None else _text_field(key, value, CONTACT_LIMITS[key])
                elif key in ("inactiveFlag", "defaultFlag"):
                    fields[key] = False if value is None else _flag_field(key, value)
                else:
                    fields[key] = value
            except _Refused as refused:
                errors.append(_field_error(refused.code, str(refused), key, "contact"))
        if not fields.get("firstName"):
            errors.append(_field_error("NullValue", "The firstName field is required.", "firstName", "contact"))
        company = fields.get("company")
        company_id = company.get("id") if isinstance(company, dict) else None
        if company_id is None or company_id not in self.companies:
            errors.append(_field_error("NotFound" if company_id is not None else "NullValue",
                                       f"Company with id {company_id} was not found." if company_id is not None
                                       else "The company field is required.", "company", "contact"))
        items = fields.get("communicationItems")
        if items is None:
            fields["communicationItems"] = []
        elif not isinstance(items, list):
            errors.append(_field_error("InvalidField", "The field communicationItems must be a list.",
                                       "communicationItems", "contact"))
        else:
            fields["communicationItems"] = [self._communication_item(index, item, errors)
                                            for index, item in enumerate(items)]
        if errors:
            raise InvalidObject("contact", errors)
        return fields

    def _communication_item(self, index: int, item: Any, errors: list[dict[str, Any]]) -> dict[str, Any]:
        where = f"communicationItems[{index}]"
        if not isinstance(item, dict):
            errors.append(_field_error("InvalidField", f"{where} must be an object.", where, "contact"))
            return {}
        kind = item.get("type")
        found = None
        if isinstance(kind, dict):
            name = str(kind.get("name") or "").lower()
            for record in self.communication_types.values():
                if kind.get("id") == record["id"] or (kind.get("id") is None and name == record["description"].lower()):
                    found = record
        if found is None:
            errors.append(_field_error("NotFound", f"{where}.type: communication type {kind!r} was not found.",
                                       f"{where}.type", "contact"))
            return {}
        expected = "Email" if found["emailFlag"] else "Fax" if found["faxFlag"] else "Phone"
        given = item.get("communicationType")
        if given is not None and given != expected:
            errors.append(_field_error("InvalidField", f"{where}.communicationType must be {expected} for type "
                                       f"{found['description']}, got {given!r}.", f"{where}.communicationType",
                                       "contact"))
        value = item.get("value")
        if not isinstance(value, str) or not value.strip():
            errors.append(_field_error("NullValue", f"{where}.value is required.", f"{where}.value", "contact"))
            return {}
        if len(value) > COMMUNICATION_VALUE_MAX:
            errors.append(_field_error("MaxLengthField", f"{where}.value must be a string with a maximum length of "
                                       f"{COMMUNICATION_VALUE_MAX}.", f"{where}.value", "contact"))
        if expected == "Email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            errors.append(_field_error("InvalidField", f"{where}.value {value!r} is not a valid email address.",
                                       f"{where}.value", "contact"))
        written = {"id": item.get("id"), "type": {"id": found["id"], "name": found["description"]}, "value": value,
                   "defaultFlag": bool(item.get("defaultFlag")), "communicationType": expected}
        if item.get("extension") is not None:
            written["extension"] = item["extension"]
        if expected == "Email" and "@" in value:
            written["domain"] = "@" + value.split("@", 1)[1]
        return written

    def _finish_contact(self, ident: int, fields: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
        """The full contact record: the written fields, communication items numbered (an item that
        names an id of this contact keeps it, the others get new ones) and one default per kind."""
        own = {item["id"] for item in (current or {}).get("communicationItems", [])}
        items = []
        for item in fields["communicationItems"]:
            written = dict(item)
            if written.get("id") not in own:
                written["id"] = self._next_item_id
                self._next_item_id += 1
            items.append(written)
        for kind in ("Email", "Phone", "Fax"):
            of_kind = [item for item in items if item["communicationType"] == kind]
            if of_kind and not any(item["defaultFlag"] for item in of_kind):
                of_kind[0]["defaultFlag"] = True
        record = dict(current or {"types": [], "defaultFlag": False})
        record.update({
            "id": ident, "firstName": fields.get("firstName"), "lastName": fields.get("lastName") or "",
            "company": self._company_ref(int(fields["company"]["id"])),
            "inactiveFlag": bool(fields.get("inactiveFlag")),
            "title": fields.get("title"), "nickName": fields.get("nickName"),
            "defaultFlag": bool(fields.get("defaultFlag")), "communicationItems": items, "_info": self._info(),
        })
        return record

    # ------------------------------------------------------------------ service tickets
    def _create_ticket(self, request: Request, match: Any) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise InvalidObject("ticket", [_field_error("InvalidObject", "The request body must be a ticket object.",
                                                        "body", "ticket")])
        fields = self._validated_ticket({}, body, TICKET_POST)
        ident = max(self.tickets, default=0) + 1
        board = fields["board"]
        status = fields.get("status") or next(st for st in self.board_statuses.values()
                                              if st["board"]["id"] == board["id"] and st["defaultFlag"])
        record = {"id": ident, "summary": fields["summary"], "recordType": fields.get("recordType") or "ServiceTicket",
                  "board": board, "company": fields["company"], "status": {"id": status["id"], "name": status["name"]},
                  "priority": fields.get("priority") or dict(self.priorities[DEFAULT_PRIORITY]),
                  "externalXRef": fields.get("externalXRef"), "closedFlag": False, "closedDate": None,
                  "closedBy": None, "_info": self._info()}
        self._apply_status(record, status)
        self.tickets[ident] = record
        for key, flag in (("initialDescription", "detailDescriptionFlag"),
                          ("initialInternalAnalysis", "internalAnalysisFlag"),
                          ("initialResolution", "resolutionFlag")):
            if fields.get(key):
                self._add_note(ident, fields[key], {flag: True})
        return Response(201, record)

    def _patch_ticket(self, request: Request, match: Any) -> Response:
        ident = int(match.group("id"))
        current = self.tickets.get(ident)
        if current is None:
            raise BadRequest(f"Ticket with id {ident} was not found.", 404, "NotFound")
        operations = request.json()
        if not isinstance(operations, list) or not operations:
            raise InvalidObject("ticket", [_field_error(
                "InvalidObject", "A PATCH body must be a non-empty JSON array of operations.", "body", "ticket")])
        changes: dict[str, Any] = {}
        for index, operation in enumerate(operations):
            if not isinstance(operation, dict) or str(operation.get("op", "")).lower() != "replace" \
                    or "value" not in operation:
                raise InvalidObject("ticket", [_field_error(
                    "InvalidField", f"operation {index} must be {{op: replace, path, value}}", "body", "ticket")])
            changes[str(operation.get("path", "")).lstrip("/").split("/")[0]] = operation["value"]
        base = {"summary": current["summary"], "board": current["board"], "company": current["company"]}
        fields = self._validated_ticket(base, changes, TICKET_PATCH)
        record = dict(current)
        record.update({key: fields[key] for key in changes if key in fields})
        if "status" in changes:
            self._apply_status(record, self.board_statuses[fields["status"]["id"]])
        record["_info"] = self._info()
        self.tickets[ident] = record
        return Response(200, record)

    def _validated_ticket(self, base: dict[str, Any], changes: dict[str, Any],
                          writable: frozenset[str]) -> dict[str, Any]:
        """Merge ``changes`` into ``base`` as the PSA checks a ticket: required summary, board and
        company; references that exist; a status of the ticket's board; read-only fields refused."""
        errors: list[dict[str, Any]] = []
        fields = dict(base)
        for key, value in changes.items():
            if key not in writable:
                read_only = key in TICKET_SPEC or key.startswith("initial")
                errors.append(_field_error("ReadOnlyField" if read_only else "InvalidField",
                                           f"The field {key} is read only." if read_only
                                           else f"{key} is not a field of a ticket.", key, "ticket"))
                continue
            try:
                if key in TICKET_LIMITS or key.startswith("initial") or key == "recordType":
                    fields[key] = None if value is None else _text_field(key, value, TICKET_LIMITS.get(key))
                else:
                    fields[key] = value
            except _Refused as refused:
                errors.append(_field_error(refused.code, str(refused), key, "ticket"))
        if not fields.get("summary") and all(error["field"] != "summary" for error in errors):
            errors.append(_field_error("NullValue", "The summary field is required.", "summary", "ticket"))
        board = self._reference(fields, "board", self.boards, errors, required=True)
        company = self._reference(fields, "company", self.companies, errors, required=True)
        if company is not None:
            fields["company"] = self._company_ref(company["id"])
        self._reference(fields, "priority", self.priorities, errors, required=False)
        status = self._reference(fields, "status", self.board_statuses, errors, required=False)
        if status is not None and board is not None:
            if status["board"]["id"] != board["id"]:
                errors.append(_field_error("InvalidField", f"Status {status['id']} is not a status of board "
                                           f"{board['id']}.", "status", "ticket"))
            elif status["inactive"]:
                errors.append(_field_error("InvalidField", f"Status {status['name']} is inactive.", "status",
                                           "ticket"))
        if errors:
            raise InvalidObject("ticket", errors)
        return fields

    @staticmethod
    def _reference(fields: dict[str, Any], key: str, table: dict[int, dict[str, Any]], errors: list[dict[str, Any]],
                   *, required: bool) -> dict[str, Any] | None:
        """Resolve ``fields[key]`` (``{"id": n}``) in ``table``, writing the PSA's form of it back."""
        value = fields.get(key)
        if value is None:
            if required:
                errors.append(_field_error("NullValue", f"The {key} field is required.", key, "ticket"))
            return None
        ident = value.get("id") if isinstance(value, dict) else None
        if not isinstance(ident, int) or isinstance(ident, bool) or ident not in table:
            errors.append(_field_error("NotFound", f"The {key} {value!r} was not found.", key, "ticket"))
            return None
        found = table[ident]
        fields[key] = {"id": found["id"], "name": found["name"]}
        return found

    def _apply_status(self, record: dict[str, Any], status: dict[str, Any]) -> None:
        """A closed status closes the ticket (closedFlag, closedDate, closedBy); another reopens it."""
        record["status"] = {"id": status["id"], "name": status["name"]}
        if status["closedStatus"]:
            if not record.get("closedFlag"):
                record.update({"closedFlag": True, "closedDate": iso(self._now()), "closedBy": self.scenario.member})
        else:
            record.update({"closedFlag": False, "closedDate": None, "closedBy": None})

    def _notes_of(self, match: Any) -> list[dict[str, Any]]:
        ticket = int(match.group("ticket"))
        if ticket not in self.tickets:
            raise BadRequest(f"Ticket with id {ticket} was not found.", 404, "NotFound")
        return [note for note in self.ticket_notes.values() if note["ticketId"] == ticket]

    def _create_note(self, request: Request, match: Any) -> Response:
        ticket = int(match.group("ticket"))
        if ticket not in self.tickets:
            raise BadRequest(f"Ticket with id {ticket} was not found.", 404, "NotFound")
        body = request.json()
        if not isinstance(body, dict):
            raise InvalidObject("note", [_field_error("InvalidObject", "The request body must be a note object.",
                                                      "body", "note")])
        errors = []
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            errors.append(_field_error("NullValue", "The text field is required.", "text", "note"))
        flags = {}
        for flag in NOTE_FLAGS:
            try:
                flags[flag] = False if body.get(flag) is None else _flag_field(flag, body[flag])
            except _Refused as refused:
                errors.append(_field_error(refused.code, str(refused), flag, "note"))
        if not any(flags.values()):
            errors.append(_field_error("InvalidField", "A note must be a discussion, internal or resolution note: set "
                                       "detailDescriptionFlag, internalAnalysisFlag or resolutionFlag.", "text",
                                       "note"))
        for key in body:
            if key not in ("text", "ticketId", *NOTE_FLAGS):
                errors.append(_field_error("ReadOnlyField" if key in TICKET_NOTE_SPEC else "InvalidField",
                                           f"The field {key} cannot be written.", key, "note"))
        if errors:
            raise InvalidObject("note", errors)
        return Response(201, self._add_note(ticket, str(text), flags))

    def _add_note(self, ticket: int, text: str, flags: dict[str, bool]) -> dict[str, Any]:
        ident = max(self.ticket_notes, default=0) + 1
        note = {"id": ident, "ticketId": ticket, "text": text,
                **{flag: bool(flags.get(flag)) for flag in NOTE_FLAGS},
                "dateCreated": iso(self._now()), "createdBy": self.scenario.member, "_info": self._info()}
        self.ticket_notes[ident] = note
        return note

    # ------------------------------------------------------------------ additions
    def _agreement(self, match: Any) -> dict[str, Any]:
        agreement_id = int(match.group("agreement"))
        agreement = self.agreements.get(agreement_id)
        if agreement is None:
            raise BadRequest(f"Agreement with id {agreement_id} was not found.", 404, "NotFound")
        return agreement

    def _additions_of(self, match: Any) -> dict[int, dict[str, Any]]:
        return self.additions[self._agreement(match)["id"]]

    def _addition(self, match: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        agreement = self._agreement(match)
        addition_id = int(match.group("id"))
        record = self.additions[agreement["id"]].get(addition_id)
        if record is None:
            raise BadRequest(f"Addition with id {addition_id} was not found on agreement {agreement['id']}.",
                             404, "NotFound")
        return agreement, record

    def _get_addition(self, request: Request, match: Any) -> Response:
        _, record = self._addition(match)
        return Response(200, self._shape(request, record))

    def _create_addition(self, request: Request, match: Any) -> Response:
        agreement = self._agreement(match)
        body = request.json()
        if not isinstance(body, dict):
            raise InvalidObject("addition", [_field_error("InvalidObject", "The request body must be an addition "
                                                          "object.", "body")])
        fields = self._validated_addition({}, body, agreement, creating=True)
        addition_id = self._next_addition_id
        self._next_addition_id += 1
        record = self._finish_addition(addition_id, agreement["id"], fields)
        self.additions[agreement["id"]][addition_id] = record
        self.addition_owner[addition_id] = agreement["id"]
        return Response(201, record)

    def _put_addition(self, request: Request, match: Any) -> Response:
        agreement, current = self._addition(match)
        body = request.json()
        if not isinstance(body, dict):
            raise InvalidObject("addition", [_field_error("InvalidObject", "The request body must be an addition "
                                                          "object.", "body")])
        fields = self._validated_addition({}, body, agreement, creating=True)
        if body.get("sequenceNumber") is None:
            fields["sequenceNumber"] = current["sequenceNumber"]
        record = self._finish_addition(current["id"], agreement["id"], fields)
        self.additions[agreement["id"]][current["id"]] = record
        return Response(200, record)

    def _patch_addition(self, request: Request, match: Any) -> Response:
        agreement, current = self._addition(match)
        operations = request.json()
        if not isinstance(operations, list) or not operations:
            raise InvalidObject("addition", [_field_error(
                "InvalidObject", "A PATCH body must be a non-empty JSON array of operations "
                                 '([{"op": "replace", "path": "quantity", "value": 15}]).', "body")])
        changes: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for index, operation in enumerate(operations):
            if not isinstance(operation, dict):
                errors.append(_field_error("InvalidField", f"operation {index} is not an object", "body"))
                continue
            op = str(operation.get("op", "")).lower()
            path = str(operation.get("path", "")).lstrip("/")
            if op not in ("replace", "add", "remove"):
                errors.append(_field_error("InvalidField", f"op {operation.get('op')!r} is not supported "
                                           "(replace, add or remove)", path or "op"))
                continue
            if not path:
                errors.append(_field_error("InvalidField", f"operation {index} has no path", "path"))
                continue
            head = path.split("/")[0]
            if head in ADDITION_WRITABLE and "/" in path:
                # Documented: a location inside an object is not updated, yet the answer is 200.
                continue
            if head not in ADDITION_WRITABLE:
                if head in ADDITION_SPEC:
                    errors.append(_field_error("ReadOnlyField", f"The field {head} is read only.", head))
                else:
                    errors.append(_field_error("InvalidField", f"{path} is not a field of an addition "
                                               "(paths are case sensitive).", path))
                continue
            if op != "remove" and "value" not in operation:
                errors.append(_field_error("InvalidField", f"operation {index} on {path} has no value", path))
                continue
            changes[head] = None if op == "remove" else operation["value"]
        if errors:
            raise InvalidObject("addition", errors)
        writable = {key: current[key] for key in ADDITION_WRITABLE}
        fields = self._validated_addition(writable, changes, agreement, creating=False)
        record = self._finish_addition(current["id"], agreement["id"], fields)
        self.additions[agreement["id"]][current["id"]] = record
        return Response(200, record)

    def _delete_addition(self, request: Request, match: Any) -> Response:
        agreement, current = self._addition(match)
        del self.additions[agreement["id"]][current["id"]]
        self.addition_owner.pop(current["id"], None)
        return Response(204)

    def _validated_addition(self, base: dict[str, Any], changes: dict[str, Any], agreement: dict[str, Any],
                            *, creating: bool) -> dict[str, Any]:
        """Merge ``changes`` into ``base`` and validate every written field as the PSA does;
        raises ``InvalidObject`` listing every problem."""
        errors: list[dict[str, Any]] = []
        fields = dict(base)
        provided = {key: value for key, value in changes.items() if key in ADDITION_WRITABLE}

        def write(key: str, read: Callable[[str, Any], Any], null: Any = None) -> None:
            """Take ``key`` if it is written, as ``read`` reads it (a null as ``null``); what
            ``read`` refuses is an error of the field."""
            if key not in provided:
                return
            value = provided[key]
            if value is None:
                fields[key] = null
                return
            try:
                fields[key] = read(key, value)
            except _Refused as refused:
                errors.append(_field_error(refused.code, str(refused), key))

        for key in ("quantity", "lessIncluded", "unitPrice", "unitCost", "sequenceNumber"):
            write(key, _number_field)
        write("serialNumber", partial(_text_field, limit=sc.SERIAL_NUMBER_MAX))
        write("invoiceDescription", partial(_text_field, limit=sc.INVOICE_DESCRIPTION_MAX))
        for key in ("description", "uom", "billCustomer"):
            write(key, _text_field)
        for key in ("taxableFlag", "purchaseItemFlag", "specialOrderFlag", "prorateCurrentPeriodFlag"):
            write(key, _flag_field, null=False)
        write("effectiveDate", _date_field)
        write("cancelledDate", _date_field)

        if "invoiceGrouping" in provided:
            fields["invoiceGrouping"] = self._grouping_of(provided["invoiceGrouping"], errors)

        product = None
        if "product" in provided:
            product = self._product_of(provided["product"], errors)
            if product is not None:
                fields["product"] = {"id": product["id"], "identifier": product["identifier"]}
            else:
                fields["product"] = None
        elif fields.get("product") is None:
            errors.append(_field_error("NullValue", "The product field is required.", "product"))

        if "billCustomer" in fields and fields["billCustomer"] is not None \
                and fields["billCustomer"] not in sc.BILL_CUSTOMER and not any(e["field"] == "billCustomer"
                                                                              for e in errors):
            errors.append(_field_error("InvalidField", "The field billCustomer must be one of Billable, "
                                       f"DoNotBill, NoCharge; got {fields['billCustomer']!r}.", "billCustomer"))
        if fields.get("billCustomer") is None and not any(e["field"] == "billCustomer" for e in errors):
            errors.append(_field_error("NullValue", "The billCustomer field is required.", "billCustomer"))
        if fields.get("quantity") is None and not any(e["field"] == "quantity" for e in errors):
            if creating and "quantity" not in provided:
                fields["quantity"] = 0.0
            else:
                errors.append(_field_error("NullValue", "The quantity field is required.", "quantity"))
        if fields.get("lessIncluded") is None:
            fields["lessIncluded"] = 0.0

        if creating:
            if product is not None:
                if fields.get("unitPrice") is None:
                    fields["unitPrice"] = product["price"]
                if fields.get("unitCost") is None:
                    fields["unitCost"] = product["cost"]
                if not fields.get("description"):
                    fields["description"] = product["description"]
                if fields.get("invoiceDescription") is None:
                    fields["invoiceDescription"] = product["customerDescription"]
                if not fields.get("uom"):
                    fields["uom"] = product["unitOfMeasure"]["name"]
                if "taxableFlag" not in provided or provided["taxableFlag"] is None:
                    fields["taxableFlag"] = product["taxableFlag"]  # an addition is taxed as its product
            if fields.get("effectiveDate") is None and not any(e["field"] == "effectiveDate" for e in errors):
                fields["effectiveDate"] = iso(self.today)

        effective = parse_datetime(fields["effectiveDate"]) if fields.get("effectiveDate") else None
        cancelled = parse_datetime(fields["cancelledDate"]) if fields.get("cancelledDate") else None
        if effective is not None and cancelled is not None and cancelled < effective:
            errors.append(_field_error("InvalidField", "The cancelledDate must be on or after the effectiveDate.",
                                       "cancelledDate"))
        if creating and agreement.get("cancelledFlag"):
            errors.append(_field_error("InvalidField", f"Agreement {agreement['id']} is cancelled: additions "
                                       "cannot be added to it.", "agreementId"))
        if errors:
            raise InvalidObject("addition", errors)
        return fields

    def _grouping_of(self, value: Any, errors: list[dict[str, Any]]) -> dict[str, Any] | None:
        """An invoice grouping reference (``{"id": 1}`` or ``{"name": "Licences"}``), as the PSA
        holds it; an unknown one is an error of the field."""
        if value is None:
            return None
        if not isinstance(value, dict) or (value.get("id") is None and value.get("name") is None):
            errors.append(_field_error("InvalidField", "The field invoiceGrouping must be a reference "
                                       '({"id": 1}).', "invoiceGrouping"))
            return None
        for grouping in self.invoice_groupings.values():
            if value.get("id") == grouping["id"] or (value.get("id") is None
                                                     and str(value.get("name")).lower() == grouping["name"].lower()):
                return dict(grouping)
        shown = f"id {value['id']}" if value.get("id") is not None else f"name {value.get('name')!r}"
        errors.append(_field_error("NotFound", f"Invoice grouping with {shown} was not found.", "invoiceGrouping"))
        return None

    def _product_of(self, value: Any, errors: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not isinstance(value, dict) or (value.get("id") is None and value.get("identifier") is None):
            errors.append(_field_error("NullValue", "The product field is required (product/id or "
                                       "product/identifier).", "product"))
            return None
        product = None
        if value.get("id") is not None:
            product_id = value["id"]
            if isinstance(product_id, int) and not isinstance(product_id, bool):
                product = self.catalog.get(product_id)
            shown = f"id {product_id}"
        else:
            identifier = str(value["identifier"])
            ident = self.catalog_by_identifier.get(identifier.lower())
            product = self.catalog.get(ident) if ident is not None else None
            shown = f"identifier {identifier!r}"
        if product is None:
            errors.append(_field_error("NotFound", f"Product with {shown} was not found.", "product"))
            return None
        if product["inactiveFlag"]:
            errors.append(_field_error("InvalidField", f"Product {product['identifier']} is inactive.", "product"))
            return None
        return product
