"""Impossible values stay contained: a count from Graph that cannot be true fails that tenant's
read with a message naming the record, the field and the value; a PSA line or product with an
impossible number is marked unreadable and its licence reported, never written; nothing that
Table Storage cannot store (Int32) becomes a snapshot. The bounds: docs/billing-rules.md."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from shared.adapters.psa_records import RecordFields, whole_number, whole_quantity
from shared.config.schema import MAX_SEATS, MAX_UNIT_PRICE, parse_config
from shared.domain.model import MAX_COUNT, MAX_PRICE, SkuCount, Subscription, count_problem
from shared.domain.planning import plan_tenant
from shared.errors import ConfigError, IncompleteReadError
from tests.unit.builders import CONNECTION, PROFILE, SPB, TENANT, TODAY, config, licence, line, snapshot, view
from tests.unit.test_graph_client import client_over, paged

SKU: dict[str, Any] = {"skuId": SPB, "skuPartNumber": "SPB", "capabilityStatus": "Enabled", "appliesTo": "User",
       "consumedUnits": 20, "prepaidUnits": {"enabled": 25, "suspended": 0, "warning": 0, "lockedOut": 0}}
IMPOSSIBLE = [
    (-1, "is -1, outside 0 to 2147483647"),
    (2**31, "is 2147483648, outside 0 to 2147483647"),
    (2.5, "is 2.5, not a whole number"),
    (float("nan"), "is nan, not a finite number"),
    (float("inf"), "is inf, not a finite number"),
    (1e300, "is 1e+300, outside 0 to 2147483647"),
    (True, "is True, not a number"),
    ("20", "is '20', not a number"),
]


# --------------------------------------------------------------------------- the bound itself


@pytest.mark.parametrize(("value", "problem"), IMPOSSIBLE)
def test_impossible_counts_are_named(value: Any, problem: str) -> None:
    assert count_problem(value) == problem


@pytest.mark.parametrize("value", [0, 1, 20.0, Decimal("7"), MAX_COUNT])
def test_possible_counts_pass(value: Any) -> None:
    assert count_problem(value) is None


def test_nothing_unstorable_becomes_a_licence_count() -> None:
    with pytest.raises(ValueError, match=r"SkuCount.purchased is 2147483648, outside 0 to 2147483647"):
        SkuCount(sku_id=SPB, sku_part_number="SPB", purchased=2**31, consumed=1)
    with pytest.raises(ValueError, match=r"SkuCount.consumed must be an int"):
        SkuCount(sku_id=SPB, sku_part_number="SPB", purchased=1, consumed=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Subscription.total_licenses is -3"):
        Subscription(id="s", sku_id=SPB, sku_part_number="SPB", total_licenses=-3, status="Enabled")


# --------------------------------------------------------------------------- from Graph


@pytest.mark.parametrize(("value", "problem"), IMPOSSIBLE)
@pytest.mark.parametrize("field", ["prepaidUnits.enabled", "consumedUnits", "prepaidUnits.lockedOut"])
def test_an_impossible_count_from_graph_fails_the_tenant_naming_field_and_value(field: str, value: Any,
                                                                               problem: str) -> None:
    sku: dict[str, Any] = {**SKU, "prepaidUnits": dict(SKU["prepaidUnits"])}
    if field.startswith("prepaidUnits."):
        sku["prepaidUnits"][field.split(".")[1]] = value
    else:
        sku[field] = value
    client, _ = client_over(paged({"": {"value": [sku]}}))
    with pytest.raises(IncompleteReadError) as caught:
        client.list_subscribed_skus(TENANT)
    assert str(caught.value) == (
        f"Microsoft Graph (tenant {TENANT}): {field} {problem} (subscribedSku SPB {SPB}); a licence count is a whole "
        "number from 0 to 2147483647, so nothing is billed from this read of the tenant")
    assert caught.value.tenant_id == TENANT


def test_an_impossible_subscription_total_fails_the_tenant() -> None:
    item = {"id": "sub-1", "skuId": SPB, "skuPartNumber": "SPB", "totalLicenses": 1e300, "status": "Enabled"}
    client, _ = client_over(paged({"": {"value": [item]}}))
    with pytest.raises(IncompleteReadError,
                       match=r"totalLicenses is 1e\+300, outside 0 to 2147483647 \(companySubscription sub-1 SPB\)"):
        client.list_subscriptions(TENANT)


def test_whole_floats_and_absent_optional_counts_are_read() -> None:
    sku = {**SKU, "consumedUnits": 20.0, "prepaidUnits": {"enabled": 25}}
    client, _ = client_over(paged({"": {"value": [sku]}}))
    [read] = client.list_subscribed_skus(TENANT)
    assert (read.purchased, read.consumed, read.suspended, read.locked_out) == (25, 20, 0, 0)
    assert isinstance(read.consumed, int)


# --------------------------------------------------------------------------- from a PSA


def test_a_psa_record_reads_impossible_numbers_as_absent_and_says_why() -> None:
    fields = RecordFields({"quantity": "1E+300", "qty": Decimal("1E+300"), "price": Decimal("2.5"),
                           "cost": Decimal("1E+10"), "neg": Decimal("-4")}, "ConnectWise", "addition 5")
    assert fields.quantity("quantity") is None
    assert fields.quantity("qty") is None
    assert fields.quantity("neg") == Decimal("-4"), "credit lines bill negative seats"
    assert fields.price("price") == Decimal("2.5")
    assert fields.price("cost") is None
    assert fields.unreadable == ("quantity is '1E+300', not a number; qty is 1E+300, beyond the 2,147,483,647 "
                                 "SeatSync accepts; cost is 1E+10, beyond the 1,000,000,000 SeatSync accepts")
    assert Decimal(10) ** 9 == MAX_PRICE


def test_seatsync_never_writes_a_quantity_beyond_the_bound() -> None:
    assert whole_quantity(MAX_COUNT) == MAX_COUNT
    with pytest.raises(ValueError, match="cannot be beyond 2147483647 either way"):
        whole_quantity(MAX_COUNT + 1)
    with pytest.raises(ValueError, match="cannot be beyond 2147483647 either way"):
        whole_number(-MAX_COUNT - 1, "quantity")


# --------------------------------------------------------------------------- planning around them


def plan(cfg: Any, snap: Any, psa: Any) -> Any:
    return plan_tenant(cfg, cfg.tenants[0], snap, psa, TODAY, None)


def test_an_unreadable_line_is_reported_and_never_written_while_other_licences_sync() -> None:
    e3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
    cfg = config(licence(), licence(e3, lineId="600"))
    bad = replace(line(quantity=0), unreadable="quantity is 1E+300, beyond the 2,147,483,647 SeatSync accepts")
    result = plan(cfg, snapshot([(SPB, 30, 25), (e3, 10, 9)]), view(bad, line("600", quantity=8)))
    assert [(c.line_id, c.new_quantity) for c in result.changes if c.kind.value == "set-quantity"] == [("600", 9)]
    assert all(c.line_id != "500" for c in result.changes), "nothing is written to the unreadable line"
    [problem] = result.problems
    assert problem.tenant_id == TENANT and problem.line_id == "500"
    assert problem.message.endswith(
        "line 500 on agreement 100 holds impossible values (quantity is 1E+300, beyond the 2,147,483,647 SeatSync "
        "accepts); nothing is written for this licence until it is corrected in cw")
    assert [o.line_id for o in result.outcomes] == ["600"]


def test_an_unreadable_line_of_the_profile_s_product_blocks_a_new_line() -> None:
    """Were the line left out, the licence would look unbilled and a second line be created."""
    bad = replace(line(quantity=0), unreadable="quantity is NaN, not a finite number")
    result = plan(config(licence(lineId=None, profile="m365-bp")), snapshot([(SPB, 30, 25)]), view(bad))
    assert result.changes == ()
    assert "holds impossible values (quantity is NaN" in result.problems[0].message


def test_an_unreadable_line_of_another_product_does_not_concern_the_licence() -> None:
    other = replace(line("900", quantity=0, product="77"), unreadable="quantity is 'many', not a number")
    result = plan(config(licence()), snapshot([(SPB, 30, 25)]), view(line(quantity=20), other))
    assert [c.new_quantity for c in result.changes if c.kind.value == "set-quantity"] == [25]
    assert result.problems == ()


def test_an_unreadable_product_price_is_reported_for_the_licences_priced_from_it() -> None:
    psa = view(line(quantity=20))
    product = replace(psa.products[("cw", "1")], price=None, unreadable="price is 1E+300, beyond the 1,000,000,000 "
                                                                       "SeatSync accepts")
    psa = replace(psa, products={("cw", "1"): product})
    result = plan(config(licence(profile="m365-bp")), snapshot([(SPB, 30, 25)]), psa)
    assert result.changes == ()
    assert "product 1 of profile 'm365-bp' holds impossible values (price is 1E+300" in result.problems[0].message


def test_a_count_to_bill_beyond_the_bound_is_a_problem_not_a_write() -> None:
    cfg = config(licence(minimum=MAX_COUNT))
    custom = {"name": "both", "kind": "licences", "skuIds": [SPB, "6fd2c87f-b296-42f0-b197-1e91e994b900"]}
    summed = config({"custom": "both", "agreementId": "100", "lineId": "500"}, customLicences=[custom])
    snap = snapshot([(SPB, MAX_COUNT, MAX_COUNT), ("6fd2c87f-b296-42f0-b197-1e91e994b900", 5, 5)])
    assert plan(cfg, snap, view(line(quantity=20))).changes != ()
    result = plan(summed, snap, view(line(quantity=20)))
    assert result.changes == ()
    assert f"the count to bill ({MAX_COUNT + 5}) is beyond {MAX_COUNT}" in result.problems[0].message


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("field", ["included", "minimum"])
def test_configured_seat_numbers_are_bounded(field: str) -> None:
    assert MAX_SEATS == MAX_COUNT
    document = {"psaConnections": [CONNECTION], "billingProfiles": [PROFILE],
                "tenants": [{"tenantId": TENANT, "name": "Fabrikam", "companies": [
                    {"psa": "cw", "companyId": "19", "licences": [{**licence(), field: 2**31}]}]}]}
    with pytest.raises(ConfigError, match=rf"licences\[0\].{field}: Input should be less than or equal to 2147483647"):
        parse_config(document)
    with pytest.raises(ConfigError, match=r"safety.holdDecreaseSeats: Input should be less than or equal to"):
        parse_config({"safety": {"holdDecreaseSeats": 2**31}})


@pytest.mark.parametrize(("price", "expected"), [
    ({"mode": "custom", "amount": "1e400"}, "price.amount: Input should be less than or equal to 1000000000"),
    ({"mode": "custom", "amount": "NaN"}, "price.amount: Input should be a finite number"),
    ({"mode": "markup", "percent": "100001"}, "price.percent: Input should be less than or equal to 10000"),
])
def test_configured_prices_are_bounded_as_the_psas_prices_are(price: dict[str, str], expected: str) -> None:
    assert MAX_UNIT_PRICE == MAX_PRICE
    with pytest.raises(ConfigError) as refused:
        parse_config({"psaConnections": [CONNECTION], "billingProfiles": [{**PROFILE, "price": price}]})
    assert any(expected in problem for problem in refused.value.problems), refused.value.problems
    parse_config({"psaConnections": [CONNECTION], "billingProfiles": [
        {**PROFILE, "price": {"mode": "custom", "amount": "1000000000"}}]})


# --------------------------------------------------------------------------- how the tests inject them


def test_the_emulators_serve_impossible_values_where_a_fault_says() -> None:
    from emulators.base import EmulatorError, FaultRule

    rule = FaultRule.from_dict({"kind": "corrupt", "path": "additions", "set": {"quantity": 1e300, "a.b": "x"},
                                "where": {"id": 501}})
    body: list[dict[str, Any]] = [{"id": 500, "quantity": 20}, {"id": 501, "quantity": 5, "a": {"b": 1}},
                                  {"id": 501, "other": 1}]
    assert rule.corrupted(body) == [{"id": 500, "quantity": 20}, {"id": 501, "quantity": 1e300, "a": {"b": "x"}},
                                    {"id": 501, "other": 1}], "only the fields an object has"
    assert body[1]["quantity"] == 5, "the emulator's own state is untouched"
    for wrong in ({"kind": "corrupt"}, {"kind": "error", "set": {"a": 1}}, {"kind": "corrupt", "set": [1]}):
        with pytest.raises(EmulatorError, match="a corrupt fault needs 'set'"):
            FaultRule.from_dict(wrong)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e300, 2**31, -1, 2.5])
def test_an_impossible_seat_count_from_a_subscription_source_is_its_error(value: Any) -> None:
    from shared.adapters.source_fields import Fields
    from shared.errors import SourceError

    with pytest.raises(SourceError, match="'quantity' is not a whole number of seats from 0 to 2147483647"):
        Fields("pax8", {"quantity": value}, "subscription s-1").whole("quantity")
    assert Fields("pax8", {"quantity": 7.0}, "subscription s-1").whole("quantity") == 7


def test_answers_nested_deeper_than_any_real_one_are_refused_not_crashed() -> None:
    import requests

    from shared.adapters.psa_records import json_answer
    from shared.errors import PsaError

    deep = b"[" * 100_000 + b"]" * 100_000
    client, _ = client_over(lambda request: (200, deep))
    with pytest.raises(IncompleteReadError, match="a page is not a JSON object"):
        client.list_subscribed_skus(TENANT)
    response = requests.Response()
    response.status_code, response._content = 200, deep
    with pytest.raises(PsaError, match="the answer is JSON nested too deeply to be read"):
        json_answer(response, "ConnectWise", "GET", "https://cw.example/additions", "agreement 100 additions")
