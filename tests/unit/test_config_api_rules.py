"""The config API's pure rules: problems split per entry and named as the caller sent them, the
version a caller edited, what uses a profile or custom licence, request bodies."""

from __future__ import annotations

import pytest

from shared.config.schema import parse_config
from shared.errors import ConfigError, RequestValidationError
from shared.services.config_api import (
    CUSTOM_LICENCES,
    PROFILES,
    TENANTS,
    expected_version,
    load_document,
    locate,
    rebase,
    split_problems,
    tenant_summary,
    users_of,
)

T1 = "aaaaaaaa-0000-4000-8000-000000000001"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
CONNECTION = {"name": "cw", "type": "connectwise", "url": "https://cw.example.com/v4_6_release/apis/3.0",
              "companyId": "msp", "publicKey": {"setting": "A"}, "privateKey": {"setting": "B"},
              "clientId": "12345678-1234-1234-1234-123456789012"}


def problems_of(document: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    return split_problems(raised.value.problems)


def test_rules_spanning_entries_get_a_line_each() -> None:
    problems = problems_of({
        "psaConnections": [CONNECTION],
        "billingProfiles": [{"name": "a", "psa": "x", "productId": "1"}, {"name": "a", "psa": "cw", "productId": "2"}],
        "tenants": [{"tenantId": T1, "name": "Fabrikam; Sons", "companies": [{"psa": "cw", "companyId": "1",
                                                                               "licences": [
            {"skuId": SPB, "agreementId": "1", "lineId": "5"}, {"skuId": SPB, "agreementId": "1", "lineId": "5"}]}]}],
    })
    assert "billingProfiles[1].name: 'a' is used twice" in problems
    assert "billingProfiles[0].psa: no PSA connection named 'x'" in problems
    assert ("tenants[0] (Fabrikam; Sons).companies[0].licences[1].lineId: line 5 is already billed by "
            "tenants[0] (Fabrikam; Sons).companies[0].licences[0]; one PSA line can bill one licence only") in problems
    assert "tenants[0] (Fabrikam; Sons): " + SPB + " is mapped twice in one company" in problems


@pytest.mark.parametrize(("problem", "field", "message"), [
    ("billingProfiles[0].price.amount: Input should be a valid decimal", "billingProfiles[0].price.amount",
     "Input should be a valid decimal"),
    ("tenants[3] (Contoso: Pharma (EU)).companies[0].psa: no PSA connection named 'x'",
     "tenants[3] (Contoso: Pharma (EU)).companies[0].psa", "no PSA connection named 'x'"),
    ("tenants[0] (Fabrikam): x is mapped twice in one company", "tenants[0] (Fabrikam)",
     "x is mapped twice in one company"),
    ("price: mode 'custom' needs a non-negative 'amount'", "price", "mode 'custom' needs a non-negative 'amount'"),
    ("(document): the document must be a mapping", "", "the document must be a mapping"),
    ("the document must be a mapping", "", "the document must be a mapping"),
])
def test_problems_are_split_into_field_and_message(problem: str, field: str, message: str) -> None:
    assert locate(problem) == (field, message)


def test_problems_inside_one_entry_are_named_relative_to_it() -> None:
    problems = ["billingProfiles[2].price.amount: bad", "billingProfiles[2]: needs x", "billingProfiles[20].psa: y",
                "tenants[0] (A).companies[0].licences[0].profile: profile 'p' bills through 'z'"]
    assert rebase(problems, ["billingProfiles[2]"]) == [
        "price.amount: bad", "body: needs x", "billingProfiles[20].psa: y",
        "tenants[0] (A).companies[0].licences[0].profile: profile 'p' bills through 'z'"]
    assert rebase(["tenants[1] (Contoso).companies[0].psa: no"], ["tenants[1]", "tenants[1] (Contoso)"]) == [
        "companies[0].psa: no"]


@pytest.mark.parametrize(("if_match", "query", "expected"), [
    ('"v00000003-abcd1234"', None, "v00000003-abcd1234"),
    ('W/"v00000003-abcd1234"', None, "v00000003-abcd1234"),
    ("v00000003-abcd1234", "v1", "v00000003-abcd1234"),
    (None, "v00000002-ffff0000", "v00000002-ffff0000"),
    ("*", None, "*"),
    ("", " ", None),
    (None, None, None),
])
def test_the_version_edited_comes_from_if_match_or_the_query(if_match: str | None, query: str | None,
                                                            expected: str | None) -> None:
    assert expected_version(if_match, query) == expected


def test_what_uses_a_profile_or_a_shared_custom_licence() -> None:
    config = parse_config({
        "psaConnections": [CONNECTION],
        "billingProfiles": [{"name": "bp", "psa": "cw", "productId": "1"}],
        "customLicences": [{"name": "backup", "kind": "mailboxes", "mailboxType": "both"}],
        "tenants": [
            {"tenantId": T1, "name": "Fabrikam", "companies": [{"psa": "cw", "companyId": "1", "licences": [
                {"skuId": SPB, "agreementId": "1", "profile": "bp"},
                {"custom": "backup", "agreementId": "1", "lineId": "9"}]}]},
            {"tenantId": "aaaaaaaa-0000-4000-8000-000000000002", "name": "Contoso",
             "customLicences": [{"name": "backup", "kind": "mailboxes", "mailboxType": "user"}],
             "companies": [{"psa": "cw", "companyId": "2", "licences": [
                 {"custom": "backup", "agreementId": "2", "profile": "bp"}]}]}],
    })
    assert users_of(config, PROFILES, "bp") == [
        f"tenants[0] (Fabrikam).companies[0].licences[0] (sku:{SPB})",
        "tenants[1] (Contoso).companies[0].licences[0] (custom:backup)"]
    assert users_of(config, CUSTOM_LICENCES, "backup") == [
        "tenants[0] (Fabrikam).companies[0].licences[1] (custom:backup)"], "Contoso uses its own definition"
    assert users_of(config, TENANTS, T1) == []
    assert tenant_summary(config.tenants[0]) == {
        "tenantId": T1, "name": "Fabrikam", "enabled": True,
        "companies": [{"psa": "cw", "companyId": "1", "name": None, "licences": 2}]}


def test_tenant_ids_in_urls_must_be_guids_and_are_lower_cased() -> None:
    assert TENANTS.ident(T1.upper()) == T1
    with pytest.raises(RequestValidationError) as raised:
        TENANTS.ident("fabrikam")
    assert raised.value.field == "tenantId"
    assert PROFILES.ident("Any Name") == "Any Name", "profile names are checked with the document"


@pytest.mark.parametrize(("text", "yaml_text", "message"), [
    (b"", False, "is required"),
    (b"{nope", False, "not valid JSON"),
    (b"a: [1,\n", True, "not valid YAML at line"),
    (b"\xff\xfe", False, "not UTF-8"),
])
def test_unreadable_bodies_are_400_on_the_body(text: bytes, yaml_text: bool, message: str) -> None:
    with pytest.raises(RequestValidationError) as raised:
        load_document(text, yaml_text=yaml_text)
    assert raised.value.field == "body" and message in raised.value.message


def test_bodies_are_json_or_yaml() -> None:
    assert load_document(b'{"a": [1]}', yaml_text=False) == {"a": [1]}
    assert load_document("a:\n  - 1\n", yaml_text=True) == {"a": [1]}
