"""Decisions on decreases: apply now, hold for approval, or defer to the subscription's renewal.
Pure code, no I/O.

The order of the rules (docs/billing-rules.md explains each with an example):
1. a decision already taken for this very decrease (same line, same from and to quantities)
   stands: approved -> apply; rejected -> leave billing as it is;
   a guarded tenant (its partner no longer holds it, or its GDAP relationship ended or lacks the
   roles: shared.domain.lifecycle) holds every other decrease for approval, with the reason;
2. a deferred decrease whose renewal date has come is applied;
3. a large decrease (by default: more than 20 % *and* more than 2 seats, or any decrease to
   zero) is held for approval, whatever else applies;
4. a custom licence (mailboxes, devices, ...) has no Microsoft commitment: applied;
5. within 7 days of a subscription's purchase or renewal Microsoft lets seats be cancelled with
   a refund (NCE): applied (when a subscription source says how many seats can still be
   reduced, only a decrease within that number);
6. otherwise the mapping's policy: ``apply``, ``hold`` (the default) or ``defer`` to the
   renewal date (held instead when no renewal date is known).

The dates come from the partner side when a subscription source sells the licence (the real
term, its start or last renewal and its commitment end: ``partner_commitment``); otherwise from
the tenant's subscriptions and the mapping's declared ``subscriptionTerm`` (``commitment``).
Every reason names which one was used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from shared.config.schema import DecreasePolicy, SafetyPolicy, Term
from shared.domain.model import Subscription
from shared.domain.partner import NCE_REDUCTION_DAYS, PartnerSubscription
from shared.domain.periods import add_months

NCE_CANCELLATION_DAYS = NCE_REDUCTION_DAYS
ACTIVE = frozenset({"enabled", "warning"})


class Verdict(StrEnum):
    APPLY = "apply"
    HOLD = "hold"
    DEFER = "defer"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Approval:
    """A decision recorded for a held decrease."""

    hold_key: str
    status: Literal["pending", "approved", "rejected", "superseded"]
    old_quantity: int
    new_quantity: int
    decided_by: str | None = None
    decided_at: datetime | None = None
    mapping_key: str = ""  # the licence mapping the decrease is of ("": not known, never found stale)


@dataclass(frozen=True)
class Deferral:
    hold_key: str
    due: date
    mapping_key: str = ""  # as for Approval


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    due: date | None = None


@dataclass(frozen=True)
class Commitment:
    """What the licence's subscriptions allow today. ``basis`` says where the dates come from
    (a subscription source, or the declared term); ``deadline`` is the last day seats can still
    be reduced with a refund and ``refundable`` how many (None: not known)."""

    in_cancellation_window: bool
    window_start: date | None
    renewal: date | None
    basis: str = "declared annual term"
    deadline: date | None = None
    refundable: int | None = None


def hold_key(tenant_id: str, mapping_key: str, agreement_id: str, line: str, old: int, new: int) -> str:
    material = "|".join([tenant_id, mapping_key, agreement_id, line, str(old), str(new)])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:24]


def _last_start(subscription: Subscription, term: Term, today: date) -> date | None:
    """The latest purchase or renewal date on or before today."""
    created = subscription.created.date() if subscription.created else None
    renewal = subscription.next_lifecycle.date() if subscription.next_lifecycle else None
    candidates: list[date] = []
    if created and created <= today:
        candidates.append(created)
    if renewal is not None:
        step = 1 if term == "monthly" else 12
        previous = add_months(renewal, -step)
        while previous > today:
            previous = add_months(previous, -step)
        if created is None or previous >= created:
            candidates.append(previous)
    return max(candidates) if candidates else None


def commitment(subscriptions: Iterable[Subscription], term: Term, today: date) -> Commitment:
    """Whether seats of these subscriptions can be cancelled today, and when they renew."""
    active = [s for s in subscriptions if s.status.casefold() in ACTIVE and not s.is_trial]
    starts = [start for s in active if (start := _last_start(s, term, today)) is not None]
    within = [start for start in starts if 0 <= (today - start).days < NCE_CANCELLATION_DAYS]
    renewals = [s.next_lifecycle.date() for s in active if s.next_lifecycle and s.next_lifecycle.date() >= today]
    return Commitment(
        in_cancellation_window=bool(within),
        window_start=max(within) if within else (max(starts) if starts else None),
        renewal=min(renewals) if renewals else None,
        basis=f"declared {term} term",
        deadline=max(within) + timedelta(days=NCE_CANCELLATION_DAYS - 1) if within else None,
    )


def partner_commitment(subscriptions: Iterable[PartnerSubscription], today: date) -> Commitment | None:
    """What the partner side says the licence's subscriptions allow today: the window counts
    from each subscription's real start or last renewal; where the source lists the seats that
    can still be reduced (Partner Center's ``refundableQuantity``) those decide, each until its
    own time. None when no active subscription gives a term start."""
    active = [s for s in subscriptions if s.active and not s.trial]
    starts = [(start, s) for s in active if (start := s.term_start) is not None and start <= today]
    if not starts:
        return None
    open_windows = [(start, s) for start, s in starts if 0 <= (today - start).days < NCE_CANCELLATION_DAYS]
    refundable: int | None = 0
    deadlines: list[date] = []
    in_window = False
    for sub in active:
        if sub.refundable is None:
            continue
        still = [r for r in sub.refundable if r.quantity > 0 and r.last_day >= today]
        if still:
            in_window = True
            refundable = (refundable or 0) + sum(r.quantity for r in still)
            deadlines += [r.last_day for r in still]
    for start, sub in open_windows:
        if sub.refundable is None:  # the source does not say which seats: the whole renewal counts
            in_window = True
            refundable = None
            deadlines.append(start + timedelta(days=NCE_CANCELLATION_DAYS - 1))
    renewals = [r for s in active if (r := s.renewal) is not None and r >= today]
    latest = max(starts, key=lambda pair: pair[0])
    opened = [start for start, _ in open_windows]
    return Commitment(
        in_cancellation_window=in_window,
        window_start=max(opened) if opened else latest[0],
        renewal=min(renewals) if renewals else None,
        basis="; ".join(dict.fromkeys(s.describe_term() for s in active)),
        deadline=min(deadlines) if deadlines else None,
        refundable=refundable if in_window else 0,
    )


def is_large(old: int, new: int, safety: SafetyPolicy) -> bool:
    if new == 0 and old > 0 and safety.hold_decrease_to_zero:
        return True
    drop = old - new
    return drop > safety.hold_decrease_seats and Decimal(drop) * 100 > safety.hold_decrease_percent * old


def decide(*, old: int, new: int, key: str, custom: bool, policy: DecreasePolicy, safety: SafetyPolicy,
           terms: Commitment | None, approval: Approval | None, deferral: Deferral | None,
           today: date, guard: str | None = None) -> Decision:
    """What to do with a decrease of a line from ``old`` to ``new`` seats; ``guard`` says why the
    tenant's decreases all wait for a person."""
    if approval is not None and approval.hold_key == key:
        who = f" by {approval.decided_by}" if approval.decided_by else ""
        if approval.status == "approved":
            return Decision(Verdict.APPLY, f"approved{who}")
        if approval.status == "rejected":
            return Decision(Verdict.REJECTED, f"rejected{who}; billing stays at {old}")
    if guard:
        return Decision(Verdict.HOLD, f"held for approval: {guard}; nothing is lowered until a person approves")
    if deferral is not None and deferral.hold_key == key and deferral.due <= today:
        return Decision(Verdict.APPLY, f"deferred decrease due at the renewal on {deferral.due}")
    if is_large(old, new, safety):
        drop = old - new
        share = (Decimal(drop) * 100 / old).quantize(Decimal(1)) if old else Decimal(100)
        return Decision(Verdict.HOLD, f"a decrease of {drop} seats ({share}%) needs approval")
    if custom:
        return Decision(Verdict.APPLY, "custom licence: no Microsoft commitment")
    basis = f" [{terms.basis}]" if terms is not None else ""
    note = ""
    if terms is not None and terms.in_cancellation_window:
        until = f" until {terms.deadline}" if terms.deadline else ""
        if terms.refundable is None or old - new <= terms.refundable:
            return Decision(Verdict.APPLY, f"within {NCE_CANCELLATION_DAYS} days of the subscription's purchase "
                                           f"or renewal on {terms.window_start}: Microsoft refunds the seats"
                                           f"{until}{basis}")
        note = f"; only {terms.refundable} of the {old - new} seats can still be reduced{until}"
    renewal = terms.renewal if terms else None
    if policy == "apply":
        return Decision(Verdict.APPLY, f"the mapping applies decreases at once{note}{basis}")
    if policy == "defer":
        if renewal is not None:
            return Decision(Verdict.DEFER, f"Microsoft bills the seats until the renewal on {renewal}{note}{basis}",
                            due=renewal)
        return Decision(Verdict.HOLD, f"deferral asked but the renewal date is unknown: held for approval{note}{basis}")
    return Decision(Verdict.HOLD, "outside the subscription's cancellation window: held for approval"
                    + (f" (renews {renewal})" if renewal else "") + note + basis)
