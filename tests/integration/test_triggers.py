"""The timer and HTTP triggers: singleton runs, request validation, 202 with status URLs."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.data.tables import UpdateMode

from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore, write_document
from shared.bootstrap import Services, set_services
from shared.config.schema import parse_config
from shared.contracts import SYNC_INSTANCE_ID, SyncRequest
from shared.errors import ConfigError
from shared.services.lease import ProcessRef, acquire
from shared.settings import Settings
from sync_orchestrator import run_lease_http, run_lease_unlock_http, sync_http, sync_timer
from tests.auth_support import platform_auth, signed_in

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures(platform_auth.__name__)]

T1 = "aaaaaaaa-0000-0000-0000-000000000001"
T2 = "aaaaaaaa-0000-0000-0000-000000000002"
CONFIG = {
    "psaConnections": [{"name": "cw", "type": "connectwise", "url": "https://cw.example.com/v4_6_release/apis/3.0",
                        "companyId": "msp", "publicKey": {"setting": "A"}, "privateKey": {"setting": "B"},
                        "clientId": "12345678-1234-1234-1234-123456789012"}],
    "tenants": [{"tenantId": T1, "name": "Fabrikam"}, {"tenantId": T2, "name": "Contoso", "enabled": False}],
}


# What the Durable Python client raises when the host refuses to start a running instance id.
DUPLICATE_INSTANCE = Exception({
    "Message": "Something went wrong while processing your request",
    "ExceptionMessage": "An Orchestration instance with the status Running already exists.",
    "ExceptionType": "System.InvalidOperationException"})


class FakeDurableClient:
    def __init__(self, status: df.OrchestrationRuntimeStatus | None, refuse: Exception | None = None,
                 started_with: Any = None) -> None:
        self.status = status
        self.refuse = refuse
        self.started_with = started_with
        self.started: list[tuple[str, str, Any]] = []

    async def get_status(self, instance_id: str, show_input: bool = False) -> Any:
        """As the Durable client: the instance's input only when asked for."""
        assert instance_id == SYNC_INSTANCE_ID
        return SimpleNamespace(runtime_status=self.status, input_=self.started_with if show_input else None)

    async def start_new(self, name: str, instance_id: str, client_input: Any) -> str:
        if self.refuse is not None:
            raise self.refuse
        self.started.append((name, instance_id, client_input))
        return instance_id

    def create_check_status_response(self, request: func.HttpRequest, instance_id: str) -> func.HttpResponse:
        base = f"https://seatsync.example.net/runtime/webhooks/durabletask/instances/{instance_id}"
        body = {"id": instance_id, "statusQueryGetUri": base, "terminatePostUri": f"{base}/terminate"}
        return func.HttpResponse(json.dumps(body), status_code=202, headers={"Location": base})


@pytest.fixture
def services(azurite: Azurite, store: TableStore) -> Iterator[Services]:
    settings = Settings.from_environment({"SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string,
                                          "SEATSYNC_TABLE_PREFIX": store.prefix})
    installed = Services(settings, store=store)
    installed.config_repository.save(parse_config(CONFIG), "tests")
    set_services(installed)
    yield installed
    set_services(None)


def post(body: bytes | None, client: FakeDurableClient, headers: dict[str, str] | None = None) -> func.HttpResponse:
    request = func.HttpRequest("POST", "https://seatsync.example.net/api/sync", body=body or b"",
                               headers=headers if headers is not None else signed_in("alice@msp.example", "Approver"))
    handler = sync_http.build().get_user_function().__wrapped__  # the code under the client middleware
    response: func.HttpResponse = asyncio.run(handler(request, client))
    return response


def test_manual_sync_starts_the_singleton_and_answers_202(services: Services) -> None:
    client = FakeDurableClient(None)
    response = post(json.dumps({"tenants": [T1.upper()], "dryRun": True}).encode(), client)
    assert response.status_code == 202
    body = json.loads(response.get_body())
    assert body["statusQueryGetUri"].endswith(SYNC_INSTANCE_ID)
    assert body["dryRun"] is True
    [(name, instance, payload)] = client.started
    assert (name, instance) == ("sync_orchestrator", SYNC_INSTANCE_ID)
    request = SyncRequest.model_validate(payload)
    assert request.tenants == [T1] and request.dry_run and request.trigger == "manual"
    assert request.requested_by == "alice@msp.example"
    assert body["runId"] == request.run_id


def test_a_function_key_caller_cannot_name_someone_else(services: Services) -> None:
    client = FakeDurableClient(None)
    forged = {"x-ms-client-principal-name": "ceo@msp.example", "x-functions-key": "the-key"}
    assert post(b"{}", client, forged).status_code == 202
    assert SyncRequest.model_validate(client.started[0][2]).requested_by == "api (function key)"


def test_an_empty_body_syncs_every_tenant(services: Services) -> None:
    client = FakeDurableClient(df.OrchestrationRuntimeStatus.Completed)
    assert post(None, client).status_code == 202
    assert SyncRequest.model_validate(client.started[0][2]).tenants is None


def test_409_while_a_run_is_in_progress(services: Services) -> None:
    client = FakeDurableClient(df.OrchestrationRuntimeStatus.Running)
    response = post(b"{}", client)
    assert response.status_code == 409
    assert client.started == []


def test_409_names_the_run_the_orchestration_was_started_for_before_it_takes_the_lease(services: Services) -> None:
    """Between the start and the run's first activity no lease names the run: the orchestration's
    input does (the README: 409 naming the running run)."""
    starting = SyncRequest(run_id="20261201T120000Z-0a1b2c3d", trigger="timer", requested_by="schedule",
                           requested_at=datetime(2026, 12, 1, 12, tzinfo=UTC))
    client = FakeDurableClient(df.OrchestrationRuntimeStatus.Running, started_with=starting.to_json())
    response = post(b"{}", client)
    body = json.loads(response.get_body())
    assert (response.status_code, body["runId"]) == (409, starting.run_id)
    assert f"run {starting.run_id} is starting" in body["error"] and client.started == []


@pytest.mark.parametrize(("body", "field", "message"), [
    (b"{not json", "body", "not valid JSON"),
    (b"[1]", "body", "JSON object"),
    (b'{"tenants": ["not-a-guid"]}', "tenants[0]", "not a tenant id"),
    (b'{"tenants": ["bbbbbbbb-0000-0000-0000-000000000009"]}', "tenants[0]", "not configured"),
    (f'{{"tenants": ["{T2}"]}}'.encode(), "tenants[0]", "disabled"),
    (b'{"tenants": []}', "tenants", "non-empty"),
    (b'{"dryRun": "yes"}', "dryRun", "true or false"),
    (b'{"dryrun": true}', "dryrun", "unknown field"),
], ids=["malformed", "not-object", "not-guid", "unknown-tenant", "disabled-tenant", "empty-list", "dry-run-type",
        "misspelt"])
def test_bad_requests_get_400_naming_the_problem(services: Services, body: bytes, field: str, message: str) -> None:
    client = FakeDurableClient(None)
    response = post(body, client)
    assert response.status_code == 400
    error = json.loads(response.get_body())
    assert error["field"] == field
    assert message in error["error"]
    assert client.started == []


@pytest.mark.parametrize(("damage", "named"), [
    ("invalid", "invalid stored configuration v00000001-"),
    ("checksum", "fails its checksum"),
    ("pointer", "invalid stored configuration: it cannot be read (KeyError"),
], ids=["fails-validation", "damaged-document", "damaged-pointer"])
def test_a_stored_configuration_that_cannot_be_used_is_a_json_error_naming_it(
        services: Services, damage: str, named: str) -> None:
    table = services.store.table("config")
    if damage == "invalid":
        # stored as it is, as an older or damaged store can hold it
        pointer = table.get_entity("config", "current")
        document = {**CONFIG, "tenants": [{"tenantId": "not-a-guid", "name": "Fabrikam"}]}
        ref = write_document(table, "broken", "doc", document)
        table.upsert_entity({**pointer, **ref.to_entity_fields()})
    elif damage == "checksum":
        pointer = table.get_entity("config", "current")
        table.upsert_entity({**pointer, "DocSha256": "0" * 64})
    else:
        table.upsert_entity({"PartitionKey": "config", "RowKey": "current", "Comment": "half-written"},
                            mode=UpdateMode.REPLACE)
    client = FakeDurableClient(None)
    response = post(b"{}", client)
    assert response.status_code == 500
    assert response.mimetype == "application/json"
    error = json.loads(response.get_body())["error"]
    assert named in error, error
    if damage != "invalid":
        assert "seatsync config history, then rollback" in error
    assert client.started == [], "no run is started on a configuration that cannot be read"


def test_the_timer_skips_while_a_run_is_in_progress(services: Services) -> None:
    handler = sync_timer.build().get_user_function().__wrapped__
    busy = FakeDurableClient(df.OrchestrationRuntimeStatus.Running)
    asyncio.run(handler(SimpleNamespace(past_due=False), busy))
    assert busy.started == []
    idle = FakeDurableClient(df.OrchestrationRuntimeStatus.Failed)
    asyncio.run(handler(SimpleNamespace(past_due=False), idle))
    request = SyncRequest.model_validate(idle.started[0][2])
    assert (request.trigger, request.tenants, request.dry_run) == ("timer", None, False)


CLI_RUN = "20261125T015900Z-0000000c"


def hold_lease(services: Services, run_id: str, process: ProcessRef | None, now: datetime | None = None) -> None:
    services.runs.start(SyncRequest(run_id=run_id, trigger="local", requested_by="carol",
                                    requested_at=datetime(2026, 11, 25, 1, 59, tzinfo=UTC)))
    assert acquire(services.runs, services.decisions, run_id, timedelta(minutes=5), process, now=now).refused is None


def dead_process() -> ProcessRef:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process any more
    return ProcessRef(socket.gethostname(), child.pid, None)


def test_409_names_the_run_while_a_command_line_run_holds_the_lease(services: Services) -> None:
    hold_lease(services, CLI_RUN, ProcessRef.current())
    client = FakeDurableClient(None)
    response = post(b"{}", client)
    assert response.status_code == 409
    body = json.loads(response.get_body())
    assert body["runId"] == CLI_RUN
    assert CLI_RUN in body["error"]
    assert client.started == [], "no instance is started to fail later"


def test_the_durable_runtime_refusing_a_second_instance_is_a_409(services: Services) -> None:
    client = FakeDurableClient(None, refuse=DUPLICATE_INSTANCE)
    response = post(b"{}", client)
    assert response.status_code == 409
    assert "refused a second instance" in json.loads(response.get_body())["error"]


def test_another_start_failure_is_not_mistaken_for_a_running_sync(services: Services) -> None:
    client = FakeDurableClient(None, refuse=Exception({"ExceptionMessage": "The task hub is not reachable"}))
    with pytest.raises(Exception, match="task hub"):
        post(b"{}", client)


@pytest.mark.parametrize("holder", ["dead-process", "function-app-run-no-longer-orchestrated", "lapsed"])
def test_a_dead_run_never_blocks_a_manual_sync(services: Services, holder: str) -> None:
    if holder == "dead-process":
        hold_lease(services, CLI_RUN, dead_process())
    elif holder == "lapsed":
        hold_lease(services, CLI_RUN, ProcessRef("another-machine", 4321, None),
                   now=datetime.now(UTC) - timedelta(minutes=30))
    else:
        hold_lease(services, CLI_RUN, None)  # a Function App run: no process recorded
    client = FakeDurableClient(df.OrchestrationRuntimeStatus.Failed)
    response = post(b"{}", client)
    assert response.status_code == 202
    assert services.runs.lease() is None, "the stale lease is cleared for the new run"
    [event] = [e for e in services.decisions.run_events() if e.event == "died"]
    assert (event.run_id, event.actor) == (CLI_RUN, "the sync endpoint")


def test_the_timer_waits_for_a_live_command_line_run(services: Services) -> None:
    hold_lease(services, CLI_RUN, ProcessRef.current())
    handler = sync_timer.build().get_user_function().__wrapped__
    idle = FakeDurableClient(df.OrchestrationRuntimeStatus.Completed)
    asyncio.run(handler(SimpleNamespace(past_due=False), idle))
    assert idle.started == []
    racing = FakeDurableClient(None, refuse=DUPLICATE_INSTANCE)
    services.runs.release_lease(CLI_RUN)
    asyncio.run(handler(SimpleNamespace(past_due=False), racing))  # a manual sync won the race: skipped quietly
    assert racing.started == []


def call(function: Any, method: str, route: str, body: bytes = b"", principal: str | None = None) -> func.HttpResponse:
    headers = signed_in(principal) if principal else {}
    request = func.HttpRequest(method, f"https://seatsync.example.net/api/{route}", body=body, headers=headers)
    response: func.HttpResponse = function.build().get_user_function()(request)
    return response


def test_unlock_over_http_refuses_a_live_run_unless_forced_and_records_who(services: Services) -> None:
    assert json.loads(call(run_lease_http, "GET", "runs/lease").get_body()) == {"lease": None, "events": []}
    assert json.loads(call(run_lease_unlock_http, "POST", "runs/lease/unlock").get_body())["cleared"] is None
    hold_lease(services, CLI_RUN, ProcessRef.current())
    shown = json.loads(call(run_lease_http, "GET", "runs/lease").get_body())["lease"]
    assert (shown["runId"], shown["stale"]) == (CLI_RUN, None)
    refused = call(run_lease_unlock_http, "POST", "runs/lease/unlock", principal="bob@msp.example")
    assert refused.status_code == 409
    assert json.loads(refused.get_body())["runId"] == CLI_RUN
    assert services.runs.lease() is not None
    for body, field in ((b"{", "body"), (b'{"force": "yes"}', "force"), (b'{"forced": true}', "body")):
        bad = call(run_lease_unlock_http, "POST", "runs/lease/unlock", body)
        assert (bad.status_code, json.loads(bad.get_body())["field"]) == (400, field)
    forced = call(run_lease_unlock_http, "POST", "runs/lease/unlock", b'{"force": true, "comment": "hung"}',
                  principal="bob@msp.example")
    assert forced.status_code == 200
    assert json.loads(forced.get_body())["cleared"]["runId"] == CLI_RUN
    assert services.runs.lease() is None
    events = [(e.event, e.run_id, e.actor) for e in services.decisions.run_events()]
    assert events == [("lease-cleared", CLI_RUN, "bob@msp.example"), ("died", CLI_RUN, "bob@msp.example")]
    shown = json.loads(call(run_lease_http, "GET", "runs/lease").get_body())
    assert shown["lease"] is None
    assert [(e["event"], e["actor"]) for e in shown["events"]] == [("lease-cleared", "bob@msp.example"),
                                                                   ("died", "bob@msp.example")]
    assert "hung" in services.decisions.run_events()[0].reason


def test_a_stale_lease_is_unlocked_without_force(services: Services) -> None:
    hold_lease(services, CLI_RUN, dead_process())
    cleared = call(run_lease_unlock_http, "POST", "runs/lease/unlock")
    assert cleared.status_code == 200
    assert services.runs.lease() is None
    [died] = [e for e in services.decisions.run_events() if e.event == "died"]
    assert died.actor == "api (function key)" and "has ended" in died.reason


def test_the_activities_of_a_run_reuse_its_configuration_version_and_a_new_run_reads_the_current_one(
        services: Services) -> None:
    """Within ``SEATSYNC_CONFIG_RECHECK_SECONDS`` the activities of one run ask Table Storage for
    the configuration once; a version saved meanwhile applies from the next run on."""
    assert services.settings.config_recheck_seconds == 30
    assert services.store.requests is not None
    first = services.run_config("20261125T020000Z-00000001")
    before = services.store.requests.by_kind()
    assert services.run_config("20261125T020000Z-00000001") is first
    assert services.store.requests.by_kind() - before == {}, "no request for the run's next activity"
    changed = {**CONFIG, "tenants": [{"tenantId": "11111111-1111-1111-1111-111111111111", "name": "Northwind"}]}
    services.config_repository.save(parse_config(changed), "tests")
    assert services.run_config("20261125T020000Z-00000001") is first, "the run keeps the version it read"
    later = services.run_config("20261125T020000Z-00000002")
    assert [t.name for t in later.tenants] == ["Northwind"], "the next run reads the version saved"
    never = Services(Settings.from_environment({"SEATSYNC_STORAGE_CONNECTION_STRING": "x",
                                                "SEATSYNC_CONFIG_RECHECK_SECONDS": "0"}), store=services.store)
    assert never.settings.config_recheck_seconds == 0
    assert [t.name for t in never.run_config("20261125T020000Z-00000001").tenants] == ["Northwind"]
    with pytest.raises(ConfigError, match="SEATSYNC_CONFIG_RECHECK_SECONDS must be a whole number of seconds "
                                          "from 0 to 600"):
        Settings.from_environment({"SEATSYNC_STORAGE_CONNECTION_STRING": "x", "SEATSYNC_CONFIG_RECHECK_SECONDS": "-1"})
