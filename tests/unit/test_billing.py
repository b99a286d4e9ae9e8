"""Billable quantities: count basis, included and minimum quantities, filters, split
subscriptions, custom licences, descriptions, unlinked licences."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from shared.domain.billing import (
    BillableItem,
    billable_items,
    invoice_description,
    overlapping_users,
    unlinked_licences,
)
from shared.domain.problems import ProblemKind
from tests.unit.builders import (
    E3,
    EXO,
    SPB,
    config,
    device,
    licence,
    mailbox,
    member,
    snapshot,
    subscription,
    user,
)


def only_item(cfg: Any, snap: Any) -> BillableItem:
    items, problems = billable_items(cfg, cfg.tenants[0], snap)
    assert problems == []
    assert len(items) == 1
    return items[0]


@pytest.mark.parametrize(("options", "purchased", "consumed", "expected"), [
    ({}, 25, 22, 22),
    ({"countBasis": "purchased"}, 25, 22, 25),
    ({"included": 2}, 10, 10, 8),
    ({"minimum": 5}, 5, 3, 5),
    ({"included": 2, "minimum": 5}, 10, 3, 5),
    ({"included": 2, "minimum": 5}, 10, 10, 8),
    ({"included": 12}, 10, 10, 0),
    ({"included": 12, "minimum": 1}, 10, 10, 1),
    ({"countBasis": "purchased", "included": 5}, 25, 1, 20),
], ids=["assigned", "purchased", "included", "minimum", "included-then-minimum", "included-above-minimum",
        "included-never-negative", "minimum-after-included", "purchased-with-included"])
def test_count_basis_included_and_minimum(options: dict[str, Any], purchased: int, consumed: int,
                                          expected: int) -> None:
    item = only_item(config(licence(**options)), snapshot([(SPB, purchased, consumed)]))
    assert item.quantity == expected


def test_whole_tenant_assigned_count_is_microsofts_consumed_units() -> None:
    item = only_item(config(licence(includeUserNames=True)),
                     snapshot([(SPB, 25, 3)], [user("ana", SPB), user("ben", SPB)]))
    assert item.counted == 3
    assert item.users == ("Ana", "Ben")


def test_a_licence_gone_from_the_tenant_counts_zero_and_keeps_its_minimum() -> None:
    item = only_item(config(licence(minimum=2)), snapshot([(E3, 1, 1)]))
    assert item.missing
    assert item.quantity == 2


SALES = {"psa": "cw", "companyId": "19", "userFilter": {"department": ["Sales"]}}
ENGINEERING = {"psa": "cw", "companyId": "20", "userFilter": {"department": ["engineering "]}}


def two_companies(**extra: Any) -> Any:
    return config(companies=[
        {**SALES, "licences": [licence(includeUserNames=True, **extra)]},
        {**ENGINEERING, "licences": [{**licence(**extra), "agreementId": "200", "lineId": "600"}]},
    ])


def test_filters_split_a_tenant_between_two_companies() -> None:
    cfg = two_companies()
    snap = snapshot([(SPB, 10, 5)], [user("ana", SPB, department="Sales"), user("ben", SPB, department="SALES"),
                                     user("cy", SPB, department="Engineering"), user("di", department="Sales"),
                                     user("ed", SPB)])
    items, problems = billable_items(cfg, cfg.tenants[0], snap)
    assert [(i.company.company_id, i.quantity) for i in items] == [("19", 2), ("20", 1)]
    assert items[0].users == ("Ana", "Ben")
    [unbilled] = problems  # ed holds a seat and has no department: nobody bills it
    assert (unbilled.kind, unbilled.users) == (ProblemKind.USERS_UNMATCHED, ("ed@fabrikam.example",))


def test_filter_fields_are_and_combined_and_values_or_combined() -> None:
    cfg = config(companies=[{"psa": "cw", "companyId": "19",
                             "userFilter": {"department": ["Sales", "Marketing"], "city": ["Leeds"]},
                             "licences": [licence()]}])
    users = [user("a", SPB, department="Sales", city="Leeds"), user("b", SPB, department="Marketing", city="leeds"),
             user("c", SPB, department="Sales", city="York"), user("d", SPB, city="Leeds")]
    items, problems = billable_items(cfg, cfg.tenants[0], snapshot([(SPB, 9, 4)], users))
    assert [i.quantity for i in items] == [2]
    assert [p.users for p in problems] == [("c@fabrikam.example", "d@fabrikam.example")]


def test_a_licence_excluded_from_filtering_counts_the_whole_tenant() -> None:
    cfg = config(companies=[{"psa": "cw", "companyId": "19", "userFilter": {"city": ["Leeds"]},
                             "licences": [licence(ignoreFilter=True)]}])
    assert only_item(cfg, snapshot([(SPB, 9, 4)], [user("a", SPB, city="Leeds")])).quantity == 4


def test_overlapping_filters_name_the_users() -> None:
    cfg = config(companies=[
        {"psa": "cw", "companyId": "19", "userFilter": {"department": ["Sales"]}, "licences": [licence()]},
        {"psa": "cw", "companyId": "20", "userFilter": {"city": ["Leeds"]},
         "licences": [{**licence(), "agreementId": "200", "lineId": "600"}]},
    ])
    snap = snapshot([(SPB, 9, 3)], [user("ana", SPB, department="Sales", city="Leeds"),
                                    user("ben", SPB, department="Sales", city="York")])
    overlaps = overlapping_users(cfg.tenants[0], snap)
    assert [(u.user_principal_name, hits) for u, hits in overlaps] == [("ana@fabrikam.example", [0, 1])]


SUB_ANNUAL = "11111111-aaaa-0000-0000-000000000001"
SUB_MONTHLY = "11111111-aaaa-0000-0000-000000000002"


@pytest.mark.parametrize(("basis", "assigned", "expected"), [
    ("assigned", 25, [20, 5]),
    ("assigned", 12, [12, 0]),
    ("assigned", 35, [20, 15]),
    ("purchased", 3, [20, 10]),
], ids=["fills-annual-first", "all-in-annual", "excess-to-last", "purchased-per-subscription"])
def test_split_subscriptions_bill_separately(basis: str, assigned: int, expected: list[int]) -> None:
    cfg = config(
        {"skuId": SPB, "subscriptionIds": [SUB_ANNUAL], "agreementId": "100", "lineId": "500", "countBasis": basis},
        {"skuId": SPB, "subscriptionIds": [SUB_MONTHLY], "agreementId": "100", "lineId": "501", "countBasis": basis},
    )
    snap = snapshot([(SPB, 30, assigned)], subscriptions=(
        subscription(SUB_ANNUAL, SPB, 20, date(2026, 1, 10), date(2027, 1, 10)),
        subscription(SUB_MONTHLY, SPB, 10, date(2026, 3, 5), date(2026, 12, 5)),
    ))
    items, problems = billable_items(cfg, cfg.tenants[0], snap)
    assert problems == []
    assert [i.quantity for i in items] == expected


def test_an_unknown_subscription_is_a_problem() -> None:
    cfg = config({"skuId": SPB, "subscriptionIds": [SUB_ANNUAL], "agreementId": "100", "lineId": "500"})
    items, problems = billable_items(cfg, cfg.tenants[0], snapshot([(SPB, 30, 3)]))
    assert items == []
    assert "was not found" in problems[0].message


def custom(definition: dict[str, Any], **options: Any) -> Any:
    return config({"custom": definition["name"], "agreementId": "100", "lineId": "500", **options},
                  customLicences_tenant=[definition])


PEOPLE = [user("ana", SPB, department="Sales"), user("ben", EXO), user("cy"),
          user("guest", SPB, user_type="Guest"), user("off", SPB, account_enabled=False),
          user("ext", E3, department="Sales")]


@pytest.mark.parametrize(("definition", "expected"), [
    ({"name": "sum", "kind": "licences", "skuIds": [SPB, EXO]}, 7 + 2),
    ({"name": "copy", "kind": "licences", "skuIds": [EXO]}, 2),
    ({"name": "all", "kind": "entra-users", "scope": "all"}, 4),
    ({"name": "licensed", "kind": "entra-users", "scope": "licensed"}, 3),
    ({"name": "domain", "kind": "entra-users", "scope": "domain", "domain": "FABRIKAM.example"}, 4),
    ({"name": "other-domain", "kind": "entra-users", "scope": "domain", "domain": "contoso.example"}, 0),
    ({"name": "user-mailboxes", "kind": "mailboxes", "mailboxType": "user"}, 2),
    ({"name": "shared-mailboxes", "kind": "mailboxes", "mailboxType": "shared"}, 1),
    ({"name": "all-mailboxes", "kind": "mailboxes", "mailboxType": "both"}, 3),
    ({"name": "group-users", "kind": "group-members", "groupId": "22222222-0000-0000-0000-000000000001",
      "members": "users"}, 2),
    ({"name": "group-devices", "kind": "group-members", "groupId": "22222222-0000-0000-0000-000000000001",
      "members": "devices"}, 1),
    ({"name": "group-all", "kind": "group-members", "groupId": "22222222-0000-0000-0000-000000000001",
      "members": "both"}, 3),
    ({"name": "devices", "kind": "intune-devices"}, 3),
    ({"name": "windows", "kind": "intune-devices", "operatingSystem": "windows"}, 2),
], ids=lambda v: v["name"] if isinstance(v, dict) else str(v))
def test_custom_licences(definition: dict[str, Any], expected: int) -> None:
    snap = snapshot(
        [(SPB, 10, 7), (EXO, 5, 2)], PEOPLE,
        mailboxes=(mailbox("ana", "User"), mailbox("ben", "User"), mailbox("info", "Shared"),
                   mailbox("room", "Room")),
        groups={"22222222-0000-0000-0000-000000000001": (member("id-ana"), member("id-cy"),
                                                          member("laptop-1", "device"),
                                                          member("id-off", enabled=False))},
        managed_devices=(device("pc1"), device("pc2", "Windows", "ana"), device("phone", "iOS")),
    )
    assert only_item(custom(definition), snap).quantity == expected


def test_custom_licences_follow_the_company_filter() -> None:
    definition = {"name": "licensed", "kind": "entra-users", "scope": "licensed"}
    cfg = config(companies=[{"psa": "cw", "companyId": "19", "userFilter": {"department": ["Sales"]},
                             "licences": [{"custom": "licensed", "agreementId": "100", "lineId": "500"}]}],
                 customLicences=[definition])
    [item], problems = billable_items(cfg, cfg.tenants[0], snapshot([(SPB, 10, 7)], PEOPLE))
    assert item.quantity == 2
    # the licensed members outside the filter: nobody bills them, and they are named
    assert [(p.kind, p.users) for p in problems] == [(ProblemKind.USERS_UNMATCHED, ("ben@fabrikam.example",))]


@pytest.mark.parametrize(("definition", "message"), [
    ({"name": "mb", "kind": "mailboxes", "mailboxType": "user"}, "mailbox usage report was not read"),
    ({"name": "g", "kind": "group-members", "groupId": "22222222-0000-0000-0000-000000000009", "members": "users"},
     "was not read"),
    ({"name": "d", "kind": "intune-devices"}, "Intune managed devices were not read"),
])
def test_custom_licences_without_their_data_are_problems(definition: dict[str, Any], message: str) -> None:
    cfg = custom(definition)
    items, problems = billable_items(cfg, cfg.tenants[0], snapshot([(SPB, 1, 1)]))
    assert items == []
    assert message in problems[0].message


def test_unlinked_licences() -> None:
    cfg = config(licence(), excludedLicences=["f30db892-07e9-47e9-837c-80727f46fd3d"])
    snap = snapshot([(SPB, 5, 5), (E3, 3, 2), (EXO, 0, 0), ("f30db892-07e9-47e9-837c-80727f46fd3d", 10000, 4)])
    assert [s.sku_id for s in unlinked_licences(cfg, cfg.tenants[0], snap)] == [E3]


def test_a_licence_summed_by_a_custom_licence_is_not_unlinked() -> None:
    cfg = custom({"name": "sum", "kind": "licences", "skuIds": [SPB, EXO]})
    assert unlinked_licences(cfg, cfg.tenants[0], snapshot([(SPB, 5, 5), (EXO, 1, 1)])) == []


def names_item(count: int, **options: Any) -> BillableItem:
    users = [user(f"user{i:04d}-with-a-long-name", SPB) for i in range(count)]
    return only_item(config(licence(includeUserNames=True, **options)), snapshot([(SPB, count + 3, count)], users))


def test_user_names_in_the_description_fit_the_limit_with_a_clear_remainder() -> None:
    item = names_item(400)
    text = invoice_description(item, "Microsoft 365 Business Premium", 6000)
    assert len(text) <= 6000
    assert text.startswith("Microsoft 365 Business Premium\nUsers: User0000-With-A-Long-Name, ")
    shown = text.split("\nUsers: ")[1].split(", +")[0].split(", ")
    more = int(text.rsplit("+", 1)[1].split(" ")[0])
    assert len(shown) + more == 400
    assert text.endswith(" more")


def test_all_names_shown_when_they_fit_and_unassigned_seats_follow() -> None:
    item = names_item(3, showUnassigned=True)
    assert invoice_description(item, "M365 BP", 6000) == (
        "M365 BP\nUsers: User0000-With-A-Long-Name, User0001-With-A-Long-Name, User0002-With-A-Long-Name"
        "\nUnassigned: 3")


def test_a_tiny_limit_still_says_how_many_users() -> None:
    item = names_item(50)
    text = invoice_description(item, "BP", 20)
    assert text == "BP\nUsers: +50 more"
