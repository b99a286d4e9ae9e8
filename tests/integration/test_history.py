"""The runs list, a run's live progress, a tenant's licence history and the audit trail of a
customer who has left: over the CLI and HTTP, on the sample MSP (Azurite and the emulators).
The sample is synced twice once for the module; each test reads what those runs stored."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.data.tables import TableServiceClient

from admin_api.billing_routes import audit_trail_http
from admin_api.history_routes import tenant_history_http
from admin_api.reconcile_routes import reconciliation_http
from local_runner.azurite import Azurite
from local_runner.cli import main
from local_runner.wiring import EXIT_OK, EXIT_USAGE
from shared.adapters.tables import TableStore
from shared.bootstrap import set_services
from shared.config.schema import dump_config, parse_config
from shared.contracts import SYNC_INSTANCE_ID, RunProgress
from shared.services.history import run_page, tenant_history
from shared.services.lease import acquire
from sync_orchestrator import run_report_http, runs_list_http
from tests.integration.msp import FABRIKAM, SPB, WOODGROVE, Msp, running_msp

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def synced(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Msp, list[str]]]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = TableStore(service, "h" + secrets.token_hex(5))
    statuses: list[RunProgress] = []
    events = Recorder()
    telemetry_log = logging.getLogger("seatsync.telemetry")
    telemetry_log.addHandler(events)
    telemetry_log.setLevel(logging.INFO)
    with running_msp(azurite, store, tmp_path_factory.mktemp("history")) as msp:
        try:
            first = msp.sync(dry_run=True)
            second = msp.sync(on_progress=statuses.append)
        finally:
            telemetry_log.removeHandler(events)
            telemetry_log.setLevel(logging.NOTSET)
        msp.statuses = statuses  # type: ignore[attr-defined]
        msp.events = events.records  # type: ignore[attr-defined]
        set_services(msp.services)
        try:
            yield msp, [first["runId"], second["runId"]]
        finally:
            set_services(None)
            store.drop_all()


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def cli_env(synced: tuple[Msp, list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Msp:
    msp = synced[0]
    for name, value in msp.services.settings.environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return msp


class Client:
    """The Durable client as the HTTP functions use it: the status of the one sync instance."""

    def __init__(self, runtime: df.OrchestrationRuntimeStatus | None = None, custom: Any = None,
                 started_with: Any = None) -> None:
        self.runtime, self.custom, self.started_with = runtime, custom, started_with

    async def get_status(self, instance_id: str, show_input: bool = False) -> Any:
        """As the Durable client: the instance's input only when asked for."""
        assert instance_id == SYNC_INSTANCE_ID
        return SimpleNamespace(runtime_status=self.runtime, custom_status=self.custom,
                               input_=self.started_with if show_input else None)


def call(route: Any, url: str, client: Client | None = None, params: dict[str, str] | None = None,
         route_params: dict[str, str] | None = None) -> tuple[int, Any]:
    request = func.HttpRequest("GET", url, body=b"", params=params or {}, route_params=route_params or {})
    user = route.build().get_user_function()
    response = user(request) if client is None else asyncio.run(user.__wrapped__(request, client))
    body = response.get_body()
    return response.status_code, json.loads(body) if body else None


def test_runs_are_listed_newest_first_a_page_at_a_time(synced: tuple[Msp, list[str]]) -> None:
    msp, (first, second) = synced
    page = run_page(msp.services.runs, limit=1)
    assert [r.run_id for r in page.runs] == [second]
    assert page.next_before == second
    older = run_page(msp.services.runs, limit=1, before=page.next_before)
    assert [r.run_id for r in older.runs] == [first] and older.next_before is None
    run = older.runs[0]
    assert run.dry_run and run.totals is not None and run.totals.changes_dry_run > 0
    assert run.progress is None, "a finished run shows its totals, not progress"

    status, body = call(runs_list_http, "https://x/api/runs", Client(), params={"limit": "5"})
    assert status == 200
    assert [r["runId"] for r in body["runs"]] == [second, first]
    assert body["runs"][0]["totals"]["changesApplied"] >= 1
    for bad in ("0", "201", "ten"):
        status, error = call(runs_list_http, "https://x/api/runs", Client(), params={"limit": bad})
        assert (status, error["field"]) == (400, "limit")
    status, error = call(runs_list_http, "https://x/api/runs", Client(), params={"before": "20990101T000000Z-0"})
    assert (status, error) == (404, {"error": "no run 20990101T000000Z-0 is recorded", "field": "before"})
    status, error = call(runs_list_http, "https://x/api/runs", Client(), params={"before": "a/b"})
    assert (status, error["field"]) == (400, "before")
    status, error = call(reconciliation_http, "https://x/api/reconciliation", params={"run": "20990101T000000Z-0"})
    assert (status, error) == (404, {"error": "no run 20990101T000000Z-0 is recorded", "field": "run"})


def test_the_local_runner_reports_progress_as_the_orchestrator_sets_it(synced: tuple[Msp, list[str]]) -> None:
    msp, _ = synced
    statuses: list[RunProgress] = msp.statuses  # type: ignore[attr-defined]
    phases = [s.phase for s in statuses]
    assert phases[0] == "starting" and phases[-1] == "finished"
    assert {"collecting", "pushing", "finishing", "notifying"} <= set(phases)
    total = len([t for t in msp.config.tenants if t.enabled])
    collecting = [s for s in statuses if s.phase == "collecting"]
    assert collecting[-1].tenants_collected == collecting[-1].tenants_total == total
    assert collecting[-1].tenants_failed >= 1, "the sample has a tenant whose consent is missing"
    pushed = [s for s in statuses if s.phase == "pushing"][-1]
    assert pushed.tenants_pushed == pushed.tenants_to_push == total - collecting[-1].tenants_failed
    assert pushed.changes_applied >= 1 and pushed.changes_held >= 1


def test_a_running_runs_progress_comes_with_its_report(synced: tuple[Msp, list[str]]) -> None:
    msp, (_, second) = synced
    status, body = call(run_report_http, "https://x/api/runs/latest", Client(), route_params={"runId": "latest"})
    assert status == 200 and body["runId"] == second and body["progress"] is None  # finished

    # a run that is still going: Durable's custom status is returned with what is stored so far
    runs = msp.services.runs
    running = runs.request(second).model_copy(update={"run_id": "29991231T000000Z-0000beef"})  # type: ignore[union-attr]
    runs.start(running)
    assert acquire(runs, msp.services.decisions, running.run_id, timedelta(minutes=5)).refused is None  # as it runs
    try:
        _running_run(msp, running.run_id)
    finally:
        runs.release_lease(running.run_id)
        msp.services.store.table("runs").delete_entity("runs", running.run_id)


def _running_run(msp: Msp, run_id: str) -> None:
    runs = msp.services.runs
    live = RunProgress(run_id=run_id, phase="collecting", tenants_total=8, tenants_collected=3,
                       tenants_failed=1)
    status, body = call(run_report_http, "https://x/api/runs/x", Client(df.OrchestrationRuntimeStatus.Running,
                                                                       live.to_json()),
                        route_params={"runId": run_id})
    assert status == 200 and body["status"] == "running"
    assert body["progress"]["tenantsCollected"] == 3 and body["progress"]["phase"] == "collecting"
    # without Durable (the local runner), the progress it recorded in the store
    runs.record_progress(run_id, live.model_copy(update={"tenants_collected": 5}).to_json())
    status, body = call(run_report_http, "https://x/api/runs/x", Client(), route_params={"runId": run_id})
    assert body["progress"]["tenantsCollected"] == 5
    status, listed = call(runs_list_http, "https://x/api/runs", Client(df.OrchestrationRuntimeStatus.Running,
                                                                      live.to_json()))
    assert listed["runs"][0]["runId"] == run_id and listed["runs"][0]["progress"]["tenantsCollected"] == 3

    status, body = call(run_report_http, "https://x/api/runs/x", Client(), route_params={"runId": "nope"})
    assert (status, body["field"]) == (404, "runId")


def test_the_run_id_the_sync_answer_gave_is_followed_before_the_run_records_itself(
        synced: tuple[Msp, list[str]]) -> None:
    """``POST /api/sync`` answers 202 with the run id; asked for at once, before the run's first
    activity recorded it, the run is running (the orchestration's input names it), not unknown."""
    msp, (_, second) = synced
    starting = msp.services.runs.request(second).model_copy(  # type: ignore[union-attr]
        update={"run_id": "29991231T000000Z-0000cafe", "dry_run": True})
    client = Client(df.OrchestrationRuntimeStatus.Pending, started_with=starting.to_json())
    status, body = call(run_report_http, "https://x/api/runs/x", client, route_params={"runId": starting.run_id})
    assert (status, body["status"], body["dryRun"], body["changes"]) == (200, "running", True, [])
    other = Client(df.OrchestrationRuntimeStatus.Running, started_with=starting.to_json())
    assert call(run_report_http, "https://x/api/runs/x", other, route_params={"runId": "29991231T000000Z-0000dead"}
                )[0] == 404
    finished = Client(df.OrchestrationRuntimeStatus.Completed, started_with=starting.to_json())
    assert call(run_report_http, "https://x/api/runs/x", finished, route_params={"runId": starting.run_id})[0] == 404


def test_a_tenants_licence_history_has_purchased_assigned_and_billed(synced: tuple[Msp, list[str]]) -> None:
    msp, (first, second) = synced
    history = tenant_history(msp.services.config(), msp.services.snapshots, msp.services.runs, FABRIKAM)
    assert history.tenant_name == "Fabrikam Ltd" or history.tenant_name.startswith("Fabrikam")
    [premium] = [h for h in history.licences if h.sku_id == SPB]
    assert premium.sku_part_number == "SPB" and premium.licence == "Microsoft 365 Business Premium"
    assert [p.run_id for p in premium.points] == [first, second]
    point = premium.points[-1]
    assert point.purchased is not None and point.assigned is not None and point.to_bill is not None
    assert point.billed is not None

    status, body = call(tenant_history_http, "https://x/api/tenants/x/history", params={"licence": "spb"},
                        route_params={"tenantId": FABRIKAM.upper()})
    assert status == 200
    assert [h["skuId"] for h in body["licences"]] == [SPB]
    assert body["licences"][0]["points"][-1]["toBill"] == point.to_bill
    status, body = call(tenant_history_http, "https://x/api/tenants/x/history", params={"licence": "Visio"},
                        route_params={"tenantId": FABRIKAM})
    assert status == 404 and body["field"] == "licence" and "Business Premium" in body["error"]
    status, body = call(tenant_history_http, "https://x/api/tenants/x/history", route_params={"tenantId": "nope"})
    assert status == 400 and body["field"] == "tenant"


def test_cli_lists_runs_and_prints_history(cli_env: Msp, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "list", "--limit", "1"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "succeeded" in out or "partial" in out
    assert "seatsync runs list --before" in out
    assert main(["history", "Fabrikam", "--licence", "Microsoft 365 Business Premium"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "PURCHASED  ASSIGNED  BILLED  TO BILL" in out and "Business Premium" in out
    assert main(["runs", "list", "--limit", "0"]) == EXIT_USAGE
    assert "--limit" in capsys.readouterr().err
    assert main(["history", FABRIKAM, "--licence", "nothing-like-this"]) == EXIT_USAGE


def test_an_offboarded_customers_history_and_audit_stay_readable_by_id(
        synced: tuple[Msp, list[str]], cli_env: Msp, capsys: pytest.CaptureFixture[str]) -> None:
    msp, _ = synced
    config = msp.services.config()
    document = dump_config(config)
    document["tenants"] = [t for t in document["tenants"] if t["tenantId"] != WOODGROVE]
    msp.services.config_repository.save(parse_config(document), "tests", "Woodgrove has left")
    try:
        status, body = call(audit_trail_http, "https://x/api/audit", params={"customer": WOODGROVE})
        assert status == 200
        assert body["tenantName"] == "Woodgrove Bank" and body["entries"], "its trail is still there"
        history = tenant_history(msp.services.config(), msp.services.snapshots, msp.services.runs, WOODGROVE)
        assert not history.configured and history.tenant_name == "Woodgrove Bank" and history.licences
        assert main(["audit", "--customer", WOODGROVE]) == EXIT_OK
        assert "Woodgrove Bank" in capsys.readouterr().out
        assert main(["history", WOODGROVE]) == EXIT_OK
        assert "no longer configured" in capsys.readouterr().out
    finally:
        msp.services.config_repository.save(config, "tests", "restored")


def test_each_run_sends_its_figures_with_the_run_and_tenant_on_every_event(synced: tuple[Msp, list[str]]) -> None:
    msp, (first, second) = synced
    events: list[logging.LogRecord] = msp.events  # type: ignore[attr-defined]
    assert all(getattr(e, "runId", None) in (first, second) for e in events)
    for run_id in (first, second):
        mine = [e for e in events if e.runId == run_id]  # type: ignore[attr-defined]
        assert [e.getMessage() for e in mine].count("run started") == 1
        [finished] = [e for e in mine if e.getMessage() == "run finished"]
        summary = msp.services.runs.summary(run_id)
        assert summary is not None
        collected = [e for e in mine if e.getMessage() == "tenant collected"]
        assert {e.tenantId for e in collected} == {t.tenant_id for t in msp.config.tenants if t.enabled}  # type: ignore[attr-defined]
        assert sum(e.graphCalls for e in collected) <= summary.graph_calls  # type: ignore[attr-defined]
        pushed = [e for e in mine if e.getMessage() == "tenants pushed"]
        assert sum(e.applied for e in pushed) == summary.changes_applied == finished.changesApplied  # type: ignore[attr-defined]
        assert sum(e.held for e in pushed) == summary.changes_held  # type: ignore[attr-defined]
        assert finished.tenantsSynced == summary.tenants_ok  # type: ignore[attr-defined]
    collected = [e for e in events if e.getMessage() == "tenant collected"]
    assert sum(e.throttled for e in collected) >= 1, "the sample's throttled tenant answered 429"  # type: ignore[attr-defined]
    assert sum(e.retries for e in collected) >= 1  # type: ignore[attr-defined]
    live = [e for e in events if e.runId == second and e.getMessage() == "tenants pushed"]  # type: ignore[attr-defined]
    assert sum(Decimal(e.prorated) for e in live) > 0, "the sample's increase is prorated"  # type: ignore[attr-defined,misc]
