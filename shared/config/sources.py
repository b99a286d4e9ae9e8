"""The ``subscriptionSources`` section of the configuration document: where SeatSync reads the
partner side of each customer's subscriptions (term, commitment end, cost).

Both sources are optional: an MSP configures none, one or both. Microsoft Partner Center serves
direct CSP partners (an app registered in Partner Center, app-only tokens); Pax8 serves the
resellers it distributes to (an API client with client credentials). Secrets are references, as
everywhere in the document. docs/configuration.md describes every field, docs/permissions.md the
least access each source needs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from shared.config.base import Model, SecretRef

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

PARTNER_CENTER_API = "https://api.partnercenter.microsoft.com"
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
PAX8_API = "https://api.pax8.com/v1"
PAX8_TOKEN_URL = "https://token-manager.pax8.com/oauth/token"
PAX8_AUDIENCE = "https://api.pax8.com"


def _https(value: str) -> str:
    if not value.startswith("https://"):
        raise ValueError("must be an https:// URL")
    return value.rstrip("/")


class SkuLink(Model):
    """A source's product that is a Microsoft licence: Partner Center's offer or product id
    (``CFQ7TTC0LCHC:0002`` or ``CFQ7TTC0LCHC``), or Pax8's product id; ``skuId`` is the licence's
    Graph ``skuId``. Needed only for products whose name is not Microsoft's own licence name."""

    product_id: str = Field(min_length=1, max_length=100)
    sku_id: str = Field(pattern=GUID_PATTERN)

    @field_validator("sku_id")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class PartnerCenterSource(Model):
    """Microsoft Partner Center (direct CSP): customers, their subscriptions and this month's
    unbilled reconciliation lines (the cost of each subscription), read with app-only tokens."""

    name: str
    type: Literal["partner-center"]
    partner_tenant_id: str = Field(pattern=GUID_PATTERN, description="the partner's own Entra tenant")
    client_id: SecretRef | Annotated[str, Field(pattern=GUID_PATTERN)] = Field(
        description="the web app registered in Partner Center (Account settings > App management)")
    client_secret: SecretRef
    url: str = PARTNER_CENTER_API
    authority_host: str = MICROSOFT_AUTHORITY
    billing_currency: str = Field(default="USD", min_length=3, max_length=3,
                                  description="the currency Partner Center bills the partner in")
    read_costs: bool = Field(default=True, description="read this month's unbilled reconciliation lines "
                                                       "for the cost of each subscription")
    sku_map: tuple[SkuLink, ...] = ()

    @field_validator("url", "authority_host")
    @classmethod
    def _url(cls, value: str) -> str:
        return _https(value)

    @field_validator("billing_currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not value.isalpha():
            raise ValueError(f"{value!r} is not an ISO 4217 currency code")
        return value.upper()


class Pax8Source(Model):
    """Pax8 (indirect CSP, through the distributor): companies and their subscriptions with the
    price and the partner's cost, read with an OAuth client-credentials token."""

    name: str
    type: Literal["pax8"]
    client_id: SecretRef | str
    client_secret: SecretRef
    url: str = PAX8_API
    token_url: str = PAX8_TOKEN_URL
    audience: str = PAX8_AUDIENCE
    sku_map: tuple[SkuLink, ...] = ()

    @field_validator("url", "token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _https(value)


SubscriptionSource = Annotated[PartnerCenterSource | Pax8Source, Field(discriminator="type")]


class PartnerCustomer(Model):
    """The customer a source knows a tenant as, when SeatSync cannot find it by itself: Partner
    Center customers are the tenant itself; a Pax8 company is found through its Microsoft
    subscriptions, or named here."""

    source: str
    customer_id: str = Field(min_length=1, max_length=100)
