"""``Pax8Client``: Pax8 (indirect CSP, through the distributor) as a subscription source.

Authentication: OAuth2 client credentials. ``POST {tokenUrl}`` (default
``https://token-manager.pax8.com/oauth/token``) with a JSON body ``client_id``, ``client_secret``,
``audience`` (``https://api.pax8.com`` for the partner endpoints) and ``grant_type:
client_credentials``; the answer's bearer token lives ``expires_in`` seconds (a day). The token is
shared by the source's clients of one process until five minutes before it expires, and fetched
again once when the API answers 401.

Reads (``{url}`` defaults to ``https://api.pax8.com/v1``), page-number paging: ``page`` from 0,
``size`` up to 200; every answer is ``{"content": [...], "page": {"size", "totalElements",
"totalPages", "number"}}``, read until ``totalPages``, and the items counted against
``totalElements``:
- ``GET /companies``: the partner's companies (customers).
- ``GET /subscriptions`` (optionally ``companyId=``): product, quantity, ``billingTerm``
  (Monthly, Annual, 2-Year, 3-Year, One-Time, Trial), ``commitmentTerm`` (``term``, ``endDate``),
  ``startDate``, status, ``price`` (the customer's) and ``partnerCost`` (the partner's, both per
  seat per billing term) in ``currencyCode``, and ``vendorSubscriptionId`` (Microsoft's
  subscription id, which the tenant shows as ``commerceSubscriptionId``).

Errors come as ``{"type", "message", "instance", "status", "details"}``. Pax8 documents 429
without ``Retry-After``: ``RetryingHttp`` backs off exponentially instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import requests

from shared.adapters.http import RetryingHttp
from shared.adapters.source_fields import Fields, json_body, json_or_none
from shared.domain.partner import PartnerSubscription, SourceCustomer, SourceKind
from shared.errors import SourceAuthError, SourceError

PAGE_SIZE = 200
MAX_PAGES = 1000
TOKEN_MARGIN_SECONDS = 300.0
# Statuses of a subscription the partner is billed for (Pending* and WaitingForDetails are not
# provisioned yet; Cancelled is over).
ACTIVE_STATES = frozenset({"active", "activated", "converted", "pendingcancel", "trial"})


class Pax8Token:
    """One source's bearer token, shared by its clients until shortly before it expires."""

    def __init__(self, source: str, token_url: str, client_id: str, client_secret: str, audience: str,
                 http: RetryingHttp, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.token_url = token_url
        self._form = {"client_id": client_id, "client_secret": client_secret, "audience": audience,
                      "grant_type": "client_credentials"}
        self.http = http
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0

    def get(self, refresh: bool = False) -> str:
        with self._lock:
            if not refresh and self._token is not None and self._clock() < self._expires - TOKEN_MARGIN_SECONDS:
                return self._token
            try:
                response = self.http.request("POST", self.token_url, json=self._form, idempotent=True)
            except requests.RequestException as exc:
                raise SourceAuthError(self.source, f"the token endpoint did not answer ({exc})", None, "POST",
                                      self.token_url) from exc
            body = json_or_none(response)
            if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
                error = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
                raise SourceAuthError(
                    self.source, f"Pax8 refused the client credentials ({error or response.reason}) -> what to do: "
                                 "check the client id and secret of the API credential in the Pax8 app "
                                 "(Integrations > API credentials)", response.status_code, "POST", self.token_url)
            lifetime = body.get("expires_in")
            seconds = 3600.0
            if isinstance(lifetime, int | float) and not isinstance(lifetime, bool):
                seconds = float(lifetime)
            self._token, self._expires = str(body["access_token"]), self._clock() + seconds
            return self._token


class Pax8Client:
    """Pax8 for one configured source; thread-safe."""

    kind: SourceKind = "pax8"

    def __init__(self, name: str, base_url: str, token: Pax8Token, *, http: RetryingHttp | None = None,
                 verify: bool | str = True, max_pages: int = MAX_PAGES) -> None:
        self._name = name
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.http = http or RetryingHttp(f"Pax8 {name}", verify=verify)
        self.max_pages = max_pages

    @property
    def name(self) -> str:
        return self._name

    @property
    def calls(self) -> int:
        return self.http.calls

    def _get(self, url: str, params: dict[str, Any], what: str) -> Any:
        refresh = False
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.token.get(refresh)}", "Accept": "application/json"}
            try:
                response = self.http.request("GET", url, headers=headers, params=params)
            except requests.RequestException as exc:
                raise SourceError(self._name, f"{what}: no answer after retries ({type(exc).__name__}: {exc})",
                                  None, "GET", url) from exc
            if response.status_code == 401 and attempt == 1:
                response.close()
                refresh = True
                continue
            if response.status_code != 200:
                payload = json_or_none(response)
                message = payload.get("message") if isinstance(payload, dict) else None
                detail = message or response.text[:200] or response.reason
                error = SourceAuthError if response.status_code in (401, 403) else SourceError
                raise error(self._name, f"{what}: {detail}", response.status_code, "GET", response.url)
            return json_body(self._name, response, what)
        raise AssertionError("unreachable")

    def _pages(self, path: str, what: str, **filters: str) -> Iterator[Fields]:
        """Every item of a page-number paged list, checked against the page info."""
        url = f"{self.base_url}{path}"
        number = 0
        total_pages: int | None = None
        total_elements: int | None = None
        count = 0
        seen: set[str] = set()
        while total_pages is None or number < total_pages:
            if number >= self.max_pages:
                raise SourceError(self._name, f"{what}: more than {self.max_pages} pages; the pager does not end")
            body = Fields(self._name, self._get(url, {"page": number, "size": PAGE_SIZE, **filters}, what), what)
            page = body.child("page")
            if page is None or not isinstance(body.raw.get("content"), list):
                raise SourceError(self._name, f"{what}: page {number} has no 'content' list or 'page' info")
            pages, elements = page.whole("totalPages"), page.whole("totalElements")
            if total_pages is None:
                total_pages, total_elements = pages, elements
            elif (pages, elements) != (total_pages, total_elements):
                raise SourceError(self._name, f"{what}: the list changed while it was read ({total_elements} then "
                                              f"{elements} items); read again on the next run")
            if page.whole("number") != number:
                raise SourceError(self._name, f"{what}: asked for page {number}, got page {page.raw.get('number')}")
            for item in body.items("content"):
                ident = item.text("id").lower()
                if ident in seen:
                    raise SourceError(self._name, f"{what}: item {ident} appeared on two pages")
                seen.add(ident)
                count += 1
                yield item
            number += 1
        if total_elements is not None and count != total_elements:
            raise SourceError(self._name, f"{what}: {count} items read of the {total_elements} announced")

    # ------------------------------------------------------------------ SubscriptionSourcePort
    def list_customers(self) -> list[SourceCustomer]:
        return [SourceCustomer(customer_id=item.text("id").lower(), name=item.text("name"),
                               domain=item.optional_text("website"))
                for item in self._pages("/companies", "companies")]

    def list_subscriptions(self, customer_id: str) -> list[PartnerSubscription]:
        return [self._subscription(item) for item in
                self._pages("/subscriptions", f"subscriptions of company {customer_id}", companyId=customer_id)]

    def list_all_subscriptions(self) -> list[PartnerSubscription] | None:
        return [self._subscription(item) for item in self._pages("/subscriptions", "subscriptions")]

    def subscription_costs(self) -> dict[str, tuple[Decimal, str]]:
        return {}  # Pax8 gives the partner's cost on each subscription

    def _subscription(self, item: Fields) -> PartnerSubscription:
        status = item.text("status")
        billing_term = item.optional_text("billingTerm")
        commitment = item.child("commitmentTerm")
        commitment_end = None
        term = billing_term
        if commitment is not None:
            term = commitment.optional_text("term") or billing_term
            commitment_end = commitment.day("endDate")  # the term's last day, as Partner Center's
        return PartnerSubscription(
            source=self._name, kind=self.kind, subscription_id=item.text("id").lower(),
            customer_id=item.text("companyId").lower(), product_id=item.text("productId").lower(),
            product_name=item.optional_text("productName") or item.text("productId"),
            quantity=item.whole("quantity"), status=status, active=status.lower() in ACTIVE_STATES,
            trial=status.lower() == "trial" or (billing_term or "").lower() == "trial",
            term=term, billing=billing_term, start=item.day("startDate"), commitment_end=commitment_end,
            unit_cost=item.money("partnerCost"), unit_price=item.money("price"),
            currency=(item.optional_text("currencyCode") or "").upper() or None,
            commerce_subscription_id=(item.optional_text("vendorSubscriptionId") or "").lower() or None,
        )
