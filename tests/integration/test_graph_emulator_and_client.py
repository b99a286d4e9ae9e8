"""The real GraphClient (real azure-identity credentials) against the Graph emulator over HTTPS."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.credentials import TokenCredential
from azure.identity import ClientSecretCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from emulators.base import RunningEmulator
from emulators.graph import GraphEmulator, stable_id
from emulators.graph.throttle import ResourceUnitBudget
from emulators.tls import TlsFiles, ensure_tls_files
from shared.adapters.graph import GraphClient, TenantCredentials
from shared.adapters.http import RetryingHttp, RetryPolicy
from shared.errors import GraphAuthError, GraphError, IncompleteReadError
from shared.settings import GraphSettings

PARTNER = "0a0a0a0a-0000-4000-8000-000000000001"
CLIENT = "c1c1c1c1-0000-4000-8000-000000000002"
SECRET = "emulator-secret-value"
FABRIKAM = "fab00000-0000-4000-8000-000000000010"
NORTHWIND = "00000000-0000-4000-8000-00000000a011"
CONCEALED = "00000000-0000-4000-8000-00000000a012"
THROTTLED = "00000000-0000-4000-8000-00000000a013"
NO_REPORTS = "00000000-0000-4000-8000-00000000a014"
EXPIRED_GDAP = "00000000-0000-4000-8000-00000000a015"
AUTH_MODES = {
    "not-consented": ("00000000-0000-4000-8000-00000000b001", "AADSTS700016"),
    "app-missing": ("00000000-0000-4000-8000-00000000b002", "AADSTS700016"),
    "consent-required": ("00000000-0000-4000-8000-00000000b003", "AADSTS65001"),
    "bad-secret": ("00000000-0000-4000-8000-00000000b004", "AADSTS7000215"),
    "secret-expired": ("00000000-0000-4000-8000-00000000b005", "AADSTS7000222"),
    "disabled": ("00000000-0000-4000-8000-00000000b006", "AADSTS7000112"),
    "unknown-tenant": ("00000000-0000-4000-8000-00000000b007", "AADSTS90002"),
    "blocked-by-conditional-access": ("00000000-0000-4000-8000-00000000b008", "AADSTS53003"),
}
NO_PERMISSIONS = "00000000-0000-4000-8000-00000000b009"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
GENERATED_USERS = 2500


# ----------------------------------------------------------------------------- fixtures


@dataclass
class Sleeper:
    """A ``sleep`` that records what it was asked to wait (and advances a fake clock)."""

    waits: list[float] = field(default_factory=list)
    now: float = 1000.0

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@dataclass
class Env:
    emulator: GraphEmulator
    running: RunningEmulator
    tls: TlsFiles
    certificate_path: Path
    other_certificate_path: Path

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def ca(self) -> str:
        return str(self.tls.ca_certificate)

    def settings(self, **changes: Any) -> GraphSettings:
        values: dict[str, Any] = {
            "client_id": CLIENT, "partner_tenant_id": PARTNER, "client_secret": SECRET,
            "authority_host": self.url, "endpoint": self.url,
        }
        values.update(changes)
        return GraphSettings(**values)

    def client(self, *, sleeper: Sleeper | None = None, policy: RetryPolicy | None = None,
               factory: Any = None, default_http: bool = False, **changes: Any) -> GraphClient:
        sleeper = sleeper or Sleeper()
        http = None if default_http else RetryingHttp("Microsoft Graph", policy=policy, verify=self.ca,
                                                      sleep=sleeper, jitter=lambda: 0.5)
        return GraphClient(self.settings(**changes), verify=self.ca, http=http,
                           credential_factory=factory, sleep=sleeper)

    def credential(self, tenant_id: str) -> ClientSecretCredential:
        return ClientSecretCredential(tenant_id, CLIENT, SECRET, authority=self.url,
                                      connection_verify=self.ca, disable_instance_discovery=True)

    def token(self, tenant_id: str) -> str:
        return self.credential(tenant_id).get_token(f"{self.url}/.default").token

    def get(self, path: str, tenant_id: str, **headers: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token(tenant_id)}", **headers}
        return requests.get(f"{self.url}{path}", headers=headers, verify=self.ca, timeout=10)


def _certificate(directory: Path, name: str) -> tuple[Path, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path = directory / f"{name}.pem"
    path.write_bytes(key_pem + cert_pem)
    return path, cert_pem.decode()


def scenario(certificate_pem: str) -> dict[str, Any]:
    small = {"skus": [{"skuPartNumber": "SPB", "skuId": SPB, "enabled": 5}],
             "users": [{"userPrincipalName": "admin@northwind.example", "licenses": ["SPB"]}]}
    tenants: list[dict[str, Any]] = [
        {
            "tenantId": FABRIKAM, "displayName": "Fabrikam Ltd", "defaultDomain": "fabrikam.com",
            "domains": ["fabrikam.co.uk"],
            "skus": [
                {"skuId": SPB, "skuPartNumber": "SPB"},
                {"skuPartNumber": "EXCHANGESTANDARD", "enabled": 5, "suspended": 2},
                {"skuPartNumber": "O365_BUSINESS_ESSENTIALS", "enabled": 10},
            ],
            "subscriptions": [
                {"skuPartNumber": "SPB", "totalLicenses": 2000,
                 "nextLifecycleDateTime": "2027-03-01T00:00:00Z"},
                {"skuPartNumber": "SPB", "totalLicenses": 600, "isTrial": True},
            ],
            "users": [
                {"userPrincipalName": "alice@fabrikam.com", "displayName": "Alice Archer",
                 "licenses": ["SPB"], "department": "Sales", "officeLocation": "HQ",
                 "city": "London", "state": "LDN", "country": "UK", "mailbox": "User",
                 "givenName": "Alice", "surname": "Archer", "jobTitle": "Buyer",
                 "businessPhones": ["+44 20 7946 0001"], "mobilePhone": "+44 7700 900001",
                 "aliases": ["ali@fabrikam.com"]},
                {"userPrincipalName": "bob@fabrikam.com", "licenses": ["SPB", "EXCHANGESTANDARD"],
                 "mailbox": "User"},
                {"userPrincipalName": "helpdesk@fabrikam.com", "displayName": "Help desk",
                 "accountEnabled": False, "mailbox": "Shared"},
                {"userPrincipalName": "boardroom@fabrikam.com", "accountEnabled": False,
                 "mailbox": "Room", "userType": "Member"},
            ],
            "generatedUsers": [{"count": GENERATED_USERS, "licenses": ["SPB"], "department": "Ops",
                                "mailbox": "User"}],
            "devices": [{"displayName": "LAPTOP-ALICE", "managed": True,
                         "userPrincipalName": "alice@fabrikam.com"}],
            "generatedDevices": [{"count": 3, "managed": True}],
            "groups": [
                {"displayName": "Managed users", "users": ["alice@fabrikam.com"],
                 "devices": ["LAPTOP-ALICE"], "groups": ["Nested"]},
                {"displayName": "Nested", "users": ["bob@fabrikam.com"], "devices": ["DESKTOP-00001"],
                 "groups": ["Managed users"]},
            ],
            "mailboxes": [{"userPrincipalName": "old@fabrikam.com", "recipientType": "User",
                           "isDeleted": True}],
        },
        {"tenantId": NORTHWIND, "displayName": "Northwind Traders",
         "defaultDomain": "northwind.example", **small},
        {"tenantId": CONCEALED, "displayName": "Concealed Co", "concealedReportNames": True,
         "users": [{"userPrincipalName": "a@concealed.example", "mailbox": "User"}]},
        {"tenantId": THROTTLED, "displayName": "Throttled Inc", "throttle": {"unitsPer10s": 3},
         "generatedUsers": [{"count": 30}]},
        {"tenantId": NO_REPORTS, "displayName": "No Reports", "missingPermissions": ["Reports.Read.All"]},
        {"tenantId": EXPIRED_GDAP, "displayName": "Former Customer", "gdap": "expired"},
        {"tenantId": NO_PERMISSIONS, "displayName": "No Roles", "auth": "no-permissions"},
    ]
    for mode, (tid, _) in AUTH_MODES.items():
        tenants.append({"tenantId": tid, "displayName": f"Auth {mode}", "auth": mode})
    return {
        "partner": {"tenantId": PARTNER, "clientId": CLIENT, "clientSecret": SECRET,
                    "clientCertificate": certificate_pem, "displayName": "Contoso Partner MSP",
                    "defaultDomain": "contoso-msp.example",
                    "users": [{"userPrincipalName": "billing@contoso-msp.example", "mailbox": "User"}]},
        "tenants": tenants,
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    directory = tmp_path_factory.mktemp("graph")
    tls = ensure_tls_files(directory / "tls")
    cert_path, cert_pem = _certificate(directory, "seatsync-app")
    other_path, _ = _certificate(directory, "someone-else")
    emulator = GraphEmulator(scenario(cert_pem))
    with RunningEmulator(emulator, tls) as running:
        yield Env(emulator, running, tls, cert_path, other_path)


@pytest.fixture(autouse=True)
def fresh_state(env: Env) -> Iterator[None]:
    env.emulator.reset()
    yield
    env.emulator.budget = ResourceUnitBudget()


# ----------------------------------------------------------------------------- partner side


def test_customers_are_the_active_gdap_customers_read_with_the_partner_token(env: Env) -> None:
    client = env.client()
    customers = client.list_customer_tenants()
    ids = {c.tenant_id for c in customers}
    assert FABRIKAM in ids
    assert NORTHWIND in ids
    assert EXPIRED_GDAP not in ids, "an expired GDAP relationship is not a customer any more"
    assert PARTNER not in ids
    fabrikam = next(c for c in customers if c.tenant_id == FABRIKAM)
    assert fabrikam.display_name == "Fabrikam Ltd"
    state = env.emulator.state()
    assert state["tokensIssued"] == {PARTNER: 1}
    log = [e for e in env.emulator.requests_log() if "delegatedAdminCustomers" in e["path"]]
    assert log[0]["query"]["$top"] == "300"
    assert log[0]["tenant"] == PARTNER


def test_customer_listing_follows_pages_past_the_300_limit(tmp_path: Path, env: Env) -> None:
    tenants = [{"tenantId": stable_id("many", str(i)), "displayName": f"Customer {i:03d}"}
               for i in range(650)]
    section = {"partner": {"tenantId": PARTNER, "clientId": CLIENT, "clientSecret": SECRET,
                           "displayName": "Partner"}, "tenants": tenants}
    emulator = GraphEmulator(section)
    with RunningEmulator(emulator, env.tls) as running:
        settings = env.settings(authority_host=running.url, endpoint=running.url)
        client = GraphClient(settings, verify=env.ca)
        customers = client.list_customer_tenants()
        assert len(customers) == 650
        assert len({c.tenant_id for c in customers}) == 650
        assert emulator.count_requests("delegatedAdminCustomers") == 3


def test_gdap_relationships_report_status_and_end(env: Env) -> None:
    relationships = env.client().list_gdap_relationships()
    by_tenant = {r.customer_tenant_id: r for r in relationships}
    assert by_tenant[FABRIKAM].status == "active"
    assert by_tenant[EXPIRED_GDAP].status == "expired"
    ended = by_tenant[EXPIRED_GDAP].end
    assert ended is not None
    assert ended < datetime.now(UTC)
    assert by_tenant[FABRIKAM].role_ids


def test_tenant_details_give_the_default_and_verified_domains(env: Env) -> None:
    details = env.client().get_tenant_details(FABRIKAM)
    assert details.default_domain == "fabrikam.com"
    assert set(details.domains) == {"fabrikam.com", "fabrikam.co.uk", "fabrikamltd.onmicrosoft.com"}


# ----------------------------------------------------------------------------- licences and users


def test_skus_map_prepaid_units_and_consumed_units_count_the_licensed_users(env: Env) -> None:
    skus = {s.sku_part_number: s for s in env.client().list_subscribed_skus(FABRIKAM)}
    spb = skus["SPB"]
    assert spb.sku_id == SPB
    assert spb.purchased == 2600, "enabled = the Enabled subscriptions' licences"
    assert spb.consumed == GENERATED_USERS + 2
    assert skus["EXCHANGESTANDARD"].purchased == 5
    assert skus["EXCHANGESTANDARD"].suspended == 2
    assert skus["EXCHANGESTANDARD"].consumed == 1
    assert skus["O365_BUSINESS_ESSENTIALS"].consumed == 0


def test_users_are_read_with_the_exact_select_and_top_999_across_pages(env: Env) -> None:
    client = env.client()
    users = client.list_users(FABRIKAM)
    assert len(users) == GENERATED_USERS + 4
    assert len({u.id for u in users}) == len(users)
    alice = next(u for u in users if u.user_principal_name == "alice@fabrikam.com")
    assert alice.id == stable_id(FABRIKAM, "alice@fabrikam.com")
    assert alice.display_name == "Alice Archer"
    assert alice.sku_ids == (SPB,)
    assert (alice.department, alice.office, alice.city, alice.state, alice.country) == \
        ("Sales", "HQ", "London", "LDN", "UK")
    assert alice.mail == "alice@fabrikam.com"
    assert (alice.given_name, alice.surname, alice.job_title, alice.business_phones, alice.mobile_phone) == (
        "Alice", "Archer", "Buyer", ("+44 20 7946 0001",), "+44 7700 900001")
    assert alice.proxy_addresses == ("alice@fabrikam.com", "ali@fabrikam.com")
    helpdesk = next(u for u in users if u.user_principal_name == "helpdesk@fabrikam.com")
    assert helpdesk.account_enabled is False
    assert helpdesk.sku_ids == ()
    pages = [e for e in env.emulator.requests_log() if e["path"] == "/v1.0/users"]
    assert len(pages) == 3
    assert pages[0]["query"]["$top"] == "999"
    assert pages[0]["query"]["$select"] == ("id,userPrincipalName,displayName,accountEnabled,userType,"
                                            "assignedLicenses,mail,officeLocation,department,city,"
                                            "state,country,givenName,surname,jobTitle,mobilePhone,"
                                            "businessPhones,proxyAddresses")
    assert "$skiptoken" in pages[1]["query"]
    assert "$skiptoken" in pages[2]["query"]
    assert client.calls == 3


def test_subscriptions_carry_the_term_split_of_a_sku(env: Env) -> None:
    subs = [s for s in env.client().list_subscriptions(FABRIKAM) if s.sku_id == SPB]
    assert sorted(s.total_licenses for s in subs) == [600, 2000]
    annual = next(s for s in subs if s.total_licenses == 2000)
    assert annual.next_lifecycle == datetime(2027, 3, 1, tzinfo=UTC)
    assert annual.sku_part_number == "SPB"
    assert annual.status == "Enabled"
    assert annual.commerce_subscription_id
    assert next(s for s in subs if s.total_licenses == 600).is_trial


def test_group_transitive_members_include_nested_users_and_devices(env: Env) -> None:
    group_id = stable_id(FABRIKAM, "group", "Managed users")
    members = env.client().list_group_members(FABRIKAM, group_id)
    kinds = sorted((m.kind, m.display_name) for m in members)
    assert kinds == [("device", "DESKTOP-00001"), ("device", "LAPTOP-ALICE"),
                     ("user", "Alice Archer"), ("user", "Bob")]
    raw = env.get(f"/v1.0/groups/{group_id}/transitiveMembers", FABRIKAM).json()["value"]
    types = sorted(item["@odata.type"] for item in raw)
    assert types.count("#microsoft.graph.group") == 1, "the nested group is listed as a member"
    devices = env.get(f"/v1.0/groups/{group_id}/transitiveMembers/microsoft.graph.device",
                      FABRIKAM).json()
    assert devices["@odata.context"].endswith("#devices")
    assert sorted(d["displayName"] for d in devices["value"]) == ["DESKTOP-00001", "LAPTOP-ALICE"]
    users = env.get(f"/v1.0/groups/{group_id}/transitiveMembers/microsoft.graph.user"
                    "?$select=userPrincipalName", FABRIKAM).json()["value"]
    assert sorted(u["userPrincipalName"] for u in users) == ["alice@fabrikam.com", "bob@fabrikam.com"]


def test_an_unknown_group_is_a_named_error(env: Env) -> None:
    with pytest.raises(GraphError) as caught:
        env.client().list_group_members(FABRIKAM, "11111111-2222-4333-8444-555555555555")
    assert caught.value.status == 404
    assert "group 11111111-2222-4333-8444-555555555555 not found" in str(caught.value)


def test_mailboxes_come_from_the_report_download_the_302_points_to(env: Env) -> None:
    client = env.client(default_http=True)
    boxes = client.list_mailboxes(FABRIKAM)
    by_upn = {b.user_principal_name: b for b in boxes}
    assert by_upn["helpdesk@fabrikam.com"].recipient_type == "Shared"
    assert by_upn["boardroom@fabrikam.com"].recipient_type == "Room"
    assert by_upn["alice@fabrikam.com"].recipient_type == "User"
    assert by_upn["old@fabrikam.com"].is_deleted
    assert len(boxes) == GENERATED_USERS + 5
    assert client.calls == 2, "the report request and the download are both counted"
    statuses = [e["status"] for e in env.emulator.requests_log() if "report" in e["path"]]
    assert statuses == [302, 200]


def test_concealed_report_names_raise_a_clear_error_instead_of_wrong_data(env: Env) -> None:
    with pytest.raises(GraphError) as caught:
        env.client().list_mailboxes(CONCEALED)
    message = str(caught.value)
    assert "Display concealed user, group, and site names in all reports" in message
    assert "conceals user names" in message
    assert caught.value.tenant_id == CONCEALED


def test_managed_devices_are_listed(env: Env) -> None:
    devices = env.client().list_managed_devices(FABRIKAM)
    assert len(devices) == 4
    alice = next(d for d in devices if d.device_name == "LAPTOP-ALICE")
    assert alice.user_principal_name == "alice@fabrikam.com"
    assert alice.operating_system == "Windows"


# ----------------------------------------------------------------------------- transient failures


def test_429_with_retry_after_is_waited_for_and_retried(env: Env) -> None:
    env.emulator.faults.add({"kind": "throttle", "path": "^/v1.0/subscribedSkus$", "tenant": FABRIKAM,
                             "times": 2, "retryAfter": 7})
    sleeper = Sleeper()
    client = env.client(sleeper=sleeper)
    skus = client.list_subscribed_skus(FABRIKAM)
    assert len(skus) == 3
    assert sleeper.waits == [7, 7]
    assert client.throttled == 2
    assert client.calls == 3
    throttled = [e for e in env.emulator.requests_log() if e["fault"] == "throttle"]
    assert [e["status"] for e in throttled] == [429, 429]


def test_resource_unit_budget_answers_429_with_the_seconds_until_units_free(env: Env) -> None:
    sleeper = Sleeper()
    env.emulator.budget = ResourceUnitBudget(clock=sleeper.clock)
    client = env.client(sleeper=sleeper)
    for _ in range(3):  # GET users with $select costs 1 RU; the tenant has 3 per 10 s
        assert len(client.list_users(THROTTLED)) == 30
    assert sleeper.waits == []
    assert len(client.list_users(THROTTLED)) == 30
    assert sleeper.waits == [10], "the oldest unit leaves the 10 s window after 10 s"
    state = next(t for t in env.emulator.state()["tenants"] if t["tenantId"] == THROTTLED)
    assert state["throttled"] == 1
    answer = env.get("/v1.0/users?$select=id", THROTTLED)
    answer = env.get("/v1.0/users?$select=id", THROTTLED)
    answer = env.get("/v1.0/users?$select=id", THROTTLED)
    answer = env.get("/v1.0/users?$select=id", THROTTLED)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"].isdigit()
    assert answer.json()["error"]["code"] == "TooManyRequests"


@pytest.mark.parametrize("status", [503, 504])
def test_gateway_and_unavailable_errors_are_retried(env: Env, status: int) -> None:
    env.emulator.faults.add({"kind": "error", "status": status, "path": "^/v1.0/users$", "times": 2})
    sleeper = Sleeper()
    users = env.client(sleeper=sleeper).list_users(NORTHWIND)
    assert [u.user_principal_name for u in users] == ["admin@northwind.example"]
    assert len(sleeper.waits) == 2


def test_a_persistent_5xx_becomes_a_graph_error_with_status_and_url(env: Env) -> None:
    env.emulator.faults.add({"kind": "error", "status": 503, "path": "^/v1.0/users$"})
    policy = RetryPolicy(max_attempts=3)
    with pytest.raises(GraphError) as caught:
        env.client(policy=policy).list_users(NORTHWIND)
    assert caught.value.status == 503
    assert caught.value.url is not None
    assert "/v1.0/users" in caught.value.url


def test_timeouts_are_retried(env: Env) -> None:
    env.emulator.faults.add({"kind": "timeout", "path": "^/v1.0/subscribedSkus$", "times": 1,
                             "delay": 1.0})
    sleeper = Sleeper()
    policy = RetryPolicy(read_timeout_seconds=0.3, max_attempts=3)
    skus = env.client(sleeper=sleeper, policy=policy).list_subscribed_skus(NORTHWIND)
    assert [s.sku_part_number for s in skus] == ["SPB"]
    assert len(sleeper.waits) == 1, "the timed-out request was retried once"


def test_broken_paging_is_detected_as_an_incomplete_read(env: Env) -> None:
    env.emulator.faults.add({"kind": "broken-paging", "path": "^/v1.0/users$", "times": 1, "after": 1})
    with pytest.raises(IncompleteReadError) as caught:
        env.client().list_users(FABRIKAM)
    assert "Directory_ExpiredPageToken" in str(caught.value)
    statuses = [e["status"] for e in env.emulator.requests_log() if e["path"] == "/v1.0/users"]
    assert statuses == [200, 200, 400]


# ----------------------------------------------------------------------------- authentication


@pytest.mark.parametrize("mode", sorted(AUTH_MODES))
def test_each_entra_failure_becomes_a_graph_auth_error_with_its_code(env: Env, mode: str) -> None:
    tenant_id, code = AUTH_MODES[mode]
    client = env.client()
    with pytest.raises(GraphAuthError) as caught:
        client.list_users(tenant_id)
    error = caught.value
    assert error.code == code
    assert error.tenant_id == tenant_id
    assert "what to do:" in str(error)
    assert "Trace ID" not in str(error)
    if code in ("AADSTS700016", "AADSTS65001"):
        assert f"{env.url}/{tenant_id}/adminconsent?client_id={CLIENT}" in str(error)
    assert client.calls == 0, "nothing was sent to Graph without a token"


def test_token_endpoint_errors_have_entras_shape_and_status(env: Env) -> None:
    tenant_id, _ = AUTH_MODES["not-consented"]
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET,
            "scope": "https://graph.microsoft.com/.default"}
    answer = requests.post(f"{env.url}/{tenant_id}/oauth2/v2.0/token", data=form, verify=env.ca,
                           timeout=10)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "unauthorized_client"
    assert body["error_description"].startswith("AADSTS700016: ")
    assert body["error_codes"] == [700016]
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)
    answer = requests.post(f"{env.url}/{FABRIKAM}/oauth2/v2.0/token",
                           data={**form, "client_secret": "wrong"}, verify=env.ca, timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert answer.json()["error_codes"] == [7000215]
    answer = requests.post(f"{env.url}/fabrikam.co.uk/oauth2/v2.0/token", data=form, verify=env.ca,
                           timeout=10)
    assert answer.status_code == 200, "a verified domain names the tenant too"
    assert answer.json()["expires_in"] == 3599


def test_a_wrong_client_secret_is_reported_as_aadsts7000215(env: Env) -> None:
    with pytest.raises(GraphAuthError) as caught:
        env.client(client_secret="not-the-secret").list_subscribed_skus(NORTHWIND)
    assert caught.value.code == "AADSTS7000215"
    assert "GRAPH_CLIENT_SECRET" in str(caught.value)


def test_a_tenant_entra_does_not_know_is_aadsts90002(env: Env) -> None:
    with pytest.raises(GraphAuthError) as caught:
        env.client().list_users("99999999-9999-4999-8999-999999999999")
    assert caught.value.code == "AADSTS90002"


def test_an_auth_fault_on_the_token_endpoint_answers_an_aadsts_error(env: Env) -> None:
    env.emulator.faults.add({"kind": "auth", "path": "/oauth2/", "tenant": NORTHWIND, "times": 1})
    with pytest.raises(GraphAuthError) as caught:
        env.client().list_users(NORTHWIND)
    assert caught.value.code == "AADSTS7000215"
    assert len(env.client().list_users(NORTHWIND)) == 1, "the fault fired once"


def test_a_certificate_credential_authenticates_with_a_signed_assertion(env: Env) -> None:
    client = env.client(client_secret=None, client_certificate_path=str(env.certificate_path))
    assert [s.sku_part_number for s in client.list_subscribed_skus(NORTHWIND)] == ["SPB"]
    assert client.token_requests == 1
    stranger = env.client(client_secret=None, client_certificate_path=str(env.other_certificate_path))
    with pytest.raises(GraphAuthError) as caught:
        stranger.list_subscribed_skus(NORTHWIND)
    assert caught.value.code == "AADSTS700027"


def test_a_token_for_one_tenant_reads_only_that_tenants_data(env: Env) -> None:
    answer = env.get("/v1.0/users?$select=userPrincipalName", NORTHWIND)
    assert [u["userPrincipalName"] for u in answer.json()["value"]] == ["admin@northwind.example"]

    def wrong_tenant(tenant_id: str) -> TokenCredential:
        return env.credential(NORTHWIND)  # a broken factory: always Northwind's credential

    with pytest.raises(GraphAuthError) as caught:
        env.client(factory=wrong_tenant).list_users(FABRIKAM)
    assert "refusing to read another tenant's data" in str(caught.value)
    assert env.emulator.count_requests("^/v1.0/") == 1, "no Graph request was made with it"


def test_graph_rejects_missing_or_foreign_tokens_in_its_error_shape(env: Env) -> None:
    answer = requests.get(f"{env.url}/v1.0/users", verify=env.ca, timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "request-id" in answer.json()["error"]["innerError"]
    answer = requests.get(f"{env.url}/v1.0/users", headers={"Authorization": "Bearer abc.def.ghi"},
                          verify=env.ca, timeout=10)
    assert answer.status_code == 401
    customer = env.get("/v1.0/tenantRelationships/delegatedAdminCustomers", NORTHWIND)
    assert customer.status_code == 403, "a customer token has no GDAP permission"


def test_a_missing_permission_names_the_application_permission_to_grant(env: Env) -> None:
    with pytest.raises(GraphAuthError) as caught:
        env.client().list_mailboxes(NO_REPORTS)
    assert caught.value.status == 403
    assert "Reports.Read.All" in str(caught.value)
    assert "Authorization_RequestDenied" in str(caught.value)
    with pytest.raises(GraphAuthError) as caught:
        env.client().list_users(NO_PERMISSIONS)
    assert "User.Read.All" in str(caught.value)


def test_a_401_is_retried_once_with_a_fresh_token(env: Env) -> None:
    client = env.client()
    assert len(client.list_users(NORTHWIND)) == 1
    assert client.token_requests == 1
    env.emulator.revoke_tokens(NORTHWIND)
    assert len(client.list_users(NORTHWIND)) == 1
    assert client.token_requests == 2
    statuses = [e["status"] for e in env.emulator.requests_log() if e["path"] == "/v1.0/users"]
    assert statuses == [200, 401, 200]


def test_tokens_are_cached_per_tenant_and_shared_by_threads(env: Env) -> None:
    client = env.client()
    tenants = [FABRIKAM, NORTHWIND, NO_REPORTS] * 4
    with ThreadPoolExecutor(max_workers=6) as pool:
        counts = list(pool.map(lambda t: len(client.list_subscribed_skus(t)), tenants))
    assert counts == [3, 1, 0] * 4
    issued = env.emulator.state()["tokensIssued"]
    assert issued == {FABRIKAM: 1, NORTHWIND: 1, NO_REPORTS: 1}
    assert client.token_requests == 3


def test_clients_sharing_credentials_fetch_one_token_but_count_their_own_calls(env: Env) -> None:
    shared = TenantCredentials(env.settings(), verify=env.ca)
    first = GraphClient(env.settings(), verify=env.ca, credentials=shared)
    second = GraphClient(env.settings(), verify=env.ca, credentials=shared)
    first.list_users(NORTHWIND)
    second.list_users(NORTHWIND)
    second.list_subscribed_skus(NORTHWIND)
    assert (first.calls, second.calls) == (1, 2)
    assert shared.token_requests == 1
    assert env.emulator.state()["tokensIssued"] == {NORTHWIND: 1}


# ----------------------------------------------------------------------------- $batch


def test_collect_tenant_reads_everything_with_one_batch(env: Env) -> None:
    group_id = stable_id(FABRIKAM, "group", "Managed users")
    batched = env.client()
    readout = batched.collect_tenant(FABRIKAM, group_ids=[group_id], mailboxes=True,
                                     managed_devices=True)
    single = env.client(default_http=True)
    assert list(readout.skus) == single.list_subscribed_skus(FABRIKAM)
    assert list(readout.users) == single.list_users(FABRIKAM)
    assert list(readout.subscriptions) == single.list_subscriptions(FABRIKAM)
    assert list(readout.groups[group_id]) == single.list_group_members(FABRIKAM, group_id)
    assert readout.mailboxes is not None
    assert list(readout.mailboxes) == single.list_mailboxes(FABRIKAM)
    assert readout.managed_devices is not None
    assert list(readout.managed_devices) == single.list_managed_devices(FABRIKAM)
    # one $batch + two further user pages + the report download
    assert batched.calls == 4
    assert single.calls == 9
    assert env.emulator.count_requests(r"\$batch") == 1


def test_a_batched_request_answered_429_is_resent_after_its_retry_after(env: Env) -> None:
    env.emulator.faults.add({"kind": "throttle", "path": "^/v1.0/subscribedSkus$", "times": 1,
                             "retryAfter": 3})
    sleeper = Sleeper()
    client = env.client(sleeper=sleeper)
    readout = client.collect_tenant(NORTHWIND)
    assert [s.sku_part_number for s in readout.skus] == ["SPB"]
    assert len(readout.users) == 1
    assert sleeper.waits == [3]
    assert env.emulator.count_requests(r"\$batch") == 2


def test_batch_limits_and_relative_urls_are_enforced(env: Env) -> None:
    token = env.token(NORTHWIND)
    headers = {"Authorization": f"Bearer {token}"}
    too_many = {"requests": [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(21)]}
    answer = requests.post(f"{env.url}/v1.0/$batch", json=too_many, headers=headers, verify=env.ca,
                           timeout=10)
    assert answer.status_code == 400
    absolute = {"requests": [{"id": "1", "method": "GET", "url": f"{env.url}/v1.0/users"}]}
    answer = requests.post(f"{env.url}/v1.0/$batch", json=absolute, headers=headers, verify=env.ca,
                           timeout=10)
    assert answer.status_code == 400
    mixed = {"requests": [{"id": "a", "method": "GET", "url": "/organization?$select=id"},
                          {"id": "b", "method": "GET", "url": "users/nobody@northwind.example"}]}
    answer = requests.post(f"{env.url}/v1.0/$batch", json=mixed, headers=headers, verify=env.ca,
                           timeout=10)
    replies = {r["id"]: r for r in answer.json()["responses"]}
    assert replies["a"]["status"] == 200
    assert replies["a"]["body"]["value"][0]["id"] == NORTHWIND
    assert replies["b"]["status"] == 404


# ----------------------------------------------------------------------------- mail and query rules


def test_send_mail_delivers_a_multipart_message_with_text_and_html(env: Env) -> None:
    client = env.client()
    client.send_mail("billing@contoso-msp.example", "Licences without billing",
                     "<p>3 licences have <b>no</b> billing profile.</p>",
                     "3 licences have no billing profile.", ["ops@contoso-msp.example", "cfo@x.example"])
    mail = env.emulator.state()["sentMail"]
    assert len(mail) == 1
    sent = mail[0]
    assert sent["format"] == "mime"
    assert sent["contentType"] == "multipart/alternative"
    assert sent["sender"] == "billing@contoso-msp.example"
    assert sent["tenantId"] == PARTNER
    assert sent["to"] == ["ops@contoso-msp.example", "cfo@x.example"]
    assert sent["subject"] == "Licences without billing"
    assert sent["text"].strip() == "3 licences have no billing profile."
    assert "<b>no</b>" in sent["html"]


def test_send_mail_from_an_unknown_mailbox_is_an_error(env: Env) -> None:
    with pytest.raises(GraphError) as caught:
        env.client().send_mail("nobody@contoso-msp.example", "s", "<p>x</p>", "x", ["a@b.example"])
    assert caught.value.status == 404
    assert "ErrorInvalidUser" in str(caught.value)
    assert env.emulator.state()["sentMail"] == []


def test_send_mail_json_form_and_bad_mime_are_handled_as_graph_does(env: Env) -> None:
    headers = {"Authorization": f"Bearer {env.token(PARTNER)}"}
    url = f"{env.url}/v1.0/users/billing@contoso-msp.example/sendMail"
    message = {"message": {"subject": "Hi", "body": {"contentType": "HTML", "content": "<p>Hi</p>"},
                           "toRecipients": [{"emailAddress": {"address": "a@b.example"}}]},
               "saveToSentItems": False}
    answer = requests.post(url, json=message, headers=headers, verify=env.ca, timeout=10)
    assert answer.status_code == 202
    assert answer.content == b""
    answer = requests.post(url, data=b"not base64 !!!", verify=env.ca, timeout=10,
                           headers={**headers, "Content-Type": "text/plain"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "ErrorMimeContentInvalidBase64String"
    sent = env.emulator.state()["sentMail"]
    assert [(m["format"], m["html"]) for m in sent] == [("json", "<p>Hi</p>")]


def test_graph_query_rules_are_enforced(env: Env) -> None:
    assert env.get("/v1.0/users?$top=1000", NORTHWIND).status_code == 400
    bad_select = env.get("/v1.0/users?$select=id,favouriteColour", NORTHWIND)
    assert bad_select.status_code == 400
    assert "favouriteColour" in bad_select.json()["error"]["message"]
    assert env.get("/v1.0/users?$count=true", NORTHWIND).status_code == 400
    counted = env.get("/v1.0/users?$count=true&$top=1", FABRIKAM, ConsistencyLevel="eventual").json()
    assert counted["@odata.count"] == GENERATED_USERS + 4
    assert len(counted["value"]) == 1
    default = env.get("/v1.0/users", NORTHWIND).json()["value"][0]
    assert "assignedLicenses" not in default, "without $select Graph returns the default properties"
    assert default["userPrincipalName"] == "admin@northwind.example"
    by_upn = env.get("/v1.0/users/admin@northwind.example?$select=id,accountEnabled", NORTHWIND)
    assert by_upn.json()["accountEnabled"] is True


def test_admin_api_changes_are_seen_by_the_next_read(env: Env) -> None:
    admin = f"{env.url}/_admin/graph/tenants/{NORTHWIND}"
    answer = requests.post(f"{admin}/users", json={"userPrincipalName": "new@northwind.example",
                                                   "licenses": ["SPB"]}, verify=env.ca, timeout=10)
    assert answer.status_code == 201
    answer = requests.patch(admin, json={"skus": [{"skuPartNumber": "SPB", "enabled": 9}]},
                            verify=env.ca, timeout=10)
    assert answer.status_code == 204
    skus = env.client().list_subscribed_skus(NORTHWIND)
    assert (skus[0].purchased, skus[0].consumed) == (9, 2)
    bad = requests.patch(admin, json={"skus": [{"skuPartNumber": "SPB", "enabled": -1}]},
                         verify=env.ca, timeout=10)
    assert bad.status_code == 400
    assert "enabled" in bad.json()["error"]


def test_state_reports_counts_tokens_and_requests_per_tenant(env: Env) -> None:
    env.client().list_users(NORTHWIND)
    state = env.emulator.state()
    northwind = next(t for t in state["tenants"] if t["tenantId"] == NORTHWIND)
    assert northwind["users"] == 1
    assert northwind["licensedUsers"] == 1
    assert northwind["skus"] == [{"skuId": SPB, "skuPartNumber": "SPB", "enabled": 5, "consumed": 1}]
    assert northwind["tokensIssued"] == 1
    assert northwind["graphRequests"] == 1
    failing = next(t for t in state["tenants"] if t["tenantId"] == AUTH_MODES["bad-secret"][0])
    assert failing["auth"] == "bad-secret"
    assert state["partner"]["tenantId"] == PARTNER


# ----------------------------------------------------------------------------- scale


def test_a_large_scenario_loads_and_10000_users_page_in_11_requests(env: Env) -> None:
    """How fast is measured by ``scripts/bench_sync.py`` (``make bench``), not asserted here."""
    tenants: list[dict[str, Any]] = [
        {"tenantId": stable_id("scale", str(i)), "displayName": f"Tenant {i}",
         "skus": [{"skuPartNumber": "SPB", "enabled": 60}],
         "generatedUsers": [{"count": 50, "licenses": ["SPB"]}]}
        for i in range(20)
    ]
    big = stable_id("scale", "big")
    tenants.append({"tenantId": big, "displayName": "Big Corp",
                    "skus": [{"skuPartNumber": "SPB", "enabled": 10000}],
                    "generatedUsers": [{"count": 10000, "licenses": ["SPB"]}]})
    section = {"partner": {"tenantId": PARTNER, "clientId": CLIENT, "clientSecret": SECRET,
                           "displayName": "Partner"}, "tenants": tenants}
    emulator = GraphEmulator(section)
    with RunningEmulator(emulator, env.tls) as running:
        client = GraphClient(env.settings(authority_host=running.url, endpoint=running.url),
                             verify=env.ca)
        client.tokens.token(big)
        users = client.list_users(big)
        assert len(client.list_users(stable_id("scale", "3"))) == 50
    assert len(users) == 10000
    assert len({u.id for u in users}) == 10000
    assert client.calls == 12


def test_report_download_link_is_pre_authenticated_and_expires(env: Env) -> None:
    answer = requests.get(f"{env.url}/v1.0/reports/getMailboxUsageDetail(period='D7')",
                          headers={"Authorization": f"Bearer {env.token(NORTHWIND)}"},
                          allow_redirects=False, verify=env.ca, timeout=10)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    download = requests.get(location, verify=env.ca, timeout=10)
    assert download.status_code == 200
    header = download.content.decode("utf-8-sig").splitlines()[0]
    assert header.endswith("Deleted Item Quota (Byte),Has Archive,Recipient Type,Report Period")
    assert requests.get(location + "x", verify=env.ca, timeout=10).status_code == 404
    period = requests.get(f"{env.url}/v1.0/reports/getMailboxUsageDetail(period='D1')",
                          headers={"Authorization": f"Bearer {env.token(NORTHWIND)}"},
                          verify=env.ca, timeout=10)
    assert period.status_code == 400


def test_concealed_names_are_hashes_in_the_raw_report(env: Env) -> None:
    answer = requests.get(f"{env.url}/v1.0/reports/getMailboxUsageDetail(period='D7')",
                          headers={"Authorization": f"Bearer {env.token(CONCEALED)}"},
                          verify=env.ca, timeout=10)
    row = answer.content.decode("utf-8-sig").splitlines()[1].split(",")
    assert len(row[1]) == 32
    assert "@" not in row[1]
    assert row[1] == row[1].upper()


def test_fault_rules_target_one_tenant_by_its_token(env: Env) -> None:
    env.emulator.faults.add({"kind": "error", "status": 500, "path": "subscribedSkus",
                             "tenant": NORTHWIND})
    policy = RetryPolicy(max_attempts=2)
    assert len(env.client(policy=policy).list_subscribed_skus(FABRIKAM)) == 3
    with pytest.raises(GraphError):
        env.client(policy=policy).list_subscribed_skus(NORTHWIND)


def test_expired_tokens_are_refused_and_the_client_fetches_a_fresh_one(env: Env) -> None:
    token = env.token(NORTHWIND)
    info = env.emulator.tokens.lookup(token)
    assert info is not None
    assert info.tenant_id == NORTHWIND
    payload = token.split(".")[1]
    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert b'"tid":"' + NORTHWIND.encode() in claims
    assert b'"roles":[' in claims
    client = env.client()
    assert len(client.list_users(NORTHWIND)) == 1
    env.emulator.tokens.expire(NORTHWIND)
    answer = requests.get(f"{env.url}/v1.0/users", headers={"Authorization": f"Bearer {token}"},
                          verify=env.ca, timeout=10)
    assert answer.status_code == 401
    assert "expired" in answer.json()["error"]["message"]
    assert len(client.list_users(NORTHWIND)) == 1
    assert client.token_requests == 2
