"""``PartnerCenterClient``: Microsoft Partner Center (direct CSP) as a subscription source.

Authentication: app-only. The web app registered in Partner Center (Account settings > App
management) gets a token from Entra ID with client credentials in the partner's own tenant, scope
``https://api.partnercenter.microsoft.com/.default``. Every call SeatSync makes accepts app-only
credentials (Microsoft's page of each call says so under "Prerequisites"): listing customers,
a customer's subscriptions, and the unbilled reconciliation line items. App+User tokens (the
secure application model, with MFA) are needed only for calls SeatSync never makes (orders,
price sheets).

Reads (every request carries ``MS-RequestId``, new each time, and ``MS-CorrelationId``, one per
client):
- ``GET /v1/customers?size=500``: seek paging; the answer's ``links.next`` names the next URI and
  the ``MS-ContinuationToken`` header to send with it. A customer's id is its tenant id.
- ``GET /v1/customers/{id}/subscriptions``: one customer's subscriptions (one answer, no paging):
  offer, quantity, ``termDuration`` (ISO 8601: P1M, P1Y, P3Y), ``billingCycle``,
  ``effectiveStartDate``, ``commitmentEndDate`` (new commerce: inclusive), ``autoRenewEnabled``,
  status and, for new commerce, ``refundableQuantity`` (seats that can still be reduced and
  until when). Usage-billed subscriptions (Azure plans) are left out: they have no seats.
- ``GET /v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems
  &currencycode=<billing currency>&period=current&size=2000``: this month's reconciliation lines
  (seek paging as above). Per subscription the cost of one seat for one billing period: a
  ``cycleCharge`` line's ``effectiveUnitPrice`` (the full period after discounts), else the
  ``unitPrice`` of its latest line, in the line's ``pricingCurrency``.

The Subscription resource allows 500 requests a minute per partner tenant; a 429 carries
``Retry-After``, which ``RetryingHttp`` honours. A 401 is retried once with a fresh token.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from shared.adapters.graph_tokens import aadsts_code, describe_auth_failure, is_microsoft_authority
from shared.adapters.http import RetryingHttp
from shared.adapters.source_fields import Fields, json_body, json_or_none
from shared.domain.partner import PartnerSubscription, Refundable, SourceCustomer, SourceKind
from shared.errors import SourceAuthError, SourceError

log = logging.getLogger(__name__)

RESOURCE = "https://api.partnercenter.microsoft.com"
SCOPE = f"{RESOURCE}/.default"
CUSTOMER_PAGE = 500
RECON_PAGE = 2000
MAX_PAGES = 1000
ACTIVE = "active"

CredentialFactory = Callable[[], TokenCredential]


class PartnerCenterCredential:
    """The app-only credential of one Partner Center source (azure-identity caches its token);
    shared by the source's clients of one process."""

    def __init__(self, source: str, tenant_id: str, client_id: str, client_secret: str, authority_host: str,
                 verify: bool | str = True) -> None:
        self.source = source
        self.tenant_id = tenant_id
        options: dict[str, Any] = {"authority": authority_host, "connection_verify": verify}
        if not is_microsoft_authority(authority_host):
            options["disable_instance_discovery"] = True
        self._credential = ClientSecretCredential(tenant_id, client_id, client_secret, **options)
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            try:
                return self._credential.get_token(SCOPE).token
            except (ClientAuthenticationError, ValueError) as exc:
                code = aadsts_code(exc)
                hint = {
                    "AADSTS7000215": "the client secret is wrong: store the secret's Value, not its ID",
                    "AADSTS7000222": "the client secret has expired: add a new one to the app",
                    "AADSTS700016": "the app is not registered in the partner tenant: register it in Partner "
                                    "Center (Account settings > App management)",
                    "AADSTS90002": "the partner tenant id is wrong",
                }.get(code or "", "check the app registration and the secret")
                raise SourceAuthError(self.source, f"cannot get a Partner Center token: "
                                                   f"{describe_auth_failure(exc)} -> what to do: {hint}") from exc

    def close(self) -> None:
        self._credential.close()


class PartnerCenterClient:
    """Partner Center for one configured source; thread-safe."""

    kind: SourceKind = "partner-center"

    def __init__(self, name: str, base_url: str, credential: PartnerCenterCredential, *,
                 billing_currency: str = "USD", read_costs: bool = True, http: RetryingHttp | None = None,
                 verify: bool | str = True, max_pages: int = MAX_PAGES) -> None:
        self._name = name
        self.base_url = base_url.rstrip("/")
        self.credential = credential
        self.billing_currency = billing_currency
        self.read_costs = read_costs
        self.http = http or RetryingHttp(f"Partner Center {name}", verify=verify)
        self.correlation_id = str(uuid.uuid4())
        self.max_pages = max_pages
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc.lower())

    @property
    def name(self) -> str:
        return self._name

    @property
    def calls(self) -> int:
        return self.http.calls

    # ------------------------------------------------------------------ requests
    def _get(self, url: str, extra_headers: dict[str, str] | None = None, what: str = "") -> Any:
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.credential.token()}", "Accept": "application/json",
                       "MS-RequestId": str(uuid.uuid4()), "MS-CorrelationId": self.correlation_id,
                       **(extra_headers or {})}
            try:
                response = self.http.request("GET", url, headers=headers)
            except requests.RequestException as exc:
                raise SourceError(self._name, f"{what}: no answer after retries ({type(exc).__name__}: {exc})",
                                  None, "GET", url) from exc
            if response.status_code == 401 and attempt == 1:
                response.close()
                continue
            if response.status_code != 200:
                raise self._error(response, url, what)
            return json_body(self._name, response, what)
        raise AssertionError("unreachable")

    def _error(self, response: requests.Response, url: str, what: str) -> SourceError:
        payload = json_or_none(response)
        code = payload.get("code") if isinstance(payload, dict) else None
        description = payload.get("description") if isinstance(payload, dict) else None
        detail = f"{code}: {description}" if code or description else (response.text[:200] or response.reason)
        status = response.status_code
        if status in (401, 403):
            return SourceAuthError(
                self._name, f"{what}: Partner Center refused the app ({detail}); the app must be registered in "
                            "Partner Center (Account settings > App management) for app-only access",
                status, "GET", url)
        return SourceError(self._name, f"{what}: {detail}", status, "GET", url)

    def _seek(self, first_url: str, what: str) -> Iterator[Fields]:
        """Every item of a seek-paged collection (``links.next`` with ``MS-ContinuationToken``)."""
        url: str | None = first_url
        headers: dict[str, str] = {}
        seen_tokens: set[str] = set()
        pages = 0
        while url is not None:
            pages += 1
            if pages > self.max_pages:
                raise SourceError(self._name, f"{what}: more than {self.max_pages} pages; the pager does not end")
            body = Fields(self._name, self._get(url, headers, what), what)
            if not isinstance(body.raw.get("items"), list):
                raise SourceError(self._name, f"{what}: a page has no 'items' list", None, "GET", url)
            yield from body.items("items")
            nxt = (body.child("links") or Fields(self._name, {}, what)).child("next")
            if nxt is None:
                return
            uri = nxt.text("uri")
            headers = {}
            for header in nxt.items("headers"):
                headers[header.text("key")] = header.text("value")
            token = headers.get("MS-ContinuationToken")
            if not token:
                raise SourceError(self._name, f"{what}: a next page has no MS-ContinuationToken")
            if token in seen_tokens:
                raise SourceError(self._name, f"{what}: the same continuation token came back twice; the pager loops")
            seen_tokens.add(token)
            url = self._absolute(uri, what)

    def _absolute(self, uri: str, what: str) -> str:
        if uri.startswith(("https://", "http://")):
            target = urlsplit(uri)
            if (target.scheme, target.netloc.lower()) != self._origin:
                raise SourceError(self._name, f"{what}: a next link points outside {self.base_url}")
            return uri
        path = uri if uri.startswith("/") else f"/{uri}"
        return f"{self.base_url}{path if path.startswith('/v1/') else '/v1' + path}"

    # ------------------------------------------------------------------ SubscriptionSourcePort
    def list_customers(self) -> list[SourceCustomer]:
        out: list[SourceCustomer] = []
        seen: set[str] = set()
        for item in self._seek(f"{self.base_url}/v1/customers?size={CUSTOMER_PAGE}", "customers"):
            customer_id = item.text("id").lower()
            if customer_id in seen:
                raise SourceError(self._name, f"customers: customer {customer_id} appeared twice")
            seen.add(customer_id)
            profile = item.child("companyProfile") or Fields(self._name, {}, "companyProfile")
            out.append(SourceCustomer(customer_id=customer_id,
                                      name=profile.optional_text("companyName") or customer_id,
                                      tenant_id=(profile.optional_text("tenantId") or customer_id).lower(),
                                      domain=profile.optional_text("domain")))
        return out

    def list_subscriptions(self, customer_id: str) -> list[PartnerSubscription]:
        what = f"subscriptions of customer {customer_id}"
        body = Fields(self._name, self._get(f"{self.base_url}/v1/customers/{customer_id}/subscriptions", what=what),
                      what)
        if not isinstance(body.raw.get("items"), list):
            raise SourceError(self._name, f"{what}: the answer has no 'items' list")
        out = []
        for item in body.items("items"):
            billing_type = (item.optional_text("billingType") or "license").lower()
            if billing_type not in ("license", "none"):
                continue  # usage-billed (Azure plans): no seats to reconcile
            out.append(self._subscription(customer_id, item))
        return out

    def list_all_subscriptions(self) -> list[PartnerSubscription] | None:
        return None  # Partner Center lists subscriptions customer by customer

    def _subscription(self, customer_id: str, item: Fields) -> PartnerSubscription:
        refundable_raw = item.child("refundableQuantity")
        refundable = None
        if refundable_raw is not None:
            refundable = tuple(Refundable(detail.whole("quantity"), until)
                               for detail in refundable_raw.items("details")
                               if (until := detail.moment("allowedUntilDateTime")) is not None)
        subscription_id = item.text("id").lower()
        status = item.text("status")
        return PartnerSubscription(
            source=self._name, kind=self.kind, subscription_id=subscription_id, customer_id=customer_id.lower(),
            product_id=item.text("offerId"), product_name=item.optional_text("offerName")
            or item.optional_text("friendlyName") or item.text("offerId"),
            quantity=item.whole("quantity"), status=status, active=status.lower() == ACTIVE,
            trial=bool(item.flag("isTrial")), term=item.optional_text("termDuration"),
            billing=item.optional_text("billingCycle"),
            start=item.day("effectiveStartDate") or item.day("creationDate"),
            commitment_end=item.day("commitmentEndDate"), auto_renew=item.flag("autoRenewEnabled"),
            refundable=refundable, commerce_subscription_id=subscription_id,
        )

    def subscription_costs(self) -> dict[str, tuple[Decimal, str]]:
        """Per subscription, the cost of one seat for one billing period (see the module doc)."""
        if not self.read_costs:
            return {}
        url = (f"{self.base_url}/v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems"
               f"&currencycode={self.billing_currency}&period=current&size={RECON_PAGE}")
        best: dict[str, tuple[bool, str, Decimal, str]] = {}
        for line in self._seek(url, "unbilled reconciliation line items"):
            subscription_id = (line.optional_text("subscriptionId") or "").lower()
            if not subscription_id:
                continue
            cycle = (line.optional_text("chargeType") or "").lower() == "cyclecharge"
            price = line.money("effectiveUnitPrice") if cycle else line.money("unitPrice")
            if price is None:
                continue
            currency = (line.optional_text("pricingCurrency") or line.optional_text("currency")
                        or self.billing_currency).upper()
            started = line.optional_text("chargeStartDate") or ""
            rank = (cycle, started)
            current = best.get(subscription_id)
            if current is None or rank > current[:2]:
                best[subscription_id] = (cycle, started, price, currency)
        return {sid: (price, currency) for sid, (_, _, price, currency) in best.items()}
