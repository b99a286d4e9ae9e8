"""The ports: the only ways the service layer reaches the outside world.

Each port is a small ``Protocol``; adapters in ``shared.adapters`` implement them over HTTP or
Table Storage. The service layer and the pure core never import an adapter, so the same code
runs in Azure, in the local runner and in tests (which use the real adapters against the
emulators and Azurite).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol, runtime_checkable

from shared.domain.lifecycle import GdapRelationship
from shared.domain.model import (
    Agreement,
    AgreementType,
    BilledLine,
    BillingAttributes,
    BillMode,
    ContactDetails,
    CustomerTenant,
    DirectoryUser,
    GroupMember,
    Mailbox,
    ManagedDevice,
    Product,
    PsaCapabilities,
    PsaCompany,
    PsaContact,
    PsaTicket,
    SkuCount,
    Subscription,
    TenantReadout,
    TicketSpec,
)
from shared.domain.partner import PartnerSubscription, SourceCustomer, SourceKind


class CallCounter(Protocol):
    """Adapters count the HTTP requests they send so that a run can report its API cost."""

    @property
    def calls(self) -> int: ...


class GraphPort(CallCounter, Protocol):
    """Microsoft Graph, seen from the partner tenant and from each customer tenant.

    Every method reads everything or raises (``GraphError``/``GraphAuthError``/
    ``IncompleteReadError``): a partial list is never returned.
    """

    def list_customer_tenants(self) -> list[CustomerTenant]:
        """The partner tenant's GDAP customers (``delegatedAdminCustomers``)."""
        ...

    def list_gdap_relationships(self) -> list[GdapRelationship]:
        """The partner tenant's GDAP relationships, whatever their status."""
        ...

    def list_subscribed_skus(self, tenant_id: str) -> list[SkuCount]: ...

    def list_users(self, tenant_id: str) -> list[DirectoryUser]: ...

    def list_subscriptions(self, tenant_id: str) -> list[Subscription]: ...

    def list_group_members(self, tenant_id: str, group_id: str) -> list[GroupMember]: ...

    def list_mailboxes(self, tenant_id: str) -> list[Mailbox]: ...

    def list_managed_devices(self, tenant_id: str) -> list[ManagedDevice]: ...

    def collect_tenant(self, tenant_id: str, *, group_ids: Iterable[str] = (), mailboxes: bool = False,
                       managed_devices: bool = False, sign_ins: bool = False) -> TenantReadout:
        """Licences, users and subscriptions, plus the groups, mailboxes, devices and users'
        sign-ins asked for, in as few requests as Graph allows."""
        ...


@dataclass(frozen=True)
class NewLine:
    """A billed line SeatSync creates (a licence's line on an agreement, or a prorate line)."""

    agreement_id: str
    product_id: str
    quantity: int
    effective_date: date
    unit_price: Decimal | None = None
    unit_cost: Decimal | None = None
    bill_mode: BillMode = BillMode.BILLABLE
    description: str = ""
    invoice_description: str = ""
    end_date: date | None = None
    tag: str | None = None
    # The base line's (or, with none, the product's) billing attributes the new line takes over;
    # None: the PSA's own defaults for the product.
    billing: BillingAttributes | None = None


class PsaPort(CallCounter, Protocol):
    """A PSA connection (ConnectWise PSA, Autotask or HaloPSA).

    Identifiers are strings whatever the PSA. Reads return everything or raise ``PsaError``;
    writes raise ``PsaError`` naming the record. A write that may or may not have happened
    (a timeout on a create) raises; the caller reads the PSA before trying again.
    """

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> PsaCapabilities: ...

    # reads
    def list_companies(self) -> list[PsaCompany]: ...

    def list_contacts(self, company_id: str | None = None) -> list[PsaContact]: ...

    def list_products(self) -> list[Product]: ...

    def get_product(self, product_id: str) -> Product: ...

    def get_products(self, product_ids: Iterable[str]) -> list[Product]:
        """The products that exist among the ids (missing ones are simply absent), in as few
        requests as the PSA allows."""
        ...

    def list_agreement_types(self) -> list[AgreementType]: ...

    def get_agreement(self, agreement_id: str) -> Agreement: ...

    def get_agreements(self, agreement_ids: Iterable[str]) -> list[Agreement]:
        """The agreements that exist among the ids (missing ones are simply absent), in as few
        requests as the PSA allows."""
        ...

    def list_agreements(self, company_id: str) -> list[Agreement]: ...

    def list_lines(self, agreement_ids: Iterable[str], *, known: Iterable[Agreement] = ()) -> list[BilledLine]:
        """The lines of the agreements; ``known``: agreements already read (what the PSA would be
        asked again about them, such as their company, is taken from there)."""
        ...

    def get_line(self, agreement_id: str, line_id: str) -> BilledLine: ...

    # writes
    def set_quantity(self, line: BilledLine, quantity: int, effective_date: date) -> BilledLine: ...

    def create_line(self, line: NewLine) -> BilledLine: ...

    def update_line(self, line: BilledLine, *, invoice_description: str | None = None,
                    unit_price: Decimal | None = None) -> BilledLine: ...

    def create_contact(self, company_id: str, details: ContactDetails) -> PsaContact:
        """A new, active contact of the company with the fields given (those the PSA takes, see
        ``PsaCapabilities.contact_fields``). A create that may or may not have happened raises;
        the caller reads the company's contacts before trying again."""
        ...

    def update_contact(self, contact: PsaContact, details: ContactDetails, *,
                       active: bool | None = None) -> PsaContact:
        """Write the fields given (None leaves a field as the PSA holds it) and, when ``active`` is
        not None, activate or deactivate the contact (never delete it)."""
        ...


@runtime_checkable
class TicketPort(Protocol):
    """Service tickets in a PSA, for alerts (ConnectWise service tickets on a board, Autotask
    tickets in a queue, HaloPSA tickets of a type). Every ticket SeatSync opens ends its summary
    with a marker, so that it is found again when SeatSync's own record of it is lost."""

    def find_ticket(self, spec: TicketSpec, marker: str, *, closed: bool = False) -> PsaTicket | None:
        """The open ticket of ``spec``'s board/queue/type whose summary ends with ``marker`` (the
        lowest id when several do), else None; with ``closed``, the newest such ticket (highest
        id), open or closed. The PSA is searched for the marker's text without its brackets (a
        wildcard in the SQL patterns behind the PSAs' searches), and the summary's end compared
        here."""
        ...

    def get_ticket(self, spec: TicketSpec, ticket_id: str) -> PsaTicket | None:
        """The ticket, or None when the PSA no longer has it."""
        ...

    def open_ticket(self, spec: TicketSpec, company_id: str, summary: str, details: str, marker: str) -> PsaTicket:
        """A new ticket of the company whose summary is ``summary`` followed by ``marker``. A create
        that may or may not have happened raises; the caller looks for the marker before trying
        again."""
        ...

    def note_ticket(self, spec: TicketSpec, ticket: PsaTicket, text: str) -> None:
        """Add a note to the ticket."""
        ...

    def close_ticket(self, spec: TicketSpec, ticket: PsaTicket, text: str) -> PsaTicket:
        """Add ``text`` as a note and give the ticket the closed status; the ticket as read back."""
        ...


class SubscriptionSourcePort(CallCounter, Protocol):
    """A subscription source: the partner side of customers' subscriptions (Microsoft Partner
    Center, Pax8). Reads return everything or raise ``SourceError`` (``SourceAuthError`` when no
    token can be had); a partial list is never returned."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> SourceKind: ...

    def list_customers(self) -> list[SourceCustomer]: ...

    def list_subscriptions(self, customer_id: str) -> list[PartnerSubscription]:
        """One customer's subscriptions, with the cost where the source gives it."""
        ...

    def list_all_subscriptions(self) -> list[PartnerSubscription] | None:
        """Every customer's subscriptions in one listing, where the source has one (None: read
        them customer by customer)."""
        ...

    def subscription_costs(self) -> dict[str, tuple[Decimal, str]]:
        """Per subscription id, what one seat costs the partner for one billing period and the
        currency, where the source gives costs apart from subscriptions (else empty)."""
        ...


class Clock(Protocol):
    """Wall-clock time for activities (never used by orchestrators, which use the context)."""

    def now(self) -> object: ...


class SecretReader(Protocol):
    """Resolves a secret reference (an app setting name or a Key Vault secret name)."""

    def get(self, reference: str) -> str: ...


__all__: Sequence[str] = (
    "CallCounter",
    "Clock",
    "GraphPort",
    "NewLine",
    "PsaPort",
    "SecretReader",
    "SubscriptionSourcePort",
    "TicketPort",
)
