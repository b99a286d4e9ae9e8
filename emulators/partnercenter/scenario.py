"""The ``partnercenter:`` section of a scenario file, validated strictly.

Every problem raises ``EmulatorError`` naming the entry and key, e.g.
``partnercenter.customers[0].subscriptions[1].quantity: must be an integer, got 'ten'``. Unknown
keys are errors. See docs/emulators.md ("Partner Center emulator") for every key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from emulators.scenario_reader import Node, Unique, day, fail, guid, number, text

ROOT = "partnercenter"
STATUSES = ("active", "suspended", "pending", "expired", "disabled", "deleted", "none")
TERMS = ("P1M", "P1Y", "P3Y")
CYCLES = ("monthly", "annual", "triennial", "none", "one_time")


@dataclass(frozen=True)
class Application:
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class RefundWindow:
    quantity: int
    until: datetime


@dataclass(frozen=True)
class SubscriptionEntry:
    id: str
    offer_id: str
    offer_name: str
    quantity: int
    term: str | None
    billing_cycle: str
    start: date
    commitment_end: date | None
    auto_renew: bool
    status: str
    trial: bool
    billing_type: str
    refundable: tuple[RefundWindow, ...] | None
    unit_price: Decimal | None
    discount_percent: Decimal
    currency: str


@dataclass(frozen=True)
class CustomerEntry:
    id: str
    company_name: str
    domain: str
    subscriptions: tuple[SubscriptionEntry, ...]


@dataclass(frozen=True)
class Scenario:
    today: date | None = None
    partner_tenant_id: str = "00000000-0000-4000-8000-000000000000"
    applications: tuple[Application, ...] = ()
    token_lifetime_seconds: int = 3600
    billing_currency: str = "USD"
    subscriptions_per_minute: int = 500
    customers: tuple[CustomerEntry, ...] = ()
    faults: tuple[dict[str, Any], ...] = field(default_factory=tuple)


_TOP_KEYS = ("today", "partnerTenantId", "applications", "tokenLifetimeSeconds", "billingCurrency", "rateLimit",
             "customers", "faults")
_SUB_KEYS = ("id", "offerId", "offerName", "quantity", "termDuration", "billingCycle", "effectiveStartDate",
             "commitmentEndDate", "autoRenewEnabled", "status", "isTrial", "billingType", "refundableQuantity",
             "unitPrice", "discountPercent", "currency")


def _currency(node: Node, key: str, default: str) -> str:
    value = node.text(key, default)
    if len(value) != 3 or not value.isalpha():
        raise fail(node.at(key), f"must be an ISO 4217 currency code like USD, got {value!r}")
    return value.upper()


def parse_scenario(section: Any) -> Scenario:
    """Validate the ``partnercenter:`` section (None or {} gives a partner with no customers)."""
    root = Node.section(section, ROOT, _TOP_KEYS)
    applications = [Application(*pair) for pair in root.client_credentials(client_id=guid)]
    per_minute = 500
    if root.has("rateLimit"):
        limit = Node(root.raw["rateLimit"], root.at("rateLimit"), ("subscriptionsPerMinute",))
        per_minute = limit.integer("subscriptionsPerMinute", 500)
    customers = []
    seen = Unique("customer id")
    subscription_ids = Unique("subscription id")
    for index, raw in enumerate(root.listing("customers")):
        path = f"{root.at('customers')}[{index}]"
        item = Node(raw, path, ("id", "companyName", "domain", "subscriptions"), ("id", "companyName"))
        customer_id = item.guid("id")
        seen.add(customer_id, item.at("id"), path)
        subs = []
        for sub_index, sub_raw in enumerate(item.listing("subscriptions")):
            sub_path = f"{item.at('subscriptions')}[{sub_index}]"
            sub = Node(sub_raw, sub_path, _SUB_KEYS, ("id", "offerId", "quantity"))
            sub_id = sub.guid("id")
            subscription_ids.add(sub_id, sub.at("id"), sub_path)
            start = sub.day("effectiveStartDate") if sub.has("effectiveStartDate") else date(2026, 1, 1)
            end = sub.day("commitmentEndDate") if sub.has("commitmentEndDate") else None
            sub.ordered("effectiveStartDate", start, "commitmentEndDate", end)
            refundable = None
            if sub.has("refundableQuantity"):
                refundable = tuple(_refund(r, f"{sub.at('refundableQuantity')}[{i}]")
                                   for i, r in enumerate(sub.listing("refundableQuantity")))
            subs.append(SubscriptionEntry(
                id=sub_id, offer_id=sub.text("offerId"), offer_name=sub.text("offerName", sub.raw.get("offerId")),
                quantity=sub.integer("quantity", minimum=0),
                term=sub.choice("termDuration", TERMS) if sub.has("termDuration") else None,
                billing_cycle=sub.choice("billingCycle", CYCLES, "monthly"), start=start, commitment_end=end,
                auto_renew=sub.flag("autoRenewEnabled", True), status=sub.choice("status", STATUSES, "active"),
                trial=sub.flag("isTrial", False),
                billing_type=sub.choice("billingType", ("license", "usage"), "license"),
                refundable=refundable, unit_price=sub.optional("unitPrice", _number),
                discount_percent=sub.number("discountPercent", 0, minimum=Decimal(0)),
                currency=_currency(sub, "currency", "USD"),
            ))
        name = item.text("companyName")
        default_domain = re.sub(r"[^a-z0-9]", "", name.lower()) + ".onmicrosoft.com"
        customers.append(CustomerEntry(customer_id, name, item.text("domain", default_domain), tuple(subs)))
    return Scenario(
        today=root.optional("today", day),
        partner_tenant_id=root.guid("partnerTenantId") if root.has("partnerTenantId") else Scenario.partner_tenant_id,
        applications=tuple(applications),
        token_lifetime_seconds=root.integer("tokenLifetimeSeconds", 3600),
        billing_currency=_currency(root, "billingCurrency", "USD"),
        subscriptions_per_minute=per_minute, customers=tuple(customers), faults=root.faults(),
    )


def _number(value: Any, path: str) -> Decimal:
    return number(value, path, minimum=Decimal(0))


def _refund(raw: Any, path: str) -> RefundWindow:
    node = Node(raw, path, ("quantity", "until"), ("quantity", "until"))
    until = node.raw["until"]
    if isinstance(until, datetime):
        moment = until
    else:
        try:
            moment = datetime.fromisoformat(text(until, node.at("until")).replace("Z", "+00:00"))
        except ValueError:
            raise fail(node.at("until"), f"must be an ISO 8601 date-time, got {until!r}") from None
    if moment.tzinfo is None:
        raise fail(node.at("until"), "must carry a time zone (e.g. 2026-11-28T10:00:00Z)")
    return RefundWindow(node.integer("quantity", minimum=0), moment)
