"""The administration API's approvals, audit trail and unlinked licences endpoints, on the sample
MSP (Azurite and the emulators)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest

from admin_api.billing_routes import approvals_decide, approvals_list, audit_trail_http, unlinked_http
from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from shared.bootstrap import set_services
from shared.contracts import SyncRequest
from shared.services.lease import ProcessRef, acquire
from tests.auth_support import platform_auth, signed_in
from tests.integration.msp import TAILSPIN, WOODGROVE, Msp, running_msp

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures(platform_auth.__name__)]


@pytest.fixture
def msp(azurite: Azurite, store: TableStore, tmp_path: Path) -> Iterator[Msp]:
    with running_msp(azurite, store, tmp_path) as running:
        running.sync(tenants=[WOODGROVE])
        set_services(running.services)
        yield running
        set_services(None)


class Client:
    def __init__(self, running: bool = False) -> None:
        self.running = running
        self.started: list[Any] = []

    async def get_status(self, instance_id: str) -> Any:
        return SimpleNamespace(runtime_status=None)

    async def start_new(self, name: str, instance_id: str, payload: Any) -> str:
        self.started.append(payload)
        return instance_id


def get(route: Any, url: str, params: dict[str, str] | None = None) -> func.HttpResponse:
    request = func.HttpRequest("GET", url, body=b"", params=params or {})
    response: func.HttpResponse = route.build().get_user_function()(request)
    return response


def decide(hold_key: str, decision: str, body: dict[str, Any], client: Client) -> func.HttpResponse:
    request = func.HttpRequest("POST", f"https://x/api/approvals/{hold_key}/{decision}",
                               body=json.dumps(body).encode(), route_params={"id": hold_key, "decision": decision},
                               headers=signed_in("alice@msp.example", "Approver"))
    handler = approvals_decide.build().get_user_function().__wrapped__
    response: func.HttpResponse = asyncio.run(handler(request, client))
    return response


def test_pending_approvals_are_listed(msp: Msp) -> None:
    response = get(approvals_list, "https://x/api/approvals")
    [approval] = json.loads(response.get_body())["approvals"]
    assert (approval["tenantName"], approval["from"], approval["to"], approval["status"]) == (
        "Woodgrove Bank", 1250, 1200, "pending")
    assert get(approvals_list, "https://x/api/approvals", {"status": "maybe"}).status_code == 400


def test_approving_with_apply_now_starts_a_sync_of_the_tenant(msp: Msp) -> None:
    [held] = msp.services.decisions.approvals("pending")
    client = Client()
    response = decide(held.hold_key, "approve", {"comment": "confirmed", "applyNow": True}, client)
    assert response.status_code == 200
    body = json.loads(response.get_body())
    assert body["approval"]["status"] == "approved"
    assert body["approval"]["decidedBy"] == "alice@msp.example"
    [payload] = client.started
    assert SyncRequest.model_validate(payload).tenants == [WOODGROVE]
    again = decide(held.hold_key, "reject", {}, Client())
    assert again.status_code == 409, "a decided change cannot be decided again"


def test_apply_now_while_a_command_line_run_holds_the_lease_waits_for_the_next_run(msp: Msp) -> None:
    [held] = msp.services.decisions.approvals("pending")
    running = "20261125T015900Z-0000000c"
    assert acquire(msp.services.runs, msp.services.decisions, running, timedelta(minutes=5),
                   ProcessRef.current()).refused is None
    client = Client()
    response = decide(held.hold_key, "approve", {"applyNow": True}, client)
    assert response.status_code == 200
    assert json.loads(response.get_body())["sync"].startswith("a sync is running")
    assert client.started == [], "no second run is started to be refused"


@pytest.mark.parametrize(("decision", "body", "status"), [
    ("maybe", {}, 400), ("approve", {"applyNow": "yes"}, 400), ("approve", {"colour": 1}, 400)])
def test_bad_decisions_are_refused(msp: Msp, decision: str, body: dict[str, Any], status: int) -> None:
    [held] = msp.services.decisions.approvals("pending")
    assert decide(held.hold_key, decision, body, Client()).status_code == status
    assert msp.services.decisions.approval(held.hold_key).status == "pending"  # type: ignore[union-attr]


def test_an_unknown_approval_is_404(msp: Msp) -> None:
    assert decide("0" * 24, "approve", {}, Client()).status_code == 404


def test_the_audit_trail_as_json_and_csv(msp: Msp) -> None:
    response = get(audit_trail_http, "https://x/api/audit", {"customer": "woodgrove"})
    body = json.loads(response.get_body())
    assert body["tenantName"] == "Woodgrove Bank"
    assert [e["event"] for e in body["entries"]] == ["held"]
    text = get(audit_trail_http, "https://x/api/audit",
               {"customer": WOODGROVE, "from": "2026-11-25", "to": "2026-11-25", "format": "csv"}).get_body().decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["event"], r["before"], r["after"]) for r in rows] == [("held", "1250", "1200")]
    empty = get(audit_trail_http, "https://x/api/audit", {"customer": WOODGROVE, "from": "2026-11-26"})
    assert json.loads(empty.get_body())["entries"] == []


@pytest.mark.parametrize(("params", "field"), [
    ({}, "customer"), ({"customer": "nobody"}, "customer"), ({"customer": "woodgrove", "from": "25/11/2026"}, "from"),
    ({"customer": "woodgrove", "from": "2026-11-26", "to": "2026-11-25"}, "to"),
    ({"customer": "woodgrove", "format": "xml"}, "format")])
def test_bad_audit_queries_name_the_field(msp: Msp, params: dict[str, str], field: str) -> None:
    response = get(audit_trail_http, "https://x/api/audit", params)
    assert response.status_code == 400
    assert json.loads(response.get_body())["field"] == field


def test_unlinked_licences_and_tenants_never_collected(msp: Msp) -> None:
    rows = json.loads(get(unlinked_http, "https://x/api/unlinked").get_body())["unlinked"]
    never = [r for r in rows if r["tenantId"] == TAILSPIN]
    assert never[0]["note"] == "never collected: no snapshot yet"
