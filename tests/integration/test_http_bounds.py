"""Every HTTP route, present and future (discovered from the registered functions), refuses
what it cannot take with 400 or 413 naming the limit, before its own code runs: bodies too
large or nested too deeply, and ids Table Storage could not hold as keys. Configuration bodies
are read strictly: a key given twice is refused with both lines, and nothing is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from admin_api.http import BOUNDED, MAX_BODY_BYTES
from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from shared.bootstrap import Services, set_services
from shared.config.input_limits import MAX_DEPTH
from shared.config.schema import parse_config
from shared.settings import Settings
from tests.http_support import DurableHost, Route, call, durable_host, http_routes

pytestmark = pytest.mark.integration

T1 = "1f0a5b2c-0001-4a1b-8c2d-000000000001"
CONFIG: dict[str, Any] = {
    "psaConnections": [{"name": "cw", "type": "connectwise", "url": "https://cw.example.com/v4_6_release/apis/3.0",
                        "companyId": "msp", "publicKey": {"setting": "A"}, "privateKey": {"setting": "B"},
                        "clientId": "12345678-1234-1234-1234-123456789012"}],
    "billingProfiles": [{"name": "m365-bp", "psa": "cw", "productId": "1"}],
    "tenants": [{"tenantId": T1, "name": "Fabrikam Ltd", "companies": [
        {"psa": "cw", "companyId": "19", "licences": [
            {"skuId": "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "agreementId": "100", "profile": "m365-bp"}]}]}],
}
ROUTES = http_routes()
CALLS = [(route, method) for route in ROUTES for method in route.methods]
WITH_PARAMS = [(route, method, param) for route, method in CALLS for param in route.params]
BAD_IDS = ["a/b", "a\\b", "a#b", "what?", "tab\there", "nul\x00", "x" * 257]


def ident(value: Any) -> str:
    if isinstance(value, Route):
        return value.name
    return str(value)


@pytest.fixture(scope="module")
def host() -> Iterator[DurableHost]:
    yield from durable_host()


@pytest.fixture
def services(azurite: Azurite, store: TableStore) -> Iterator[Services]:
    settings = Settings.from_environment({"SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string,
                                          "SEATSYNC_TABLE_PREFIX": store.prefix})
    installed = Services(settings, store=store)
    installed.config_repository.save(parse_config(CONFIG), "setup", "fixture")
    set_services(installed)
    yield installed
    set_services(None)


def test_every_http_route_is_registered_bounded() -> None:
    assert len(ROUTES) >= 18
    unbounded = [r.name for r in ROUTES if not getattr(r.handler, BOUNDED, False)]
    assert unbounded == [], "register HTTP routes on admin_api.http.Blueprint so that the limits apply"


@pytest.mark.parametrize(("route", "method"), CALLS, ids=ident)
def test_deep_nesting_is_refused_on_every_route(route: Route, method: str, services: Services,
                                                host: DurableHost) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    for headers in ({}, {"Content-Type": "application/json"}, {"Content-Type": "application/yaml"}):
        response = call(route, method, body=deep, headers=headers, host=host)
        assert response.status_code == 400, route.name
        assert json.loads(response.get_body()) == {
            "error": f"the request body is nested more than {MAX_DEPTH} levels deep; at most {MAX_DEPTH} are "
                     "accepted", "field": "body"}
    assert host.started == []


@pytest.mark.parametrize(("route", "method"), CALLS, ids=ident)
def test_a_body_too_large_is_413_on_every_route(route: Route, method: str, services: Services,
                                                host: DurableHost) -> None:
    response = call(route, method, body=b" " * (MAX_BODY_BYTES + 1), host=host)
    assert response.status_code == 413
    assert json.loads(response.get_body()) == {
        "error": f"the request body is {MAX_BODY_BYTES + 1} bytes; at most 8 MiB ({MAX_BODY_BYTES} bytes) are "
                 "accepted", "field": "body"}


@pytest.mark.parametrize(("route", "method", "param"), WITH_PARAMS, ids=ident)
def test_ids_table_storage_cannot_hold_are_400_on_every_route(route: Route, method: str, param: str,
                                                              services: Services, host: DurableHost) -> None:
    for value in BAD_IDS:
        params = dict.fromkeys(route.params, "x") | {param: value}
        response = call(route, method, route_params=params, host=host)
        assert response.status_code == 400, (route.name, value)
        assert json.loads(response.get_body())["field"] == param


def _route(name: str) -> Route:
    return next(r for r in ROUTES if r.name == name)


@pytest.mark.parametrize(("content_type", "body", "message"), [
    ("application/json", b'{"version": 1,\n "tenants": [],\n "psaConnections": [],\n "tenants": []}',
     "the key 'tenants' is given twice in one object, at lines 2 and 4"),
    ("application/yaml", b"version: 1\ntenants: []\npsaConnections: []\ntenants: []\n",
     "the key 'tenants' is given twice in one mapping, at lines 2 and 4"),
])
def test_a_configuration_body_with_a_key_twice_is_refused(content_type: str, body: bytes, message: str,
                                                          services: Services) -> None:
    before = services.config_repository.current()
    response = call(_route("config_document"), "PUT", body=body,
                    headers={"Content-Type": content_type, "If-Match": "*"})
    assert response.status_code == 400
    assert json.loads(response.get_body()) == {"error": message, "field": "body"}
    assert services.config_repository.current() == before


def test_a_profile_body_that_is_not_utf8_is_refused_without_quoting_it(services: Services) -> None:
    response = call(_route("config_billing_profile"), "PUT", route_params={"name": "m365-bp"},
                    body='{"description": "caf\u00e9 hunter2"}'.encode("latin-1"))
    assert response.status_code == 400
    answer = json.loads(response.get_body())
    assert answer["error"].startswith("the request body is not UTF-8 text") and "hunter2" not in answer["error"]


def test_a_manual_sync_body_with_a_key_twice_is_refused(services: Services, host: DurableHost) -> None:
    response = call(_route("sync_http"), "POST", body=b'{"dryRun": true, "dryRun": false}', host=host)
    assert response.status_code == 400
    assert json.loads(response.get_body())["error"] == ("the key 'dryRun' is given twice in one object, at lines "
                                                        "1 and 1")
    assert host.started == []


@pytest.mark.parametrize(("route", "method"), [(r, m) for r, m in CALLS if m in ("POST", "PUT")], ids=ident)
def test_numbers_json_cannot_carry_are_refused_on_every_route(route: Route, method: str, services: Services,
                                                              host: DurableHost) -> None:
    """A 5,000-digit integer (beyond Python's conversion limit) or NaN is a 4xx, never a crash."""
    before = services.config_repository.current()
    for body in (b'{"dryRun": 1' + b"0" * 5000 + b"}", b'{"dryRun": NaN}'):
        response = call(route, method, body=body, host=host,
                        headers={"Content-Type": "application/json", "If-Match": "*"})
        assert 400 <= response.status_code < 500, (route.name, response.get_body()[:300])
    assert services.config_repository.current() == before
    assert host.started == []


def test_a_manual_sync_body_with_a_huge_number_names_the_limit(services: Services, host: DurableHost) -> None:
    response = call(_route("sync_http"), "POST", body=b'{"dryRun": 1' + b"0" * 5000 + b"}", host=host)
    assert response.status_code == 400
    assert json.loads(response.get_body()) == {"error": "the request body holds a number of more than 4300 digits",
                                               "field": "body"}
