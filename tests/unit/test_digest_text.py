"""A run's digest is stored from its JSON text made a piece at a time: the very text the store
writes for the digest's dict, whatever the digest holds."""

from __future__ import annotations

import json
import zlib
from decimal import Decimal

import pytest

from shared.adapters.tables import JsonText, canonical_json, encode_document
from shared.services.run_digest import Money, RunDigest, TenantDigest


def digest(tenants: int, prices: int) -> RunDigest:
    return RunDigest(
        run_id="20261202T020000Z-0001",
        tenants=tuple(TenantDigest(
            tenant_id=f"aaaaaaaa-0000-4000-8000-{i:012d}", name=f"Kunde {i} \u2013 Müller & Søn \"GmbH\"",
            status="ok" if i % 3 else "auth-failed", problems=i % 4, licences=None if i % 5 == 0 else i,
            unlinked=i % 2, reasons=() if i % 3 else (f"AADSTS7000215 for tenant {i}", "an \\ escaped\nline"))
            for i in range(tenants)),
        money=Money(Decimal("12.50"), Decimal("-3.333"), Decimal(0), Decimal("1000000.01"), unpriced=2),
        prices={("connectwise", f"{1000 + i}", f"{5000 + i}" if i % 2 else ""): Decimal(f"{i}.25")
                for i in range(prices)},
        unlinked=7)


@pytest.mark.parametrize(("tenants", "prices"), [(0, 0), (1, 0), (0, 1), (3, 2), (250, 400)])
def test_the_digest_s_text_is_the_text_of_its_dict(tenants: int, prices: int) -> None:
    made = digest(tenants, prices)
    text = b"".join(made.json_text().pieces)
    assert text == canonical_json(made.to_json())
    assert RunDigest.from_json(json.loads(text)) == made


def test_a_document_given_as_text_is_stored_as_the_same_document() -> None:
    made = digest(40, 30)
    parts, _sha = encode_document(made.json_text())
    whole, _ = encode_document(made.to_json())
    assert zlib.decompress(b"".join(parts)) == zlib.decompress(b"".join(whole))
    assert json.loads(zlib.decompress(b"".join(parts))) == made.to_json()
    assert encode_document(JsonText([b"[1,", b"2]"]))[0] == encode_document([1, 2])[0]


def test_unused_seats_with_no_known_price_are_counted_not_valued_at_zero() -> None:
    """The overview's unused licences are valued at each line's price: a line with none counts its
    unused seats apart (the page says how many are not in the value), and a digest stored before
    they were counted reads as none."""
    from shared.adapters.run_store import ReconciliationRow
    from shared.services.run_digest import money_of

    def row(line: str, price: str | None, purchased: int, counted: int) -> ReconciliationRow:
        return ReconciliationRow(
            tenant_id="aaaaaaaa-0000-4000-8000-000000000001", tenant_name="Fabrikam Ltd", psa="connectwise",
            company_id="250", agreement_id="1001", line_id=line, mapping_key=f"k{line}", source="sku:x", label="E3",
            purchased=purchased, counted=counted, target=counted, billed_before=counted,
            unit_price=None if price is None else Decimal(price))

    money = money_of((), [row("1", "22.00", 25, 22), row("2", None, 10, 6), row("3", None, 4, 4)])
    assert (money.unused_licences, money.unused_unpriced) == (Decimal("66.00"), 4)
    assert money.to_json()["unusedUnpriced"] == 4 and Money.from_json(money.to_json()) == money
    stored_before = {k: v for k, v in money.to_json().items() if k != "unusedUnpriced"}
    assert Money.from_json(stored_before).unused_unpriced == 0


def test_the_overview_says_how_many_unused_seats_its_value_leaves_out() -> None:
    from types import SimpleNamespace

    from dashboard.web import templates

    def page(unused_unpriced: int) -> str:
        money = Money(unused_licences=Decimal("66.00"), unused_unpriced=unused_unpriced).to_json()
        return templates().get_template("overview.html").render(
            caller=SimpleNamespace(kind="entra", name="Dana", role=None, signed_in=True), csrf="x", partial=False,
            title="Overview", active="", report=None, attention=[], pendingApprovals=0, unlinked=0,
            money={"run": money, "month": money, "heldUnpriced": unused_unpriced // 2}, currency="USD")

    note = "4 unused seat(s) have no known unit price and are not in the unused licences' value."
    assert note in page(4)
    assert "2 held decrease(s) have no known unit price and are not in their value." in page(4)
    assert "unused seat(s) have no known unit price" not in page(0)
