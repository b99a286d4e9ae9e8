"""The Halo client's rate limiter and token cache with a fake clock, and its small pure helpers."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from shared.adapters.halopsa import (
    HaloClient,
    HaloLimits,
    SlidingWindowLimiter,
    TokenCache,
    cycle_of_span,
    halo_day,
    is_seatsync_tag,
    reset_shared_limits,
    shared_limits,
)
from tests.psa_test_support import FakeClock, in_threads


def test_the_window_lets_the_limit_through_then_waits_for_the_oldest_request() -> None:
    clock = FakeClock(1000.0)
    limiter = SlidingWindowLimiter(3, 300.0, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        limiter.acquire()
        clock.now += 10
    assert clock.sleeps == []
    limiter.acquire()  # the first request (at 1000) leaves the window at 1300; it is now 1030
    assert clock.sleeps == [pytest.approx(270.0)]
    assert limiter.waits == 1
    assert limiter.in_window() == 3


def test_the_window_slides_rather_than_resetting() -> None:
    clock = FakeClock(1000.0)
    limiter = SlidingWindowLimiter(2, 300.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 200
    limiter.acquire()
    clock.now += 101  # the first has left the window, the second has not
    limiter.acquire()
    assert clock.sleeps == []
    limiter.acquire()  # the second (at 1200) leaves at 1500; it is now 1301
    assert clock.sleeps == [pytest.approx(199.0)]


def test_threads_share_one_window() -> None:
    clock = FakeClock(1000.0)
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            clock.now += seconds

    limiter = SlidingWindowLimiter(10, 300.0, clock=clock, sleep=sleep)

    def five() -> None:
        for _ in range(5):
            limiter.acquire()

    assert not in_threads(five, 4)
    assert limiter.waits >= 1  # 20 requests through a window of 10 had to wait
    assert limiter.in_window() <= 10


def test_a_token_is_reused_until_a_minute_before_it_expires() -> None:
    clock = FakeClock(1000.0)
    cache = TokenCache(clock)
    issued: list[str] = []

    def fetch() -> tuple[str, float]:
        issued.append(f"token-{len(issued) + 1}")
        return issued[-1], 3600.0

    assert cache.get(fetch) == "token-1"
    clock.now += 3500
    assert cache.get(fetch) == "token-1"
    clock.now += 50  # 3,550 s: within the last minute
    assert cache.get(fetch) == "token-2"
    cache.invalidate("token-1")  # an old token: nothing to do
    assert cache.get(fetch) == "token-2"
    cache.invalidate("token-2")
    assert cache.get(fetch) == "token-3"
    assert cache.fetched == 3


def test_limits_are_shared_per_connection_in_the_process() -> None:
    reset_shared_limits()
    first = shared_limits("https://msp.halopsa.com", "msp", "app", 250)
    assert shared_limits("https://MSP.halopsa.com/", "MSP", "app", 250) is first
    assert shared_limits("https://msp.halopsa.com", "msp", "other-app", 250) is not first
    assert first.limiter.limit == 250

    def client() -> HaloClient:
        return HaloClient(name="halopsa", base_url="https://msp.halopsa.com", tenant="msp", client_id="app",
                          client_secret="s", lines="recurring-invoice", requests_per_5_minutes=250)

    assert client().limits is client().limits is first
    reset_shared_limits()


def test_constructor_refuses_what_cannot_work() -> None:
    def make(**changes: object) -> HaloClient:
        values: dict[str, object] = {
            "name": "halopsa", "base_url": "https://msp.halopsa.com", "tenant": None, "client_id": "app",
            "client_secret": "s", "lines": "recurring-invoice", "requests_per_5_minutes": 250,
            "limits": HaloLimits.create(250)}
        values.update(changes)
        return HaloClient(**values)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="client secret is empty"):
        make(client_secret="")
    with pytest.raises(ValueError, match="lines must be recurring-invoice or contract"):
        make(lines="tickets")
    with pytest.raises(ValueError, match=r"requests_per_5_minutes must be 1\.\.300"):
        make(requests_per_5_minutes=301)
    with pytest.raises(ValueError, match="Halo URL must be"):
        make(base_url="msp.halopsa.com")
    capabilities = make().capabilities
    assert (capabilities.kind, capabilities.prorate, capabilities.tag_limit) == ("halopsa", "native", 50)


@pytest.mark.parametrize(("start", "end", "cycle"), [
    (date(2026, 2, 1), date(2026, 2, 28), "monthly"),
    (date(2026, 1, 31), date(2026, 2, 27), "monthly"),
    (date(2026, 1, 1), date(2026, 3, 31), "quarterly"),
    (date(2026, 1, 1), date(2026, 6, 30), "semi-annual"),
    (date(2026, 1, 1), date(2026, 12, 31), "annual"),
    (date(2026, 1, 1), date(2026, 2, 28), "bi-monthly"),
    (date(2026, 1, 5), date(2026, 1, 11), "weekly"),
    (date(2026, 1, 5), date(2026, 1, 18), "bi-weekly"),
    (date(2026, 1, 1), date(2026, 1, 20), None),
])
def test_the_billing_cycle_is_the_length_of_the_period(start: date, end: date, cycle: str | None) -> None:
    assert cycle_of_span(start, end) == cycle


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-01-01T00:00:00", date(2026, 1, 1)),
    ("2024-04-30T23:00:00", date(2024, 5, 1)),  # local midnight written in UTC
    ("2026-01-01T05:00:00Z", date(2026, 1, 1)),
    ("2026-01-01", date(2026, 1, 1)),
    ("1899-12-30T00:00:00", None),  # Halo's empty date
    ("", None),
    (None, None),
    ("soon", None),
])
def test_halo_dates_are_read_as_the_nearest_midnight(value: object, expected: date | None) -> None:
    assert halo_day(value) == expected


def test_seatsync_tags_are_recognised_by_their_prefix() -> None:
    assert is_seatsync_tag("seatsync:bp")
    assert not is_seatsync_tag("PAX8-SUB-123")
    assert not is_seatsync_tag("")
