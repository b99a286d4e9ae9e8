"""The OpenAPI document names every HTTP function the Function App registers, with the methods it
answers, and every operation fuzzed from it (schemathesis, through the local host, on the
sample MSP) gets no server error and raises no unhandled exception."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from admin_api.openapi import OPERATIONS, Operation, openapi_document, openapi_path
from local_runner.azurite import Azurite
from local_runner.host import http_functions
from local_runner.local_sync import app_functions
from tests.integration.web_support import Served, served_msp

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("openapi"),
              pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")]


def test_the_document_names_every_registered_route_and_method() -> None:
    registered = {(f.route, m) for f in http_functions(app_functions()) for m in f.methods}
    documented = {(op.route, op.method) for op in OPERATIONS}
    assert registered == documented
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    for route, method in registered:
        operation = document["paths"][openapi_path(route)][method.lower()]
        assert operation["responses"], f"{method} {route} documents its answers"
    refs = {ref.rsplit("/", 1)[-1] for ref in _refs(document["paths"])}
    assert refs <= set(document["components"]["schemas"]), "every schema referenced is defined"


def test_every_operation_that_reads_storage_documents_its_503() -> None:
    document = openapi_document()
    for op in OPERATIONS:
        answers = document["paths"][openapi_path(op.route)][op.method.lower()]["responses"]
        if op.route == "openapi.json" or op.route.startswith("dashboard/static/"):
            assert "503" not in answers, f"{op.method} {op.route} reads no storage"
        else:
            assert list(answers["503"]["content"]) == (["text/html"] if op.dashboard else
                                                       ["application/problem+json"]), f"{op.method} {op.route}"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


@pytest.fixture(scope="module")
def served(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_msp(azurite, Path(tmp_path_factory.mktemp("openapi"))) as running:
        yield running
        running.host.durable.wait(120)


@pytest.fixture(scope="module")
def api_schema(served: Served) -> Any:
    return schemathesis.openapi.from_wsgi("/api/openapi.json", served.host.server.app)


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method} {op.route}")
def test_no_operation_fails_on_any_input(served: Served, api_schema: Any, operation: Operation) -> None:
    """Only server errors count here: the answers to nonsense are 4xx by design."""
    served.reinstall()
    api_operation = api_schema[openapi_path(operation.route)][operation.method]

    @given(case=api_operation.as_strategy())
    @settings(max_examples=6, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    try:
        fuzz()
    finally:  # a sync the fuzz started finishes on our services, not another module's
        served.host.durable.wait(120)
