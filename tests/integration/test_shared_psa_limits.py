"""PSA limits shared by every instance of the Function App, on Azurite: workers that share nothing
but the store (each its own Table Storage client and its own limiter, as separate instances have)
never pass a request window or a concurrency limit together."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from emulators.autotask import AutotaskEmulator
from emulators.base import RunningEmulator
from emulators.halopsa import HaloEmulator
from emulators.tls import TlsFiles, ensure_tls_files
from local_runner.azurite import Azurite
from shared import deadline
from shared.adapters.autotask import AutotaskClient, AutotaskLimits
from shared.adapters.halopsa import HaloClient, HaloLimits
from shared.adapters.http import RetryingHttp
from shared.adapters.shared_limits import LimitsTable, SharedSlots, row_key
from shared.adapters.tables import TableStore
from shared.errors import PsaError
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


# --------------------------------------------------------------------------- the PSAs, end to end

TODAY = date(2026, 1, 15)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls_files(tmp_path_factory.mktemp("shared-limits-tls"))


def halo(limit: int) -> dict[str, Any]:
    return {"today": TODAY.isoformat(), "tenant": "seatsyncmsp",
            "applications": [{"clientId": "seatsync-app", "clientSecret": "s3cret"}],
            "clients": [{"id": 19, "name": "Fabrikam Ltd"}],
            "items": [{"id": 1, "name": "M365-BP", "price": 22, "cost": 19.8}],
            "rateLimit": {"requestsPer5Minutes": limit}}


def halo_worker(azurite: Azurite, prefix: str | None, running: RunningEmulator, tls: TlsFiles,
                limit: int) -> HaloClient:
    """One instance's client: its own limits (shared through the store when ``prefix`` is given)."""
    limits = HaloLimits.create(limit)
    if prefix is not None:
        limits.limiter.shared = instance(azurite, prefix).window(row_key("halopsa", running.url, "app"), limit, 300.0)
    return HaloClient(name="halopsa", base_url=running.url, tenant="seatsyncmsp", client_id="seatsync-app",
                      client_secret="s3cret", lines="recurring-invoice", requests_per_5_minutes=limit,
                      http=RetryingHttp("HaloPSA", verify=str(tls.ca_certificate), sleep=lambda s: None),
                      limits=limits, today=lambda: TODAY)


@pytest.mark.parametrize("shared", [True, False], ids=["shared-window", "a-window-per-instance"])
def test_instances_sharing_halos_window_are_never_refused(azurite: Azurite, tls: TlsFiles, shared: bool) -> None:
    """Three instances, each with a window of 12 requests per 5 minutes: through the store they
    send 12 in all and Halo refuses none; each with its own window, they send 36 and Halo refuses
    what passes its limit. What a window does not let through before the deadline is not sent."""
    prefix = "h" + secrets.token_hex(4) if shared else None
    with RunningEmulator(HaloEmulator(halo(12)), tls) as running:
        emulator = running.emulator
        assert isinstance(emulator, HaloEmulator)
        outcomes: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            client = halo_worker(azurite, prefix, running, tls, 12)
            with deadline.within(2.0):
                for _ in range(12):
                    try:
                        client.get_product("1")
                        result = "read"
                    except deadline.DeadlineReached:
                        result = "left for another activity"
                    except PsaError:
                        result = "refused"
                    with lock:
                        outcomes.append(result)

        assert in_threads(worker, 3) == []
        sent = [e for e in emulator.requests_log() if not e["path"].startswith("/_admin")]
        if shared:
            assert len(sent) == 12 and emulator.refused == 0
            tokens = sum(1 for e in sent if e["path"].endswith("/auth/token"))
            assert outcomes.count("read") == 12 - tokens  # an instance's token is a request of the window too
            assert outcomes.count("left for another activity") == 36 - outcomes.count("read")
        else:
            assert emulator.refused > 0, "without the shared window the instances pass Halo's limit together"


def autotask(thread_limit: int = 3) -> dict[str, Any]:
    return {"today": TODAY.isoformat(),
            "users": [{"username": "api@msp.example", "secret": "s3cret", "integrationCode": "CODE1"}],
            "contractCategories": ["Microsoft 365"], "companies": [{"id": 19, "name": "Fabrikam Ltd"}],
            "services": [{"id": 1, "name": "M365-BP", "unitPrice": 22, "unitCost": 19.8}],
            "threadLimit": thread_limit, "latencySeconds": 0.15}


def autotask_worker(azurite: Azurite, prefix: str | None, running: RunningEmulator, tls: TlsFiles,
                    share: str = "0.25") -> AutotaskClient:
    limits = AutotaskLimits(Decimal(share), 3)
    key = (f"{running.url}/ATServicesRest".lower(), "", "api@msp.example")
    if prefix is not None:
        table = instance(azurite, prefix)
        limits.table, limits.key = table, key
        limits.budget.shared = table.window(row_key("autotask", *key), limits.budget.own_cap, 3600.0, buckets=60)
    return AutotaskClient(name="autotask", username="api@msp.example", secret="s3cret", integration_code="CODE1",
                          zone_url=None, discovery_url=f"{running.url}/ATServicesRest",
                          hourly_request_share=Decimal(share), max_concurrent_requests=3,
                          http=RetryingHttp("Autotask", verify=str(tls.ca_certificate), sleep=lambda s: None),
                          limits=limits, today=lambda: TODAY)


@pytest.mark.parametrize("shared", [True, False], ids=["shared-slots", "slots-per-instance"])
def test_instances_sharing_autotasks_thread_limit_never_send_more_at_once(azurite: Azurite, tls: TlsFiles,
                                                                         shared: bool) -> None:
    """Three instances of three threads each read Autotask at once: through the store no more
    than three requests are ever in flight on an endpoint and Autotask refuses none; each with
    its own three slots, nine are sent at once and Autotask refuses the extra ones."""
    prefix = "a" + secrets.token_hex(4) if shared else None
    with RunningEmulator(AutotaskEmulator(autotask()), tls) as running:
        emulator = running.emulator
        assert isinstance(emulator, AutotaskEmulator)
        clients = [autotask_worker(azurite, prefix, running, tls) for _ in range(3)]
        for client in clients:
            assert client.zone_url  # discovered before the crowd (zoneInformation is outside the limits)
        failures: list[BaseException] = []

        def reads(client: AutotaskClient) -> None:
            for _ in range(3):
                try:
                    client.get_products(["1"])
                except PsaError as exc:
                    failures.append(exc)

        workers = [threading.Thread(target=lambda c=c: failures.extend(in_threads(lambda: reads(c), 3)))
                   for c in clients]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        state = emulator.state()
        if shared:
            assert failures == [] and emulator.refused["threads"] == 0
            assert max(state["peakConcurrency"].values()) <= 3
            for client in clients:
                for slots in client.limits._slots.values():
                    slots.close()
        else:
            assert emulator.refused["threads"] > 0, "without the shared slots the instances pass the limit together"


def test_instances_share_seatsyncs_hourly_share_of_autotask(azurite: Azurite, tls: TlsFiles) -> None:
    """A share of 0.1 % of 10,000 requests an hour is 10 requests, for every instance together:
    three instances asking for 18 reads send 10 requests (their ThresholdInformation included); the
    other reads are refused before they are sent, saying so."""
    prefix = "b" + secrets.token_hex(4)
    section = {**autotask(), "latencySeconds": 0.0}
    with RunningEmulator(AutotaskEmulator(section), tls) as running:
        emulator = running.emulator
        assert isinstance(emulator, AutotaskEmulator)
        clients = [autotask_worker(azurite, prefix, running, tls, share="0.001") for _ in range(3)]
        refused: list[str] = []
        for _ in range(6):
            for client in clients:
                try:
                    client.get_products(["1"])
                except PsaError as exc:
                    refused.append(str(exc))
        counted = [e for e in emulator.requests_log() if not e["path"].endswith("/zoneInformation")]
        assert len(counted) == 10, "each instance's ThresholdInformation counts too: Autotask counts every request"
        assert len(refused) == 18 - (10 - 3)
        assert all("every instance of the Function App together" in r for r in refused)
