"""The configuration document: whole-file validation with errors naming the entry."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from shared.config.schema import dump_config, parse_config, parse_config_json
from shared.config.yaml_io import parse_yaml, to_yaml
from shared.errors import ConfigError, InputRefused

T1 = "aaaaaaaa-0000-0000-0000-000000000001"
T2 = "aaaaaaaa-0000-0000-0000-000000000002"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"

VALID: dict[str, Any] = {
    "psaConnections": [{
        "name": "connectwise", "type": "connectwise",
        "url": "https://api-na.myconnectwise.net/v4_6_release/apis/3.0", "companyId": "mymsp",
        "publicKey": {"setting": "CW_PUBLIC_KEY"}, "privateKey": {"keyVault": "cw-private-key"},
        "clientId": "12345678-1234-1234-1234-123456789012",
    }],
    "tenants": [
        {"tenantId": T1, "name": "Fabrikam", "companies": [
            {"psa": "connectwise", "companyId": "19",
             "licences": [{"skuId": SPB, "agreementId": "100", "lineId": "500"}]}]},
        {"tenantId": T2, "name": "Contoso", "enabled": False, "companies": []},
    ],
}


def broken(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    change(document)
    return document


def test_a_valid_document_parses() -> None:
    config = parse_config(VALID)
    assert config.tenant(T1.upper()) is not None
    assert config.tenant(T2).enabled is False  # type: ignore[union-attr]
    assert config.connection("connectwise") is not None
    assert config.tenants[0].companies[0].licences[0].line_id == "500"


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["tenants"][0].update(tenantId="not-a-guid"), "tenants[0] (Fabrikam).tenantId"),
    (lambda d: d["tenants"][0]["companies"][0]["licences"][0].update(skuId="x"),
     "tenants[0] (Fabrikam).companies[0].licences[0].skuId"),
    (lambda d: d["tenants"][0]["companies"][0].update(psa="autotask"), "no PSA connection named 'autotask'"),
    (lambda d: d["tenants"][1].update(tenantId=T1), "is also tenants[0]"),
    (lambda d: d["tenants"][0].update(colour="blue"), "tenants[0] (Fabrikam).colour: unknown field"),
    (lambda d: d["psaConnections"][0].update(url="http://cw.example.com/apis/3.0"), "psaConnections[0]"),
    (lambda d: d["psaConnections"][0].update(privateKey="plain-text-secret"), "privateKey"),
    (lambda d: d["psaConnections"][0].update(publicKey={"setting": "A", "keyVault": "b"}), "exactly one"),
    (lambda d: d["tenants"][0]["companies"][0]["licences"].append(
        {"skuId": SPB, "agreementId": "101", "lineId": "501"}), "mapped twice"),
    (lambda d: d["tenants"][1]["companies"].append(
        {"psa": "connectwise", "companyId": "20",
         "licences": [{"skuId": SPB, "agreementId": "100", "lineId": "500"}]}), "line 500 is already billed"),
], ids=["tenant-guid", "sku-guid", "unknown-psa", "duplicate-tenant", "unknown-field", "http-url",
        "literal-secret", "two-secret-sources", "sku-twice", "line-twice"])
def test_invalid_entries_are_named(change: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(broken(change))
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_every_problem_is_listed_at_once() -> None:
    def two_problems(d: dict[str, Any]) -> None:
        d["tenants"][0]["tenantId"] = "x"
        d["tenants"][1]["name"] = ""
    with pytest.raises(ConfigError) as caught:
        parse_config(broken(two_problems))
    assert len(caught.value.problems) == 2


def test_yaml_round_trips_exactly() -> None:
    config = parse_config(VALID)
    text = to_yaml(config)
    again = parse_yaml(text)
    assert again == config
    assert to_yaml(again) == text


@pytest.mark.parametrize(("text", "error", "expected"), [
    ("tenants: [", InputRefused, "not valid YAML at line"),
    ("", ConfigError, "the file is empty"),
    ("- a\n- b\n", ConfigError, "must be a mapping"),
])
def test_unreadable_yaml_is_rejected(text: str, error: type[Exception], expected: str) -> None:
    with pytest.raises(error, match=expected):
        parse_yaml(text)


def test_models_given_the_same_fields_share_one_set_of_them_and_stay_exact() -> None:
    """Thousands of tenants' licences keep one set of given field names between them (memory a
    tenant), while what each was given, a copy with changes and the exported document stay its own."""
    document = copy.deepcopy(VALID)
    document["tenants"][1]["companies"] = [
        {"psa": "connectwise", "companyId": "20", "licences": [{"skuId": SPB, "agreementId": "200", "lineId": "600"}]}]
    config = parse_config(document)
    first = config.tenants[0].companies[0].licences[0]
    second = config.tenants[1].companies[0].licences[0]
    assert first.model_fields_set is second.model_fields_set
    assert first.model_fields_set == {"sku_id", "agreement_id", "line_id"}
    changed = first.model_copy(update={"note": "moved"})
    assert changed.model_fields_set == {"sku_id", "agreement_id", "line_id", "note"}
    assert first.model_fields_set == {"sku_id", "agreement_id", "line_id"}
    assert first.model_dump(exclude_unset=True, by_alias=True) == {"skuId": SPB, "agreementId": "100", "lineId": "500"}
    assert parse_config(parse_yaml(to_yaml(config)).model_dump(mode="json", by_alias=True, exclude_unset=True)) \
        == config


def test_a_run_s_tenants_share_their_sets_of_given_fields_and_cannot_be_changed() -> None:
    """Every process of a run keeps its list of tenants to do (``Services.started``)."""
    from pydantic import ValidationError

    from shared.contracts import StartedRun

    read = StartedRun.model_validate_json(json.dumps({"runId": "r", "tenants": [
        {"tenantId": T1, "name": "Fabrikam", "partner": "main"},
        {"tenantId": T2, "name": "Contoso", "partner": "main"}]}))
    first, second = read.tenants
    assert first.model_fields_set is second.model_fields_set == {"tenant_id", "name", "partner"}
    assert first.partner is second.partner and first.group_ids is second.group_ids == ()  # one each, not per tenant
    with pytest.raises(ValidationError):
        first.guard = "held"
    changed = first.model_copy(update={"guard": "held"})
    assert changed.guard == "held" and first.model_fields_set == {"tenant_id", "name", "partner"}


PLACES = {"CONNECTWISE_URL": "https://cw.example/v4_6_release/apis/3.0",
          "AUTOTASK_URL": "https://webservices.autotask.example/ATServicesRest",
          "HALOPSA_URL": "https://halo.example", "PARTNER_CENTER_URL": "https://partner.example"}


def _documents() -> list[Any]:
    from pathlib import Path
    from string import Template

    import yaml

    from emulators.generator import generate_msp

    root = Path(__file__).resolve().parents[2] / "emulators" / "scenarios"
    texts = [p.read_text(encoding="utf-8") for p in sorted(root.glob("*.config.yaml"))]
    texts.append(generate_msp(40)[1])
    return [VALID, *(yaml.safe_load(Template(t).substitute(PLACES)) for t in texts)]


@pytest.mark.parametrize("document", _documents(), ids=lambda d: f"{len(d['tenants'])}-tenants")
def test_a_stored_document_parsed_from_its_json_is_the_configuration_parse_config_makes(document: Any) -> None:
    """A stored configuration is parsed from its JSON text, with no tree of dicts in between: the
    same models, to the last Decimal and date, as from the document."""
    expected = parse_config(document)
    for text in (json.dumps(document), json.dumps(dump_config(expected))):
        parsed = parse_config_json(text)
        assert parsed == expected
        assert dump_config(parsed) == dump_config(expected)


def test_a_stored_document_that_is_invalid_names_each_place_as_parse_config_does() -> None:
    document = broken(lambda d: d["tenants"][0].update(tenantId="not-a-guid"))
    with pytest.raises(ConfigError) as caught:
        parse_config_json(json.dumps(document), source="stored configuration v1")
    assert caught.value.source == "stored configuration v1"
    assert any("tenants[0] (Fabrikam).tenantId" in p for p in caught.value.problems), caught.value.problems
    with pytest.raises(ConfigError, match="not JSON"):
        parse_config_json("{not json", source="stored configuration v1")
