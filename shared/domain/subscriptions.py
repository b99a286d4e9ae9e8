"""Seats that are not active: a licence's subscriptions in warning, suspended, locked out or
deleted, and since when. Pure code, no I/O (docs/billing-rules.md, "Subscriptions that are not
active").

Microsoft reports it in two places, and both are read:

- ``subscribedSkus``: ``capabilityStatus`` of the licence (Enabled, Warning, Suspended, Deleted,
  LockedOut) and its seats by state, ``prepaidUnits.enabled``, ``warning`` (expired or unpaid,
  still usable for a grace period), ``suspended`` (no longer usable; data kept) and ``lockedOut``;
- ``directory/subscriptions``: each commerce subscription's ``status`` (Enabled, Warning,
  Suspended, Deleted, LockedOut).

SeatSync never raises a bill because of seats that are not active: only ``enabled`` seats (for a
licence split by subscription, the seats of its Enabled subscriptions) can make a billed quantity
grow. Since when a state holds is found in the licence history SeatSync keeps for every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from shared.domain.model import SkuCount, Subscription

# The states a licence or subscription can be in, worst first.
INACTIVE_STATES = ("LockedOut", "Suspended", "Deleted", "Warning")
_CANONICAL = {state.casefold(): state for state in (*INACTIVE_STATES, "Enabled")}


def canonical_state(value: str) -> str:
    """``suspended`` -> ``Suspended``; an unknown state is kept as Microsoft wrote it."""
    return _CANONICAL.get(value.strip().casefold(), value.strip())


def is_active(status: str) -> bool:
    return canonical_state(status) == "Enabled"


@dataclass(frozen=True)
class LicenceState:
    """Why some seats of a licence are not active: the worst state, the seats in each state and
    the subscriptions that are not Enabled (id, status)."""

    state: str
    enabled: int
    warning: int = 0
    suspended: int = 0
    locked_out: int = 0
    subscriptions: tuple[tuple[str, str], ...] = ()

    @property
    def seats(self) -> str:
        """``20 active, 5 suspended`` (states with no seats left out)."""
        parts = [f"{self.enabled} active"]
        parts += [f"{count} {label}" for count, label in ((self.warning, "in warning"),
                                                          (self.suspended, "suspended"),
                                                          (self.locked_out, "locked out")) if count]
        return ", ".join(parts)


def _worst(states: Iterable[str]) -> str | None:
    found = {canonical_state(s) for s in states}
    for state in INACTIVE_STATES:
        if state in found:
            return state
    others = sorted(found - {"Enabled"})
    return others[0] if others else None


def licence_state(sku: SkuCount, subscriptions: Iterable[Subscription]) -> LicenceState | None:
    """The state of a whole licence, or None when all its seats are active. Trial subscriptions
    are left out: a trial that ends is not a customer's lapsed subscription."""
    lapsed = tuple(sorted((s.id, canonical_state(s.status)) for s in subscriptions
                          if s.sku_id.lower() == sku.sku_id.lower() and not s.is_trial and not is_active(s.status)))
    states = [state for state, seats in (("Warning", sku.warning), ("Suspended", sku.suspended),
                                         ("LockedOut", sku.locked_out)) if seats]
    states += [sku.capability_status] if not is_active(sku.capability_status) else []
    states += [status for _, status in lapsed]
    worst = _worst(states)
    if worst is None:
        return None
    return LicenceState(worst, sku.purchased, sku.warning, sku.suspended, sku.locked_out, lapsed)


def subscriptions_state(mapped: Sequence[Subscription]) -> LicenceState | None:
    """The state of a licence split by subscription: of its mapped subscriptions only."""
    lapsed = tuple(sorted((s.id, canonical_state(s.status)) for s in mapped if not is_active(s.status)))
    worst = _worst(status for _, status in lapsed)
    if worst is None:
        return None
    enabled = sum(s.total_licenses for s in mapped if is_active(s.status))
    by_state = {state: sum(s.total_licenses for s in mapped if canonical_state(s.status) == state)
                for state in INACTIVE_STATES}
    return LicenceState(worst, enabled, by_state["Warning"], by_state["Suspended"] + by_state["Deleted"],
                        by_state["LockedOut"], lapsed)


@dataclass(frozen=True)
class StateRecord:
    """A licence's state as one earlier run recorded it: ``state`` is "" when every seat was
    active, None when that run did not record states."""

    day: date
    state: str | None


@dataclass(frozen=True)
class Since:
    """Since when a state holds: ``exact`` when a run before it recorded the licence active or in
    another state; otherwise the history does not reach further ("since at least")."""

    day: date
    exact: bool

    @property
    def text(self) -> str:
        return self.day.isoformat() if self.exact else f"at least {self.day.isoformat()}"


def state_since(state: str, history: Iterable[StateRecord], today: date) -> Since:
    """The first day of the latest unbroken stretch of runs that recorded ``state``."""
    since = Since(today, exact=False)
    for record in sorted(history, key=lambda r: r.day, reverse=True):
        if record.state is None:
            return Since(since.day, exact=False)
        if canonical_state(record.state) != state:
            return Since(since.day, exact=True)
        since = Since(min(record.day, since.day), exact=False)
    return since
