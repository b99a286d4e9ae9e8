"""The timer and HTTP triggers: singleton runs, request validation, 202 with status URLs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from shared.bootstrap import Services, set_services
from shared.config.schema import parse_config
from shared.contracts import SYNC_INSTANCE_ID, SyncRequest
from shared.settings import Settings
from sync_orchestrator import sync_http, sync_timer

pytestmark = pytest.mark.integration

T1 = "aaaaaaaa-0000-0000-0000-000000000001"
T2 = "aaaaaaaa-0000-0000-0000-000000000002"
CONFIG = {
    "psaConnections": [{"name": "cw", "type": "connectwise", "url": "https://cw.example.com/v4_6_release/apis/3.0",
                        "companyId": "msp", "publicKey": {"setting": "A"}, "privateKey": {"setting": "B"},
                        "clientId": "12345678-1234-1234-1234-123456789012"}],
    "tenants": [{"tenantId": T1, "name": "Fabrikam"}, {"tenantId": T2, "name": "Contoso", "enabled": False}],
}


class FakeDurableClient:
    def __init__(self, status: df.OrchestrationRuntimeStatus | None) -> None:
        self.status = status
        self.started: list[tuple[str, str, Any]] = []

    async def get_status(self, instance_id: str) -> Any:
        assert instance_id == SYNC_INSTANCE_ID
        return SimpleNamespace(runtime_status=self.status)

    async def start_new(self, name: str, instance_id: str, client_input: Any) -> str:
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


def post(body: bytes | None, client: FakeDurableClient) -> func.HttpResponse:
    request = func.HttpRequest("POST", "https://seatsync.example.net/api/sync", body=body or b"",
                               headers={"x-ms-client-principal-name": "alice@msp.example"})
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


def test_an_empty_body_syncs_every_tenant(services: Services) -> None:
    client = FakeDurableClient(df.OrchestrationRuntimeStatus.Completed)
    assert post(None, client).status_code == 202
    assert SyncRequest.model_validate(client.started[0][2]).tenants is None


def test_409_while_a_run_is_in_progress(services: Services) -> None:
    client = FakeDurableClient(df.OrchestrationRuntimeStatus.Running)
    response = post(b"{}", client)
    assert response.status_code == 409
    assert client.started == []


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


def test_the_timer_skips_while_a_run_is_in_progress(services: Services) -> None:
    handler = sync_timer.build().get_user_function().__wrapped__
    busy = FakeDurableClient(df.OrchestrationRuntimeStatus.Running)
    asyncio.run(handler(SimpleNamespace(past_due=False), busy))
    assert busy.started == []
    idle = FakeDurableClient(df.OrchestrationRuntimeStatus.Failed)
    asyncio.run(handler(SimpleNamespace(past_due=False), idle))
    request = SyncRequest.model_validate(idle.started[0][2])
    assert (request.trigger, request.tenants, request.dry_run) == ("timer", None, False)
