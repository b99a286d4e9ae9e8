"""What each mapped licence should bill: quantities, user names and descriptions, from a
tenant's snapshot and its configuration. Pure code, no I/O.

Counting rules (docs/billing-rules.md explains them with examples):
- count basis *assigned*: Microsoft's ``consumedUnits`` for a whole tenant (disabled accounts
  included, as Microsoft counts them); the users holding the licence when a company's user filter
  applies (filters split a tenant between companies; a *catch-all* company counts the users no
  other company's filter matches);
- count basis *purchased*: ``prepaidUnits.enabled``, or the ``totalLicenses`` of the mapped
  subscriptions when a licence is split by subscription;
- a licence split by subscription shares its assigned seats between its mappings in the order
  they are configured, each up to its subscriptions' size, the last taking any excess;
- custom licences count mailboxes, the seats of one or several licences, Entra users, group
  members or Intune devices;
- then the included quantity is subtracted (never below zero) and the minimum applied;
- where a subscription source sells to the tenant, seats no source sold (bought from Microsoft,
  another partner or by the customer) are not billed: they are taken as the first used (assigned
  basis) and left out of the purchased count, unless the mapping sets ``billSeatsBoughtElsewhere``
  or names the subscriptions it bills (``shared.domain.provenance``).

Every licensed seat is billed exactly once or named: users no mapping of a licence counts (in a
tenant split by filters without a catch-all, or whose catch-all does not bill that licence) are a
``users-unmatched`` problem naming them. Seats that are not active (shared.domain.subscriptions)
and disabled accounts holding a licence are carried on the item for the planner to cap and report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.config.schema import (
    CompanyLink,
    CustomLicence,
    LicenceLink,
    SeatSyncConfig,
    TenantConfig,
    UserFilter,
)
from shared.domain.model import DirectoryUser, SkuCount, Subscription, TenantSnapshot
from shared.domain.problems import Problem, ProblemKind
from shared.domain.provenance import LicenceSource, Provenance, provenance
from shared.domain.sku_names import sku_display_name
from shared.domain.subscriptions import LicenceState, licence_state, subscriptions_state

ACTIVE_SUBSCRIPTION_STATES = frozenset({"enabled", "warning"})
CUSTOM_COUNTS = {"mailboxes": "mailboxes", "licences": "licences assigned", "entra-users": "users",
                 "group-members": "group members", "intune-devices": "devices"}


def mapping_key(tenant: TenantConfig, company: CompanyLink, licence: LicenceLink) -> str:
    """A stable id for one mapping: the same tenant, company, source and agreement keep it
    through configuration edits of the mapping's options."""
    material = "|".join([tenant.tenant_id, company.psa, company.company_id, licence.source, licence.agreement_id])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def _norm(value: str | None) -> str:
    return (value or "").strip().casefold()


def matches(user_filter: UserFilter | None, user: DirectoryUser) -> bool:
    """AND across the fields given, OR within a field's values; case and spaces ignored."""
    if user_filter is None:
        return True
    for values, actual in ((user_filter.office, user.office), (user_filter.department, user.department),
                           (user_filter.city, user.city), (user_filter.state, user.state),
                           (user_filter.country, user.country)):
        if values and _norm(actual) not in {_norm(v) for v in values}:
            return False
    return True


def has_filter(company: CompanyLink) -> bool:
    return company.user_filter is not None and not company.user_filter.empty


def _filtered(company: CompanyLink, licence: LicenceLink) -> bool:
    """Whether the mapping counts only some users: its company's filter, or the users no other
    company's filter matches (a catch-all); ``ignoreFilter`` counts the whole tenant."""
    return (has_filter(company) or company.catch_all) and not licence.ignore_filter


def overlapping_users(tenant: TenantConfig, snapshot: TenantSnapshot) -> list[tuple[DirectoryUser, list[int]]]:
    """Users that match the filters of two or more companies of the tenant (they would be billed
    twice), with the indexes of those companies."""
    filtered = [(i, c) for i, c in enumerate(tenant.companies) if c.user_filter and not c.user_filter.empty]
    if len(filtered) < 2:
        return []
    overlaps = []
    for user in snapshot.users:
        hits = [i for i, company in filtered if matches(company.user_filter, user)]
        if len(hits) > 1:
            overlaps.append((user, hits))
    return overlaps


@dataclass(frozen=True)
class BillableItem:
    """The billable state of one mapping."""

    mapping_key: str
    company: CompanyLink
    licence: LicenceLink
    label: str
    counted: int
    quantity: int
    users: tuple[str, ...] = ()
    purchased: int | None = None
    missing: bool = False
    reason: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    state: LicenceState | None = None
    """Set when some of the licence's seats are not active (warning, suspended, locked out)."""
    active: int | None = None
    """The billed quantity the active seats allow, when ``state`` is set: never raised beyond it."""
    disabled: tuple[str, ...] = ()
    """Disabled accounts (not shared mailboxes) counted by this mapping: Microsoft counts them."""

    @property
    def unassigned(self) -> int | None:
        if self.purchased is None:
            return None
        return max(self.purchased - self.counted, 0)


def _names(users: Iterable[DirectoryUser]) -> tuple[str, ...]:
    return tuple(sorted({u.display_name or u.user_principal_name for u in users}, key=str.casefold))


def _apply_options(licence: LicenceLink, counted: int, what: str) -> tuple[int, str]:
    """The billed quantity and how it was reached, e.g. ``22 assigned, 2 included``."""
    quantity = max(counted - licence.included, 0)
    reason = f"{counted} {what}"
    if licence.included:
        reason += f", {licence.included} included"
    if quantity < licence.minimum:
        quantity = licence.minimum
        reason += f", minimum {licence.minimum}"
    return quantity, reason


class Membership:
    """Which users of a tenant belong to which of its companies: those its user filter matches;
    for a catch-all company, those no other company's filter matches; for a company without a
    filter, every user. Billing counts and contact sync follow it."""

    def __init__(self, tenant: TenantConfig, snapshot: TenantSnapshot) -> None:
        filters = [c.user_filter for c in tenant.companies if has_filter(c)]
        self.claimed = {u.id for u in snapshot.users if any(matches(f, u) for f in filters)}
        """Users some company's filter matches: a catch-all has the others."""

    def belongs(self, company: CompanyLink, user: DirectoryUser) -> bool:
        if company.catch_all:
            return user.id not in self.claimed
        return matches(company.user_filter, user)


class _TenantCounter(Membership):
    """Counts for one tenant, with per-company filtering."""

    def __init__(self, config: SeatSyncConfig, tenant: TenantConfig, snapshot: TenantSnapshot) -> None:
        super().__init__(tenant, snapshot)
        self.config = config
        self.tenant = tenant
        self.snapshot = snapshot
        self.users_by_id = {u.id: u for u in snapshot.users}
        self.users_by_upn = {u.user_principal_name.casefold(): u for u in snapshot.users}

    def people(self, company: CompanyLink, licence: LicenceLink) -> list[DirectoryUser]:
        if not _filtered(company, licence):
            return list(self.snapshot.users)
        return [u for u in self.snapshot.users if self.belongs(company, u)]

    def sku_assigned(self, company: CompanyLink, licence: LicenceLink, sku: SkuCount
                     ) -> tuple[int, list[DirectoryUser]]:
        holders = [u for u in self.people(company, licence) if u.holds(sku.sku_id)]
        if _filtered(company, licence):
            return len(holders), holders
        return sku.consumed, holders

    def custom(self, company: CompanyLink, licence: LicenceLink, definition: CustomLicence
               ) -> tuple[int, list[DirectoryUser], str | None]:
        """(count, users counted, problem)."""
        filtered = _filtered(company, licence)
        if definition.kind == "mailboxes":
            if self.snapshot.mailboxes is None:
                return 0, [], "the mailbox usage report was not read for this tenant"
            mailbox_kinds = {"user": {"user"}, "shared": {"shared"}, "both": {"user", "shared"}}
            wanted = mailbox_kinds[definition.mailbox_type or "both"]
            count, users = 0, []
            for mailbox in self.snapshot.mailboxes:
                if mailbox.is_deleted or mailbox.recipient_type.casefold() not in wanted:
                    continue
                user = self.users_by_upn.get(mailbox.user_principal_name.casefold())
                if filtered and (user is None or not self.belongs(company, user)):
                    continue
                count += 1
                if user is not None:
                    users.append(user)
            return count, users, None
        if definition.kind == "licences":
            total, holders = 0, []
            for sku_id in definition.sku_ids:
                sku = self.snapshot.sku(sku_id)
                if sku is None:
                    continue
                count, users = self.sku_assigned(company, licence, sku)
                total += count
                holders.extend(users)
            return total, holders, None
        if definition.kind == "entra-users":
            people = [u for u in self.people(company, licence) if u.user_type == "Member" and u.account_enabled]
            if definition.scope == "licensed":
                people = [u for u in people if u.sku_ids]
            elif definition.scope == "domain":
                suffix = "@" + (definition.domain or "").casefold()
                people = [u for u in people if u.user_principal_name.casefold().endswith(suffix)]
            return len(people), people, None
        if definition.kind == "group-members":
            members = self.snapshot.groups.get(definition.group_id or "")
            if members is None:
                return 0, [], f"group {definition.group_id} was not read for this tenant"
            member_kinds = {"users": {"user"}, "devices": {"device"}, "both": {"user", "device"}}
            kinds = member_kinds[definition.members or "both"]
            count, users = 0, []
            for member in members:
                if member.kind not in kinds or not member.account_enabled:
                    continue
                if member.kind == "user":
                    user = self.users_by_id.get(member.id)
                    if filtered and (user is None or not self.belongs(company, user)):
                        continue
                    if user is not None:
                        users.append(user)
                count += 1
            return count, users, None
        devices = self.snapshot.managed_devices
        if devices is None:
            return 0, [], "Intune managed devices were not read for this tenant"
        system = _norm(definition.operating_system)
        chosen = [d for d in devices if not system or _norm(d.operating_system).startswith(system)]
        if filtered:
            chosen = [d for d in chosen if d.user_principal_name and
                      (u := self.users_by_upn.get(d.user_principal_name.casefold())) is not None and
                      self.belongs(company, u)]
        return len(chosen), [], None


def mapping_problem(tenant: TenantConfig, company: CompanyLink, licence: LicenceLink, kind: ProblemKind,
                    message: str, label: str, **details: Any) -> Problem:
    """A problem of one mapping, naming its tenant, licence, company, agreement and line."""
    return Problem(kind, tenant.tenant_id, message, source=licence.source, label=label, psa=company.psa,
                   company_id=company.company_id, agreement_id=licence.agreement_id,
                   line_id=details.pop("line_id", licence.line_id), **details)


def billable_items(config: SeatSyncConfig, tenant: TenantConfig, snapshot: TenantSnapshot
                   ) -> tuple[list[BillableItem], list[Problem]]:
    """The billable state of every mapping of a tenant, and what prevents billing some."""
    counter = _TenantCounter(config, tenant, snapshot)
    origins = provenance(snapshot)
    items: list[BillableItem] = []
    problems: list[Problem] = []
    subscriptions = {s.id.lower(): s for s in snapshot.subscriptions}
    shared_mailboxes = {m.user_principal_name.casefold() for m in snapshot.mailboxes or ()
                        if m.recipient_type.casefold() == "shared" and not m.is_deleted}
    for company in tenant.companies:
        split_used: dict[str, int] = {}  # assigned seats of a split SKU already given to earlier mappings
        split_last: dict[str, LicenceLink] = {}
        disabled_named: set[str] = set()  # licences whose disabled holders a mapping already names
        for licence in company.licences:
            if licence.sku_id and licence.subscription_ids:
                split_last[licence.sku_id] = licence
        for licence in company.licences:
            key = mapping_key(tenant, company, licence)
            if licence.custom is not None:
                definition = config.custom_licence(tenant, licence.custom)
                if definition is None:  # validated with the configuration; kept for stored data
                    problems.append(mapping_problem(tenant, company, licence, ProblemKind.COUNT_UNAVAILABLE,
                                                    f"custom licence '{licence.custom}' is not defined",
                                                    licence.custom))
                    continue
                counted, users, trouble = counter.custom(company, licence, definition)
                if trouble is not None:
                    problems.append(mapping_problem(tenant, company, licence, ProblemKind.COUNT_UNAVAILABLE,
                                                    trouble, definition.name))
                    continue
                quantity, reason = _apply_options(licence, counted, CUSTOM_COUNTS[definition.kind])
                items.append(BillableItem(key, company, licence, definition.name, counted, quantity,
                                          _names(users), reason=reason))
                continue
            assert licence.sku_id is not None
            sku = snapshot.sku(licence.sku_id)
            label = sku_display_name(licence.sku_id, sku.sku_part_number if sku else None)
            if sku is None:
                quantity, reason = _apply_options(licence, 0, "assigned")
                items.append(BillableItem(key, company, licence, label, 0, quantity, missing=True,
                                          purchased=0, reason=f"licence no longer in the tenant: {reason}"))
                continue
            assigned, holders = counter.sku_assigned(company, licence, sku)
            purchased = sku.purchased
            what: str = licence.count_basis
            origin = origins.licence(licence.sku_id)
            if origin is not None and origin.elsewhere and not licence.subscription_ids \
                    and not licence.bill_seats_bought_elsewhere:
                if _filtered(company, licence):
                    problems.append(mapping_problem(
                        tenant, company, licence, ProblemKind.SEATS_BOUGHT_ELSEWHERE,
                        f"{origin.elsewhere} of its {origin.purchased} seats were bought elsewhere and the tenant is "
                        "split by user filters, so SeatSync cannot tell whose they are; nothing changed", label))
                    continue
                assigned, purchased, what = _ours_only(origin, assigned, licence.count_basis)
            state = licence_state(sku, snapshot.subscriptions)
            if licence.subscription_ids:
                found = [subscriptions.get(s) for s in licence.subscription_ids]
                unknown = [s for s, sub in zip(licence.subscription_ids, found, strict=True) if sub is None]
                if unknown:
                    problems.append(mapping_problem(tenant, company, licence, ProblemKind.SUBSCRIPTION_NOT_FOUND,
                                                    f"subscription {unknown[0]} was not found in the tenant", label))
                    continue
                mapped: list[Subscription] = [sub for sub in found if sub is not None]
                state = subscriptions_state(mapped)
                purchased = sum(s.total_licenses for s in mapped if s.status.casefold() in ACTIVE_SUBSCRIPTION_STATES)
                used = split_used.get(licence.sku_id, 0)
                remaining = max(assigned - used, 0)
                share = remaining if split_last[licence.sku_id] is licence else min(remaining, purchased)
                split_used[licence.sku_id] = used + share
                assigned = share
            counted = purchased if licence.count_basis == "purchased" else assigned
            quantity, reason = _apply_options(licence, counted, what)
            active = _apply_options(licence, min(counted, state.enabled), "")[0] if state else None
            disabled: tuple[str, ...] = ()
            if licence.sku_id not in disabled_named:
                disabled_named.add(licence.sku_id)
                disabled = tuple(sorted((u.user_principal_name for u in holders if not u.account_enabled
                                         and u.user_principal_name.casefold() not in shared_mailboxes),
                                        key=str.casefold))
            items.append(BillableItem(key, company, licence, label, counted, quantity, _names(holders),
                                      purchased=purchased, reason=reason, state=state, active=active,
                                      disabled=disabled))
    problems.extend(unmatched_users(config, tenant, snapshot, counter))
    return items, problems


def _ours_only(origin: LicenceSource, assigned: int, basis: str) -> tuple[int, int, str]:
    """(assigned, purchased, how counted) leaving out the seats bought elsewhere: those are taken
    as the first used, so the partner's seats are billed only beyond them."""
    elsewhere = origin.elsewhere
    if basis == "purchased":
        return (assigned, origin.ours_quantity,
                f"purchased ({origin.purchased} in the tenant, {elsewhere} bought elsewhere)")
    return (max(assigned - elsewhere, 0), origin.ours_quantity,
            f"assigned ({assigned} in the tenant, {elsewhere} bought elsewhere)")


def unmatched_users(config: SeatSyncConfig, tenant: TenantConfig, snapshot: TenantSnapshot,
                    counter: _TenantCounter | None = None) -> list[Problem]:
    """Users that hold a licence some mapping bills by user filter, but that no mapping of that
    licence counts: nobody would bill their seats. One problem per licence (custom licences
    included), naming the users. A licence counted whole by one of its mappings (no filter, or
    ``ignoreFilter``) has none."""
    counter = counter or _TenantCounter(config, tenant, snapshot)
    by_sku: dict[str, list[tuple[CompanyLink, LicenceLink]]] = {}
    for company in tenant.companies:
        for licence in company.licences:
            if licence.sku_id is not None:
                by_sku.setdefault(licence.sku_id, []).append((company, licence))
    problems = _unmatched_custom(config, tenant, counter)
    for sku_id, mappings in sorted(by_sku.items()):
        if not all(_filtered(company, licence) for company, licence in mappings):
            continue
        counted = {u.id for company, _ in mappings for u in snapshot.users
                   if u.holds(sku_id) and counter.belongs(company, u)}
        missed = sorted((u for u in snapshot.users if u.holds(sku_id) and u.id not in counted),
                        key=lambda u: u.user_principal_name.casefold())
        if not missed:
            continue
        sku = snapshot.sku(sku_id)
        label = sku_display_name(sku_id, sku.sku_part_number if sku else None)
        problems.append(_unmatched_problem(tenant, counter, missed, "hold it", f"sku:{sku_id}", label))
    return problems


def _unmatched_custom(config: SeatSyncConfig, tenant: TenantConfig, counter: _TenantCounter) -> list[Problem]:
    """The same check for custom licences: people the licence counts in the whole tenant (its
    mailboxes' users, the holders of its licences, its Entra users, its group's members) whom no
    mapping of it counts, when every mapping of it counts only some users. Intune devices have
    no user to name and are left to the device count."""
    by_name: dict[str, list[tuple[CompanyLink, LicenceLink]]] = {}
    for company in tenant.companies:
        for licence in company.licences:
            if licence.custom is not None:
                by_name.setdefault(licence.custom, []).append((company, licence))
    problems = []
    for name, mappings in sorted(by_name.items()):
        definition = config.custom_licence(tenant, name)
        if definition is None or definition.kind == "intune-devices" or \
                not all(_filtered(company, licence) for company, licence in mappings):
            continue
        company, licence = mappings[0]
        _, everyone, trouble = counter.custom(company, licence.model_copy(update={"ignore_filter": True}), definition)
        if trouble is not None:
            continue  # what cannot be counted is reported with the mapping
        counted = {u.id for company, licence in mappings for u in counter.custom(company, licence, definition)[1]}
        missed = sorted({u.id: u for u in everyone if u.id not in counted}.values(),
                        key=lambda u: u.user_principal_name.casefold())
        if missed:
            problems.append(_unmatched_problem(
                tenant, counter, missed, f"are counted by custom licence '{definition.name}'", f"custom:{name}",
                definition.name))
    return problems


def _unmatched_problem(tenant: TenantConfig, counter: _TenantCounter, missed: list[DirectoryUser], what: str,
                       source: str, label: str) -> Problem:
    """The ``users-unmatched`` problem naming ``missed``, the users a licence counts (``what``)
    that no mapping of it counts, and why."""
    names = [u.user_principal_name for u in missed]
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    catch_all = next((c for c in tenant.companies if c.catch_all), None)
    unclaimed = any(u.id not in counter.claimed for u in missed)
    if catch_all is not None and unclaimed:
        why = f"the catch-all company {catch_all.psa} {catch_all.company_id} does not bill it"
    elif unclaimed:
        why = "they match no company's user filter and the tenant has no catch-all company"
    else:
        why = "the companies whose filters they match do not bill it"
    return Problem(
        ProblemKind.USERS_UNMATCHED, tenant.tenant_id,
        f"{len(names)} user(s) {what} but no mapping of it counts them ({why}), so nobody bills their seats: "
        f"{shown}", source=source, label=label, users=tuple(names), blocks=False,
        facts=(("Seats nobody bills", str(len(names))),
               ("Their filter fields", "; ".join(_filter_fields(u) for u in missed[:10]))))


def _filter_fields(user: DirectoryUser) -> str:
    """``ana@x: office -, department Sales, city -, state -, country UK`` (blank shown as -)."""
    fields = (("office", user.office), ("department", user.department), ("city", user.city),
              ("state", user.state), ("country", user.country))
    return f"{user.user_principal_name}: " + ", ".join(f"{name} {(value or '').strip() or '-'}"
                                                       for name, value in fields)


def unlinked_licences(config: SeatSyncConfig, tenant: TenantConfig, snapshot: TenantSnapshot) -> list[SkuCount]:
    """Licences of the tenant no mapping bills and no exclusion covers (also catches SKUs new to
    the tenant). Licences with no seats at all are left out."""
    return unmapped(config, tenant, billable_skus(snapshot))


def billable_skus(snapshot: TenantSnapshot) -> list[SkuCount]:
    """The snapshot's licences that a mapping could bill, whatever the configuration: those with
    seats, not all of them bought elsewhere (kept with the tenant's latest snapshot, so that the
    unlinked licences of every tenant are found without reading every snapshot)."""
    origins = provenance(snapshot)
    return [s for s in snapshot.skus if (s.purchased or s.consumed) and not _all_elsewhere(origins, s)]


def unmapped(config: SeatSyncConfig, tenant: TenantConfig, skus: Iterable[SkuCount]) -> list[SkuCount]:
    """Of ``skus``, those no mapping of the tenant bills and no exclusion covers."""
    mapped: set[str] = set()
    for company in tenant.companies:
        for licence in company.licences:
            if licence.sku_id:
                mapped.add(licence.sku_id)
            elif licence.custom:
                definition = config.custom_licence(tenant, licence.custom)
                if definition and definition.kind == "licences":
                    mapped.update(definition.sku_ids)
    return [s for s in skus if s.sku_id not in mapped and not config.excluded(tenant, s.sku_id)]


def _all_elsewhere(origins: Provenance, sku: SkuCount) -> bool:
    origin = origins.licence(sku.sku_id)
    return origin is not None and origin.ours_quantity == 0 and origin.elsewhere > 0


def bought_elsewhere(config: SeatSyncConfig, tenant: TenantConfig, snapshot: TenantSnapshot
                     ) -> list[tuple[SkuCount, LicenceSource]]:
    """Licences of the tenant with seats no configured source sold (shown, never billed unless a
    mapping says so); excluded licences left out."""
    origins = provenance(snapshot)
    found = []
    for sku in snapshot.skus:
        origin = origins.licence(sku.sku_id)
        if origin is not None and origin.elsewhere and not config.excluded(tenant, sku.sku_id):
            found.append((sku, origin))
    return found


def invoice_description(item: BillableItem, base: str, limit: int) -> str:
    """The line's description: the base text, then the users' names (within ``limit`` characters,
    ending with a clear "+N more" when they do not all fit), then unassigned seats."""
    parts = [base.strip()]
    tail = ""
    if item.licence.show_unassigned and item.unassigned is not None:
        tail = f"\nUnassigned: {item.unassigned}"
    if item.licence.include_user_names and item.users:
        head = "\nUsers: "
        room = limit - len(parts[0]) - len(tail) - len(head)
        names = list(item.users)
        shown: list[str] = []
        used = 0
        for index, name in enumerate(names):
            rest = len(names) - index - 1
            suffix = f", +{rest} more" if rest else ""
            cost = len(name) + (2 if shown else 0)
            if used + cost + len(suffix) > room:
                remaining = len(names) - len(shown)
                shown_text = ", ".join(shown)
                more = f"+{remaining} more"
                parts.append(head + (f"{shown_text}, {more}" if shown else more))
                break
            shown.append(name)
            used += cost
        else:
            parts.append(head + ", ".join(shown))
    text = "".join(parts) + tail
    return text[:limit]
