"""The Autotask client's limits with a fake clock: SeatSync's hourly share, pacing, stopping before
the database's block, the per-endpoint thread limit, and the process-wide registry."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.adapters.autotask import (
    AutotaskClient,
    AutotaskLimits,
    HourlyBudget,
    is_seatsync_tag,
    reset_shared_limits,
    shared_limits,
)
from shared.errors import PsaError
from tests.psa_test_support import FakeClock, in_threads


def budget(share: str = "0.01", **kwargs: object) -> tuple[HourlyBudget, FakeClock]:
    clock = FakeClock(10_000.0)
    return HourlyBudget(Decimal(share), clock=clock, sleep=clock.sleep, **kwargs), clock  # type: ignore[arg-type]


def test_the_share_is_a_part_of_the_threshold() -> None:
    b, _ = budget("0.25")
    assert b.own_cap == 2500
    b.reconcile(20000, 60, 0)
    assert b.own_cap == 5000
    with pytest.raises(ValueError, match="hourly_request_share"):
        HourlyBudget(Decimal(0))
    with pytest.raises(ValueError, match="hourly_request_share"):
        HourlyBudget(Decimal("1.5"))


def test_requests_are_free_until_80_percent_of_the_share_then_paced() -> None:
    b, clock = budget("0.01")  # 100 requests an hour
    for _ in range(80):
        b.acquire()
    assert clock.sleeps == []
    b.acquire()
    assert clock.sleeps == [36.0]  # 3600 s / 100: the steady rate of the share
    assert b.paced == 1
    assert b.own_usage() == 81


def test_the_share_is_never_exceeded_a_short_wait_is_taken_a_long_one_stops() -> None:
    b, clock = budget("0.001", slow_from=1.0)  # 10 requests an hour, no pacing
    for _ in range(10):
        b.acquire()
        clock.now += 355  # ten requests spread over 3,550 s
    # the oldest request leaves the window in 3600 - 3550 = 50 s: more than 30 s, so stop
    with pytest.raises(PsaError) as caught:
        b.acquire("contract 100 services")
    assert caught.value.record == "contract 100 services"
    assert "SeatSync has used its share of 10 requests this hour" in str(caught.value)
    assert "raise hourly_request_share" in str(caught.value)
    clock.now += 25  # now 25 s away: wait for it
    b.acquire()
    assert clock.sleeps == [pytest.approx(25.0)]
    assert b.own_usage() == 10


def test_the_database_is_never_pushed_past_90_percent() -> None:
    b, clock = budget("0.25")
    b.reconcile(10000, 60, 8999)
    b.acquire()  # the 9,000th: paced (the database is past 50 %) but allowed
    assert clock.sleeps == [1.44]
    with pytest.raises(PsaError, match="the database has used about 9000 of its 10000 requests this hour"):
        b.acquire()
    assert b.database_estimate() == 9000


def test_the_database_above_half_slows_seatsync_down() -> None:
    b, clock = budget("0.25")
    b.reconcile(10000, 60, 4999)
    b.acquire()
    assert clock.sleeps == []
    b.acquire()  # the estimate is now 5000: half the threshold
    assert clock.sleeps == [1.44]


def test_a_reading_is_due_at_start_and_every_minute_and_taken_by_one_caller() -> None:
    b, clock = budget()
    assert b.begin_refresh() is True
    assert b.begin_refresh() is False  # someone is reading it
    b.reconcile(10000, 60, 10)
    assert b.begin_refresh() is False
    clock.now += 61
    assert b.begin_refresh() is True
    b.end_refresh()
    assert b.begin_refresh() is True


def test_the_window_forgets_requests_older_than_the_timeframe() -> None:
    b, clock = budget("0.001", slow_from=1.0)
    for _ in range(10):
        b.acquire()
    clock.now += 3600
    assert b.own_usage() == 0
    b.acquire()
    assert clock.sleeps == []


def test_concurrent_acquires_never_exceed_the_share() -> None:
    b = HourlyBudget(Decimal("0.005"), slow_from=1.0, max_wait_seconds=0)  # 50 an hour, never wait
    granted: list[int] = []
    refused: list[int] = []

    def take() -> None:
        for _ in range(20):
            try:
                b.acquire()
                granted.append(1)
            except PsaError:
                refused.append(1)

    assert not in_threads(take, 5)
    assert len(granted) == 50
    assert len(refused) == 50


def test_at_most_max_concurrent_threads_per_endpoint() -> None:
    limits = AutotaskLimits(Decimal("0.25"), 2)
    semaphore = limits.semaphore("Contracts")
    assert limits.semaphore("Contracts") is semaphore
    assert limits.semaphore("ContractServices") is not semaphore
    assert semaphore.acquire(blocking=False)
    assert semaphore.acquire(blocking=False)
    assert not semaphore.acquire(blocking=False)
    with pytest.raises(ValueError, match=r"max_concurrent_requests must be 1\.\.3"):
        AutotaskLimits(Decimal("0.25"), 4)


def test_limits_are_shared_per_connection_in_the_process() -> None:
    reset_shared_limits()
    first = shared_limits("https://webservices.autotask.net/ATServicesRest", None, "api@msp.example", Decimal("0.2"), 3)
    same = shared_limits("https://WEBSERVICES.autotask.net/ATServicesRest/", None, "API@msp.example",
                         Decimal("0.3"), 3)
    other = shared_limits("https://webservices.autotask.net/ATServicesRest", None, "other@msp.example",
                          Decimal("0.2"), 3)
    assert same is first
    assert first.budget.share == Decimal("0.3")  # a changed configuration applies from now on
    assert other is not first
    reset_shared_limits()


def test_clients_of_one_connection_share_their_limits() -> None:
    reset_shared_limits()

    def client() -> AutotaskClient:
        return AutotaskClient(name="autotask", username="api@msp.example", secret="s", integration_code="C",
                              zone_url=None, discovery_url="https://webservices.autotask.net/ATServicesRest",
                              hourly_request_share=Decimal("0.25"), max_concurrent_requests=3)

    assert client().limits is client().limits
    reset_shared_limits()


@pytest.mark.parametrize(("path", "endpoint"), [
    ("/ATServicesRest/V1.0/Contracts/query", "Contracts"),
    ("/ATServicesRest/V1.0/Contracts/query/next", "Contracts"),
    ("/ATServicesRest/V1.0/Contracts/123/Services", "Contracts/Services"),
    ("/ATServicesRest/V1.0/ContractServiceAdjustments", "ContractServiceAdjustments"),
    ("/ATServicesRest/v1.0/Services/42", "Services"),
    ("/ATServicesRest/V1.0/ThresholdInformation", "ThresholdInformation"),
])
def test_the_thread_limit_endpoint_of_a_path(path: str, endpoint: str) -> None:
    assert AutotaskClient._endpoint(path) == endpoint


def test_constructor_refuses_what_cannot_work() -> None:
    def make(**changes: object) -> AutotaskClient:
        values: dict[str, object] = {
            "name": "autotask", "username": "api@msp.example", "secret": "s", "integration_code": "C",
            "zone_url": None, "discovery_url": "https://webservices.autotask.net/ATServicesRest",
            "hourly_request_share": Decimal("0.25"), "max_concurrent_requests": 3,
            "limits": AutotaskLimits(Decimal("0.25"), 3)}
        values.update(changes)
        return AutotaskClient(**values)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="integration code is empty"):
        make(integration_code=" ")
    with pytest.raises(ValueError, match="zone_url must be an https:// URL"):
        make(zone_url="webservices5.autotask.net")
    with pytest.raises(ValueError, match=r"max_concurrent_requests must be 1\.\.3"):
        make(max_concurrent_requests=5)
    assert make().capabilities.tag_limit == 100
    assert make().capabilities.prorate == "native"
    assert make(zone_url="https://webservices5.autotask.net/ATServicesRest/").zone_url == (
        "https://webservices5.autotask.net/ATServicesRest")


def test_seatsync_tags_are_recognised_by_their_prefix() -> None:
    assert is_seatsync_tag("seatsync:e3")
    assert is_seatsync_tag(" SeatSync prorate")
    assert not is_seatsync_tag("Call Ann before renewing")
    assert not is_seatsync_tag(None)
    assert not is_seatsync_tag("")
