"""Licences named in the configuration by part number or product name, resolved with the shipped
product table; a name that fits several licences is refused with the candidates."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.config.products import resolve_licence
from shared.config.schema import dump_config, parse_config
from shared.errors import ConfigError

SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
BASIC = ("3b555118-da6a-4418-894f-7df1e2096870", "dab7782a-93b1-4074-8bb1-0e61318bea0b")
T1 = "aaaaaaaa-0000-0000-0000-000000000001"

DOCUMENT: dict[str, Any] = {
    "psaConnections": [{"name": "cw", "type": "connectwise", "url": "https://cw.example.com/v4_6_release/apis/3.0",
                        "companyId": "msp", "publicKey": {"setting": "A"}, "privateKey": {"setting": "B"},
                        "clientId": "12345678-1234-1234-1234-123456789012"}],
    "excludedLicences": ["POWER_BI_STANDARD"],
    "tenants": [{"tenantId": T1, "name": "Fabrikam",
                 "customLicences": [{"name": "m365-seats", "kind": "licences", "skuIds": ["spb", E3]}],
                 "companies": [{"psa": "cw", "companyId": "19", "licences": [
                     {"skuId": "Microsoft 365 Business Premium", "agreementId": "100", "lineId": "500"},
                     {"custom": "m365-seats", "agreementId": "100", "lineId": "501"}]}]}],
}


def with_sku(value: str) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    document["tenants"][0]["companies"][0]["licences"][0]["skuId"] = value
    return document


@pytest.mark.parametrize("name", ["SPB", "spb", "Microsoft 365 Business Premium", "  microsoft 365  business premium ",
                                  SPB.upper()])
def test_a_licence_is_named_by_part_number_product_name_or_id(name: str) -> None:
    assert resolve_licence(name) == SPB
    config = parse_config(with_sku(name))
    assert config.tenants[0].companies[0].licences[0].sku_id == SPB


def test_every_place_that_names_a_licence_takes_names_and_stores_ids() -> None:
    config = parse_config(DOCUMENT)
    assert config.excluded_licences == ("a403ebcc-fae0-4ca2-8c8c-7a907fd6c235",)
    assert config.tenants[0].custom_licences[0].sku_ids == (SPB, E3)
    dumped = dump_config(config)
    assert dumped["tenants"][0]["companies"][0]["licences"][0]["skuId"] == SPB, "exported as the id"
    assert parse_config(dumped) == config


def test_a_name_of_several_licences_is_refused_with_the_candidates() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(with_sku("Microsoft 365 Business Basic"))
    [problem] = caught.value.problems
    assert problem.startswith("tenants[0] (Fabrikam).companies[0].licences[0].skuId: 'Microsoft 365 Business Basic' "
                              "names 2 licences")
    for sku_id in BASIC:
        assert sku_id in problem
    assert "O365_BUSINESS_ESSENTIALS" in problem and "SMB_BUSINESS_ESSENTIALS" in problem
    assert resolve_licence("O365_BUSINESS_ESSENTIALS") == BASIC[0], "the part number picks one"


def test_an_unknown_name_suggests_the_nearest() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(with_sku("Microsoft 365 Busines Premium"))
    [problem] = caught.value.problems
    assert "is not a licence SeatSync knows" in problem
    assert "did you mean: Microsoft 365 Business Premium (SPB" in problem


def test_an_id_newer_than_the_table_is_kept() -> None:
    newer = "0f0f0f0f-1111-2222-3333-444444444444"
    assert parse_config(with_sku(newer)).tenants[0].companies[0].licences[0].sku_id == newer
