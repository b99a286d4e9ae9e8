"""A run's shared PSA reads go to their stored JSON and back unchanged, and what thousands of
agreements repeat (their days, the ids asked) is one object when read back."""

from __future__ import annotations

import json
from datetime import date

import pytest

from shared.adapters.shared_reads_store import ConnectionReads, reads_from_json, reads_to_json
from shared.domain.model import Agreement


def _reads() -> ConnectionReads:
    agreements = tuple(
        Agreement("connectwise", str(5000 + i), str(100 + i), f"Customer {i} Microsoft 365", "Microsoft 365",
                  active=i % 5 != 0, prorate=True, billing_cycle="annual" if i % 7 == 0 else "monthly",
                  start_date=date(2026, 1, 1), end_date=date(2027, 1, 1) if i % 3 == 0 else None,
                  next_invoice_date=date(2026, 12, 1) if i % 2 else None)
        for i in range(40))
    asked = frozenset({*(a.agreement_id for a in agreements), "9999"})  # 9999 asked, not found
    return ConnectionReads("connectwise", asked, frozenset({"p1"}), agreements)


def test_shared_reads_read_back_equal() -> None:
    reads = _reads()
    raw = json.loads(json.dumps(reads_to_json(reads)))  # as stored
    back = reads_from_json(raw)
    assert back == reads
    assert reads_to_json(back) == raw


def test_what_agreements_repeat_is_one_object_when_read_back() -> None:
    back = reads_from_json(json.loads(json.dumps(reads_to_json(_reads()))))
    assert len({id(a.start_date) for a in back.agreements}) == 1
    assert len({id(a.next_invoice_date) for a in back.agreements if a.next_invoice_date}) == 1
    found = {a.agreement_id: a.agreement_id for a in back.agreements}
    assert all(asked is found[asked] for asked in back.asked_agreements if asked in found), \
        "an id asked and found is the agreement's own string"
    assert "9999" in back.asked_agreements


def test_an_agreement_is_slotted() -> None:
    agreement = _reads().agreements[0]
    assert not hasattr(agreement, "__dict__")
    with pytest.raises(AttributeError):
        agreement.name = "renamed"  # type: ignore[misc]
