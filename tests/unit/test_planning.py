"""The change plan: only differing lines are written, problems are reported, ids are stable."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from shared.config.schema import CompanyLink, LicenceLink, TenantConfig
from shared.domain.model import BilledLine, ChangeKind, DirectoryUser, SkuCount, TenantSnapshot
from shared.domain.planning import change_id, plan_tenant, referenced_agreements, referenced_lines

TENANT = "aaaaaaaa-0000-0000-0000-000000000001"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
TODAY = date(2026, 11, 25)


def snapshot(*skus: tuple[str, int, int]) -> TenantSnapshot:
    return TenantSnapshot(
        tenant_id=TENANT, run_id="20261125T020000Z-00000000",
        collected_at=datetime(2026, 11, 25, 2, tzinfo=UTC),
        skus=tuple(SkuCount(sku_id=s, sku_part_number="X", purchased=p, consumed=c) for s, p, c in skus),
        users=(DirectoryUser(id="u1", user_principal_name="a@x.com", display_name="A", sku_ids=(SPB,)),),
    )


def tenant(*licences: LicenceLink, psa: str = "cw") -> TenantConfig:
    return TenantConfig(tenant_id=TENANT, name="Fabrikam",
                        companies=(CompanyLink(psa=psa, company_id="19", licences=licences),))


def line(line_id: str, quantity: str, agreement: str = "100", cancelled: date | None = None) -> BilledLine:
    return BilledLine(psa="cw", line_id=line_id, agreement_id=agreement, company_id="19", product_id="1",
                      product_identifier="M365", quantity=Decimal(quantity), cancelled_date=cancelled)


def test_a_differing_quantity_plans_one_set_quantity_change() -> None:
    plan = plan_tenant(tenant(LicenceLink(sku_id=SPB, agreement_id="100", line_id="500")),
                       snapshot((SPB, 25, 22)), {("cw", "500"): line("500", "20")}, TODAY)
    assert len(plan.changes) == 1
    change = plan.changes[0]
    assert (change.kind, change.old_quantity, change.new_quantity) == (ChangeKind.SET_QUANTITY, 20, 22)
    assert (change.tenant_id, change.agreement_id, change.line_id, change.sku_id) == (TENANT, "100", "500", SPB)
    assert change.change_id == change_id(TENANT, SPB, "100", "500", ChangeKind.SET_QUANTITY, 22, TODAY)
    assert plan.problems == ()


def test_an_unchanged_quantity_plans_nothing() -> None:
    plan = plan_tenant(tenant(LicenceLink(sku_id=SPB, agreement_id="100", line_id="500")),
                       snapshot((SPB, 25, 22)), {("cw", "500"): line("500", "22.0")}, TODAY)
    assert plan.changes == ()
    assert [d.quantity for d in plan.unchanged] == [22]


@pytest.mark.parametrize(("licence", "lines", "snap", "expected"), [
    (LicenceLink(sku_id=E3, agreement_id="100", line_id="500"), {("cw", "500"): line("500", "5")},
     snapshot((SPB, 1, 1)), "no longer in the tenant"),
    (LicenceLink(sku_id=SPB, agreement_id="100"), {}, snapshot((SPB, 1, 1)), "has no PSA line"),
    (LicenceLink(sku_id=SPB, agreement_id="100", line_id="501"), {("cw", "500"): line("500", "5")},
     snapshot((SPB, 1, 1)), "was not found"),
    (LicenceLink(sku_id=SPB, agreement_id="100", line_id="500"), {("cw", "500"): line("500", "5", "200")},
     snapshot((SPB, 1, 1)), "belongs to agreement 200"),
    (LicenceLink(sku_id=SPB, agreement_id="100", line_id="500"),
     {("cw", "500"): line("500", "5", cancelled=date(2026, 1, 1))}, snapshot((SPB, 1, 1)), "was cancelled"),
], ids=["licence-gone", "no-line", "line-missing", "other-agreement", "cancelled"])
def test_problems_are_reported_and_change_nothing(licence: LicenceLink, lines: dict, snap: TenantSnapshot,
                                                  expected: str) -> None:
    plan = plan_tenant(tenant(licence), snap, lines, TODAY)
    assert plan.changes == ()
    assert len(plan.problems) == 1
    assert expected in plan.problems[0].message
    assert plan.problems[0].sku_id == licence.sku_id


def test_a_licence_gone_from_the_tenant_is_never_zeroed_silently() -> None:
    plan = plan_tenant(tenant(LicenceLink(sku_id=E3, agreement_id="100", line_id="500")),
                       snapshot(), {("cw", "500"): line("500", "12")}, TODAY)
    assert plan.changes == ()
    assert "left unchanged" in plan.problems[0].message


def test_decrease_is_planned_when_the_tenant_was_read_completely() -> None:
    plan = plan_tenant(tenant(LicenceLink(sku_id=SPB, agreement_id="100", line_id="500")),
                       snapshot((SPB, 10, 8)), {("cw", "500"): line("500", "10")}, TODAY)
    assert [(c.old_quantity, c.new_quantity) for c in plan.changes] == [(10, 8)]


def test_change_ids_are_stable_and_specific() -> None:
    base = change_id(TENANT, SPB, "100", "500", ChangeKind.SET_QUANTITY, 22, TODAY)
    assert base == change_id(TENANT.upper(), SPB.upper(), "100", "500", ChangeKind.SET_QUANTITY, 22, TODAY)
    variants = {
        change_id(TENANT, SPB, "100", "500", ChangeKind.SET_QUANTITY, 23, TODAY),
        change_id(TENANT, SPB, "100", "500", ChangeKind.SET_QUANTITY, 22, date(2026, 11, 26)),
        change_id(TENANT, SPB, "101", "500", ChangeKind.SET_QUANTITY, 22, TODAY),
        change_id(TENANT, SPB, "100", "501", ChangeKind.SET_QUANTITY, 22, TODAY),
        change_id(TENANT, E3, "100", "500", ChangeKind.SET_QUANTITY, 22, TODAY),
        change_id(TENANT, SPB, "100", "500", ChangeKind.PRORATE, 22, TODAY),
    }
    assert base not in variants
    assert len(variants) == 6


def test_lines_and_agreements_referenced_by_a_tenant() -> None:
    config = tenant(LicenceLink(sku_id=SPB, agreement_id="100", line_id="500"),
                    LicenceLink(sku_id=E3, agreement_id="100", line_id="501"))
    assert referenced_lines(config) == [("cw", "500"), ("cw", "501")]
    assert referenced_agreements(config) == [("cw", "100")]


def test_several_licences_plan_independently() -> None:
    plan = plan_tenant(
        tenant(LicenceLink(sku_id=SPB, agreement_id="100", line_id="500"),
               LicenceLink(sku_id=E3, agreement_id="100", line_id="501")),
        snapshot((SPB, 30, 30), (E3, 5, 4)),
        {("cw", "500"): line("500", "30"), ("cw", "501"): line("501", "5")}, TODAY)
    assert [(c.sku_id, c.new_quantity) for c in plan.changes] == [(E3, 4)]
    assert [d.sku_id for d in plan.unchanged] == [SPB]
