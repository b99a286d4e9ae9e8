"""Decisions on decreases: apply now, hold for approval, or defer to the subscription's renewal.
Pure code, no I/O.

The order of the rules (docs/billing-rules.md explains each with an example):
1. a decision already taken for this very decrease (same line, same from and to quantities)
   stands: approved -> apply; rejected -> leave billing as it is;
2. a deferred decrease whose renewal date has come is applied;
3. a large decrease (by default: more than 20 % *and* more than 2 seats, or any decrease to
   zero) is held for approval, whatever else applies;
4. a custom licence (mailboxes, devices, ...) has no Microsoft commitment: applied;
5. within 7 days of a subscription's purchase or renewal Microsoft lets seats be cancelled with
   a refund (NCE): applied;
6. otherwise the mapping's policy: ``apply``, ``hold`` (the default) or ``defer`` to the
   renewal date (held instead when no renewal date is known).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from shared.config.schema import DecreasePolicy, SafetyPolicy, Term
from shared.domain.model import Subscription
from shared.domain.periods import add_months

NCE_CANCELLATION_DAYS = 7
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


@dataclass(frozen=True)
class Deferral:
    hold_key: str
    due: date


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    due: date | None = None


@dataclass(frozen=True)
class Commitment:
    """What the licence's subscriptions allow today."""

    in_cancellation_window: bool
    window_start: date | None
    renewal: date | None


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
    )


def is_large(old: int, new: int, safety: SafetyPolicy) -> bool:
    if new == 0 and old > 0 and safety.hold_decrease_to_zero:
        return True
    drop = old - new
    return drop > safety.hold_decrease_seats and Decimal(drop) * 100 > safety.hold_decrease_percent * old


def decide(*, old: int, new: int, key: str, custom: bool, policy: DecreasePolicy, safety: SafetyPolicy,
           terms: Commitment | None, approval: Approval | None, deferral: Deferral | None,
           today: date) -> Decision:
    """What to do with a decrease of a line from ``old`` to ``new`` seats."""
    if approval is not None and approval.hold_key == key:
        who = f" by {approval.decided_by}" if approval.decided_by else ""
        if approval.status == "approved":
            return Decision(Verdict.APPLY, f"approved{who}")
        if approval.status == "rejected":
            return Decision(Verdict.REJECTED, f"rejected{who}; billing stays at {old}")
    if deferral is not None and deferral.hold_key == key and deferral.due <= today:
        return Decision(Verdict.APPLY, f"deferred decrease due at the renewal on {deferral.due}")
    if is_large(old, new, safety):
        drop = old - new
        share = (Decimal(drop) * 100 / old).quantize(Decimal(1)) if old else Decimal(100)
        return Decision(Verdict.HOLD, f"a decrease of {drop} seats ({share}%) needs approval")
    if custom:
        return Decision(Verdict.APPLY, "custom licence: no Microsoft commitment")
    if terms is not None and terms.in_cancellation_window:
        return Decision(Verdict.APPLY, f"within {NCE_CANCELLATION_DAYS} days of the subscription's purchase or "
                                       f"renewal on {terms.window_start}: Microsoft refunds the seats")
    renewal = terms.renewal if terms else None
    if policy == "apply":
        return Decision(Verdict.APPLY, "the mapping applies decreases at once")
    if policy == "defer":
        if renewal is not None:
            return Decision(Verdict.DEFER, f"Microsoft bills the seats until the renewal on {renewal}", due=renewal)
        return Decision(Verdict.HOLD, "deferral asked but the renewal date is unknown: held for approval")
    return Decision(Verdict.HOLD, "outside the subscription's cancellation window: held for approval"
                    + (f" (renews {renewal})" if renewal else ""))
