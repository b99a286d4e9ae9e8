"""The configuration document: which tenant bills to which PSA company, and how.

It is one document (imported from and exported to YAML by the CLI, edited through the config
API) validated as a whole: a file with one bad entry is rejected entirely and nothing is
stored. Field names are camelCase in YAML/JSON. Secrets are never part of it: a PSA
connection names the app setting or Key Vault secret that holds each credential.

See docs/configuration.md for every field with an example.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PlainSerializer,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shared.config import json_members
from shared.config.base import Model, SecretRef
from shared.config.compact import CompactCollector, CompactModels
from shared.config.notifications import NotificationSettings
from shared.config.partners import DEFAULT_PARTNER, AccessMode, GdapRules, PartnerAccount
from shared.config.products import resolve_licence
from shared.config.sources import PartnerCustomer, SubscriptionSource
from shared.errors import ConfigError

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_GUID = re.compile(GUID_PATTERN)
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9-]{1,127}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

MAX_SEATS = 2**31 - 1  # the largest count SeatSync stores (Int32): shared.domain.model.MAX_COUNT
Guid = Annotated[str, Field(pattern=GUID_PATTERN)]
LicenceRef = Annotated[str, Field(pattern=GUID_PATTERN), WithJsonSchema({
    "type": "string", "minLength": 1, "examples": ["cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "SPB",
                                                   "Microsoft 365 Business Premium"],
    "description": "a licence: its skuId (GUID), skuPartNumber or product name (resolved to the skuId)"})]
"""A licence as the document names it; stored as its skuId (``shared.config.products``)."""
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


def _licences(value: Any) -> Any:
    """A list of licence references (skuId, part number or product name) -> their skuIds."""
    if isinstance(value, list | tuple):
        return [resolve_licence(item) if isinstance(item, str) else item for item in value]
    return value


class ConnectWiseConnection(Model):
    """A ConnectWise PSA (Manage) API connection."""

    name: str
    type: Literal["connectwise"]
    url: str = Field(description="API base URL, e.g. https://api-na.myconnectwise.net/v4_6_release/apis/3.0")
    company_id: str = Field(min_length=1, max_length=64)
    public_key: SecretRef
    private_key: SecretRef
    client_id: SecretRef | Guid
    invoiced_when_unknown: bool = Field(
        default=True,
        description="whether the current billing period of an agreement counts as invoiced when ConnectWise "
                    "gives no nextInvoiceDate for it (invoiced: a mid-period increase gets a prorate line)")

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://") or "/apis/3.0" not in value:
            raise ValueError("must be the https:// API base URL ending in /apis/3.0 "
                             "(e.g. https://api-na.myconnectwise.net/v4_6_release/apis/3.0)")
        return value.rstrip("/")


class AutotaskConnection(Model):
    """An Autotask PSA REST API connection (API user with an integration code)."""

    name: str
    type: Literal["autotask"]
    username: SecretRef | str = Field(description="the API user's username (an email address)")
    secret: SecretRef
    integration_code: SecretRef
    zone_url: str | None = Field(
        default=None, description="the zone's REST base URL, e.g. https://webservices5.autotask.net/ATServicesRest; "
                                  "discovered from the username when absent")
    discovery_url: str = "https://webservices.autotask.net/ATServicesRest"
    hourly_request_share: Decimal = Field(
        default=Decimal("0.25"), gt=0, le=1,
        description="the share of the database's 10,000 requests an hour SeatSync may use")
    max_concurrent_requests: int = Field(default=3, ge=1, le=3)

    @field_validator("zone_url", "discovery_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be an https:// URL")
        return value.rstrip("/") if value else value


class HaloConnection(Model):
    """A HaloPSA API connection (client credentials application)."""

    name: str
    type: Literal["halopsa"]
    url: str = Field(description="the Halo base URL, e.g. https://yourmsp.halopsa.com")
    tenant: str | None = Field(default=None, description="the hosted tenant name, when Halo needs it")
    client_id: SecretRef | str
    client_secret: SecretRef
    lines: Literal["recurring-invoice", "contract"] = "recurring-invoice"
    requests_per_5_minutes: int = Field(default=250, ge=1, le=300)

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL")
        return value.rstrip("/")


PsaConnection = Annotated[ConnectWiseConnection | AutotaskConnection | HaloConnection, Field(discriminator="type")]


MAX_UNIT_PRICE = Decimal(10) ** 9
"""The largest unit price a profile may set: what SeatSync accepts from a PSA as a price
(``shared.domain.model.MAX_PRICE``; docs/billing-rules.md, "Impossible values")."""
MAX_PERCENT = Decimal(10_000)
"""The largest markup or margin percentage: a hundredfold price."""

PriceMode = Literal["psa", "custom", "markup", "cost-plus"]
BillingMode = Literal["billable", "do-not-bill", "no-charge"]
CountBasis = Literal["assigned", "purchased"]
DecreasePolicy = Literal["hold", "defer", "apply"]
Term = Literal["monthly", "annual"]


class Price(Model):
    """How a profile prices its line: the PSA product's price, a custom price, the PSA price
    plus or minus a percentage, or the partner's cost (read from a subscription source) plus a
    margin percentage; the last two are recomputed every run, so they follow price and cost
    changes.

    The price is set on the lines SeatSync creates (and keeps them at it). A line SeatSync adopted
    (a ``lineId``, or the one line of the product it found) keeps the price the MSP gave it: a
    difference is reported as a billing problem, and the price is changed only when
    ``manageAdoptedLines`` says so."""

    mode: PriceMode = "psa"
    amount: Decimal | None = Field(default=None, le=MAX_UNIT_PRICE,
                                   description="the unit price, for mode 'custom' (0 to 1,000,000,000)")
    percent: Decimal | None = Field(default=None, le=MAX_PERCENT,
                                    description="e.g. 10 or -5, for modes 'markup' and 'cost-plus' (above -100, "
                                                "at most 10,000)")
    manage_adopted_lines: bool = Field(
        default=False, description="also set this price on lines SeatSync adopted (did not create); by default "
                                   "their price is the MSP's and a difference is only reported")

    @model_validator(mode="after")
    def _fields_for_mode(self) -> Price:
        if self.mode == "custom" and (self.amount is None or self.amount < 0):
            raise ValueError("mode 'custom' needs a non-negative 'amount'")
        if self.mode in ("markup", "cost-plus") and (self.percent is None or self.percent <= -100):
            raise ValueError(f"mode '{self.mode}' needs a 'percent' above -100")
        if self.mode != "custom" and self.amount is not None:
            raise ValueError("'amount' is only for mode 'custom'")
        if self.mode not in ("markup", "cost-plus") and self.percent is not None:
            raise ValueError("'percent' is only for modes 'markup' and 'cost-plus'")
        return self


class BillingProfile(Model):
    """Ties a licence to one PSA product, the agreement types it may be used on, its price and
    whether it is billed."""

    name: str
    psa: str
    product_id: Identifier
    agreement_types: tuple[str, ...] = ()
    price: Price = Price()
    billing: BillingMode = "billable"
    description: str | None = Field(default=None, max_length=200)


MailboxType = Literal["user", "shared", "both"]
EntraScope = Literal["all", "licensed", "domain"]
MemberKind = Literal["users", "devices", "both"]


class CustomLicence(Model):
    """A billable quantity computed from the directory rather than from a Microsoft licence."""

    name: str
    kind: Literal["mailboxes", "licences", "entra-users", "group-members", "intune-devices"]
    mailbox_type: MailboxType | None = None
    sku_ids: tuple[LicenceRef, ...] = ()
    scope: EntraScope | None = None
    domain: str | None = None
    group_id: Guid | None = None
    members: MemberKind | None = None
    operating_system: str | None = None

    @model_validator(mode="after")
    def _fields_for_kind(self) -> CustomLicence:
        allowed = {
            "mailboxes": {"mailbox_type"}, "licences": {"sku_ids"}, "entra-users": {"scope", "domain"},
            "group-members": {"group_id", "members"}, "intune-devices": {"operating_system"},
        }[self.kind]
        given = {f for f in ("mailbox_type", "sku_ids", "scope", "domain", "group_id", "members",
                             "operating_system") if getattr(self, f) not in (None, ())}
        extra = given - allowed
        if extra:
            names = ", ".join(sorted(to_camel(f) for f in extra))
            raise ValueError(f"{names} cannot be used with kind '{self.kind}'")
        if self.kind == "mailboxes" and self.mailbox_type is None:
            raise ValueError("kind 'mailboxes' needs 'mailboxType' (user, shared or both)")
        if self.kind == "licences" and not self.sku_ids:
            raise ValueError("kind 'licences' needs 'skuIds' (one to copy a licence's count, several to sum)")
        if self.kind == "entra-users":
            if self.scope is None:
                raise ValueError("kind 'entra-users' needs 'scope' (all, licensed or domain)")
            if (self.scope == "domain") != (self.domain is not None):
                raise ValueError("'domain' is needed with scope 'domain', and only then")
        if self.kind == "group-members" and (self.group_id is None or self.members is None):
            raise ValueError("kind 'group-members' needs 'groupId' and 'members' (users, devices or both)")
        return self

    @field_validator("sku_ids", mode="before")
    @classmethod
    def _named_skus(cls, value: Any) -> Any:
        return _licences(value)

    @field_validator("sku_ids")
    @classmethod
    def _lower_skus(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.lower() for v in value)

    @property
    def user_based(self) -> bool:
        return self.kind in ("mailboxes", "licences", "entra-users") or (
            self.kind == "group-members" and self.members == "users")


class UserFilter(Model):
    """Users that belong to a company: every field given must match (AND); a field matches when
    the user's value equals one of the listed values, ignoring case and surrounding spaces."""

    office: tuple[str, ...] = ()
    department: tuple[str, ...] = ()
    city: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    country: tuple[str, ...] = ()

    @field_validator("office", "department", "city", "state", "country")
    @classmethod
    def _not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not v.strip() for v in value):
            raise ValueError("a blank value matches nobody's field reliably: list real values, and bill users "
                             "whose field is blank through a catch-all company (catchAll: true)")
        return value

    @property
    def empty(self) -> bool:
        return not (self.office or self.department or self.city or self.state or self.country)


class LicenceLink(Model):
    """One licence (a SKU, some of its subscriptions, or a custom licence) billed through one PSA
    line on an agreement, with the options that shape the billed quantity."""

    sku_id: LicenceRef | None = None
    subscription_ids: tuple[Guid, ...] = ()
    custom: str | None = None
    agreement_id: Identifier
    line_id: Identifier | None = Field(
        default=None, description="the PSA line that bills this licence; created when absent")
    profile: str | None = None
    count_basis: CountBasis = "assigned"
    included: int = Field(default=0, ge=0, le=MAX_SEATS)
    minimum: int = Field(default=0, ge=0, le=MAX_SEATS)
    include_user_names: bool = False
    show_unassigned: bool = False
    description: str | None = Field(default=None, max_length=1000)
    start_date: date | None = None
    allow_negative_prorate: bool = False
    decrease_policy: DecreasePolicy = "hold"
    subscription_term: Term = "annual"
    bill_seats_bought_elsewhere: bool = Field(
        default=False, description="also bill seats a subscription source did not sell (bought from Microsoft, "
                                   "another partner or by the customer)")
    ignore_filter: bool = False
    note: str | None = None

    @field_validator("sku_id", mode="before")
    @classmethod
    def _named_sku(cls, value: Any) -> Any:
        return resolve_licence(value) if isinstance(value, str) else value

    @field_validator("sku_id")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    @field_validator("subscription_ids")
    @classmethod
    def _lower_subscriptions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.lower() for v in value)

    @model_validator(mode="after")
    def _one_source(self) -> LicenceLink:
        if (self.sku_id is None) == (self.custom is None):
            raise ValueError("give exactly one of 'skuId' (a Microsoft licence) or 'custom' (a custom licence)")
        if self.subscription_ids and self.sku_id is None:
            raise ValueError("'subscriptionIds' split a Microsoft licence: give its 'skuId' too")
        if self.custom is not None and self.count_basis == "purchased":
            raise ValueError("a custom licence has no purchased count: use countBasis 'assigned'")
        return self

    @property
    def source(self) -> str:
        """What this mapping bills, as a stable text: ``sku:<id>``, ``sku:<id>/sub:<ids>``, ``custom:<name>``."""
        if self.custom is not None:
            return f"custom:{self.custom}"
        if self.subscription_ids:
            return f"sku:{self.sku_id}/sub:{','.join(sorted(self.subscription_ids))}"
        return f"sku:{self.sku_id}"


class CompanyLink(Model):
    """A PSA company a tenant bills to; with several companies each has a user filter, or is the
    tenant's one catch-all company, which bills the users no other company's filter matches."""

    psa: str
    company_id: Identifier
    name: str | None = None
    user_filter: UserFilter | None = None
    catch_all: bool = Field(default=False, description="bill the users no other company's user filter matches")
    disable_prorate: bool = False
    sync_contacts: bool = Field(
        default=False, description="keep a PSA contact of this company for each licensed user that belongs to it "
                                   "(docs/configuration.md, contact sync)")
    licences: tuple[LicenceLink, ...] = ()

    @model_validator(mode="after")
    def _catch_all_has_no_filter(self) -> CompanyLink:
        if self.catch_all and self.user_filter is not None and not self.user_filter.empty:
            raise ValueError("a catch-all company bills the users no other company's filter matches: give it no "
                             "userFilter")
        return self


class TenantConfig(Model):
    tenant_id: Guid
    name: str = Field(min_length=1, max_length=256)
    enabled: bool = True
    companies: tuple[CompanyLink, ...] = ()
    excluded_licences: tuple[LicenceRef, ...] = ()
    custom_licences: tuple[CustomLicence, ...] = ()
    partner_customers: tuple[PartnerCustomer, ...] = ()
    access: AccessMode = Field(
        default="gdap", description="gdap: a GDAP customer of a partner account; consent: added by tenant id, "
                                    "the partner account's app consented by the customer's administrator")
    partner: str | None = Field(
        default=None, description="the partner account to read the tenant through (default: the first account "
                                  "with a usable GDAP relationship; for consent tenants the first account)")

    @field_validator("tenant_id")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    def partner_customer(self, source: str) -> str | None:
        """The customer id a subscription source knows this tenant as, when configured."""
        return next((c.customer_id for c in self.partner_customers if c.source == source), None)

    @field_validator("excluded_licences", mode="before")
    @classmethod
    def _named_excluded(cls, value: Any) -> Any:
        return _licences(value)

    @field_validator("excluded_licences")
    @classmethod
    def _lower_excluded(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.lower() for v in value)


def _tenants_in(value: Any, handler: ValidatorFunctionWrapHandler) -> Sequence[TenantConfig]:
    """Tenants given are validated into a tuple; tenants kept compact (``CompactModels``) were
    validated when the configuration was read and stay as they are."""
    if isinstance(value, CompactModels):
        return value
    return tuple(handler(value))


Tenants = Annotated[Sequence[TenantConfig], WrapValidator(_tenants_in),
                    PlainSerializer(tuple, return_type=tuple[TenantConfig, ...])]
"""A configuration's tenants: a tuple, or, in a configuration read from storage, their compact
JSON documents (``SeatSyncConfig.compacted``)."""


class SafetyPolicy(Model):
    """When a decrease is held for approval instead of applied."""

    hold_decrease_percent: Decimal = Field(default=Decimal(20), ge=0, le=100)
    hold_decrease_seats: int = Field(default=2, ge=0, le=MAX_SEATS)
    hold_decrease_to_zero: bool = True


class SeatSyncConfig(Model):
    """The whole configuration document."""

    version: Literal[1] = 1
    partner_accounts: tuple[PartnerAccount, ...] = ()
    gdap: GdapRules = GdapRules()
    psa_connections: tuple[PsaConnection, ...] = ()
    subscription_sources: tuple[SubscriptionSource, ...] = ()
    billing_profiles: tuple[BillingProfile, ...] = ()
    custom_licences: tuple[CustomLicence, ...] = ()
    excluded_licences: tuple[LicenceRef, ...] = ()
    safety: SafetyPolicy = SafetyPolicy()
    notifications: NotificationSettings = NotificationSettings()
    tenants: Tenants = ()

    @model_validator(mode="after")
    def _consistent(self) -> SeatSyncConfig:
        problems = consistency_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("excluded_licences", mode="before")
    @classmethod
    def _named_excluded(cls, value: Any) -> Any:
        return _licences(value)

    @field_validator("excluded_licences")
    @classmethod
    def _lower_excluded(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.lower() for v in value)

    # lookups ---------------------------------------------------------------------------
    def tenant(self, tenant_id: str) -> TenantConfig | None:
        wanted = tenant_id.lower()
        if isinstance(self.tenants, CompactModels):
            return self.tenants.get(wanted)
        for tenant in self.tenants:
            if tenant.tenant_id == wanted:
                return tenant
        return None

    def has_tenant(self, tenant_id: str) -> bool:
        """Whether the tenant is configured; a stored configuration answers from its index of ids,
        parsing no tenant."""
        if isinstance(self.tenants, CompactModels):
            return self.tenants.has(tenant_id.lower())
        return self.tenant(tenant_id) is not None

    def connection(self, name: str) -> PsaConnection | None:
        for connection in self.psa_connections:
            if connection.name == name:
                return connection
        return None

    def compacted(self) -> SeatSyncConfig:
        """This configuration with its tenants kept as their compact JSON documents, each parsed
        when it is read (``CompactModels``): what a process keeps of a stored version."""
        if isinstance(self.tenants, CompactModels):
            return self
        return self.model_copy(update={"tenants": CompactModels.of(TenantConfig, self.tenants,
                                                                   lambda tenant: tenant.tenant_id)})

    def lines_named(self, psa: str) -> frozenset[str]:
        """The lines of connection ``psa`` that the tenants' mappings name by lineId. It reads
        every tenant: worked out once per stored version, and on each call for tenants given in
        a tuple."""
        def named(tenants: Sequence[TenantConfig]) -> dict[str, frozenset[str]]:
            found: dict[str, set[str]] = {}
            for tenant in tenants:
                for company in tenant.companies:
                    found.setdefault(company.psa, set()).update(
                        licence.line_id for licence in company.licences if licence.line_id)
            return {name: frozenset(lines) for name, lines in found.items()}
        if isinstance(self.tenants, CompactModels):
            return self.tenants.derived("lines named", named).get(psa, frozenset())
        return named(self.tenants).get(psa, frozenset())

    def partner_names(self) -> list[str]:
        """The partner accounts in configuration order: the app settings' account first."""
        return [DEFAULT_PARTNER, *(a.name for a in self.partner_accounts)]

    def partner_account(self, name: str | None) -> PartnerAccount | None:
        """A ``partnerAccounts`` entry by name (None for the app settings' account, ``default``)."""
        return next((a for a in self.partner_accounts if a.name == name), None)

    def subscription_source(self, name: str) -> SubscriptionSource | None:
        return next((s for s in self.subscription_sources if s.name == name), None)

    def profile(self, name: str) -> BillingProfile | None:
        for profile in self.billing_profiles:
            if profile.name == name:
                return profile
        return None

    def custom_licence(self, tenant: TenantConfig, name: str) -> CustomLicence | None:
        """A tenant's own definition first, then the shared one."""
        for definition in (*tenant.custom_licences, *self.custom_licences):
            if definition.name == name:
                return definition
        return None

    def excluded(self, tenant: TenantConfig, sku_id: str) -> bool:
        return sku_id.lower() in tenant.excluded_licences or sku_id.lower() in self.excluded_licences


def consistency_problems(config: SeatSyncConfig) -> list[str]:
    """Rules that span entries. Each problem names the entry, like field errors do."""
    problems: list[str] = []

    def unique_names(items: tuple[Any, ...], field: str) -> set[str]:
        names: set[str] = set()
        for i, item in enumerate(items):
            where = f"{field}[{i}].name"
            if not _NAME.match(item.name):
                problems.append(f"{where}: '{item.name}' must be lower-case letters, digits and dashes")
            if item.name in names:
                problems.append(f"{where}: '{item.name}' is used twice")
            names.add(item.name)
        return names

    partners = unique_names(config.partner_accounts, "partnerAccounts") | {DEFAULT_PARTNER}
    for i, account in enumerate(config.partner_accounts):
        if account.name == DEFAULT_PARTNER:
            problems.append(f"partnerAccounts[{i}].name: '{DEFAULT_PARTNER}' is the app settings' partner account "
                            "(GRAPH_CLIENT_ID, GRAPH_PARTNER_TENANT_ID); give this one another name")
        for j, other in enumerate(config.partner_accounts[:i]):
            if other.tenant_id == account.tenant_id and other.client_id == account.client_id:
                problems.append(f"partnerAccounts[{i}]: the same partner tenant and app as partnerAccounts[{j}]")
    connections = unique_names(config.psa_connections, "psaConnections")
    source_names = unique_names(config.subscription_sources, "subscriptionSources")
    unique_names(config.billing_profiles, "billingProfiles")
    unique_names(config.custom_licences, "customLicences")
    for i, profile in enumerate(config.billing_profiles):
        if profile.psa not in connections:
            problems.append(f"billingProfiles[{i}].psa: no PSA connection named '{profile.psa}'")
        if profile.price.mode == "cost-plus" and not source_names:
            problems.append(f"billingProfiles[{i}].price: mode 'cost-plus' prices from the partner's cost, which "
                            "only a subscription source gives: configure one under 'subscriptionSources'")

    tickets = config.notifications.psa_tickets
    if tickets is not None:
        where = "notifications.psaTickets"
        connection = config.connection(tickets.psa)
        place = {"connectwise": "boardId", "autotask": "queueId", "halopsa": "ticketTypeId"}
        if connection is None:
            problems.append(f"{where}.psa: no PSA connection named '{tickets.psa}'")
        elif {"connectwise": tickets.board_id, "autotask": tickets.queue_id,
              "halopsa": tickets.ticket_type_id}[connection.type] is None:
            problems.append(f"{where}: '{tickets.psa}' is a {connection.type} connection: give "
                            f"{place[connection.type]}")
    seen_tenants: dict[str, int] = {}
    lines: dict[tuple[str, str], str] = {}
    for t, tenant in enumerate(config.tenants):
        where = f"tenants[{t}] ({tenant.name})"
        if tenant.tenant_id in seen_tenants:
            problems.append(f"{where}.tenantId: {tenant.tenant_id} is also tenants[{seen_tenants[tenant.tenant_id]}]")
        seen_tenants.setdefault(tenant.tenant_id, t)
        unique_names(tenant.custom_licences, f"{where}.customLicences")
        if tenant.partner is not None and tenant.partner not in partners:
            problems.append(f"{where}.partner: no partner account named '{tenant.partner}' (known: "
                            f"{', '.join(sorted(partners))})")
        given: set[str] = set()
        for p, customer in enumerate(tenant.partner_customers):
            if customer.source not in source_names:
                problems.append(f"{where}.partnerCustomers[{p}].source: no subscription source named "
                                f"'{customer.source}'")
            elif customer.source in given:
                problems.append(f"{where}.partnerCustomers[{p}].source: '{customer.source}' is given twice")
            given.add(customer.source)
        sources: dict[str, list[tuple[int, CompanyLink, LicenceLink]]] = {}
        subscriptions: dict[str, str] = {}
        catch_alls = [c for c, company in enumerate(tenant.companies) if company.catch_all]
        for c in catch_alls[1:]:
            problems.append(f"{where}.companies[{c}].catchAll: companies[{catch_alls[0]}] is already the tenant's "
                            "catch-all; a tenant has at most one")
        if catch_alls and not any(co.user_filter and not co.user_filter.empty for co in tenant.companies):
            problems.append(f"{where}.companies[{catch_alls[0]}].catchAll: a catch-all bills the users no other "
                            "company's filter matches, but no company of this tenant has a user filter")
        for c, company in enumerate(tenant.companies):
            cwhere = f"{where}.companies[{c}]"
            if company.psa not in connections:
                problems.append(f"{cwhere}.psa: no PSA connection named '{company.psa}'")
            for k, licence in enumerate(company.licences):
                lwhere = f"{cwhere}.licences[{k}]"
                sources.setdefault(licence.source, []).append((c, company, licence))
                if licence.profile is not None:
                    linked = config.profile(licence.profile)
                    if linked is None:
                        problems.append(f"{lwhere}.profile: no billing profile named '{licence.profile}'")
                    elif linked.psa != company.psa:
                        problems.append(f"{lwhere}.profile: profile '{linked.name}' bills through "
                                        f"'{linked.psa}', the company through '{company.psa}'")
                elif licence.line_id is None:
                    problems.append(f"{lwhere}: give 'lineId' (an existing PSA line) or 'profile' "
                                    "(so SeatSync can create the line)")
                if licence.custom is not None and config.custom_licence(tenant, licence.custom) is None:
                    problems.append(f"{lwhere}.custom: no custom licence named '{licence.custom}'")
                if licence.sku_id is not None and config.excluded(tenant, licence.sku_id):
                    problems.append(f"{lwhere}.skuId: {licence.sku_id} is excluded from billing and mapped")
                for subscription in licence.subscription_ids:
                    if subscription in subscriptions:
                        problems.append(f"{lwhere}.subscriptionIds: {subscription} is also billed by "
                                        f"{subscriptions[subscription]}")
                    subscriptions.setdefault(subscription, lwhere)
                if licence.line_id is not None:
                    key = (company.psa, licence.line_id)
                    if key in lines:
                        problems.append(f"{lwhere}.lineId: line {licence.line_id} is already billed by "
                                        f"{lines[key]}; one PSA line can bill one licence only")
                    else:
                        lines[key] = lwhere
        for source, uses in sources.items():
            label = source.split("/")[0].removeprefix("sku:").removeprefix("custom:")
            companies = [c for c, _, _ in uses]
            if len(companies) != len(set(companies)):
                problems.append(f"{where}: {label} is mapped twice in one company")
                continue
            if len(uses) > 1:
                for c, company, licence in uses:
                    if licence.ignore_filter:
                        problems.append(f"{where}.companies[{c}]: {label} ignores the user filter but is also "
                                        "billed by another company of the tenant: it would be billed twice")
                    elif (company.user_filter is None or company.user_filter.empty) and not company.catch_all:
                        problems.append(f"{where}.companies[{c}].userFilter: {label} is billed by several "
                                        "companies of the tenant, so each needs a user filter (or is the tenant's "
                                        "catch-all company)")
        whole = {s.split("/")[0] for s in sources if "/sub:" not in s}
        for source in sources:
            if "/sub:" in source and source.split("/")[0] in whole:
                problems.append(f"{where}: {source.split('/')[0].removeprefix('sku:')} is mapped both whole and "
                                "split by subscription")
    return problems


def format_location(location: tuple[int | str, ...], document: Any) -> str:
    """``('tenants', 3, 'companies', 0, 'skuId')`` -> ``tenants[3] (Fabrikam).companies[0].skuId``."""
    text = ""
    node: Any = document
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list | tuple) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str) and "tenantId" in node:
                text += f" ({node['name']})"
        else:
            if str(part).startswith(("function-", "tagged-union")):
                continue
            text += ("." if text else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return text or "(document)"


def parse_config(document: Any, source: str = "configuration") -> SeatSyncConfig:
    """Validate a whole document; raise ``ConfigError`` listing every problem by location."""
    if not isinstance(document, dict):
        raise ConfigError("the document must be a mapping with 'psaConnections' and 'tenants'", source)
    try:
        return SeatSyncConfig.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = format_location(tuple(error["loc"]), document)
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field (check the spelling; fields are camelCase)"
            elif error["type"] == "string_pattern_mismatch":
                pattern = (error.get("ctx") or {}).get("pattern")
                message = (f"{error['input']!r} is not a GUID (like 1f0a5b2c-0001-4a1b-8c2d-000000000001)"
                           if pattern == GUID_PATTERN else
                           f"{error['input']!r} may only hold letters, digits and . _ : -")
            problems.append(f"{where}: {message}")
        raise ConfigError(problems, source) from None


def parse_config_json(text: bytes | str, source: str = "configuration") -> SeatSyncConfig:
    """``parse_config`` of a document's JSON text. A valid document is parsed straight into the
    models, with no tree of dicts in between (for 3,000 tenants that tree took as much memory
    again as the configuration itself); an invalid one is parsed again as ``parse_config`` does,
    whose errors name each place."""
    try:
        return SeatSyncConfig.model_validate_json(text)
    except ValidationError:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"it is not JSON ({exc})", source) from None
        return parse_config(document, source)


def parse_stored_config(text: bytes | str, source: str = "configuration") -> SeatSyncConfig:
    """``parse_config_json(text).compacted()``, reading the tenants one at a time: each is
    validated and kept as its compact JSON before the next is read, so a process never holds
    every tenant's models at once (at 3,000 tenants that was 16 MB for a moment, against 2.3 MB
    kept). The sections other than the tenants are validated together, then the rules that span
    entries over the whole. A document this does not accept as valid (or cannot walk: a key given
    twice, another encoding) is parsed whole again, whose errors name each place."""
    try:
        return _stored_tenant_at_a_time(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (ValueError, _NotReadAlone):  # pydantic's ValidationError and the decoder's errors are ValueErrors
        return parse_config_json(text, source).compacted()


class _NotReadAlone(Exception):
    """A stored document that is read whole instead (its errors are then named)."""


def _stored_tenant_at_a_time(text: str) -> SeatSyncConfig:
    sections: list[str] = []
    tenants = CompactCollector(TenantConfig)
    for member in json_members.members(text, spread="tenants"):
        if member.item:
            tenant = TenantConfig.model_validate_json(member.text)
            tenants.add(tenant, tenant.tenant_id)
            continue
        if member.key == "tenants":
            raise _NotReadAlone  # tenants that are not a list
        sections.append(f"{json.dumps(member.key)}:{member.text}")
    config = SeatSyncConfig.model_validate_json("{" + ",".join(sections) + "}").model_copy(
        update={"tenants": tenants.collected()})
    if consistency_problems(config):
        raise _NotReadAlone
    return config


def dump_config(config: SeatSyncConfig) -> dict[str, Any]:
    """The document form of a configuration (camelCase, defaults left out)."""
    return config.model_dump(mode="json", by_alias=True, exclude_defaults=True)
