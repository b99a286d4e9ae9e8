"""How long the current activity may still run.

An activity that runs past the Function App's ``functionTimeout`` is killed (and retried from the
start), so work that may wait, for a PSA's request window or another instance's share of it, is
given a deadline: ``within(seconds)`` sets it for the code that runs inside (the current thread and
context), and the PSA limiters wait at most until shortly before it, raising ``DeadlineReached``
instead of waiting longer. The push stops starting tenants before the deadline and hands the rest
back to the orchestrator, which schedules them in another activity.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from shared.errors import SeatSyncError


class DeadlineReached(SeatSyncError):
    """Waiting longer would take the activity past its deadline: what is left is done by another
    activity. Raised before anything was sent."""


@dataclass(frozen=True)
class Deadline:
    """The moment (on ``clock``, monotonic seconds) the current activity must be done by."""

    at: float
    clock: Callable[[], float] = time.monotonic

    @property
    def remaining(self) -> float:
        return self.at - self.clock()


_current: ContextVar[Deadline | None] = ContextVar("seatsync_deadline", default=None)


@contextmanager
def within(seconds: float | None, clock: Callable[[], float] = time.monotonic) -> Iterator[Deadline | None]:
    """Run the block with a deadline ``seconds`` from now (None: no deadline)."""
    deadline = None if seconds is None else Deadline(clock() + seconds, clock)
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def current() -> Deadline | None:
    return _current.get()


def allowed_wait(wanted: float, margin: float = 5.0) -> float:
    """How much of ``wanted`` seconds of waiting the current deadline allows (all of it without a
    deadline), keeping ``margin`` seconds for the work the wait was for."""
    deadline = _current.get()
    if deadline is None:
        return wanted
    return max(0.0, min(wanted, deadline.remaining - margin))
