"""HaloPSA API client: the ``PsaPort`` for HaloPSA.

Authentication: OAuth2 client credentials (``POST {base}/auth/token?tenant=`` with
``scope=all``); the bearer token is cached process-wide per connection until shortly before it
expires, and fetched again once when the API answers 401.

Mapping: companies are Clients, contacts Users (Halo's customer contacts), products Items. The
billed lines are recurring invoice lines, and the agreements either the recurring invoices
themselves (``lines: recurring-invoice``, the default; their ids are negative, as in Halo) or
client contracts (``lines: contract``), whose lines are those of the recurring invoices linked to
the contract (``contract_id``). A recurring invoice's billing cycle is the length of its billing
period (``period_start_date`` .. ``period_end_date``), anchored on its ``startdate``.

Writes: ``POST /api/RecurringInvoice`` with the invoice and *all* its lines as read (Halo replaces
an invoice's lines with the lines posted; a line with an id is updated, one without is added).

Prorating (style ``native``): Halo prorates a quantity change itself through a line's pro-rata
entries (``prorata_data``: a date and a quantity; Halo works out the price for the rest of the
current period, invoices it on the next invoice and then adds the quantity to the line). So
``set_quantity`` with an effective date inside the period already invoiced (before the invoice's
``nextcreationdate``) adds a pro-rata entry for the difference; with a date from the next period
on (the caller's choice when prorating is disabled or a decrease is not credited) it changes
``qty_order``, which bills from the next invoice. A line's quantity is ``qty_order`` plus its
pending pro-rata quantities: what Halo bills from the next period on. Decreases prorated this way
are credits, which Halo accepts only when negative pro-rata is allowed in its billing settings.

SeatSync's tag: the line's ``item_internal_reference`` (not printed on invoices); a line is
SeatSync's when it starts with ``seatsync``. SeatSync keeps tags to 50 characters.

Rate limit: hosted Halo allows 300 requests per rolling 5 minutes; a sliding window per connection
keeps SeatSync under ``requests_per_5_minutes`` (every request, retries and token requests
included, waits for a free slot), and a 429 is retried after its ``Retry-After`` or a back-off long
enough for the window to move. With a limits table (the Function App's store) the window is
shared by every instance (``shared.adapters.shared_limits``); without, by the clients of the
process. A wait never runs past the activity's deadline (``shared.deadline``).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

import requests

from shared import deadline
from shared.adapters.connectwise import billing_cycle_name
from shared.adapters.http import RetryingHttp, RetryPolicy
from shared.adapters.psa_records import TAG_PREFIX as TAG_PREFIX
from shared.adapters.psa_records import (
    RecordFields,
    checked_quantity,
    iso_moment,
    json_answer,
    numeric_id,
    record_label,
    status_error,
    tag_problems,
    too_long,
    whole_quantity,
)
from shared.adapters.psa_records import is_seatsync_tag as is_seatsync_tag
from shared.adapters.shared_limits import LimitsTable, SharedWindow, row_key
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
from shared.domain.periods import add_months
from shared.errors import PsaAuthError, PsaError
from shared.ports import NewLine

WINDOW_SECONDS = 300.0
HOSTED_LIMIT = 300
PAGE_SIZE = 100
TAG_MAX = 50
DESCRIPTION_MAX = 4000
TOKEN_MARGIN_SECONDS = 60.0
RECURRING_INVOICE_TYPE = "recurring-invoice"
# What contact sync writes to a user (Halo's client contact): the field of each contact field.
USER_WRITES = {"first_name": "firstname", "last_name": "surname", "email": "emailaddress", "title": "title",
               "phone": "phonenumber", "mobile": "mobilenumber"}
USER_TEXT_MAX = 255
TICKET_SUMMARY_MAX = 255
CLOSED_STATUS = 9  # Halo's system status Closed
# Halo's ``period`` of a recurring invoice when its period dates are missing (2 is Monthly).
PERIOD_CODES = {2: "monthly"}
_SPANS = {1: "monthly", 2: "bi-monthly", 3: "quarterly", 6: "semi-annual", 12: "annual"}

# Without a Retry-After, a 429 is retried after 10, 20, 40, 80, 120, 120 and 120 s: long enough in all
# (about 8 minutes) for Halo's 5-minute window to move.
RETRY_POLICY = RetryPolicy(max_attempts=8, backoff_base_seconds=10.0, backoff_max_seconds=120.0)

LinesMode = Literal["recurring-invoice", "contract"]

# Said of a write that failed but may have happened all the same.
_MAYBE_ADDED = " The line may have been added: read the recurring invoice before trying again."


# --------------------------------------------------------------------------- limits and tokens


class SlidingWindowLimiter:
    """At most ``limit`` requests in any ``window`` seconds. Thread-safe: ``acquire`` waits (with
    the injected ``sleep``) until a slot is free, then takes it."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, shared: SharedWindow | None = None) -> None:
        if limit < 1:
            raise ValueError(f"the request limit must be at least 1, got {limit}")
        self.limit = limit
        self.shared = shared
        """The window every instance of the Function App shares, when there is a limits table."""
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self.waits = 0
        self.waited = 0.0

    def in_window(self) -> int:
        with self._lock:
            self._prune(self._clock())
            return len(self._sent)

    def _prune(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    def acquire(self, what: str = "request") -> None:
        """Wait for a slot (in the shared window when there is one) and take it; raises
        ``DeadlineReached`` instead of waiting past the activity's deadline."""
        if self.shared is not None:
            self.shared.limit = self.limit
            self.shared.take(what)
            return
        while True:
            with self._lock:
                now = self._clock()
                self._prune(now)
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                wait = max(self._sent[0] + self.window - now, 0.001)
                if deadline.allowed_wait(wait) < wait:
                    raise deadline.DeadlineReached(f"{what}: HaloPSA's request window frees a slot in {wait:.0f}s, "
                                                   "after this activity's deadline")
                self.waits += 1
                self.waited += wait
            self._sleep(wait)


class TokenCache:
    """One connection's bearer token, shared by its clients until shortly before it expires."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.fetched = 0

    def get(self, fetch: Callable[[], tuple[str, float]]) -> str:
        with self._lock:
            if self._token is not None and self._clock() < self._expires - TOKEN_MARGIN_SECONDS:
                return self._token
            token, lifetime = fetch()
            self._token, self._expires = token, self._clock() + lifetime
            self.fetched += 1
            return token

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None


@dataclass
class HaloLimits:
    """What one Halo connection shares across its clients in a process."""

    limiter: SlidingWindowLimiter
    tokens: TokenCache

    @classmethod
    def create(cls, requests_per_5_minutes: int, *, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> HaloLimits:
        return cls(SlidingWindowLimiter(requests_per_5_minutes, clock=clock, sleep=sleep), TokenCache(clock))


_REGISTRY: dict[tuple[str, str, str], HaloLimits] = {}
_REGISTRY_LOCK = threading.Lock()


def shared_limits(base_url: str, tenant: str | None, client_id: str, requests_per_5_minutes: int,
                  table: LimitsTable | None = None) -> HaloLimits:
    """The limits of one connection in this process; with ``table``, its request window is the one
    every instance shares."""
    key = (base_url.rstrip("/").lower(), (tenant or "").lower(), client_id)
    with _REGISTRY_LOCK:
        found = _REGISTRY.get(key)
        if found is None:
            found = _REGISTRY[key] = HaloLimits.create(requests_per_5_minutes)
        found.limiter.limit = requests_per_5_minutes  # a changed configuration applies from now on
        if table is not None and (found.limiter.shared is None or found.limiter.shared.table != table.identity):
            found.limiter.shared = table.window(row_key("halopsa", *key), requests_per_5_minutes, WINDOW_SECONDS)
        return found


def reset_shared_limits() -> None:
    with _REGISTRY_LOCK:
        _REGISTRY.clear()


# --------------------------------------------------------------------------- helpers


def _halo_id(value: str, what: str) -> int:
    return numeric_id(value, f"a Halo {what} id", signed=True)


def halo_time(value: date) -> str:
    return f"{value.isoformat()}T00:00:00"


def halo_day(value: Any) -> date | None:
    """A Halo datetime as a date. Halo writes local midnight, sometimes converted to UTC
    (``2024-04-30T23:00:00`` for 1 May in London): the nearest midnight is the date meant."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = iso_moment(value)
    except ValueError:
        return None
    if not isinstance(moment, datetime):
        return moment
    if moment.year < 1901:  # Halo's empty date, 1899-12-30
        return None
    day = moment.date()
    return day + timedelta(days=1) if moment.hour >= 12 else day


def cycle_of_span(start: date, end: date) -> str | None:
    """The billing cycle whose period runs from ``start`` to ``end`` (both included)."""
    days = (end - start).days + 1
    if days == 7:
        return "weekly"
    if days == 14:
        return "bi-weekly"
    for months, name in _SPANS.items():
        if add_months(start, months) - timedelta(days=1) == end:
            return name
    return None


class _Fields(RecordFields):
    """Typed reads of one Halo record. Halo writes flags as true/false or 1/0, leaves empty text
    out, and writes datetimes its own way (see ``halo_day``)."""

    numeric_flags = True

    def text(self, key: str, source: Mapping[str, Any] | None = None, label: str | None = None,
             optional: bool = True) -> str:
        """Text, ``""`` when the field is absent or null."""
        return super().text(key, source, label, optional) or ""

    def day(self, key: str) -> date | None:
        value = self.raw.get(key)
        if value is None or value == "":
            return None
        parsed = halo_day(value)
        if parsed is None and not (isinstance(value, str) and value.startswith(("1899", "1900"))):
            raise self.fail(key, f"expected a datetime, got {value!r}")
        return parsed

    def records(self, key: str) -> list[Any]:
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {type(value).__name__}")
        return value


@dataclass(frozen=True)
class _PeriodInvoice:
    """What Halo says the current period of a recurring invoice was invoiced at, line by line.

    ``quantities``: recurring line id -> the quantity the invoice Halo created for the period
    bills it at. ``unreadable``: recurring line id -> the impossible value its invoice line holds
    (only that line is left alone). ``missing``: why nothing can be known although the period is
    invoiced (Halo lists no invoice created for it); every line of the recurring invoice is then
    reported instead of being written on a guess."""

    quantities: Mapping[Any, Decimal]
    unreadable: Mapping[Any, str]
    missing: str | None = None

    def invoiced(self, line_id: Any) -> Decimal | None:
        return self.quantities.get(line_id)


NOT_INVOICED = _PeriodInvoice({}, {})


# --------------------------------------------------------------------------- the client


class HaloClient:
    """HaloPSA over its REST API, implementing ``PsaPort``. Thread-safe.

    ``base_url`` is the Halo web address (``https://yourmsp.halopsa.com``): the API is at
    ``/api`` and the token endpoint at ``/auth/token``. ``tenant`` is the hosted tenant name when
    Halo needs it. Pass ``http`` to share a ``RetryingHttp`` (or control its sleeping in tests),
    ``limits`` for limits other than this connection's process-wide ones, ``today`` for the date
    lines are judged on.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        tenant: str | None,
        client_id: str,
        client_secret: str,
        lines: LinesMode,
        requests_per_5_minutes: int,
        *,
        verify: bool | str = True,
        http: RetryingHttp | None = None,
        limits: HaloLimits | None = None,
        today: Callable[[], date] | None = None,
        page_size: int = PAGE_SIZE,
        limits_table: LimitsTable | None = None,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError(f"Halo URL must be https://yourmsp.halopsa.com, got {base_url!r}")
        for label, value in (("client id", client_id), ("client secret", client_secret)):
            if not value or not value.strip():
                raise ValueError(f"Halo {label} is empty")
        if lines not in ("recurring-invoice", "contract"):
            raise ValueError(f"lines must be recurring-invoice or contract, got {lines!r}")
        if not 1 <= requests_per_5_minutes <= HOSTED_LIMIT:
            raise ValueError(f"requests_per_5_minutes must be 1..{HOSTED_LIMIT}, got {requests_per_5_minutes}")
        self._name = name
        self.base_url = base_url.strip().rstrip("/")
        self.tenant = tenant.strip() if tenant and tenant.strip() else None
        self._client_id = client_id.strip()
        self._secret = client_secret
        self.lines_mode: LinesMode = lines
        self.page_size = page_size
        self.http = http or RetryingHttp("HaloPSA", verify=verify, policy=RETRY_POLICY)
        self.limits = limits or shared_limits(self.base_url, self.tenant, self._client_id, requests_per_5_minutes,
                                              limits_table)
        self._today = today or (lambda: datetime.now(UTC).date())
        self._psa = "HaloPSA" if name.lower() in ("", "halopsa", "halo") else f"HaloPSA ({name})"

    # ------------------------------------------------------------------ PsaPort
    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> PsaCapabilities:
        """Halo prorates a line's quantity change itself through pro-rata entries; SeatSync's tag is
        the line's internal reference."""
        return PsaCapabilities(kind="halopsa", prorate="native", description_limit=DESCRIPTION_MAX, tag_limit=TAG_MAX,
                               contact_fields=frozenset(USER_WRITES))

    @property
    def calls(self) -> int:
        return self.http.calls

    def list_companies(self) -> list[PsaCompany]:
        companies = []
        for row in self._get_all("/Client", "clients", "clients", {"includeinactive": "true"}):
            f = _Fields.of(row, self._psa, "client")
            name = f.text("name")
            inactive = f.flag("inactive")
            companies.append(PsaCompany(psa=self._name, company_id=str(f.ident()), identifier=f.text("ref") or name,
                                        name=name, website=f.text("website") or None,
                                        status="Inactive" if inactive else "Active"))
        return companies

    def list_contacts(self, company_id: str | None = None) -> list[PsaContact]:
        params = {"includeinactive": "true"}
        record = "users"
        if company_id is not None:
            params["client_id"] = str(_halo_id(company_id, "client"))
            record = f"users of client {company_id}"
        contacts = [self._contact(row) for row in self._get_all("/Users", "users", record, params)]
        return contacts

    def _contact(self, row: Any) -> PsaContact:
        f = _Fields.of(row, self._psa, "user")
        emails = tuple(e for e in (f.text("emailaddress"), f.text("email2"), f.text("email3")) if e)
        return PsaContact(psa=self._name, contact_id=str(f.ident()), company_id=str(f.ident("client_id")),
                          first_name=f.text("firstname"), last_name=f.text("surname"), emails=emails,
                          inactive=f.flag("inactive"), title=f.text("title") or None,
                          phone=f.text("phonenumber") or None, mobile=f.text("mobilenumber") or None)

    def _user_fields(self, details: ContactDetails, record: str) -> dict[str, Any]:
        body: dict[str, Any] = {}
        problems: list[str] = []
        for name, value in details.given().items():
            problems += too_long(USER_WRITES[name], value, USER_TEXT_MAX, "Halo allows")
            body[USER_WRITES[name]] = value
        if problems:
            raise PsaError(self._psa, "; ".join(problems), record)
        return body

    def _site_of(self, client: int, record: str) -> int:
        """The site a new contact of the client belongs to: its first active site (by id)."""
        sites = self._get_all("/Site", "sites", f"sites of client {client}", {"client_id": str(client)})
        active = sorted(f.ident() for f in (_Fields.of(row, self._psa, "site") for row in sites)
                        if not f.flag("inactive") and f.optional_integer("client_id") in (None, client))
        if not active:
            raise PsaError(self._psa, f"client {client} has no active site to add a user to; add one in Halo", record)
        return active[0]

    def _post_user(self, body: dict[str, Any], record: str, *, creating: bool) -> PsaContact:
        saved = self._call("POST", "/Users", record=record, json=[body], creating=creating)
        if isinstance(saved, list):
            saved = saved[0] if len(saved) == 1 else None
        if not isinstance(saved, Mapping):
            raise PsaError(self._psa, f"Halo answered the user write without the user: {str(saved)[:200]!r}", record)
        return self._contact(saved)

    def create_contact(self, company_id: str, details: ContactDetails) -> PsaContact:
        """A new active user (client contact) at the client's first active site: ``POST /api/Users``
        with one user and no id."""
        client = _halo_id(company_id, "client")
        record = f"client {client} new user {details.email or ''}".strip()
        body = self._user_fields(details, record)
        name = f"{details.first_name or ''} {details.last_name or ''}".strip()
        if not name:
            raise PsaError(self._psa, "a Halo user needs a name: give the user a given name or surname in Microsoft "
                           "Entra", record)
        body.update({"name": name, "site_id": self._site_of(client, record), "client_id": client, "inactive": False})
        return self._post_user(body, record, creating=True)

    def update_contact(self, contact: PsaContact, details: ContactDetails, *,
                       active: bool | None = None) -> PsaContact:
        """``POST /api/Users`` with the user's id, the fields given (the display name follows a
        changed first name or surname) and ``inactive``; nothing is sent when nothing changes."""
        if contact.psa != self._name:
            raise ValueError(f"contact {contact.contact_id} belongs to PSA connection {contact.psa!r}, not "
                             f"{self._name!r}")
        ident = _halo_id(contact.contact_id, "user")
        record = f"user {ident}"
        body = self._user_fields(details, record)
        if details.first_name is not None or details.last_name is not None:
            body["name"] = (f"{details.first_name or contact.first_name} "
                            f"{details.last_name or contact.last_name}").strip()
        if active is not None:
            body["inactive"] = not active
        if not body:
            return contact
        body["id"] = ident
        return self._post_user(body, record, creating=False)

    # ------------------------------------------------------------------ tickets (TicketPort)
    def _closed_status(self, spec: TicketSpec) -> int:
        return CLOSED_STATUS if spec.closed_status is None else _halo_id(spec.closed_status, "status")

    def _ticket(self, row: Any, spec: TicketSpec) -> PsaTicket:
        f = _Fields.of(row, self._psa, "ticket")
        status = f.ident("status_id")
        return PsaTicket(psa=self._name, ticket_id=str(f.ident()), company_id=str(f.ident("client_id")),
                         summary=f.text("summary") or "", status=str(status),
                         closed=status == self._closed_status(spec))

    def _saved_ticket(self, saved: Any, spec: TicketSpec, record: str) -> PsaTicket:
        if isinstance(saved, list):
            saved = saved[0] if len(saved) == 1 else None
        if not isinstance(saved, Mapping):
            raise PsaError(self._psa, f"Halo answered the ticket write without the ticket: {str(saved)[:200]!r}",
                           record)
        return self._ticket(saved, spec)

    def find_ticket(self, spec: TicketSpec, marker: str, *, closed: bool = False) -> PsaTicket | None:
        """``GET /api/Tickets`` of the ticket type (open only, unless ``closed``), searched for the
        marker."""
        kind = _halo_id(spec.queue, "ticket type")
        params = {"tickettype_id": str(kind), "search": marker.strip("[]")}
        if not closed:
            params["open_only"] = "true"
        rows = self._get_all("/Tickets", "tickets", "tickets", params)
        found = [t for t in (self._ticket(row, spec) for row in rows) if t.summary.endswith(marker)]
        if closed:
            return max(found, key=lambda t: int(t.ticket_id), default=None)
        return min((t for t in found if not t.closed), key=lambda t: int(t.ticket_id), default=None)

    def get_ticket(self, spec: TicketSpec, ticket_id: str) -> PsaTicket | None:
        ident = _halo_id(ticket_id, "ticket")
        try:
            row = self._call("GET", f"/Tickets/{ident}", record=f"ticket {ident}")
        except PsaError as exc:
            if exc.status == 404:
                return None
            raise
        return self._ticket(row, spec)

    def open_ticket(self, spec: TicketSpec, company_id: str, summary: str, details: str, marker: str) -> PsaTicket:
        """``POST /api/Tickets`` with one ticket and no id: summary, details, client, ticket type."""
        client = _halo_id(company_id, "client")
        room = TICKET_SUMMARY_MAX - len(marker) - 1
        text = summary if len(summary) <= room else summary[: room - 3].rstrip() + "..."
        body: dict[str, Any] = {"summary": f"{text} {marker}", "details": details, "client_id": client,
                                "tickettype_id": _halo_id(spec.queue, "ticket type")}
        if spec.priority is not None:
            body["priority_id"] = _halo_id(spec.priority, "priority")
        record = f"client {client} new ticket {marker}"
        saved = self._call("POST", "/Tickets", record=record, json=[body], creating=True)
        return self._saved_ticket(saved, spec, record)

    def note_ticket(self, spec: TicketSpec, ticket: PsaTicket, text: str) -> None:
        """``POST /api/Actions``: a private note, hidden from the end user."""
        ident = _halo_id(ticket.ticket_id, "ticket")
        self._call("POST", "/Actions", record=f"ticket {ident} action",
                   json=[{"ticket_id": ident, "note": text, "outcome": "Private Note", "hiddenfromuser": True}])

    def close_ticket(self, spec: TicketSpec, ticket: PsaTicket, text: str) -> PsaTicket:
        """A note, then ``POST /api/Tickets`` with the ticket's id and the closed status."""
        ident = _halo_id(ticket.ticket_id, "ticket")
        self.note_ticket(spec, ticket, text)
        record = f"ticket {ident}"
        saved = self._call("POST", "/Tickets", record=record,
                           json=[{"id": ident, "status_id": self._closed_status(spec)}])
        closed = self._saved_ticket(saved, spec, record)
        if not closed.closed:
            raise PsaError(self._psa, f"ticket {ident} reads status {closed.status} after it was closed", record)
        return closed

    def list_products(self, include_inactive: bool = False) -> list[Product]:
        params = {"includeinactive": "true"} if include_inactive else {}
        return [self._product(row) for row in self._get_all("/Item", "items", "items", params)]

    def get_products(self, product_ids: Iterable[str]) -> list[Product]:
        """The items that exist among the ids: one read each (Halo has no filter by ids)."""
        found = []
        for product_id in dict.fromkeys(product_ids):
            try:
                found.append(self.get_product(product_id))
            except PsaError as exc:
                if exc.status != 404:
                    raise
        return found

    def get_product(self, product_id: str) -> Product:
        ident = _halo_id(product_id, "item")
        return self._product(self._call("GET", f"/Item/{ident}", record=f"item {ident}"))

    def list_agreement_types(self) -> list[AgreementType]:
        """Recurring invoices have no types: one type, ``Recurring invoice``. Contracts have
        Halo's contract types (those in use)."""
        if self.lines_mode == "recurring-invoice":
            return [AgreementType(psa=self._name, type_id=RECURRING_INVOICE_TYPE, name="Recurring invoice",
                                  prorate=True)]
        types: dict[int, str] = {}
        for row in self._get_all("/ClientContract", "contracts", "contracts", {"includeinactive": "true"}):
            f = _Fields.of(row, self._psa, "contract")
            if row.get("contracttype") is not None:
                types.setdefault(f.ident("contracttype"), f.text("contracttype_name"))
        return [AgreementType(psa=self._name, type_id=str(t), name=n, prorate=True) for t, n in sorted(types.items())]

    def get_agreement(self, agreement_id: str) -> Agreement:
        return self._get_agreement(agreement_id, {})

    def get_agreements(self, agreement_ids: Iterable[str]) -> list[Agreement]:
        """The agreements that exist among ``agreement_ids`` (missing ones are absent): one read
        each (Halo has no filter by ids), plus one per client for contracts' billing cycles."""
        found = []
        invoices: dict[int, list[Any]] = {}
        for agreement_id in dict.fromkeys(agreement_ids):
            try:
                found.append(self._get_agreement(agreement_id, invoices))
            except PsaError as exc:
                if exc.status != 404:
                    raise
        return found

    def _get_agreement(self, agreement_id: str, invoices: dict[int, list[Any]]) -> Agreement:
        if self.lines_mode == "recurring-invoice":
            ident = _halo_id(agreement_id, "recurring invoice")
            return self._invoice_agreement(self._call("GET", f"/RecurringInvoice/{ident}",
                                                      record=f"recurring invoice {ident}"))
        ident = _halo_id(agreement_id, "contract")
        contract = self._call("GET", f"/ClientContract/{ident}", record=f"contract {ident}")
        client = _Fields(contract, self._psa, f"contract {ident}").ident("client_id")
        if client not in invoices:
            invoices[client] = self._invoices_of(client, lines=False)
        return self._contract_agreement(contract, invoices[client])

    def list_agreements(self, company_id: str) -> list[Agreement]:
        client = _halo_id(company_id, "client")
        invoices = self._invoices_of(client, lines=False)
        if self.lines_mode == "recurring-invoice":
            return [self._invoice_agreement(row) for row in invoices]
        contracts = self._get_all("/ClientContract", "contracts", f"contracts of client {client}",
                                  {"client_id": str(client), "includeinactive": "true"})
        return [self._contract_agreement(row, invoices) for row in contracts]

    def list_lines(self, agreement_ids: Iterable[str], *, known: Iterable[Agreement] = ()) -> list[BilledLine]:
        """The lines of the agreements, agreement by agreement in the order given, each by line
        id. One read per recurring invoice (or, for contracts, per contract and client), and one
        more of the invoice Halo created for the current period when it is invoiced (what each
        line was invoiced at: ``BilledLine.period_quantity``)."""
        ids = list(dict.fromkeys(_halo_id(a, "agreement") for a in agreement_ids))
        result = []
        client_invoices: dict[int, list[Any]] = {}
        for ident in ids:
            for agreement, invoice in self._invoices_for(ident, client_invoices):
                invoice_id = _Fields(invoice, self._psa, "recurring invoice").ident()
                rows = _Fields(invoice, self._psa, f"recurring invoice {invoice_id}").records("lines")
                period = self._invoiced_quantities(invoice_id, invoice) if rows else NOT_INVOICED
                result += [self._line(row, agreement, invoice, period)
                           for row in sorted(rows, key=lambda r: r.get("id", 0))]
        return result

    def get_line(self, agreement_id: str, line_id: str) -> BilledLine:
        ident = _halo_id(line_id, "line")
        for line in self.list_lines([agreement_id]):
            if line.line_id == str(ident):
                return line
        raise PsaError(self._psa, f"line {ident} was not found on agreement {agreement_id}",
                       f"agreement {agreement_id} line {ident}", 404)

    def set_quantity(self, line: BilledLine, quantity: int, effective_date: date) -> BilledLine:
        """Bring a line to ``quantity`` from ``effective_date``: inside the period already invoiced
        (before the invoice's next creation date) with a pro-rata entry for the difference between
        ``quantity`` and what the period is charged for (the quantity it was invoiced at plus the
        pending pro-rata entries), which Halo prorates and later adds to the line; from the next
        period on by changing ``qty_order`` so that the line bills ``quantity`` once the pending
        entries are added. Nothing is written when the line already bills ``quantity``."""
        whole_quantity(quantity)
        invoice_id, invoice, raw = self._line_on_invoice(line)
        record = f"recurring invoice {invoice_id} line {line.line_id}"
        next_start = self._next_start(invoice, invoice_id)
        fields = _Fields(raw, self._psa, record)
        current = self._billed_quantity(fields)
        if effective_date < next_start:  # what the invoiced period is charged for
            period = self._invoiced_quantities(invoice_id, invoice)
            if period.missing is not None:
                raise PsaError(self._psa, f"{period.missing}; nothing written on a guess", record)
            if raw.get("id") in period.unreadable:
                fields.problems.append(period.unreadable[raw.get("id")])
            charged = self._charged_quantity(fields, period.invoiced(raw.get("id")))
            current = current if charged is None else charged
        if fields.problems:
            raise PsaError(self._psa, f"the line holds what SeatSync cannot take ({fields.unreadable}); nothing "
                           "written", record)
        change = Decimal(quantity) - current
        if change == 0:
            return self._line(raw, line.agreement_id, invoice)
        lines = [copy.deepcopy(row) for row in _Fields(invoice, self._psa, record).records("lines")]
        target = next(row for row in lines if row.get("id") == raw.get("id"))
        shown = f"{change.normalize():+f}"
        if effective_date < next_start:
            entries = target.get("prorata_data") or []
            target["prorata_data"] = [*entries, {"date": halo_time(effective_date), "quantity": float(change)}]
            action = f"pro-rata of {shown} from {effective_date}"
        else:
            ordered = Decimal(str(target.get("qty_order") or 0)) + change
            if ordered < 0:
                # Halo refuses a negative quantity: the seats its pending pro-rata entries add at the
                # next invoice cannot be taken off the next period before it; say what to do
                raise PsaError(self._psa, (
                    f"the line bills {current.normalize():f} from the invoice of {next_start}, "
                    f"{(current - ordered + change).normalize():f} of them from pro-rata entries Halo has not "
                    f"invoiced yet, and its quantity (qty_order) cannot go below 0: it cannot bill {quantity} "
                    f"before that invoice adds them; once it is created, SeatSync lowers the line (a mapping "
                    f"with allowNegativeProrate credits that period's extra seats) or lower it by hand"), record)
            target["qty_order"] = float(ordered)
            action = f"quantity {shown} from the invoice of {next_start}"
        saved = self._post_lines(invoice_id, lines, f"{record} ({action})")
        return self._line(self._find_line(saved, raw.get("id"), record), line.agreement_id, saved)

    def create_line(self, line: NewLine) -> BilledLine:
        """Add a line to a recurring invoice (for ``lines: contract``, the contract's one linked
        recurring invoice). Its units bill from ``effective_date``: inside the period already
        invoiced through a pro-rata entry (the line starts at 0 and Halo adds the units after
        invoicing them), otherwise as the line's quantity."""
        record = f"agreement {line.agreement_id} new line of item {line.product_id}"
        quantity, problems = checked_quantity(line.quantity)
        if not str(line.product_id).strip().isdigit():
            problems.append(f"product id must be a Halo item id, got {line.product_id!r}")
        if line.bill_mode is not BillMode.BILLABLE:
            problems.append(f"bill mode {line.bill_mode.value} is not possible on a Halo recurring invoice line")
        problems += too_long("item_longdescription", line.invoice_description, DESCRIPTION_MAX, "SeatSync writes")
        problems += tag_problems(line.tag, "item_internal_reference", TAG_MAX, "SeatSync writes")
        tax_code = line.billing.tax_code if line.billing else None
        if tax_code is not None and not tax_code.strip().isdigit():
            problems.append(f"tax_code must be a Halo tax rate id, got {tax_code!r}")
        if problems:
            raise PsaError(self._psa, "; ".join(problems), record)
        invoice_id, invoice = self._invoice_for_new_line(line.agreement_id, record)
        lines = [copy.deepcopy(row) for row in _Fields(invoice, self._psa, record).records("lines")]
        before = {row.get("id") for row in lines}
        new: dict[str, Any] = {"_itemid": int(str(line.product_id).strip()), "qty_order": float(quantity),
                               "startdate": halo_time(line.effective_date)}
        if line.effective_date < self._next_start(invoice, invoice_id) and quantity:
            new["qty_order"] = 0.0
            new["prorata_data"] = [{"date": halo_time(line.effective_date), "quantity": float(quantity)}]
        if line.end_date is not None:
            new["enddate"] = halo_time(line.end_date)
        if line.unit_price is not None:
            new["unit_price"] = float(line.unit_price)
        if line.unit_cost is not None:
            new["unit_cost"] = float(line.unit_cost)
        if line.description:
            new["item_shortdescription"] = line.description
        if line.invoice_description:
            new["item_longdescription"] = line.invoice_description
        if line.tag:
            new["item_internal_reference"] = line.tag
        if line.billing is not None and line.billing.tax_code is not None:
            new["tax_code"] = int(line.billing.tax_code)
        if line.billing is not None and line.billing.nominal_code is not None:
            new["nominal_code"] = line.billing.nominal_code
        saved = self._post_lines(invoice_id, [*lines, new], record, creating=True)
        added = [row for row in _Fields(saved, self._psa, record).records("lines") if row.get("id") not in before]
        if len(added) != 1:
            raise PsaError(self._psa, f"Halo answered with {len(added)} new lines instead of 1; read the recurring "
                           f"invoice {invoice_id} before trying again", record)
        return self._line(added[0], line.agreement_id, saved)

    def update_line(self, line: BilledLine, *, invoice_description: str | None = None,
                    unit_price: Decimal | None = None) -> BilledLine:
        if invoice_description is None and unit_price is None:
            return line
        invoice_id, invoice, raw = self._line_on_invoice(line)
        record = f"recurring invoice {invoice_id} line {line.line_id}"
        if problems := too_long("item_longdescription", invoice_description or "", DESCRIPTION_MAX, "SeatSync writes"):
            raise PsaError(self._psa, "; ".join(problems), record)
        lines = [copy.deepcopy(row) for row in _Fields(invoice, self._psa, record).records("lines")]
        target = next(row for row in lines if row.get("id") == raw.get("id"))
        if invoice_description is not None:
            target["item_longdescription"] = invoice_description
        if unit_price is not None:
            target["unit_price"] = float(unit_price)
        saved = self._post_lines(invoice_id, lines, record)
        return self._line(self._find_line(saved, raw.get("id"), record), line.agreement_id, saved)

    # ------------------------------------------------------------------ more of the PSA
    def check_connection(self) -> int:
        """Fetch a token and read one client: proves the URL, tenant, credentials and permissions."""
        data = self._call("GET", "/Client", record="clients", params={"pageinate": "true", "page_size": "1",
                                                                      "page_no": "1"})
        count = data.get("record_count") if isinstance(data, Mapping) else None
        return int(count) if isinstance(count, int) else 0

    # ------------------------------------------------------------------ mapping
    def _product(self, row: Any) -> Product:
        f = _Fields.of(row, self._psa, "item")
        recurring = f.flag("isrecurringitem")
        name = f.text("name")
        return Product(psa=self._name, product_id=str(f.ident()), identifier=name,
                       description=f.text("description") or name,
                       price=f.price("recurringprice" if recurring else "baseprice"),
                       cost=f.price("recurringcost" if recurring else "costprice"),
                       inactive=f.flag("inactive"), customer_description=f.text("description"),
                       billing=_billing(f, "taxcode", "nominalcode"), unreadable=f.unreadable)

    def _cycle(self, f: _Fields) -> str:
        start, end = f.day("period_start_date"), f.day("period_end_date")
        if start is not None and end is not None and end >= start:
            found = cycle_of_span(start, end)
            if found is not None:
                return found
        period = f.raw.get("period")
        if isinstance(period, int) and period in PERIOD_CODES:
            return PERIOD_CODES[period]
        name = f.raw.get("periodname")
        if isinstance(name, str) and billing_cycle_name(name):
            return billing_cycle_name(name) or "none"
        return "none"

    def _invoice_agreement(self, raw: Any) -> Agreement:
        f = _Fields.of(raw, self._psa, "recurring invoice")
        end = f.day("enddate")
        today = self._today()
        return Agreement(psa=self._name, agreement_id=str(f.ident()), company_id=str(f.ident("client_id")),
                         name=f.text("reference") or f.text("invoice_display"), type_name="Recurring invoice",
                         active=not f.flag("disabled") and (end is None or end >= today), prorate=True,
                         billing_cycle=self._cycle(f), start_date=f.day("startdate"), end_date=end,
                         bill_in_advance=True, next_invoice_date=f.day("nextcreationdate"))

    def _contract_agreement(self, raw: Any, invoices: list[Any]) -> Agreement:
        f = _Fields.of(raw, self._psa, "contract")
        ident = f.ident()
        linked = [row for row in invoices if isinstance(row, Mapping) and row.get("contract_id") == ident]
        cycle = self._cycle(_Fields(linked[0], self._psa, f"contract {ident} invoice")) if linked else "none"
        # the earliest of its recurring invoices' next creation dates: a period any of them has
        # not invoiced is not invoiced
        next_dates = [d for row in linked if (d := _Fields(row, self._psa, f"contract {ident} invoice")
                                               .day("nextcreationdate")) is not None]
        end = f.day("end_date")
        today = self._today()
        active = f.flag("active") and not f.flag("expired") and (end is None or end >= today)
        return Agreement(psa=self._name, agreement_id=str(ident), company_id=str(f.ident("client_id")),
                         name=f.text("ref"), type_name=f.text("contracttype_name"), active=active, prorate=True,
                         billing_cycle=cycle, start_date=f.day("start_date"), end_date=end, bill_in_advance=True,
                         next_invoice_date=min(next_dates, default=None))

    def _billed_quantity(self, f: _Fields) -> Decimal:
        """What the line bills from the next period on: ``qty_order`` plus its pending pro-rata. An
        impossible number is recorded in ``f.problems`` (the line is then unreadable) and counts as 0."""
        return (f.quantity("qty_order") or Decimal(0)) + self._pending(f)

    def _pending(self, f: _Fields) -> Decimal:
        pending = Decimal(0)
        for entry in f.records("prorata_data"):
            e = _Fields.of(entry, self._psa, f"{f.record} pro-rata")
            if not e.flag("isinvoiced"):
                pending += e.quantity("quantity", label=f"prorata_data[{entry.get('id')}].quantity") or Decimal(0)
                f.problems += [problem for problem in e.problems if problem not in f.problems]
        return pending

    def _charged_quantity(self, f: _Fields, invoiced: Decimal | None) -> Decimal | None:
        """What the current (invoiced) period is charged for: the quantity it was invoiced at plus
        the pending pro-rata entries; None when the invoiced quantity is not known."""
        return None if invoiced is None else invoiced + self._pending(f)

    def _invoiced_quantities(self, invoice_id: int, invoice: Any) -> _PeriodInvoice:
        """What the current period was invoiced at, read from the latest invoice Halo created from
        the recurring invoice (``GET /api/Invoice?recurringinvoice_id=`` with its lines), its lines
        matched to the recurring invoice's on the item, in line order. Nothing when the current
        period is not invoiced yet (the next creation date is not after today, or the recurring
        invoice starts later). When it is invoiced but Halo lists no invoice for it, ``missing``
        says so: what the period is charged for is then unknown, never taken to be the line's
        quantity. An impossible quantity on an invoice line is ``unreadable`` for its recurring
        line only."""
        record = f"recurring invoice {invoice_id}"
        f = _Fields(invoice, self._psa, record)
        next_start = f.day("nextcreationdate")
        today = self._today()
        starts = f.day("startdate")
        if next_start is None or next_start <= today or (starts is not None and starts > today):
            return NOT_INVOICED
        created = self._get_all("/Invoice", "invoices", f"invoices created from {record}",
                                {"recurringinvoice_id": str(invoice_id), "includelines": "true"})
        if not created:
            name = f.text("reference") or f.text("invoice_display")
            return _PeriodInvoice({}, {}, missing=(
                f"{record}{f' ({name})' if name else ''} has invoiced the current period (next creation date "
                f"{next_start}), but Halo lists no invoice created from it, so what the period is charged for "
                "is unknown"))
        latest = max(created, key=lambda row: (halo_day(row.get("invoice_date")) or date.min,
                                               row.get("id") if isinstance(row.get("id"), int) else 0))
        latest_f = _Fields.of(latest, self._psa, "invoice")
        invoiced: dict[int, list[tuple[Decimal, str | None]]] = {}
        for row in sorted(latest_f.records("lines"), key=lambda r: r.get("id", 0) if isinstance(r, Mapping) else 0):
            line_f = _Fields.of(row, self._psa, f"invoice {latest.get('id')} line")
            quantity = line_f.quantity("qty_order")
            problem = f"{line_f.record}: {line_f.unreadable}" if line_f.problems else None
            invoiced.setdefault(line_f.ident("_itemid"), []).append((quantity or Decimal(0), problem))
        quantities: dict[Any, Decimal] = {}
        unreadable: dict[Any, str] = {}
        lines = f.records("lines")
        for row in sorted(lines, key=lambda r: r.get("id", 0) if isinstance(r, Mapping) else 0):
            queue = invoiced.get(_Fields.of(row, self._psa, f"{record} line").ident("_itemid"))
            if queue:
                quantity, problem = queue.pop(0)
                if problem is None:
                    quantities[row.get("id")] = quantity
                else:
                    unreadable[row.get("id")] = problem
        return _PeriodInvoice(quantities, unreadable)

    def _line(self, raw: Any, agreement_id: str | int, invoice: Any,
              period: _PeriodInvoice = NOT_INVOICED) -> BilledLine:
        invoice_f = _Fields(invoice, self._psa, f"recurring invoice {invoice.get('id')}")
        record = record_label(f"recurring invoice {invoice.get('id')} line", raw)
        f = _Fields(raw, self._psa, record)
        if raw.get("id") in period.unreadable:  # its invoice line: only this line is left alone
            f.problems.append(period.unreadable[raw.get("id")])
        pending = [_Fields(p, self._psa, record) for p in f.records("prorata_data")]
        pending = [p for p in pending if not p.flag("isinvoiced")]
        since = max((d for p in pending if (d := p.day("date")) is not None), default=None)
        cancelled = None
        if f.flag("isinactive"):
            cancelled = f.day("enddate") or self._today()
        reference = f.text("item_internal_reference")
        quantity = self._billed_quantity(f)
        charged = self._charged_quantity(f, period.invoiced(raw.get("id")))
        if f.problems:  # an unreadable line: its quantities read as 0
            quantity, charged = Decimal(0), None
        return BilledLine(
            psa=self._name, line_id=str(f.ident()), agreement_id=str(agreement_id),
            company_id=str(invoice_f.ident("client_id")), product_id=str(f.ident("_itemid")),
            product_identifier=f.text("item_code") or f.text("item_shortdescription"),
            quantity=quantity, period_quantity=None if charged is None or charged == quantity else charged,
            unit_price=f.price("unit_price"),
            unit_cost=f.price("unit_cost"), bill_mode=BillMode.BILLABLE, description=f.text("item_shortdescription"),
            invoice_description=f.text("item_longdescription"), effective_date=since or f.day("startdate"),
            cancelled_date=cancelled, tag=reference.strip() if is_seatsync_tag(reference) else None,
            billing=_billing(f, "tax_code", "nominal_code"), period_unknown=period.missing,
            unreadable=f.unreadable,  # last: after every read of the record
        )

    def _next_start(self, invoice: Any, invoice_id: int) -> date:
        next_start = _Fields(invoice, self._psa, f"recurring invoice {invoice_id}").day("nextcreationdate")
        if next_start is None:
            raise PsaError(self._psa, "the recurring invoice has no next creation date (no schedule?); set its "
                           "schedule in Halo", f"recurring invoice {invoice_id}")
        return next_start

    # ------------------------------------------------------------------ invoices
    def _invoices_of(self, client: int, *, lines: bool) -> list[Any]:
        params = {"client_id": str(client)}
        if lines:
            params["includelines"] = "true"
        return self._get_all("/RecurringInvoice", "invoices", f"recurring invoices of client {client}", params)

    def _invoice(self, ident: int) -> Any:
        return self._call("GET", f"/RecurringInvoice/{ident}", record=f"recurring invoice {ident}")

    def _invoices_for(self, agreement: int, cache: dict[int, list[Any]]) -> list[tuple[int, Any]]:
        """(agreement id, recurring invoice with its lines) for one agreement."""
        if self.lines_mode == "recurring-invoice":
            return [(agreement, self._invoice(agreement))]
        contract = self._call("GET", f"/ClientContract/{agreement}", record=f"contract {agreement}")
        client = _Fields(contract, self._psa, f"contract {agreement}").ident("client_id")
        if client not in cache:
            cache[client] = self._invoices_of(client, lines=True)
        return [(agreement, row) for row in cache[client] if isinstance(row, Mapping) and row.get("contract_id") ==
                agreement]

    def _line_on_invoice(self, line: BilledLine) -> tuple[int, Any, Any]:
        """The line's recurring invoice (read now, with all its lines) and the line in it."""
        if line.psa != self._name:
            raise ValueError(f"line {line.line_id} belongs to PSA connection {line.psa!r}, not {self._name!r}")
        ident = _halo_id(line.line_id, "line")
        agreement = _halo_id(line.agreement_id, "agreement")
        for _, invoice in self._invoices_for(agreement, {}):
            invoice_id = _Fields(invoice, self._psa, "recurring invoice").ident()
            if self.lines_mode == "contract":
                invoice = self._invoice(invoice_id)  # the full record, lines and pro-rata included
            for row in _Fields(invoice, self._psa, f"recurring invoice {invoice_id}").records("lines"):
                if isinstance(row, Mapping) and row.get("id") == ident:
                    return invoice_id, invoice, row
        raise PsaError(self._psa, f"line {ident} was not found on agreement {agreement} (removed in Halo?)",
                       f"agreement {agreement} line {ident}", 404)

    def _invoice_for_new_line(self, agreement_id: str, record: str) -> tuple[int, Any]:
        agreement = _halo_id(agreement_id, "agreement")
        if self.lines_mode == "recurring-invoice":
            return agreement, self._invoice(agreement)
        linked = self._invoices_for(agreement, {})
        if len(linked) != 1:
            raise PsaError(self._psa, f"contract {agreement} has {len(linked)} linked recurring invoices; SeatSync "
                           "adds lines only to a contract with exactly one", record)
        invoice_id = _Fields(linked[0][1], self._psa, record).ident()
        return invoice_id, self._invoice(invoice_id)

    def _find_line(self, invoice: Any, line_id: Any, record: str) -> Any:
        for row in _Fields(invoice, self._psa, record).records("lines"):
            if isinstance(row, Mapping) and row.get("id") == line_id:
                return row
        raise PsaError(self._psa, "the line is missing from Halo's answer to the write", record)

    def _post_lines(self, invoice_id: int, lines: list[Any], record: str, *, creating: bool = False) -> Any:
        body = _jsonable([{"id": invoice_id, "lines": lines}])
        saved = self._call("POST", "/RecurringInvoice", record=record, json=body, creating=creating)
        if isinstance(saved, list):
            saved = next((s for s in saved if isinstance(s, Mapping) and s.get("id") == invoice_id), None)
        if not isinstance(saved, Mapping) or not isinstance(saved.get("lines"), list):
            saved = self._invoice(invoice_id)  # Halo answered without the invoice: read it back
        return saved

    # ------------------------------------------------------------------ HTTP
    def _fetch_token(self) -> tuple[str, float]:
        url = f"{self.base_url}/auth/token"
        params = {"tenant": self.tenant} if self.tenant else None
        form = {"grant_type": "client_credentials", "client_id": self._client_id, "client_secret": self._secret,
                "scope": "all"}
        limiter = self.limits.limiter
        limiter.acquire("token")
        try:
            response = self.http.request("POST", url, params=params, data=form, idempotent=True,
                                         headers={"Accept": "application/json"},
                                         on_retry=lambda: limiter.acquire("token"))
        except requests.RequestException as exc:
            raise PsaError(self._psa, f"no answer from the token endpoint ({type(exc).__name__}: {exc})", "token",
                           None, "POST", url) from exc
        try:
            body = json.loads(response.text) if response.content else {}
        except (ValueError, RecursionError):
            body = {}
        token = body.get("access_token") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            error = body.get("error") if isinstance(body, dict) else None
            described = body.get("error_description") if isinstance(body, dict) else None
            detail = (", ".join(str(x) for x in (error, described) if x) or response.text[:200]
                      or f"HTTP {response.status_code}")
            raise PsaAuthError(
                self._psa, "Halo refused the client credentials. Check the application's client ID and secret "
                "(Configuration > Integrations > HaloPSA API > Applications: authentication method 'Client ID and "
                "Secret (Services)', login type Agent), that its permissions include read and edit of customers, "
                f"items and invoices (or 'all'), and the tenant{f' ({self.tenant})' if self.tenant else ''} "
                f"({detail})", "token", response.status_code, "POST", url)
        lifetime = body.get("expires_in") if isinstance(body, dict) else None
        return token, float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 3600.0

    def _send(self, method: str, path: str, *, record: str, params: Mapping[str, str] | None = None,
              json_body: Any = None, creating: bool = False) -> requests.Response:
        url = f"{self.base_url}/api{path}"
        tokens = self.limits.tokens
        limiter = self.limits.limiter
        for attempt in (1, 2):
            token = tokens.get(self._fetch_token)
            limiter.acquire(record)
            try:
                response = self.http.request(method, url, params=params, json=json_body,
                                             headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                                             on_retry=lambda: limiter.acquire(record))
            except requests.RequestException as exc:
                maybe = _MAYBE_ADDED if creating else ""
                raise PsaError(self._psa, f"no answer from Halo ({type(exc).__name__}: {exc}).{maybe}", record, None,
                               method, url) from exc
            if response.status_code == 401 and attempt == 1:
                tokens.invalidate(token)  # expired or revoked: one new token, one more try
                continue
            return response
        return response

    def _call(self, method: str, path: str, *, record: str, params: Mapping[str, str] | None = None,
              json: Any = None, creating: bool = False) -> Any:
        response = self._send(method, path, record=record, params=params, json_body=json, creating=creating)
        url = response.url or f"{self.base_url}/api{path}"
        if response.status_code >= 400:
            self._raise(response, method, url, record, creating=creating)
        return json_answer(response, self._psa, method, url, record)

    def _raise(self, response: requests.Response, method: str, url: str, record: str, *, creating: bool) -> NoReturn:
        status = response.status_code
        detail = _message(response)
        if status in (401, 403):
            raise PsaAuthError(
                self._psa, "Halo refused the request with a fresh token: check that the API application's "
                "permissions (or the agent it logs in as) allow reading and editing customers, items, contracts "
                f"and invoices ({detail or f'HTTP {status}'})", record, status, method, url)
        raise status_error(self._psa, status, detail, record, method, url,
                           maybe_created=_MAYBE_ADDED if creating else "")

    def _get_all(self, path: str, key: str, record: str, params: Mapping[str, str] | None = None) -> list[Any]:
        """Every record of a list, page by page (``pageinate=true``). A page that repeats records,
        an empty page before ``record_count`` is reached or more records than ``record_count``
        raise ``PsaError``."""
        rows: list[Any] = []
        seen: set[Any] = set()
        page = 1
        while True:
            query = dict(params or {})
            query.update({"pageinate": "true", "page_size": str(self.page_size), "page_no": str(page)})
            data = self._call("GET", path, record=record, params=query)
            f = _Fields(data, self._psa, record)
            count = data.get("record_count")
            if isinstance(count, bool) or not isinstance(count, int):
                raise f.fail("record_count", f"expected a whole number, got {count!r}")
            items = f.records(key)
            if len(items) > self.page_size:
                raise PsaError(self._psa, f"page {page} holds {len(items)} records, more than the page size "
                               f"{self.page_size}", record)
            for item in items:
                ident = item.get("id") if isinstance(item, Mapping) else None
                if ident in seen:
                    raise PsaError(self._psa, f"paging is inconsistent: record {ident} came back twice (page {page}); "
                                   "the list changed while it was read or paging is broken", record)
                seen.add(ident)
            rows.extend(items)
            if len(rows) > count:
                raise PsaError(self._psa, f"more records ({len(rows)}) than record_count ({count})", record)
            if len(rows) == count:
                return rows
            if not items:
                raise PsaError(self._psa, f"paging is broken: page {page} is empty but only {len(rows)} of "
                               f"{count} records were read", record)
            page += 1


def _billing(f: _Fields, tax_code: str, nominal_code: str) -> BillingAttributes:
    """A line's or item's billing attributes: its tax code (the tax rate's id) and nominal code."""
    code = f.optional_integer(tax_code)
    return BillingAttributes(tax_code=str(code) if code is not None else None,
                             nominal_code=f.text(nominal_code) or None)


def _jsonable(value: Any) -> Any:
    """A record read with ``Decimal`` numbers, ready to be sent back as JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def _message(response: requests.Response) -> str:
    """Halo's error text: a JSON string, an object with a message, or plain text."""
    text = response.text or ""
    try:
        body = json.loads(text) if text else None
    except (ValueError, RecursionError):
        return text[:300].strip()
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        for key in ("message", "Message", "error_description", "error", "title"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    return text[:300].strip()
