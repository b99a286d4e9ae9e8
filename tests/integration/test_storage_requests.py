"""What a sync costs in Table Storage requests, on Azurite, and that nothing is lost for it: a
tenant's snapshot and its licence history are one transaction, a push's tenants share their
report rows' transactions, and every record the report, the dashboard and the history chart read
is there, including history that earlier versions kept in the ``licencecounts`` table."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import UpdateMode

from local_runner.azurite import Azurite
from shared.adapters.run_store import RunRepository
from shared.adapters.snapshot_store import SnapshotRepository
from shared.adapters.tables import TableStore, partition, submit_streamed
from shared.bootstrap import default_psa_factory
from shared.config.schema import SeatSyncConfig
from shared.domain.model import BilledLine, DirectoryUser, SkuCount, TenantSnapshot
from shared.ports import PsaPort
from shared.services.history import tenant_history
from tests.integration.msp import FABRIKAM, LITWARE, Msp, running_msp

pytestmark = pytest.mark.integration

TENANT = "aaaaaaaa-0000-4000-8000-000000000001"
E3 = SkuCount(sku_id="05e9a617-0261-4cee-bb44-138d3ef5d965", sku_part_number="SPE_E3", purchased=10, consumed=2)
P1 = SkuCount(sku_id="4b9405b0-7788-4568-add1-99614e613b69", sku_part_number="EXCHANGESTANDARD", purchased=5,
              consumed=1)
EARLIER, LATER = "20261124T020000Z-0000000a", "20261125T020000Z-0000000b"


def snapshot(run_id: str, day: int, *skus: SkuCount) -> TenantSnapshot:
    users = (DirectoryUser(id="u1", user_principal_name="ann@contoso.example", display_name="Ann",
                           account_enabled=True, sku_ids=tuple(s.sku_id for s in skus)),
             DirectoryUser(id="u2", user_principal_name="bo@contoso.example", display_name="Bo",
                           sku_ids=(skus[0].sku_id,)))
    return TenantSnapshot(tenant_id=TENANT, run_id=run_id, collected_at=datetime(2026, 11, day, 2, tzinfo=UTC),
                          skus=skus, users=users)


def sent(store: TableStore, before: Counter[str]) -> dict[str, int]:
    assert store.requests is not None
    return {kind.replace(store.prefix, ""): n for kind, n in (store.requests.by_kind() - before).items()}


def test_operations_made_one_at_a_time_go_in_full_transactions_holding_one_at_once(store: TableStore) -> None:
    """``submit_streamed``: a transaction is sent when it is full or the partition changes, in
    the operations' order, and the generator is not read ahead of the transaction being filled."""
    table = store.table("streamed")
    made: list[int] = []

    def operations() -> Any:
        for n in range(250):
            made.append(n)
            yield ("upsert", {"PartitionKey": "a" if n < 230 else "b", "RowKey": f"{n:04d}", "N": n},
                   {"mode": UpdateMode.REPLACE})

    assert store.requests is not None
    before = store.requests.by_kind()
    real = table.submit_transaction
    held: list[int] = []

    def submit(batch: list[Any]) -> Any:
        held.append(len(made) - batch[-1][1]["N"] - 1)  # operations made beyond the transaction sent
        return real(batch)

    table.submit_transaction = submit  # type: ignore[method-assign,assignment]
    assert submit_streamed(table, operations()) == 250
    assert sent(store, before) == {"POST $batch streamed": 4}, "100 + 100 + 30 of 'a', then 20 of 'b'"
    assert held == [1, 1, 1, 0], "at most the one operation that did not fit was made ahead"
    assert [e["N"] for e in partition(table, "a")] == list(range(230))
    assert [e["N"] for e in partition(table, "b")] == list(range(230, 250))


def test_a_channel_s_history_reads_only_what_its_records_keep(store: TableStore) -> None:
    """The sent alerts of a channel, read to pick what is due, come without their titles, 200 a
    page; a row written before alerts recorded their kind reads with none."""
    from shared.adapters.notification_store import NotificationRepository
    from shared.notifications.alerts import Alert

    repository = NotificationRepository(store)
    at = datetime(2026, 11, 25, 2, tzinfo=UTC)
    alerts = [Alert(kind="unused-licences", key=f"unused-licences|t{n}|s", fingerprint=f"f{n}", severity="info",
                    title="T" * 400, line="l", facts=()) for n in range(3)]
    repository.record_sent("teams:billing", "run-1", alerts, at)
    store.table("notifications").upsert_entity({
        "PartitionKey": "sent~teams:billing", "RowKey": "old", "Key": "gdap-not-added|x", "Fingerprint": "g",
        "SentAt": at.isoformat(), "RunId": "run-0"})
    history = repository.sent("teams:billing")
    assert {k: (r.fingerprint, r.run_id, r.kind) for k, r in history.items()} == {
        **{a.key: (a.fingerprint, "run-1", "unused-licences") for a in alerts},
        "gdap-not-added|x": ("g", "run-0", "")}
    assert all(r.sent_at == at for r in history.values())


def test_a_channel_s_history_and_a_run_s_spooled_alerts_are_read_in_one_order(store: TableStore) -> None:
    """Deciding what is due merges two streams, neither held: the channel's history and the run's
    alerts kept while they are sent, both in the order of a hash of the alert's key. An alert
    comes back as it was written (its JSON split over properties when long), the history's stale
    rows are found on the way and pruned, and the kept alerts are deleted afterwards."""
    import random

    from shared.adapters.alert_spool import AlertSpool
    from shared.adapters.notification_store import PRUNE_AFTER, NotificationRepository
    from shared.domain.problems import ProblemKind
    from shared.notifications.alerts import Alert, Fact
    from shared.notifications.digest import join_history

    repository = NotificationRepository(store)
    now = datetime(2026, 11, 25, 2, tzinfo=UTC)
    old = now - PRUNE_AFTER - timedelta(days=1)
    alerts = [Alert(kind="unused-licences", key=f"unused-licences|t{n}|s", fingerprint=f"f{n}", severity="info",
                    title="T", line="l", facts=(Fact("Unused", str(n)),), tenant_id=f"t{n}", sku_id="s")
              for n in range(450)]
    alerts.append(Alert(kind="billing-problem", key="billing-problem|t1|x", fingerprint="b", severity="warning",
                        title="Tëst/#?", line="l", facts=(Fact("Reason", "é" * 70_000),), tenant_id="t1",
                        action_url="https://example.test/a?b=c", action_label="Open", problem=ProblemKind.LINE_MISSING))
    repository.record_sent("email", "run-0", alerts[:1], old)  # this run's alert, sent long ago
    repository.record_sent("email", "run-0", [Alert(kind="unused-licences", key="unused-licences|gone|s",
                                                    fingerprint="g", severity="info", title="T", line="l",
                                                    facts=())], old)  # no longer raised, stale
    repository.record_sent("email", "run-1", alerts[2:300], now - timedelta(days=1))
    shuffled = alerts[:]
    random.Random(3).shuffle(shuffled)
    spool = AlertSpool(store, "run-2")
    assert store.requests is not None
    before = store.requests.by_kind()
    assert spool.write(iter(shuffled)) == len(alerts)
    assert sent(store, before) == {"POST $batch notifications": 5}, "100 alerts a transaction"
    read = list(spool.read())
    assert [row for row, _ in read] == sorted(row for row, _ in read)
    assert sorted((a for _, a in read), key=lambda a: a.key) == sorted(alerts, key=lambda a: a.key)

    stale: list[str] = []

    def history() -> Any:
        for row, record in repository.iter_sent("email"):
            if record.sent_at < now - PRUNE_AFTER:
                stale.append(row)
            yield row, record

    joined = {alert.key: last for alert, last in join_history(spool.read(), history())}
    runs = {key: (last.run_id, last.sent_at) if last is not None else None for key, last in joined.items()}
    assert runs[alerts[0].key] == ("run-0", old)
    assert runs[alerts[1].key] is None and runs[alerts[-1].key] is None
    assert {runs[a.key] for a in alerts[2:300]} == {("run-1", now - timedelta(days=1))}
    assert len(stale) == 2, "the history is read to its end: the stale row past the run's alerts too"
    assert repository.prune_rows("email", stale) == 2
    assert alerts[0].key not in repository.sent("email") and len(repository.sent("email")) == 298
    assert spool.discard() == len(alerts)
    assert list(spool.read()) == []

    huge = Alert(kind="billing-problem", key="billing-problem|t2|x", fingerprint="h", severity="warning",
                 title="H", line="l", facts=tuple(Fact(f"Fact {n}", "x" * 5_000) for n in range(60)))
    other = AlertSpool(store, "run-2")
    assert other.partition_key != spool.partition_key, "each notification of a run keeps its alerts apart"
    assert other.write([huge]) == 1
    [(_row, kept)] = other.read()
    assert (kept.key, kept.fingerprint) == (huge.key, huge.fingerprint), "too long for a row: kept shortened"
    assert len(kept.facts) == 41 and kept.facts[-1] == Fact("More", "20 more facts: see the run report")
    assert all(len(f.value) == 2_000 for f in kept.facts[:40])

    # a notification whose process died leaves its alerts; a later one deletes them once they are
    # older than any notification still running could be, and only then
    clock = datetime.now(UTC)
    assert other.discard_abandoned(clock) == 0 and len(list(other.read())) == 1
    later = AlertSpool(store, "run-3")
    later.write([huge])
    assert later.discard_abandoned(clock + timedelta(hours=13)) == 2, "both notifications' rows"
    assert list(other.read()) == [] and list(later.read()) == []


def test_a_snapshot_and_its_licence_history_are_stored_in_one_transaction(store: TableStore) -> None:
    snapshots = SnapshotRepository(store)
    taken = snapshot(LATER, 25, E3, P1)
    assert store.requests is not None
    before = store.requests.by_kind()
    snapshots.save(taken)
    assert sent(store, before) == {"POST $batch snapshots": 1}
    assert snapshots.get(TENANT, LATER) == taken and snapshots.latest(TENANT) == taken
    history = list(snapshots.licence_history(TENANT))
    assert [(h.sku_id, h.run_id, h.purchased, h.assigned, h.users) for h in history] == sorted([
        (E3.sku_id, LATER, 10, 2, ("ann@contoso.example", "bo@contoso.example")),
        (P1.sku_id, LATER, 5, 1, ("ann@contoso.example",))])


def test_history_an_earlier_version_kept_is_read_with_the_new(store: TableStore) -> None:
    """Rows of the ``licencecounts`` table (where versions before kept the history) and rows kept
    with the snapshots make one history, in order: the history chart shows every day."""
    earlier = store.table("licencecounts")
    earlier.upsert_entity({"PartitionKey": TENANT, "RowKey": f"{E3.sku_id}~{EARLIER}", "SkuId": E3.sku_id,
                           "SkuPartNumber": "SPE_E3", "RunId": EARLIER, "CollectedAt": "2026-11-24T02:00:00+00:00",
                           "Purchased": 9, "Assigned": 1, "Users": '["ann@contoso.example"]',
                           "UsersTruncated": False, "State": ""}, mode=UpdateMode.MERGE)
    snapshots = SnapshotRepository(store)
    snapshots.save(snapshot(LATER, 25, E3, P1))
    assert [(h.sku_id, h.run_id, h.purchased) for h in snapshots.licence_history(TENANT)] == sorted([
        (E3.sku_id, EARLIER, 9), (E3.sku_id, LATER, 10), (P1.sku_id, LATER, 5)])
    assert [(h.run_id, h.assigned) for h in snapshots.licence_history(TENANT, E3.sku_id)] == [
        (EARLIER, 1), (LATER, 2)], "oldest first, as a licence's first appearance is found"
    chart = tenant_history(SeatSyncConfig(), snapshots, RunRepository(store), TENANT)
    points = {series.sku_id: [(p.run_id, p.purchased, p.assigned) for p in series.points] for series in chart.licences}
    assert points == {E3.sku_id: [(EARLIER, 9, 1), (LATER, 10, 2)], P1.sku_id: [(LATER, 5, 1)]}


def test_a_sync_records_everything_in_a_few_requests_a_tenant(azurite: Azurite, store: TableStore,
                                                                tmp_path: Path) -> None:
    """The sample MSP synced: each collected tenant's snapshot and history in one transaction and
    its outcome in one request; the pushes' report rows, reconciliations, licence facts and latest
    licences a few transactions for the batch; the write intents a transaction per tenant. And
    every record the report, the dashboard and the history read is there."""
    assert store.requests is not None
    with running_msp(azurite, store, tmp_path) as msp:
        before = store.requests.by_kind()
        report = msp.sync()
        requests = sent(store, before)
        services = msp.services
        run_id = report["runId"]
        collected = sorted(t["tenantId"] for t in report["tenants"] if t["status"] == "ok")
        written = [c for c in report["changes"] if c["status"] == "applied"]
        assert len(collected) >= 6 and written

        # what it cost
        assert requests["POST $batch snapshots"] == len(collected), "a snapshot and its history: one transaction"
        assert requests["PATCH runtenants"] == len(report["tenants"]), "each tenant's outcome, when collected"
        for table in ("runtenants", "runlines", "margins", "latestlicences"):
            assert requests[f"POST $batch {table}"] == 1, f"the one push's tenants' {table} rows together"
        writers = {c["tenantId"] for c in written}
        assert requests["POST $batch intents"] == 2 * len(writers), "a tenant's intents opened and closed together"
        for gone in ("PUT intents", "PUT latestlicences", "POST $batch licencecounts", "PATCH runlines"):
            assert gone not in requests

        # what it recorded
        rows = {row["tenantId"]: row for row in services.runs.tenant_rows(run_id)}
        assert sorted(t for t, row in rows.items() if row["outcome"] and row["outcome"].status == "ok") == collected
        reported = {t["tenantId"]: t for t in report["tenants"]}
        for tenant_id in collected:
            assert len(rows[tenant_id]["problems"]) == len(reported[tenant_id]["problems"])
        latest = services.snapshots.latest_licences()
        assert {t: latest[t].run_id for t in collected} == dict.fromkeys(collected, run_id)
        for tenant_id in collected:
            kept = services.snapshots.get(tenant_id, run_id)
            assert kept is not None
            history = [h for h in services.snapshots.licence_history(tenant_id) if h.run_id == run_id]
            assert sorted((h.sku_id, h.purchased, h.assigned) for h in history) == sorted(
                (s.sku_id, s.purchased, s.consumed) for s in kept.skus)
        lines, _ = services.runs.reconciliation(run_id)
        assert {row.tenant_id for row in lines} <= set(collected) and lines
        assert {f.tenant_id for f in services.margins.facts(run_id)} == {row.tenant_id for row in lines}
        for line in lines:
            billed = [b for b in services.runs.billed_history(line.tenant_id) if b.run_id == run_id]
            assert line.mapping_key in {b.mapping_key for b in billed}
        assert {c.change_id for c, _ in services.runs.changes(run_id)} == {c["changeId"] for c in report["changes"]}
        for change in written:
            assert services.decisions.ledger_entry(change["tenantId"], change["changeId"]) is not None
            assert any(e.change_id == change["changeId"] and e.event == "applied"
                       for e in services.decisions.audit_trail(change["tenantId"]))
        assert services.decisions.intents() == []

        # the next day, nothing changed: every licence's line bills, so no tenant's ledger is read
        before = store.requests.by_kind()
        again = msp.sync()
        requests = sent(store, before)
        assert not [c for c in again["changes"] if c["status"] == "applied"]
        assert not [k for k in requests if k.endswith(" ledger")], requests


class BrokenOnLitware:
    """A PSA client with a defect met on Litware's quantity (agreement 106), every time: the push of
    the batch fails, and fails again when retried."""

    def __init__(self, inner: PsaPort) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def set_quantity(self, line: BilledLine, *args: Any, **kwargs: Any) -> Any:
        if line.agreement_id == "106":
            raise RuntimeError("a defect met writing Litware's quantity")
        return self._inner.set_quantity(line, *args, **kwargs)


def test_a_push_that_fails_part_way_keeps_the_records_of_the_tenants_it_finished(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """The batch's records are held until it ends; a push that fails still stores those of the
    tenants it finished before the failure (their writes are in the ledger already), so the failed
    run's report shows what they were billed and why."""

    def factory(msp: Msp) -> Any:
        real = default_psa_factory(msp.services.settings, msp.services.secrets, lambda s: None)
        return lambda connection: BrokenOnLitware(real(connection))

    with running_msp(azurite, store, tmp_path, psa_factory=factory) as msp:
        report = msp.sync()
        assert report["status"] == "failed"
        services, run_id = msp.services, report["runId"]
        written = {c.tenant_id for c, _ in services.runs.changes(run_id) if c.status.value == "applied"}
        assert FABRIKAM in written
        lines, _ = services.runs.reconciliation(run_id)
        assert FABRIKAM in {row.tenant_id for row in lines}, "the finished tenant's reconciliation is kept"
        assert FABRIKAM in {f.tenant_id for f in services.margins.facts(run_id)}
        assert services.snapshots.latest_licences()[FABRIKAM].run_id == run_id
        rows = {row["tenantId"]: row for row in services.runs.tenant_rows(run_id)}
        assert rows[FABRIKAM]["outcome"] is not None and rows[FABRIKAM]["pushError"] is None
        for tenant_id in written:
            assert services.decisions.ledger(tenant_id), "every write is in the ledger"
        assert [i.change.tenant_id for i in services.decisions.intents()] == [LITWARE] * len(
            services.decisions.intents()), "only the failing tenant's intents are left for the next run to settle"
