"""The configuration endpoints, called as the Functions host calls them, on Azurite: read and
change profiles, tenants, custom licences, exclusions and the whole document; 400 naming the
field, 404, 409 on a stale version or an entry in use; overlapping filters refused; YAML export
and import round-trip; every change recorded with who and when."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
import yaml

from admin_api import config_routes as routes
from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from shared.bootstrap import Services, set_services
from shared.config.schema import dump_config, parse_config
from shared.config.yaml_io import to_yaml
from shared.domain.model import DirectoryUser, SkuCount, TenantSnapshot
from shared.settings import Settings
from tests.auth_support import platform_auth, signed_in

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures(platform_auth.__name__)]

T1 = "1f0a5b2c-0001-4a1b-8c2d-000000000001"
T2 = "2e1b6c3d-0002-4b2c-9d3e-000000000002"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
EXO = "4b9405b0-7788-4568-add1-99614e613b69"
ALICE = signed_in("alice@msp.example")
CONFIG: dict[str, Any] = {
    "psaConnections": [{"name": "cw", "type": "connectwise", "url": "https://cw.example.com/v4_6_release/apis/3.0",
                        "companyId": "msp", "publicKey": {"setting": "A"}, "privateKey": {"setting": "B"},
                        "clientId": "12345678-1234-1234-1234-123456789012"}],
    "billingProfiles": [{"name": "m365-bp", "psa": "cw", "productId": "1", "price": {"mode": "custom",
                                                                                       "amount": "20.90"}},
                        {"name": "exchange-p1", "psa": "cw", "productId": "4"}],
    "customLicences": [{"name": "managed-users", "kind": "entra-users", "scope": "licensed"}],
    "tenants": [{"tenantId": T1, "name": "Fabrikam Ltd", "companies": [
        {"psa": "cw", "companyId": "19", "licences": [
            {"skuId": SPB, "agreementId": "100", "lineId": "500", "profile": "m365-bp"},
            {"custom": "managed-users", "agreementId": "107", "profile": "exchange-p1"}]}]}],
}


@pytest.fixture
def services(azurite: Azurite, store: TableStore) -> Iterator[Services]:
    settings = Settings.from_environment({"SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string,
                                          "SEATSYNC_TABLE_PREFIX": store.prefix})
    installed = Services(settings, store=store)
    installed.config_repository.save(parse_config(CONFIG), "setup", "fixture")
    set_services(installed)
    yield installed
    set_services(None)


class Answer:
    def __init__(self, response: func.HttpResponse) -> None:
        self.status = response.status_code
        self.text = response.get_body().decode("utf-8")
        self.headers = dict(response.headers)
        self.mimetype = response.mimetype

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def etag(self) -> str:
        return str(self.headers["ETag"]).strip('"')


def call(function: Any, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
         params: dict[str, str] | None = None, route: dict[str, str] | None = None, raw: bytes | None = None) -> Answer:
    payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    request = func.HttpRequest(method, f"https://seatsync.example.net/api/{path}", body=payload,
                               headers={**ALICE, **(headers or {})}, params=params or {}, route_params=route or {})
    return Answer(function.build().get_user_function()(request))


def version_of(services: Services) -> str:
    version = services.config_repository.current()[1]
    assert version is not None
    return version.version_id


# ------------------------------------------------------------------------ whole document


def test_get_answers_the_document_and_its_version(services: Services) -> None:
    answer = call(routes.config_document, "GET", "config")
    assert answer.status == 200
    assert answer.json["config"] == dump_config(parse_config(CONFIG))
    assert answer.json["version"]["versionId"] == answer.etag == version_of(services)
    assert answer.json["version"]["savedBy"] == "setup"


def test_put_replaces_the_document_with_the_version_read(services: Services) -> None:
    read = call(routes.config_document, "GET", "config")
    document = read.json["config"]
    document["billingProfiles"][1]["description"] = "Exchange Online (Plan 1)"
    answer = call(routes.config_document, "PUT", "config", document, headers={"If-Match": f'"{read.etag}"'},
                  params={"comment": "describe EXO"})
    assert answer.status == 200
    assert answer.json["changed"] is True and answer.json["number"] == 2
    assert answer.etag == answer.json["version"] == version_of(services)
    config, version = services.config_repository.current()
    assert config.profile("exchange-p1").description == "Exchange Online (Plan 1)"  # type: ignore[union-attr]
    assert version is not None and (version.saved_by, version.comment) == ("alice@msp.example", "describe EXO")

    stale = call(routes.config_document, "PUT", "config", document, params={"version": read.etag})
    assert stale.status == 409
    assert stale.json["error"].startswith(f"the configuration is at version {answer.etag}, not {read.etag}")


def test_put_needs_the_version_edited(services: Services) -> None:
    answer = call(routes.config_document, "PUT", "config", CONFIG)
    assert answer.status == 400
    assert answer.json["field"] == "If-Match"
    forced = call(routes.config_document, "PUT", "config", {**CONFIG, "tenants": []}, headers={"If-Match": "*"})
    assert forced.status == 200 and services.config_repository.current()[0].tenants == ()


def test_an_invalid_document_is_refused_whole_naming_each_field(services: Services) -> None:
    before = version_of(services)
    document = json.loads(json.dumps(CONFIG))
    document["billingProfiles"][0]["price"] = {"mode": "custom", "amount": "twenty"}
    document["billingProfiles"][1]["psa"] = "autotask"
    document["tenants"][0]["companies"][0]["licences"][0]["skuId"] = "not-a-sku"
    answer = call(routes.config_document, "PUT", "config", document, headers={"If-Match": before})
    assert answer.status == 400
    fields = {e["field"] for e in answer.json["errors"]}
    assert "billingProfiles[0].price.amount" in fields
    assert "tenants[0] (Fabrikam Ltd).companies[0].licences[0].skuId" in fields
    assert version_of(services) == before, "nothing was stored"
    # a rule spanning entries, reported on its own line
    document = json.loads(json.dumps(CONFIG))
    document["billingProfiles"][1]["psa"] = "autotask"
    answer = call(routes.config_document, "PUT", "config", document, headers={"If-Match": before})
    assert answer.status == 400
    assert {"field": "billingProfiles[1].psa", "message": "no PSA connection named 'autotask'"} in answer.json["errors"]
    assert answer.json["field"] == "billingProfiles[1].psa"


def test_yaml_export_and_import_round_trip_exactly(services: Services) -> None:
    exported = call(routes.config_export_yaml, "GET", "config.yaml")
    assert exported.status == 200 and exported.mimetype == "application/yaml"
    assert exported.text == to_yaml(services.config_repository.current()[0])
    # the same text back: nothing changes, no version is added
    same = call(routes.config_document, "PUT", "config", raw=exported.text.encode(),
                headers={"Content-Type": "application/yaml", "If-Match": exported.etag})
    assert same.status == 200 and same.json["changed"] is False
    assert len(services.config_repository.history()) == 1
    # an edited export is stored as written and exported again byte for byte
    edited = exported.text.replace("'20.90'", "'21.50'")
    assert edited != exported.text
    put = call(routes.config_document, "PUT", "config", raw=edited.encode(),
               headers={"Content-Type": "application/yaml; charset=utf-8", "If-Match": exported.etag})
    assert put.status == 200 and put.json["changed"] is True
    again = call(routes.config_export_yaml, "GET", "config.yaml")
    assert again.text == edited
    assert again.etag == put.etag


def test_a_document_that_is_not_a_mapping_is_a_400_on_the_body(services: Services) -> None:
    answer = call(routes.config_document, "PUT", "config", ["psaConnections"], headers={"If-Match": "*"})
    assert answer.status == 400 and answer.json["field"] == "body"
    assert "must be a mapping" in answer.json["error"]


def test_bad_yaml_is_a_400_naming_the_line(services: Services) -> None:
    answer = call(routes.config_document, "PUT", "config", raw=b"tenants: [\n  - {tenantId: x\n",
                  headers={"Content-Type": "application/yaml", "If-Match": "*"})
    assert answer.status == 400
    assert answer.json["field"] == "body" and "not valid YAML at line" in answer.json["error"]


# ------------------------------------------------------------------------ billing profiles


def test_billing_profiles_get_put_delete(services: Services) -> None:
    listed = call(routes.config_billing_profiles, "GET", "config/billing-profiles")
    assert [p["name"] for p in listed.json["billingProfiles"]] == ["m365-bp", "exchange-p1"]
    one = call(routes.config_billing_profile, "GET", "config/billing-profiles/m365-bp", route={"name": "m365-bp"})
    assert one.status == 200 and one.json["price"] == {"mode": "custom", "amount": "20.90"}

    created = call(routes.config_billing_profile, "PUT", "config/billing-profiles/o365-e3",
                   {"psa": "cw", "productId": "3", "price": {"mode": "markup", "percent": "10"}},
                   route={"name": "o365-e3"})
    assert created.status == 201
    assert created.json["billingProfile"] == {"name": "o365-e3", "psa": "cw", "productId": "3",
                                              "price": {"mode": "markup", "percent": "10"}}
    changed = call(routes.config_billing_profile, "PUT", "config/billing-profiles/o365-e3",
                   {"name": "o365-e3", "psa": "cw", "productId": "3", "billing": "no-charge"},
                   route={"name": "o365-e3"}, headers={"If-Match": created.etag})
    assert changed.status == 200 and changed.json["number"] == created.json["number"] + 1
    assert services.config_repository.current()[0].profile("o365-e3").billing == "no-charge"  # type: ignore[union-attr]

    deleted = call(routes.config_billing_profile, "DELETE", "config/billing-profiles/o365-e3",
                   route={"name": "o365-e3"})
    assert deleted.status == 200 and deleted.json["changed"] is True
    gone = call(routes.config_billing_profile, "GET", "config/billing-profiles/o365-e3", route={"name": "o365-e3"})
    assert gone.status == 404 and gone.json["error"] == "no billing profile 'o365-e3'"
    missing = call(routes.config_billing_profile, "DELETE", "config/billing-profiles/nope", route={"name": "nope"})
    assert missing.status == 404


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"psa": "cw", "productId": "1", "price": {"mode": "custom", "amount": "abc"}}, "price.amount", "decimal"),
    ({"psa": "cw", "productId": "1", "price": {"mode": "custom"}}, "price", "needs a non-negative 'amount'"),
    ({"psa": "halo", "productId": "1"}, "psa", "no PSA connection named 'halo'"),
    ({"psa": "cw"}, "productId", "Field required"),
    ({"psa": "cw", "productId": "1", "prise": {}}, "prise", "unknown field"),
    ({"name": "other", "psa": "cw", "productId": "1"}, "name", "the body names 'other'"),
    (["not", "an", "object"], "body", "must be a JSON object"),
], ids=["decimal", "mode-needs-amount", "unknown-psa", "missing", "misspelt", "renamed", "not-object"])
def test_a_bad_profile_gets_400_naming_the_field_as_sent(services: Services, body: Any, field: str,
                                                         message: str) -> None:
    before = version_of(services)
    answer = call(routes.config_billing_profile, "PUT", "config/billing-profiles/new-one", body,
                  route={"name": "new-one"})
    assert answer.status == 400
    assert answer.json["field"] == field
    assert message in answer.json["error"]
    assert version_of(services) == before


def test_a_profile_in_use_cannot_be_deleted(services: Services) -> None:
    answer = call(routes.config_billing_profile, "DELETE", "config/billing-profiles/m365-bp", route={"name": "m365-bp"})
    assert answer.status == 409
    assert answer.json["usedBy"] == [f"tenants[0] (Fabrikam Ltd).companies[0].licences[0] (sku:{SPB})"]
    assert services.config_repository.current()[0].profile("m365-bp") is not None


def test_a_change_on_a_stale_version_is_refused(services: Services) -> None:
    read = call(routes.config_billing_profile, "GET", "config/billing-profiles/m365-bp", route={"name": "m365-bp"})
    call(routes.config_billing_profile, "PUT", "config/billing-profiles/m365-bp",
         {"psa": "cw", "productId": "1"}, route={"name": "m365-bp"})
    stale = call(routes.config_billing_profile, "PUT", "config/billing-profiles/m365-bp",
                 {"psa": "cw", "productId": "9"}, route={"name": "m365-bp"}, headers={"If-Match": read.etag})
    assert stale.status == 409
    assert services.config_repository.current()[0].profile("m365-bp").product_id == "1"  # type: ignore[union-attr]


# ------------------------------------------------------------------------ tenants


def contoso(**extra: Any) -> dict[str, Any]:
    return {"name": "Contoso Pharma", "companies": [
        {"psa": "cw", "companyId": "20", "name": "Contoso Pharma", "userFilter": {"department": ["Lab"]},
         "licences": [{"skuId": SPB, "agreementId": "101", "profile": "m365-bp"}]},
        {"psa": "cw", "companyId": "30", "name": "Contoso Pharma Sales", "userFilter": {"department": ["Sales"]},
         "licences": [{"skuId": SPB, "agreementId": "301", "profile": "m365-bp"}]}], **extra}


def test_tenants_get_put_delete(services: Services) -> None:
    created = call(routes.config_tenant, "PUT", f"config/tenants/{T2}", contoso(), route={"tenantId": T2.upper()})
    assert created.status == 201
    assert created.json["tenant"]["tenantId"] == T2
    listed = call(routes.config_tenants, "GET", "config/tenants")
    assert [(t["name"], [c["companyId"] for c in t["companies"]]) for t in listed.json["tenants"]] == [
        ("Fabrikam Ltd", ["19"]), ("Contoso Pharma", ["20", "30"])]
    assert listed.json["tenants"][1]["companies"][1] == {"psa": "cw", "companyId": "30", "name": "Contoso Pharma Sales",
                                                         "userFilter": {"department": ["Sales"]}, "licences": 1}
    got = call(routes.config_tenant, "GET", f"config/tenants/{T2}", route={"tenantId": T2})
    assert got.json == created.json["tenant"]
    assert got.json["companies"][0]["licences"] == [{"skuId": SPB, "agreementId": "101", "profile": "m365-bp"}]

    disabled = call(routes.config_tenant, "PUT", f"config/tenants/{T2}", {**got.json, "enabled": False},
                    route={"tenantId": T2}, headers={"If-Match": got.etag})
    assert disabled.status == 200
    assert services.config_repository.current()[0].tenant(T2).enabled is False  # type: ignore[union-attr]

    deleted = call(routes.config_tenant, "DELETE", f"config/tenants/{T2}", route={"tenantId": T2})
    assert deleted.status == 200
    assert call(routes.config_tenant, "GET", f"config/tenants/{T2}", route={"tenantId": T2}).status == 404


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"name": "X", "companies": [{"psa": "cw", "companyId": "20", "licences": [
        {"skuId": "nope", "agreementId": "1", "profile": "m365-bp"}]}]}, "companies[0].licences[0].skuId",
     "is not a licence SeatSync knows"),
    ({"name": "X", "companies": [{"psa": "cw", "companyId": "20", "licences": [
        {"skuId": SPB, "agreementId": "1", "profile": "m365-bq"}]}]}, "companies[0].licences[0].profile",
     "no billing profile named 'm365-bq'"),
    ({"name": "X", "companies": [{"psa": "cw", "companyId": "20", "licences": [
        {"skuId": SPB, "agreementId": "1", "lineId": "500"}]}]}, "companies[0].licences[0].lineId",
     "already billed by tenants[0] (Fabrikam Ltd)"),
    ({"name": "X", "companies": [{"psa": "cw", "companyId": "20", "userFilter": {"dept": ["x"]}}]},
     "companies[0].userFilter.dept", "unknown field"),
    ({"name": ""}, "name", "at least 1 character"),
    ({"tenantId": T1, "name": "X"}, "tenantId", "the body names"),
], ids=["sku", "profile", "line-twice", "filter-field", "empty-name", "other-tenant"])
def test_a_bad_tenant_gets_400_naming_the_field_as_sent(services: Services, body: Any, field: str,
                                                        message: str) -> None:
    before = version_of(services)
    answer = call(routes.config_tenant, "PUT", f"config/tenants/{T2}", body, route={"tenantId": T2})
    assert answer.status == 400, answer.text
    assert answer.json["field"] == field
    assert message in answer.json["error"]
    assert version_of(services) == before


def test_a_tenant_id_that_is_not_a_guid_is_400(services: Services) -> None:
    answer = call(routes.config_tenant, "GET", "config/tenants/fabrikam", route={"tenantId": "fabrikam"})
    assert answer.status == 400 and answer.json["field"] == "tenantId"


def save_snapshot(services: Services) -> None:
    users = [("ana", "Lab", "Leeds"), ("ben", "Sales", "Leeds"), ("cy", "Sales", "York"), ("dee", "Lab", "York")]
    services.snapshots.save(TenantSnapshot(
        tenant_id=T2, run_id="r20261124", collected_at=datetime.now(UTC) - timedelta(hours=2),
        skus=(SkuCount(SPB, "SPB", 5, 4),),
        users=tuple(DirectoryUser(id=f"u{i}", user_principal_name=f"{n}@contoso.example", display_name=n,
                                  sku_ids=(SPB,), department=d, city=c) for i, (n, d, c) in enumerate(users))))


def test_overlapping_filters_are_refused_naming_the_users(services: Services) -> None:
    save_snapshot(services)
    assert call(routes.config_tenant, "PUT", f"config/tenants/{T2}", contoso(), route={"tenantId": T2}).status == 201
    before = version_of(services)
    overlapping = contoso()
    overlapping["companies"][1]["userFilter"] = {"city": ["Leeds"]}  # ana is in Lab and in Leeds
    answer = call(routes.config_tenant, "PUT", f"config/tenants/{T2}", overlapping, route={"tenantId": T2})
    assert answer.status == 400
    assert answer.json["errors"] == [{
        "field": "companies[1].userFilter",
        "message": "1 user(s) match the filters of companies[0] (cw 20, Contoso Pharma) and companies[1] "
                   "(cw 30, Contoso Pharma Sales) and would be billed twice: ana@contoso.example"}]
    assert version_of(services) == before
    # the same through the whole document names the tenant too
    document = call(routes.config_document, "GET", "config").json["config"]
    document["tenants"][1] = {"tenantId": T2, **overlapping}
    whole = call(routes.config_document, "PUT", "config", document, headers={"If-Match": before})
    assert whole.status == 400
    assert whole.json["field"] == "tenants[1] (Contoso Pharma).companies[1].userFilter"
    assert "ana@contoso.example" in whole.json["error"]


# ------------------------------------------------------------------------ custom licences, exclusions


def test_custom_licences_get_put_delete(services: Services) -> None:
    created = call(routes.config_custom_licence, "PUT", "config/custom-licences/backup",
                   {"kind": "mailboxes", "mailboxType": "both"}, route={"name": "backup"})
    assert created.status == 201 and created.json["customLicence"]["mailboxType"] == "both"
    listed = call(routes.config_custom_licences, "GET", "config/custom-licences")
    assert [c["name"] for c in listed.json["customLicences"]] == ["managed-users", "backup"]
    bad = call(routes.config_custom_licence, "PUT", "config/custom-licences/backup", {"kind": "mailboxes"},
               route={"name": "backup"})
    assert bad.status == 400 and bad.json["field"] == "body" and "needs 'mailboxType'" in bad.json["error"]
    in_use = call(routes.config_custom_licence, "DELETE", "config/custom-licences/managed-users",
                  route={"name": "managed-users"})
    assert in_use.status == 409
    assert in_use.json["usedBy"] == ["tenants[0] (Fabrikam Ltd).companies[0].licences[1] (custom:managed-users)"]
    assert call(routes.config_custom_licence, "DELETE", "config/custom-licences/backup",
                route={"name": "backup"}).status == 200
    assert call(routes.config_custom_licence, "GET", "config/custom-licences/backup",
                route={"name": "backup"}).status == 404


def test_excluding_a_mapped_licence_names_the_mapping(services: Services) -> None:
    answer = call(routes.config_excluded_licences, "PUT", "config/excluded-licences", [EXO, SPB])
    assert answer.status == 400
    assert answer.json["field"] == "tenants[0] (Fabrikam Ltd).companies[0].licences[0].skuId"
    ok = call(routes.config_excluded_licences, "PUT", "config/excluded-licences", {"excludedLicences": [EXO]})
    assert ok.status == 200
    assert call(routes.config_excluded_licences, "GET", "config/excluded-licences").json["excludedLicences"] == [EXO]


# ------------------------------------------------------------------------ history


def test_every_change_is_recorded_with_who_and_when(services: Services) -> None:
    started = datetime.now(UTC)
    call(routes.config_billing_profile, "PUT", "config/billing-profiles/o365-e3", {"psa": "cw", "productId": "3"},
         route={"name": "o365-e3"})
    call(routes.config_billing_profile, "DELETE", "config/billing-profiles/o365-e3", route={"name": "o365-e3"},
         headers=signed_in("bob@msp.example"), params={"comment": "not sold any more"})
    history = call(routes.config_history, "GET", "config/history").json["versions"]
    assert [(v["number"], v["savedBy"], v["comment"]) for v in history] == [
        (3, "bob@msp.example", "not sold any more"),
        (2, "alice@msp.example", "billing profile 'o365-e3' created"),
        (1, "setup", "fixture")]
    assert all(datetime.fromisoformat(v["savedAt"]) >= started - timedelta(seconds=5) for v in history[:2])
    assert len(call(routes.config_history, "GET", "config/history", params={"limit": "1"}).json["versions"]) == 1
    old = call(routes.config_history_version, "GET", "config/history/x", route={"versionId": history[1]["versionId"]})
    assert [p["name"] for p in old.json["config"]["billingProfiles"]] == ["m365-bp", "exchange-p1", "o365-e3"]
    assert call(routes.config_history_version, "GET", "config/history/x", route={"versionId": "v9"}).status == 404


def test_the_yaml_of_the_store_parses_back_to_the_same_configuration(services: Services) -> None:
    text = call(routes.config_export_yaml, "GET", "config.yaml").text
    assert parse_config(yaml.safe_load(text)) == services.config_repository.current()[0]
