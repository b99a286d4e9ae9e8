"""The Partner Center and Pax8 clients against their emulators over HTTPS on loopback: shapes,
paging, throttling (Partner Center's 429 with Retry-After, Pax8's without), token failures, and
the run's source read that keeps a failed source from changing anyone's bill."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from emulators.base import RunningEmulator
from emulators.partnercenter import PartnerCenterEmulator
from emulators.pax8 import Pax8Emulator
from emulators.tls import TlsFiles, ensure_tls_files
from shared.adapters.partner_center import PartnerCenterClient, PartnerCenterCredential
from shared.adapters.pax8 import Pax8Client, Pax8Token
from shared.errors import SourceAuthError, SourceError
from tests.psa_test_support import recording_http

PARTNER = "0a0a0a0a-0000-4000-8000-000000000001"
APP = "5e1f0c2a-7d3b-4c8e-9a6f-2b4d8e1c3f70"
FABRIKAM = "1f0a5b2c-0001-4a1b-8c2d-000000000001"
CONTOSO = "2e1b6c3d-0002-4b2c-9d3e-000000000002"
ANNUAL = "1f0a5b2c-5b00-4000-8000-00000000000a"
MONTHLY = "1f0a5b2c-5b00-4000-8000-00000000000b"
COMPANY = "9ba32659-d339-4539-be21-1f461dc1a415"
PRODUCT = "1810aea9-0c95-421d-a77a-7ebccdfa2f6c"
BP = "Microsoft 365 Business Premium"


def partner_center_scenario(customers: int = 3) -> dict[str, Any]:
    extra = [{"id": f"3d2c7d4e-0003-4c3d-ae4f-{index:012d}", "companyName": f"Customer {index}"}
             for index in range(customers - 2)]
    return {
        "today": "2026-11-25", "partnerTenantId": PARTNER,
        "applications": [{"clientId": APP, "clientSecret": "pc-secret"}],
        "customers": [
            {"id": FABRIKAM, "companyName": "Fabrikam Ltd", "domain": "fabrikam.onmicrosoft.com", "subscriptions": [
                {"id": ANNUAL, "offerId": "CFQ7TTC0LCHC:0002:CFQ7TTC0N8SS", "offerName": BP, "quantity": 20,
                 "termDuration": "P1Y", "billingCycle": "monthly", "effectiveStartDate": "2026-03-01",
                 "commitmentEndDate": "2027-02-28", "unitPrice": "22.00", "discountPercent": "10"},
                {"id": MONTHLY, "offerId": "CFQ7TTC0LCHC:0002:CFQ7TTC0N8SX", "offerName": BP, "quantity": 5,
                 "termDuration": "P1M", "billingCycle": "monthly", "effectiveStartDate": "2026-06-22",
                 "commitmentEndDate": "2026-12-21", "unitPrice": "26.40",
                 "refundableQuantity": [{"quantity": 5, "until": "2026-11-29T00:00:00Z"}]},
                {"id": "1f0a5b2c-5b00-4000-8000-0000000000ff", "offerId": "DZH318Z0BPS6:0001",
                 "offerName": "Azure plan", "quantity": 1, "billingType": "usage"}]},
            {"id": CONTOSO, "companyName": "Contoso Pharma"},
            *extra,
        ],
    }


def pax8_scenario(subscriptions: int = 3) -> dict[str, Any]:
    subs = [{"id": f"e8f372b6-e2aa-4f3c-9baa-{index:012d}", "productId": PRODUCT, "productName": BP,
             "vendorSubscriptionId": f"aaaaaaaa-0000-4000-8000-{index:012d}", "quantity": 10 + index,
             "billingTerm": "Monthly", "commitment": {"term": "Annual", "endDate": "2027-02-28"},
             "startDate": "2026-03-01", "price": "22.00", "partnerCost": "18.70", "currencyCode": "USD"}
            for index in range(subscriptions)]
    return {"today": "2026-11-25", "applications": [{"clientId": "pax8-client", "clientSecret": "pax8-secret"}],
            "companies": [{"id": COMPANY, "name": "Fabrikam Ltd", "website": "fabrikam.example.com",
                           "subscriptions": subs},
                          {"id": "0d3f48ae-9764-4b3a-9554-d28fe345230c", "name": "Empty Co"}]}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls_files(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def serve(tls: TlsFiles) -> Iterator[Any]:
    started: list[RunningEmulator] = []

    def start(emulator: Any) -> RunningEmulator:
        running = RunningEmulator(emulator, tls).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def pc_client(running: RunningEmulator, tls: TlsFiles, sleeps: list[float], secret: str = "pc-secret",
              **options: Any) -> PartnerCenterClient:
    credential = PartnerCenterCredential("pc", PARTNER, APP, secret, running.url, verify=str(tls.ca_certificate))
    return PartnerCenterClient("pc", running.url, credential,
                               http=recording_http("Partner Center", tls, sleeps.append), **options)


def pax8_client(running: RunningEmulator, tls: TlsFiles, sleeps: list[float], secret: str = "pax8-secret",
                audience: str = "https://api.pax8.com") -> Pax8Client:
    http = recording_http("Pax8", tls, sleeps.append)
    token = Pax8Token("pax8", f"{running.url}/oauth/token", "pax8-client", secret, audience, http)
    return Pax8Client("pax8", f"{running.url}/v1", token, http=http)


# --------------------------------------------------------------------------- Partner Center


def test_partner_center_customers_page_by_continuation_token(serve: Any, tls: TlsFiles) -> None:
    running = serve(PartnerCenterEmulator(partner_center_scenario(customers=1203)))
    client = pc_client(running, tls, [])
    customers = client.list_customers()
    assert len(customers) == 1203 and customers[0].customer_id == FABRIKAM
    assert customers[0].tenant_id == FABRIKAM and customers[0].domain == "fabrikam.onmicrosoft.com"
    log = running.emulator.requests_log()
    pages = [r for r in log if r["path"] == "/v1/customers"]
    assert len(pages) == 3 and pages[1]["query"]["seekOperation"] == "Next"


def test_partner_center_subscriptions_with_terms_refunds_and_costs(serve: Any, tls: TlsFiles) -> None:
    running = serve(PartnerCenterEmulator(partner_center_scenario()))
    client = pc_client(running, tls, [])
    subs = {s.subscription_id: s for s in client.list_subscriptions(FABRIKAM)}
    assert set(subs) == {ANNUAL, MONTHLY}, "the usage-billed Azure plan has no seats"
    annual, monthly = subs[ANNUAL], subs[MONTHLY]
    assert (annual.quantity, annual.term, annual.billing, annual.start, annual.commitment_end, annual.active) == (
        20, "P1Y", "monthly", date(2026, 3, 1), date(2027, 2, 28), True)
    assert annual.commerce_subscription_id == ANNUAL and annual.renewal == date(2027, 3, 1)
    assert monthly.term_start == date(2026, 11, 22)
    assert monthly.refundable is not None and [(r.quantity, r.until) for r in monthly.refundable] == [
        (5, datetime(2026, 11, 29, tzinfo=UTC))]
    costs = client.subscription_costs()
    assert costs[ANNUAL] == (Decimal("19.8"), "USD"), "a cycle charge's effective unit price, after the discount"
    assert costs[MONTHLY] == (Decimal("26.4"), "USD")
    headers = running.emulator.requests_log()
    assert all(entry["status"] == 200 for entry in headers if entry["path"].startswith("/v1"))
    with pytest.raises(SourceError, match="not found"):
        client.list_subscriptions("99999999-0000-4000-8000-000000000000")


def test_partner_center_throttling_honours_retry_after(serve: Any, tls: TlsFiles) -> None:
    section = partner_center_scenario()
    section["faults"] = [{"kind": "throttle", "path": "/subscriptions$", "times": 2, "retryAfter": 7}]
    running = serve(PartnerCenterEmulator(section))
    sleeps: list[float] = []
    assert len(pc_client(running, tls, sleeps).list_subscriptions(FABRIKAM)) == 2
    assert sleeps == [7.0, 7.0]


def test_partner_center_rate_limit_of_the_subscription_resource(serve: Any, tls: TlsFiles) -> None:
    section = partner_center_scenario()
    section["rateLimit"] = {"subscriptionsPerMinute": 1}
    emulator = PartnerCenterEmulator(section)
    running = serve(emulator)
    sleeps: list[float] = []
    client = pc_client(running, tls, sleeps)
    client.list_subscriptions(FABRIKAM)
    assert emulator.state()["rateLimit"]["refused"] == 0
    with pytest.raises(SourceError, match="HTTP 429"):
        client.list_subscriptions(CONTOSO)  # the minute's one request is used: refused until the retries run out
    assert len(sleeps) == 5 and all(50 <= wait <= 60 for wait in sleeps), sleeps
    assert emulator.state()["rateLimit"]["refused"] == 6


def test_partner_center_token_failure_names_the_cause(serve: Any, tls: TlsFiles) -> None:
    running = serve(PartnerCenterEmulator(partner_center_scenario()))
    with pytest.raises(SourceAuthError, match=r"AADSTS7000215.*what to do: the client secret is wrong"):
        pc_client(running, tls, [], secret="wrong").list_customers()
    assert running.emulator.requests_log()[-1]["path"].endswith("/oauth2/v2.0/token")


def test_partner_center_broken_paging_is_refused(serve: Any, tls: TlsFiles) -> None:
    section = partner_center_scenario(customers=1100)
    section["faults"] = [{"kind": "broken-paging", "path": "/v1/customers$", "after": 1, "times": 1}]
    running = serve(PartnerCenterEmulator(section))
    with pytest.raises(SourceError, match="the same continuation token came back twice"):
        pc_client(running, tls, []).list_customers()


# --------------------------------------------------------------------------- Pax8


def test_pax8_pages_by_number_and_maps_cost_and_commitment(serve: Any, tls: TlsFiles) -> None:
    running = serve(Pax8Emulator(pax8_scenario(subscriptions=450)))
    client = pax8_client(running, tls, [])
    companies = client.list_customers()
    assert [c.name for c in companies] == ["Fabrikam Ltd", "Empty Co"]
    subs = client.list_all_subscriptions()
    assert subs is not None and len(subs) == 450
    first = subs[0]
    assert (first.customer_id, first.quantity, first.term, first.billing, first.commitment_end) == (
        COMPANY, 10, "Annual", "Monthly", date(2027, 2, 28))
    assert (first.unit_cost, first.unit_price, first.currency) == (Decimal("18.7"), Decimal("22.0"), "USD")
    assert first.commerce_subscription_id == "aaaaaaaa-0000-4000-8000-000000000000"
    assert first.monthly_cost() == Decimal("18.7")
    pages = [r for r in running.emulator.requests_log() if r["path"] == "/v1/subscriptions"]
    assert [p["query"]["page"] for p in pages] == ["0", "1", "2"] and pages[0]["query"]["size"] == "200"
    assert client.list_subscriptions(COMPANY)[0].subscription_id == first.subscription_id
    with pytest.raises(SourceError, match="Invalid companyId"):
        client.list_subscriptions("11111111-1111-4111-8111-111111111111")


def test_pax8_throttling_without_retry_after_backs_off(serve: Any, tls: TlsFiles) -> None:
    section = pax8_scenario()
    section["faults"] = [{"kind": "throttle", "path": "/v1/companies", "times": 2, "retryAfter": 30}]
    running = serve(Pax8Emulator(section))
    sleeps: list[float] = []
    assert len(pax8_client(running, tls, sleeps).list_customers()) == 2
    throttled = [r for r in running.emulator.requests_log() if r["status"] == 429]
    assert len(throttled) == 2
    assert sleeps == [1.0, 2.0], "no Retry-After: exponential back-off, not the 30 s of a header"


def test_pax8_token_failures(serve: Any, tls: TlsFiles) -> None:
    running = serve(Pax8Emulator(pax8_scenario()))
    with pytest.raises(SourceAuthError, match="Pax8 refused the client credentials"):
        pax8_client(running, tls, [], secret="wrong").list_customers()
    with pytest.raises(SourceAuthError, match="403"):
        pax8_client(running, tls, [], audience="api://usage").list_customers()


def test_pax8_expired_token_is_fetched_again_once(serve: Any, tls: TlsFiles) -> None:
    emulator = Pax8Emulator(pax8_scenario())
    running = serve(emulator)
    client = pax8_client(running, tls, [])
    client.list_customers()
    with emulator.lock:
        emulator.tokens = {token: (0.0, audience) for token, (_, audience) in emulator.tokens.items()}
    assert len(client.list_customers()) == 2
    assert emulator.tokens_issued == 2


def test_pax8_broken_paging_is_refused(serve: Any, tls: TlsFiles) -> None:
    section = pax8_scenario(subscriptions=250)
    section["faults"] = [{"kind": "broken-paging", "path": "/v1/subscriptions", "times": 1}]
    running = serve(Pax8Emulator(section))
    with pytest.raises(SourceError, match="asked for page 0, got page 1"):
        pax8_client(running, tls, []).list_all_subscriptions()
