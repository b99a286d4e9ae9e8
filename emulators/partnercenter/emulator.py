"""A Microsoft Partner Center emulator (direct CSP), with the partner tenant's Entra token endpoint.

It plays both ``login.microsoftonline.com`` for the partner's own tenant (OpenID discovery and the
v2.0 token endpoint: client credentials of an app registered in Partner Center, scope
``https://api.partnercenter.microsoft.com/.default``, errors as AADSTS codes) and
``api.partnercenter.microsoft.com`` (``/v1``):

- ``GET /v1/customers?size=`` (1..500, default 40): seek paging. A page's ``links.next`` gives
  ``/customers?size=N&seekOperation=Next`` and the header ``MS-ContinuationToken`` to send with it;
  a next request without the token (or with one the emulator did not issue) is refused (400).
- ``GET /v1/customers/{id}/subscriptions``: the customer's subscriptions, one answer; 404 for a
  customer that is not the partner's. The Subscription resource allows
  ``rateLimit.subscriptionsPerMinute`` (500) requests a minute; beyond, 429 with ``Retry-After``.
- ``GET /v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems
  &currencycode=&period=current|previous&size=`` (1..2000): one ``cycleCharge`` line per active,
  priced licence subscription for the current month (``unitPrice``, ``effectiveUnitPrice`` after
  the scenario's discount), in the partner's billing currency (another ``currencycode`` gives no
  lines); seek paging as above; missing or wrong parameters are refused (400).

Every ``/v1`` request needs a bearer token the emulator issued and that has not expired (401),
and ``MS-RequestId`` / ``MS-CorrelationId`` headers are echoed. Errors come as
``{"code", "description", "data", "source"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs, unquote

from emulators.base import Request, Response
from emulators.common import PsaEmulator, retry_after
from emulators.graph.identity import aadsts_response, openid_configuration
from emulators.partnercenter import scenario as sc
from shared.domain.periods import add_months

RESOURCE = "https://api.partnercenter.microsoft.com"
CUSTOMER_PAGE_DEFAULT = 40
CUSTOMER_PAGE_MAX = 500
LINE_PAGE_MAX = 2000
CENT = Decimal("0.01")


def _iso(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{value.isoformat()}T00:00:00Z"


class PartnerCenterEmulator(PsaEmulator[sc.Scenario]):
    """Partner Center. ``scenario_section`` is the ``partnercenter:`` mapping of a scenario."""

    service = "partnercenter"
    root = sc.ROOT

    # ------------------------------------------------------------------ state
    def load(self, section: Any) -> None:
        scenario = self.adopt(sc.parse_scenario(section))
        self._apps = {a.client_id: a.client_secret for a in scenario.applications}
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.token_errors: dict[str, int] = {}
        self._key = secrets.token_bytes(16)
        self._window.clear()
        self.customers = {c.id: c for c in scenario.customers}

    def state(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "partnerTenantId": self.scenario.partner_tenant_id,
            "customers": [{"id": c.id, "companyName": c.company_name,
                           "subscriptions": [self._subscription_json(c, s) for s in c.subscriptions]}
                          for c in self.customers.values()],
            "tokensIssued": self.tokens_issued,
            "tokenErrors": dict(self.token_errors),
            "rateLimit": {"subscriptionsPerMinute": self.scenario.subscriptions_per_minute,
                          "refused": self._window.refused},
        }

    def error_response(self, status: int, message: str, code: str = "Error") -> Response:
        codes = {400: 400, 401: 401, 403: 403, 404: 404, 429: 429}
        return Response(status, {"code": codes.get(status, status), "description": message, "data": [],
                                 "source": "PartnerFD"})

    def auth_failure(self, request: Request) -> Response:
        if "/oauth2/" in request.path:
            return aadsts_response(7000215, app_id=self._form_value(request, "client_id") or "")
        return self.error_response(401, "Unauthorized: the access token is missing, invalid or expired")

    # ------------------------------------------------------------------ routes
    def register_routes(self) -> None:
        tenant = r"/(?P<tenant>[^/]+)"
        self.route("GET", tenant + r"/v2\.0/\.well-known/openid-configuration", self._openid)
        self.route("GET", tenant + r"/\.well-known/openid-configuration", self._openid)
        self.route("GET", tenant + r"/discovery/v2\.0/keys", lambda r, m: Response(200, {"keys": []}))
        self.route("POST", tenant + r"/oauth2/v2\.0/token", self._token)
        self.route("GET", r"/v1/customers", self._authorised(self._customers))
        self.route("GET", r"/v1/customers/(?P<customer>[^/]+)/subscriptions", self._authorised(self._subscriptions))
        self.route("GET", r"/v1/invoices/unbilled/lineitems", self._authorised(self._unbilled))

    # ------------------------------------------------------------------ identity
    def _base(self, request: Request) -> str:
        return f"https://{self.host(request)}"

    def _openid(self, request: Request, match: Any) -> Response:
        ref = unquote(match.group("tenant")).lower()
        if ref != self.scenario.partner_tenant_id:
            return aadsts_response(90002, tenant=ref)
        return Response(200, openid_configuration(self._base(request), ref))

    @staticmethod
    def _form_value(request: Request, name: str) -> str | None:
        values = parse_qs(request.body.decode("utf-8", "replace")).get(name)
        return values[0] if values else None

    def _token(self, request: Request, match: Any) -> Response:
        ref = unquote(match.group("tenant")).lower()
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)

        def arg(name: str) -> str | None:
            values = form.get(name)
            return values[0] if values else None

        def refuse(code: int, **values: str) -> Response:
            with self.lock:
                self.token_errors[f"AADSTS{code}"] = self.token_errors.get(f"AADSTS{code}", 0) + 1
            return aadsts_response(code, **values)

        if ref != self.scenario.partner_tenant_id:
            return refuse(90002, tenant=ref)
        if arg("grant_type") != "client_credentials":
            return refuse(70003) if arg("grant_type") else refuse(900144, param="grant_type")
        client_id = (arg("client_id") or "").lower()
        app = {"app_id": client_id, "app_name": "SeatSync", "tenant": ref}
        if client_id not in self._apps:
            return refuse(700016, **app)
        secret = arg("client_secret")
        if secret is None:
            return refuse(7000218, **app)
        if not hmac.compare_digest(secret, self._apps[client_id]):
            return refuse(7000215, **app)
        scope = arg("scope") or ""
        if not scope.endswith("/.default") or " " in scope.strip():
            return refuse(1002012, scope=scope)
        if scope[: -len("/.default")].rstrip("/").lower() != RESOURCE:
            return refuse(500011, resource=scope[: -len("/.default")], tenant_name=ref)
        token = secrets.token_urlsafe(32)
        lifetime = self.scenario.token_lifetime_seconds
        with self.lock:
            self.tokens[token] = self._clock() + lifetime
            self.tokens_issued += 1
        return Response(200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                              "access_token": token}, {"Cache-Control": "no-store, no-cache"})

    def _authorised(self, handler: Any) -> Any:
        def run(request: Request, match: Any) -> Response:
            header = request.header("authorization") or ""
            token = header[7:] if header.lower().startswith("bearer ") else ""
            with self.lock:
                expires = self.tokens.get(token)
            if expires is None or expires <= self._clock():
                return self.error_response(401, "Unauthorized: the access token is missing, invalid or expired")
            response: Response = handler(request, match)
            for name in ("ms-requestid", "ms-correlationid"):
                if request.header(name):
                    response.headers[{"ms-requestid": "MS-RequestId",
                                      "ms-correlationid": "MS-CorrelationId"}[name]] = str(request.header(name))
            return response

        return run

    # ------------------------------------------------------------------ paging
    def _continuation(self, resource: str, offset: int) -> str:
        material = f"{resource}:{offset}".encode()
        signature = hmac.new(self._key, material, hashlib.sha256).hexdigest()[:16]
        return base64.urlsafe_b64encode(json.dumps([resource, offset, signature]).encode()).decode()

    def _offset(self, request: Request, resource: str) -> int | Response:
        if request.arg("seekOperation") is None:
            return 0
        if request.arg("seekOperation") != "Next":
            return self.error_response(400, f"seekOperation must be Next, got {request.arg('seekOperation')!r}")
        token = request.header("ms-continuationtoken")
        if not token:
            return self.error_response(400, "seekOperation=Next needs the MS-ContinuationToken header")
        try:
            name, offset, signature = json.loads(base64.urlsafe_b64decode(token.encode()))
        except (ValueError, TypeError):
            return self.error_response(400, "the continuation token is not valid")
        expected = hmac.new(self._key, f"{name}:{offset}".encode(), hashlib.sha256).hexdigest()[:16]
        if name != resource or not isinstance(offset, int) or not hmac.compare_digest(str(signature), expected):
            return self.error_response(400, "the continuation token is not valid for this collection")
        return offset

    def _size(self, request: Request, default: int, maximum: int) -> int | Response:
        raw = request.arg("size")
        if raw is None:
            return default
        try:
            size = int(raw)
        except ValueError:
            return self.error_response(400, f"size must be a number, got {raw!r}")
        if not 1 <= size <= maximum:
            return self.error_response(400, f"size must be between 1 and {maximum}, got {size}")
        return size

    def _page(self, request: Request, resource: str, items: list[dict[str, Any]], size: int, offset: int,
              uri: str) -> Response:
        chunk = items[offset:offset + size]
        body: dict[str, Any] = {"totalCount": len(chunk), "items": chunk,
                                "links": {"self": {"uri": uri, "method": "GET", "headers": []}},
                                "attributes": {"objectType": "Collection"}}
        following = offset + size
        if following < len(items):
            if self.broken_page(request):
                following = offset  # a pager that hands back the token it was given
            body["links"]["next"] = {"uri": f"{uri}&seekOperation=Next", "method": "GET",
                                     "headers": [{"key": "MS-ContinuationToken",
                                                  "value": self._continuation(resource, following)}]}
        return Response(200, body)

    # ------------------------------------------------------------------ customers
    def _customers(self, request: Request, match: Any) -> Response:
        size = self._size(request, CUSTOMER_PAGE_DEFAULT, CUSTOMER_PAGE_MAX)
        if isinstance(size, Response):
            return size
        offset = self._offset(request, "customers")
        if isinstance(offset, Response):
            return offset
        with self.lock:
            items = [self._customer_json(c) for c in self.customers.values()]
        return self._page(request, "customers", items, size, offset, f"/customers?size={size}")

    def _customer_json(self, customer: sc.CustomerEntry) -> dict[str, Any]:
        return {"id": customer.id, "commerceId": customer.id,
                "companyProfile": {"tenantId": customer.id, "domain": customer.domain,
                                   "companyName": customer.company_name,
                                   "attributes": {"objectType": "CustomerCompanyProfile"}},
                "relationshipToPartner": "reseller", "allowDelegatedAccess": True,
                "attributes": {"objectType": "Customer"}}

    # ------------------------------------------------------------------ subscriptions
    def _subscriptions(self, request: Request, match: Any) -> Response:
        wait = self._window.admit(self.scenario.subscriptions_per_minute, 60)
        if wait is not None:
            response = self.error_response(429, "Too many requests to the Subscription resource; retry later")
            response.headers["Retry-After"] = retry_after(wait)
            return response
        customer_id = unquote(match.group("customer")).lower()
        with self.lock:
            customer = self.customers.get(customer_id)
            if customer is None:
                return self.error_response(404, f"Customer {customer_id} was not found for this partner")
            items = [self._subscription_json(customer, s) for s in customer.subscriptions]
        return Response(200, {"totalCount": len(items), "items": items,
                              "links": {"self": {"uri": f"/customers/{customer_id}/subscriptions", "method": "GET",
                                                 "headers": []}},
                              "attributes": {"objectType": "Collection"}})

    def _subscription_json(self, customer: sc.CustomerEntry, sub: sc.SubscriptionEntry) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": sub.id, "offerId": sub.offer_id, "offerName": sub.offer_name, "friendlyName": sub.offer_name,
            "quantity": sub.quantity, "unitType": "Licenses", "creationDate": _iso(sub.start),
            "effectiveStartDate": _iso(sub.start),
            "commitmentEndDate": _iso(sub.commitment_end) if sub.commitment_end else None,
            "status": sub.status, "autoRenewEnabled": sub.auto_renew, "isTrial": sub.trial,
            "billingType": sub.billing_type, "billingCycle": sub.billing_cycle, "hasPurchasableAddons": False,
            "isMicrosoftProduct": True, "publisherName": "Microsoft Corporation", "actions": ["edit", "cancel"],
            "orderId": f"{sub.id[:8]}order", "attributes": {"objectType": "Subscription"},
            "links": {"self": {"uri": f"/customers/{customer.id}/subscriptions/{sub.id}", "method": "GET",
                               "headers": []}},
        }
        if sub.term:
            body["termDuration"] = sub.term
        if sub.refundable is not None:
            start_of_today = datetime.combine(self.today, day_time(0), UTC)
            open_windows = [w for w in sub.refundable if w.until > start_of_today]
            body["refundableQuantity"] = {
                "totalQuantity": sum(w.quantity for w in open_windows),
                "details": [{"quantity": w.quantity, "allowedUntilDateTime": _iso(w.until)} for w in open_windows],
            }
        return body

    # ------------------------------------------------------------------ reconciliation
    def _unbilled(self, request: Request, match: Any) -> Response:
        wanted = {"provider": "onetime", "invoicelineitemtype": "billinglineitems"}
        for name, value in wanted.items():
            if (request.arg(name) or "").lower() != value:
                return self.error_response(400, f"{name} must be {value}, got {request.arg(name)!r}")
        currency = request.arg("currencycode")
        if not currency:
            return self.error_response(400, "currencycode is required")
        period = (request.arg("period") or "").lower()
        if period not in ("current", "previous"):
            return self.error_response(400, f"period must be current or previous, got {request.arg('period')!r}")
        size = self._size(request, LINE_PAGE_MAX, LINE_PAGE_MAX)
        if isinstance(size, Response):
            return size
        offset = self._offset(request, f"unbilled:{currency.upper()}:{period}")
        if isinstance(offset, Response):
            return offset
        month = self.today.replace(day=1) if period == "current" else add_months(self.today.replace(day=1), -1)
        with self.lock:
            items = [] if currency.upper() != self.scenario.billing_currency else [
                self._line(customer, sub, month) for customer in self.customers.values()
                for sub in customer.subscriptions
                if sub.status == "active" and sub.unit_price is not None and sub.billing_type == "license"]
        uri = (f"/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems"
               f"&currencycode={currency}&period={period}&size={size}")
        return self._page(request, f"unbilled:{currency.upper()}:{period}", items, size, offset, uri)

    def _line(self, customer: sc.CustomerEntry, sub: sc.SubscriptionEntry, month: date) -> dict[str, Any]:
        assert sub.unit_price is not None
        effective = (sub.unit_price * (100 - sub.discount_percent) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        months = {"annual": 12, "triennial": 36}.get(sub.billing_cycle, 1)
        end = add_months(month, months) - timedelta(days=1)
        product, _, rest = sub.offer_id.partition(":")
        sku = rest.split(":")[0] if rest else ""
        return {
            "partnerId": self.scenario.partner_tenant_id, "customerId": customer.id,
            "customerName": customer.company_name, "customerDomainName": customer.domain,
            "invoiceNumber": "", "orderId": f"{sub.id[:8]}order", "orderDate": _iso(sub.start),
            "productId": product, "skuId": sku, "availabilityId": "", "productName": sub.offer_name,
            "skuName": sub.offer_name, "chargeType": "cycleCharge", "unitPrice": float(sub.unit_price),
            "effectiveUnitPrice": float(effective), "unitType": "Licenses", "quantity": sub.quantity,
            "billableQuantity": sub.quantity, "subtotal": float(effective * sub.quantity), "taxTotal": 0,
            "totalForCustomer": float(effective * sub.quantity), "currency": self.scenario.billing_currency,
            "pricingCurrency": sub.currency, "pcToBCExchangeRate": 1,
            "subscriptionId": sub.id, "subscriptionDescription": sub.offer_name,
            "chargeStartDate": _iso(month), "chargeEndDate": _iso(datetime.combine(end, day_time(0), UTC)),
            "termAndBillingCycle": f"{sub.term or 'one-time'} {sub.billing_cycle}",
            "billingFrequency": sub.billing_cycle.capitalize(), "subscriptionStartDate": _iso(sub.start),
            "subscriptionEndDate": _iso(sub.commitment_end) if sub.commitment_end else None,
            "attributes": {"objectType": "OneTimeInvoiceLineItem"},
        }

