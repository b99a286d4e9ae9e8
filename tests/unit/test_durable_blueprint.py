"""``durable_blueprint`` declares the functions as the Durable Functions SDK's own decorators do:
the same metadata for the host, the same orchestrator output, the same client handed to a route,
with the SDK imported only when a durable function runs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import typing
from collections.abc import Generator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

import durable_blueprint

ROOT = Path(__file__).resolve().parents[2]

# The app's functions as the host indexes them: name, script file and bindings, in order.
METADATA = ("import json, sys\n{setup}import function_app\n"
            "print(json.dumps([{{'name': f.get_function_name(), 'repr': f.get_dict_repr(),"
            " 'user': f.get_user_function().__name__}} for f in function_app.app.get_functions()], default=str))")
WITH_SDK = ("import azure.durable_functions as df, durable_blueprint\n"
            "durable_blueprint.Blueprint = df.Blueprint\ndurable_blueprint.DFApp = df.DFApp\n")


def _metadata(setup: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-c", METADATA.format(setup=setup)], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_app_declares_every_function_as_the_sdk_decorators_would() -> None:
    ours = _metadata("")
    sdk = _metadata(WITH_SDK)
    assert len(ours) > 10
    assert ours == sdk
    kinds = {b["type"] for f in ours for b in f["repr"]["bindings"]}
    assert {"orchestrationTrigger", "activityTrigger", "durableClient", "httpTrigger", "timerTrigger"} <= kinds


def test_importing_the_app_leaves_the_sdk_and_aiohttp_unloaded() -> None:
    script = ("import json, sys\nimport function_app\n"
              "print(json.dumps([m for m in ('azure.durable_functions', 'aiohttp') if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                          timeout=120)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_every_function_s_annotations_resolve_as_the_worker_resolves_them() -> None:
    """The Python worker resolves each function's type hints when it loads it; the SDK's types are
    imported only for type checking, so no registered function may name them at run time."""
    from local_runner.local_sync import app_functions  # the app's functions, built once per process

    for function in app_functions():
        user = function.get_user_function()
        hints = typing.get_type_hints(user)
        bindings = {b.name: b.type for b in function.get_bindings()}
        for name, kind in bindings.items():
            if kind == "durableClient":
                assert hints[name] is str, function.get_function_name()
            if kind == "orchestrationTrigger":
                assert hints[name] is func.OrchestrationContext, function.get_function_name()


# --------------------------------------------------------------------------- orchestrators

AT = "2026-12-01T00:00:00Z"
STARTED = [{"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": AT},
           {"EventType": 0, "EventId": -1, "IsPlayed": False, "Timestamp": AT, "Name": "greet", "Input": '"Ada"',
            "Version": ""}]
ANSWERED = [*STARTED,
            {"EventType": 4, "EventId": 0, "IsPlayed": False, "Timestamp": AT, "Name": "hello"},
            {"EventType": 13, "EventId": -1, "IsPlayed": False, "Timestamp": AT},
            {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": AT},
            {"EventType": 5, "EventId": -1, "IsPlayed": False, "Timestamp": AT, "TaskScheduledId": 0,
             "Result": '"hello Ada"'}]


def greet(context: df.DurableOrchestrationContext) -> Generator[Any, Any, str]:
    answer = yield context.call_activity("hello", context.get_input())
    context.set_custom_status({"said": answer})
    return f"{answer}!"


def _context(history: list[dict[str, Any]]) -> str:
    return json.dumps({"history": history, "input": '"Ada"', "instanceId": "sync", "isReplaying": False,
                       "parentInstanceId": None})


@pytest.mark.parametrize("history", [STARTED, ANSWERED], ids=["scheduling", "completed"])
def test_an_orchestrator_answers_the_host_as_the_sdk_handle_does(history: list[dict[str, Any]]) -> None:
    ours = durable_blueprint.orchestrator_handle(greet)
    sdk = df.Orchestrator.create(greet)
    for context in (_context(history), SimpleNamespace(body=_context(history))):  # a string, or the host's object
        assert ours(context) == sdk(context)
    assert json.loads(ours(_context(ANSWERED)))["output"] == "hello Ada!"


def test_an_orchestrator_registers_as_the_generator_it_runs() -> None:
    bp = durable_blueprint.Blueprint()

    def greeting(context: df.DurableOrchestrationContext) -> Generator[Any, Any, str]:
        return (yield from greet(context))

    built = bp.function_name("greeting")(bp.orchestration_trigger(context_name="context")(greeting)).build()
    user = built.get_user_function()
    assert (built.get_function_name(), user.__name__, user.orchestrator_function) == ("greeting", "greeting", greeting)
    assert [json.loads(b) for b in built.get_raw_bindings()] == [
        {"direction": "IN", "type": "orchestrationTrigger", "name": "context"}]


# --------------------------------------------------------------------------- durable clients

BINDING = json.dumps({"taskHubName": "SeatSyncHub", "creationUrls": {}, "managementUrls": {},
                      "baseUrl": "http://127.0.0.1:1/runtime/webhooks/durabletask",
                      "requiredQueryStringParameters": "code=test", "rpcBaseUrl": "http://127.0.0.1:1/"})


def _route(blueprint: Any) -> tuple[Any, list[Any]]:
    seen: list[Any] = []

    @blueprint.function_name("hub_name")  # type: ignore[untyped-decorator]
    @blueprint.route(route="hub", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)  # type: ignore[untyped-decorator]
    @blueprint.durable_client_input(client_name="client", task_hub="SeatSyncHub")  # type: ignore[untyped-decorator]
    async def hub_name(req: func.HttpRequest, client: df.DurableOrchestrationClient,
                       context: func.Context) -> func.HttpResponse:
        seen.append(client)
        return func.HttpResponse(client._orchestration_bindings.task_hub_name)

    return hub_name.build(), seen


def test_a_route_gets_the_client_the_sdk_middleware_makes() -> None:
    ours, ours_seen = _route(durable_blueprint.Blueprint())
    sdk, sdk_seen = _route(df.Blueprint())
    request = func.HttpRequest("GET", "http://localhost/api/hub", body=b"")
    for built in (ours, sdk):
        response = asyncio.run(built.get_user_function()(req=request, client=BINDING,
                                                           context=SimpleNamespace(invocation_id="call-7")))
        assert response.get_body() == b"SeatSyncHub"
    assert [type(c) for c in ours_seen] == [type(c) for c in sdk_seen] == [df.DurableOrchestrationClient]
    assert ours_seen[0]._function_invocation_id == sdk_seen[0]._function_invocation_id == "call-7"
    assert ours.get_raw_bindings() == sdk.get_raw_bindings()
    user = ours.get_user_function()
    assert user.__wrapped__ is user.client_function  # the route's own code, as under the SDK's middleware
    assert typing.get_type_hints(user)["client"] is str


# --------------------------------------------------------------------------- statuses


@pytest.mark.parametrize(("status", "active"), [
    (df.OrchestrationRuntimeStatus.Running, True), (df.OrchestrationRuntimeStatus.Pending, True),
    (df.OrchestrationRuntimeStatus.ContinuedAsNew, True), (df.OrchestrationRuntimeStatus.Completed, False),
    (df.OrchestrationRuntimeStatus.Failed, False), (df.OrchestrationRuntimeStatus.Terminated, False),
    (df.OrchestrationRuntimeStatus.Suspended, False), (None, False)])
def test_a_status_is_active_while_the_orchestration_runs(status: df.OrchestrationRuntimeStatus | None,
                                                          active: bool) -> None:
    answer = None if status is None else SimpleNamespace(runtime_status=status)
    assert durable_blueprint.is_active(answer) is active
    assert set(durable_blueprint.ACTIVE_STATUSES) <= {s.value for s in df.OrchestrationRuntimeStatus}
