"""Autotask PSA REST client: the ``PsaPort`` for Autotask.

Mapping: companies are Companies, contacts Contacts, products Services, agreements Recurring
Service Contracts (``contractType`` 7; other contract types hold no services), agreement types
the values of the Contracts ``contractCategory`` picklist, and billed lines ContractServices
with their units read from ContractServiceUnits. A contract's billing cycle is the label of its
``contractPeriodType`` picklist value (Monthly, Quarterly, Semi-Annual, Yearly), read from
``Contracts/entityInformation/fields`` like every picklist label, anchored on its start date.

Units change only through ContractServiceAdjustments (create-only) carrying an effective date:
``set_quantity`` creates one with ``unitChange = quantity - units on the effective date`` and
Autotask prorates it itself (prorate style ``native``). With prorating disabled for a company
the caller passes the contract's billing-period date instead of today. A new line is a
ContractService created under its contract (carrying SeatSync's tag in ``internalDescription``,
which Autotask lets a client set only on creation) followed by an adjustment for its units.

SeatSync's tag: ``internalDescription`` (100 characters, never printed on invoices). A line is
SeatSync's when that field starts with ``seatsync`` (case-insensitive); anything else an MSP
wrote there is not taken for a tag, so a tag written by SeatSync must start with ``seatsync``.

Limits, shared by every client of one connection (``AutotaskLimits``): at most
``max_concurrent_requests`` (<= 3) requests in flight per endpoint, and an hourly budget of
``hourly_request_share`` x the database's threshold (10,000 requests a rolling hour, shared with
every other integration). The budget counts SeatSync's own requests, reads
``ThresholdInformation`` when it starts and every minute, slows down (paces requests at the
share's steady rate) when SeatSync has used 80 % of its share or the database 50 % of its
threshold, and stops with ``PsaError`` before SeatSync's share would be exceeded or the
database would pass 90 % of its threshold: SeatSync never pushes the database to its block. With a
limits table (the Function App's store), the share and the requests in flight are counted across
every instance of the Function App (``shared.adapters.shared_limits``), not per process; the waits
never run past the activity's deadline (``shared.deadline``).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn
from urllib.parse import urlsplit

import requests

from shared import deadline
from shared.adapters.connectwise import billing_cycle_name
from shared.adapters.http import RetryingHttp
from shared.adapters.psa_records import TAG_PREFIX as TAG_PREFIX
from shared.adapters.psa_records import (
    RecordFields,
    checked_quantity,
    json_answer,
    numeric_id,
    status_error,
    tag_problems,
    too_long,
    utc_midnight,
    whole_quantity,
)
from shared.adapters.psa_records import is_seatsync_tag as is_seatsync_tag
from shared.adapters.shared_limits import LimitsTable, SharedSlots, SharedWindow, SlotHandle, row_key
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

TICKET_FIELDS = ["id", "ticketNumber", "title", "companyID", "queueID", "status"]
TICKET_TITLE_MAX = 255
TICKET_DESCRIPTION_MAX = 8000
TICKET_NEW = 1  # the system status New
TICKET_COMPLETE = 5  # the system status Complete: a ticket in it is closed
TICKET_MEDIUM = 2  # the priority Medium
NOTE_TYPE = 1  # a ticket note of type Task Summary
NOTE_PUBLISH = 1  # published to all Autotask users
DEFAULT_THRESHOLD = 10_000
DEFAULT_TIMEFRAME_SECONDS = 3600.0
MAX_RECORDS = 500
MAX_CONCURRENT = 3
ID_CHUNK = 200
INTERNAL_DESCRIPTION_MAX = 100
INVOICE_DESCRIPTION_MAX = 1000
RECURRING_SERVICE = 7
ACTIVE = 1

CONTRACT_FIELDS = ["id", "contractName", "companyID", "contractType", "contractCategory", "contractPeriodType",
                   "status", "startDate", "endDate"]
CONTRACT_SERVICE_FIELDS = ["id", "contractID", "serviceID", "unitPrice", "adjustedPrice", "unitCost",
                           "invoiceDescription", "internalDescription"]
UNIT_FIELDS = ["id", "contractServiceID", "startDate", "endDate", "units"]
SERVICE_FIELDS = ["id", "name", "description", "invoiceDescription", "unitPrice", "unitCost", "isActive",
                  "billingCodeID"]
COMPANY_FIELDS = ["id", "companyName", "companyNumber", "webAddress", "isActive"]
CONTACT_FIELDS = ["id", "companyID", "firstName", "lastName", "emailAddress", "emailAddress2", "emailAddress3",
                  "isActive", "title", "phone", "mobilePhone"]
# What contact sync writes to a contact, with Autotask's lengths (the Contacts entity's fields).
CONTACT_WRITES = {"first_name": ("firstName", 50), "last_name": ("lastName", 50), "email": ("emailAddress", 254),
                  "title": ("title", 50), "phone": ("phone", 25), "mobile": ("mobilePhone", 25)}


# --------------------------------------------------------------------------- limits


class HourlyBudget:
    """SeatSync's share of an Autotask database's hourly request threshold. Thread-safe.

    ``acquire`` is called before every request (retries included). It counts SeatSync's own
    requests in a sliding window of the threshold's timeframe, and estimates the database's
    count as the last ``ThresholdInformation`` reading plus SeatSync's requests since.

    - Pacing: from ``slow_from`` of SeatSync's share, or ``database_slow_from`` of the
      database's threshold (where Autotask itself starts adding latency), each request waits
      ``timeframe / share`` seconds: the steady rate that never exhausts the share.
    - Stop: a request that would exceed SeatSync's share waits for the window to free a slot if
      that takes at most ``max_wait_seconds``, otherwise raises ``PsaError``; a request that
      would take the database past ``database_stop_at`` of its threshold raises at once.
    """

    def __init__(self, share: Decimal | float, *, limit: int = DEFAULT_THRESHOLD,
                 timeframe_seconds: float = DEFAULT_TIMEFRAME_SECONDS, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, slow_from: float = 0.8, database_slow_from: float = 0.5,
                 database_stop_at: float = 0.9, max_wait_seconds: float = 30.0,
                 refresh_every_seconds: float = 60.0) -> None:
        share_value = Decimal(str(share))
        if not Decimal(0) < share_value <= Decimal(1):
            raise ValueError(f"hourly_request_share must be more than 0 and at most 1, got {share}")
        self.share = share_value
        self.limit = limit
        self.timeframe = timeframe_seconds
        self._clock = clock
        self._sleep = sleep
        self.slow_from = slow_from
        self.database_slow_from = database_slow_from
        self.database_stop_at = database_stop_at
        self.max_wait = max_wait_seconds
        self.refresh_every = refresh_every_seconds
        self._lock = threading.Lock()
        self._own: deque[float] = deque()
        self._database: int | None = None
        self._since_reading = 0
        self._read_at: float | None = None
        self._refreshing = False
        self.paced = 0
        self.waited = 0.0
        self.shared: SharedWindow | None = None
        """SeatSync's share counted across every instance, when there is a limits table."""

    @property
    def own_cap(self) -> int:
        """Requests SeatSync may send in one timeframe."""
        return max(1, math.floor(self.share * self.limit))

    def _prune(self, now: float) -> None:
        while self._own and self._own[0] <= now - self.timeframe:
            self._own.popleft()

    def database_estimate(self) -> int | None:
        with self._lock:
            return None if self._database is None else self._database + self._since_reading

    def own_usage(self) -> int:
        with self._lock:
            self._prune(self._clock())
            return len(self._own)

    def reconcile(self, threshold: int, timeframe_minutes: int, current: int) -> None:
        """Take a ``ThresholdInformation`` reading (the database's own count)."""
        with self._lock:
            if threshold > 0:
                self.limit = threshold
            if timeframe_minutes > 0:
                self.timeframe = timeframe_minutes * 60.0
            self._database = current
            self._since_reading = 0
            self._read_at = self._clock()
            self._refreshing = False

    def begin_refresh(self) -> bool:
        """True for the one caller that should read ``ThresholdInformation`` now."""
        with self._lock:
            if self._refreshing:
                return False
            due = self._read_at is None or self._clock() - self._read_at >= self.refresh_every
            if due:
                self._refreshing = True
            return due

    def end_refresh(self) -> None:
        with self._lock:
            self._refreshing = False

    def _too_long(self, what: str) -> Callable[[float], Exception]:
        def refuse(wait: float) -> Exception:
            return PsaError(
                "Autotask", f"SeatSync has used its share of {self.own_cap} requests this hour ({self.share:%} of "
                f"{self.limit}, every instance of the Function App together); the next slot frees in {wait:.0f}s. "
                "Try again later or raise hourly_request_share", what, 429)

        return refuse

    def acquire(self, what: str = "request") -> None:
        """Wait as the budget requires, then count one request; raises ``PsaError`` to stop, and
        ``DeadlineReached`` instead of waiting past the activity's deadline."""
        self._acquire_here(what)
        shared = self.shared
        if shared is not None:
            shared.limit = self.own_cap
            shared.window = self.timeframe
            shared.too_long = self._too_long(what)  # the wording of the share as it is now
            shared.max_wait = self.max_wait
            shared.take(what)

    def _acquire_here(self, what: str) -> None:
        paced = False
        while True:
            with self._lock:
                now = self._clock()
                self._prune(now)
                own = len(self._own)
                database = None if self._database is None else self._database + self._since_reading
                if database is not None and database + 1 > self.database_stop_at * self.limit:
                    raise PsaError(
                        "Autotask", f"the database has used about {database} of its {self.limit} requests this hour "
                        f"(all integrations together); SeatSync stops at {self.database_stop_at:.0%} so that the "
                        "database is never blocked. Try again later or find the integration using the most "
                        "requests (Admin > Extensions & Integrations > API Activity by Hour)", what, 429)
                delay = 0.0
                if own + 1 > self.own_cap:
                    delay = self._own[0] + self.timeframe - now
                    if delay > self.max_wait:
                        raise PsaError(
                            "Autotask", f"SeatSync has used its share of {self.own_cap} requests this hour "
                            f"({self.share:%} of {self.limit}); the next slot frees in {delay:.0f}s. Try again "
                            "later or raise hourly_request_share", what, 429)
                elif not paced and (own >= self.slow_from * self.own_cap
                                    or (database is not None and database >= self.database_slow_from * self.limit)):
                    delay = self.timeframe / self.own_cap
                    paced = True
                    self.paced += 1
                if delay <= 0:
                    self._own.append(now)
                    self._since_reading += 1
                    return
                if deadline.allowed_wait(delay) < delay:
                    raise deadline.DeadlineReached(f"{what}: Autotask's hourly budget would make this wait "
                                                   f"{delay:.0f}s, past this activity's deadline")
                self.waited += delay
            self._sleep(delay)


class AutotaskLimits:
    """Everything one Autotask connection shares across its clients in a process: the hourly
    budget, a semaphore of ``max_concurrent`` per endpoint and the discovered zone URL."""

    def __init__(self, share: Decimal | float, max_concurrent: int = MAX_CONCURRENT, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 **budget: Any) -> None:
        if not 1 <= max_concurrent <= MAX_CONCURRENT:
            raise ValueError(f"max_concurrent_requests must be 1..{MAX_CONCURRENT} (Autotask's thread limit per "
                             f"endpoint), got {max_concurrent}")
        self.max_concurrent = max_concurrent
        self.budget = HourlyBudget(share, clock=clock, sleep=sleep, **budget)
        self.zone_url: str | None = None
        self._lock = threading.Lock()
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.table: LimitsTable | None = None
        """Where every instance counts the requests in flight, when the Function App's store is known."""
        self.key: tuple[str, ...] = ()
        self._slots: dict[str, SharedSlots] = {}

    def forget_slots(self) -> None:
        """Give back the slots held in another table (the limits moved to a new one)."""
        with self._lock:
            slots, self._slots = list(self._slots.values()), {}
        for found in slots:
            found.close()

    def slots(self, endpoint: str) -> SharedSlots | None:
        """The endpoint's requests in flight across every instance (None without a limits table)."""
        if self.table is None:
            return None
        with self._lock:
            found = self._slots.get(endpoint)
            if found is None:
                found = self._slots[endpoint] = self.table.slots(row_key("autotask", *self.key, endpoint),
                                                                 self.max_concurrent)
            return found

    def semaphore(self, endpoint: str) -> threading.BoundedSemaphore:
        with self._lock:
            found = self._semaphores.get(endpoint)
            if found is None:
                found = self._semaphores[endpoint] = threading.BoundedSemaphore(self.max_concurrent)
            return found

    def entered(self, endpoint: str) -> None:
        with self._lock:
            current = self._in_flight.get(endpoint, 0) + 1
            self._in_flight[endpoint] = current
            self.peak[endpoint] = max(self.peak.get(endpoint, 0), current)

    def left(self, endpoint: str) -> None:
        with self._lock:
            self._in_flight[endpoint] = self._in_flight.get(endpoint, 1) - 1


_REGISTRY: dict[tuple[str, str, str], AutotaskLimits] = {}
_REGISTRY_LOCK = threading.Lock()


def shared_limits(discovery_url: str, zone_url: str | None, username: str, share: Decimal | float,
                  max_concurrent: int, table: LimitsTable | None = None) -> AutotaskLimits:
    """The limits of one connection (keyed by its URLs and API user) in this process; with
    ``table``, its hourly share and requests in flight are counted across every instance."""
    key = (discovery_url.rstrip("/").lower(), (zone_url or "").rstrip("/").lower(), username.strip().lower())
    with _REGISTRY_LOCK:
        found = _REGISTRY.get(key)
        if found is None:
            found = _REGISTRY[key] = AutotaskLimits(share, max_concurrent)
        else:
            found.budget.share = Decimal(str(share))  # a changed configuration applies from now on
        if table is not None and (found.table is None or found.table.identity != table.identity):
            found.table, found.key = table, key
            found.forget_slots()
            found.budget.shared = table.window(row_key("autotask", *key), found.budget.own_cap, found.budget.timeframe,
                                               buckets=60)
        return found


def reset_shared_limits() -> None:
    """Forget every connection's shared limits (tests)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()


# --------------------------------------------------------------------------- helpers

# Autotask answers an unknown username or integration code with HTTP 500 (not 401); its message then
# speaks of the login, the credentials or the integration code.
_LOGIN_REFUSED = re.compile(r"login|credential|authenticat|unauthori[sz]ed|integration ?code|user ?name",
                            re.IGNORECASE)


# Autotask also answers a query or write it refuses as it stands with HTTP 500 and
# ``{"errors": ["..."]}``: a field that does not exist ("Unable to find projectID in the TimeEntry
# Entity"), a value that is not valid, a read-only or required field, a record already associated.
# Such an error names what is wrong with the request; a server fault does not ("An error has
# occurred.", a timeout, a deadlock).
_VALIDATION = re.compile(
    r"unable to find|could not find|cannot find|does not exist|do not exist|not found|\brequired\b|not (?:a )?valid|"
    r"\binvalid\b|read-?only|\bmust\b|cannot be|can ?not be|not allowed|not permitted|already (?:exists|associated|"
    r"in use)|duplicate|longer than|too long|maximum length|\bexceed|does not match|do not match|error converting|"
    r"out of range", re.IGNORECASE)
_MAYBE_TRANSIENT = re.compile(
    r"time[ds]? ?out|try again|temporar|unavailable|deadlock|unexpected|an error has occurred|internal server|"
    r"object reference|transport|connection|busy|throttl|overload", re.IGNORECASE)


def _error_messages(response: requests.Response) -> list[str]:
    """The messages of Autotask's error body (``{"errors": [...]}``, each a text or an object with a
    ``message``; or ASP.NET's ``{"Message": ...}``); none when the body is not one."""
    try:
        body = json.loads(response.text) if response.content else None
    except (ValueError, RecursionError):
        return []
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            return [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
        if isinstance(body.get("Message"), str):
            return [body["Message"]]
    return []


def _refused_login(response: requests.Response) -> bool:
    """An HTTP 500 that is Autotask refusing the login: retrying it cannot help."""
    return response.status_code == 500 and bool(_LOGIN_REFUSED.search(response.text or ""))


def _refused_request(response: requests.Response) -> bool:
    """An HTTP 500 whose ``errors`` name a validation problem and nothing that may pass (see
    ``_VALIDATION``): Autotask refused the request as it stands, wrote nothing, and would refuse it
    again. A 500 without such an error, or one that may be a server fault, is not."""
    if response.status_code != 500:
        return False
    messages = _error_messages(response)
    return any(_VALIDATION.search(m) for m in messages) and not any(_MAYBE_TRANSIENT.search(m) for m in messages)


def _final(response: requests.Response) -> bool:
    """An HTTP 500 that retrying cannot change: a refused login or a refused request."""
    return _refused_login(response) or _refused_request(response)


def _zone_unknown(response: requests.Response) -> bool:
    """Zone discovery's 500 for a username Autotask does not know: retrying it cannot help."""
    return response.status_code == 500 and "zone information could not be determined" in (response.text or "").lower()


def _numeric_id(value: str, what: str) -> int:
    return numeric_id(value, f"an Autotask {what} id")


def _eq(field: str, value: Any) -> dict[str, Any]:
    return {"op": "eq", "field": field, "value": value}


def _service_billing(f: RecordFields) -> BillingAttributes:
    """A service's billing attributes: its billing code (which carries the tax category). Every
    contract service of the service bills with it; a contract service has none of its own."""
    code = f.optional_integer("billingCodeID")
    return BillingAttributes(billing_code=str(code) if code is not None else None)


def _chunks(values: Sequence[int], size: int = ID_CHUNK) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


class _Fields(RecordFields):
    """Typed reads of one Autotask record. Autotask writes booleans as true/false on some
    entities and 1/0 on others."""

    numeric_flags = True
    flag_expected = "true/false or 1/0"
    day_expected = "a datetime"

    def active(self, key: str) -> bool:
        """An ``isActive`` flag: a record that does not say is active."""
        return self.flag(key, default=True)


@dataclass(frozen=True)
class _Picklist:
    labels: dict[int, str]
    inactive: frozenset[int]


@dataclass(frozen=True)
class _Units:
    quantity: Decimal | int
    since: date | None
    today: Decimal | int | None = None  # the units of the record covering today, when they differ from ``quantity``
    problem: str | None = None  # impossible units on one of its periods: the line is unreadable


# --------------------------------------------------------------------------- the client


class AutotaskClient:
    """Autotask PSA over its REST API, implementing ``PsaPort``. Thread-safe.

    ``zone_url`` is the zone's REST root (``https://webservices5.autotask.net/ATServicesRest``);
    when None it is discovered from ``discovery_url`` and the username, once per process. Pass
    ``http`` to share a ``RetryingHttp`` (or control its sleeping in tests), ``limits`` to use
    limits other than the process-wide ones of this connection, ``today`` for the date units are
    read for (default: today in UTC).
    """

    def __init__(
        self,
        name: str,
        username: str,
        secret: str,
        integration_code: str,
        zone_url: str | None,
        discovery_url: str,
        hourly_request_share: Decimal,
        max_concurrent_requests: int,
        *,
        verify: bool | str = True,
        http: RetryingHttp | None = None,
        limits: AutotaskLimits | None = None,
        today: Callable[[], date] | None = None,
        limits_table: LimitsTable | None = None,
    ) -> None:
        for label, value in (("username", username), ("secret", secret), ("integration code", integration_code)):
            if not value or not value.strip():
                raise ValueError(f"Autotask {label} is empty")
        for label, url in (("zone_url", zone_url), ("discovery_url", discovery_url)):
            if url is not None:
                parts = urlsplit(url.strip())
                if parts.scheme not in ("https", "http") or not parts.netloc:
                    raise ValueError(f"Autotask {label} must be an https:// URL, got {url!r}")
        if not 1 <= max_concurrent_requests <= MAX_CONCURRENT:
            raise ValueError(f"max_concurrent_requests must be 1..{MAX_CONCURRENT}, got {max_concurrent_requests}")
        self._name = name
        self.username = username.strip()
        self.discovery_url = discovery_url.strip().rstrip("/")
        self._zone_url = zone_url.strip().rstrip("/") if zone_url else None
        self.http = http or RetryingHttp("Autotask", verify=verify)
        self.limits = limits or shared_limits(self.discovery_url, self._zone_url, self.username,
                                              hourly_request_share, max_concurrent_requests, limits_table)
        self._headers = {"ApiIntegrationcode": integration_code.strip(), "UserName": self.username,
                         "Secret": secret, "Accept": "application/json"}
        self._today = today or (lambda: datetime.now(UTC).date())
        self._psa = "Autotask" if name.lower() in ("", "autotask") else f"Autotask ({name})"
        self._lock = threading.Lock()
        self._picklists: dict[str, dict[str, _Picklist]] = {}
        self._contract_companies: dict[int, int] = {}
        self._service_names: dict[int, tuple[str, str, BillingAttributes]] = {}

    # ------------------------------------------------------------------ PsaPort
    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> PsaCapabilities:
        """Autotask prorates unit changes itself from their effective date; SeatSync's tag is the
        contract service's internal description."""
        return PsaCapabilities(kind="autotask", prorate="native", description_limit=INVOICE_DESCRIPTION_MAX,
                               tag_limit=INTERNAL_DESCRIPTION_MAX, contact_fields=frozenset(CONTACT_WRITES))

    @property
    def calls(self) -> int:
        """Requests sent through this client's ``RetryingHttp`` (retries included)."""
        return self.http.calls

    def list_companies(self, active_only: bool = False) -> list[PsaCompany]:
        """Every company (or only active ones); ``status`` is Active or Inactive."""
        filters = [_eq("isActive", True)] if active_only else [{"op": "gte", "field": "id", "value": 0}]
        companies = []
        for row in self._query("Companies", filters, "companies", COMPANY_FIELDS):
            f = _Fields.of(row, self._psa, "company")
            name = f.text("companyName") or ""
            active = f.active("isActive")
            companies.append(PsaCompany(
                psa=self._name, company_id=str(f.ident()), identifier=(f.text("companyNumber") or "").strip() or name,
                name=name, website=f.text("webAddress") or None, status="Active" if active else "Inactive",
            ))
        return companies

    def list_contacts(self, company_id: str | None = None) -> list[PsaContact]:
        if company_id is not None:
            filters = [_eq("companyID", _numeric_id(company_id, "company"))]
            record = f"contacts of company {company_id}"
        else:
            filters, record = [{"op": "gte", "field": "id", "value": 0}], "contacts"
        return [self._contact(row) for row in self._query("Contacts", filters, record, CONTACT_FIELDS)]

    def _contact(self, row: Any) -> PsaContact:
        f = _Fields.of(row, self._psa, "contact")
        emails = tuple(e for e in (f.text("emailAddress"), f.text("emailAddress2"), f.text("emailAddress3")) if e)
        return PsaContact(
            psa=self._name, contact_id=str(f.ident()), company_id=str(f.ident("companyID")),
            first_name=f.text("firstName") or "", last_name=f.text("lastName") or "", emails=emails,
            inactive=not f.active("isActive"), title=f.text("title"), phone=f.text("phone") or None,
            mobile=f.text("mobilePhone") or None,
        )

    @staticmethod
    def _contact_body(details: ContactDetails) -> tuple[dict[str, Any], list[str]]:
        """The Contacts fields of ``details`` and what is wrong with them (Autotask's lengths)."""
        body: dict[str, Any] = {}
        problems: list[str] = []
        for name, value in details.given().items():
            field, limit = CONTACT_WRITES[name]
            problems += too_long(field, value, limit, "Autotask allows")
            body[field] = value
        return body, problems

    def create_contact(self, company_id: str, details: ContactDetails) -> PsaContact:
        """A new active contact of the company (``POST Companies/{id}/Contacts``: contacts are a child
        of companies). Autotask needs a first and a last name: a contact without is refused before
        anything is sent."""
        company = _numeric_id(company_id, "company")
        record = f"company {company} new contact {details.email or ''}".strip()
        body, problems = self._contact_body(details)
        for field, value in (("firstName", details.first_name), ("lastName", details.last_name)):
            if not value:
                problems.append(f"Autotask needs a contact's {field}: give the user a "
                                f"{'given name' if field == 'firstName' else 'surname'} in Microsoft Entra")
        if problems:
            raise PsaError(self._psa, "; ".join(problems), record)
        body.update({"companyID": company, "isActive": 1})
        created = self._call("POST", f"/V1.0/Companies/{company}/Contacts", record=record, json=body, creating=True)
        ident = _Fields(created, self._psa, record).ident("itemId")
        return PsaContact(psa=self._name, contact_id=str(ident), company_id=str(company),
                          first_name=details.first_name or "", last_name=details.last_name or "",
                          emails=(details.email,) if details.email else (), title=details.title, phone=details.phone,
                          mobile=details.mobile)

    def update_contact(self, contact: PsaContact, details: ContactDetails, *,
                       active: bool | None = None) -> PsaContact:
        """PATCH the fields given and ``isActive`` (1/0) to the company's contacts; nothing is sent
        when nothing changes."""
        if contact.psa != self._name:
            raise ValueError(f"contact {contact.contact_id} belongs to PSA connection {contact.psa!r}, not "
                             f"{self._name!r}")
        ident = _numeric_id(contact.contact_id, "contact")
        company = _numeric_id(contact.company_id, "company")
        record = f"company {company} contact {ident}"
        body, problems = self._contact_body(details)
        if problems:
            raise PsaError(self._psa, "; ".join(problems), record)
        if active is not None:
            body["isActive"] = 1 if active else 0
        if not body:
            return contact
        body["id"] = ident
        self._call("PATCH", f"/V1.0/Companies/{company}/Contacts", record=record, json=body)
        emails = contact.emails
        if details.email is not None:
            emails = (details.email, *(e for e in contact.emails[1:]))
        return replace(contact, first_name=details.first_name or contact.first_name,
                       last_name=details.last_name or contact.last_name, emails=emails,
                       title=details.title or contact.title, phone=details.phone or contact.phone,
                       mobile=details.mobile or contact.mobile,
                       inactive=contact.inactive if active is None else not active)

    # ------------------------------------------------------------------ tickets (TicketPort)
    def _closed_status(self, spec: TicketSpec) -> int:
        return TICKET_COMPLETE if spec.closed_status is None else _numeric_id(spec.closed_status, "status")

    def _ticket(self, row: Any, spec: TicketSpec) -> PsaTicket:
        f = _Fields.of(row, self._psa, "ticket")
        status = f.ident("status")
        return PsaTicket(psa=self._name, ticket_id=str(f.ident()), company_id=str(f.ident("companyID")),
                         summary=f.text("title") or "", status=str(status), closed=status == self._closed_status(spec))

    def find_ticket(self, spec: TicketSpec, marker: str, *, closed: bool = False) -> PsaTicket | None:
        """Query the queue's tickets (not in the closed status, unless ``closed``) whose title ends
        with the marker."""
        filters = [_eq("queueID", _numeric_id(spec.queue, "queue")),
                   {"op": "contains", "field": "title", "value": marker.strip("[]")}]
        if not closed:
            filters.insert(1, {"op": "noteq", "field": "status", "value": self._closed_status(spec)})
        rows = self._query("Tickets", filters, "tickets", TICKET_FIELDS)
        found = [t for t in (self._ticket(row, spec) for row in rows) if t.summary.endswith(marker)]
        if closed:
            return max(found, key=lambda t: int(t.ticket_id), default=None)
        return min((t for t in found if not t.closed), key=lambda t: int(t.ticket_id), default=None)

    def get_ticket(self, spec: TicketSpec, ticket_id: str) -> PsaTicket | None:
        ident = _numeric_id(ticket_id, "ticket")
        raw = self._call("GET", f"/V1.0/Tickets/{ident}", record=f"ticket {ident}")
        item = raw.get("item") if isinstance(raw, Mapping) else None
        return None if item is None else self._ticket(item, spec)

    def open_ticket(self, spec: TicketSpec, company_id: str, summary: str, details: str, marker: str) -> PsaTicket:
        """``POST Tickets`` in the queue, status New, due tomorrow (Autotask needs a due date, a
        priority and a status), then read back."""
        company = _numeric_id(company_id, "company")
        queue = _numeric_id(spec.queue, "queue")
        room = TICKET_TITLE_MAX - len(marker) - 1
        title = summary if len(summary) <= room else summary[: room - 3].rstrip() + "..."
        due = self._today() + timedelta(days=1)
        body = {"companyID": company, "queueID": queue, "title": f"{title} {marker}",
                "description": details[:TICKET_DESCRIPTION_MAX], "status": TICKET_NEW,
                "priority": TICKET_MEDIUM if spec.priority is None else _numeric_id(spec.priority, "priority"),
                "dueDateTime": f"{due.isoformat()}T00:00:00Z"}
        record = f"queue {queue} new ticket {marker}"
        created = self._call("POST", "/V1.0/Tickets", record=record, json=body, creating=True)
        ident = _Fields(created, self._psa, record).ident("itemId")
        return self._ticket(self._get("Tickets", ident, f"ticket {ident}"), spec)

    def note_ticket(self, spec: TicketSpec, ticket: PsaTicket, text: str) -> None:
        """``POST Tickets/{id}/Notes``: a Task Summary note published to Autotask users."""
        ident = _numeric_id(ticket.ticket_id, "ticket")
        self._call("POST", f"/V1.0/Tickets/{ident}/Notes", record=f"ticket {ident} note",
                   json={"ticketID": ident, "title": "SeatSync", "description": text[:TICKET_DESCRIPTION_MAX],
                         "noteType": NOTE_TYPE, "publish": NOTE_PUBLISH})

    def close_ticket(self, spec: TicketSpec, ticket: PsaTicket, text: str) -> PsaTicket:
        """A note, then ``PATCH Tickets`` to the closed status; read back."""
        ident = _numeric_id(ticket.ticket_id, "ticket")
        self.note_ticket(spec, ticket, text)
        self._call("PATCH", "/V1.0/Tickets", record=f"ticket {ident}",
                   json={"id": ident, "status": self._closed_status(spec)})
        closed = self._ticket(self._get("Tickets", ident, f"ticket {ident}"), spec)
        if not closed.closed:
            raise PsaError(self._psa, f"ticket {ident} reads status {closed.status} after it was closed",
                           f"ticket {ident}")
        return closed

    def list_products(self, include_inactive: bool = False) -> list[Product]:
        filters = [{"op": "gte", "field": "id", "value": 0}] if include_inactive else [_eq("isActive", True)]
        return [self._product(row) for row in self._query("Services", filters, "services", SERVICE_FIELDS)]

    def get_products(self, product_ids: Iterable[str]) -> list[Product]:
        """The services that exist among the ids, one ``id in [...]`` query per 200."""
        ids = list(dict.fromkeys(_numeric_id(p, "service") for p in product_ids))
        rows: list[Any] = []
        for chunk in _chunks(ids):
            rows += self._query("Services", [{"op": "in", "field": "id", "value": chunk}],
                                f"services {', '.join(map(str, chunk))}", SERVICE_FIELDS)
        return [self._product(row) for row in rows]

    def get_product(self, product_id: str) -> Product:
        ident = _numeric_id(product_id, "service")
        return self._product(self._get("Services", ident, f"service {ident}"))

    def list_agreement_types(self, include_inactive: bool = False) -> list[AgreementType]:
        """The Contracts ``contractCategory`` picklist: Autotask's way to type contracts."""
        categories = self._picklist("Contracts", "contractCategory")
        return [AgreementType(psa=self._name, type_id=str(value), name=label, prorate=True, billing_cycle=None,
                              inactive=value in categories.inactive)
                for value, label in categories.labels.items()
                if include_inactive or value not in categories.inactive]

    def get_agreement(self, agreement_id: str) -> Agreement:
        ident = _numeric_id(agreement_id, "contract")
        return self._agreement(self._get("Contracts", ident, f"contract {ident}"))

    def get_agreements(self, agreement_ids: Iterable[str]) -> list[Agreement]:
        """The contracts that exist among ``agreement_ids`` (missing ones are absent), one
        ``id in [...]`` query per 200."""
        ids = list(dict.fromkeys(_numeric_id(a, "contract") for a in agreement_ids))
        rows: list[Any] = []
        for chunk in _chunks(ids):
            rows += self._query("Contracts", [{"op": "in", "field": "id", "value": chunk}],
                                f"contracts {', '.join(map(str, chunk))}", CONTRACT_FIELDS)
        return [self._agreement(row) for row in rows]

    def list_agreements(self, company_id: str) -> list[Agreement]:
        """The company's Recurring Service contracts, whatever their status."""
        ident = _numeric_id(company_id, "company")
        rows = self._query("Contracts", [_eq("companyID", ident), _eq("contractType", RECURRING_SERVICE)],
                           f"contracts of company {ident}", CONTRACT_FIELDS)
        return [self._agreement(row) for row in rows]

    def list_lines(self, agreement_ids: Iterable[str], *, known: Iterable[Agreement] = ()) -> list[BilledLine]:
        """The contract services of the contracts, contract by contract in the order given, each by
        id, with their units. A few queries whatever the number of contracts; any failure
        raises (never a partial list). The company of each contract comes from ``known`` or an
        earlier read, else from one query per 200 contracts."""
        ids = list(dict.fromkeys(_numeric_id(a, "contract") for a in agreement_ids))
        if not ids:
            return []
        with self._lock:
            for agreement in known:
                if agreement.psa == self._name and agreement.agreement_id.isdigit() and agreement.company_id.isdigit():
                    self._contract_companies[int(agreement.agreement_id)] = int(agreement.company_id)
        companies = self._companies_of(ids)
        rows: list[Any] = []
        for chunk in _chunks(ids):
            rows += self._query("ContractServices", [{"op": "in", "field": "contractID", "value": chunk}],
                                f"services of contracts {', '.join(map(str, chunk))}", CONTRACT_SERVICE_FIELDS)
        by_contract: dict[int, list[Any]] = {ident: [] for ident in ids}
        for row in rows:
            f = _Fields.of(row, self._psa, "contract service")
            contract = f.ident("contractID")
            if contract not in by_contract:
                raise f.fail("contractID", f"is {contract}, not one of the contracts asked for")
            by_contract[contract].append(row)
        service_ids = sorted({_Fields(row, self._psa, "contract service").ident("id") for row in rows})
        units = self._units(service_ids)
        names = self._names([_Fields(row, self._psa, "contract service").ident("serviceID") for row in rows])
        lines = []
        for ident in ids:
            for row in sorted(by_contract[ident], key=lambda r: int(r["id"])):
                lines.append(self._line(row, str(companies[ident]), units, names))
        return lines

    def get_line(self, agreement_id: str, line_id: str) -> BilledLine:
        contract = _numeric_id(agreement_id, "contract")
        ident = _numeric_id(line_id, "contract service")
        record = f"contract {contract} service {ident}"
        raw = self._get("ContractServices", ident, record)
        f = _Fields(raw, self._psa, record)
        if f.ident("contractID") != contract:
            raise PsaError(self._psa, f"contract service {ident} belongs to contract {f.ident('contractID')}",
                           record, 404)
        companies = self._companies_of([contract])
        return self._line(raw, str(companies[contract]), self._units([ident]), self._names([f.ident("serviceID")]))

    def set_quantity(self, line: BilledLine, quantity: int, effective_date: date) -> BilledLine:
        """Change a contract service's units from ``effective_date`` with a ContractServiceAdjustment
        of ``quantity`` minus the units on that date; Autotask prorates it itself. Units are never
        PATCHed. Nothing is written when the units on that date already are ``quantity``."""
        whole_quantity(quantity)
        contract, ident = self._line_ids(line)
        record = f"contract {contract} service {ident}"
        rows = self._query("ContractServiceUnits", [
            _eq("contractServiceID", ident),
            {"op": "lte", "field": "startDate", "value": effective_date.isoformat()},
            {"op": "gte", "field": "endDate", "value": effective_date.isoformat()},
        ], f"{record} units on {effective_date}", UNIT_FIELDS)
        if not rows:
            raise PsaError(self._psa, f"the effective date {effective_date} is outside the contract's billing "
                           "periods (before its start or after its end date); extend or renew the contract",
                           record)
        current = _Fields(rows[-1], self._psa, record).integer("units")
        change = quantity - current
        if change == 0:
            return replace(line, quantity=Decimal(quantity))
        body: dict[str, Any] = {
            "contractID": contract, "serviceID": _numeric_id(line.product_id, "service"),
            "contractServiceID": ident, "effectiveDate": utc_midnight(effective_date), "unitChange": change,
        }
        if line.unit_price is not None:
            body["adjustedUnitPrice"] = float(line.unit_price)
        if line.unit_cost is not None:
            body["adjustedUnitCost"] = float(line.unit_cost)
        self._call("POST", "/V1.0/ContractServiceAdjustments", record=f"{record} adjustment of {change:+d} units "
                   f"from {effective_date}", json=body, creating=True)
        return replace(line, quantity=Decimal(quantity), effective_date=effective_date)

    def create_line(self, line: NewLine) -> BilledLine:
        """Add a service to a Recurring Service contract: a ContractService (with the tag in its
        internal description) and, for a quantity above 0, an adjustment effective on
        ``line.effective_date``. Autotask holds one contract service per service and contract,
        bills every service (no do-not-bill lines) and ends a service's units with a negative
        adjustment, not an end date: such lines are refused before anything is sent."""
        contract = _numeric_id(line.agreement_id, "contract")
        record = f"contract {contract} new service {line.product_id}"
        quantity, problems = checked_quantity(line.quantity)
        if not str(line.product_id).strip().isdigit():
            problems.append(f"product id must be an Autotask service id, got {line.product_id!r}")
        if line.bill_mode is not BillMode.BILLABLE:
            problems.append(f"Autotask bills every contract service; bill mode {line.bill_mode.value} is not possible")
        if line.end_date is not None:
            problems.append("Autotask prorates unit changes itself: a line with an end date is not used (change the "
                            "units with an effective date instead)")
        problems += too_long("invoiceDescription", line.invoice_description, INVOICE_DESCRIPTION_MAX, "Autotask allows")
        problems += tag_problems(line.tag, "internalDescription", INTERNAL_DESCRIPTION_MAX, "Autotask allows")
        if problems:
            raise PsaError(self._psa, "; ".join(problems), record)
        service = int(str(line.product_id).strip())
        body: dict[str, Any] = {"contractID": contract, "serviceID": service}
        if line.unit_price is not None:
            body["unitPrice"] = float(line.unit_price)
        if line.unit_cost is not None:
            body["unitCost"] = float(line.unit_cost)
        if line.invoice_description:
            body["invoiceDescription"] = line.invoice_description
        if line.tag:
            body["internalDescription"] = line.tag
        created = self._call("POST", f"/V1.0/Contracts/{contract}/Services", record=record, json=body, creating=True)
        ident = _Fields(created, self._psa, record).ident("itemId")
        if quantity:
            adjustment: dict[str, Any] = {"contractID": contract, "serviceID": service, "contractServiceID": ident,
                                          "effectiveDate": utc_midnight(line.effective_date), "unitChange": quantity}
            if line.unit_price is not None:
                adjustment["adjustedUnitPrice"] = float(line.unit_price)
            if line.unit_cost is not None:
                adjustment["adjustedUnitCost"] = float(line.unit_cost)
            try:
                self._call("POST", "/V1.0/ContractServiceAdjustments", json=adjustment, creating=True,
                           record=f"contract {contract} service {ident} adjustment of {quantity:+d} units")
            except PsaError as exc:
                raise PsaError(self._psa, f"contract service {ident} was created but its units were not set "
                               f"({exc}); it bills 0 units until its quantity is set", record, exc.status) from exc
        return self.get_line(str(contract), str(ident))

    def update_line(self, line: BilledLine, *, invoice_description: str | None = None,
                    unit_price: Decimal | None = None) -> BilledLine:
        """Change a contract service's invoice description and/or price. Autotask lets a client
        update only ``adjustedPrice`` and ``invoiceDescription`` of a contract service (its
        ``unitPrice`` is read-only after creation), so a new price is written as the adjusted
        price, which is what the service then bills at."""
        contract, ident = self._line_ids(line)
        record = f"contract {contract} service {ident}"
        body: dict[str, Any] = {"id": ident}
        if invoice_description is not None:
            if problems := too_long("invoiceDescription", invoice_description, INVOICE_DESCRIPTION_MAX,
                                    "Autotask allows"):
                raise PsaError(self._psa, "; ".join(problems), record)
            body["invoiceDescription"] = invoice_description
        if unit_price is not None:
            body["adjustedPrice"] = float(unit_price)
        if len(body) == 1:
            return line
        self._call("PATCH", f"/V1.0/Contracts/{contract}/Services", record=record, json=body)
        return replace(line, invoice_description=(invoice_description if invoice_description is not None
                                                  else line.invoice_description),
                       unit_price=unit_price if unit_price is not None else line.unit_price)

    # ------------------------------------------------------------------ more of the PSA
    def threshold_information(self) -> dict[str, int]:
        """``ThresholdInformation``: the database's threshold, timeframe (minutes) and current
        count (also reconciles the hourly budget). A cheap check of the credentials too."""
        raw = self._call("GET", "/V1.0/ThresholdInformation", record="threshold information", budgeted=False)
        f = _Fields(raw, self._psa, "threshold information")
        info = {"externalRequestThreshold": f.integer("externalRequestThreshold") or DEFAULT_THRESHOLD,
                "requestThresholdTimeframe": f.optional_integer("requestThresholdTimeframe") or 60,
                "currentTimeframeRequestCount": f.integer("currentTimeframeRequestCount")}
        self.limits.budget.reconcile(info["externalRequestThreshold"], info["requestThresholdTimeframe"],
                                     info["currentTimeframeRequestCount"])
        return info

    def check_connection(self) -> dict[str, int]:
        return self.threshold_information()

    @property
    def zone_url(self) -> str:
        """The zone's REST root, discovered from the username when not configured."""
        return self._base()

    # ------------------------------------------------------------------ mapping
    def _product(self, row: Any) -> Product:
        f = _Fields.of(row, self._psa, "service")
        name = f.text("name") or ""
        return Product(psa=self._name, product_id=str(f.ident()), identifier=name,
                       description=f.text("description") or name, price=f.price("unitPrice"),
                       cost=f.price("unitCost"), inactive=not f.active("isActive"),
                       customer_description=f.text("invoiceDescription") or "",
                       billing=_service_billing(f), unreadable=f.unreadable)

    def _agreement(self, raw: Any) -> Agreement:
        f = _Fields.of(raw, self._psa, "contract")
        ident = f.ident()
        company = f.ident("companyID")
        with self._lock:
            self._contract_companies[ident] = company
        cycle = "none"
        period = f.optional_integer("contractPeriodType")
        if period is not None:
            periods = self._picklist("Contracts", "contractPeriodType")
            name = periods.labels.get(period)
            if name is None:
                raise f.fail("contractPeriodType", f"value {period} is not in the picklist")
            mapped = billing_cycle_name(name)
            if mapped is None:
                raise f.fail("contractPeriodType", f"period type {name!r} is not one SeatSync understands (known: "
                             "Monthly, Quarterly, Semi-Annual, Yearly)")
            cycle = mapped
        category = f.optional_integer("contractCategory")
        type_name = ""
        if category is not None:
            type_name = self._picklist("Contracts", "contractCategory").labels.get(category, "")
        start, end = f.day("startDate"), f.day("endDate")
        today = self._today()
        status = f.optional_integer("status")
        active = status == ACTIVE and (start is None or start <= today) and (end is None or end >= today)
        return Agreement(psa=self._name, agreement_id=str(ident), company_id=str(company),
                         name=f.text("contractName") or "", type_name=type_name, active=active, prorate=True,
                         billing_cycle=cycle, start_date=start, end_date=end, bill_in_advance=True)

    def _line(self, raw: Any, company_id: str, units: Mapping[int, _Units],
              names: Mapping[int, tuple[str, str, BillingAttributes]]) -> BilledLine:
        f = _Fields.of(raw, self._psa, "contract service")
        ident = f.ident()
        service = f.ident("serviceID")
        current = units.get(ident, _Units(0, None))
        internal = f.text("internalDescription")
        name, description, billing = names.get(service, ("", "", BillingAttributes()))
        if current.problem is not None:
            f.problems.append(current.problem)
        return BilledLine(
            psa=self._name, line_id=str(ident), agreement_id=str(f.ident("contractID")), company_id=company_id,
            product_id=str(service), product_identifier=name, quantity=Decimal(current.quantity),
            period_quantity=None if current.today is None else Decimal(current.today),
            unit_price=self._billed_price(f), unit_cost=f.price("unitCost"), bill_mode=BillMode.BILLABLE,
            description=description or name, invoice_description=f.text("invoiceDescription") or "",
            effective_date=current.since, cancelled_date=None,
            tag=internal.strip() if internal and is_seatsync_tag(internal) else None, billing=billing,
            unreadable=f.unreadable,  # last: after every read of the record
        )

    @staticmethod
    def _billed_price(f: _Fields) -> Decimal | None:
        """What a contract service bills a unit at: its adjusted price when set, else its unit price."""
        adjusted = f.price("adjustedPrice")
        return adjusted if adjusted is not None else f.price("unitPrice")

    def _line_ids(self, line: BilledLine) -> tuple[int, int]:
        if line.psa != self._name:
            raise ValueError(f"line {line.line_id} belongs to PSA connection {line.psa!r}, not {self._name!r}")
        return _numeric_id(line.agreement_id, "contract"), _numeric_id(line.line_id, "contract service")

    def _units(self, contract_service_ids: Sequence[int]) -> dict[int, _Units]:
        """Each contract service's units from the next period on: the units of the first record
        after today's (a change already scheduled for the next period's start included; the
        contract's last period: today's), and since when; and the units of today's record where a
        change scheduled for a later date makes them differ (what the current period is charged
        for, see ``BilledLine.period_quantity``). A change an MSP scheduled further ahead does not
        count: SeatSync plans the current period and the next."""
        today = self._today()
        rows: list[Any] = []
        for chunk in _chunks(list(contract_service_ids)):
            rows += self._query("ContractServiceUnits", [
                {"op": "in", "field": "contractServiceID", "value": chunk},
                {"op": "gte", "field": "endDate", "value": today.isoformat()},
            ], f"units of contract services {', '.join(map(str, chunk))}", UNIT_FIELDS)
        periods: dict[int, list[tuple[date, Decimal | None, str | None]]] = {}
        for row in rows:
            f = _Fields.of(row, self._psa, "contract service unit")
            start = f.day("startDate")
            if start is None:
                raise f.fail("startDate", "is missing")
            units = f.quantity("units")
            if units is None and not f.problems:
                raise f.fail("units", "is missing")
            periods.setdefault(f.ident("contractServiceID"), []).append((start, units, f.unreadable))
        result = {}
        for ident, found in periods.items():
            found.sort(key=lambda period: period[0])
            if any(problem for _, _, problem in found):
                result[ident] = _Units(0, None, problem=next(p for _, _, p in found if p))
                continue
            current = max((index for index, (start, _, _) in enumerate(found) if start <= today), default=0)
            upto = found[:current + 2]  # today's record and the next one
            quantity = upto[-1][1]
            since = upto[-1][0]
            for start, units, _ in reversed(upto):
                if units != quantity:
                    break
                since = start
            quantity = quantity if quantity is not None else Decimal(0)
            today_units = found[current][1] if found[current][0] <= today else quantity
            result[ident] = _Units(quantity, since, None if today_units == quantity else today_units)
        return result

    def _names(self, service_ids: Iterable[int]) -> dict[int, tuple[str, str, BillingAttributes]]:
        wanted = sorted(set(service_ids))
        with self._lock:
            missing = [s for s in wanted if s not in self._service_names]
        for chunk in _chunks(missing):
            rows = self._query("Services", [{"op": "in", "field": "id", "value": chunk}],
                               f"services {', '.join(map(str, chunk))}", ["id", "name", "description", "billingCodeID"])
            with self._lock:
                for row in rows:
                    f = _Fields.of(row, self._psa, "service")
                    self._service_names[f.ident()] = (f.text("name") or "", f.text("description") or "",
                                                      _service_billing(f))
        with self._lock:
            return {s: self._service_names[s] for s in wanted if s in self._service_names}

    def _companies_of(self, contract_ids: Sequence[int]) -> dict[int, int]:
        with self._lock:
            known = {c: self._contract_companies[c] for c in contract_ids if c in self._contract_companies}
        missing = [c for c in contract_ids if c not in known]
        for chunk in _chunks(missing):
            rows = self._query("Contracts", [{"op": "in", "field": "id", "value": chunk}],
                               f"contracts {', '.join(map(str, chunk))}", ["id", "companyID"])
            for row in rows:
                f = _Fields.of(row, self._psa, "contract")
                known[f.ident()] = f.ident("companyID")
        absent = [c for c in contract_ids if c not in known]
        if absent:
            raise PsaError(self._psa, "not found (no such contract, or the API user cannot see it)",
                           f"contract {', '.join(map(str, absent))}", 404)
        with self._lock:
            self._contract_companies.update(known)
        return known

    def _picklist(self, entity: str, field: str) -> _Picklist:
        with self._lock:
            cached = self._picklists.get(entity)
        if cached is None:
            raw = self._call("GET", f"/V1.0/{entity}/entityInformation/fields", record=f"{entity} fields")
            fields = raw.get("fields") if isinstance(raw, Mapping) else None
            if not isinstance(fields, list):
                raise PsaError(self._psa, f"entityInformation/fields has no fields list: {str(raw)[:200]!r}",
                               f"{entity} fields")
            cached = {}
            for item in fields:
                if not isinstance(item, Mapping) or not item.get("isPickList"):
                    continue
                labels: dict[int, str] = {}
                inactive: set[int] = set()
                for value in item.get("picklistValues") or []:
                    if not isinstance(value, Mapping):
                        continue
                    try:
                        number = int(str(value.get("value")))
                    except ValueError:
                        continue
                    labels[number] = str(value.get("label") or "")
                    if value.get("isActive") is False:
                        inactive.add(number)
                cached[str(item.get("name"))] = _Picklist(labels, frozenset(inactive))
            with self._lock:
                self._picklists[entity] = cached
        found = cached.get(field)
        if found is None:
            raise PsaError(self._psa, f"the {field} picklist is missing from entityInformation/fields",
                           f"{entity} fields")
        return found

    # ------------------------------------------------------------------ HTTP
    def _base(self) -> str:
        if self._zone_url:
            return self._zone_url
        with self._lock:
            if self.limits.zone_url:
                return self.limits.zone_url
        url = f"{self.discovery_url}/V1.0/zoneInformation"
        try:
            response = self.http.request("GET", url, params={"user": self.username},
                                         headers={"Accept": "application/json"}, final=_zone_unknown)
        except requests.RequestException as exc:
            raise PsaError(self._psa, f"zone discovery got no answer ({type(exc).__name__}: {exc})", "zone information",
                           None, "GET", url) from exc
        try:
            info = json.loads(response.text) if response.content else None
        except (ValueError, RecursionError):
            info = None
        zone = info.get("url") if isinstance(info, dict) else None
        if response.status_code != 200 or not isinstance(zone, str) or not zone.startswith("http"):
            errors = info.get("errors") if isinstance(info, dict) else None
            said = "; ".join(str(e) for e in errors) if isinstance(errors, list) and errors else ""
            raise PsaAuthError(
                self._psa, f"no Autotask zone was found for the API user {self.username!r} (HTTP "
                f"{response.status_code}{': ' + said if said else ''}): check the username of the API user "
                "(Admin > Resources (Users), an API User with its own username), or set zone_url",
                "zone information", response.status_code, "GET", url)
        base = zone.rstrip("/")
        with self._lock:
            self.limits.zone_url = base
        return base

    @staticmethod
    def _endpoint(path: str) -> str:
        """The endpoint a request counts against for the thread limit: the entity path without
        ids or query verbs (``Contracts/Services``, ``ContractServiceUnits``)."""
        parts = [p for p in path.split("?")[0].split("/") if p]
        lowered = [p.lower() for p in parts]
        if "v1.0" in lowered:
            parts = parts[lowered.index("v1.0") + 1:]
        kept = [p for p in parts if not p.isdigit() and p.lower() not in ("query", "next", "count")]
        return "/".join(kept) or "root"

    def _send(self, method: str, url: str, *, record: str, json_body: Any = None, idempotent: bool | None = None,
              creating: bool = False, budgeted: bool = True) -> requests.Response:
        if budgeted:
            self._refresh_threshold()
        endpoint = self._endpoint(urlsplit(url).path)
        budget = self.limits.budget
        semaphore = self.limits.semaphore(endpoint)
        slots = self.limits.slots(endpoint)
        with semaphore, (slots.slot(record) if slots is not None else contextlib.nullcontext()) as slot:
            self.limits.entered(endpoint)

            def again() -> None:  # before each retry: the slot kept, the budget counted
                if slots is not None and isinstance(slot, SlotHandle):
                    slots.keep(slot)
                budget.acquire(record)

            try:
                budget.acquire(record)
                return self.http.request(method, url, headers=self._headers, json=json_body, idempotent=idempotent,
                                         on_retry=again, final=_final)
            except requests.RequestException as exc:
                maybe = (" It may have been created: read the contract's services before trying again."
                         if creating else "")
                raise PsaError(self._psa, f"no answer from Autotask ({type(exc).__name__}: {exc}).{maybe}", record,
                               None, method, url) from exc
            finally:
                self.limits.left(endpoint)

    def _refresh_threshold(self) -> None:
        budget = self.limits.budget
        if not budget.begin_refresh():
            return
        try:
            self.threshold_information()
        except PsaAuthError:
            budget.end_refresh()
            raise
        except PsaError:
            budget.end_refresh()  # the budget still counts SeatSync's own requests

    def _call(self, method: str, path: str, *, record: str, json: Any = None, creating: bool = False,
              budgeted: bool = True) -> Any:
        url = self._base() + path
        idempotent = True if method == "POST" and path.endswith("/query") else None
        response = self._send(method, url, record=record, json_body=json, idempotent=idempotent, creating=creating,
                              budgeted=budgeted)
        if response.status_code >= 400:
            self._raise(response, method, url, record, creating=creating)
        return self._body(response, method, url, record)

    def _get(self, entity: str, ident: int, record: str) -> Any:
        raw = self._call("GET", f"/V1.0/{entity}/{ident}", record=record)
        item = raw.get("item") if isinstance(raw, Mapping) else None
        if item is None:
            raise PsaError(self._psa, "not found (no such record, or the API user cannot see it)", record, 404,
                           "GET", f"{self._base()}/V1.0/{entity}/{ident}")
        return item

    def _body(self, response: requests.Response, method: str, url: str, record: str) -> Any:
        return json_answer(response, self._psa, method, url, record)

    def _raise(self, response: requests.Response, method: str, url: str, record: str, *, creating: bool) -> NoReturn:
        status = response.status_code
        messages = _error_messages(response)
        detail = "; ".join(messages) or (response.text[:300].strip() if response.text else response.reason or "")
        if status in (401, 403) or (status == 500 and _LOGIN_REFUSED.search(detail)):
            raise PsaAuthError(
                self._psa, "Autotask refused the API user. Check the username and secret of the API user (Admin > "
                "Resources (Users); security level API User (system) or a copy of it that can see and edit "
                "contracts), that the user is active, and the integration code (API tracking identifier) sent as "
                f"ApiIntegrationcode ({detail or f'HTTP {status}'})", record, status, method, url)
        if _refused_request(response):  # nothing was written; sent again it would be refused again
            raise PsaError(self._psa, f"Autotask refused the request: {detail}", record, status, method, url,
                           refused=True)
        maybe = " The record may have been created: read the contract's services before trying again."
        raise status_error(self._psa, status, detail, record, method, url, maybe_created=maybe if creating else "")

    def _query(self, entity: str, filters: list[dict[str, Any]], record: str,
               include: Sequence[str] | None = None) -> list[Any]:
        """Every record matching ``filters``, page by page: each page is POSTed to the previous
        page's ``nextPageUrl`` with the same body. A next page on another host or entity, a URL
        seen before, an empty page with a next page and a record seen twice raise ``PsaError``."""
        body: dict[str, Any] = {"filter": filters, "MaxRecords": MAX_RECORDS}
        if include:
            body["IncludeFields"] = list(include)
        base = self._base()
        url = f"{base}/V1.0/{entity}/query"
        own = urlsplit(base)
        rows: list[Any] = []
        seen_ids: set[Any] = set()
        seen_urls = {url}
        page = 1
        while True:
            response = self._send("POST", url, record=record, json_body=body, idempotent=True)
            if response.status_code >= 400:
                self._raise(response, "POST", url, record, creating=False)
            data = self._body(response, "POST", url, record)
            items = data.get("items") if isinstance(data, Mapping) else None
            if not isinstance(items, list):
                raise PsaError(self._psa, f"page {page} has no items list: {str(data)[:200]!r}", record,
                               response.status_code, "POST", url)
            for item in items:
                ident = item.get("id") if isinstance(item, Mapping) else None
                if ident in seen_ids:
                    raise PsaError(self._psa, f"paging is inconsistent: record {ident} came back twice (page {page});"
                                   " the next page URL is broken or the data changed while it was read", record,
                                   response.status_code, "POST", url)
                seen_ids.add(ident)
            rows.extend(items)
            details = data.get("pageDetails") if isinstance(data, Mapping) else None
            following = details.get("nextPageUrl") if isinstance(details, Mapping) else None
            if not following:
                return rows
            if not isinstance(following, str):
                raise PsaError(self._psa, f"nextPageUrl is not a URL: {following!r}", record)
            parts = urlsplit(following)
            if (parts.scheme, parts.netloc.lower()) != (own.scheme, own.netloc.lower()) or not re.search(
                    rf"/V1\.0/{re.escape(entity)}/query", parts.path, re.IGNORECASE):
                raise PsaError(self._psa, f"paging is broken after page {page}: nextPageUrl points elsewhere "
                               f"({parts.netloc}{parts.path})", record)
            if not items:
                raise PsaError(self._psa, f"paging is broken after page {page}: an empty page came with a next page",
                               record)
            if following in seen_urls:
                raise PsaError(self._psa, f"paging is broken after page {page}: nextPageUrl repeats a page already "
                               "read (a loop)", record)
            seen_urls.add(following)
            url = following
            page += 1
