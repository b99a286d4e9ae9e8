"""The decisions repository's batch reads and writes on Azurite: what a push of many tenants reads
in a few queries and records in a few transactions equals what it would read and record one by
one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from shared.adapters.decision_store import AuditEntry, DecisionRepository
from shared.adapters.run_store import RunRepository
from shared.adapters.tables import TableStore
from shared.config.schema import SeatSyncConfig
from shared.domain.model import ChangeKind, PlannedChange
from shared.ports import PsaPort
from shared.services.bookkeeping import Bookkeeping

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 25, 2, tzinfo=UTC)
RUN = "20261125T020000Z-0000000b"


def tenant(i: int) -> str:
    return f"aaaaaaaa-0000-0000-0000-{i:012d}"


def change(i: int, number: int = 0, due_date: date | None = None) -> PlannedChange:
    return PlannedChange(change_id=f"c{i}-{number}", kind=ChangeKind.SET_QUANTITY, tenant_id=tenant(i),
                         company_id="19", psa="cw", agreement_id=f"{100 + i}", line_id="500", sku_id="sku",
                         old_quantity=5, new_quantity=4, reason="r", hold_key=f"h{i}-{number}", due_date=due_date)


def test_a_batch_reads_every_tenants_approvals_deferrals_and_intents_as_one_by_one(store: TableStore) -> None:
    decisions = DecisionRepository(store)
    tenants = [tenant(i) for i in range(31)]  # more than one query's worth (14 a query)
    for i in range(0, 31, 2):
        decisions.hold(change(i), RUN, AT)
        decisions.open_intent(change(i, 1), RUN, AT + timedelta(seconds=i))
    for i in range(0, 31, 3):
        decisions.defer(change(i, 2, date(2026, 12, 31)), RUN, AT)
    decisions.open_intent(change(40), RUN, AT)  # another tenant's: not among the batch's
    assert store.requests is not None
    before = store.requests.count
    approvals = decisions.approvals_of(tenants)
    deferrals = decisions.deferrals_of(tenants)
    intents = decisions.intents_of(tenants)
    assert store.requests.count - before == 9, "three queries of each kind for 31 tenants"
    for t in tenants:
        assert approvals[t] == decisions.approvals(tenant_id=t)
        assert deferrals[t] == decisions.deferrals(t)
        assert all(d.mapping_key == c.mapping_key for d, c in deferrals[t])
        assert intents[t] == decisions.intents(t)
    assert sum(len(v) for v in intents.values()) == 16 and tenant(40) not in intents


def test_ledger_entries_of_a_tenant_are_read_in_a_few_queries(store: TableStore) -> None:
    decisions = DecisionRepository(store)
    written = [change(1, n) for n in range(20)]
    decisions.record_writes([(c, RUN, AT, f"line-{c.change_id}", None) for c in written[:17]])
    found = decisions.ledger_entries(tenant(1), [c.change_id for c in written])
    assert sorted(found) == sorted(c.change_id for c in written[:17])
    for c in written[:17]:
        assert found[c.change_id] == decisions.ledger_entry(tenant(1), c.change_id)
        assert found[c.change_id].line_id == f"line-{c.change_id}"


def test_intents_closed_together_even_when_one_was_closed_already(store: TableStore) -> None:
    decisions = DecisionRepository(store)
    opened = [change(1, n) for n in range(4)] + [change(2, n) for n in range(3)]
    for c in opened:
        decisions.open_intent(c, RUN, AT)
    decisions.close_intent(tenant(1), opened[2].change_id)  # closed meanwhile (another attempt settled it)
    decisions.close_intents([(c.tenant_id, c.change_id) for c in opened])
    assert decisions.intents() == []


def test_audit_entries_written_together_keep_their_order(store: TableStore) -> None:
    decisions = DecisionRepository(store)
    entries = [AuditEntry.of(replace(change(1, n), change_id=f"c-{n}"), event, AT, "Fabrikam", run_id=RUN)
               for n in range(60) for event in ("applied", "recovered")]
    decisions.audit_many(entries)
    trail = decisions.audit_trail(tenant(1))
    assert [(e.change_id, e.event) for e in trail] == [(e.change_id, e.event) for e in entries]


def test_bookkeeping_held_for_a_block_that_fails_is_not_recorded_and_its_intent_stays_open(store: TableStore) -> None:
    runs, decisions = RunRepository(store), DecisionRepository(store)
    book = Bookkeeping(SeatSyncConfig(), runs, decisions, psa_for=no_psa, run_id=RUN, run=None, now=AT)
    written = change(1)
    book.open_intent(written)  # recorded at once: before the PSA call

    def stopped_before_the_block_ends() -> None:
        with book.batched():
            book.record_applied(written, "line-1")
            book.update_change(written)
            book.audit(written, "applied")
            book.close_intent(written)
            raise RuntimeError("the process stops before its bookkeeping is stored")

    with pytest.raises(RuntimeError):
        stopped_before_the_block_ends()
    assert decisions.ledger(tenant(1)) == [] and decisions.audit_trail(tenant(1)) == []
    assert [i.change.change_id for i in decisions.intents(tenant(1))] == [written.change_id]
    with book.batched():
        book.record_applied(written, "line-1")
        book.update_change(written)
        book.audit(written, "applied")
        book.close_intent(written)
        assert decisions.intents(tenant(1)) != [], "nothing is closed before the block ends"
    assert [e.change_id for e in decisions.ledger(tenant(1))] == [written.change_id]
    assert [e.event for e in decisions.audit_trail(tenant(1))] == ["applied"]
    assert [c.change_id for c, _ in runs.changes(RUN)] == [written.change_id]
    assert decisions.intents(tenant(1)) == []


def no_psa(name: str) -> PsaPort:
    raise AssertionError(f"no PSA is read here ({name})")
