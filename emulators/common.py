"""What the PSA emulators (ConnectWise, Autotask, HaloPSA) share beyond the base class: the
scenario they run, the clocks tests replace, a sliding window of requests for their rate limits,
and a few date helpers."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from emulators.base import Emulator, Request


class SlidingWindow:
    """The requests counted in a rolling window of time (a rate limit's); thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()
        self.refused = 0

    def admit(self, limit: int, seconds: float, others: int = 0) -> float | None:
        """Count a request made now when fewer than ``limit`` requests (``others`` of them
        counted elsewhere) fall in the last ``seconds``: None. Otherwise count a refusal and
        return how long until the oldest request leaves the window (``math.inf`` when the window
        holds none: ``others`` alone fill the limit)."""
        with self._lock:
            now = self._clock()
            self._prune(now - seconds)
            if len(self._times) + others >= limit:
                self.refused += 1
                return self._times[0] + seconds - now if self._times else math.inf
            self._times.append(now)
            return None

    def count(self, seconds: float) -> int:
        """The requests of the last ``seconds``."""
        with self._lock:
            self._prune(self._clock() - seconds)
            return len(self._times)

    def counted(self) -> int:
        """The requests counted and not pruned yet."""
        with self._lock:
            return len(self._times)

    def clear(self) -> None:
        with self._lock:
            self._times.clear()
            self.refused = 0

    def _prune(self, horizon: float) -> None:
        while self._times and self._times[0] <= horizon:
            self._times.popleft()


def retry_after(wait: float) -> str:
    """A ``Retry-After`` value: the whole seconds of ``wait``, rounded up, at least 1."""
    return str(max(1, math.ceil(wait)))


class DatedScenario(Protocol):
    @property
    def today(self) -> date | None: ...


S = TypeVar("S", bound=DatedScenario)


class PsaEmulator(Emulator, Generic[S]):
    """A PSA emulator: ``root`` names its scenario section; ``clock`` is the monotonic clock of
    its rate limit and token expiry (tests pass a fake one), ``now`` the wall clock of ``today``
    when the scenario sets none."""

    root: ClassVar[str]
    scenario: S
    today: date

    def __init__(self, scenario_section: Any = None, *, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] | None = None) -> None:
        self._clock = clock
        self._now = now or (lambda: datetime.now(UTC))
        self._window = SlidingWindow(clock)
        super().__init__(scenario_section)

    @classmethod
    def from_document(cls, document: dict[str, Any], **kwargs: Any) -> Self:
        """From a whole scenario document (its section named ``root``)."""
        return cls(document.get(cls.root), **kwargs)

    def adopt(self, scenario: S) -> S:
        """Run ``scenario`` from now on, with its ``today`` (else the wall clock's date)."""
        self.scenario = scenario
        self.today = scenario.today or self._now().date()
        return scenario

    def host(self, request: Request) -> str:
        """The host the client called, for the links the emulator answers with."""
        return request.header("host") or self.base_url.removeprefix("https://")


def parse_day(value: Any) -> date | None:
    """A date given as a date, a datetime or ISO-8601 text (``2026-01-15``,
    ``2026-01-15T00:00:00Z``), else None."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        stripped = value.strip()
        try:
            if len(stripped) == 10:
                return date.fromisoformat(stripped)
            return datetime.fromisoformat(stripped.replace("Z", "+00:00")).date()
        except ValueError:
            pass
    return None


