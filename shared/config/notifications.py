"""The ``notifications`` section of the configuration document.

Where alerts and run summaries go (Teams channels through Workflows webhooks, email through
Microsoft Graph ``sendMail``), how often an unchanged alert is repeated (its digest), which
alerts are wanted at all, and which tenants or licences never raise one. With no channel
configured, notifications are only logged.

The section is validated with the rest of the document (``shared.config.schema``), with the same
conventions (``shared.config.base``): camelCase names, unknown fields refused, every problem
naming its field. It lives with the configuration, not in the notifications package, so that the
schema depends only on its own package; ``shared.notifications`` reads it from here.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from shared.config.base import Model, SecretRef
from shared.config.problem_kinds import ProblemKind

AlertKind = Literal[
    "run-failed",
    "writes-recovered",
    "auth-failed",
    "tenant-guarded",
    "billing-problem",
    "changes-held",
    "unlinked-licence",
    "unused-licences",
    "shared-mailbox-licensed",
    "gdap-not-added",
    "gdap-ended",
    "gdap-expiring",
    "inactive-users",
    "reducible-seats",
    "margin-below-floor",
    "renewal-unused",
    "run-summary",
]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
RUN_KINDS: frozenset[AlertKind] = frozenset({"run-failed", "writes-recovered", "run-summary"})
"""Kinds about a whole run rather than a tenant or a licence: exclusions never apply to them."""

Digest = Literal["immediate", "daily", "weekly", "monthly"]

DEFAULT_DIGESTS: dict[AlertKind, Digest] = {
    "run-failed": "immediate",
    "writes-recovered": "immediate",
    "auth-failed": "immediate",
    "tenant-guarded": "daily",
    "billing-problem": "daily",
    "changes-held": "daily",
    "unlinked-licence": "daily",
    "unused-licences": "weekly",
    "shared-mailbox-licensed": "weekly",
    "gdap-not-added": "weekly",
    "gdap-ended": "daily",
    "gdap-expiring": "weekly",
    "inactive-users": "monthly",
    "reducible-seats": "daily",
    "margin-below-floor": "weekly",
    "renewal-unused": "weekly",
    "run-summary": "daily",
}

_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ADDRESS = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


class TeamsChannel(Model):
    """A Teams channel that receives a card through a Workflows webhook ("Post to a channel when
    a webhook request is received")."""

    name: str = Field(description="a short name for the channel, e.g. 'billing' (lower-case, digits, dashes)")
    webhook: SecretRef
    kinds: tuple[AlertKind, ...] = Field(default=(), description="only these alert kinds (empty: all)")
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _CHANNEL_NAME.match(value):
            raise ValueError(f"'{value}' must be lower-case letters, digits and dashes")
        return value


class EmailChannel(Model):
    """Email sent with Microsoft Graph ``sendMail`` from one mailbox of the partner tenant."""

    sender: str = Field(description="the mailbox SeatSync sends as (its UPN or address)")
    recipients: tuple[str, ...] = Field(min_length=1, max_length=100)
    kinds: tuple[AlertKind, ...] = Field(default=(), description="only these alert kinds (empty: all)")
    subject_prefix: str = Field(default="SeatSync", min_length=1, max_length=60)
    enabled: bool = True

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError(f"'{value}' is not an email address")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for address in value:
            if not _ADDRESS.match(address):
                raise ValueError(f"'{address}' is not an email address")
            if address.lower() in seen:
                raise ValueError(f"'{address}' is listed twice")
            seen.add(address.lower())
        return value


class PsaTicketChannel(Model):
    """Alerts as service tickets in a PSA: one ticket per alert kind and tenant, given a note while
    the alert stays open and closed when it clears (``shared.notifications.tickets``). ``psa``
    names a PSA connection; the ticket goes on its ConnectWise board (``boardId``), Autotask queue
    (``queueId``) or HaloPSA ticket type (``ticketTypeId``), for the tenant's company on that
    connection (``companyId`` for alerts about the whole run, and tenants without a company there)."""

    psa: str = Field(description="the name of a PSA connection (psaConnections)")
    board_id: int | None = Field(default=None, ge=1, description="ConnectWise: the service board's id")
    queue_id: int | None = Field(default=None, ge=1, description="Autotask: the queue's id (Tickets.queueID)")
    ticket_type_id: int | None = Field(default=None, ge=1, description="HaloPSA: the ticket type's id")
    company_id: str | None = Field(
        default=None, min_length=1, max_length=40,
        description="the PSA company of tickets about the whole run, or a tenant with no company on this PSA "
                    "(absent: those alerts open no ticket)")
    priority: int | None = Field(default=None, ge=1, description="the priority's id (absent: the PSA's default; "
                                 "Autotask needs one and uses 2, Medium)")
    closed_status: int | None = Field(default=None, ge=1, description="the status that closes a ticket (absent: the "
                                      "board's closed status, Autotask's Complete (5), Halo's Closed (9))")
    kinds: tuple[AlertKind, ...] = Field(default=(), description="only these alert kinds (empty: all but the run "
                                         "summary)")
    enabled: bool = True

    @field_validator("kinds")
    @classmethod
    def _no_summary(cls, value: tuple[AlertKind, ...]) -> tuple[AlertKind, ...]:
        if "run-summary" in value:
            raise ValueError("a run summary is not an alert and opens no ticket: leave run-summary out")
        return value

    @model_validator(mode="after")
    def _one_place(self) -> PsaTicketChannel:
        given = [name for name, value in (("boardId", self.board_id), ("queueId", self.queue_id),
                                          ("ticketTypeId", self.ticket_type_id)) if value is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of boardId (ConnectWise), queueId (Autotask) or ticketTypeId "
                             f"(HaloPSA){': not ' + ' and '.join(given) if given else ''}")
        return self

    @property
    def place(self) -> int:
        """The board, queue or ticket type."""
        return next(v for v in (self.board_id, self.queue_id, self.ticket_type_id) if v is not None)

    @property
    def channel_id(self) -> str:
        return f"psa-tickets:{self.psa}"


class AlertRule(Model):
    """Whether an alert kind is sent, and how often it is repeated while unchanged."""

    enabled: bool = True
    digest: Digest | None = Field(
        default=None, description="immediate, daily, weekly or monthly (absent: the kind's default)")


class UnusedLicencesRule(AlertRule):
    minimum_unused: int = Field(default=1, ge=1, description="alert when at least this many seats are unused")


class MarginFloorRule(AlertRule):
    floor_percent: Decimal = Field(default=Decimal(10), ge=-100, le=100,
                                   description="alert when a licence's margin is below this percentage of its revenue")


class RenewalRule(AlertRule):
    days_before: int = Field(default=30, ge=1, le=365,
                             description="alert about a renewal with unused seats this many days before it falls")


class GdapExpiringRule(AlertRule):
    days_before: int = Field(default=30, ge=1, le=730,
                             description="alert about a GDAP relationship that ends within this many days")


class InactiveUsersRule(AlertRule):
    """Off by default: reading users' sign-ins needs the application permission AuditLog.Read.All
    in each customer tenant, and Microsoft Entra ID P1 or P2 there."""

    enabled: bool = False
    days: int = Field(default=90, ge=1, le=3650,
                      description="a licensed user with no sign-in for this many days is inactive")


class RunFailedRule(AlertRule):
    @field_validator("digest")
    @classmethod
    def _immediate(cls, value: Digest | None) -> Digest | None:
        if value not in (None, "immediate"):
            raise ValueError("run failures are always sent at once: use 'immediate' or leave it out")
        return value


class AlertRules(Model):
    """One entry per alert kind; every field is optional."""

    run_failed: RunFailedRule = RunFailedRule()
    writes_recovered: AlertRule = AlertRule()
    auth_failed: AlertRule = AlertRule()
    tenant_guarded: AlertRule = AlertRule()
    billing_problem: AlertRule = AlertRule()
    changes_held: AlertRule = AlertRule()
    unlinked_licence: AlertRule = AlertRule()
    unused_licences: UnusedLicencesRule = UnusedLicencesRule()
    shared_mailbox_licensed: AlertRule = AlertRule()
    gdap_not_added: AlertRule = AlertRule()
    gdap_ended: AlertRule = AlertRule()
    gdap_expiring: GdapExpiringRule = GdapExpiringRule()
    inactive_users: InactiveUsersRule = InactiveUsersRule()
    reducible_seats: AlertRule = AlertRule()
    margin_below_floor: MarginFloorRule = MarginFloorRule()
    renewal_unused: RenewalRule = RenewalRule()
    run_summary: AlertRule = AlertRule()

    def rule(self, kind: AlertKind) -> AlertRule:
        rule: AlertRule = getattr(self, kind.replace("-", "_"))
        return rule

    def enabled(self, kind: AlertKind) -> bool:
        return self.rule(kind).enabled

    def digest(self, kind: AlertKind) -> Digest:
        return self.rule(kind).digest or DEFAULT_DIGESTS[kind]


class AlertExclusion(Model):
    """No alert about this tenant, this licence (in every tenant), or this licence of this
    tenant; ``kinds`` narrows it to some alert kinds, ``problems`` to some kinds of billing
    problem (excluding a billing problem's alert also acknowledges it: the run no longer needs
    attention because of it)."""

    tenant_id: str | None = Field(default=None, pattern=_GUID)
    sku_id: str | None = Field(default=None, pattern=_GUID)
    kinds: tuple[AlertKind, ...] = ()
    problems: tuple[ProblemKind, ...] = Field(
        default=(), description="only these kinds of billing problem (implies kinds: [billing-problem])")
    note: str | None = Field(default=None, max_length=200)

    @field_validator("tenant_id", "sku_id")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    @model_validator(mode="after")
    def _something(self) -> AlertExclusion:
        if self.tenant_id is None and self.sku_id is None:
            raise ValueError("give 'tenantId', 'skuId' or both")
        run_level = sorted(set(self.kinds) & RUN_KINDS)
        if run_level:
            raise ValueError(f"{', '.join(run_level)} concern a whole run and cannot be excluded per "
                             "tenant or licence; disable them under 'alerts' instead")
        if self.problems and self.kinds and "billing-problem" not in self.kinds:
            raise ValueError("'problems' narrows billing-problem alerts: add billing-problem to 'kinds' or leave "
                             "'kinds' out")
        return self

    def covers(self, kind: AlertKind, tenant_id: str | None, sku_id: str | None,
               problem: ProblemKind | None = None) -> bool:
        if kind in RUN_KINDS or (self.kinds and kind not in self.kinds):
            return False
        if self.problems and (kind != "billing-problem" or problem not in self.problems):
            return False
        if self.tenant_id is not None and (tenant_id or "").lower() != self.tenant_id:
            return False
        return not (self.sku_id is not None and (sku_id or "").lower() != self.sku_id)


class NotificationSettings(Model):
    """Where alerts and run summaries go (no channel: they are only logged)."""

    teams: tuple[TeamsChannel, ...] = ()
    email: EmailChannel | None = None
    psa_tickets: PsaTicketChannel | None = None
    alerts: AlertRules = AlertRules()
    exclusions: tuple[AlertExclusion, ...] = ()
    link_base_url: str | None = Field(
        default=None, description="the base URL of links in alerts (default: the app setting SEATSYNC_PUBLIC_URL)")
    time_zone: str = Field(default="UTC", description="an IANA time zone: when days, weeks and months begin")
    currency: str = Field(default="USD", min_length=1, max_length=8, description="shown with monthly costs")
    card_items: int = Field(default=5, ge=1, le=15, description="items listed per alert group in a Teams card")
    email_items: int = Field(default=100, ge=1, le=2000, description="items listed per alert group in an email")

    @field_validator("teams")
    @classmethod
    def _unique_names(cls, value: tuple[TeamsChannel, ...]) -> tuple[TeamsChannel, ...]:
        names = [channel.name for channel in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"the channel name '{name}' is used twice")
        return value

    @field_validator("link_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an https:// URL (the Function App's address)")
        return value.rstrip("/") if value else value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone (e.g. UTC, Europe/London, "
                             "America/New_York)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def has_channels(self) -> bool:
        return (any(c.enabled for c in self.teams) or (self.email is not None and self.email.enabled)
                or self.tickets_enabled)

    @property
    def tickets_enabled(self) -> bool:
        return self.psa_tickets is not None and self.psa_tickets.enabled

    def excluded(self, kind: AlertKind, tenant_id: str | None, sku_id: str | None = None,
                 problem: ProblemKind | None = None) -> bool:
        return any(rule.covers(kind, tenant_id, sku_id, problem) for rule in self.exclusions)
