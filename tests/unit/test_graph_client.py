"""GraphClient's completeness checks, report parsing and token handling, over a fake transport."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from shared.adapters import graph_tokens
from shared.adapters.graph import GraphClient, _parse_mailbox_report
from shared.adapters.graph_tokens import (
    TenantTokens,
    aadsts_code,
    describe_auth_failure,
    is_microsoft_authority,
    token_tenant,
)
from shared.adapters.http import RetryingHttp, RetryPolicy
from shared.errors import GraphAuthError, GraphError, IncompleteReadError
from shared.settings import GraphSettings

TENANT = "11111111-1111-4111-8111-111111111111"
GRAPH = "https://graph.test"
Route = Callable[[requests.PreparedRequest], tuple[int, Any]]


class FakeGraph(BaseAdapter):
    """Answers requests with ``route(request) -> (status, json body)``; records the URLs."""

    def __init__(self, route: Route) -> None:
        super().__init__()
        self.route = route
        self.urls: list[str] = []

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        self.urls.append(str(request.url))
        status, body = self.route(request)
        response = requests.Response()
        response.status_code = status
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.url = str(request.url)
        response.request = request
        return response

    def close(self) -> None:
        return None


class StaticCredential:
    def __init__(self, token: str = "opaque-token") -> None:
        self.token = token
        self.calls = 0

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken(self.token, int(time.time()) + 3600)


def settings() -> GraphSettings:
    return GraphSettings(client_id="22222222-2222-4222-8222-222222222222", partner_tenant_id=TENANT,
                         client_secret="x", authority_host="https://login.test", endpoint=GRAPH)


def client_over(route: Route, **kwargs: Any) -> tuple[GraphClient, FakeGraph]:
    fake = FakeGraph(route)
    session = requests.Session()
    session.mount("https://", fake)
    http = RetryingHttp("Microsoft Graph", policy=RetryPolicy(max_attempts=2), session=session,
                        sleep=lambda s: None)
    credential = StaticCredential()
    return GraphClient(settings(), http=http, credential_factory=lambda t: credential, **kwargs), fake


def user(n: int) -> dict[str, Any]:
    return {"id": f"u{n}", "userPrincipalName": f"u{n}@x.example", "displayName": f"U {n}",
            "accountEnabled": True, "userType": "Member", "assignedLicenses": []}


def paged(pages: dict[str, dict[str, Any]]) -> Route:
    """Serve ``pages`` keyed by the skiptoken of the request ('' for the first page)."""

    def route(request: requests.PreparedRequest) -> tuple[int, Any]:
        url = str(request.url)
        token = url.split("$skiptoken=", 1)[1] if "$skiptoken=" in url else ""
        return 200, pages[token]

    return route


def next_link(token: str, host: str = GRAPH) -> str:
    return f"{host}/v1.0/users?$top=999&$skiptoken={token}"


def test_a_repeated_next_link_is_an_incomplete_read() -> None:
    client, fake = client_over(paged({
        "": {"value": [user(1)], "@odata.nextLink": next_link("a")},
        "a": {"value": [user(2)], "@odata.nextLink": next_link("a")},
    }))
    with pytest.raises(IncompleteReadError, match="pager loops"):
        client.list_users(TENANT)
    assert len(fake.urls) == 2


def test_a_page_without_value_is_an_incomplete_read() -> None:
    client, _ = client_over(paged({"": {"value": [user(1)], "@odata.nextLink": next_link("a")},
                                   "a": {"@odata.context": "x"}}))
    with pytest.raises(IncompleteReadError, match="no 'value' list"):
        client.list_users(TENANT)


def test_an_item_on_two_pages_is_an_incomplete_read() -> None:
    client, _ = client_over(paged({"": {"value": [user(1), user(2)], "@odata.nextLink": next_link("a")},
                                   "a": {"value": [user(2), user(3)]}}))
    with pytest.raises(IncompleteReadError, match="u2 appeared on two pages"):
        client.list_users(TENANT)


def test_a_next_link_to_another_host_is_not_followed() -> None:
    client, fake = client_over(paged({
        "": {"value": [user(1)], "@odata.nextLink": next_link("a", "https://evil.example")}}))
    with pytest.raises(IncompleteReadError, match=r"outside https://graph\.test"):
        client.list_users(TENANT)
    assert all(u.startswith(GRAPH) for u in fake.urls)


def test_endless_empty_pages_are_an_incomplete_read() -> None:
    pages = {"": {"value": [], "@odata.nextLink": next_link("1")}}
    pages.update({str(i): {"value": [], "@odata.nextLink": next_link(str(i + 1))} for i in range(1, 10)})
    client, fake = client_over(paged(pages))
    with pytest.raises(IncompleteReadError, match="empty pages"):
        client.list_users(TENANT)
    assert len(fake.urls) == 4


def test_more_pages_than_possible_is_an_incomplete_read() -> None:
    pages = {"": {"value": [user(0)], "@odata.nextLink": next_link("1")}}
    pages.update({str(i): {"value": [user(i)], "@odata.nextLink": next_link(str(i + 1))}
                  for i in range(1, 10)})
    client, _ = client_over(paged(pages), max_pages=3)
    with pytest.raises(IncompleteReadError, match="more than 3 pages"):
        client.list_users(TENANT)


def test_a_refused_skiptoken_is_an_incomplete_read() -> None:
    def route(request: requests.PreparedRequest) -> tuple[int, Any]:
        if "$skiptoken" in str(request.url):
            return 400, {"error": {"code": "Directory_ExpiredPageToken", "message": "expired"}}
        return 200, {"value": [user(1)], "@odata.nextLink": next_link("a")}

    client, _ = client_over(route)
    with pytest.raises(IncompleteReadError, match="Directory_ExpiredPageToken") as caught:
        client.list_users(TENANT)
    assert caught.value.status == 400


def test_users_without_the_selected_fields_are_an_incomplete_read() -> None:
    partial = {"id": "u1", "userPrincipalName": "u1@x.example", "displayName": "U"}
    client, _ = client_over(paged({"": {"value": [partial]}}))
    with pytest.raises(IncompleteReadError, match="assignedLicenses"):
        client.list_users(TENANT)


def test_a_complete_read_maps_users_and_sends_the_exact_query() -> None:
    licensed = {**user(2), "assignedLicenses": [{"skuId": "ABC", "disabledPlans": []}],
                "department": "Sales", "officeLocation": "", "mail": None, "givenName": "Ann", "surname": "",
                "jobTitle": "Buyer", "mobilePhone": None, "businessPhones": ["+44 20 7946 0000", ""],
                "proxyAddresses": ["SMTP:ann@x.example", "smtp:ann.lee@x.example", "SIP:ann@x.example"]}
    client, fake = client_over(paged({"": {"value": [user(1)], "@odata.nextLink": next_link("a")},
                                      "a": {"value": [licensed]}}))
    users = client.list_users(TENANT)
    assert [u.id for u in users] == ["u1", "u2"]
    assert users[1].sku_ids == ("abc",)
    assert users[1].department == "Sales"
    assert users[1].office is None
    assert users[1].mail is None
    assert (users[1].given_name, users[1].surname, users[1].job_title, users[1].mobile_phone) == (
        "Ann", None, "Buyer", None)
    assert users[1].business_phones == ("+44 20 7946 0000",)
    assert users[1].proxy_addresses == ("ann@x.example", "ann.lee@x.example")  # SMTP only, without the prefix
    assert fake.urls[0] == (f"{GRAPH}/v1.0/users?$select=id,userPrincipalName,displayName,"
                            "accountEnabled,userType,assignedLicenses,mail,officeLocation,department,"
                            "city,state,country,givenName,surname,jobTitle,mobilePhone,businessPhones,"
                            "proxyAddresses&$top=999")
    assert fake.urls[1] == next_link("a")
    assert client.calls == 2


def test_403_names_the_permission_the_endpoint_needs() -> None:
    client, _ = client_over(lambda r: (403, {"error": {"code": "Authorization_RequestDenied",
                                                       "message": "Insufficient privileges"}}))
    with pytest.raises(GraphAuthError) as caught:
        client.list_subscribed_skus(TENANT)
    assert caught.value.status == 403
    assert "LicenseAssignment.Read.All" in str(caught.value)
    assert f"/{TENANT}/adminconsent?client_id=" in str(caught.value)


def test_skus_missing_counts_are_an_incomplete_read() -> None:
    client, _ = client_over(paged({"": {"value": [{"skuId": "s", "skuPartNumber": "SPB",
                                                   "consumedUnits": 1}]}}))
    with pytest.raises(IncompleteReadError, match=r"prepaidUnits\.enabled"):
        client.list_subscribed_skus(TENANT)


REPORT_HEADER = ("Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,"
                 "Created Date,Last Activity Date,Item Count,Storage Used (Byte),"
                 "Issue Warning Quota (Byte),Prohibit Send Quota (Byte),"
                 "Prohibit Send/Receive Quota (Byte),Deleted Item Count,Deleted Item Size (Byte),"
                 "Deleted Item Quota (Byte),Has Archive,Recipient Type,Report Period")


def report(*rows: str) -> bytes:
    return ("\ufeff" + "\r\n".join([REPORT_HEADER, *rows]) + "\r\n").encode("utf-8")


def test_the_mailbox_report_is_read_by_column_name_and_types_are_normalised() -> None:
    boxes = _parse_mailbox_report(TENANT, report(
        '2026-01-01,jo@x.example,"Bloggs, Jo",False,,2024-01-01,,1,1,1,1,1,0,0,1,False,UserMailbox,7',
        "2026-01-01,help@x.example,Help,False,,2024-01-01,,1,1,1,1,1,0,0,1,False,Shared,7",
        "2026-01-01,old@x.example,Old,True,2025-01-01,2020-01-01,,0,0,,,,0,0,,False,SharedMailbox,7",
    ))
    assert [(b.user_principal_name, b.display_name, b.recipient_type, b.is_deleted) for b in boxes] == [
        ("jo@x.example", "Bloggs, Jo", "User", False),
        ("help@x.example", "Help", "Shared", False),
        ("old@x.example", "Old", "Shared", True),
    ]


def test_a_report_without_recipient_type_cannot_tell_shared_mailboxes() -> None:
    old_format = b"Report Refresh Date,User Principal Name,Display Name,Is Deleted\r\n"
    with pytest.raises(GraphError, match="Recipient Type"):
        _parse_mailbox_report(TENANT, old_format)


def test_hashed_report_names_raise_the_privacy_setting_error() -> None:
    hashed = "2026-01-01,8F1E0A6C1B5D4E3F2A1B0C9D8E7F6A5B,1A2B,False,,,,1,1,1,1,1,0,0,1,False,User,7"
    with pytest.raises(GraphError) as caught:
        _parse_mailbox_report(TENANT, report(hashed))
    assert "Display concealed user, group, and site names in all reports" in str(caught.value)
    assert "hashed" in str(caught.value)


# ----------------------------------------------------------------------------- tokens


def test_aadsts_codes_are_found_anywhere_in_the_exception_chain() -> None:
    # How MSAL and azure-identity report an unknown tenant: the code is two exceptions deep.
    discovery = ValueError('OIDC Discovery failed. HTTP status: 400, Error: {"error_description": '
                           "\"AADSTS90002: Tenant 'x' not found. Trace ID: 1 Correlation ID: 2\"}")
    authority = ValueError("Unable to get authority configuration for https://login.test/x")
    authority.__context__ = discovery
    outer = ClientAuthenticationError("Authentication failed: Unable to get authority configuration")
    outer.__cause__ = authority
    assert aadsts_code(outer) == "AADSTS90002"
    assert describe_auth_failure(outer) == "AADSTS90002: Tenant 'x' not found."
    assert aadsts_code(ClientAuthenticationError("network down")) is None


def test_the_tenant_of_a_jwt_is_read_and_opaque_tokens_are_accepted() -> None:
    claims = base64.urlsafe_b64encode(json.dumps({"tid": TENANT.upper()}).encode()).decode().rstrip("=")
    assert token_tenant(f"e30.{claims}.sig") == TENANT
    assert token_tenant("opaque") is None
    assert token_tenant("a.!!!.c") is None


def test_instance_discovery_is_disabled_only_for_hosts_other_than_microsofts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[dict[str, Any]] = []

    def record(tenant_id: str, client_id: str, secret: str, **kwargs: Any) -> StaticCredential:
        created.append(kwargs)
        return StaticCredential()

    monkeypatch.setattr(graph_tokens, "ClientSecretCredential", record)
    public = GraphSettings(client_id="c", partner_tenant_id=TENANT, client_secret="s")
    TenantTokens(public, verify="/ca.pem").credential(TENANT)
    TenantTokens(settings(), verify="/ca.pem").credential(TENANT)
    assert "disable_instance_discovery" not in created[0]
    assert created[0]["authority"] == "https://login.microsoftonline.com"
    assert created[0]["connection_verify"] == "/ca.pem"
    assert created[1]["disable_instance_discovery"] is True
    assert is_microsoft_authority("https://login.microsoftonline.us")
    assert not is_microsoft_authority("https://127.0.0.1:8443")


def test_one_credential_per_tenant_and_tokens_are_cached() -> None:
    made: list[str] = []
    credential = StaticCredential()

    def factory(tenant_id: str) -> StaticCredential:
        made.append(tenant_id)
        return credential

    tokens = TenantTokens(settings(), credential_factory=factory)
    assert tokens.token(TENANT) == tokens.token(TENANT) == "opaque-token"
    assert made == [TENANT]
    assert credential.calls == 1
    tokens.invalidate(TENANT)
    tokens.token(TENANT)
    assert made == [TENANT, TENANT]
    assert credential.calls == 2


def test_a_failing_credential_becomes_graph_auth_error_with_a_hint() -> None:
    class Failing(StaticCredential):
        def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                      enable_cae: bool = False, **kwargs: Any) -> AccessToken:
            raise ClientAuthenticationError(
                "Authentication failed: AADSTS7000222: The provided client secret keys for app "
                "'c' are expired. Trace ID: t Correlation ID: c Timestamp: 2026-01-01 00:00:00Z")

    tokens = TenantTokens(settings(), credential_factory=lambda t: Failing())
    with pytest.raises(GraphAuthError) as caught:
        tokens.token(TENANT)
    assert caught.value.code == "AADSTS7000222"
    assert "add a new secret" in str(caught.value)
    assert "Trace ID" not in str(caught.value)


def test_send_mail_validates_its_arguments_before_sending() -> None:
    client, fake = client_over(lambda r: (202, b""))
    with pytest.raises(ValueError, match="email address"):
        client.send_mail("a@x.example", "s", "<p>h</p>", "t", [])
    with pytest.raises(ValueError, match="subject"):
        client.send_mail("a@x.example", " ", "<p>h</p>", "t", ["b@x.example"])
    assert fake.urls == []
    client.send_mail("a@x.example", "Subject", "<p>h</p>", "t", ["b@x.example"])
    assert fake.urls == [f"{GRAPH}/v1.0/users/a@x.example/sendMail"]



def test_the_tokens_kept_are_bounded_and_the_least_recently_used_is_forgotten_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_tokens, "MAX_CACHED_TOKENS", 3)
    made: list[str] = []

    def factory(tenant_id: str) -> StaticCredential:
        made.append(tenant_id)
        return StaticCredential()

    tokens = TenantTokens(settings(), credential_factory=factory)
    tenants = [f"0000000{i}-0000-4000-8000-000000000000" for i in range(5)]
    for tenant in tenants[:3]:
        tokens.token(tenant)
    tokens.token(tenants[0])  # used again: the most recent
    tokens.token(tenants[3])  # a fourth: the least recently used (tenants[1]) is forgotten
    assert tokens.cached_tenants == 3
    assert made == [*tenants[:3], tenants[3]]
    tokens.token(tenants[0])
    tokens.token(tenants[2])
    assert made == [*tenants[:3], tenants[3]], "the tokens kept are used"
    tokens.token(tenants[1])
    assert made[-1] == tenants[1] and tokens.cached_tenants == 3, "a forgotten token is asked for again"
    for tenant in tenants * 3:
        tokens.token(tenant)
    assert tokens.cached_tenants == 3


def test_the_partner_tenant_s_token_is_kept_while_every_customer_s_comes_and_goes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run reads the GDAP listing with the partner's token at its start and emails its alerts
    with it at its end: thousands of customers' tokens between must not cost it a second request."""
    monkeypatch.setattr(graph_tokens, "MAX_CACHED_TOKENS", 3)
    made: list[str] = []

    def factory(tenant_id: str) -> StaticCredential:
        made.append(tenant_id)
        return StaticCredential()

    tokens = TenantTokens(settings(), credential_factory=factory)  # TENANT is the partner tenant
    tokens.token(TENANT)
    customers = [f"0000000{i}-0000-4000-8000-000000000000" for i in range(6)]
    for tenant in customers * 2:
        tokens.token(tenant)
    tokens.token(TENANT.upper())
    assert made.count(TENANT) == 1 and tokens.cached_tenants == 3
    assert len(made) == 1 + 2 * len(customers), "the customers' tokens are still forgotten, oldest first"


def relationship(n: int) -> dict[str, Any]:
    """A GDAP relationship as Graph lists it, with its roles."""
    return {"id": f"rel-{n:05d}", "displayName": f"SeatSync relationship {n}", "status": "active",
            "customer": {"tenantId": f"aaaaaaaa-0000-4000-8000-{n:012d}", "displayName": f"Customer {n:05d} Ltd"},
            "endDateTime": "2027-06-01T00:00:00Z", "autoExtendDuration": "P180D",
            "accessDetails": {"unifiedRoles": [{"roleDefinitionId": f"{r:08x}-0000-4000-8000-000000000000"}
                                               for r in range(8)]},
            "duration": "P730D", "createdDateTime": "2025-06-01T00:00:00Z",
            "lastModifiedDateTime": "2025-06-01T00:00:00Z", "activatedDateTime": "2025-06-01T00:00:00Z",
            "operations@odata.navigationLink": "x" * 120}


def test_a_long_gdap_listing_holds_a_page_of_json_at_a_time() -> None:
    """The partner's GDAP relationships are mapped as each page comes: listing thousands holds
    what is kept and one page of Graph's JSON, not every page's."""
    import tracemalloc

    pages_count, per_page = 30, 100
    pages = {("" if p == 0 else str(p)): {
        "value": [relationship(p * per_page + i) for i in range(per_page)],
        **({"@odata.nextLink": f"{GRAPH}/v1.0/tenantRelationships/delegatedAdminRelationships?$skiptoken={p + 1}"}
           if p + 1 < pages_count else {})} for p in range(pages_count)}
    bodies = {token: json.dumps(page).encode() for token, page in pages.items()}
    del pages
    client, fake = client_over(lambda request: (200, bodies[str(request.url).split("$skiptoken=", 1)[1]
                                                            if "$skiptoken=" in str(request.url) else ""]))
    one_page = json.loads(bodies[""])
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    probe = json.loads(bodies["1"])  # what one page of parsed JSON holds
    page_size = tracemalloc.get_traced_memory()[0] - base
    del probe
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    found = client.list_gdap_relationships()
    kept = tracemalloc.get_traced_memory()[0] - base
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert len(found) == pages_count * per_page and len(fake.urls) == pages_count
    assert found[-1].customer_tenant_id == f"aaaaaaaa-0000-4000-8000-{pages_count * per_page - 1:012d}"
    assert len(found[0].role_ids) == 8 and one_page["value"][0]["id"] == found[0].id
    # the few statuses, extensions and sets of roles are shared by the thousands of relationships
    assert found[0].role_ids is found[-1].role_ids and found[0].role_ids == tuple(
        f"{r:08x}-0000-4000-8000-000000000000" for r in range(8))
    assert found[0].status is found[-1].status and found[0].auto_extend is found[-1].auto_extend == "P180D"
    assert not hasattr(found[0], "__dict__")
    assert kept / len(found) < 700, f"{kept / len(found):.0f} bytes kept a relationship"
    assert peak - kept < 4 * page_size, (
        f"listing held {(peak - kept) / 2**20:.1f} MB beside what it kept; a page is {page_size / 2**20:.2f} MB, "
        f"all {pages_count} pages {pages_count * page_size / 2**20:.1f} MB")
