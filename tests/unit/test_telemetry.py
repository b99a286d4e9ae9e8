"""Telemetry: the distribution is configured only with a connection string (and imported only
then), every record carries the run and tenant, HTTP clients count their 429s and retries into
the activity's tally, and the run's figures become metrics."""

from __future__ import annotations

import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
import requests
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared import telemetry
from shared.adapters.http import RetryingHttp, RetryPolicy


def test_without_a_connection_string_nothing_is_configured_or_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_configured", False)
    calls: list[object] = []
    assert telemetry.configure({}, setup=calls.append) is False
    assert calls == []
    assert "azure.monitor.opentelemetry" not in sys.modules, "the distribution is imported only when used"


def test_a_connection_string_configures_the_distribution_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_configured", False)
    calls: list[object] = []
    env = {telemetry.CONNECTION_SETTING: "InstrumentationKey=00000000-0000-0000-0000-000000000000",
           telemetry.AUTHENTICATION_SETTING: "ClientId=11111111-2222-3333-4444-555555555555;Authorization=AAD"}
    assert telemetry.configure(env, setup=calls.append) is True
    assert telemetry.configure(env, setup=calls.append) is True
    assert calls == [env]
    assert telemetry.managed_identity_client(env) == "11111111-2222-3333-4444-555555555555"
    assert telemetry.managed_identity_client({}) is None


def test_the_kql_file_charts_what_the_code_sends() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    kql = (root / "infra" / "monitoring" / "seatsync-runs.kql").read_text(encoding="utf-8")
    code = (root / "shared" / "telemetry.py").read_text(encoding="utf-8")
    messages = set(re.findall(r'message (?:==|in) \(?"([^"]+)"', kql)) | set(re.findall(r'"([a-z ]+)"\)', kql))
    for message in {"run finished", "tenants pushed", "tenant collected"}:
        assert message in messages and f'"{message}"' in code
    for field in set(re.findall(r"d\.([A-Za-z]+)", kql)):
        assert f'"{field}"' in code or field in {"runId", "tenantId"}, field
    for metric in re.findall(r'"(seatsync\.[a-z.]+)"', kql):
        assert f'"{metric}"' in code, metric


def test_every_record_carries_the_run_and_the_tenant(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("shared.services.collect")
    with caplog.at_level(logging.INFO, logger="shared"):
        with telemetry.activity("run-1", "tenant-a"):
            log.info("inside")
            telemetry.set_tenant("tenant-b")
            log.info("next tenant")
        log.info("outside")
    inside, nxt, outside = caplog.records
    assert (inside.runId, inside.tenantId) == ("run-1", "tenant-a")  # type: ignore[attr-defined]
    assert (nxt.runId, nxt.tenantId) == ("run-1", "tenant-b")  # type: ignore[attr-defined]
    assert (outside.runId, outside.tenantId) == (None, None)  # type: ignore[attr-defined]


class Session:
    """Answers with the given statuses, in turn."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = self.statuses.pop(0)
        response.headers["Retry-After"] = "0"
        response._content = b"{}"
        response._content_consumed = True  # type: ignore[attr-defined]
        return response


def test_http_clients_count_429s_and_retries_into_the_activitys_tally() -> None:
    with telemetry.activity("run-1", "tenant-a") as tally:
        http = RetryingHttp("Microsoft Graph", RetryPolicy(max_attempts=4), session=Session(429, 503, 200),  # type: ignore[arg-type]
                            sleep=lambda seconds: None)
        assert http.request("GET", "https://graph.example/v1.0/users").status_code == 200
    assert (http.calls, http.throttled, http.retries) == (3, 1, 2)
    counts = tally.services["Microsoft Graph"]
    assert (counts.calls, counts.throttled, counts.retries) == (3, 1, 2)
    outside = RetryingHttp("PSA", session=Session(200), sleep=lambda seconds: None)  # type: ignore[arg-type]
    outside.request("GET", "https://psa.example/")
    assert "PSA" not in tally.services


def metric_values(reader: InMemoryMetricReader) -> dict[str, float]:
    values: dict[str, float] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                values[metric.name] = sum(getattr(point, "value", 0) for point in metric.data.data_points)
    return values


def test_a_push_and_a_run_become_metrics_and_events(caplog: pytest.LogCaptureFixture) -> None:
    reader = InMemoryMetricReader()
    telemetry.use_meter_provider(MeterProvider(metric_readers=[reader]))
    try:
        tally = telemetry.HttpTally()
        tally.count("ConnectWise", throttled=True)
        tally.count("ConnectWise", retry=True)
        with caplog.at_level(logging.INFO, logger="seatsync.telemetry"):
            telemetry.tenants_pushed("run-1", ["t1", "t2"], applied=5, held=1, deferred=2, failed=1,
                                     prorated=Decimal("12.50"), recurring=Decimal("-40.00"), psa_calls=30,
                                     dry_run=False, tally=tally)
        values = metric_values(reader)
    finally:
        telemetry.use_meter_provider(None)
    assert values["seatsync.changes.applied"] == 5
    assert values["seatsync.changes.held"] == 1 and values["seatsync.changes.deferred"] == 2
    assert values["seatsync.money.prorated"] == 12.5 and values["seatsync.money.recurring"] == -40
    assert values["seatsync.psa.calls"] == 30
    assert values["seatsync.http.throttled"] == 1 and values["seatsync.http.retries"] == 1
    [event] = caplog.records
    assert event.getMessage() == "tenants pushed"
    assert (event.runId, event.applied, event.throttled, event.retries) == ("run-1", 5, 1, 1)  # type: ignore[attr-defined]


def test_a_context_thread_pool_keeps_the_activitys_run_and_tenant_in_its_workers(
        caplog: pytest.LogCaptureFixture) -> None:
    """Worker threads start with empty context variables: the pool runs each task in a copy of
    the submitter's, so what a PSA client logs from its workers still names the run and tenant."""
    log = logging.getLogger("seatsync.test.pool")

    def work(n: int) -> tuple[str, bool]:
        log.warning("reading agreement %d", n)
        return threading.current_thread().name, telemetry.current_tally() is tally

    with caplog.at_level(logging.WARNING, logger="seatsync.test.pool"), \
            telemetry.activity("20261125T020000Z-0a0b0c0d", "tenant-1") as tally:
        telemetry.set_tenant("tenant-2")
        with telemetry.ContextThreadPool(max_workers=3, thread_name_prefix="psa") as pool:
            results = list(pool.map(work, range(6)))
        with ThreadPoolExecutor(max_workers=1) as plain:
            plain.submit(log.warning, "from a plain pool").result()
    assert all(name.startswith("psa") and same for name, same in results), "in the workers, the same tally"
    pooled = [r for r in caplog.records if r.getMessage().startswith("reading agreement")]
    assert len(pooled) == 6
    assert {(r.runId, r.tenantId) for r in pooled} == {("20261125T020000Z-0a0b0c0d", "tenant-2")}  # type: ignore[attr-defined]
    [plain_record] = [r for r in caplog.records if r.getMessage() == "from a plain pool"]
    assert (plain_record.runId, plain_record.tenantId) == (None, None), "what a plain pool loses"  # type: ignore[attr-defined]
