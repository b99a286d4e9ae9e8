"""An Autotask PSA REST API emulator.

It answers the documented paths under ``/ATServicesRest/V1.0`` with the documented shapes:
zone discovery (``zoneInformation?user=``), the three authentication headers
(``ApiIntegrationcode``, ``UserName``, ``Secret``), ``POST /{Entity}/query`` with Autotask's
filter language and ``pageDetails.nextPageUrl`` paging (500 records a page), ``GET /{Entity}/{id}``
(``{"item": ...}``), ``entityInformation/fields`` with picklists, creates answered
``{"itemId": N}``, errors as ``{"errors": ["..."]}`` (HTTP 500 for a refused write or query, as
Autotask does), and the database's limits: an hourly request counter shared by every
integration (``ThresholdInformation``; requests are refused at 100 %) and at most
``threadLimit`` concurrent requests per integration code and endpoint.

Recurring Service contracts hold ContractServices; their units change only through
ContractServiceAdjustments (create-only) with an effective date, and ContractServiceUnits
(query-only) are derived from them: one record per billing period of the contract (its
period type, anchored on its start date), split at each adjustment's effective date.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from emulators.autotask import scenario as sc
from emulators.autotask.query import BOOL, DATE, INT, NUM, STR, Query, QueryError, parse_when
from emulators.base import EmulatorError, Request, Response
from emulators.common import PsaEmulator
from shared.domain.periods import add_months

API = r"/ATServicesRest/V1\.0"

COMPANY_FIELDS = {"id": INT, "companyName": STR, "companyNumber": STR, "companyType": INT, "isActive": BOOL,
                  "webAddress": STR, "phone": STR, "createDate": DATE, "lastActivityDate": DATE}
CONTACT_FIELDS = {"id": INT, "companyID": INT, "firstName": STR, "lastName": STR, "emailAddress": STR,
                  "emailAddress2": STR, "emailAddress3": STR, "isActive": INT, "title": STR, "phone": STR,
                  "mobilePhone": STR, "createDate": DATE, "lastModifiedDate": DATE}
# Contact fields a client may write, with their lengths; required on create (the parent gives companyID).
CONTACT_WRITABLE = {"firstName": 50, "lastName": 50, "emailAddress": 254, "emailAddress2": 254, "emailAddress3": 254,
                    "title": 50, "phone": 25, "mobilePhone": 25}
CONTACT_REQUIRED = ("firstName", "lastName", "isActive")
SERVICE_FIELDS = {"id": INT, "name": STR, "description": STR, "invoiceDescription": STR, "unitPrice": NUM,
                  "unitCost": NUM, "isActive": BOOL, "periodType": INT, "billingCodeID": INT, "markupRate": NUM,
                  "createDate": DATE, "lastModifiedDate": DATE}
CONTRACT_FIELDS = {"id": INT, "contractName": STR, "companyID": INT, "contractType": INT, "contractCategory": INT,
                   "contractPeriodType": INT, "status": INT, "startDate": DATE, "endDate": DATE,
                   "contractNumber": STR, "description": STR, "isDefaultContract": BOOL, "billingPreference": INT}
CONTRACT_SERVICE_FIELDS = {"id": INT, "contractID": INT, "serviceID": INT, "unitPrice": NUM, "adjustedPrice": NUM,
                           "unitCost": NUM, "invoiceDescription": STR, "internalDescription": STR,
                           "internalCurrencyUnitPrice": NUM, "internalCurrencyAdjustedPrice": NUM, "quoteItemID": INT}
UNIT_FIELDS = {"id": INT, "contractID": INT, "contractServiceID": INT, "serviceID": INT, "startDate": DATE,
               "endDate": DATE, "units": INT, "price": NUM, "cost": NUM, "internalCurrencyPrice": NUM,
               "approveAndPostDate": DATE, "organizationalLevelAssociationID": INT, "vendorCompanyID": INT}
ADJUSTMENT_FIELDS = {"id": INT, "contractID": INT, "contractServiceID": INT, "serviceID": INT,
                     "effectiveDate": DATE, "unitChange": INT, "adjustedUnitPrice": NUM, "adjustedUnitCost": NUM,
                     "allowRepeatService": BOOL, "quoteItemID": INT}
TICKET_FIELDS = {"id": INT, "ticketNumber": STR, "title": STR, "description": STR, "companyID": INT, "queueID": INT,
                 "status": INT, "priority": INT, "dueDateTime": DATE, "createDate": DATE, "completedDate": DATE,
                 "lastActivityDate": DATE, "ticketType": INT, "source": INT, "assignedResourceID": INT}
# Ticket fields a client may write (the others are read-only), with the texts' lengths.
TICKET_WRITABLE = frozenset({"title", "description", "companyID", "queueID", "status", "priority", "dueDateTime",
                             "ticketType", "source"})
TICKET_TEXT = {"title": 255, "description": 8000}
TICKET_REQUIRED = ("companyID", "title", "status", "priority", "dueDateTime")
# Picklists of a fresh database (system values): status, priority, queue.
TICKET_STATUSES = {1: "New", 5: "Complete", 7: "Waiting Customer", 8: "In Progress"}
TICKET_COMPLETE = 5
TICKET_PRIORITIES = {1: "High", 2: "Medium", 3: "Low", 4: "Critical"}
TICKET_QUEUES = {29683354: "Monitoring Alert", 29682833: "Level I Support", 8: "Client Portal"}
TICKET_NOTE_FIELDS = {"id": INT, "ticketID": INT, "title": STR, "description": STR, "noteType": INT, "publish": INT,
                      "createDateTime": DATE, "lastActivityDate": DATE}
TICKET_NOTE_TEXT = {"title": 250, "description": 32000}
TICKET_NOTE_TYPES = {1: "Task Summary", 2: "Task Notes", 3: "Task Detail"}
TICKET_NOTE_PUBLISH = {1: "All Autotask Users", 2: "Internal Project Team"}

# entity name -> (field types, queryable)
ENTITIES: dict[str, tuple[dict[str, str], bool]] = {
    "Companies": (COMPANY_FIELDS, True),
    "Contacts": (CONTACT_FIELDS, True),
    "Services": (SERVICE_FIELDS, True),
    "Contracts": (CONTRACT_FIELDS, True),
    "ContractServices": (CONTRACT_SERVICE_FIELDS, True),
    "ContractServiceUnits": (UNIT_FIELDS, True),
    "ContractServiceAdjustments": (ADJUSTMENT_FIELDS, False),
    "Tickets": (TICKET_FIELDS, True),
    "TicketNotes": (TICKET_NOTE_FIELDS, True),
}
_CANONICAL = {name.lower(): name for name in ENTITIES}
# Documented: "On Update(), all fields are Read-Only except for adjustedPrice and invoiceDescription".
CONTRACT_SERVICE_WRITABLE = frozenset({"invoiceDescription", "adjustedPrice"})
CONTRACT_SERVICE_CREATABLE = frozenset({"contractID", "serviceID", "unitPrice", "adjustedPrice", "unitCost",
                                        "invoiceDescription", "internalDescription", "quoteItemID"})
ADJUSTMENT_CREATABLE = frozenset({"contractID", "contractServiceID", "serviceID", "effectiveDate", "unitChange",
                                  "adjustedUnitPrice", "adjustedUnitCost", "allowRepeatService", "quoteItemID"})
UNAUTHORIZED = {"Message": "Authorization has been denied for this request."}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# The live API answers an unknown username or integration code with HTTP 500 (a wrong secret of a
# known user with 401); the message text is the emulator's own.
LOGIN_FAILED = "Login failed: the user name or the API integration code is not valid for this database."
ZONE_UNKNOWN = "Zone information could not be determined"


class ApiError(Exception):
    """An answer in Autotask's error shape: ``{"errors": [...]}`` with ``status``."""

    def __init__(self, status: int, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = list(messages)


def stamp(value: date | None) -> str | None:
    """Autotask's datetime format for a date: ``2026-01-01T00:00:00Z``."""
    return None if value is None else f"{value.isoformat()}T00:00:00Z"


def _num(value: Decimal | float | int) -> float:
    return float(value)


class AutotaskEmulator(PsaEmulator[sc.Scenario]):
    """Autotask PSA REST API. ``scenario_section`` is the ``autotask:`` mapping of a scenario
    (see ``emulators.autotask.scenario``); ``clock`` is the monotonic clock of the hourly request
    counter (tests pass a fake one), ``now`` the wall clock of ``today`` when the scenario sets
    none, and ``sleep`` what ``latencySeconds`` waits with."""

    service = "autotask"
    root = sc.ROOT

    def __init__(self, scenario_section: Any = None, *, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep
        self._usage_lock = threading.Lock()
        self._in_flight: dict[tuple[str, str], int] = {}
        self.peak_concurrency: dict[str, int] = {}
        self.refused: dict[str, int] = {"threshold": 0, "threads": 0}
        super().__init__(scenario_section, clock=clock, now=now)

    # ------------------------------------------------------------------ state
    def load(self, section: Any) -> None:
        scenario = self.adopt(sc.parse_scenario(section))
        self.other_usage = scenario.threshold.other_usage
        self._users = {u.username.lower(): u for u in scenario.users}
        self.companies = {c.id: self._company(c) for c in scenario.companies}
        self.contacts = {c.id: self._contact(c) for c in scenario.contacts}
        self.services = {s.id: self._service(s) for s in scenario.services}
        self.contracts = {c.id: self._contract(c) for c in scenario.contracts}
        self.contract_services: dict[int, dict[str, Any]] = {}
        self._last_contract_service = 0
        self.adjustments: list[dict[str, Any]] = []
        self.tickets: dict[int, dict[str, Any]] = {}
        self.ticket_notes: dict[int, dict[str, Any]] = {}
        self._by_contract: dict[int, list[int]] = {c: [] for c in self.contracts}
        self._adjustments_of: dict[int, list[dict[str, Any]]] = {}
        for entry in scenario.contract_services:
            service = self.services[entry.service_id]
            self._add_contract_service(entry.id, {
                "contractID": entry.contract_id, "serviceID": entry.service_id,
                "unitPrice": _num(entry.unit_price) if entry.unit_price is not None else service["unitPrice"],
                "adjustedPrice": _num(entry.adjusted_price) if entry.adjusted_price is not None else None,
                "unitCost": _num(entry.unit_cost) if entry.unit_cost is not None else service["unitCost"],
                "invoiceDescription": (entry.invoice_description if entry.invoice_description is not None
                                       else service["invoiceDescription"]),
                "internalDescription": entry.internal_description,
            })
            if entry.units:
                contract = self.scenario_contract(entry.contract_id)
                self._add_adjustment(entry.id, entry.effective_date or contract.start_date, entry.units, None, None)
        for adjustment in scenario.adjustments:
            self._add_adjustment(adjustment.contract_service_id, adjustment.effective_date, adjustment.unit_change,
                                 None, None)
        for contract_service_id in self._adjustments_of:
            if self._lowest_units(contract_service_id) < 0:
                raise EmulatorError(f"{sc.ROOT}.adjustments: contract service {contract_service_id} would "
                                    "have fewer than 0 units")
        with self._usage_lock:
            self._window.clear()
            self._in_flight.clear()
            self.peak_concurrency = {}
            self.refused = {"threshold": 0, "threads": 0}

    def scenario_contract(self, contract_id: int) -> sc.ContractEntry:
        return next(c for c in self.scenario.contracts if c.id == contract_id)

    def state(self) -> dict[str, Any]:
        """What the database holds now: companies, contacts, services, contracts (each with its
        ``services``: the contract service record plus ``units`` as of today and its
        ``adjustments``), every adjustment, and the request counters."""
        contracts = []
        for contract_id in sorted(self.contracts):
            record = dict(self.contracts[contract_id])
            lines = []
            for cs_id in sorted(self._by_contract.get(contract_id, [])):
                line = dict(self.contract_services[cs_id])
                line["units"] = self.units_on(cs_id, self.today)
                line["adjustments"] = [dict(a) for a in self._adjustments_of.get(cs_id, [])]
                lines.append(line)
            record["services"] = lines
            contracts.append(record)
        return {
            "today": self.today.isoformat(),
            "companies": [self.companies[i] for i in sorted(self.companies)],
            "contacts": [self.contacts[i] for i in sorted(self.contacts)],
            "services": [self.services[i] for i in sorted(self.services)],
            "contracts": contracts,
            "adjustments": [dict(a) for a in self.adjustments],
            "tickets": [dict(self.tickets[i], notes=[n for n in self.ticket_notes.values() if n["ticketID"] == i])
                        for i in sorted(self.tickets)],
            "threshold": self.threshold_information(),
            "peakConcurrency": dict(self.peak_concurrency),
            "refused": dict(self.refused),
        }

    # ------------------------------------------------------------------ records
    def _company(self, c: sc.CompanyEntry) -> dict[str, Any]:
        return {"id": c.id, "companyName": c.name, "companyNumber": c.number, "companyType": c.company_type,
                "isActive": c.active, "webAddress": c.website, "phone": None, "createDate": stamp(self.today),
                "lastActivityDate": stamp(self.today), "userDefinedFields": []}

    def _contact(self, c: sc.ContactEntry) -> dict[str, Any]:
        emails = [*c.emails, None, None, None]
        return {"id": c.id, "companyID": c.company_id, "firstName": c.first_name, "lastName": c.last_name,
                "emailAddress": emails[0], "emailAddress2": emails[1], "emailAddress3": emails[2],
                "isActive": 1 if c.active else 0, "title": c.title, "phone": c.phone, "mobilePhone": c.mobile,
                "createDate": stamp(self.today), "lastModifiedDate": stamp(self.today), "userDefinedFields": []}

    def _service(self, s: sc.ServiceEntry) -> dict[str, Any]:
        return {"id": s.id, "name": s.name, "description": s.description, "invoiceDescription": s.invoice_description,
                "unitPrice": _num(s.unit_price), "unitCost": _num(s.unit_cost), "isActive": s.active,
                "periodType": s.period_type, "billingCodeID": s.billing_code_id, "markupRate": None,
                "createDate": stamp(self.today), "lastModifiedDate": stamp(self.today), "userDefinedFields": []}

    def _contract(self, c: sc.ContractEntry) -> dict[str, Any]:
        return {"id": c.id, "contractName": c.name, "companyID": c.company_id, "contractType": c.contract_type,
                "contractCategory": c.category_id, "contractPeriodType": c.period_type, "status": c.status,
                "startDate": stamp(c.start_date), "endDate": stamp(c.end_date), "contractNumber": c.number,
                "description": None, "isDefaultContract": False, "billingPreference": 1, "userDefinedFields": []}

    def _add_contract_service(self, ident: int, fields: dict[str, Any]) -> dict[str, Any]:
        record = {
            "id": ident, "contractID": fields["contractID"], "serviceID": fields["serviceID"],
            "unitPrice": fields["unitPrice"], "adjustedPrice": fields.get("adjustedPrice"),
            "unitCost": fields["unitCost"],
            "invoiceDescription": fields.get("invoiceDescription"),
            "internalDescription": fields.get("internalDescription"),
            "internalCurrencyUnitPrice": fields["unitPrice"],
            "internalCurrencyAdjustedPrice": fields.get("adjustedPrice"),
            "quoteItemID": None, "userDefinedFields": [],
        }
        self.contract_services[ident] = record
        self._by_contract.setdefault(fields["contractID"], []).append(ident)
        self._adjustments_of.setdefault(ident, [])
        return record

    def _add_adjustment(self, contract_service_id: int, effective: date, change: int, price: float | None,
                        cost: float | None) -> dict[str, Any]:
        service = self.contract_services[contract_service_id]
        record = {"id": max((a["id"] for a in self.adjustments), default=0) + 1, "contractID": service["contractID"],
                  "contractServiceID": contract_service_id, "serviceID": service["serviceID"],
                  "effectiveDate": stamp(effective), "unitChange": change,
                  "adjustedUnitPrice": price, "adjustedUnitCost": cost, "allowRepeatService": False,
                  "quoteItemID": None}
        self.adjustments.append(record)
        self._adjustments_of.setdefault(contract_service_id, []).append(record)
        return record

    def _new_contract_service_id(self) -> int:
        """The next contract service id: Autotask never gives a deleted record's id again."""
        self._last_contract_service = max(self._last_contract_service, max(self.contract_services, default=0)) + 1
        return self._last_contract_service

    def delete_contract_service(self, contract_service_id: int) -> None:
        """Remove a service from its contract, as a person can in Autotask's contract page (the
        REST API cannot: ContractServices are not deletable through it). The service, its
        adjustments and its units are gone."""
        with self.lock:
            line = self.contract_services.pop(contract_service_id)
            self._by_contract[line["contractID"]].remove(contract_service_id)
            self._adjustments_of.pop(contract_service_id, None)
            self.adjustments = [a for a in self.adjustments if a["contractServiceID"] != contract_service_id]

    def remove_units(self, contract_service_id: int, effective: date) -> None:
        """Take every unit off a contract service from ``effective`` on, as a person adjusting it
        to zero units in Autotask does (an adjustment of minus the units it has then)."""
        with self.lock:
            units = self.units_on(contract_service_id, effective)
            if units:
                self._add_adjustment(contract_service_id, effective, -units, None, None)

    # ------------------------------------------------------------------ units
    def units_on(self, contract_service_id: int, when: date) -> int:
        """Units of a contract service on a day: the sum of its adjustments effective by then."""
        return sum(int(a["unitChange"]) for a in self._adjustments_of.get(contract_service_id, [])
                   if _day(a["effectiveDate"]) <= when)

    def _lowest_units(self, contract_service_id: int, extra: tuple[date, int] | None = None) -> int:
        changes = [(_day(a["effectiveDate"]), int(a["unitChange"])) for a in self._adjustments_of.get(
            contract_service_id, [])]
        if extra is not None:
            changes.append(extra)
        # several changes on one day count together
        totals: dict[date, int] = {}
        for when, change in changes:
            totals[when] = totals.get(when, 0) + change
        running, lowest = 0, 0
        for when in sorted(totals):
            running += totals[when]
            lowest = min(lowest, running)
        return lowest

    def unit_records(self, contract_service_id: int) -> list[dict[str, Any]]:
        """ContractServiceUnits of one contract service: a record per billing period of its
        contract, split where an adjustment takes effect inside a period."""
        line = self.contract_services[contract_service_id]
        contract = self.contracts[line["contractID"]]
        start, end = _day(contract["startDate"]), _day(contract["endDate"])
        months = sc.PERIOD_MONTHS[contract["contractPeriodType"]]
        adjustments = self._adjustments_of.get(contract_service_id, [])
        bounds = set()
        k = 0
        while (boundary := add_months(start, months * k)) <= end:
            bounds.add(boundary)
            k += 1
        for adjustment in adjustments:
            effective = _day(adjustment["effectiveDate"])
            if start <= effective <= end:
                bounds.add(effective)
        ordered = sorted(bounds)
        records = []
        for index, segment_start in enumerate(ordered):
            segment_end = ordered[index + 1] - timedelta(days=1) if index + 1 < len(ordered) else end
            applied = [a for a in adjustments if _day(a["effectiveDate"]) <= segment_start]
            price = effective_price(line)
            cost = line["unitCost"]
            for adjustment in sorted(applied, key=lambda a: (_day(a["effectiveDate"]), a["id"])):
                if adjustment["adjustedUnitPrice"] is not None:
                    price = adjustment["adjustedUnitPrice"]
                if adjustment["adjustedUnitCost"] is not None:
                    cost = adjustment["adjustedUnitCost"]
            records.append({
                "id": contract_service_id * 10000 + index + 1, "contractID": line["contractID"],
                "contractServiceID": contract_service_id, "serviceID": line["serviceID"],
                "startDate": stamp(segment_start), "endDate": stamp(segment_end),
                "units": sum(int(a["unitChange"]) for a in applied), "price": price, "cost": cost,
                "internalCurrencyPrice": price, "approveAndPostDate": None,
                "organizationalLevelAssociationID": None, "vendorCompanyID": None,
            })
        return records

    # ------------------------------------------------------------------ limits
    def threshold_information(self) -> dict[str, Any]:
        with self._usage_lock:
            count = self._window.count(self.scenario.threshold.timeframe_minutes * 60.0) + self.other_usage
        return {"externalRequestThreshold": self.scenario.threshold.limit,
                "requestThresholdTimeframe": self.scenario.threshold.timeframe_minutes,
                "currentTimeframeRequestCount": count}

    def set_other_usage(self, requests: int) -> None:
        """Requests other integrations made in the current hour (they count against the limit)."""
        with self._usage_lock:
            self.other_usage = max(0, int(requests))

    def _count_request(self) -> Response | None:
        threshold = self.scenario.threshold
        with self._usage_lock:
            wait = self._window.admit(threshold.limit, threshold.timeframe_minutes * 60.0, self.other_usage)
            if wait is None:
                return None
            self.refused["threshold"] += 1
        response = Response(429, {"errors": [
            f"The request limit of {threshold.limit} requests per {threshold.timeframe_minutes} minutes for this "
            "database has been reached; API access is blocked until the usage drops."]})
        response.headers["Retry-After"] = "60" if math.isinf(wait) else str(max(1, int(wait) + 1))
        return response

    def _enter(self, code: str, endpoint: str) -> bool:
        key = (code.lower(), endpoint)
        with self._usage_lock:
            current = self._in_flight.get(key, 0)
            if current >= self.scenario.thread_limit:
                self.refused["threads"] += 1
                return False
            self._in_flight[key] = current + 1
            self.peak_concurrency[endpoint] = max(self.peak_concurrency.get(endpoint, 0), current + 1)
            return True

    def _leave(self, code: str, endpoint: str) -> None:
        key = (code.lower(), endpoint)
        with self._usage_lock:
            self._in_flight[key] = max(0, self._in_flight.get(key, 1) - 1)

    # ------------------------------------------------------------------ errors and auth
    def error_response(self, status: int, message: str, code: str = "Error") -> Response:
        if status == 401:
            return Response(401, dict(UNAUTHORIZED))
        return Response(status, {"errors": [message]})

    def auth_failure(self, request: Request) -> Response:
        return Response(401, dict(UNAUTHORIZED))

    def _authenticate(self, request: Request) -> sc.ApiUser | Response:
        """The API user of a request, or the answer the live API gives: HTTP 500 with
        ``{"errors": [...]}`` for an unknown username or integration code, 401 for a wrong secret
        of a known user."""
        user = self._users.get((request.header("username") or "").strip().lower())
        if user is None:
            return Response(500, {"errors": [LOGIN_FAILED]})
        if request.header("secret") != user.secret:
            return self.auth_failure(request)
        if (request.header("apiintegrationcode") or "").strip() != user.integration_code:
            return Response(500, {"errors": [LOGIN_FAILED]})
        return user

    def _api(self, handler: Callable[[Request, Any], Response],
             endpoint: Callable[[Any], str]) -> Callable[[Request, Any], Response]:
        """Every API route: credentials, the hourly counter, the thread limit per integration code
        and endpoint, the emulated latency, then the handler under the state lock."""

        def wrapped(request: Request, match: Any) -> Response:
            user = self._authenticate(request)
            if isinstance(user, Response):
                return user
            refused = self._count_request()
            if refused is not None:
                return refused
            name = endpoint(match)
            if not self._enter(user.integration_code, name):
                response = Response(429, {"errors": [
                    f"Too many concurrent requests on {name} for this integration (the limit is "
                    f"{self.scenario.thread_limit} threads per endpoint)."]})
                response.headers["Retry-After"] = "1"
                return response
            try:
                if self.scenario.latency_seconds:
                    self._sleep(self.scenario.latency_seconds)
                with self.lock:
                    return handler(request, match)
            except QueryError as exc:
                return Response(500, {"errors": [str(exc)]})
            except ApiError as exc:
                return Response(exc.status, {"errors": exc.messages})
            finally:
                self._leave(user.integration_code, name)

        return wrapped

    def _admin(self, request: Request) -> Response:
        if request.path == "/_admin/usage" and request.method == "POST":
            body = request.json()
            value = body.get("otherIntegrations") if isinstance(body, dict) else None
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return Response(400, {"error": "body must be {\"otherIntegrations\": <whole number>}"})
            self.set_other_usage(value)
            return Response(200, self.threshold_information())
        return super()._admin(request)

    # ------------------------------------------------------------------ routes
    def register_routes(self) -> None:
        self.route("GET", API + r"/zoneInformation", self._zone_information)

        def entity(match: Any) -> str:
            raw: str = match.group("entity")
            return _CANONICAL.get(raw.lower(), raw)

        def fixed(name: str) -> Callable[[Any], str]:
            return lambda match: name

        routes: list[tuple[str, str, Callable[[Request, Any], Response], Callable[[Any], str]]] = [
            ("GET", r"/ThresholdInformation", lambda r, m: Response(200, self.threshold_information()),
             fixed("ThresholdInformation")),
            ("GET", r"/(?P<entity>[A-Za-z]+)/entityInformation/fields", self._fields_information, entity),
            ("GET", r"/(?P<entity>[A-Za-z]+)/entityInformation", self._entity_information, entity),
            ("POST", r"/(?P<entity>[A-Za-z]+)/query", self._query, entity),
            ("POST", r"/(?P<entity>[A-Za-z]+)/query/next", self._query, entity),
            ("GET", r"/(?P<entity>[A-Za-z]+)/query/next", self._query, entity),
            ("POST", r"/(?P<entity>[A-Za-z]+)/query/count", self._count, entity),
            ("GET", r"/(?P<entity>[A-Za-z]+)/(?P<id>-?\d+)", self._get, entity),
            ("POST", r"/ContractServices", self._create_contract_service, fixed("ContractServices")),
            ("POST", r"/Contracts/(?P<parent>\d+)/Services", self._create_contract_service,
             fixed("ContractServices")),
            ("PATCH", r"/ContractServices", self._update_contract_service, fixed("ContractServices")),
            ("PATCH", r"/Contracts/(?P<parent>\d+)/Services", self._update_contract_service,
             fixed("ContractServices")),
            ("POST", r"/Companies/(?P<parent>\d+)/Contacts", self._create_contact, fixed("Contacts")),
            ("PATCH", r"/Companies/(?P<parent>\d+)/Contacts", self._update_contact, fixed("Contacts")),
            ("POST", r"/Tickets", self._create_ticket, fixed("Tickets")),
            ("PATCH", r"/Tickets", self._update_ticket, fixed("Tickets")),
            ("POST", r"/Tickets/(?P<parent>\d+)/Notes", self._create_ticket_note, fixed("TicketNotes")),
            ("POST", r"/ContractServiceAdjustments", self._create_adjustment, fixed("ContractServiceAdjustments")),
            ("POST", r"/Contracts/(?P<parent>\d+)/ServiceAdjustments", self._create_adjustment,
             fixed("ContractServiceAdjustments")),
        ]
        for method, pattern, handler, endpoint in routes:
            self.route(method, API + pattern, self._api(handler, endpoint))

    def _zone_information(self, request: Request, match: Any) -> Response:
        user = (request.arg("user") or "").strip().lower()
        if user not in self._users:
            return Response(500, {"errors": [ZONE_UNKNOWN]})
        return Response(200, {"zoneName": self.scenario.zone_name, "url": f"https://{self.host(request)}/ATServicesRest/",
                              "webUrl": self.scenario.web_url, "ci": self.scenario.ci})

    def _entity(self, match: Any) -> str:
        name = _CANONICAL.get(match.group("entity").lower())
        if name is None:
            raise ApiError(404, f"The entity {match.group('entity')} does not exist.")
        return name

    def _fields_information(self, request: Request, match: Any) -> Response:
        name = self._entity(match)
        fields, _ = ENTITIES[name]
        picklists = self._picklists(name)
        result = []
        for field, kind in fields.items():
            values = picklists.get(field)
            result.append({
                "name": field, "dataType": "long" if field == "id" else kind,
                "length": (TICKET_TEXT if name == "Tickets" else TICKET_NOTE_TEXT if name == "TicketNotes" else {
                    "internalDescription": sc.INTERNAL_DESCRIPTION_MAX,
                    "invoiceDescription": sc.INVOICE_DESCRIPTION_MAX}).get(field, 0),
                "isRequired": field in ("contractID", "serviceID", "effectiveDate", "unitChange")
                or (name == "Tickets" and field in TICKET_REQUIRED)
                or (name == "TicketNotes" and field in ("ticketID", "title", "description", "noteType", "publish")),
                "isReadOnly": field == "id" or (name == "Tickets" and field not in TICKET_WRITABLE),
                "isQueryable": ENTITIES[name][1],
                "isReference": field.endswith("ID") and field != "id",
                "referenceEntityType": "", "isPickList": values is not None,
                "picklistValues": values, "picklistParentValueField": "", "isSupportedWebhookField": False,
            })
        return Response(200, {"fields": result})

    def _picklists(self, entity: str) -> dict[str, list[dict[str, Any]]]:
        def values(table: Iterable[tuple[int, str, bool]]) -> list[dict[str, Any]]:
            return [{"value": str(value), "label": label, "isDefaultValue": False, "sortOrder": index,
                     "parentValue": "", "isActive": active, "isSystem": True}
                    for index, (value, label, active) in enumerate(table)]

        if entity == "Contracts":
            return {
                "contractType": values((v, label, True) for v, label in sc.CONTRACT_TYPES.items()),
                "contractCategory": values((c.id, c.name, c.active) for c in self.scenario.categories),
                "contractPeriodType": values((v, label, True) for v, label in sc.PERIOD_TYPES.items()),
                "status": values([(0, "Inactive", True), (1, "Active", True)]),
            }
        if entity == "Companies":
            return {"companyType": values((v, label, True) for v, label in sc.COMPANY_TYPES.items())}
        if entity == "Tickets":
            return {"status": values((v, label, True) for v, label in TICKET_STATUSES.items()),
                    "priority": values((v, label, True) for v, label in TICKET_PRIORITIES.items()),
                    "queueID": values((v, label, True) for v, label in TICKET_QUEUES.items())}
        if entity == "TicketNotes":
            return {"noteType": values((v, label, True) for v, label in TICKET_NOTE_TYPES.items()),
                    "publish": values((v, label, True) for v, label in TICKET_NOTE_PUBLISH.items())}
        if entity == "Services":
            return {"periodType": values((v, label, True) for v, label in sc.PERIOD_TYPES.items())}
        return {}

    def _entity_information(self, request: Request, match: Any) -> Response:
        name = self._entity(match)
        queryable = ENTITIES[name][1]
        creatable = name in ("ContractServices", "ContractServiceAdjustments", "Tickets", "TicketNotes")
        return Response(200, {"info": {"name": name, "canCreate": creatable, "canDelete": False,
                                       "canQuery": queryable, "canUpdate": name in ("ContractServices", "Tickets"),
                                       "userAccessForCreate": "All", "userAccessForDelete": "None",
                                       "userAccessForQuery": "All", "userAccessForUpdate": "All",
                                       "supportsWebhookCallouts": False, "hasUserDefinedFields": False}})

    # ------------------------------------------------------------------ reads
    def _records(self, name: str, query: Query | None) -> list[dict[str, Any]]:
        if name == "Companies":
            return list(self.companies.values())
        if name == "Contacts":
            return list(self.contacts.values())
        if name == "Services":
            return list(self.services.values())
        if name == "Contracts":
            return list(self.contracts.values())
        if name == "ContractServices":
            return list(self.contract_services.values())
        if name == "Tickets":
            return list(self.tickets.values())
        if name == "TicketNotes":
            return list(self.ticket_notes.values())
        if name == "ContractServiceUnits":
            wanted = query.wanted_ids("contractServiceID") if query is not None else None
            if wanted is None and query is not None:
                contracts = query.wanted_ids("contractID")
                if contracts is not None:
                    wanted = {cs for c in contracts for cs in self._by_contract.get(c, [])}
            ids = sorted(self.contract_services) if wanted is None else sorted(
                i for i in wanted if i in self.contract_services)
            return [record for cs in ids for record in self.unit_records(cs)]
        raise ApiError(405, f"The {name} entity cannot be queried.")

    def _get(self, request: Request, match: Any) -> Response:
        name = self._entity(match)
        ident = int(match.group("id"))
        if name == "ContractServiceUnits":
            contract_service = ident // 10000
            found = [u for u in (self.unit_records(contract_service) if contract_service in self.contract_services
                                 else []) if u["id"] == ident]
            return Response(200, {"item": found[0] if found else None})
        records = {r["id"]: r for r in self._records(name, None)}
        record = records.get(ident)
        return Response(200, {"item": dict(record) if record is not None else None})

    def _parse(self, request: Request, name: str) -> tuple[Query, int]:
        """The query of a ``/query`` or ``/query/next`` request and the id after which its page
        starts."""
        body = request.json() if request.body else None
        if body is None:
            search = request.arg("search")
            if search:
                try:
                    body = json.loads(search)
                except json.JSONDecodeError as exc:
                    raise QueryError(f"The search parameter is not JSON: {exc}") from exc
        query = Query(body, name, ENTITIES[name][0])
        after = -1
        paging = request.arg("paging")
        if paging:
            try:
                token = json.loads(paging)
                after = int(token["lastId"])
                query.max_records = min(query.max_records, int(token.get("pageSize", query.max_records)))
            except (ValueError, KeyError, TypeError) as exc:
                raise QueryError(f"The paging parameter is not valid: {paging!r}") from exc
        return query, after

    def _query(self, request: Request, match: Any) -> Response:
        name = self._entity(match)
        if not ENTITIES[name][1]:
            raise ApiError(405, f"The {name} entity cannot be queried.")
        query, after = self._parse(request, name)
        matching = sorted((r for r in self._records(name, query) if query.predicate(r)), key=lambda r: r["id"])
        remaining = [r for r in matching if r["id"] > after]
        page = remaining[:query.max_records]
        next_url = None
        if len(remaining) > len(page):
            last = page[-1]["id"]
            if self.broken_page(request):
                last = after  # a next page that is this very page again
            next_url = self._page_url(request, name, query, last)
        previous = None
        if after >= 0:
            before = [r for r in matching if r["id"] <= after]
            start = before[-query.max_records - 1]["id"] if len(before) > query.max_records else -1
            previous = self._page_url(request, name, query, start)
        return Response(200, {"items": [query.shape(r) for r in page],
                              "pageDetails": {"count": len(page), "requestCount": query.max_records,
                                              "prevPageUrl": previous, "nextPageUrl": next_url}})

    def _page_url(self, request: Request, name: str, query: Query, last: int) -> str:
        paging = json.dumps({"pageSize": query.max_records, "lastId": last}, separators=(",", ":"))
        search = json.dumps({"filter": query.items, **({"IncludeFields": query.include} if query.include else {}),
                             "MaxRecords": query.max_records}, separators=(",", ":"))
        return (f"https://{self.host(request)}/ATServicesRest/V1.0/{name}/query/next?paging={quote(paging, safe='')}"
                f"&search={quote(search, safe='')}")

    def _count(self, request: Request, match: Any) -> Response:
        name = self._entity(match)
        query, _ = self._parse(request, name)
        return Response(200, {"queryCount": sum(1 for r in self._records(name, query) if query.predicate(r))})

    # ------------------------------------------------------------------ writes
    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except Exception as exc:
            raise ApiError(500, str(exc)) from exc
        if not isinstance(body, dict):
            raise ApiError(500, "The request body must be a JSON object.")
        return body

    @staticmethod
    def _whole(body: dict[str, Any], key: str, *, required: bool = True) -> int | None:
        value = body.get(key)
        if value is None:
            if required:
                raise ApiError(500, f"The {key} field is required.")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(500, f"The value {value!r} is not valid for {key}: it must be a whole number.")
        return value

    @staticmethod
    def _price(body: dict[str, Any], key: str) -> float | None:
        value = body.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(500, f"The value {value!r} is not valid for {key}: it must be a number.")
        return float(value)

    @staticmethod
    def _refuse_unknown(body: dict[str, Any], known: frozenset[str], when: str, entity: str = "ContractServices",
                        ) -> None:
        """Refuse a written field that is not ``known`` (writable ``when``): read-only or unknown."""
        unknown = sorted(k for k in body if k not in known and k not in ("id", "userDefinedFields"))
        read_only = [k for k in unknown if k in ENTITIES[entity][0]]
        if read_only:
            raise ApiError(500, *(f"The field {k} is read-only {when}." for k in read_only))
        if unknown:
            raise ApiError(500, *(f"The field {k} does not exist on {entity}." for k in unknown))

    @staticmethod
    def _text(body: dict[str, Any], key: str, limit: int) -> str | None:
        value = body.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ApiError(500, f"The value {value!r} is not valid for {key}: it must be text.")
        if len(value) > limit:
            raise ApiError(500, f"The {key} field cannot be longer than {limit} characters (got {len(value)}).")
        return value

    def _recurring_contract(self, body: dict[str, Any], match: Any) -> dict[str, Any]:
        parent = match.groupdict().get("parent")
        contract_id = self._whole(body, "contractID", required=parent is None)
        if parent is not None:
            if contract_id is not None and contract_id != int(parent):
                raise ApiError(500, f"The contractID {contract_id} does not match the parent contract {parent}.")
            contract_id = int(parent)
        assert contract_id is not None
        contract = self.contracts.get(contract_id)
        if contract is None:
            raise ApiError(500, f"Unable to find the Contract with id {contract_id}.")
        if contract["contractType"] != sc.RECURRING_SERVICE:
            raise ApiError(500, f"Contract {contract_id} is not a Recurring Service contract; services can only be "
                           "added to Recurring Service contracts.")
        return contract

    def _service_for(self, body: dict[str, Any]) -> dict[str, Any]:
        service_id = self._whole(body, "serviceID")
        service = self.services.get(int(service_id or 0))
        if service is None:
            raise ApiError(500, f"Unable to find the Service with id {service_id}.")
        if not service["isActive"]:
            raise ApiError(500, f"The Service {service_id} is inactive.")
        return service

    def _create_contract_service(self, request: Request, match: Any) -> Response:
        body = self._body(request)
        contract = self._recurring_contract(body, match)
        service = self._service_for(body)
        existing = [cs for cs in self._by_contract.get(contract["id"], [])
                    if self.contract_services[cs]["serviceID"] == service["id"]]
        if existing:
            raise ApiError(500, f"The Service {service['id']} is already associated with Contract {contract['id']} "
                           f"(ContractService {existing[0]}).")
        self._refuse_unknown(body, CONTRACT_SERVICE_CREATABLE, "on create")
        price = self._price(body, "unitPrice")
        adjusted = self._price(body, "adjustedPrice")
        cost = self._price(body, "unitCost")
        invoice = self._text(body, "invoiceDescription", sc.INVOICE_DESCRIPTION_MAX)
        internal = self._text(body, "internalDescription", sc.INTERNAL_DESCRIPTION_MAX)
        ident = self._new_contract_service_id()
        self._add_contract_service(ident, {
            "contractID": contract["id"], "serviceID": service["id"],
            "unitPrice": price if price is not None else service["unitPrice"], "adjustedPrice": adjusted,
            "unitCost": cost if cost is not None else service["unitCost"],
            "invoiceDescription": invoice if invoice is not None else service["invoiceDescription"],
            "internalDescription": internal,
        })
        return Response(200, {"itemId": ident})

    def _update_contract_service(self, request: Request, match: Any) -> Response:
        body = self._body(request)
        ident = self._whole(body, "id")
        record = self.contract_services.get(int(ident or 0))
        parent = match.groupdict().get("parent")
        if record is None or (parent is not None and record["contractID"] != int(parent)):
            raise ApiError(500, f"Unable to find the ContractService with id {ident}"
                           + (f" on Contract {parent}." if parent is not None else "."))
        changes: dict[str, Any] = {}
        problems = []
        for key, value in body.items():
            if key == "id":
                continue
            if key not in CONTRACT_SERVICE_FIELDS and key != "userDefinedFields":
                problems.append(f"The field {key} does not exist on ContractServices.")
            elif key in CONTRACT_SERVICE_WRITABLE:
                changes[key] = value
            elif not _same(value, record.get(key)):
                # A record read and sent back whole passes; a changed read-only field does not.
                problems.append(f"The field {key} is read-only on update: only adjustedPrice and "
                                "invoiceDescription can be updated.")
        if problems:
            raise ApiError(500, *problems)
        updated = dict(record)
        if "invoiceDescription" in changes:
            updated["invoiceDescription"] = self._text(changes, "invoiceDescription", sc.INVOICE_DESCRIPTION_MAX)
        if "adjustedPrice" in changes:
            updated["adjustedPrice"] = updated["internalCurrencyAdjustedPrice"] = self._price(changes, "adjustedPrice")
        self.contract_services[record["id"]] = updated
        return Response(200, {"itemId": record["id"]})

    def _contact_fields(self, body: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
        """The contact fields written, checked as Autotask does: known and writable fields, text of
        their lengths, a valid address, isActive 1/0 (or true/false); required ones on create."""
        problems: list[str] = []
        changes: dict[str, Any] = {}
        for key, value in body.items():
            if key in ("id", "userDefinedFields", "companyID"):
                continue
            if key == "isActive":
                if isinstance(value, bool) or value in (0, 1):
                    changes[key] = int(value)
                else:
                    problems.append(f"The value {value!r} is not valid for isActive: it must be 1 or 0.")
            elif key in CONTACT_WRITABLE:
                if value is None:
                    changes[key] = None
                elif not isinstance(value, str):
                    problems.append(f"The value {value!r} is not valid for {key}: it must be text.")
                elif len(value) > CONTACT_WRITABLE[key]:
                    problems.append(f"The {key} field cannot be longer than {CONTACT_WRITABLE[key]} characters "
                                    f"(got {len(value)}).")
                elif key.startswith("emailAddress") and value and not _EMAIL.fullmatch(value):
                    problems.append(f"The {key} {value!r} is not a valid email address.")
                else:
                    changes[key] = value
            elif key in CONTACT_FIELDS:
                if record is None or not _same(value, record.get(key)):
                    problems.append(f"The field {key} is read-only.")
            else:
                problems.append(f"The field {key} does not exist on Contacts.")
        merged = {**(record or {}), **changes}
        for key in CONTACT_REQUIRED:
            if merged.get(key) is None or merged.get(key) == "":
                problems.append(f"The {key} field is required.")
        if problems:
            raise ApiError(500, *problems)
        return changes

    def _create_contact(self, request: Request, match: Any) -> Response:
        body = self._body(request)
        company_id = int(match.group("parent"))
        if company_id not in self.companies:
            raise ApiError(500, f"Unable to find the Company with id {company_id}.")
        given = self._whole(body, "companyID", required=False)
        if given is not None and given != company_id:
            raise ApiError(500, f"The companyID {given} does not match the parent company {company_id}.")
        changes = self._contact_fields(body, None)
        ident = max(self.contacts, default=0) + 1
        record: dict[str, Any] = {
            "id": ident, "companyID": company_id, "firstName": None, "lastName": None, "emailAddress": None,
            "emailAddress2": None, "emailAddress3": None, "isActive": 1, "title": None, "phone": None,
            "mobilePhone": None, "createDate": stamp(self.today), "lastModifiedDate": stamp(self.today),
            "userDefinedFields": []}
        record.update(changes)
        self.contacts[ident] = record
        return Response(200, {"itemId": ident})

    def _update_contact(self, request: Request, match: Any) -> Response:
        body = self._body(request)
        ident = self._whole(body, "id")
        record = self.contacts.get(int(ident or 0))
        company_id = int(match.group("parent"))
        if record is None or record["companyID"] != company_id:
            raise ApiError(500, f"Unable to find the Contact with id {ident} on Company {company_id}.")
        changes = self._contact_fields(body, record)
        self.contacts[record["id"]] = {**record, **changes, "lastModifiedDate": stamp(self.today)}
        return Response(200, {"itemId": record["id"]})

    # ------------------------------------------------------------------ tickets
    def _ticket_fields(self, body: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
        """The ticket fields written, checked as Autotask does: writable fields only, texts within
        their lengths, picklist values that exist, a company that exists; the required fields on
        create, and a queue (SeatSync's emulator has no resources to assign instead)."""
        problems: list[str] = []
        changes: dict[str, Any] = {}
        picklists = {"status": TICKET_STATUSES, "priority": TICKET_PRIORITIES, "queueID": TICKET_QUEUES}
        for key, value in body.items():
            if key in ("id", "userDefinedFields"):
                continue
            if key not in TICKET_WRITABLE:
                problems.append(f"The field {key} is read-only." if key in TICKET_FIELDS
                                else f"The field {key} does not exist on Tickets.")
            elif value is None:
                changes[key] = None
            elif key in TICKET_TEXT:
                if not isinstance(value, str):
                    problems.append(f"The value {value!r} is not valid for {key}: it must be text.")
                elif len(value) > TICKET_TEXT[key]:
                    problems.append(f"The {key} field cannot be longer than {TICKET_TEXT[key]} characters "
                                    f"(got {len(value)}).")
                else:
                    changes[key] = value
            elif key == "dueDateTime":
                if not isinstance(value, str) or parse_when(value) is None:
                    problems.append(f"The value {value!r} is not valid for dueDateTime: it must be a datetime.")
                else:
                    changes[key] = value
            elif isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"The value {value!r} is not valid for {key}: it must be a whole number.")
            elif key in picklists and value not in picklists[key]:
                problems.append(f"The value {value} is not a valid {key} picklist value.")
            elif key == "companyID" and value not in self.companies:
                problems.append(f"Unable to find the Company with id {value}.")
            else:
                changes[key] = value
        merged = {**(record or {}), **changes}
        for key in TICKET_REQUIRED:
            if merged.get(key) is None or merged.get(key) == "":
                problems.append(f"The {key} field is required.")
        if merged.get("queueID") is None:
            problems.append("A ticket needs a queueID, or an assignedResourceID and assignedResourceRoleID.")
        if problems:
            raise ApiError(500, *problems)
        return changes

    def _create_ticket(self, request: Request, match: Any) -> Response:
        body = self._body(request)
        if body.get("id") not in (None, 0):
            raise ApiError(500, "The id of a new ticket is given by Autotask: leave it out.")
        changes = self._ticket_fields(body, None)
        ident = max(self.tickets, default=0) + 1
        now = stamp(self.today)
        record: dict[str, Any] = dict.fromkeys(TICKET_FIELDS)
        record.update({"id": ident, "ticketNumber": f"T{self.today:%Y%m%d}.{ident:04d}", "createDate": now,
                       "lastActivityDate": now, "ticketType": 1, "source": -1, "userDefinedFields": []})
        record.update(changes)
        if record["status"] == TICKET_COMPLETE:
            record["completedDate"] = now
        self.tickets[ident] = record
        return Response(200, {"itemId": ident})

    def _update_ticket(self, request: Request, match: Any) -> Response:
        body = self._body(request)
        ident = self._whole(body, "id")
        record = self.tickets.get(int(ident or 0))
        if record is None:
            raise ApiError(500, f"Unable to find the Ticket with id {ident}.")
        changes = self._ticket_fields(body, record)
        updated = {**record, **changes, "lastActivityDate": stamp(self.today)}
        if updated["status"] == TICKET_COMPLETE and record["status"] != TICKET_COMPLETE:
            updated["completedDate"] = stamp(self.today)
        elif updated["status"] != TICKET_COMPLETE:
            updated["completedDate"] = None
        self.tickets[record["id"]] = updated
        return Response(200, {"itemId": record["id"]})

    def _create_ticket_note(self, request: Request, match: Any) -> Response:
        body = self._body(request)
        ticket = int(match.group("parent"))
        if ticket not in self.tickets:
            raise ApiError(500, f"Unable to find the Ticket with id {ticket}.")
        given = self._whole(body, "ticketID", required=False)
        if given is not None and given != ticket:
            raise ApiError(500, f"The ticketID {given} does not match the parent ticket {ticket}.")
        problems: list[str] = []
        for key in body:
            if key not in ("ticketID", "title", "description", "noteType", "publish", "id"):
                problems.append(f"The field {key} is read-only." if key in TICKET_NOTE_FIELDS
                                else f"The field {key} does not exist on TicketNotes.")
        for key, limit in TICKET_NOTE_TEXT.items():
            value = body.get(key)
            if not isinstance(value, str) or not value:
                problems.append(f"The {key} field is required.")
            elif len(value) > limit:
                problems.append(f"The {key} field cannot be longer than {limit} characters (got {len(value)}).")
        for key, table in (("noteType", TICKET_NOTE_TYPES), ("publish", TICKET_NOTE_PUBLISH)):
            if body.get(key) not in table or isinstance(body.get(key), bool):
                problems.append(f"The {key} field is required and must be one of {sorted(table)}.")
        if problems:
            raise ApiError(500, *problems)
        ident = max(self.ticket_notes, default=0) + 1
        now = stamp(self.today)
        self.ticket_notes[ident] = {"id": ident, "ticketID": ticket, "title": body["title"],
                                    "description": body["description"], "noteType": body["noteType"],
                                    "publish": body["publish"], "createDateTime": now, "lastActivityDate": now}
        self.tickets[ticket] = {**self.tickets[ticket], "lastActivityDate": now}
        return Response(200, {"itemId": ident})

    def _create_adjustment(self, request: Request, match: Any) -> Response:
        body = self._body(request)
        self._refuse_unknown(body, ADJUSTMENT_CREATABLE, "on create", "ContractServiceAdjustments")
        contract = self._recurring_contract(body, match)
        service = self._service_for(body)
        raw_effective = body.get("effectiveDate")
        moment = parse_when(raw_effective) if raw_effective is not None else None
        if moment is None:
            raise ApiError(500, f"The effectiveDate {raw_effective!r} is required and must be a date.")
        effective = moment.date()
        start, end = _day(contract["startDate"]), _day(contract["endDate"])
        if not start <= effective <= end:
            raise ApiError(500, f"The effectiveDate {effective} must be within the contract's dates "
                           f"({start} to {end}).")
        change = self._whole(body, "unitChange")
        assert change is not None
        price = self._price(body, "adjustedUnitPrice")
        cost = self._price(body, "adjustedUnitCost")
        cs_ids = [cs for cs in self._by_contract.get(contract["id"], [])
                  if self.contract_services[cs]["serviceID"] == service["id"]]
        given = self._whole(body, "contractServiceID", required=False)
        if given is not None and given not in cs_ids:
            raise ApiError(500, f"The ContractService {given} is not service {service['id']} of contract "
                           f"{contract['id']}.")
        if cs_ids:
            cs_id = cs_ids[0]
            if self._lowest_units(cs_id, (effective, change)) < 0:
                raise ApiError(500, f"The adjustment would leave ContractService {cs_id} with fewer than 0 units "
                               f"(it has {self.units_on(cs_id, effective)} on {effective}).")
        else:  # documented: the API creates the missing contract service
            if change < 0:
                raise ApiError(500, f"Service {service['id']} is not on contract {contract['id']}: a negative "
                               "unitChange cannot create it.")
            cs_id = self._new_contract_service_id()
            self._add_contract_service(cs_id, {
                "contractID": contract["id"], "serviceID": service["id"],
                "unitPrice": price if price is not None else service["unitPrice"],
                "unitCost": cost if cost is not None else service["unitCost"],
                "invoiceDescription": service["invoiceDescription"], "internalDescription": None,
            })
        record = self._add_adjustment(cs_id, effective, change, price, cost)
        return Response(200, {"itemId": record["id"]})


def _same(sent: Any, held: Any) -> bool:
    """A value sent back as it was read: numbers compare as numbers, dates whatever their form."""
    if isinstance(sent, int | float) and not isinstance(sent, bool) and isinstance(held, int | float):
        return float(sent) == float(held)
    if isinstance(sent, str) and isinstance(held, str) and parse_when(sent) and parse_when(held):
        return parse_when(sent) == parse_when(held)
    return bool(sent == held)


def effective_price(line: dict[str, Any]) -> float:
    """What a contract service bills a unit at: its adjusted price when one is set, else its unit
    price (the service's price when the contract service was created)."""
    adjusted = line.get("adjustedPrice")
    return float(adjusted if adjusted is not None else line["unitPrice"])


def _day(value: Any) -> date:
    moment = parse_when(value)
    assert moment is not None, value
    return moment.date()
