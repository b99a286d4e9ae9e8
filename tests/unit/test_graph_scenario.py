"""The ``graph:`` and ``teams:`` scenario sections are validated strictly, naming the path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from emulators.base import EmulatorError
from emulators.graph import GraphEmulator, load_directory, stable_id
from emulators.webhook import TeamsWebhookEmulator, validate_message

PARTNER = "0a0a0a0a-0000-4000-8000-000000000001"
CLIENT = "c1c1c1c1-0000-4000-8000-000000000002"


def section(*tenants: dict[str, Any]) -> dict[str, Any]:
    return {"partner": {"tenantId": PARTNER, "clientId": CLIENT, "clientSecret": "s",
                        "displayName": "Partner"},
            "tenants": list(tenants)}


def tenant(n: int, **extra: Any) -> dict[str, Any]:
    return {"tenantId": f"00000000-0000-4000-8000-{n:012d}", "displayName": f"Tenant {n}", **extra}


def error_of(raw: dict[str, Any]) -> str:
    with pytest.raises(EmulatorError) as caught:
        load_directory(raw)
    return str(caught.value)


def test_a_bad_sku_count_names_its_path() -> None:
    raw = section(tenant(1), tenant(2), tenant(3, skus=[{"skuPartNumber": "SPB", "enabled": "lots"}]))
    assert error_of(raw).startswith("graph.tenants[2].skus[0].enabled must be an integer")


def test_a_negative_count_is_refused() -> None:
    raw = section(tenant(1, skus=[{"skuPartNumber": "SPB", "enabled": 3, "suspended": -1}]))
    assert "graph.tenants[0].skus[0].suspended must be >= 0" in error_of(raw)


def test_an_unknown_key_is_refused_with_the_allowed_ones() -> None:
    raw = section(tenant(1, users=[{"userPrincipalName": "a@x.example", "licence": ["SPB"]}]))
    message = error_of(raw)
    assert message.startswith("graph.tenants[0].users[0].licence: unknown key")
    assert "licenses" in message


def test_an_unknown_top_level_key_is_refused() -> None:
    raw = section()
    raw["tenant"] = []
    assert error_of(raw).startswith("graph.tenant: unknown key")


@pytest.mark.parametrize(("change", "expected"), [
    ({"tenantId": "not-a-guid"}, "graph.tenants[0].tenantId must be a GUID"),
    ({"auth": "maybe"}, "graph.tenants[0].auth must be one of ok, not-consented"),
    ({"gdap": "pending"}, "graph.tenants[0].gdap must be one of active, expired, none"),
    ({"defaultDomain": "not a domain"}, "graph.tenants[0].defaultDomain must be a domain name"),
    ({"throttle": {"unitsPer10s": 0}}, "graph.tenants[0].throttle.unitsPer10s must be >= 1"),
    ({"concealedReportNames": "yes"}, "graph.tenants[0].concealedReportNames must be true or false"),
    ({"missingPermissions": ["Everything.All"]}, "unknown permission 'Everything.All'"),
    ({"displayName": None}, "graph.tenants[0].displayName: required"),
])
def test_bad_tenant_values_name_their_path(change: dict[str, Any], expected: str) -> None:
    assert expected in error_of(section({**tenant(1), **change}))


def test_a_licence_must_name_a_sku_of_the_tenant() -> None:
    raw = section(tenant(1, skus=[{"skuPartNumber": "SPB", "enabled": 1}],
                         users=[{"userPrincipalName": "a@x.example", "licenses": ["SPB", "E5"]}]))
    assert error_of(raw) == "graph.tenants[0].users[0].licenses[1]: no SKU 'E5' in this tenant's skus"


def test_generated_users_licences_are_checked_too() -> None:
    raw = section(tenant(1, generatedUsers=[{"count": 3, "licenses": ["E3"]}]))
    assert "graph.tenants[0].generatedUsers[0].licenses[0]: no SKU 'E3'" in error_of(raw)


def test_duplicates_are_refused() -> None:
    users = [{"userPrincipalName": "a@x.example"}, {"userPrincipalName": "A@x.example"}]
    assert "graph.tenants[0].users[1].userPrincipalName: duplicate user" in error_of(
        section(tenant(1, users=users)))
    assert "graph.tenants[1].tenantId: duplicate tenant" in error_of(section(tenant(1), tenant(1)))
    assert "already verified by tenant" in error_of(
        section(tenant(1, defaultDomain="x.example"), tenant(2, domains=["x.example"])))


def test_a_bad_user_principal_name_is_refused() -> None:
    raw = section(tenant(1, users=[{"userPrincipalName": "no-at-sign"}]))
    assert "graph.tenants[0].users[0].userPrincipalName must be a user principal name" in error_of(raw)


def test_group_members_must_exist() -> None:
    raw = section(tenant(1, groups=[{"displayName": "G", "users": ["ghost@x.example"]}]))
    assert "graph.tenants[0].groups[0].users[0]: no user 'ghost@x.example'" in error_of(raw)
    raw = section(tenant(1, groups=[{"displayName": "G", "groups": ["Other"]}]))
    assert "graph.tenants[0].groups[0].groups[0]: no group 'Other'" in error_of(raw)
    raw = section(tenant(1, groups=[{"displayName": "G", "groups": ["G"]}]))
    assert "a group cannot be a member of itself" in error_of(raw)


def test_an_explicit_enabled_count_must_match_the_subscriptions() -> None:
    raw = section(tenant(1, skus=[{"skuPartNumber": "SPB", "enabled": 10}],
                         subscriptions=[{"skuPartNumber": "SPB", "totalLicenses": 8}]))
    assert error_of(raw).startswith("graph.tenants[0].skus[0].enabled: 10 differs from the 8")


def test_the_partner_needs_a_credential() -> None:
    raw = section()
    del raw["partner"]["clientSecret"]
    assert "graph.partner: set clientSecret or clientCertificate" in error_of(raw)


def test_consumed_units_are_derived_from_the_users_holding_the_licence() -> None:
    raw = section(tenant(1, skus=[{"skuPartNumber": "SPB", "enabled": 10},
                                  {"skuPartNumber": "EXO", "enabled": 2}],
                         users=[{"userPrincipalName": "a@x.example", "licenses": ["SPB", "EXO"],
                                 "accountEnabled": False}],
                         generatedUsers=[{"count": 4, "licenses": ["SPB"]}, {"count": 2}]))
    t = load_directory(raw).tenants[tenant(1)["tenantId"]]
    by_part = {s.part_number: s.sku_id for s in t.skus.values()}
    assert t.consumed[by_part["SPB"]] == 5
    assert t.consumed[by_part["EXO"]] == 1
    assert len(t.users) == 7
    assert t.skus[by_part["SPB"]].enabled == 10
    assert [s.total for s in t.subscriptions if s.sku_id == by_part["SPB"]] == [10]


def test_generated_ids_are_deterministic() -> None:
    raw = section(tenant(1, skus=[{"skuPartNumber": "SPB", "enabled": 1}],
                         users=[{"userPrincipalName": "a@x.example"}],
                         generatedUsers=[{"count": 3, "prefix": "staff"}],
                         groups=[{"displayName": "G", "users": ["a@x.example"]}]))
    first = load_directory(copy.deepcopy(raw)).tenants[tenant(1)["tenantId"]]
    second = load_directory(copy.deepcopy(raw)).tenants[tenant(1)["tenantId"]]
    assert [u.id for u in first.users] == [u.id for u in second.users]
    assert first.users[0].id == stable_id(tenant(1)["tenantId"], "a@x.example")
    assert [u.upn for u in first.users[1:]] == ["staff00001@tenant1.onmicrosoft.com",
                                                "staff00002@tenant1.onmicrosoft.com",
                                                "staff00003@tenant1.onmicrosoft.com"]
    assert list(first.groups) == list(second.groups)
    assert list(first.skus) == list(second.skus)


def test_the_emulator_refuses_a_bad_section_at_construction() -> None:
    with pytest.raises(EmulatorError, match=r"graph\.tenants\[0\]\.skus\[0\]\.enabled"):
        GraphEmulator(section(tenant(1, skus=[{"skuPartNumber": "SPB", "enabled": 1.5}])))


def test_the_admin_api_validates_changes_the_same_way() -> None:
    emulator = GraphEmulator(section(tenant(1, skus=[{"skuPartNumber": "SPB", "enabled": 1}])))
    tid = tenant(1)["tenantId"]
    with pytest.raises(EmulatorError, match="no SKU 'E5'"):
        emulator.add_user(tid, {"userPrincipalName": "b@x.example", "licenses": ["E5"]})
    uid = emulator.add_user(tid, {"userPrincipalName": "b@x.example", "licenses": ["SPB"]})
    assert uid == stable_id(tid, "b@x.example")
    emulator.update_user(tid, "b@x.example", {"licenses": []})
    sku = next(iter(emulator.directory.tenants[tid].skus))
    assert emulator.directory.tenants[tid].consumed[sku] == 0
    emulator.remove_user(tid, uid)
    assert emulator.directory.tenants[tid].users == []
    emulator.update_tenant(tid, {"auth": "not-consented"})
    assert emulator.state()["tenants"][1]["auth"] == "not-consented"
    emulator.reset()
    assert emulator.state()["tenants"][1]["auth"] == "ok", "reset reloads the scenario"


def test_the_teams_section_is_validated() -> None:
    with pytest.raises(EmulatorError, match=r"teams\.channels: unknown key"):
        TeamsWebhookEmulator({"channels": []})
    with pytest.raises(EmulatorError, match=r"teams\.workflows\[0\]\.id"):
        TeamsWebhookEmulator({"workflows": [{"id": "has space"}]})
    assert TeamsWebhookEmulator(None).state() == {"count": 0, "posts": []}


@pytest.mark.parametrize(("body", "problem"), [
    ([], "the body must be a JSON object"),
    ({"type": "card", "attachments": []}, "'type' must be 'message'"),
    ({"type": "message", "attachments": []}, "'attachments' must be a non-empty array"),
    ({"type": "message", "attachments": [{"contentType": "text/html", "content": {}}]},
     "attachments[0].contentType must be 'application/vnd.microsoft.card.adaptive'"),
    ({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                          "content": {"type": "AdaptiveCard"}}]},
     "attachments[0].content.version must be a version"),
    ({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                          "content": {"type": "AdaptiveCard", "version": "1.5",
                                                      "body": [{"text": "no type"}]}}]},
     "attachments[0].content.body[0] must be an element object with a 'type'"),
])
def test_webhook_messages_are_checked_for_the_workflows_envelope(body: Any, problem: str) -> None:
    found = validate_message(body)
    assert found is not None
    assert found.startswith(problem)
