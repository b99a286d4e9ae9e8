"""Every HTTP route, fuzzed: whatever the method, ids, query, headers and body (JSON of any shape
and depth, YAML, bytes), a route answers without an unhandled exception and without a 5xx.

The routes are discovered from the registered functions (a new route is fuzzed without listing
it) and called as the Functions host calls them, on Azurite with a stored configuration and held
decrease, and a local stand-in for the Durable extension. Examples are derandomized (the same
every run) and bounded in number, so the test is stable and takes seconds per route.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from shared.bootstrap import Services, set_services
from shared.config.schema import parse_config
from shared.domain.model import ChangeKind, ChangeStatus, PlannedChange
from shared.settings import Settings
from tests.http_support import DurableHost, Route, call, durable_host, http_routes

pytestmark = pytest.mark.integration

T1 = "1f0a5b2c-0001-4a1b-8c2d-000000000001"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
HOLD_KEY = "a" * 24
UNREACHABLE = "https://127.0.0.1:9"  # refused at once: reads that need a PSA fail fast (502)
CONFIG: dict[str, Any] = {
    "psaConnections": [{"name": "cw", "type": "connectwise", "url": f"{UNREACHABLE}/v4_6_release/apis/3.0",
                        "companyId": "msp", "publicKey": {"setting": "A"}, "privateKey": {"setting": "B"},
                        "clientId": "12345678-1234-1234-1234-123456789012"}],
    "billingProfiles": [{"name": "m365-bp", "psa": "cw", "productId": "1"}],
    "customLicences": [{"name": "managed-users", "kind": "entra-users", "scope": "licensed"}],
    "tenants": [{"tenantId": T1, "name": "Fabrikam Ltd", "companies": [
        {"psa": "cw", "companyId": "19", "licences": [
            {"skuId": SPB, "agreementId": "100", "lineId": "500", "profile": "m365-bp"}]}]}],
}
EXAMPLES = 30

# --------------------------------------------------------------------------- what a caller can send

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(min_value=1, max_value=3000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ("- ", "")]))
    text = opener * depth + "1" + closer * depth
    return text.encode()


def document_like(route: Route) -> st.SearchStrategy[Any]:
    """Bodies shaped like what the route takes, edited at random."""
    shapes: list[Any] = [CONFIG, CONFIG["billingProfiles"][0], CONFIG["tenants"][0], CONFIG["customLicences"][0],
                         {"excludedLicences": [SPB]}, {"tenants": [T1], "dryRun": True},
                         {"comment": "ok", "applyNow": True}, {"tenants": [{"tenantId": T1, "action": "accept"}]}]
    return st.sampled_from(shapes).flatmap(
        lambda shape: st.dictionaries(st.sampled_from(sorted(shape) or ["x"]) if isinstance(shape, dict)
                                      else st.just("x"), json_values, max_size=3)
        .map(lambda edits: {**shape, **edits} if isinstance(shape, dict) else shape))


def bodies(route: Route) -> st.SearchStrategy[bytes]:
    as_json = st.one_of(json_values, document_like(route)).map(
        lambda value: json.dumps(value, allow_nan=True).encode())
    as_yaml = st.one_of(json_values, document_like(route)).map(
        lambda value: json.dumps(value, allow_nan=True).replace("NaN", ".nan").encode())
    return st.one_of(st.just(b""), as_json, as_yaml, nested(), st.binary(max_size=200),
                     st.text(max_size=200).map(str.encode),
                     st.sampled_from([b"a: 1\na: 2\n", b"&a [*a]", b"- &x [1]\n- *x\n", b'{"a": 1, "a": 2}',
                                      b"\xef\xbb\xbf{}", b"\xff\xfe{", b"tenants: !!python/object:os.system x"]))


HOSTILE = ["", "\u00b2", "\u0661\u0662", "-1", "0", "1_000", " 5 ", "9" * 40, "25/11/2026", "9999-12-31", "*",
           "a/b#c?", "\x00", "'", "%2F", "x" * 300]
ids = st.one_of(st.sampled_from([T1, T1.upper(), "m365-bp", "managed-users", "latest", HOLD_KEY, "approve",
                                 "reject", "v00000001-00000000", "20261125T020000Z-00000000", *HOSTILE]),
                st.text(max_size=30), st.text(alphabet="/\\#?%'\"\x00\x1f.~ -", max_size=10))


def queries(route: Route) -> st.SearchStrategy[dict[str, str]]:
    """The route's own query parameters (and others), each given often, with hostile values often."""
    values = st.one_of(st.sampled_from(["all", "pending", "csv", "json", "yaml", "true", "false", "2026-11-25",
                                        "none", "10", T1, "fabrikam", *HOSTILE]), st.text(max_size=30))
    own = st.fixed_dictionaries({}, optional=dict.fromkeys(route.query_names, values))
    other = st.dictionaries(st.text(max_size=8), values, max_size=2)
    return st.builds(lambda a, b: {**b, **a}, own, other)


headers = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["application/json", "application/yaml", "text/yaml", "text/plain",
                                     "application/json; charset=latin-1", "", "multipart/form-data"]),
    "If-Match": st.one_of(st.sampled_from(["*", "none", '"v00000001-00000000"', 'W/"x"', ""]), st.text(max_size=20)),
    "x-ms-client-principal-name": st.text(max_size=40),
})


# --------------------------------------------------------------------------- the app under fuzz


@pytest.fixture(scope="module")
def app(azurite: Azurite) -> Iterator[tuple[Services, DurableHost]]:
    """One configuration, held decrease and Durable stand-in for every route's examples."""
    settings_ = Settings.from_environment({"SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string,
                                           "SEATSYNC_TABLE_PREFIX": "fuzz" + secrets.token_hex(4)})
    store = TableStore.from_settings(settings_)
    services = Services(settings_, store=store, retry_sleep=lambda seconds: None)
    services.config_repository.save(parse_config(CONFIG), "setup", "fixture")
    change = PlannedChange(
        change_id="c" * 24, kind=ChangeKind.SET_QUANTITY, tenant_id=T1, company_id="19", psa="cw",
        agreement_id="100", line_id="500", sku_id=SPB, old_quantity=25, new_quantity=20, reason="fewer users",
        status=ChangeStatus.HELD, mapping_key="m", label="Business Premium", hold_key=HOLD_KEY,
        effective_date=date(2026, 11, 25))
    services.decisions.hold(change, "20261125T020000Z-00000000", datetime(2026, 11, 25, 2, tzinfo=UTC))
    set_services(services)
    try:
        yield from ((services, host) for host in durable_host())
    finally:
        set_services(None)
        store.drop_all()


ROUTES = http_routes()


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_no_route_fails_on_any_request(route: Route, app: tuple[Services, DurableHost]) -> None:
    _, host = app

    def request(method: str, route_params: dict[str, str], query: dict[str, str], request_headers: dict[str, str],
                body: bytes) -> None:
        response = call(route, method, route_params=route_params, params=query, headers=request_headers, body=body,
                        host=host)
        assert response.status_code < 500, (route.name, response.status_code, response.get_body()[:300])

    fuzz = given(method=st.sampled_from(route.methods),
                 route_params=st.fixed_dictionaries(dict.fromkeys(route.params, ids)),
                 query=queries(route), request_headers=headers, body=bodies(route))(request)
    for method in route.methods:  # first, every hostile value in every id and query parameter at once
        for value in HOSTILE:
            fuzz = example(method=method, route_params=dict.fromkeys(route.params, value),
                           query=dict.fromkeys(route.query_names, value), request_headers={}, body=b"")(fuzz)
    settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])(fuzz)()
