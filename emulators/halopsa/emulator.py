"""A HaloPSA API emulator.

It answers ``POST /auth/token`` (OAuth2 client credentials, ``?tenant=`` on hosted Halo) and the
``/api`` resources SeatSync reads and writes, with Halo's shapes: lists as ``{"record_count": N,
"<key>": [...]}`` paged by ``pageinate=true&page_size=&page_no=``, records by id, and writes as
``POST /api/RecurringInvoice`` with a JSON array of invoices (an ``id`` updates, the ``lines``
posted replace the invoice's lines: a line with an ``id`` is updated, one without is added, one
left out is removed). Recurring invoices have negative ids, as in Halo.

Pro-rata: a recurring invoice line holds ``prorata_data`` entries (a date, a quantity and a unit
price Halo works out for the rest of the current period unless ``dont_auto_calculate``); Halo
invoices them on the next invoice and then adds their quantity to the line. Negative entries
(credits) need ``allowNegativeProRata``.

Invoiced periods: a recurring invoice's ``nextcreationdate`` is the start of the first period not
invoiced yet (a scenario may set it; by default the period containing today is invoiced). The
invoices Halo created from it are listed by ``GET /api/Invoice?recurringinvoice_id=`` with their
lines (the quantity each line was invoiced at); ``create_invoice`` creates the next one as Halo's
schedule would.

Limits: the hosted 300 requests per rolling 5 minutes (429 beyond it) and bearer tokens that
expire after ``tokenLifetimeSeconds``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs

from emulators.base import BadRequest, Request, Response
from emulators.common import PsaEmulator, parse_day, retry_after
from emulators.halopsa import scenario as sc
from shared.domain.periods import add_months

# User (client contact) fields a client may write; name and text lengths as Halo's user screen has them.
USER_WRITABLE = frozenset({"name", "firstname", "surname", "emailaddress", "email2", "email3", "title", "phonenumber",
                           "mobilenumber", "inactive", "site_id", "client_id", "notes", "other1", "other2", "other3",
                           "other4", "other5", "azureoid"})
USER_TEXT_MAX = 255
LINE_WRITABLE = frozenset({"qty_order", "unit_price", "unit_cost", "item_shortdescription", "item_longdescription",
                           "item_internal_reference", "item_external_reference", "onetimecharge", "isinactive",
                           "tax_code", "nominal_code",
                           "startdate", "enddate", "prorata_data", "sequenceid"})
# What a line read from Halo also holds: sent back with a line (as clients that post back what they
# read do), they are ignored like every field Halo does not let a client write.
LINE_READ_ONLY = frozenset({"id", "ihid", "item_code", "_itemid", "net_amount", "recurring_invoice_id",
                            "contract_id", "onetimechargeinvoiceid"})
CENT = Decimal("0.01")
# A fresh Halo's ticket setup: ticket types, statuses (9 is the system status Closed), priorities.
TICKET_TYPES = {1: "Incident", 3: "Alert", 4: "Change Request"}
TICKET_STATUSES = {1: "New", 2: "In Progress", 9: "Closed"}
CLOSED_STATUS = 9
TICKET_PRIORITIES = {1: "Critical", 2: "High", 3: "Medium", 4: "Low"}
# Ticket fields a client may write; Halo ignores the others (as it does for users).
TICKET_WRITABLE = frozenset({"summary", "details", "client_id", "site_id", "user_id", "tickettype_id", "status_id",
                             "priority_id", "agent_id", "team", "category_1", "impact", "urgency"})
TICKET_SUMMARY_MAX = 255


def halo_time(value: date | None) -> str | None:
    """Halo's datetime format: ``2026-01-01T00:00:00`` (local time, no zone)."""
    return None if value is None else f"{value.isoformat()}T00:00:00"


def period_of(day: date, anchor: date, period: str) -> tuple[date, date]:
    """The billing period of an invoice anchored on ``anchor`` that contains ``day``."""
    _, months, days = sc.PERIODS[period]

    def start(k: int) -> date:
        return anchor + timedelta(days=days * k) if days else add_months(anchor, months * k)

    k = 0
    if day >= anchor:
        if days:
            k = (day - anchor).days // days
        else:
            k = ((day.year - anchor.year) * 12 + day.month - anchor.month) // months
        while start(k) > day:
            k -= 1
        while start(k + 1) <= day:
            k += 1
    return start(k), start(k + 1) - timedelta(days=1)


def _number(value: Decimal | float | int) -> float:
    return float(value)


class Invalid(Exception):
    """A write Halo refuses: answered 400 with the message as a JSON string."""


def refusal(status: int, message: str) -> Response:
    """Halo's answer to a request it refuses: the message as a JSON string (clients such as the
    HaloPSA package parse every error answer as JSON)."""
    return Response(status, json.dumps(message))


class HaloEmulator(PsaEmulator[sc.Scenario]):
    """HaloPSA. ``scenario_section`` is the ``halopsa:`` mapping of a scenario (see
    ``emulators.halopsa.scenario``); ``clock`` is the monotonic clock of the rate limit and of
    token expiry (tests pass a fake one), ``now`` the wall clock of ``today`` when the scenario
    sets none."""

    service = "halopsa"
    root = sc.ROOT

    # ------------------------------------------------------------------ state
    def load(self, section: Any) -> None:
        scenario = self.adopt(sc.parse_scenario(section))
        self._apps = {a.client_id: a.client_secret for a in scenario.applications}
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self._window.clear()
        self.clients = {c.id: self._client(c) for c in scenario.clients}
        # Every client has one site, "Main" (id: the client's id x 10), as a new Halo client does.
        self.sites = {c.id * 10: {"id": c.id * 10, "name": "Main", "client_id": c.id, "client_name": c.name,
                                  "inactive": False, "isinvoicesite": True} for c in scenario.clients}
        self.users = {u.id: self._user(u) for u in scenario.users}
        self._next_user = max(self.users, default=0) + 1
        self.items = {i.id: self._item(i) for i in scenario.items}
        type_ids: dict[str, int] = {}
        for contract in scenario.contracts:
            type_ids.setdefault(contract.type_name, len(type_ids) + 1)
        self.contracts = {c.id: self._contract(c, type_ids[c.type_name]) for c in scenario.contracts}
        self.invoices: dict[int, dict[str, Any]] = {i.id: self._invoice(i) for i in scenario.recurring_invoices}
        self.lines: dict[int, dict[int, dict[str, Any]]] = {i: {} for i in self.invoices}
        for entry in scenario.lines:
            self.lines[entry.invoice_id][entry.id] = self._line_from_entry(entry)
        self._next_line = max((line for lines in self.lines.values() for line in lines), default=0) + 1
        self._next_prorata = 1
        self.tickets: dict[int, dict[str, Any]] = {}
        self.actions: dict[int, dict[str, Any]] = {}
        self.created: dict[int, dict[str, Any]] = {}  # the invoices Halo created from recurring invoices
        # Keys of posted lines that no Halo line has (a typo such as "qty_ordr"): Halo ignores them as
        # it ignores read-only fields, so the write "succeeds" without the change; kept here so that
        # tests can tell a client sent one.
        self.ignored_keys: list[dict[str, Any]] = []
        invoiced = {e.id: e.invoiced_quantity for e in scenario.lines if e.invoiced_quantity is not None}
        for recurring in scenario.recurring_invoices:
            next_creation = recurring.next_creation_date or self._period_after(recurring.id, self.today)
            self.invoices[recurring.id]["_next"] = next_creation
            if next_creation > recurring.start_date:  # at least one period invoiced: its invoice
                start = self._period_before(recurring.id, next_creation)
                self._record_invoice(recurring.id, start, {
                    line_id: invoiced.get(line_id, Decimal(str(line["qty_order"])))
                    for line_id, line in self.lines[recurring.id].items()})

    def state(self) -> dict[str, Any]:
        """What Halo holds now: clients, users, items, contracts and recurring invoices with their
        ``lines`` (each with ``qty_order``, its pending ``prorata_data`` and ``billed_quantity``:
        the quantity once the pending pro-rata entries are invoiced), the ``invoices`` created from
        them, plus token and rate-limit counters."""
        invoices = []
        for invoice_id in sorted(self.invoices, reverse=True):
            record = self._invoice_record(invoice_id, lines=True)
            for line in record["lines"]:
                pending = sum(Decimal(str(p["quantity"])) for p in line["prorata_data"] if not p["isinvoiced"])
                line["billed_quantity"] = _number(Decimal(str(line["qty_order"])) + pending)
            invoices.append(record)
        limit = self.scenario.rate_limit
        return {
            "today": self.today.isoformat(),
            "clients": [self.clients[i] for i in sorted(self.clients)],
            "users": [self.users[i] for i in sorted(self.users)],
            "sites": [self.sites[i] for i in sorted(self.sites)],
            "items": [self.items[i] for i in sorted(self.items)],
            "contracts": [self.contracts[i] for i in sorted(self.contracts)],
            "recurringInvoices": invoices,
            "invoices": [self.created[i] for i in sorted(self.created)],
            "tickets": [dict(self.tickets[i], actions=[a for a in self.actions.values() if a["ticket_id"] == i])
                        for i in sorted(self.tickets)],
            "ignoredKeys": [dict(entry) for entry in self.ignored_keys],
            "tokensIssued": self.tokens_issued,
            "rateLimit": {"requestsInWindow": self._window.counted(), "refused": self.refused,
                          "limit": limit.requests_per_5_minutes if limit else None},
        }

    # ------------------------------------------------------------------ records
    def _client(self, c: sc.ClientEntry) -> dict[str, Any]:
        return {"id": c.id, "name": c.name, "ref": c.ref or "", "inactive": c.inactive, "website": c.website or "",
                "toplevel_id": 1, "toplevel_name": "Clients", "stopped": 0, "is_account": False}

    def _user(self, u: sc.UserEntry) -> dict[str, Any]:
        emails = [*u.emails, "", "", ""]
        return self._user_record(u.id, {
            "name": f"{u.first_name} {u.surname}".strip(), "firstname": u.first_name, "surname": u.surname,
            "emailaddress": emails[0], "email2": emails[1], "email3": emails[2], "site_id": u.client_id * 10,
            "inactive": u.inactive, "title": u.title or "", "phonenumber": u.phone or "",
            "mobilenumber": u.mobile or ""})

    def _user_record(self, ident: int, fields: dict[str, Any]) -> dict[str, Any]:
        site = self.sites[fields["site_id"]]
        record = {key: fields.get(key, "") for key in USER_WRITABLE if key not in ("client_id", "inactive", "site_id")}
        record.update({"id": ident, "site_id": site["id"], "site_name": site["name"], "client_id": site["client_id"],
                       "client_name": site["client_name"], "inactive": bool(fields.get("inactive"))})
        return record

    def _item(self, i: sc.ItemEntry) -> dict[str, Any]:
        return {"id": i.id, "name": i.name, "description": i.description or i.name,
                "baseprice": _number(i.price), "costprice": _number(i.cost), "isrecurringitem": i.recurring,
                "recurringprice": _number(i.price) if i.recurring else 0.0,
                "recurringcost": _number(i.cost) if i.recurring else 0.0,
                "internalreference": i.internal_reference or "", "externalreference": "", "inactive": i.inactive,
                "taxcode": i.tax_code, "nominalcode": i.nominal_code}

    def _contract(self, c: sc.ContractEntry, type_id: int) -> dict[str, Any]:
        expired = c.end_date is not None and c.end_date < self.today
        status = "Expired" if expired else "Active" if c.active else "Inactive"
        return {"id": c.id, "client_id": c.client_id, "client_name": self.clients[c.client_id]["name"], "ref": c.ref,
                "start_date": halo_time(c.start_date), "end_date": halo_time(c.end_date), "contracttype": type_id,
                "contracttype_name": c.type_name, "active": c.active and not expired, "expired": expired,
                "contract_status": status, "billingperiod": 2}

    def _invoice(self, i: sc.InvoiceEntry) -> dict[str, Any]:
        contract = self.contracts.get(i.contract_id) if i.contract_id is not None else None
        return {"id": i.id, "client_id": i.client_id, "client_name": self.clients[i.client_id]["name"],
                "reference": i.reference, "disabled": i.disabled, "is_recurring_invoice": True,
                "_period": i.period, "period": sc.PERIODS[i.period][0], "startdate": halo_time(i.start_date),
                "enddate": halo_time(i.end_date), "contract_id": i.contract_id or 0,
                "contract_ref": contract["ref"] if contract else ""}

    def _line_from_entry(self, e: sc.LineEntry) -> dict[str, Any]:
        item = self.items[e.item_id]
        return self._finish_line(e.id, e.invoice_id, {
            "_itemid": e.item_id, "qty_order": _number(e.quantity),
            "unit_price": _number(e.unit_price) if e.unit_price is not None else self._item_price(item),
            "unit_cost": _number(e.unit_cost) if e.unit_cost is not None else self._item_cost(item),
            "item_shortdescription": e.description or item["name"],
            "item_longdescription": e.long_description if e.long_description is not None else item["description"],
            "item_internal_reference": e.internal_reference or "", "item_external_reference": "",
            "tax_code": e.tax_code if e.tax_code is not None else item["taxcode"],
            "nominal_code": e.nominal_code if e.nominal_code is not None else item["nominalcode"],
            "onetimecharge": e.one_time_charge, "isinactive": e.inactive, "startdate": None, "enddate": None,
            "prorata_data": [], "sequenceid": len(self.lines[e.invoice_id]) + 1,
        })

    @staticmethod
    def _item_price(item: dict[str, Any]) -> float:
        return float(item["recurringprice"] if item["isrecurringitem"] else item["baseprice"])

    @staticmethod
    def _item_cost(item: dict[str, Any]) -> float:
        return float(item["recurringcost"] if item["isrecurringitem"] else item["costprice"])

    def _finish_line(self, ident: int, invoice_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        quantity = Decimal(str(fields["qty_order"]))
        price = Decimal(str(fields["unit_price"]))
        return {
            "id": ident, "ihid": invoice_id, "item_code": "", **{k: v for k, v in fields.items() if k != "_itemid"},
            "_itemid": fields["_itemid"], "net_amount": _number((quantity * price).quantize(CENT, ROUND_HALF_UP)),
            "recurring_invoice_id": -1, "contract_id": -1, "onetimechargeinvoiceid": 0,
        }

    def current_period(self, invoice_id: int) -> tuple[date, date]:
        invoice = self.invoices[invoice_id]
        anchor = parse_day(invoice["startdate"])
        assert anchor is not None
        return period_of(max(self.today, anchor), anchor, invoice["_period"])

    def _period_after(self, invoice_id: int, day: date) -> date:
        """The start of the period after the one containing ``day``."""
        invoice = self.invoices[invoice_id]
        anchor = parse_day(invoice["startdate"])
        assert anchor is not None
        _, end = period_of(max(day, anchor), anchor, invoice["_period"])
        return end + timedelta(days=1)

    def _period_before(self, invoice_id: int, start: date) -> date:
        """The start of the period before the one starting on ``start``."""
        invoice = self.invoices[invoice_id]
        anchor = parse_day(invoice["startdate"])
        assert anchor is not None
        return period_of(start - timedelta(days=1), anchor, invoice["_period"])[0]

    def _record_invoice(self, invoice_id: int, period_start: date, quantities: dict[int, Decimal]) -> dict[str, Any]:
        """Keep the invoice Halo created for the period starting on ``period_start``, its lines at
        ``quantities`` (recurring line id -> quantity)."""
        recurring = self.invoices[invoice_id]
        ident = max(self.created, default=1000) + 1
        lines: list[dict[str, Any]] = []
        for line_id in sorted(quantities):
            line = self.lines[invoice_id][line_id]
            if line["isinactive"]:
                continue
            quantity = quantities[line_id]
            price = Decimal(str(line["unit_price"]))
            lines.append({"id": ident * 100 + len(lines) + 1, "ihid": ident, "_itemid": line["_itemid"],
                          "item_code": line["item_code"], "item_shortdescription": line["item_shortdescription"],
                          "qty_order": _number(quantity), "unit_price": line["unit_price"],
                          "net_amount": _number((quantity * price).quantize(CENT, ROUND_HALF_UP))})
        record = {"id": ident, "client_id": recurring["client_id"], "client_name": recurring["client_name"],
                  "invoice_date": halo_time(period_start), "recurring_invoice_id": invoice_id,
                  "is_recurring_invoice": False, "posted": False, "lines": lines,
                  "total": sum((line["net_amount"] for line in lines), 0.0)}
        self.created[ident] = record
        return record

    def create_invoice(self, invoice_id: int) -> dict[str, Any]:
        """Create the next invoice of a recurring invoice, as Halo's schedule does: its pending
        pro-rata entries are invoiced and their quantities added to their lines, the lines are
        invoiced for the period starting at ``nextcreationdate``, which moves one period on."""
        with self.lock:
            recurring = self.invoices[invoice_id]
            start = recurring["_next"]
            quantities: dict[int, Decimal] = {}
            for line_id, line in list(self.lines[invoice_id].items()):
                entries = [dict(p) for p in line["prorata_data"]]
                added = sum((Decimal(str(p["quantity"])) for p in entries if not p["isinvoiced"]), Decimal(0))
                for entry in entries:
                    entry["isinvoiced"] = True
                quantity = Decimal(str(line["qty_order"])) + added
                fields = {k: v for k, v in line.items() if k in LINE_WRITABLE or k == "_itemid"}
                fields.update(qty_order=_number(quantity), prorata_data=entries)
                self.lines[invoice_id][line_id] = self._finish_line(line_id, invoice_id, fields)
                quantities[line_id] = quantity
            record = self._record_invoice(invoice_id, start, quantities)
            self.invoices[invoice_id] = {**recurring, "_next": self._period_after(invoice_id, start)}
            return record

    def delete_invoices(self, invoice_id: int) -> int:
        """Delete the invoices Halo created from a recurring invoice, as a person can in Halo (its
        ``nextcreationdate`` stays: the periods still count as invoiced). The number deleted."""
        with self.lock:
            doomed = [i for i, record in self.created.items() if record["recurring_invoice_id"] == invoice_id]
            for ident in doomed:
                del self.created[ident]
            return len(doomed)

    def _invoice_record(self, invoice_id: int, *, lines: bool) -> dict[str, Any]:
        invoice = self.invoices[invoice_id]
        anchor = parse_day(invoice["startdate"])
        assert anchor is not None
        next_start, next_end = period_of(invoice["_next"], anchor, invoice["_period"])
        last = self._period_before(invoice_id, next_start) if next_start > anchor else None
        record = {k: v for k, v in invoice.items() if not k.startswith("_")}
        owned = [self.lines[invoice_id][i] for i in sorted(self.lines[invoice_id])]
        total = sum((Decimal(str(line["net_amount"])) for line in owned if not line["isinactive"]), Decimal(0))
        record.update({
            "lastcreated": halo_time(last), "nextcreationdate": halo_time(next_start),
            "nextcreationperiod": f"{next_start:%d/%m/%Y} 0:00 - {next_end:%d/%m/%Y} 0:00",
            "period_start_date": halo_time(next_start), "period_end_date": halo_time(next_end),
            "invoice_display": f"ID {invoice_id} - {invoice['reference']}", "total": _number(total),
        })
        if lines:
            record["lines"] = [{**line, "prorata_data": [dict(p) for p in line["prorata_data"]]} for line in owned]
        return record

    # ------------------------------------------------------------------ errors, auth, limits
    def error_response(self, status: int, message: str, code: str = "Error") -> Response:
        if status == 429:
            limit = self.scenario.rate_limit.requests_per_5_minutes if self.scenario.rate_limit else 300
            return Response(429, f"Too many requests: {limit} requests per rolling 5 minute window",
                            content_type="text/plain")
        if status == 401:
            return self.auth_failure_response()
        return refusal(status, message)

    def auth_failure_response(self) -> Response:
        response = Response(401, None)
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response

    def auth_failure(self, request: Request) -> Response:
        return self.auth_failure_response()

    @property
    def refused(self) -> int:
        """Requests the rate limit refused since the scenario was loaded."""
        return self._window.refused

    def _throttle(self) -> Response | None:
        limit = self.scenario.rate_limit
        if limit is None:
            return None
        wait = self._window.admit(limit.requests_per_5_minutes, 300.0)
        if wait is None:
            return None
        response = self.error_response(429, "")
        if limit.retry_after:
            response.headers["Retry-After"] = retry_after(wait)
        return response

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        expiry = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        return expiry is not None and expiry > self._clock()

    def expire_tokens(self) -> None:
        """Make every issued token expired (tests of the refresh on 401)."""
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    # ------------------------------------------------------------------ routes
    def register_routes(self) -> None:
        self.route("POST", r"/auth/token", self._token)
        routes: list[tuple[str, str, Callable[[Request, Any], Response]]] = [
            ("GET", r"/api/Client", lambda r, m: self._list(r, "clients", self._filter(r, self.clients.values()))),
            ("GET", r"/api/Client/(?P<id>\d+)", lambda r, m: self._one(self.clients, m, "Client")),
            ("GET", r"/api/Users", lambda r, m: self._list(r, "users", self._filter(r, self.users.values()))),
            ("GET", r"/api/Users/(?P<id>\d+)", lambda r, m: self._one(self.users, m, "User")),
            ("POST", r"/api/Users", self._post_users),
            ("GET", r"/api/Site", lambda r, m: self._list(r, "sites", self._filter(r, self.sites.values()))),
            ("GET", r"/api/Site/(?P<id>\d+)", lambda r, m: self._one(self.sites, m, "Site")),
            ("GET", r"/api/Item", lambda r, m: self._list(r, "items", self._filter(r, self.items.values()))),
            ("GET", r"/api/Item/(?P<id>\d+)", lambda r, m: self._one(self.items, m, "Item")),
            ("GET", r"/api/ClientContract",
             lambda r, m: self._list(r, "contracts", self._filter(r, self.contracts.values(), inactive_key="active"))),
            ("GET", r"/api/ClientContract/(?P<id>\d+)", lambda r, m: self._one(self.contracts, m, "Contract")),
            ("GET", r"/api/RecurringInvoice", self._list_invoices),
            ("GET", r"/api/RecurringInvoice/(?P<id>-?\d+)", self._get_invoice),
            ("GET", r"/api/Invoice", self._list_created),
            ("GET", r"/api/Invoice/(?P<id>\d+)", lambda r, m: self._one(self.created, m, "Invoice")),
            ("POST", r"/api/RecurringInvoice", self._post_invoices),
            ("GET", r"/api/Tickets", self._list_tickets),
            ("GET", r"/api/Tickets/(?P<id>\d+)", lambda r, m: self._one(self.tickets, m, "Ticket")),
            ("POST", r"/api/Tickets", self._post_tickets),
            ("GET", r"/api/Actions", self._list_actions),
            ("POST", r"/api/Actions", self._post_actions),
        ]
        for method, pattern, handler in routes:
            self.route(method, pattern, self._api(handler))

    def _api(self, handler: Callable[[Request, Any], Response]) -> Callable[[Request, Any], Response]:
        def wrapped(request: Request, match: Any) -> Response:
            throttled = self._throttle()
            if throttled is not None:
                return throttled
            with self.lock:
                if not self._authorised(request):
                    return self.auth_failure_response()
                try:
                    return handler(request, match)
                except Invalid as exc:
                    return refusal(400, str(exc))

        return wrapped

    def _token(self, request: Request, match: Any) -> Response:
        throttled = self._throttle()
        if throttled is not None:
            return throttled
        try:
            form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8"), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            form = {}
        if form.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type"})
        wanted = self.scenario.tenant
        if wanted is not None and (request.arg("tenant") or "").lower() != wanted.lower():
            return Response(400, {"error": "invalid_request", "error_description": "Unknown or missing tenant"})
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if self._apps.get(client_id) != secret or not secret:
            return Response(401, {"error": "invalid_client",
                                  "error_description": "The client ID or client secret is not valid."})
        if "all" not in (form.get("scope") or "").split():
            return Response(400, {"error": "invalid_scope"})
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = self._clock() + self.scenario.token_lifetime_seconds
            self.tokens_issued += 1
        return Response(200, {"access_token": token, "token_type": "Bearer",
                              "expires_in": self.scenario.token_lifetime_seconds, "scope": "all"})

    # ------------------------------------------------------------------ reads
    def _filter(self, request: Request, records: Any, inactive_key: str = "inactive") -> list[dict[str, Any]]:
        result = list(records)
        client = request.arg("client_id")
        if client is not None and client.strip():
            try:
                wanted = int(client)
            except ValueError:
                raise Invalid(f"client_id {client!r} is not a number") from None
            result = [r for r in result if r.get("client_id", r.get("id")) == wanted]
        if (request.arg("includeinactive") or "").lower() != "true":
            if inactive_key == "active":
                result = [r for r in result if r["active"]]
            else:
                result = [r for r in result if not r.get(inactive_key)]
        return sorted(result, key=lambda r: r["id"])

    def _list(self, request: Request, key: str, records: list[dict[str, Any]]) -> Response:
        """A list: with ``pageinate=true`` the ``page_no``-th page of ``page_size`` records, else the
        first ``count`` records (all of them without ``count``); ``record_count`` counts them all."""
        total = len(records)
        if (request.arg("pageinate") or "").lower() == "true":
            size = self._int_arg(request, "page_size", 50)
            page = self._int_arg(request, "page_no", 1)
            if self.broken_page(request):
                page = 1  # every page answers the first one again
            records = records[(page - 1) * size: page * size]
        elif (request.arg("count") or "").strip():
            records = records[:self._int_arg(request, "count", total)]
        return Response(200, {"record_count": total, key: records})

    @staticmethod
    def _int_arg(request: Request, name: str, default: int) -> int:
        raw = request.arg(name)
        if raw is None or not raw.strip():
            return default
        try:
            value = int(raw)
        except ValueError:
            raise Invalid(f"{name} must be a whole number, got {raw!r}") from None
        if value < 1:
            raise Invalid(f"{name} must be at least 1, got {value}")
        return value

    def _one(self, store: dict[int, dict[str, Any]], match: Any, what: str) -> Response:
        record = store.get(int(match.group("id")))
        if record is None:
            return refusal(404, f"{what} {match.group('id')} not found")
        return Response(200, record)

    def _list_invoices(self, request: Request, match: Any) -> Response:
        records = sorted(self.invoices.values(), key=lambda i: -i["id"])
        client = request.arg("client_id")
        if client:
            try:
                wanted = int(client)
            except ValueError:
                raise Invalid(f"client_id {client!r} is not a number") from None
            records = [i for i in records if i["client_id"] == wanted]
        lines = (request.arg("includelines") or "").lower() == "true"
        return self._list(request, "invoices", [self._invoice_record(i["id"], lines=lines) for i in records])

    def _list_created(self, request: Request, match: Any) -> Response:
        """Invoices Halo created, newest first; ``recurringinvoice_id`` and ``client_id`` filter,
        ``includelines=true`` includes their lines."""
        records = sorted(self.created.values(), key=lambda i: -i["id"])
        records = _filtered_by_numbers(request, records, {"recurringinvoice_id": "recurring_invoice_id",
                                                          "client_id": "client_id"})
        if (request.arg("includelines") or "").lower() != "true":
            records = [{k: v for k, v in i.items() if k != "lines"} for i in records]
        return self._list(request, "invoices", records)

    def _get_invoice(self, request: Request, match: Any) -> Response:
        ident = int(match.group("id"))
        if ident not in self.invoices:
            return refusal(404, f"Recurring invoice {ident} not found")
        return Response(200, self._invoice_record(ident, lines=True))

    # ------------------------------------------------------------------ writes
    def _post_users(self, request: Request, match: Any) -> Response:
        """Create (no ``id``) or update (``id``) users, all or nothing: a user belongs to a site of
        its client (``site_id``, needed on create), has a name, and text fields of Halo's lengths."""
        body = self._array(request, "users")
        staged: list[tuple[int, dict[str, Any]]] = []
        next_user = self._next_user
        for raw in body:
            ident = raw.get("id")
            if ident is None:
                current: dict[str, Any] = {}
                ident, next_user = next_user, next_user + 1
            elif isinstance(ident, bool) or not isinstance(ident, int) or ident not in self.users:
                raise Invalid(f"User {ident!r} not found")
            else:
                current = dict(self.users[ident])
            fields = dict(current)
            for key, value in raw.items():
                if key == "id" or key not in USER_WRITABLE:
                    continue  # Halo ignores fields it does not take
                if key == "inactive":
                    if not isinstance(value, bool):
                        raise Invalid(f"User {ident}: inactive must be true or false")
                elif key in ("site_id", "client_id"):
                    if isinstance(value, bool) or not isinstance(value, int):
                        raise Invalid(f"User {ident}: {key} must be a number")
                elif value is not None and not isinstance(value, str):
                    raise Invalid(f"User {ident}: {key} must be text")
                elif isinstance(value, str) and len(value) > USER_TEXT_MAX:
                    raise Invalid(f"User {ident}: {key} is longer than {USER_TEXT_MAX} characters")
                fields[key] = "" if value is None else value
            site_id = fields.get("site_id")
            site = self.sites.get(site_id) if isinstance(site_id, int) else None
            if site is None:
                raise Invalid(f"User {ident}: site_id {fields.get('site_id')!r} is not a site; a user belongs to a "
                              "site of its client")
            if "client_id" in raw and raw["client_id"] != site["client_id"]:
                raise Invalid(f"User {ident}: site {site['id']} belongs to client {site['client_id']}, not "
                              f"{raw['client_id']}")
            if "name" not in raw and ("firstname" in raw or "surname" in raw):
                fields["name"] = f"{fields.get('firstname', '')} {fields.get('surname', '')}".strip()
            if not str(fields.get("name") or "").strip():
                raise Invalid(f"User {ident}: a user needs a name")
            staged.append((ident, self._user_record(ident, fields)))
        for ident, record in staged:
            self.users[ident] = record
        self._next_user = next_user
        saved = [record for _, record in staged]
        return Response(201, saved[0] if len(saved) == 1 else saved)

    # ------------------------------------------------------------------ tickets and actions
    def _list_tickets(self, request: Request, match: Any) -> Response:
        """Tickets, newest first: ``client_id``, ``tickettype_id``, ``status_id`` filter,
        ``open_only=true`` leaves closed ones out, ``search`` matches the summary (any case)."""
        records = sorted(self.tickets.values(), key=lambda t: -t["id"])
        records = _filtered_by_numbers(request, records, {name: name for name in ("client_id", "tickettype_id",
                                                                                  "status_id")})
        if (request.arg("open_only") or "").lower() == "true":
            records = [t for t in records if t["status_id"] != CLOSED_STATUS]
        search = (request.arg("search") or "").lower()
        if search:
            records = [t for t in records if search in t["summary"].lower()]
        return self._list(request, "tickets", records)

    def _post_tickets(self, request: Request, match: Any) -> Response:
        """Create (no ``id``) or update (``id``) tickets, all or nothing: a summary, a client that
        exists, a ticket type, status and priority of Halo's setup; closing sets ``dateclosed``."""
        body = self._array(request, "tickets")
        staged: list[dict[str, Any]] = []
        next_id = max(self.tickets, default=0) + 1
        for index, raw in enumerate(body):
            ident = raw.get("id")
            if ident is None:
                current: dict[str, Any] = {"tickettype_id": 1, "status_id": 1, "priority_id": 3, "details": "",
                                           "hasbeenclosed": False, "dateclosed": None,
                                           "dateoccurred": halo_time(self.today)}
                ident, next_id = next_id, next_id + 1
            elif isinstance(ident, bool) or not isinstance(ident, int) or ident not in self.tickets:
                raise Invalid(f"Ticket {ident!r} not found")
            else:
                current = dict(self.tickets[ident])
            fields = dict(current)
            fields.update({key: value for key, value in raw.items() if key in TICKET_WRITABLE})
            summary = fields.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                raise Invalid(f"Ticket {index}: a ticket needs a summary")
            if len(summary) > TICKET_SUMMARY_MAX:
                raise Invalid(f"Ticket {index}: summary is longer than {TICKET_SUMMARY_MAX} characters")
            if not isinstance(fields.get("details"), str):
                raise Invalid(f"Ticket {index}: details must be text")
            for key, table in (("client_id", self.clients), ("tickettype_id", TICKET_TYPES),
                               ("status_id", TICKET_STATUSES), ("priority_id", TICKET_PRIORITIES)):
                value = fields.get(key)
                if isinstance(value, bool) or not isinstance(value, int) or value not in table:
                    raise Invalid(f"Ticket {index}: {key} {value!r} does not exist")
            fields["site_id"] = fields.get("site_id") or fields["client_id"] * 10
            site = self.sites.get(fields["site_id"])
            if site is None or site["client_id"] != fields["client_id"]:
                raise Invalid(f"Ticket {index}: site {fields['site_id']!r} is not a site of client "
                              f"{fields['client_id']}")
            closing = fields["status_id"] == CLOSED_STATUS
            fields.update({"id": ident, "client_name": self.clients[fields["client_id"]]["name"],
                           "site_name": site["name"], "tickettype_name": TICKET_TYPES[fields["tickettype_id"]],
                           "status_name": TICKET_STATUSES[fields["status_id"]],
                           "hasbeenclosed": bool(current.get("hasbeenclosed")) or closing,
                           "dateclosed": (current.get("dateclosed") or halo_time(self.today)) if closing else None})
            staged.append(fields)
        for record in staged:
            self.tickets[record["id"]] = record
        return Response(201, staged[0] if len(staged) == 1 else staged)

    def _array(self, request: Request, what: str) -> list[dict[str, Any]]:
        try:
            body = request.json()
        except BadRequest as exc:
            raise Invalid(str(exc)) from exc
        if not isinstance(body, list) or not body:
            raise Invalid(f"The body must be a JSON array of {what}")
        for index, raw in enumerate(body):
            if not isinstance(raw, dict):
                raise Invalid(f"Item {index} of the array is not an object")
        return body

    def _list_actions(self, request: Request, match: Any) -> Response:
        """A ticket's actions (``ticket_id`` is needed, as Halo answers nothing without it)."""
        raw = request.arg("ticket_id")
        if not raw:
            return self._list(request, "actions", [])
        try:
            ticket = int(raw)
        except ValueError:
            raise Invalid(f"ticket_id {raw!r} is not a number") from None
        return self._list(request, "actions", sorted((a for a in self.actions.values() if a["ticket_id"] == ticket),
                                                     key=lambda a: a["id"]))

    def _post_actions(self, request: Request, match: Any) -> Response:
        """Add actions (notes) to tickets: a ticket that exists and a note."""
        body = self._array(request, "actions")
        staged: list[dict[str, Any]] = []
        next_id = max(self.actions, default=0) + 1
        for index, raw in enumerate(body):
            ticket = raw.get("ticket_id")
            if isinstance(ticket, bool) or not isinstance(ticket, int) or ticket not in self.tickets:
                raise Invalid(f"Action {index}: ticket_id {ticket!r} does not exist")
            note = raw.get("note")
            if not isinstance(note, str) or not note.strip():
                raise Invalid(f"Action {index}: an action needs a note")
            if raw.get("id") is not None:
                raise Invalid(f"Action {index}: actions are added, not changed")
            staged.append({"id": next_id, "ticket_id": ticket, "note": note,
                           "outcome": str(raw.get("outcome") or "Note"),
                           "hiddenfromuser": bool(raw.get("hiddenfromuser")), "datetime": halo_time(self.today)})
            next_id += 1
        for action in staged:
            self.actions[action["id"]] = action
        return Response(201, staged[0] if len(staged) == 1 else staged)

    def _post_invoices(self, request: Request, match: Any) -> Response:
        try:
            body = request.json()
        except BadRequest as exc:
            raise Invalid(str(exc)) from exc
        if not isinstance(body, list) or not body:
            raise Invalid("The body must be a JSON array of recurring invoices")
        staged: list[tuple[int, dict[str, Any], dict[int, dict[str, Any]] | None]] = []
        ignored: list[dict[str, Any]] = []
        next_line, next_prorata = self._next_line, self._next_prorata
        for index, raw in enumerate(body):
            if not isinstance(raw, dict):
                raise Invalid(f"Item {index} of the array is not an object")
            ident = raw.get("id")
            if isinstance(ident, bool) or not isinstance(ident, int) or ident not in self.invoices:
                raise Invalid(f"Recurring invoice {ident!r} not found (creating recurring invoices is not emulated)")
            header = dict(self.invoices[ident])
            if "reference" in raw:
                if not isinstance(raw["reference"], str):
                    raise Invalid(f"Recurring invoice {ident}: reference must be text")
                header["reference"] = raw["reference"]
            if "disabled" in raw:
                if not isinstance(raw["disabled"], bool):
                    raise Invalid(f"Recurring invoice {ident}: disabled must be true or false")
                header["disabled"] = raw["disabled"]
            new_lines = None
            if "lines" in raw:
                new_lines, next_line, next_prorata = self._staged_lines(ident, raw["lines"], next_line, next_prorata,
                                                                        ignored)
            staged.append((ident, header, new_lines))
        for ident, header, new_lines in staged:  # all or nothing
            self.invoices[ident] = header
            if new_lines is not None:
                self.lines[ident] = new_lines
        self._next_line, self._next_prorata = next_line, next_prorata
        self.ignored_keys.extend(ignored)
        saved = [self._invoice_record(ident, lines=True) for ident, _, _ in staged]
        return Response(201, saved[0] if len(saved) == 1 else saved)

    def _staged_lines(self, invoice_id: int, raw_lines: Any, next_line: int, next_prorata: int,
                      ignored: list[dict[str, Any]]) -> tuple[dict[int, dict[str, Any]], int, int]:
        """The posted lines as they would be saved. A key Halo does not let a client write is
        ignored, as Halo ignores it (no error); one no Halo line has is noted in ``ignored``."""
        if not isinstance(raw_lines, list):
            raise Invalid(f"Recurring invoice {invoice_id}: lines must be an array")
        current = self.lines[invoice_id]
        result: dict[int, dict[str, Any]] = {}
        for index, raw in enumerate(raw_lines):
            if not isinstance(raw, dict):
                raise Invalid(f"Recurring invoice {invoice_id}: line {index} is not an object")
            ident = raw.get("id")
            if ident not in (None, 0):
                if isinstance(ident, bool) or not isinstance(ident, int) or ident not in current:
                    raise Invalid(f"Recurring invoice {invoice_id}: line {ident!r} was not found on this invoice")
                base = dict(current[ident])
                line_id = ident
            else:
                item_id = raw.get("_itemid")
                item = self.items.get(item_id) if isinstance(item_id, int) and not isinstance(item_id, bool) else None
                if item is None:
                    raise Invalid(f"Recurring invoice {invoice_id}: new line {index} needs the _itemid of an existing "
                                  f"item, got {item_id!r}")
                if item["inactive"]:
                    raise Invalid(f"Recurring invoice {invoice_id}: item {item_id} is inactive")
                base = {"_itemid": item_id, "qty_order": 1.0, "unit_price": self._item_price(item),
                        "unit_cost": self._item_cost(item), "item_shortdescription": item["name"],
                        "item_longdescription": item["description"], "item_internal_reference": "",
                        "tax_code": item["taxcode"], "nominal_code": item["nominalcode"],
                        "item_external_reference": "", "onetimecharge": False, "isinactive": False,
                        "startdate": None, "enddate": None, "prorata_data": [], "sequenceid": len(result) + 1}
                line_id = next_line
                next_line += 1
            fields = {k: v for k, v in base.items() if k in LINE_WRITABLE or k == "_itemid"}
            for key, value in raw.items():
                if key in LINE_WRITABLE:
                    fields[key] = value
                elif key not in LINE_READ_ONLY:
                    ignored.append({"invoice": invoice_id, "line": line_id, "key": key})
            where = f"Recurring invoice {invoice_id} line {line_id}"
            for key in ("qty_order", "unit_price", "unit_cost"):
                value = fields.get(key)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise Invalid(f"{where}: {key} must be a number, got {value!r}")
                fields[key] = float(value)
            if fields["qty_order"] < 0:
                raise Invalid(f"{where}: qty_order cannot be negative")
            for key in ("item_shortdescription", "item_longdescription", "item_internal_reference",
                        "item_external_reference"):
                if fields.get(key) is not None and not isinstance(fields[key], str):
                    raise Invalid(f"{where}: {key} must be text")
            for key in ("onetimecharge", "isinactive"):
                if not isinstance(fields.get(key), bool):
                    raise Invalid(f"{where}: {key} must be true or false")
            tax_code = fields.get("tax_code")
            if isinstance(tax_code, bool) or not isinstance(tax_code, int) or tax_code < 0:
                raise Invalid(f"{where}: tax_code must be the id of a tax rate (a whole number), got {tax_code!r}")
            if not isinstance(fields.get("nominal_code"), str):
                raise Invalid(f"{where}: nominal_code must be text, got {fields.get('nominal_code')!r}")
            fields["prorata_data"], next_prorata = self._staged_prorata(
                invoice_id, line_id, fields, base.get("prorata_data") or [], next_prorata, where)
            result[line_id] = self._finish_line(line_id, invoice_id, fields)
        return result, next_line, next_prorata

    def _staged_prorata(self, invoice_id: int, line_id: int, fields: dict[str, Any], existing: list[dict[str, Any]],
                        next_prorata: int, where: str) -> tuple[list[dict[str, Any]], int]:
        raw_entries = fields.get("prorata_data")
        if raw_entries is None:
            return [dict(p) for p in existing], next_prorata
        if not isinstance(raw_entries, list):
            raise Invalid(f"{where}: prorata_data must be an array")
        known = {p["id"]: p for p in existing}
        start, end = self.current_period(invoice_id)
        result = []
        for index, raw in enumerate(raw_entries):
            if not isinstance(raw, dict):
                raise Invalid(f"{where}: pro-rata entry {index} is not an object")
            ident = raw.get("id")
            if ident not in (None, 0):
                if ident not in known:
                    raise Invalid(f"{where}: pro-rata entry {ident!r} was not found")
                result.append(dict(known[ident]))
                continue
            when = parse_day(raw.get("date"))
            if when is None:
                raise Invalid(f"{where}: a pro-rata entry needs a date, got {raw.get('date')!r}")
            if not start <= when <= end:
                raise Invalid(f"{where}: the pro-rata date {when} is outside the current period ({start} to {end})")
            quantity = raw.get("quantity")
            if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity == 0:
                raise Invalid(f"{where}: a pro-rata entry needs a non-zero quantity, got {quantity!r}")
            if quantity < 0 and not self.scenario.allow_negative_prorata:
                raise Invalid(f"{where}: negative pro-rata is not allowed (Configuration > Billing > Recurring "
                              "Invoices: allow negative pro-rata)")
            manual = raw.get("dont_auto_calculate") is True
            if manual:
                price = raw.get("unitprice")
                if isinstance(price, bool) or not isinstance(price, int | float):
                    raise Invalid(f"{where}: dont_auto_calculate needs a unitprice")
                unit_price = Decimal(str(price))
            else:
                days = (end - when).days + 1
                unit_price = (Decimal(str(fields["unit_price"])) * days / ((end - start).days + 1)).quantize(
                    CENT, ROUND_HALF_UP)
            invoice = self.invoices[invoice_id]
            result.append({
                "id": next_prorata, "invoicedetailid": line_id, "recurring_invoice_id": invoice_id,
                "client_id": invoice["client_id"], "date": halo_time(when), "quantity": float(quantity),
                "unitprice": _number(unit_price), "unitcost": float(fields["unit_cost"]),
                "shortdescription": str(raw.get("shortdescription") or f"Pro-rata: {fields['item_shortdescription']}"),
                "longdescription": str(raw.get("longdescription") or ""), "prorata_next_invoice": True,
                "dont_auto_calculate": manual, "isinvoiced": False,
            })
            next_prorata += 1
        return result, next_prorata


def _filtered_by_numbers(request: Request, records: list[dict[str, Any]], fields: dict[str, str]
                         ) -> list[dict[str, Any]]:
    """``records`` whose field equals each numeric query argument given (argument name -> field);
    an argument that is not a number is refused, as Halo answers 400."""
    for name, key in fields.items():
        raw = request.arg(name)
        if raw:
            try:
                wanted = int(raw)
            except ValueError:
                raise Invalid(f"{name} {raw!r} is not a number") from None
            records = [r for r in records if r[key] == wanted]
    return records
