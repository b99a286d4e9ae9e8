"""The tenant lifecycle: through which partner account SeatSync reads each tenant, whether the
partner still has the customer, and GDAP relationships that are about to end. Pure code, no I/O.

An MSP may have several partner tenants (several partner accounts, each with its own multi-tenant
app). Each account's GDAP customers and relationships are read at the start of a run
(``PartnerListing``); for every configured tenant ``tenant_access`` then decides, deterministically:

- a tenant added by per-tenant admin consent (``access: consent``) is read with the app of its
  partner account (the one it names, else the first account) and never checked against GDAP;
- a GDAP tenant is read through the first partner account, in configuration order (the app
  settings' account first, then ``partnerAccounts`` in order; only the tenant's own ``partner``
  when it names one), that has a *usable* relationship with it: in force (status ``active``,
  ``expiring``, ``terminationRequested`` or ``terminating``, and its end not passed) and granting
  at least one of the required roles. A customer reachable through two accounts is so read once,
  through the first;
- with no usable relationship the tenant is *guarded*: its decreases are held for a person
  (``guard`` says why). It has vanished (no account lists it any more), its relationships have
  ended (expired or terminated), or they grant none of the required roles. It is still read, with
  the app of the account that knew it (its app-only consent does not depend on GDAP), so increases
  and reports go on;
- when an account's listing could not be read, a tenant it may hold is neither guarded nor called
  vanished: nothing can be said about it (the run reports the unreadable listing).

Relationship ids and role ids are Entra's: ``roleDefinitionId`` is a role template id, the same in
every tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal

from shared.config.partners import ROLE_NAMES, AccessMode

IN_FORCE = frozenset({"active", "expiring", "terminationrequested", "terminating"})
"""Statuses of a relationship whose access still holds (``delegatedAdminRelationshipStatus``)."""
ENDED = frozenset({"expired", "terminated"})
NO_AUTO_EXTENSION = frozenset({"", "pt0s", "p0d"})

Standing = Literal["ok", "consent", "vanished", "ended", "roles-missing", "unknown"]


def role_name(role_id: str) -> str:
    return ROLE_NAMES.get(role_id.lower(), role_id)


@dataclass(frozen=True, slots=True)
class GdapRelationship:
    """A GDAP relationship of a partner (``delegatedAdminRelationship``). The start of a run holds
    one per customer, thousands for a large MSP: slotted, only what a tenant's access and the
    alerts read (not the customer's name: the customer listing has it), its status, extension and
    role ids shared with the partner's other relationships and its customer's id with the customer
    listing (``GraphClient.list_gdap_relationships``)."""

    id: str
    display_name: str
    status: str
    customer_tenant_id: str
    end: datetime | None
    role_ids: tuple[str, ...] = ()
    auto_extend: str = ""
    """``autoExtendDuration`` (``PT0S``/``P0D``: ends at ``end``; ``P180D``: extended automatically)."""

    def in_force(self, now: datetime) -> bool:
        return self.status.casefold() in IN_FORCE and (self.end is None or self.end > now)

    @property
    def extends(self) -> bool:
        return self.auto_extend.casefold() not in NO_AUTO_EXTENSION

    def grants(self, required: Iterable[str]) -> bool:
        wanted = {r.lower() for r in required}
        return any(r.lower() in wanted for r in self.role_ids)


@dataclass(frozen=True)
class PartnerListing:
    """What one partner account's GDAP listing said this run: its customers (tenant id -> name)
    and relationships, or why they could not be read."""

    account: str
    customers: Mapping[str, str]
    relationships: tuple[GdapRelationship, ...] = ()
    error: str | None = None

    @cached_property
    def _by_customer(self) -> dict[str, GdapRelationship | list[GdapRelationship]]:
        """Each customer's relationships: the one relationship itself, as most customers have, or
        a list of them (thousands of customers: no list each)."""
        index: dict[str, GdapRelationship | list[GdapRelationship]] = {}
        for relationship in self.relationships:
            tenant_id = relationship.customer_tenant_id
            found = index.get(tenant_id)
            if found is None:
                index[tenant_id] = relationship
            elif isinstance(found, list):
                found.append(relationship)
            else:
                index[tenant_id] = [found, relationship]
        return index

    def relationships_of(self, tenant_id: str) -> list[GdapRelationship]:
        found = self._by_customer.get(tenant_id)
        if found is None:
            return []
        return list(found) if isinstance(found, list) else [found]

    def knows(self, tenant_id: str) -> bool:
        return tenant_id in self.customers or bool(self.relationships_of(tenant_id))


@dataclass(frozen=True)
class TenantAccess:
    """Through which partner account a tenant is read, and whether its decreases are guarded."""

    partner: str
    standing: Standing
    guard: str | None = None
    """Why the tenant's decreases are held for a person (None: not guarded)."""
    relationship: GdapRelationship | None = None
    """The relationship that makes the access usable (or, when guarded, the last one known)."""

    @property
    def guarded(self) -> bool:
        return self.guard is not None


def _roles(required: Sequence[str]) -> str:
    names = [role_name(r) for r in required]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _day(value: datetime | None) -> str:
    return value.date().isoformat() if value else "an unknown date"


def tenant_access(tenant_id: str, *, access: AccessMode, pinned: str | None, accounts: Sequence[str],
                  listings: Mapping[str, PartnerListing], required_roles: Sequence[str],
                  now: datetime) -> TenantAccess:
    """How to read one configured tenant (see the module doc). ``accounts`` are the partner
    accounts' names in configuration order; ``listings`` what each one's GDAP listing said."""
    tenant_id = tenant_id.lower()
    candidates = [pinned] if pinned else list(accounts)
    first = candidates[0] if candidates else ""
    if access == "consent":
        return TenantAccess(first, "consent")
    readable = [listings[name] for name in candidates if name in listings and listings[name].error is None]
    for listing in readable:
        usable = [r for r in listing.relationships_of(tenant_id) if r.in_force(now) and r.grants(required_roles)]
        if usable:
            best = max(usable, key=lambda r: (r.extends, r.end or datetime.max.replace(tzinfo=now.tzinfo)))
            return TenantAccess(listing.account, "ok", relationship=best)
    unreadable = [name for name in candidates if name not in listings or listings[name].error is not None]
    knowing = [listing for listing in readable if listing.knows(tenant_id)]
    if unreadable:
        # an account whose listing could not be read may hold the tenant: nothing can be said
        return TenantAccess(knowing[0].account if knowing else unreadable[0], "unknown")
    if not knowing:
        where = ", ".join(f"'{name}'" for name in candidates)
        return TenantAccess(
            first, "vanished",
            guard=(f"it is no longer among the GDAP customers of partner account"
                   f"{'s' if len(candidates) > 1 else ''} {where}: the customer may have left, or the "
                   "relationship was removed"))
    listing = knowing[0]
    known = listing.relationships_of(tenant_id)
    if not known:
        return TenantAccess(listing.account, "ok")  # listed as a customer; no relationship of it listed
    in_force = [r for r in known if r.in_force(now)]
    if in_force:
        roles = sorted({role_name(r) for rel in in_force for r in rel.role_ids}) or ["none"]
        return TenantAccess(
            listing.account, "roles-missing", relationship=in_force[0],
            guard=(f"its GDAP relationship with partner account '{listing.account}' grants none of the roles "
                   f"SeatSync needs ({_roles(required_roles)}); it grants {', '.join(roles)}"))
    last = max(known, key=lambda r: r.end or now)
    return TenantAccess(
        listing.account, "ended", relationship=last,
        guard=(f"its GDAP relationship '{last.display_name or last.id}' with partner account "
               f"'{listing.account}' ended on {_day(last.end)} (status {last.status})"))


@dataclass(frozen=True)
class EndingRelationship:
    """A usable relationship of a configured tenant that ends soon and does not extend itself."""

    tenant_id: str
    partner: str
    relationship: GdapRelationship
    days_left: int


def ending_soon(access: TenantAccess, tenant_id: str, listing: PartnerListing | None, now: datetime,
                days: int) -> EndingRelationship | None:
    """The tenant's latest-ending usable relationship when it ends within ``days`` and is not
    extended automatically; None when another relationship lasts longer or extends itself."""
    if access.standing != "ok" or listing is None or access.relationship is None:
        return None
    relationship = access.relationship
    if relationship.extends or relationship.end is None:
        return None
    left = relationship.end - now
    if left > timedelta(days=days):
        return None
    return EndingRelationship(tenant_id.lower(), access.partner, relationship, max(left.days, 0))
