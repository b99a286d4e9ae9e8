"""The ``pax8:`` section of a scenario file, validated strictly.

Every problem raises ``EmulatorError`` naming the entry and key, e.g.
``pax8.companies[0].subscriptions[1].billingTerm: must be one of Monthly, Annual, ...``. Unknown
keys are errors. See docs/emulators.md ("Pax8 emulator") for every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from emulators.scenario_reader import Node, Unique, day, number

ROOT = "pax8"
STATUSES = ("Active", "Cancelled", "PendingManual", "PendingAutomated", "PendingCancel", "WaitingForDetails",
            "Trial", "Converted", "PendingActivation", "Activated")
BILLING_TERMS = ("Monthly", "Annual", "2-Year", "3-Year", "One-Time", "Trial", "Activation")
COMPANY_STATES = ("Active", "Inactive", "Deleted")
AUDIENCES = ("https://api.pax8.com", "api://p8p.client", "api://provisioning", "api://usage")


@dataclass(frozen=True)
class Application:
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class SubscriptionEntry:
    id: str
    company_id: str
    product_id: str
    product_name: str
    vendor_subscription_id: str | None
    quantity: int
    billing_term: str
    commitment_term: str | None
    commitment_end: date | None
    start: date
    status: str
    price: Decimal | None
    partner_cost: Decimal | None
    currency: str


@dataclass(frozen=True)
class CompanyEntry:
    id: str
    name: str
    website: str
    status: str


@dataclass(frozen=True)
class Scenario:
    today: date | None = None
    applications: tuple[Application, ...] = ()
    token_lifetime_seconds: int = 86400
    requests_per_minute: int | None = None
    companies: tuple[CompanyEntry, ...] = ()
    subscriptions: tuple[SubscriptionEntry, ...] = ()
    faults: tuple[dict[str, Any], ...] = field(default_factory=tuple)


_TOP_KEYS = ("today", "applications", "tokenLifetimeSeconds", "rateLimit", "companies", "faults")
_SUB_KEYS = ("id", "productId", "productName", "vendorSubscriptionId", "quantity", "billingTerm", "commitment",
             "startDate", "status", "price", "partnerCost", "currencyCode")


def parse_scenario(section: Any) -> Scenario:
    """Validate the ``pax8:`` section (None or {} gives a partner with no companies)."""
    root = Node.section(section, ROOT, _TOP_KEYS)
    applications = [Application(*pair) for pair in root.client_credentials()]
    per_minute = None
    if root.has("rateLimit"):
        limit = Node(root.raw["rateLimit"], root.at("rateLimit"), ("requestsPerMinute",), ("requestsPerMinute",))
        per_minute = limit.integer("requestsPerMinute")
    companies, subscriptions = [], []
    company_ids = Unique("company id")
    subscription_ids = Unique("subscription id")
    for index, raw in enumerate(root.listing("companies")):
        path = f"{root.at('companies')}[{index}]"
        item = Node(raw, path, ("id", "name", "website", "status", "subscriptions"), ("id", "name"))
        company_id = item.guid("id")
        company_ids.add(company_id, item.at("id"), path)
        companies.append(CompanyEntry(company_id, item.text("name"), item.text("website", "", allow_empty=True),
                                      item.choice("status", COMPANY_STATES, "Active")))
        for sub_index, sub_raw in enumerate(item.listing("subscriptions")):
            sub_path = f"{item.at('subscriptions')}[{sub_index}]"
            sub = Node(sub_raw, sub_path, _SUB_KEYS, ("id", "productId", "quantity", "billingTerm"))
            sub_id = sub.guid("id")
            subscription_ids.add(sub_id, sub.at("id"), sub_path)
            term, end = None, None
            if sub.has("commitment"):
                commitment = Node(sub.raw["commitment"], sub.at("commitment"), ("term", "endDate"), ("term", "endDate"))
                term = commitment.choice("term", BILLING_TERMS)
                end = commitment.day("endDate")
            start = sub.day("startDate") if sub.has("startDate") else date(2026, 1, 1)
            subscriptions.append(SubscriptionEntry(
                id=sub_id, company_id=company_id, product_id=sub.guid("productId"),
                product_name=sub.text("productName", "Microsoft product"),
                vendor_subscription_id=sub.guid("vendorSubscriptionId") if sub.has("vendorSubscriptionId") else None,
                quantity=sub.integer("quantity", minimum=0), billing_term=sub.choice("billingTerm", BILLING_TERMS),
                commitment_term=term, commitment_end=end, start=start,
                status=sub.choice("status", STATUSES, "Active"),
                price=sub.optional("price", number), partner_cost=sub.optional("partnerCost", number),
                currency=sub.text("currencyCode", "USD").upper(),
            ))
    return Scenario(
        today=root.optional("today", day),
        applications=tuple(applications), token_lifetime_seconds=root.integer("tokenLifetimeSeconds", 86400),
        requests_per_minute=per_minute, companies=tuple(companies), subscriptions=tuple(subscriptions),
        faults=root.faults(),
    )
