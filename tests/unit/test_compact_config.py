"""A stored configuration keeps its tenants as compact JSON documents, each parsed when read:
it must behave exactly as the configuration it was made from."""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest

from shared.config.compact import CompactModels
from shared.config.schema import SeatSyncConfig, TenantConfig, dump_config, parse_config
from shared.config.yaml_io import to_yaml
from tests.unit.test_config_schema import SPB, T1, T2, VALID

T3 = "aaaaaaaa-0000-0000-0000-000000000003"


def _document() -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    document["tenants"].append(
        {"tenantId": T3, "name": "Northwind", "partner": None, "companies": [
            {"psa": "connectwise", "companyId": "21", "syncContacts": True,
             "licences": [{"skuId": SPB, "agreementId": "102", "lineId": "502", "included": 2, "minimum": 5,
                           "description": "  seats  "}]}]})
    return document


def test_a_compacted_configuration_equals_the_one_it_was_made_from() -> None:
    config = parse_config(_document())
    compact = config.compacted()
    assert isinstance(compact.tenants, CompactModels)
    assert compact == config and config == compact
    assert hash(compact) == hash(config)
    assert list(compact.tenants) == list(config.tenants)
    assert compact.tenants[2] == config.tenants[2] and compact.tenants[-1] == config.tenants[-1]
    assert compact.tenants[1:] == config.tenants[1:]
    assert compact.tenants.index(config.tenants[2]) == 2
    assert config.tenants[1] in compact.tenants
    assert compact.compacted() is compact


def test_whether_a_tenant_is_configured_is_answered_alike_and_a_compact_one_parses_none(
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(_document())
    compact = config.compacted()
    assert isinstance(compact.tenants, CompactModels)
    monkeypatch.setattr(CompactModels, "_parse", lambda self, document: pytest.fail("a tenant was parsed"))
    for tenant_id, configured in ((T3, True), (T3.upper(), True), (T1, True),
                                  ("aaaaaaaa-0000-0000-0000-0000000000ff", False)):
        assert compact.has_tenant(tenant_id) is configured
        assert config.has_tenant(tenant_id) is configured


def test_a_compacted_configuration_dumps_the_same_document() -> None:
    config = parse_config(_document())
    compact = config.compacted()
    assert dump_config(compact) == dump_config(config)
    assert compact.model_dump_json(by_alias=True) == config.model_dump_json(by_alias=True)
    assert to_yaml(compact) == to_yaml(config)
    assert parse_config(dump_config(compact)) == config
    # a tenant parses back as from the stored document, which leaves defaults out
    third = compact.tenants[2]
    assert third.model_fields_set == parse_config(dump_config(config)).tenants[2].model_fields_set
    assert third.companies[0].licences[0].description == "seats"


def test_an_empty_configuration_dumps_no_tenants_when_compacted() -> None:
    assert dump_config(SeatSyncConfig().compacted()) == dump_config(SeatSyncConfig()) == {}


def test_a_tenant_is_found_by_id_in_any_case() -> None:
    compact = parse_config(_document()).compacted()
    found = compact.tenant(T2.upper())
    assert found is not None and found.name == "Contoso" and found.enabled is False
    assert compact.tenant("bbbbbbbb-0000-0000-0000-000000000009") is None


def test_validating_again_keeps_compact_tenants_and_a_copy_can_replace_them() -> None:
    compact = parse_config(_document()).compacted()
    again = SeatSyncConfig.model_validate({**dict(compact), "tenants": compact.tenants})
    assert isinstance(again.tenants, CompactModels) and again == compact
    edited = compact.model_copy(update={"tenants": tuple(compact.tenants)[:2]})
    assert edited.tenant(T3) is None and edited.tenant(T1) is not None
    listed = SeatSyncConfig.model_validate({**dict(compact), "tenants": list(compact.tenants)})
    assert isinstance(listed.tenants, tuple)


def test_the_lines_named_by_line_id_are_found_in_both_forms() -> None:
    config = parse_config(_document())
    assert config.lines_named("connectwise") == frozenset({"500", "502"})
    compact = config.compacted()
    assert compact.lines_named("connectwise") == frozenset({"500", "502"})
    assert compact.lines_named("autotask") == frozenset()


def test_a_compact_tenant_holds_a_fraction_of_its_models() -> None:
    """What a process keeps of a stored configuration's tenant: its JSON document, not its models."""
    config = parse_config(_document())
    tenant = config.tenants[2]
    models = [tenant, *tenant.companies, *tenant.companies[0].licences]
    held_as_models = sum(sys.getsizeof(model.__dict__) for model in models)
    compact = CompactModels.of(TenantConfig, (tenant,), lambda t: t.tenant_id)
    document = compact._documents[0]
    assert sys.getsizeof(document) < held_as_models / 2


def test_many_tenants_are_kept_deflated_against_what_they_share() -> None:
    """Tenants repeat member names, licence ids, profiles and policies: each document is deflated
    against a dictionary of the first ones, and reads back as the tenant it was. Read a tenant at
    a time or given whole, the same tenants are kept the same way."""
    from shared.config.compact import CompactCollector

    template = _document()["tenants"][2]
    tenants = []
    for n in range(300):
        raw = {**copy.deepcopy(template), "tenantId": f"aaaaaaaa-0000-0000-0000-{n:012d}", "name": f"Customer {n}"}
        raw["companies"][0]["licences"][0]["lineId"] = str(1000 + n)
        tenants.append(TenantConfig.model_validate(raw))
    whole = CompactModels.of(TenantConfig, tenants, lambda t: t.tenant_id)
    collector: CompactCollector[TenantConfig] = CompactCollector(TenantConfig)
    for tenant in tenants:
        collector.add(tenant, tenant.tenant_id)
    collected = collector.collected()
    json_bytes = sum(len(CompactModels.document(t)) for t in tenants)
    kept = collected._documents.size
    assert kept < json_bytes / 3, (kept, json_bytes)
    assert collected == whole == tenants and collected._documents == whole._documents
    assert list(collected) == tenants and collected.get(tenants[250].tenant_id) == tenants[250]

    few: CompactCollector[TenantConfig] = CompactCollector(TenantConfig)  # less than a dictionary's worth
    few.add(tenants[0], tenants[0].tenant_id)
    assert list(few.collected()) == tenants[:1]
    assert list(CompactCollector(TenantConfig).collected()) == [] == list(CompactModels(TenantConfig, (), []))


def test_items_are_found_by_key_and_position_in_one_buffer() -> None:
    """Keys of any length and script, repeated or not, are found by bisection over the sorted
    buffer; a repeated key finds its first item, as a scan would; positions behave as a tuple's."""
    tenants = [TenantConfig.model_validate({"tenantId": f"aaaaaaaa-0000-0000-0000-{n:012d}", "name": f"T{n}"})
               for n in range(7)]
    keys = ["m", "ä-tenant", "b", "m", "", "zz", "a-much-longer-key-than-the-others"]
    compact = CompactModels.of(TenantConfig, tenants, lambda t: keys[tenants.index(t)])
    for key, position in (("m", 0), ("ä-tenant", 1), ("b", 2), ("", 4), ("zz", 5),
                          ("a-much-longer-key-than-the-others", 6)):
        assert compact.has(key) and compact.get(key) == tenants[position], key
    for absent in ("a", "n", "zzz", "ä", "M"):
        assert not compact.has(absent) and compact.get(absent) is None, absent
    assert compact[-1] == tenants[-1] and compact[0] == tenants[0] and compact[2:5] == tuple(tenants[2:5])
    assert compact[::-3] == tuple(tenants[::-3])
    with pytest.raises(IndexError):
        compact[7]
    with pytest.raises(IndexError):
        compact[-8]
    with pytest.raises(ValueError, match="a key is needed"):
        CompactModels(TenantConfig, (b"{}",), [])
    assert CompactModels(TenantConfig, (), []) == () and not CompactModels(TenantConfig, (), []).has("")
