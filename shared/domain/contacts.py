"""Contact sync: the PSA contacts a tenant's licensed users should be, and the writes that get them
there. Pure code, no I/O.

For each company of a tenant with ``syncContacts``, the users that belong to it (its user filter,
or the users no other company's filter matches for a catch-all, or every user of a company without
a filter: ``shared.domain.billing.Membership``) are matched to the company's PSA contacts:

1. by the link SeatSync recorded (``ContactLink``): the contact it created for the user, or the one
   it matched to the user before, as long as the contact is still in the company;
2. then by email address, case-insensitively: the user's ``mail``, then its user principal name,
   then its other SMTP addresses (``proxyAddresses``), each pass over every user before the next,
   so a contact whose address is one user's mail is not taken by another user's alias.

A contact two users claim at the same pass, or a user whose address finds two contacts at once (and
no link says which), is a ``contact-ambiguous`` problem: nothing is written for that user.

Then, per user:

- **licensed** (holds at least one licence not excluded from billing): no contact matched, one is
  created; a contact matched is linked, reactivated if it is inactive, and its fields updated where
  Microsoft has a value that differs. A field Microsoft leaves blank is never written: it never
  overwrites what the PSA holds (a name is only written from the user's given name and surname; a
  new contact takes the display name, split at its last space, when they are blank).
- **not licensed** (no licence, or only licences excluded from billing): a contact SeatSync manages
  (one a link ties to the user) is deactivated, never deleted; any other contact is left alone.

A contact linked to a user who is no longer one of the company's users (deleted from the tenant,
or now matched by another company's filter) is deactivated too. While the tenant is guarded (it left
the partner's customers, or its GDAP relationship ended: ``shared.domain.lifecycle``) nothing is
deactivated: as its billing, its contacts are not lowered until a person has looked. Which contacts SeatSync manages is
its record of links alone: a contact a person made by hand is never deactivated unless SeatSync
matched it to a licensed user it synced (and so linked it), and then it follows that user.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from shared.config.schema import CompanyLink, SeatSyncConfig, TenantConfig
from shared.domain.billing import Membership, overlapping_users
from shared.domain.model import (
    ChangeKind,
    ContactDetails,
    DirectoryUser,
    PlannedChange,
    PsaContact,
    TenantSnapshot,
)
from shared.domain.problems import Problem, ProblemKind

CONTACT_FIELDS = frozenset(ContactDetails.__dataclass_fields__)
"""Every field contact sync can write; each PSA takes some of them (``PsaCapabilities.contact_fields``)."""

CompanyKey = tuple[str, str]
"""(PSA connection, company id)."""


@dataclass(frozen=True)
class ContactLink:
    """SeatSync's record that a PSA contact is the contact of a user: made when SeatSync creates
    the contact, or matches a licensed user to it. A linked contact is one SeatSync manages."""

    psa: str
    company_id: str
    user_id: str
    contact_id: str
    user_principal_name: str = ""
    name: str = ""

    @property
    def company(self) -> CompanyKey:
        return (self.psa, self.company_id)


@dataclass(frozen=True)
class ContactPlan:
    """The contact writes of one tenant, what prevents some, the links to record (users matched to
    a contact this run) and to forget (their contact is gone from the PSA), and how many contacts
    were already right."""

    changes: tuple[PlannedChange, ...] = ()
    problems: tuple[Problem, ...] = ()
    links: tuple[ContactLink, ...] = ()
    forget: tuple[ContactLink, ...] = ()
    unchanged: int = 0


def contact_companies(tenant: TenantConfig) -> list[CompanyLink]:
    """The tenant's companies whose contacts SeatSync keeps."""
    return [company for company in tenant.companies if company.sync_contacts]


def _norm(value: str | None) -> str:
    return (value or "").strip().casefold()


def _digits(value: str | None) -> str:
    return re.sub(r"\D", "", value or "")


def _blank(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def licensed(config: SeatSyncConfig, tenant: TenantConfig, user: DirectoryUser) -> bool:
    """Whether contact sync keeps a contact for the user: it holds a licence not excluded from billing."""
    return any(not config.excluded(tenant, sku) for sku in user.sku_ids)


def user_details(user: DirectoryUser) -> ContactDetails:
    """The contact fields a user gives, None where Microsoft has no value."""
    return ContactDetails(
        first_name=_blank(user.given_name), last_name=_blank(user.surname), email=_blank(user.mail),
        title=_blank(user.job_title), phone=_blank(user.business_phones[0] if user.business_phones else None),
        mobile=_blank(user.mobile_phone))


def new_contact_details(user: DirectoryUser) -> ContactDetails:
    """The fields of a new contact: the user's, with a name from the display name when the given
    name and surname are blank, and the user principal name as the address when there is no mail."""
    details = user_details(user)
    if details.first_name is None and details.last_name is None:
        display = (user.display_name or "").strip()
        first, _, last = display.rpartition(" ")
        details = replace(details, first_name=_blank(first) or _blank(last), last_name=_blank(last) if first else None)
    if details.email is None:
        details = replace(details, email=_blank(user.user_principal_name))
    return details


def differences(wanted: ContactDetails, contact: PsaContact, fields: frozenset[str]) -> ContactDetails:
    """The fields of ``wanted`` (those the PSA takes) whose value differs from what the contact holds;
    a field ``wanted`` leaves blank is never among them. Names and title compare as written, the
    address case-insensitively with the contact's primary one, phone numbers by their digits (a PSA
    may format them its own way)."""
    held = {"first_name": contact.first_name, "last_name": contact.last_name,
            "email": contact.emails[0] if contact.emails else None, "title": contact.title,
            "phone": contact.phone, "mobile": contact.mobile}
    changed: dict[str, str] = {}
    for name, value in wanted.given().items():
        if name not in fields:
            continue
        current = held[name]
        if name == "email":
            same = _norm(current) == _norm(value)
        elif name in ("phone", "mobile"):
            same = _digits(current) == _digits(value)
        else:
            same = (current or "").strip() == value
        if not same:
            changed[name] = value
    return ContactDetails(**changed)


def describe(details: ContactDetails, contact: PsaContact | None = None) -> str:
    """``title 'Buyer' -> 'Head buyer'; mobile '' -> '+44 7700 900123'``."""
    held = {} if contact is None else {
        "first_name": contact.first_name, "last_name": contact.last_name,
        "email": contact.emails[0] if contact.emails else "", "title": contact.title or "",
        "phone": contact.phone or "", "mobile": contact.mobile or ""}
    parts = []
    for name, value in details.given().items():
        label = name.replace("_", " ")
        parts.append(f"{label} '{held.get(name) or ''}' -> '{value}'" if contact is not None else f"{label} '{value}'")
    return "; ".join(parts)


def contact_change_id(tenant_id: str, psa: str, company_id: str, user_id: str, kind: ChangeKind,
                      details: ContactDetails | None, today: date) -> str:
    """Deterministic: the same write of the same user's contact on the same day has the same id, so
    a retried or repeated run finds it in the ledger or the PSA instead of writing it twice."""
    written = "" if details is None else "|".join(f"{k}={v}" for k, v in sorted(details.given().items()))
    material = "|".join([tenant_id, "contact", psa, company_id, user_id, kind.value, written, today.isoformat()])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:24]


@dataclass
class _Matcher:
    """Matches one company's users to its contacts (see the module doc)."""

    users: Sequence[DirectoryUser]
    contacts: Sequence[PsaContact]
    links: Mapping[str, ContactLink]  # the users' own links, by user id
    matched: dict[str, PsaContact] = field(default_factory=dict)  # user id -> contact
    ambiguous: dict[str, str] = field(default_factory=dict)  # user id -> why

    def run(self) -> None:
        by_id = {c.contact_id: c for c in self.contacts}
        taken: set[str] = set()
        for user in self.users:
            link = self.links.get(user.id)
            if link is not None and link.contact_id in by_id and link.contact_id not in taken:
                self.matched[user.id] = by_id[link.contact_id]
                taken.add(link.contact_id)
        linked = {link.contact_id for link in self.links.values()}  # kept for their users, never matched by address
        index: dict[str, list[PsaContact]] = {}
        for contact in self.contacts:
            for address in dict.fromkeys(_norm(e) for e in contact.emails if _norm(e)):
                index.setdefault(address, []).append(contact)
        passes: tuple[tuple[str, Callable[[DirectoryUser], list[str | None]]], ...] = (
            ("mail", lambda u: [u.mail]),
            ("user principal name", lambda u: [u.user_principal_name]),
            ("other address", lambda u: list(u.proxy_addresses)),
        )
        for what, addresses in passes:
            claims: dict[str, list[DirectoryUser]] = {}
            for user in self.users:
                if user.id in self.matched or user.id in self.ambiguous:
                    continue
                found: dict[str, PsaContact] = {}
                for candidate in addresses(user):
                    for contact in index.get(_norm(candidate), []):
                        if contact.contact_id not in taken and contact.contact_id not in linked:
                            found[contact.contact_id] = contact
                if len(found) > 1:
                    active = [c for c in found.values() if not c.inactive]
                    if len(active) == 1:
                        found = {active[0].contact_id: active[0]}
                    else:
                        listed = ", ".join(sorted(found))
                        self.ambiguous[user.id] = f"its {what} is the address of contacts {listed}"
                        continue
                if found:
                    (contact,) = found.values()
                    claims.setdefault(contact.contact_id, []).append(user)
            for contact_id, claimants in claims.items():
                if len(claimants) > 1:
                    names = ", ".join(sorted(u.user_principal_name for u in claimants))
                    for user in claimants:
                        self.ambiguous[user.id] = f"contact {contact_id} has the {what} of several users ({names})"
                    continue
                self.matched[claimants[0].id] = by_id[contact_id]
                taken.add(contact_id)


class _Planner:
    def __init__(self, config: SeatSyncConfig, tenant: TenantConfig, snapshot: TenantSnapshot, today: date,
                 guard: str | None = None) -> None:
        self.guard = guard
        self.config = config
        self.tenant = tenant
        self.snapshot = snapshot
        self.today = today
        self.membership = Membership(tenant, snapshot)
        overlapping = overlapping_users(tenant, snapshot)
        self.overlapping = {user.id for user, _ in overlapping}
        self.changes: list[PlannedChange] = []
        self.problems: list[Problem] = []
        self.links: list[ContactLink] = []
        self.forget: list[ContactLink] = []
        self.unchanged = 0

    def change(self, company: CompanyLink, kind: ChangeKind, user_id: str, label: str, contact_id: str | None,
               details: ContactDetails | None, reason: str) -> None:
        if kind == ChangeKind.DEACTIVATE_CONTACT and self.guard:
            return  # a guarded tenant's contacts are not deactivated (see the module doc)
        identifier = contact_change_id(self.tenant.tenant_id, company.psa, company.company_id, user_id, kind,
                                       details, self.today)
        self.changes.append(PlannedChange(
            change_id=identifier, kind=kind, tenant_id=self.tenant.tenant_id, company_id=company.company_id,
            psa=company.psa, agreement_id="", line_id=contact_id, sku_id=f"contact:{user_id}", old_quantity=None,
            new_quantity=0, reason=reason, mapping_key=f"contact|{company.psa}|{company.company_id}|{user_id}",
            label=label, effective_date=self.today, contact=details))

    def company(self, company: CompanyLink, contacts: Sequence[PsaContact], links: Sequence[ContactLink],
                fields: frozenset[str]) -> None:
        members = [u for u in self.snapshot.users
                   if self.membership.belongs(company, u) and u.id not in self.overlapping]
        member_ids = {u.id for u in members}
        own_links = {link.user_id: link for link in links if link.company == (company.psa, company.company_id)}
        present = {c.contact_id for c in contacts}
        for link in own_links.values():
            if link.contact_id not in present:
                self.forget.append(link)  # the contact is gone from the PSA: the link no longer holds
        live_links = {u: link for u, link in own_links.items() if link.contact_id in present}
        # A contact linked to a user who is no longer the company's can be matched again by address
        # (a user deleted and created anew has a new id): it then follows its new user.
        matcher = _Matcher(members, contacts, {u: link for u, link in live_links.items() if u in member_ids})
        matcher.run()
        claimed = {c.contact_id for c in matcher.matched.values()}
        for user in members:
            label = user.display_name or user.user_principal_name
            if user.id in matcher.ambiguous:
                self.problems.append(Problem(
                    ProblemKind.CONTACT_AMBIGUOUS, self.tenant.tenant_id,
                    f"{user.user_principal_name} cannot be matched to one contact: {matcher.ambiguous[user.id]}",
                    source="contacts", label=label, psa=company.psa, company_id=company.company_id,
                    users=(user.user_principal_name,)))
                continue
            contact = matcher.matched.get(user.id)
            own = live_links.get(user.id)
            if licensed(self.config, self.tenant, user):
                self.licensed_user(company, user, label, contact, own, fields)
            elif contact is not None and own is not None and not contact.inactive:
                self.change(company, ChangeKind.DEACTIVATE_CONTACT, user.id, label, contact.contact_id, None,
                            f"{user.user_principal_name} holds no licence any more: its contact {contact.contact_id} "
                            "is deactivated (not deleted)")
            else:
                self.unchanged += contact is not None
        by_id = {c.contact_id: c for c in contacts}
        for user_id, link in sorted(live_links.items()):
            if user_id in member_ids:
                continue
            if link.contact_id in claimed:
                self.forget.append(link)  # matched to another user of the company now: it follows that user
                continue
            contact = by_id[link.contact_id]
            if contact.inactive:
                self.unchanged += 1
                continue
            gone = "is no longer in the tenant" if not any(u.id == user_id for u in self.snapshot.users) else \
                "no longer belongs to this company (its user filter)"
            self.change(company, ChangeKind.DEACTIVATE_CONTACT, user_id, link.name or contact.name, contact.contact_id,
                        None, f"{link.user_principal_name or user_id} {gone}: its contact {contact.contact_id} is "
                        "deactivated (not deleted)")

    def licensed_user(self, company: CompanyLink, user: DirectoryUser, label: str, contact: PsaContact | None,
                      link: ContactLink | None, fields: frozenset[str]) -> None:
        upn = user.user_principal_name
        if contact is None:
            details = new_contact_details(user)
            kept = ContactDetails(**{k: v for k, v in details.given().items() if k in fields})
            self.change(company, ChangeKind.CREATE_CONTACT, user.id, label, None, kept,
                        f"{upn} is licensed and has no contact in the company: a new contact ({describe(kept)})")
            return
        if link is None or link.contact_id != contact.contact_id:
            self.links.append(ContactLink(company.psa, company.company_id, user.id, contact.contact_id, upn, label))
        changed = differences(user_details(user), contact, fields)
        if contact.inactive:
            self.change(company, ChangeKind.REACTIVATE_CONTACT, user.id, label, contact.contact_id, changed,
                        f"{upn} is licensed again: its contact {contact.contact_id} is reactivated"
                        + (f" ({describe(changed, contact)})" if changed.given() else ""))
        elif changed.given():
            self.change(company, ChangeKind.UPDATE_CONTACT, user.id, label, contact.contact_id, changed,
                        f"{upn}'s contact {contact.contact_id}: {describe(changed, contact)}")
        else:
            self.unchanged += 1


def plan_contacts(config: SeatSyncConfig, tenant: TenantConfig, snapshot: TenantSnapshot,
                  contacts: Mapping[CompanyKey, Sequence[PsaContact]], links: Iterable[ContactLink],
                  fields: Mapping[str, frozenset[str]], today: date,
                  unread: Mapping[CompanyKey, str] | None = None, guard: str | None = None) -> ContactPlan:
    """The contact writes of a tenant (see the module doc). ``contacts`` holds each company's
    contacts as read from the PSA (read completely); a company in ``unread`` (with why) could not
    be read: a ``contacts-not-read`` problem, and nothing is written for it. ``fields`` says which
    contact fields each PSA connection takes; ``guard`` why the tenant is guarded (no contact is
    deactivated then)."""
    planner = _Planner(config, tenant, snapshot, today, guard)
    known = list(links)
    for company in contact_companies(tenant):
        key = (company.psa, company.company_id)
        if unread and key in unread:
            planner.problems.append(Problem(
                ProblemKind.CONTACTS_NOT_READ, tenant.tenant_id,
                f"the contacts of {company.psa} company {company.company_id} could not be read: {unread[key]}",
                source="contacts", label="Contacts", psa=company.psa, company_id=company.company_id))
            continue
        if key not in contacts:
            continue
        planner.company(company, contacts[key], known, fields.get(company.psa, CONTACT_FIELDS))
    return ContactPlan(tuple(planner.changes), tuple(planner.problems), tuple(planner.links), tuple(planner.forget),
                       planner.unchanged)
