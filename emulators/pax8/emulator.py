"""A Pax8 partner API emulator (the distributor of indirect CSP resellers).

- ``POST /oauth/token`` (Pax8's token manager): a JSON body with ``client_id``, ``client_secret``,
  ``audience`` (``https://api.pax8.com`` for the partner endpoints) and ``grant_type:
  client_credentials``; answers ``{"access_token", "expires_in", "token_type": "Bearer"}``, or 401
  ``{"error": "access_denied", "error_description": "Unauthorized"}``. A token for another
  audience is refused by the partner endpoints (403).
- ``GET /v1/companies`` and ``GET /v1/subscriptions`` (filters ``companyId``, ``productId``,
  ``status``, ``billingTerm``): page-number paging, ``page`` from 0 and ``size`` 1..200 (default
  10), answered as ``{"content": [...], "page": {"size", "totalElements", "totalPages",
  "number"}}``; an unknown ``companyId`` is 403 "Invalid companyId" (as Pax8 documents).
- ``GET /v1/subscriptions/{id}`` and ``GET /v1/companies/{id}`` (404 when unknown).

Errors come as ``{"type", "message", "instance", "status", "details": []}``. Pax8 documents 429
without ``Retry-After``: the emulator's limit (``rateLimit.requestsPerMinute``) and its throttle
faults answer 429 with no such header.
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
import threading
from typing import Any
from urllib.parse import unquote

from emulators.base import Request, Response
from emulators.common import PsaEmulator
from emulators.pax8 import scenario as sc

PAGE_DEFAULT = 10
PAGE_MAX = 200
PARTNER_AUDIENCE = "https://api.pax8.com"


class Pax8Emulator(PsaEmulator[sc.Scenario]):
    """Pax8. ``scenario_section`` is the ``pax8:`` mapping of a scenario."""

    service = "pax8"
    root = sc.ROOT
    _current = threading.local()  # the request being answered, for the error's ``instance``

    def load(self, section: Any) -> None:
        scenario = self.adopt(sc.parse_scenario(section))
        self._apps = {a.client_id: a.client_secret for a in scenario.applications}
        self.tokens: dict[str, tuple[float, str]] = {}
        self.tokens_issued = 0
        self.throttled = 0
        self._window.clear()
        self.companies = {c.id: c for c in scenario.companies}
        self.subscriptions = {s.id: s for s in scenario.subscriptions}

    def state(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "companies": [{**self._company_json(c),
                           "subscriptions": [self._subscription_json(s) for s in self.subscriptions.values()
                                             if s.company_id == c.id]} for c in self.companies.values()],
            "tokensIssued": self.tokens_issued,
            "throttled": self.throttled,
        }

    def error_response(self, status: int, message: str, code: str = "Error") -> Response:
        request: Request | None = getattr(self._current, "request", None)
        return Response(status, {"type": code, "message": message, "instance": request.path if request else "",
                                 "status": status, "details": []})

    def auth_failure(self, request: Request) -> Response:
        if request.path == "/oauth/token":
            return Response(401, {"error": "access_denied", "error_description": "Unauthorized"})
        return self.error_response(401, "Unauthorized", "Unauthorized")

    def dispatch(self, request: Request) -> tuple[Response, float]:
        self._current.request = request
        try:
            response, delay = super().dispatch(request)
        finally:
            self._current.request = None
        if response.status == 429:
            response.headers.pop("Retry-After", None)  # Pax8 documents its 429 without Retry-After
            with self.lock:
                self.throttled += 1
        return response, delay

    # ------------------------------------------------------------------ routes
    def register_routes(self) -> None:
        self.route("POST", r"/oauth/token", self._token)
        self.route("GET", r"/v1/companies", self._authorised(self._companies))
        self.route("GET", r"/v1/companies/(?P<id>[^/]+)", self._authorised(self._company))
        self.route("GET", r"/v1/subscriptions", self._authorised(self._subscriptions))
        self.route("GET", r"/v1/subscriptions/(?P<id>[^/]+)", self._authorised(self._subscription))

    def _token(self, request: Request, match: Any) -> Response:
        try:
            body = json.loads(request.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        if not isinstance(body, dict):
            return Response(400, {"error": "invalid_request", "error_description": "a JSON body is required"})
        if body.get("grant_type") != "client_credentials":
            return Response(403, {"error": "unsupported_grant_type",
                                  "error_description": "Unsupported grant type: " + str(body.get("grant_type"))})
        client_id, secret = str(body.get("client_id") or ""), str(body.get("client_secret") or "")
        expected = self._apps.get(client_id)
        if expected is None or not hmac.compare_digest(secret, expected):
            return Response(401, {"error": "access_denied", "error_description": "Unauthorized"})
        audience = body.get("audience")
        if audience not in sc.AUDIENCES:
            return Response(403, {"error": "access_denied",
                                  "error_description": f"Service not enabled within domain: {audience}"})
        token = secrets.token_urlsafe(32)
        lifetime = self.scenario.token_lifetime_seconds
        with self.lock:
            self.tokens[token] = (self._clock() + lifetime, str(audience))
            self.tokens_issued += 1
        return Response(200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"})

    def _authorised(self, handler: Any) -> Any:
        def run(request: Request, match: Any) -> Response:
            header = request.header("authorization") or ""
            token = header[7:] if header.lower().startswith("bearer ") else ""
            with self.lock:
                found = self.tokens.get(token)
            if found is None or found[0] <= self._clock():
                return self.error_response(401, "Unauthorized", "Unauthorized")
            if found[1] != PARTNER_AUDIENCE:
                return self.error_response(403, f"a token for {found[1]} cannot call the partner endpoints",
                                           "Forbidden")
            limit = self.scenario.requests_per_minute
            if limit is not None and self._window.admit(limit, 60) is not None:
                return self.error_response(429, "Too Many Requests", "TooManyRequests")
            result: Response = handler(request, match)
            return result

        return run

    # ------------------------------------------------------------------ paging
    def _paged(self, request: Request, items: list[dict[str, Any]]) -> Response:
        try:
            page = int(request.arg("page", "0") or "0")
            size = int(request.arg("size", str(PAGE_DEFAULT)) or PAGE_DEFAULT)
        except ValueError:
            return self.error_response(400, "page and size must be numbers", "BadRequest")
        if page < 0 or not 1 <= size <= PAGE_MAX:
            return self.error_response(400, f"page must be 0 or more and size between 1 and {PAGE_MAX}", "BadRequest")
        total_pages = math.ceil(len(items) / size)
        number = page + 1 if self.broken_page(request) else page
        return Response(200, {"content": items[page * size:(page + 1) * size],
                              "page": {"size": size, "totalElements": len(items), "totalPages": total_pages,
                                       "number": number}})

    # ------------------------------------------------------------------ companies
    def _company_json(self, company: sc.CompanyEntry) -> dict[str, Any]:
        return {"id": company.id, "name": company.name, "website": company.website, "status": company.status,
                "billOnBehalfOfEnabled": False, "selfServiceAllowed": False, "orderApprovalRequired": False,
                "address": {"street": "", "city": "", "postalCode": "", "country": "US"}}

    def _companies(self, request: Request, match: Any) -> Response:
        with self.lock:
            items = [self._company_json(c) for c in self.companies.values()]
        return self._paged(request, items)

    def _company(self, request: Request, match: Any) -> Response:
        company = self.companies.get(unquote(match.group("id")).lower())
        if company is None:
            return self.error_response(404, "Company not found", "NotFound")
        return Response(200, self._company_json(company))

    # ------------------------------------------------------------------ subscriptions
    def _subscription_json(self, sub: sc.SubscriptionEntry) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": sub.id, "companyId": sub.company_id, "productId": sub.product_id, "productName": sub.product_name,
            "quantity": sub.quantity, "startDate": f"{sub.start.isoformat()}T00:00:00Z",
            "createdDate": f"{sub.start.isoformat()}T00:00:00Z", "billingStart": sub.start.isoformat(),
            "status": sub.status, "billingTerm": sub.billing_term, "currencyCode": sub.currency,
        }
        if sub.vendor_subscription_id:
            body["vendorSubscriptionId"] = sub.vendor_subscription_id
        if sub.price is not None:
            body["price"] = float(sub.price)
        if sub.partner_cost is not None:
            body["partnerCost"] = float(sub.partner_cost)
        if sub.commitment_term:
            body["commitmentTerm"] = {"id": sub.id, "term": sub.commitment_term,
                                      "endDate": f"{sub.commitment_end.isoformat()}T00:00:00Z"
                                      if sub.commitment_end else None}
        return body

    def _subscriptions(self, request: Request, match: Any) -> Response:
        company = request.arg("companyId")
        if company is not None and company.lower() not in self.companies:
            return self.error_response(403, "Invalid companyId", "Forbidden")
        filters = {"companyId": (company or "").lower() or None, "productId": request.arg("productId"),
                   "status": request.arg("status"), "billingTerm": request.arg("billingTerm")}
        with self.lock:
            items = [self._subscription_json(s) for s in self.subscriptions.values()
                     if (filters["companyId"] is None or s.company_id == filters["companyId"])
                     and (filters["productId"] is None or s.product_id == filters["productId"].lower())
                     and (filters["status"] is None or s.status == filters["status"])
                     and (filters["billingTerm"] is None or s.billing_term == filters["billingTerm"])]
        return self._paged(request, items)

    def _subscription(self, request: Request, match: Any) -> Response:
        sub = self.subscriptions.get(unquote(match.group("id")).lower())
        if sub is None:
            return self.error_response(404, "Subscription not found", "NotFound")
        return Response(200, self._subscription_json(sub))
