"""Onboarding's pure parts: matching GDAP tenants to PSA companies, parsing the reviewed rows,
and adding the confirmed tenants to the configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import yaml

from shared.config.schema import SeatSyncConfig, UserFilter, parse_config
from shared.domain.model import CustomerTenant, DirectoryUser, PsaCompany, PsaContact, TenantSnapshot
from shared.errors import ConfigError, RequestValidationError
from shared.services.onboarding import (
    AcceptHighConfidence,
    Decision,
    apply_onboarding,
    decisions_from,
    host_of,
    is_free_mail,
    level_of,
    normalise_name,
    overlap_problems,
    parse_rows,
    registrable,
    review_document,
    suggest,
)

T1 = "aaaaaaaa-0000-4000-8000-000000000001"
T2 = "aaaaaaaa-0000-4000-8000-000000000002"
T3 = "aaaaaaaa-0000-4000-8000-000000000003"
CONNECTION = {"name": "cw", "type": "connectwise", "url": "https://cw.example.com/v4_6_release/apis/3.0",
              "companyId": "msp", "publicKey": {"setting": "A"}, "privateKey": {"setting": "B"},
              "clientId": "12345678-1234-1234-1234-123456789012"}
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"


def company(company_id: str, name: str, website: str | None = None, identifier: str | None = None,
            deleted: bool = False, psa: str = "cw") -> PsaCompany:
    return PsaCompany(psa=psa, company_id=company_id, identifier=identifier or name.replace(" ", "")[:25], name=name,
                      website=website, deleted=deleted)


def contact(company_id: str, *emails: str) -> PsaContact:
    return PsaContact(psa="cw", contact_id=f"{company_id}-{emails[0]}", company_id=company_id, first_name="A",
                      emails=emails)


def tenant(name: str, *domains: str, tenant_id: str = T1) -> CustomerTenant:
    return CustomerTenant(tenant_id=tenant_id, display_name=name, default_domain=domains[0] if domains else None,
                          domains=tuple(domains))


@pytest.mark.parametrize(("raw", "normalised"), [
    ("Fabrikam Ltd", "fabrikam"),
    ("FABRIKAM LIMITED", "fabrikam"),
    ("Fabrikam, Ltd.", "fabrikam"),
    ("Adatum Corp.", "adatum"),
    ("Adatum Corporation", "adatum"),
    ("Contoso Inc", "contoso"),
    ("Contoso, L.L.C.", "contoso"),
    ("Wingtip Toys Pty Ltd", "wingtip toys"),
    ("Müller GmbH", "muller"),
    ("Smith & Co", "smith"),
    ("Smith and Co.", "smith"),
    ("Barker & Sons PLC", "barker and sons"),
    ("The Phone Company", "phone"),
    ("Alpine Ski-House", "alpine ski house"),
    ("O'Neil's Bakery", "oneils bakery"),
    ("Limited", "limited"),  # a name of suffixes only is kept as it is
])
def test_names_are_normalised(raw: str, normalised: str) -> None:
    assert normalise_name(raw) == normalised


@pytest.mark.parametrize(("website", "host"), [
    ("https://www.fabrikam.com/about", "fabrikam.com"),
    ("fabrikam.com", "fabrikam.com"),
    ("WWW.Fabrikam.co.uk.", "fabrikam.co.uk"),
    ("http://shop.fabrikam.com:8080", "shop.fabrikam.com"),
    ("", None),
    ("not a website", None),
    (None, None),
])
def test_website_hosts(website: str | None, host: str | None) -> None:
    assert host_of(website) == host


@pytest.mark.parametrize(("domain", "free"), [
    ("gmail.com", True), ("Outlook.com", True), ("hotmail.co.uk", True), ("yahoo.fr", True), ("gmx.de", True),
    ("fabrikam.com", False), ("live.fabrikam.com", False), ("outlook.fabrikam.co.uk", False),
])
def test_free_mail_domains(domain: str, free: bool) -> None:
    assert is_free_mail(domain) is free


@dataclass
class Case:
    tenant: CustomerTenant
    companies: list[PsaCompany]
    expected: str | None  # the suggested company id
    level: str
    reason: str
    contacts: list[PsaContact] = field(default_factory=list)
    configured: bool = False


CASES = {
    "exact name": Case(tenant("Contoso Pharma"), [company("20", "Contoso Pharma"), company("21", "Tailspin Toys")],
                       "20", "high", "same name"),
    "legal suffix": Case(tenant("Fabrikam Ltd"), [company("19", "Fabrikam Limited")], "19", "high",
                         "legal suffixes are ignored ('Fabrikam Ltd' ~ 'Fabrikam Limited')"),
    "corporation": Case(tenant("Adatum Corporation"), [company("24", "Adatum Corp.")], "24", "high",
                        "legal suffixes"),
    "gmbh": Case(tenant("Müller GmbH"), [company("30", "Muller")], "30", "high", "legal suffixes"),
    "and co": Case(tenant("Smith & Co"), [company("31", "Smith")], "31", "high", "legal suffixes"),
    "punctuation": Case(tenant("Alpine Ski-House, Inc."), [company("32", "Alpine Ski House")], "32", "high",
                        "punctuation"),
    "spaces": Case(tenant("ContosoPharma"), [company("20", "Contoso Pharma")], "20", "medium",
                   "same name apart from spaces"),
    "identifier": Case(tenant("CPH"), [company("20", "Contoso Pharmaceuticals", identifier="CPH")], "20", "medium",
                       "matches the company identifier 'CPH'"),
    "website": Case(tenant("PS Ventures", "proseware.com", "proseware.onmicrosoft.com"),
                    [company("40", "Proseware", website="https://www.proseware.com/"),
                     company("41", "Lucerne Publishing")], "40", "high", "website proseware.com is a domain"),
    "website subdomain": Case(tenant("PS Ventures", "uk.proseware.com"),
                              [company("40", "Proseware", website="proseware.com")], "40", "high",
                              "the tenant's domain uk.proseware.com is under the website proseware.com"),
    "name and website": Case(tenant("Proseware Ltd", "proseware.com"),
                             [company("40", "Proseware", website="proseware.com")], "40", "high",
                             "same name once case"),
    "contacts": Case(tenant("LW", "litware.com"), [company("50", "Litware Group"), company("51", "Other")], "50",
                     "high", "3 contacts' email addresses are at litware.com",
                     contacts=[contact("50", "a@litware.com"), contact("50", "b@LITWARE.com"),
                               contact("50", "c@litware.com", "c@gmail.com"), contact("51", "x@other.example")]),
    "one contact": Case(tenant("LW", "litware.com"), [company("50", "Litware Group")], "50", "medium",
                        "1 contact's email address is at litware.com", contacts=[contact("50", "a@litware.com")]),
    "free mail ignored": Case(tenant("Odd Tenant", "gmail.com"), [company("60", "Someone Else")], None, "none",
                              "no PSA company", contacts=[contact("60", "a@gmail.com"), contact("60", "b@gmail.com")]),
    "shared domain ignored": Case(
        tenant("Northwind", "msp.example"), [company(str(i), f"Company {i}") for i in range(70, 75)], None, "none",
        "no PSA company", contacts=[contact(str(i), "tech@msp.example") for i in range(70, 75)]),
    "deleted company ignored": Case(tenant("Fourth Coffee"), [company("80", "Fourth Coffee", deleted=True)], None,
                                    "none", "no PSA company"),
    "two close candidates": Case(tenant("Fabrikam"), [company("19", "Fabrikam Ltd"), company("25", "Fabrikam Inc")],
                                 "25", "medium", "but Fabrikam Ltd (cw 19) matches almost as well"),
    "name begins with": Case(tenant("Litware Inc"), [company("25", "Litware Inc - Sales")], "25", "low",
                             "the company's name begins with the tenant's ('Litware Inc' ~ 'Litware Inc - Sales')"),
    "similar name": Case(tenant("Tailspin Toys"), [company("21", "Tailspin Toy")], "21", "medium",
                         "similar name ('Tailspin Toys' ~ 'Tailspin Toy'"),
    "loosely similar name": Case(tenant("Northwind Traders"), [company("22", "Northwood Traders")], "22", "low",
                                 "similar name"),
    "no match": Case(tenant("Wide World Importers", "wideworld.example"), [company("90", "Fourth Coffee")], None,
                     "none", "no PSA company has a similar name or shares a domain with the tenant"),
    "already configured": Case(tenant("Contoso Pharma"), [company("20", "Contoso Pharma")], "20", "high",
                               "already configured, billing to cw 20", configured=True),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_matching(case: Case) -> None:
    config = None
    if case.configured:
        config = parse_config({"psaConnections": [CONNECTION], "tenants": [
            {"tenantId": case.tenant.tenant_id, "name": case.tenant.display_name,
             "companies": [{"psa": "cw", "companyId": case.expected}]}]})
    [suggestion] = suggest([case.tenant], [case.tenant.tenant_id] if case.configured else [], case.companies,
                           case.contacts, config=config)
    assert (suggestion.best.company_id if suggestion.best else None) == case.expected
    assert suggestion.level == case.level, suggestion.reason
    assert case.reason in suggestion.reason
    assert suggestion.configured is case.configured
    assert suggestion.level == level_of(suggestion.confidence)


def test_two_close_candidates_lower_the_confidence_below_either_score() -> None:
    [alone] = suggest([tenant("Fabrikam")], [], [company("19", "Fabrikam Ltd")], [])
    [both] = suggest([tenant("Fabrikam")], [], [company("19", "Fabrikam Ltd"), company("25", "Fabrikam Inc")], [])
    assert alone.confidence == 0.9 and alone.level == "high"
    assert both.confidence == pytest.approx(0.7)
    assert both.best is not None and both.best.company_id == "25", "a tie goes to the first name alphabetically"
    assert [c.company_id for c in both.alternatives] == ["19"]
    assert both.alternatives[0].score == 0.9


def test_evidence_of_different_kinds_adds_up() -> None:
    companies = [company("40", "Proseware", website="proseware.com")]
    contacts = [contact("40", "a@proseware.com")]
    [name_only] = suggest([tenant("Proseware")], [], companies, [])
    [everything] = suggest([tenant("Proseware", "proseware.com")], [], companies, contacts)
    assert name_only.confidence == 0.95
    assert everything.confidence == round(1 - 0.05 * 0.1 * 0.25, 3)
    assert everything.best is not None and len(everything.best.reasons) == 3


def test_a_configured_tenant_billing_elsewhere_is_flagged() -> None:
    config = parse_config({"psaConnections": [CONNECTION], "tenants": [
        {"tenantId": T1, "name": "Contoso Pharma", "companies": [{"psa": "cw", "companyId": "99"}]}]})
    [suggestion] = suggest([tenant("Contoso Pharma")], [], [company("20", "Contoso Pharma")], [], config=config)
    assert suggestion.configured
    assert "billing to cw 99: not the best match, check it" in suggestion.reason
    assert [(c.psa, c.company_id) for c in suggestion.current] == [("cw", "99")]


def test_a_company_already_billed_for_another_tenant_says_so() -> None:
    config = parse_config({"psaConnections": [CONNECTION], "tenants": [
        {"tenantId": T2, "name": "Fabrikam EU", "companies": [{"psa": "cw", "companyId": "19"}]}]})
    found = suggest([tenant("Fabrikam"), tenant("Fabrikam EU", tenant_id=T2)], [], [company("19", "Fabrikam")], [],
                    config=config)
    new = next(s for s in found if s.tenant_id == T1)
    assert "already billed for Fabrikam EU" in new.reason


def test_a_tenant_whose_domains_could_not_be_read_is_listed_with_the_reason() -> None:
    [suggestion] = suggest([tenant("Tailspin Toys")], [], [company("21", "Tailspin Toys")], [],
                           domains_notes={T1: "AADSTS700016: the app cannot sign in to the tenant"})
    assert suggestion.best is not None and suggestion.best.company_id == "21"
    assert "matched by name only: AADSTS700016" in suggestion.reason
    assert suggestion.to_json()["domainsRead"] is False


def test_unconfigured_tenants_come_first_then_by_name() -> None:
    config = parse_config({"psaConnections": [CONNECTION], "tenants": [{"tenantId": T1, "name": "Alpha"}]})
    found = suggest([tenant("Alpha"), tenant("zulu", tenant_id=T2), tenant("Bravo", tenant_id=T3)], [], [], [],
                    config=config)
    assert [(s.tenant_name, s.configured) for s in found] == [("Bravo", False), ("zulu", False), ("Alpha", True)]


def test_a_thousand_tenants_each_find_their_own_company() -> None:
    names = [f"Customer {i:04d} {word}" for i, word in enumerate(["Traders", "Holdings", "Bakery", "Logistics"] * 125)]
    tenants = [CustomerTenant(f"aaaaaaaa-0000-4000-8000-{i:012d}", f"{name} Ltd") for i, name in enumerate(names)]
    companies = [company(str(1000 + i), f"{name} Limited") for i, name in enumerate(names)]
    found = suggest(tenants, [], companies, [])
    by_tenant = {s.tenant_id: s for s in found}
    for i in range(len(names)):
        suggestion = by_tenant[f"aaaaaaaa-0000-4000-8000-{i:012d}"]
        assert suggestion.best is not None and suggestion.best.company_id == str(1000 + i)


# ------------------------------------------------------------------------ rows


def test_rows_are_parsed_from_a_list_or_a_review_file() -> None:
    rows = parse_rows([{"tenantId": T1.upper(), "companyId": 24},
                       {"action": "skip", "tenantId": "whatever"},
                       {"tenantId": T2, "psa": "cw", "companyId": "25", "name": " Adatum ", "confidence": 0.9,
                        "reason": "shown in the review file", "userFilter": {"department": ["Sales"]}}], ["cw"])
    assert rows == [Decision(T1, "cw", "24", row=0),
                    Decision(T2, "cw", "25", name="Adatum", user_filter=UserFilter(department=("Sales",)), row=2)]
    listed = parse_rows({"rows": [{"tenantId": T1, "psa": "cw", "companyId": "1"}]}, ["cw", "at"])
    assert isinstance(listed, list) and listed[0].company_id == "1"
    assert isinstance(parse_rows({"accept": "all-high-confidence"}, ["cw"]), AcceptHighConfidence)


def test_every_bad_row_is_named() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_rows([{"tenantId": "nope", "companyId": "1", "psa": "cw"},
                    {"tenantId": T1, "psa": "cw"},
                    {"tenantId": T1, "companyId": "1", "compnyId": "2"},
                    {"tenantId": T1, "companyId": "1", "userFilter": {"dept": ["x"]}},
                    {"tenantId": T1, "companyId": "1", "action": "maybe"},
                    "row"], ["cw", "at"])
    problems = raised.value.problems
    assert "rows[0].tenantId: 'nope' is not a tenant id (a GUID)" in problems
    assert any(p.startswith("rows[1].companyId: choose the PSA company") for p in problems)
    assert any(p.startswith("rows[2].compnyId: unknown field") for p in problems)
    assert any(p.startswith("rows[2].psa: name the PSA connection (cw, at)") for p in problems)
    assert any(p.startswith("rows[3].userFilter.dept: unknown field") for p in problems)
    assert "rows[4].action: must be 'accept' or 'skip', got 'maybe'" in problems
    assert "rows[5]: must be an object with tenantId, psa and companyId" in problems


@pytest.mark.parametrize("body", [{"accept": "everything"}, {"rows": "x"}, "text", {"rowz": []}])
def test_a_malformed_body_names_the_field(body: object) -> None:
    with pytest.raises(RequestValidationError):
        parse_rows(body, ["cw"])


# ------------------------------------------------------------------------ applying


def base_config(**tenant: object) -> SeatSyncConfig:
    tenants = [tenant] if tenant else []
    return parse_config({"psaConnections": [CONNECTION],
                         "billingProfiles": [{"name": "m365-bp", "psa": "cw", "productId": "1"}],
                         "tenants": tenants})


GDAP = [tenant("Adatum Corporation"), tenant("Fabrikam Ltd", tenant_id=T2), tenant("Tailspin Toys", tenant_id=T3)]
COMPANIES = [company("24", "Adatum Corporation"), company("19", "Fabrikam Ltd"), company("21", "Tailspin Toys"),
             company("26", "Fabrikam Sales"), company("77", "Gone", deleted=True)]


def test_confirmed_rows_add_tenants_with_their_companies() -> None:
    config = apply_onboarding(base_config(), [Decision(T1, "cw", "24"), Decision(T2, "cw", "21", name="Fabrikam")],
                              GDAP, COMPANIES)
    adatum, fabrikam = config.tenants
    assert (adatum.tenant_id, adatum.name, adatum.enabled) == (T1, "Adatum Corporation", True)
    assert [(c.psa, c.company_id, c.name) for c in adatum.companies] == [("cw", "24", "Adatum Corporation")]
    assert (fabrikam.name, fabrikam.companies[0].company_id, fabrikam.companies[0].name) == (
        "Fabrikam", "21", "Tailspin Toys")
    assert config.billing_profiles == base_config().billing_profiles


def test_a_tenant_split_between_companies_needs_a_filter_on_each() -> None:
    sales, others = UserFilter(department=("Sales",)), UserFilter(department=("Finance", "Operations"))
    config = apply_onboarding(base_config(), [Decision(T2, "cw", "19", user_filter=others, row=0),
                                              Decision(T2, "cw", "26", user_filter=sales, row=1)], GDAP, COMPANIES)
    assert [c.user_filter for c in config.tenants[0].companies] == [others, sales]
    with pytest.raises(ConfigError) as raised:
        apply_onboarding(base_config(), [Decision(T2, "cw", "19", row=0), Decision(T2, "cw", "26", user_filter=sales,
                                                                                   row=1)], GDAP, COMPANIES)
    assert raised.value.problems == [
        "rows[0].userFilter: the tenant is split between 2 companies, so each needs a user filter (or is its one "
        "catch-all company: catchAll: true)"]


def test_a_split_tenant_can_have_one_catch_all_row() -> None:
    sales = UserFilter(department=("Sales",))
    config = apply_onboarding(base_config(), [Decision(T2, "cw", "19", catch_all=True, row=0),
                                              Decision(T2, "cw", "26", user_filter=sales, row=1)], GDAP, COMPANIES)
    assert [(c.catch_all, c.user_filter) for c in config.tenants[0].companies] == [(True, None), (False, sales)]
    with pytest.raises(ConfigError) as raised:
        apply_onboarding(base_config(), [Decision(T2, "cw", "19", catch_all=True, row=0),
                                         Decision(T2, "cw", "26", catch_all=True, row=1)], GDAP, COMPANIES)
    assert "rows[1].catchAll: rows[0] is already the tenant's catch-all company" in raised.value.problems
    with pytest.raises(ConfigError) as bad:
        parse_rows([{"tenantId": T2, "psa": "cw", "companyId": "19", "catchAll": True,
                     "userFilter": {"city": ["Leeds"]}}], ["cw"])
    assert bad.value.problems == ["rows[0].catchAll: a catch-all company bills the users no other row's filter "
                                  "matches: give it no userFilter"]


def test_invalid_rows_are_refused_together_and_nothing_is_added() -> None:
    configured = base_config(tenantId=T3, name="Tailspin Toys", companies=[{"psa": "cw", "companyId": "21"}])
    with pytest.raises(ConfigError) as raised:
        apply_onboarding(configured, [
            Decision(T1, "cw", "24", row=0),  # fine on its own
            Decision("bbbbbbbb-0000-4000-8000-000000000009", "cw", "24", row=1),
            Decision(T2, "cw", "99", row=2),
            Decision(T2, "at", "19", row=3),
            Decision(T3, "cw", "21", row=4),
            Decision(T1, "cw", "77", row=5),
            Decision(T1, "cw", "24", row=6),
        ], GDAP, COMPANIES)
    problems = raised.value.problems
    assert "rows[1].tenantId: bbbbbbbb-0000-4000-8000-000000000009 is not a customer with GDAP access " \
           "(not in delegatedAdminCustomers); to add a tenant outside GDAP, a Global Administrator of the customer " \
           "grants the SeatSync app admin consent at https://login.microsoftonline.com/bbbbbbbb-0000-4000-8000-" \
           "000000000009/adminconsent?client_id=<GRAPH_CLIENT_ID>, and the row says access: consent" in problems
    assert "rows[2].companyId: no company 99 in PSA connection 'cw'" in problems
    assert "rows[3].psa: no PSA connection named 'at'" in problems
    assert any(p.startswith("rows[4].tenantId: Tailspin Toys") and "already configured" in p for p in problems)
    assert "rows[5].companyId: no company 77 in PSA connection 'cw'" in problems
    assert "rows[6].companyId: company 24 is already given for this tenant by rows[0]" in problems
    assert ("rows[0].userFilter: the tenant is split between 3 companies, so each needs a user filter (or is its "
            "one catch-all company: catchAll: true)") in problems


def test_replacing_keeps_the_mappings_of_a_kept_company_and_refuses_to_drop_mappings() -> None:
    mapped = {"psa": "cw", "companyId": "19", "licences": [{"skuId": SPB, "agreementId": "100", "profile": "m365-bp"}]}
    configured = base_config(tenantId=T2, name="Fabrikam Ltd", enabled=False, companies=[mapped])
    sales = UserFilter(department=("Sales",))
    others = UserFilter(department=("Finance",))
    config = apply_onboarding(configured, [Decision(T2, "cw", "19", user_filter=others, replace=True, row=0),
                                           Decision(T2, "cw", "26", user_filter=sales, replace=True, row=1)],
                              GDAP, COMPANIES)
    [fabrikam] = config.tenants
    assert fabrikam.enabled is False, "the tenant's own settings are kept"
    assert len(fabrikam.companies[0].licences) == 1 and fabrikam.companies[0].user_filter == others
    with pytest.raises(ConfigError, match=r"rows\[0\]\.replace: Fabrikam Ltd bills 1 licence\(s\) through "
                                          r"companies\[0\] \(cw 19\), which the rows drop"):
        apply_onboarding(configured, [Decision(T2, "cw", "26", replace=True)], GDAP, COMPANIES)


def test_an_unreadable_psa_is_named_rather_than_the_company_called_unknown() -> None:
    with pytest.raises(ConfigError, match="PSA connection 'cw' could not be read"):
        apply_onboarding(base_config(), [Decision(T1, "cw", "24")], GDAP, [], unreadable={"cw": "HTTP 500"})


def test_the_review_file_round_trips_to_the_high_confidence_decisions() -> None:
    found = suggest([*GDAP, tenant("Fabrikam", tenant_id="aaaaaaaa-0000-4000-8000-000000000004")], [],
                    [*COMPANIES, company("25", "Fabrikam Inc")], [])
    assert next(s for s in found if s.tenant_name == "Fabrikam").level == "medium", "two candidates: for a human"
    text = yaml.safe_dump(review_document(found, ["cw"]), sort_keys=False)
    rows = parse_rows(yaml.safe_load(text), ["cw"])
    assert isinstance(rows, list)
    assert [(d.tenant_id, d.company_id) for d in rows] == [(d.tenant_id, d.company_id) for d in decisions_from(found)]
    assert {d.company_id for d in rows} == {"24", "21"}
    fabrikam_ltd = next(s for s in found if s.tenant_name == "Fabrikam Ltd")
    assert fabrikam_ltd.best is not None and fabrikam_ltd.best.company_id == "19", "the very same name comes first"
    assert fabrikam_ltd.level == "medium", "but Fabrikam Inc is close: left for a human"


def test_overlapping_filters_name_the_users_and_companies() -> None:
    config = parse_config({"psaConnections": [CONNECTION], "tenants": [{"tenantId": T1, "name": "Fabrikam",
                                                                        "companies": [
        {"psa": "cw", "companyId": "19", "name": "Fabrikam HQ", "userFilter": {"city": ["Leeds"]}},
        {"psa": "cw", "companyId": "26", "userFilter": {"department": ["Sales"]}},
        {"psa": "cw", "companyId": "27", "userFilter": {"department": ["Finance"]}}]}]})
    users = tuple(DirectoryUser(id=str(i), user_principal_name=f"{n}@fabrikam.example", display_name=n, city=city,
                                department=dept)
                  for i, (n, city, dept) in enumerate([("ana", "Leeds", "Sales"), ("ben", "Leeds", "Finance"),
                                                       ("cy", "York", "Sales"), ("dee", "Leeds", "Sales")]))
    snapshot = TenantSnapshot(T1, "r1", datetime(2026, 11, 25, tzinfo=UTC), (), users)
    assert overlap_problems(config.tenants[0], snapshot) == [
        "companies[1].userFilter: 2 user(s) match the filters of companies[0] (cw 19, Fabrikam HQ) and "
        "companies[1] (cw 26) and would be billed twice: ana@fabrikam.example, dee@fabrikam.example",
        "companies[2].userFilter: 1 user(s) match the filters of companies[0] (cw 19, Fabrikam HQ) and "
        "companies[2] (cw 27) and would be billed twice: ben@fabrikam.example",
    ]


@pytest.mark.parametrize(("domain", "one_organisation"), [
    ("fabrikam.com", True), ("fabrikam.co.uk", True), ("sales.fabrikam.co.uk", True), ("fabrikam.github.io", True),
    ("trust.nhs.uk", True), ("sep.gob.mx", True),
    ("co.uk", False), ("gob.mx", False), ("nhs.uk", False), ("github.io", False), ("gov.uk", False),
    ("com", False), ("onmicrosoft.com", False), ("sharepoint.com", False),
])
def test_registrable_domains_follow_the_public_suffix_list(domain: str, one_organisation: bool) -> None:
    assert registrable(domain) is one_organisation
