"""PSA limits shared by every instance of the Function App, on Azurite: workers that share nothing
but the store (each its own Table Storage client and its own limiter, as separate instances have)
never pass a request window or a concurrency limit together."""

from __future__ import annotations

import secrets
import threading
import time

import pytest
from azure.data.tables import TableServiceClient

from local_runner.azurite import Azurite
from shared import deadline
from shared.adapters.shared_limits import LimitsTable, SharedSlots, row_key
from shared.adapters.tables import TableStore
from tests.psa_test_support import in_threads

pytestmark = pytest.mark.integration


class SharedClock:
    """A wall clock the workers share that moves only when one of them waits: every grant is
    stamped with the time it was made, whatever the machine's load."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def instance(azurite: Azurite, prefix: str) -> LimitsTable:
    """What one instance of the Function App has: its own client of the store."""
    return LimitsTable(TableStore(TableServiceClient.from_connection_string(azurite.connection_string), prefix))


def most_in_any_window(stamps: list[float], window: float) -> int:
    ordered = sorted(stamps)
    most, start = 0, 0
    for end, stamp in enumerate(ordered):
        while ordered[start] <= stamp - window:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_workers_sharing_a_window_never_pass_it_together(azurite: Azurite) -> None:
    prefix, clock = "w" + secrets.token_hex(4), SharedClock()
    key = row_key("halo", "https://msp.halopsa.example", "app")
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        window = instance(azurite, prefix).window(key, 8, 60.0, buckets=6, clock=clock, sleep=clock.sleep)
        for _ in range(12):
            granted = window.take()
            with lock:
                stamps.append(granted)

    assert in_threads(worker, 4) == []
    assert len(stamps) == 48
    assert most_in_any_window(stamps, 60.0) <= 8
    assert clock.now - 1_800_000_000.0 >= 5 * 60.0, "48 requests at 8 a minute take five more windows"


def test_a_wait_past_the_activitys_deadline_is_refused_before_anything_is_sent(azurite: Azurite) -> None:
    prefix, key, clock = "d" + secrets.token_hex(4), row_key("halo", "x"), SharedClock()
    first = instance(azurite, prefix).window(key, 2, 300.0, clock=clock, sleep=clock.sleep)
    second = instance(azurite, prefix).window(key, 2, 300.0, clock=clock, sleep=clock.sleep)
    first.take()
    first.take()
    with deadline.within(60.0, clock=clock), pytest.raises(deadline.DeadlineReached, match="after this activity's"):
        second.take("recurring invoice 7")
    assert second.usage() == 2


def test_workers_sharing_slots_never_have_more_requests_in_flight(azurite: Azurite) -> None:
    prefix, key = "s" + secrets.token_hex(4), row_key("autotask", "https://zone.example", "api@msp", "Contracts")
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    instances = [instance(azurite, prefix).slots(key, 3, linger=0.05) for _ in range(4)]

    def requests(slots: SharedSlots) -> None:
        for _ in range(4):
            with slots.slot("contracts"):
                start = time.monotonic()
                time.sleep(0.03)
                with lock:
                    spans.append((start, time.monotonic()))

    # four instances, three threads each: twelve senders for three slots
    errors = in_threads(lambda: None, 0)
    workers = [threading.Thread(target=lambda s=slots: errors.extend(in_threads(lambda: requests(s), 3)))
               for slots in instances]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert len(spans) == 48
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    in_flight = most = 0
    for _, step in events:
        in_flight += step
        most = max(most, in_flight)
    assert most <= 3
    for slots in instances:
        slots.close()
    time.sleep(0.2)
    assert all(slots.held == 0 for slots in instances)
    entity = instance(azurite, prefix).table.get_entity("slots", key)
    assert entity["Holders"] == "{}", "every instance gave its slots back"
