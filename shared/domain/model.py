"""Value objects of the billing domain.

Everything here is plain data with no I/O: the Microsoft side (what a tenant holds), the
PSA side (what is billed) and the plan that reconciles the two. Quantities are integers,
money is ``Decimal`` and instants are timezone-aware UTC, so that nothing is rounded or
shifted on its way between Graph, Table Storage and a PSA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from shared.domain.partner import PartnerFacts


def require_utc(value: datetime, what: str) -> datetime:
    """Reject naive datetimes: a billing date that silently shifts by a timezone is a wrong bill."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value


# --------------------------------------------------------------------------- bounds of stored numbers

MAX_COUNT = 2**31 - 1
"""The largest count or quantity SeatSync takes: Table Storage stores counts as Int32, and no
tenant holds two billion seats. Larger values are impossible data, refused where they are read."""

MAX_PRICE = Decimal(10) ** 9
"""The largest unit price or cost (in absolute value) SeatSync takes from a PSA: a billion per
seat. A larger one cannot be a real price, and multiplied by seats and days it would exceed the
28 digits of exact arithmetic; refused where it is read."""


def count_problem(value: object) -> str | None:
    """Why ``value`` is not a count SeatSync can take (a whole number from 0 to ``MAX_COUNT``),
    naming it; None when it is one. ``5.0`` is whole; ``true``, ``"5"``, ``5.5``, ``NaN`` and
    ``-1`` are not."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return f"is {value!r}, not a number"
    if isinstance(value, float | Decimal) and not (value == value and abs(value) != float("inf")):
        return f"is {value!r}, not a finite number"
    if value != int(value):
        return f"is {value!r}, not a whole number"
    if not 0 <= value <= MAX_COUNT:
        return f"is {value!r}, outside 0 to {MAX_COUNT}"
    return None


def _require_counts(record: object, *names: str) -> None:
    for name in names:
        problem = count_problem(getattr(record, name))
        if problem is not None or not isinstance(getattr(record, name), int):
            raise ValueError(f"{type(record).__name__}.{name} {problem or 'must be an int'}")


# --------------------------------------------------------------------------- Microsoft side


@dataclass(frozen=True)
class CustomerTenant:
    """A customer of the partner, as GDAP lists it."""

    tenant_id: str
    display_name: str
    default_domain: str | None = None
    domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class SkuCount:
    """One licence of a tenant (``subscribedSkus``).

    ``purchased`` is ``prepaidUnits.enabled``: the seats the customer can use and is billed for
    by Microsoft. ``consumed`` is Graph's ``consumedUnits``.
    """

    sku_id: str
    sku_part_number: str
    purchased: int
    consumed: int
    suspended: int = 0
    warning: int = 0
    locked_out: int = 0
    capability_status: str = "Enabled"
    applies_to: str = "User"

    def __post_init__(self) -> None:
        _require_counts(self, "purchased", "consumed", "suspended", "warning", "locked_out")


@dataclass(frozen=True)
class DirectoryUser:
    """A user of a tenant with the fields billing, filters and contact sync need.

    ``proxy_addresses`` are the user's SMTP addresses (``proxyAddresses`` without their ``smtp:``
    prefix); ``business_phones`` Graph's ``businessPhones``."""

    id: str
    user_principal_name: str
    display_name: str
    account_enabled: bool = True
    user_type: str = "Member"
    sku_ids: tuple[str, ...] = ()
    mail: str | None = None
    office: str | None = None
    department: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    mobile_phone: str | None = None
    business_phones: tuple[str, ...] = ()
    proxy_addresses: tuple[str, ...] = ()

    def holds(self, sku_id: str) -> bool:
        return sku_id in self.sku_ids


@dataclass(frozen=True)
class Subscription:
    """A commerce subscription of a tenant (``directory/subscriptions``)."""

    id: str
    sku_id: str
    sku_part_number: str
    total_licenses: int
    status: str
    is_trial: bool = False
    created: datetime | None = None
    next_lifecycle: datetime | None = None
    commerce_subscription_id: str | None = None

    def __post_init__(self) -> None:
        _require_counts(self, "total_licenses")


@dataclass(frozen=True)
class GroupMember:
    """A transitive member of an Entra group."""

    id: str
    kind: str  # "user" or "device"
    display_name: str = ""
    account_enabled: bool = True


@dataclass(frozen=True)
class Mailbox:
    """A mailbox from the mailbox usage report."""

    user_principal_name: str
    display_name: str
    recipient_type: str  # "User", "Shared", ...
    is_deleted: bool = False


@dataclass(frozen=True)
class ManagedDevice:
    """An Intune managed device."""

    id: str
    device_name: str
    operating_system: str = ""
    user_principal_name: str | None = None


@dataclass(frozen=True)
class SignIn:
    """When a user last used their account, as Entra ID records it (``signInActivity``):
    ``last`` is the last successful sign-in where Entra records it (``lastSuccessfulSignInDateTime``,
    since December 2023), else the latest sign-in attempt, interactive or not; None when Entra has
    no sign-in for the user (never signed in, or not since April 2020). ``created`` is when the
    account was created (a new account is not inactive)."""

    user_id: str
    last: datetime | None
    created: datetime | None = None


@dataclass(frozen=True)
class SignIns:
    """The users' sign-ins of a tenant, or why Graph would not give them (``unavailable``: the
    app lacks AuditLog.Read.All, or the tenant has no Microsoft Entra ID P1/P2 licence)."""

    users: tuple[SignIn, ...] = ()
    unavailable: str | None = None

    def of(self, user_id: str) -> SignIn | None:
        return next((s for s in self.users if s.user_id == user_id), None)


@dataclass(frozen=True)
class TenantSnapshot:
    """Everything read from one tenant in one run. Complete by construction: a partial read
    never becomes a snapshot (the collector raises instead)."""

    tenant_id: str
    run_id: str
    collected_at: datetime
    skus: tuple[SkuCount, ...]
    users: tuple[DirectoryUser, ...]
    subscriptions: tuple[Subscription, ...] = ()
    groups: dict[str, tuple[GroupMember, ...]] = field(default_factory=dict)
    mailboxes: tuple[Mailbox, ...] | None = None
    managed_devices: tuple[ManagedDevice, ...] | None = None
    partner: PartnerFacts | None = None
    """What the configured subscription sources say about the tenant (None: none is configured)."""
    sign_ins: SignIns | None = None
    """The users' sign-ins (None: not read, the inactive-users alert is off)."""

    def __post_init__(self) -> None:
        require_utc(self.collected_at, "collected_at")

    def sku(self, sku_id: str) -> SkuCount | None:
        for sku in self.skus:
            if sku.sku_id == sku_id:
                return sku
        return None

    def users_holding(self, sku_id: str) -> tuple[DirectoryUser, ...]:
        return tuple(u for u in self.users if u.holds(sku_id))


@dataclass(frozen=True)
class TenantReadout:
    """Everything read from one tenant in one pass (Graph's ``collect_tenant``), complete by
    construction; becomes a ``TenantSnapshot`` once stamped with the run."""

    tenant_id: str
    skus: tuple[SkuCount, ...]
    users: tuple[DirectoryUser, ...]
    subscriptions: tuple[Subscription, ...]
    groups: dict[str, tuple[GroupMember, ...]] = field(default_factory=dict)
    mailboxes: tuple[Mailbox, ...] | None = None
    managed_devices: tuple[ManagedDevice, ...] | None = None
    sign_ins: SignIns | None = None


# --------------------------------------------------------------------------- PSA side


class BillMode(StrEnum):
    """How a billed line is charged (ConnectWise ``billCustomer``)."""

    BILLABLE = "billable"
    DO_NOT_BILL = "do-not-bill"
    NO_CHARGE = "no-charge"


@dataclass(frozen=True, slots=True)
class Agreement:
    """A recurring agreement (ConnectWise agreement, Autotask contract, Halo contract). Slotted:
    a run's pushes share every agreement of the run (thousands for a large MSP) in each process."""

    psa: str
    agreement_id: str
    company_id: str
    name: str
    type_name: str = ""
    active: bool = True
    prorate: bool = False
    billing_cycle: str = "monthly"  # "monthly" or "annual"
    start_date: date | None = None
    end_date: date | None = None
    bill_in_advance: bool = True
    # The first day the PSA has not invoiced yet (ConnectWise ``nextInvoiceDate``, Halo's
    # ``nextcreationdate``): the current period is invoiced when this is after its start. None:
    # the PSA does not say (the connection's setting decides, see ``PsaCapabilities``).
    next_invoice_date: date | None = None


@dataclass(frozen=True)
class BillingAttributes:
    """How a line bills, apart from its product, quantity, prices and bill mode: what a line SeatSync
    creates copies from the line it is based on (a prorate or credit line from its base line) or,
    with no base line, from the product (a licence's new line), so that it is taxed, coded and
    grouped on the invoice as the MSP set up the original.

    Each PSA fills the attributes it has; None means the PSA has no such attribute or did not say:
    ConnectWise: ``taxable`` (taxableFlag), ``invoice_grouping`` (the invoice grouping's id),
    ``unit_of_measure`` (uom), ``purchase_item`` and ``special_order`` (purchaseItemFlag,
    specialOrderFlag). Autotask: ``billing_code`` (the service's billing code, which carries its tax
    category). HaloPSA: ``tax_code`` (the tax rate's id) and ``nominal_code``. Unit cost is the
    line's or product's own field."""

    taxable: bool | None = None
    tax_code: str | None = None
    billing_code: str | None = None
    nominal_code: str | None = None
    invoice_grouping: str | None = None
    unit_of_measure: str | None = None
    purchase_item: bool | None = None
    special_order: bool | None = None


@dataclass(frozen=True)
class BilledLine:
    """A line that bills a quantity to a customer (ConnectWise agreement addition, Autotask
    contract service, Halo recurring invoice line). Identifiers are strings whatever the PSA."""

    psa: str
    line_id: str
    agreement_id: str
    company_id: str
    product_id: str
    product_identifier: str
    quantity: Decimal
    unit_price: Decimal | None = None
    unit_cost: Decimal | None = None
    bill_mode: BillMode = BillMode.BILLABLE
    description: str = ""
    invoice_description: str = ""
    effective_date: date | None = None
    cancelled_date: date | None = None
    tag: str | None = None
    # Seats the PSA charges through the end of the current billing period, where that differs
    # from ``quantity`` (what it bills from the next period on) and the PSA says so: Autotask's
    # units today when a change is scheduled for a later period, Halo's quantity the period was
    # invoiced at plus its pending pro-rata entries. None: the same as ``quantity``.
    period_quantity: Decimal | None = None
    billing: BillingAttributes = BillingAttributes()
    # What the PSA holds that SeatSync cannot take (``quantity is 1E+300, beyond ...``): an
    # impossible quantity reads as 0 and an impossible price as None, so the planner leaves the
    # line and its licence alone and reports it instead.
    unreadable: str | None = None
    # Why the seats the current period is charged for cannot be known although the PSA says the
    # period is invoiced (Halo lists no invoice for it): the planner writes nothing for the line on a
    # guess and reports it instead.
    period_unknown: str | None = None

    @property
    def active(self) -> bool:
        return self.cancelled_date is None


ProrateStyle = Literal["separate-line", "native", "none"]


@dataclass(frozen=True)
class PsaCapabilities:
    """How a PSA bills, as far as the planner must know.

    ``prorate``: ``separate-line`` (a mid-period change is charged by a separate, tagged line for
    the rest of the period: ConnectWise), ``native`` (the PSA prorates a quantity change from its
    effective date itself: Autotask's contract service adjustments), ``none`` (no proration).
    ``description_limit``: characters a line's invoice description holds. ``tag_limit``:
    characters of the field that carries SeatSync's tag (0: the PSA has none, and SeatSync
    recognises its records another way, documented by the adapter). ``invoiced_when_unknown``:
    whether the current billing period counts as invoiced when the PSA does not say
    (``Agreement.next_invoice_date`` is None); the connection's setting, invoiced by default.
    ``contact_fields``: the ``ContactDetails`` fields a contact of the PSA takes (contact sync
    writes only those).
    """

    kind: str
    prorate: ProrateStyle
    description_limit: int
    tag_limit: int
    invoiced_when_unknown: bool = True
    contact_fields: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PsaCompany:
    """A customer company of the PSA."""

    psa: str
    company_id: str
    identifier: str
    name: str
    website: str | None = None
    status: str = "Active"
    deleted: bool = False


@dataclass(frozen=True)
class PsaContact:
    """A contact of a PSA company, with its email addresses (onboarding matches their domains;
    contact sync matches users by them), the first being its primary one. ``phone`` and
    ``mobile`` are its direct and mobile numbers."""

    psa: str
    contact_id: str
    company_id: str
    first_name: str
    last_name: str = ""
    emails: tuple[str, ...] = ()
    inactive: bool = False
    title: str | None = None
    phone: str | None = None
    mobile: str | None = None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class ContactDetails:
    """What contact sync writes to a PSA contact: the fields a Microsoft user gives. None is a
    field Microsoft leaves blank: it is never written, so it never overwrites what the PSA
    holds. ``email`` is the contact's primary address, ``title`` the job title, ``phone`` the
    first of the user's business phones. (The department is not among them: ConnectWise and Halo
    hold a contact's department as a reference to a setup table of their own, Autotask has none.)"""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    title: str | None = None
    phone: str | None = None
    mobile: str | None = None

    def given(self) -> dict[str, str]:
        """The fields with a value, by name."""
        return {name: value for name, value in vars(self).items() if value is not None}


@dataclass(frozen=True)
class TicketSpec:
    """Where alert tickets go in a PSA: the board (ConnectWise), queue (Autotask) or ticket type
    (HaloPSA) ``queue``, with the priority of new tickets and the status that closes one (None:
    the PSA's default priority, and its closed status: the board's closed status on ConnectWise,
    Complete on Autotask, Closed on Halo)."""

    queue: str
    priority: str | None = None
    closed_status: str | None = None


@dataclass(frozen=True)
class PsaTicket:
    """A service ticket as the PSA holds it: ``marker`` is the text SeatSync finds it again by
    (the end of its summary), ``closed`` whether its status is a closed one."""

    psa: str
    ticket_id: str
    company_id: str
    summary: str
    status: str
    closed: bool


@dataclass(frozen=True)
class Product:
    """A product of the PSA's catalogue (ConnectWise catalog item, Autotask service, Halo item)."""

    psa: str
    product_id: str
    identifier: str
    description: str
    price: Decimal | None = None
    cost: Decimal | None = None
    inactive: bool = False
    customer_description: str = ""
    billing: BillingAttributes = BillingAttributes()
    unreadable: str | None = None  # an impossible price or cost (read as None), as on ``BilledLine``


@dataclass(frozen=True)
class AgreementType:
    """A type of agreement (billing profiles name the types they may be used on)."""

    psa: str
    type_id: str
    name: str
    prorate: bool = False
    billing_cycle: str | None = None
    inactive: bool = False


# --------------------------------------------------------------------------- the plan


class ChangeKind(StrEnum):
    CREATE_LINE = "create-line"
    SET_QUANTITY = "set-quantity"
    PRORATE = "prorate"
    CREDIT = "credit"
    SET_DETAILS = "set-details"
    # A not-billed record of the quantity a period was invoiced at (ConnectWise, whose API does
    # not say): written before the first decrease that is not credited, see shared.domain.periods.
    PERIOD_RECORD = "period-record"
    # Contact sync (shared.domain.contacts): a PSA contact created for a licensed user, its fields
    # updated from the user's, deactivated when the user loses every licence or leaves the tenant,
    # reactivated (with its fields brought up to date) when the user is licensed again.
    CREATE_CONTACT = "create-contact"
    UPDATE_CONTACT = "update-contact"
    DEACTIVATE_CONTACT = "deactivate-contact"
    REACTIVATE_CONTACT = "reactivate-contact"


CONTACT_KINDS = frozenset({ChangeKind.CREATE_CONTACT, ChangeKind.UPDATE_CONTACT, ChangeKind.DEACTIVATE_CONTACT,
                           ChangeKind.REACTIVATE_CONTACT})
"""Changes of PSA contacts rather than billed lines: no quantity, no agreement."""


class ChangeStatus(StrEnum):
    PLANNED = "planned"
    APPLIED = "applied"
    DRY_RUN = "dry-run"
    HELD = "held"
    DEFERRED = "deferred"
    REJECTED = "rejected"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    RECOVERED = "recovered"
    """Written to the PSA by an earlier attempt or run whose bookkeeping did not finish; found in
    the PSA and recorded by this run."""


@dataclass(frozen=True)
class PlannedChange:
    """One write the push would make to a PSA, with what it changes from and to and why.

    ``sku_id`` names the billed source: a licence's SKU id, or ``custom:<name>``. For prorate and
    credit lines ``new_quantity`` is the units charged (negative for a credit), ``unit_price``
    the prorated unit price and ``amount`` their product; ``effective_date``..``end_date`` is the
    period charged. ``hold_key`` identifies a decision (approval or deferral) across runs: the
    same decrease of the same line from the same quantity has the same key every day.
    """

    change_id: str
    kind: ChangeKind
    tenant_id: str
    company_id: str
    psa: str
    agreement_id: str
    line_id: str | None
    sku_id: str
    old_quantity: int | None
    new_quantity: int
    reason: str
    status: ChangeStatus = ChangeStatus.PLANNED
    description: str | None = None
    mapping_key: str = ""
    label: str = ""
    product_id: str | None = None
    unit_price: Decimal | None = None
    bill_mode: BillMode | None = None
    effective_date: date | None = None
    end_date: date | None = None
    tag: str | None = None
    amount: Decimal | None = None
    hold_key: str | None = None
    due_date: date | None = None
    unit_cost: Decimal | None = None
    billing: BillingAttributes | None = None
    old_unit_price: Decimal | None = None
    contact: ContactDetails | None = None
    """For a contact change: the fields it writes (``line_id`` is the contact's id, None for a new
    contact; ``agreement_id`` is empty; ``sku_id`` is ``contact:<user id>``)."""

    @property
    def writes(self) -> bool:
        """Whether this change is to be written now."""
        return self.status == ChangeStatus.PLANNED

    @property
    def about_contact(self) -> bool:
        """Whether this change writes a PSA contact (not a billed line)."""
        return self.kind in CONTACT_KINDS
