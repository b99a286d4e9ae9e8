"""Repositories on Azurite: snapshots of large tenants, history, versioned configuration, runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import pytest

from shared.adapters.config_store import ConfigRepository
from shared.adapters.decision_store import DecisionRepository
from shared.adapters.run_store import RunRepository
from shared.adapters.snapshot_store import SnapshotRepository
from shared.adapters.tables import StoreError, TableStore, read_document, write_document
from shared.config.schema import SeatSyncConfig, TenantConfig, parse_config
from shared.contracts import StartedRun, SyncRequest, TenantOutcome, TenantWork
from shared.domain.model import (
    ChangeKind,
    ChangeStatus,
    DirectoryUser,
    PlannedChange,
    SkuCount,
    TenantSnapshot,
)
from shared.errors import ConflictError
from shared.services.lease import STARTING_GRACE, Heartbeat, LeaseLostError, LeaseRenewal, acquire, liveness
from tests.psa_test_support import in_threads

pytestmark = pytest.mark.integration

TENANT = "aaaaaaaa-0000-0000-0000-000000000001"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"


def big_snapshot(run_id: str, users: int, when: datetime) -> TenantSnapshot:
    people = tuple(
        DirectoryUser(id=f"id-{i}", user_principal_name=f"user{i:05d}@fabrikam.example",
                      display_name=f"User Number {i}", sku_ids=(SPB,) if i % 4 else (SPB, E3),
                      department="Sales" if i % 2 else "Engineering", city="Leeds")
        for i in range(users))
    return TenantSnapshot(
        tenant_id=TENANT, run_id=run_id, collected_at=when,
        skus=(SkuCount(sku_id=SPB, sku_part_number="SPB", purchased=users, consumed=users),
              SkuCount(sku_id=E3, sku_part_number="ENTERPRISEPACK", purchased=users // 4 + 5,
                       consumed=users // 4 + (1 if users % 4 else 0))),
        users=people,
    )


def test_a_tenant_with_10000_users_round_trips(store: TableStore) -> None:
    repo = SnapshotRepository(store)
    snapshot = big_snapshot("20261125T020000Z-00000001", 10_000, datetime(2026, 11, 25, 2, tzinfo=UTC))
    repo.save(snapshot)
    assert repo.get(TENANT, snapshot.run_id) == snapshot
    assert repo.latest(TENANT) == snapshot
    history = list(repo.licence_history(TENANT, SPB))
    assert len(history) == 1
    assert history[0].assigned == 10_000
    assert history[0].users_truncated, "10,000 names cannot fit one property; the row says so"
    assert 0 < len(history[0].users) < 10_000


def test_history_keeps_every_day(store: TableStore) -> None:
    repo = SnapshotRepository(store)
    day1 = big_snapshot("20261124T020000Z-00000001", 8, datetime(2026, 11, 24, 2, tzinfo=UTC))
    day2 = big_snapshot("20261125T020000Z-00000002", 12, datetime(2026, 11, 25, 2, tzinfo=UTC))
    repo.save(day1)
    repo.save(day2)
    assert repo.get(TENANT, day1.run_id) == day1, "a new day never overwrites an older one"
    assert repo.latest(TENANT) == day2
    counts = [(h.run_id, h.assigned) for h in repo.licence_history(TENANT, SPB)]
    assert counts == [(day1.run_id, 8), (day2.run_id, 12)]
    small = next(h for h in repo.licence_history(TENANT, SPB) if h.run_id == day1.run_id)
    assert small.users == tuple(f"user{i:05d}@fabrikam.example" for i in range(8))
    assert not small.users_truncated


def test_a_snapshot_without_its_header_is_never_read(store: TableStore) -> None:
    repo = SnapshotRepository(store)
    table = store.table("snapshots")
    write_document(table, TENANT, "20261125T020000Z-00000009~doc", {"partial": True})
    assert repo.get(TENANT, "20261125T020000Z-00000009") is None
    assert repo.latest(TENANT) is None


def test_a_torn_document_is_detected(store: TableStore) -> None:
    table = store.table("docs")
    ref = write_document(table, "p", "doc", {"users": [f"u{i}" * 50 for i in range(40_000)]})
    assert ref.parts > 1
    table.delete_entity("p", "doc~00001")
    with pytest.raises(StoreError, match="parts"):
        read_document(table, ref)


CONFIG = {"psaConnections": [{"name": "cw", "type": "connectwise",
                              "url": "https://cw.example.com/v4_6_release/apis/3.0", "companyId": "msp",
                              "publicKey": {"setting": "CW_PUBLIC_KEY"},
                              "privateKey": {"setting": "CW_PRIVATE_KEY"},
                              "clientId": "12345678-1234-1234-1234-123456789012"}],
          "tenants": [{"tenantId": TENANT, "name": "Fabrikam"}]}


def test_configuration_versions_and_history(store: TableStore) -> None:
    repo = ConfigRepository(store)
    empty, none = repo.current()
    assert empty == SeatSyncConfig()
    assert none is None
    first = repo.save(parse_config(CONFIG), "alice@msp.example", "initial import", expected=None)
    config, version = repo.current()
    assert config == parse_config(CONFIG)
    assert version is not None
    assert version.version_id == first.version_id
    renamed = config.model_copy(update={"tenants": (TenantConfig(tenant_id=TENANT, name="Fabrikam Ltd"),)})
    second = repo.save(renamed, "bob@msp.example", "rename", expected=version)
    assert repo.current()[0].tenants[0].name == "Fabrikam Ltd"
    assert [(v.number, v.saved_by, v.comment) for v in repo.history()] == [
        (1, "alice@msp.example", "initial import"), (2, "bob@msp.example", "rename")]
    assert repo.version(first.version_id) == parse_config(CONFIG)
    assert second.number == 2


def test_the_configuration_is_read_whole_only_when_its_version_changed(store: TableStore) -> None:
    """Each activity reads the current configuration: one request while its version stays current
    (versions never change once saved), the whole document again after another one was saved."""
    ConfigRepository(store).save(parse_config(CONFIG), "alice", expected=None)
    activity_host = ConfigRepository(store)
    first, version = activity_host.current()
    assert store.requests is not None
    before = store.requests.count
    again, same = activity_host.current()
    assert store.requests.count - before == 1, "only the pointer to the current version is read"
    assert again is first and same == version
    renamed = first.model_copy(update={"tenants": (TenantConfig(tenant_id=TENANT, name="Fabrikam Ltd"),)})
    ConfigRepository(store).save(renamed, "bob", expected=version)  # saved elsewhere (the API, the CLI)
    assert activity_host.current()[0].tenants[0].name == "Fabrikam Ltd"


T = TypeVar("T")


def together(count: int, work: Callable[[], T]) -> list[T]:
    """What ``work`` answered in each of ``count`` threads released at the same moment (the
    activities a process starts together)."""
    start = threading.Barrier(count)
    found: list[T] = []

    def run() -> None:
        start.wait()
        found.append(work())

    errors = in_threads(run, count)
    assert not errors, errors
    return found


def test_the_activities_a_new_process_starts_together_parse_the_configuration_once(
        store: TableStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that joins a run starts several activities at once; each reads the pointer to
    the current version, and the first one's parse serves them all (a parse of 3,000 tenants
    takes a second or two: here every parse is made that slow)."""
    from shared.adapters import config_store
    from shared.config.schema import parse_stored_config as parse

    parses: list[str] = []

    def slow_parse(text: bytes | str, source: str = "configuration") -> SeatSyncConfig:
        parses.append(source)
        threading.Event().wait(0.3)
        return parse(text, source)

    monkeypatch.setattr(config_store, "parse_stored_config", slow_parse)
    ConfigRepository(store).save(parse_config(CONFIG), "alice", expected=None)
    joined = ConfigRepository(store)
    assert store.requests is not None
    before = store.requests.by_kind()
    found = together(8, lambda: joined.current()[0])
    reads = store.requests.by_kind() - before
    assert reads == {f"GET {store.prefix}config": 8 + 1}, "eight pointers, one document"
    assert len(found) == 8 and all(f is found[0] for f in found) and found[0] == parse_config(CONFIG)
    assert len(parses) == 1


def test_a_stale_edit_is_refused_and_changes_nothing(store: TableStore) -> None:
    repo = ConfigRepository(store)
    repo.save(parse_config(CONFIG), "alice", expected=None)
    _, read_by_bob = repo.current()
    repo.save(SeatSyncConfig(), "carol", "cleared", expected=read_by_bob)
    with pytest.raises(ConflictError):
        repo.save(parse_config(CONFIG), "bob", "stale", expected=read_by_bob)
    assert repo.current()[0] == SeatSyncConfig()


def test_concurrent_saves_cannot_both_win(store: TableStore) -> None:
    repo = ConfigRepository(store)
    repo.save(SeatSyncConfig(), "setup", expected=None)
    _, base = repo.current()
    results: list[str] = []

    def save(who: str) -> None:
        try:
            ConfigRepository(store).save(parse_config(CONFIG), who, expected=base)
            results.append("saved")
        except ConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=save, args=(f"user{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("saved") == 1
    assert results.count("conflict") == 3
    assert len(repo.history()) == 2


@pytest.mark.parametrize("stored", ["Succeeded", "done", "", 3])
def test_a_stored_run_status_no_run_can_have_is_an_error_naming_the_run(store: TableStore, stored: object) -> None:
    runs = RunRepository(store)
    request = SyncRequest(run_id="20261125T020000Z-0000000b", trigger="manual", requested_by="alice",
                          requested_at=datetime(2026, 11, 25, 2, tzinfo=UTC))
    runs.start(request)
    assert runs.status(request.run_id) == "running"
    assert runs.status("20261125T020000Z-ffffffff") is None
    store.table("runs").upsert_entity({"PartitionKey": "runs", "RowKey": request.run_id, "Status": stored})
    with pytest.raises(StoreError, match=f"run {request.run_id} has the stored status {stored!r}, which is none of "
                                         "attention, died, failed, partial, running, succeeded"):
        runs.status(request.run_id)
    with pytest.raises(StoreError, match=request.run_id):
        runs.run_page(10)


def test_run_records(store: TableStore) -> None:
    runs = RunRepository(store)
    now = datetime(2026, 11, 25, 2, tzinfo=UTC)
    request = SyncRequest(run_id="20261125T020000Z-0000000a", trigger="manual", requested_by="alice",
                          requested_at=now, dry_run=True, tenants=[TENANT])
    runs.start(request)
    assert runs.request(request.run_id) == request
    assert runs.status(request.run_id) == "running"
    recorded = StartedRun(run_id=request.run_id, tenants=[TenantWork(tenant_id=TENANT, name="F", guard="why")],
                          gdap_not_configured=[TenantWork(tenant_id=E3, name=f"n{i}" * 40) for i in range(1500)],
                          partner_errors={"second": "HTTP 403"}, tenants_total=1)
    runs.record_started(recorded)
    started = runs.started(request.run_id)
    assert started == recorded  # parsed from its JSON text straight into the models
    assert len(started.gdap_not_configured) == 1500
    runs.record_tenant(request.run_id, TenantOutcome(tenant_id=TENANT, name="F", status="ok", sku_count=2))
    change = PlannedChange(change_id="c1", kind=ChangeKind.SET_QUANTITY, tenant_id=TENANT, company_id="19",
                           psa="cw", agreement_id="100", line_id="500", sku_id=SPB, old_quantity=None,
                           new_quantity=3, reason="r")
    runs.record_changes(request.run_id, [change])
    runs.update_change(request.run_id, change.__class__(**{**change.__dict__, "status": ChangeStatus.FAILED}),
                       "HTTP 500")
    [(stored, error)] = runs.changes(request.run_id)
    assert stored.status == ChangeStatus.FAILED
    assert stored.old_quantity is None
    assert error == "HTTP 500"
    rows = runs.tenant_rows(request.run_id)
    assert rows[0]["outcome"].sku_count == 2
    assert runs.latest_run_id() == request.run_id
    assert runs.finished_at(request.run_id) is None
    assert now + timedelta(0) == runs.request(request.run_id).requested_at  # type: ignore[union-attr]


def test_the_largest_count_seatsync_accepts_is_what_table_storage_stores(store: TableStore) -> None:
    """The licence history's counts are Int32 properties: MAX_COUNT is stored, one more would be
    refused by the SDK, so the bound checked where Graph is read is exactly the store's."""
    from azure.data.tables import UpdateMode

    from shared.domain.model import MAX_COUNT

    when = datetime(2026, 11, 25, 2, tzinfo=UTC)
    sku = SkuCount(sku_id="cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", sku_part_number="SPB", purchased=MAX_COUNT,
                   consumed=MAX_COUNT)
    snapshots = SnapshotRepository(store)
    snapshots.save(TenantSnapshot(tenant_id="t1", run_id="r1", collected_at=when, skus=(sku,), users=()))
    [history] = snapshots.licence_history("t1")
    assert (history.purchased, history.assigned) == (MAX_COUNT, MAX_COUNT)
    with pytest.raises(TypeError, match=r"out of range|too large"):
        store.table("licencecounts").upsert_entity({"PartitionKey": "t1", "RowKey": "x", "Assigned": MAX_COUNT + 1},
                                                   mode=UpdateMode.REPLACE)


def test_the_activities_of_one_run_renew_its_lease_at_once_without_losing_it(store: TableStore) -> None:
    runs, decisions = RunRepository(store), DecisionRepository(store)
    run_id, other = "20261125T020000Z-0000000a", "20261125T020000Z-0000000b"
    assert acquire(runs, decisions, run_id, timedelta(minutes=5)).refused is None
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def renew() -> None:
        barrier.wait()
        results.append(runs.renew_lease(run_id, datetime.now(UTC), timedelta(minutes=5)))

    threads = [threading.Thread(target=renew) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 8, "a race with an activity of the same run is no lost lease"
    assert runs.renew_lease(other, datetime.now(UTC), timedelta(minutes=5)) is False, "only the holder renews"
    lease = runs.lease()
    assert lease is not None and lease.run_id == run_id
    assert runs.clear_lease(lease) and runs.renew_lease(run_id, datetime.now(UTC), timedelta(minutes=5)) is False


def test_the_activities_of_one_run_in_one_process_renew_its_lease_once_per_interval(store: TableStore) -> None:
    """Eight activities of a run starting at once in one process renew its lease once, not eight
    times. When the lease is cleared, an activity that writes to a PSA finds it lost when it
    starts, and then every activity of the run in the process stops."""
    runs, decisions = RunRepository(store), DecisionRepository(store)
    run_id = "20261125T020000Z-0000000c"
    assert acquire(runs, decisions, run_id, timedelta(minutes=5)).refused is None
    moment = [datetime.now(UTC)]
    renewal = LeaseRenewal(runs, run_id, timedelta(minutes=5), clock=lambda: moment[0], interval=3600)
    assert store.requests is not None
    before = store.requests.by_kind()
    barrier = threading.Barrier(8)
    heartbeats = [Heartbeat(renewal) for _ in range(8)]

    def start(heartbeat: Heartbeat) -> None:
        barrier.wait()
        heartbeat.__enter__()
        heartbeat.check()

    threads = [threading.Thread(target=start, args=(h,)) for h in heartbeats]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = store.requests.by_kind() - before
    assert sorted(sent.items()) == [(f"GET {store.prefix}runs", 1), (f"PATCH {store.prefix}runs", 1)], \
        "one renewal (a read and a write) for the eight activities"
    lease = runs.lease()
    assert lease is not None and lease.renewed == moment[0]

    assert runs.clear_lease(lease)
    moment[0] += timedelta(seconds=1)
    with Heartbeat(renewal) as collecting:
        assert not collecting.lost, "an activity that does not write shares the renewal of a second ago"
        with Heartbeat(renewal, writes=True) as pushing, pytest.raises(LeaseLostError):
            pushing.check()
        for heartbeat in [collecting, *heartbeats]:
            assert heartbeat.lost
            with pytest.raises(LeaseLostError):
                heartbeat.check()
    for heartbeat in heartbeats:
        heartbeat.__exit__(None, None, None)


def test_a_check_renews_a_lease_not_renewed_for_half_its_length_and_finds_it_cleared(store: TableStore) -> None:
    runs, decisions = RunRepository(store), DecisionRepository(store)
    run_id = "20261125T020000Z-0000000d"
    assert acquire(runs, decisions, run_id, timedelta(minutes=5)).refused is None
    moment = [datetime.now(UTC)]
    renewal = LeaseRenewal(runs, run_id, timedelta(minutes=5), clock=lambda: moment[0], interval=3600)
    with Heartbeat(renewal) as heartbeat:
        heartbeat.check()
        lease = runs.lease()
        assert lease is not None and runs.clear_lease(lease)
        moment[0] += timedelta(minutes=1)
        heartbeat.check()  # renewed a minute ago: the clear is seen at the next renewal
        moment[0] += timedelta(minutes=2)
        with pytest.raises(LeaseLostError):
            heartbeat.check()
        assert heartbeat.lost


def test_a_runs_unlinked_licences_are_read_without_its_reconciliation(store: TableStore) -> None:
    from shared.adapters.run_store import UnlinkedLicence
    from shared.adapters.tables import write_committed_document

    runs = RunRepository(store)
    run_id = "20261125T020000Z-0a0b0c0d"
    visio = UnlinkedLicence("t1", "Fabrikam", "c5928f49-12ba-48f7-ada3-0d743a3601d5", "VISIOCLIENT",
                            "Visio Plan 2", 3, 2)
    runs.record_reconciliation(run_id, "t1", [], [visio])
    runs.record_reconciliation(run_id, "t2", [], [])
    assert runs.unlinked(run_id) == [visio] == runs.reconciliation(run_id)[1]
    kept = [e for e in store.table("runlines").query_entities("PartitionKey eq @pk", parameters={"pk": run_id})
            if "~" not in str(e["RowKey"])]
    assert sorted(str(e.get("Unlinked")) for e in kept) == ["[]", '[{"tenant_id":"t1","tenant_name":"Fabrikam",'
                                                                 '"sku_id":"c5928f49-12ba-48f7-ada3-0d743a3601d5",'
                                                                 '"sku_part_number":"VISIOCLIENT","label":"Visio '
                                                                 'Plan 2","purchased":3,"assigned":2}]']
    # a tenant recorded before the list was kept beside its document: the documents are read
    write_committed_document(store.table("runlines"), run_id, "t3~lines",
                             {"rows": [], "unlinked": [{**visio.__dict__, "tenant_id": "t3"}]},
                             {"PartitionKey": run_id, "RowKey": "t3"})
    assert runs.unlinked(run_id) == runs.reconciliation(run_id)[1] and len(runs.unlinked(run_id)) == 2


def test_a_run_recorded_but_not_yet_holding_the_lease_is_starting_not_dead(store: TableStore) -> None:
    """``start_run`` records the request before it takes the lease: a report read in between
    (the dashboard's page right after "Sync now") says running, and died only once the run has
    had ``STARTING_GRACE`` to take the lease and record its start."""
    runs = RunRepository(store)
    requested = datetime(2026, 11, 25, 2, tzinfo=UTC)
    request = SyncRequest(run_id="20261125T020000Z-0000000c", trigger="manual", requested_by="alice",
                          requested_at=requested, dry_run=True, tenants=[TENANT])
    runs.start(request)
    assert liveness(runs, request.run_id, requested + timedelta(seconds=1)) == ("running", None)
    state, why = liveness(runs, request.run_id, requested + STARTING_GRACE)
    assert state == "died" and why and "holds no lease" in why
    runs.record_started(StartedRun(run_id=request.run_id, tenants=[TenantWork(tenant_id=TENANT, name="F")]))
    assert liveness(runs, request.run_id, requested + timedelta(seconds=1))[0] == "died", \
        "it recorded its start and holds no lease: it is not starting"


def test_the_pushes_that_start_together_read_the_run_s_shared_psa_reads_once(store: TableStore) -> None:
    """Every push of a run plans from the run's shared products and capabilities; the pushes a
    process starts at the same moment wait for the first one's read of them. The agreements are
    not in it: each push reads its own."""
    from shared.adapters.shared_reads_store import ConnectionReads, SharedReadsRepository
    from shared.domain.model import Agreement

    run_id = "20261202T040000Z-0001"
    agreements = tuple(Agreement("connectwise", str(5000 + i), str(100 + i), f"Managed {i}") for i in range(300))
    shared = SharedReadsRepository(store)
    shared.save(run_id, [ConnectionReads("connectwise", frozenset(a.agreement_id for a in agreements), frozenset(),
                                         agreements)])
    assert store.requests is not None
    before = store.requests.by_kind()
    reader = SharedReadsRepository(store)  # another process's
    found = together(8, lambda: reader.load(run_id))
    reads = store.requests.by_kind() - before
    assert reads == {f"GET {store.prefix}psareads": 1}, "one read of the run's partition, for all eight"
    assert len(found) == 8 and all(f is found[0] for f in found)
    header = found[0].connections["connectwise"]
    assert header.in_rows and header.agreements == () and header.asked_agreements == frozenset()

    # once the run's pushes are done (finishing the run), the process lets them go
    reader.forget("20261201T040000Z-0001")  # another run's: kept
    assert reader.load(run_id) is found[0]
    reader.forget(run_id)
    before = store.requests.by_kind()
    again = reader.load(run_id)
    assert again is not found[0] and again == found[0]
    assert store.requests.by_kind() - before == {f"GET {store.prefix}psareads": 1}, "read again when asked again"


def test_a_push_reads_only_its_own_tenants_shared_agreements(store: TableStore) -> None:
    """The run's agreements are kept a row each: a push reads those its tenants need, 14 to a
    query. An agreement asked and not found reads back as not existing; one the run did not ask
    for is left out (the push then reads the PSA). Ids a row key refuses are kept hashed."""
    from shared.adapters.shared_reads_store import ConnectionReads, SharedReadsRepository, agreement_key
    from shared.domain.model import Agreement

    run_id = "20261202T040000Z-0002"
    odd = "A/1#?\\x"  # characters a row key refuses
    agreements = (*(Agreement("connectwise", str(5000 + i), str(100 + i), f"Managed {i}",
                              start_date=date(2026, 1, 1)) for i in range(250)),
                  Agreement("connectwise", odd, "7", "Odd"))
    asked = frozenset({*(a.agreement_id for a in agreements), "9999"})  # 9999: asked, not found
    shared = SharedReadsRepository(store)
    assert store.requests is not None
    before = store.requests.by_kind()
    shared.save(run_id, iter([ConnectionReads("connectwise", asked, frozenset(), agreements),
                              ConnectionReads("autotask", frozenset({"1"}), frozenset(), error="unreachable")]))
    written = store.requests.by_kind() - before
    assert written[f"POST $batch {store.prefix}psareads"] == 3 + 2, "252 rows in 3 transactions, then the documents"
    assert "/" not in agreement_key("connectwise", odd) and agreement_key("connectwise", odd).startswith("connectwise~")

    run = SharedReadsRepository(store).load(run_id)
    assert set(run.connections) == {"connectwise", "autotask"} and run.connections["autotask"].error == "unreachable"
    header = run.connections["connectwise"]
    wanted = {*(str(5000 + i) for i in range(0, 200, 10)), "9999", "4242", odd}  # 20 asked, one not asked
    before = store.requests.by_kind()
    rows = run.agreements(header, wanted)
    assert store.requests.by_kind() - before == {f"GET {store.prefix}psareads": 2}, "23 ids: two queries of 14"
    assert set(rows) == wanted - {"4242"} and rows["9999"] is None
    assert rows["5010"] == agreements[10] and rows[odd] == agreements[-1]
    assert len({id(a.start_date) for a in rows.values() if a is not None and a.start_date}) == 1
    assert run.agreements(header, set()) == {}


def test_shared_reads_written_before_agreements_had_rows_are_read_as_they_were(store: TableStore) -> None:
    """A run in flight when this version is installed shared its agreements in the connection's
    document; its pushes still find them there."""
    from shared.adapters.shared_reads_store import ConnectionReads, SharedReadsRepository, reads_to_json
    from shared.adapters.tables import write_committed_document
    from shared.domain.model import Agreement

    run_id = "20261202T040000Z-0003"
    agreements = (Agreement("connectwise", "5000", "100", "Managed"),)
    old = ConnectionReads("connectwise", frozenset({"5000", "5001"}), frozenset(), agreements)
    write_committed_document(store.table("psareads"), run_id, "connectwise~doc", reads_to_json(old),
                             {"PartitionKey": run_id, "RowKey": "connectwise"})
    run = SharedReadsRepository(store).load(run_id)
    header = run.connections["connectwise"]
    assert not header.in_rows and header == old
    assert run.agreements(header, {"5000", "5001", "5002"}) == {"5000": agreements[0], "5001": None}


def test_the_activities_that_start_together_read_what_the_run_set_out_to_do_once(store: TableStore) -> None:
    """Each push and chunk of a run reads the run's tenants to do (``Services.started``), once
    per process: the activities that start together wait for the first one's read."""
    from shared.adapters.secrets import SecretResolver
    from shared.bootstrap import Services
    from shared.settings import Settings

    runs = RunRepository(store)
    request = SyncRequest(run_id="20261202T040000Z-00000002", trigger="manual", requested_by="alice",
                          requested_at=datetime(2026, 12, 2, 4, tzinfo=UTC))
    runs.start(request)
    runs.record_started(StartedRun(run_id=request.run_id, tenants=[
        TenantWork(tenant_id=f"aaaaaaaa-0000-4000-8000-{i:012d}", name=f"Customer {i}") for i in range(400)]))
    services = Services(Settings(sync_schedule="0 0 2 * * *"), store=store, secrets=SecretResolver({}))
    assert store.requests is not None
    before = store.requests.by_kind()
    found = together(8, lambda: services.started(request.run_id))
    once = store.requests.by_kind() - before
    assert len(found) == 8 and all(f is found[0] for f in found) and found[0] is not None
    assert len(found[0].tenants) == 400
    before = store.requests.by_kind()
    assert RunRepository(store).started(request.run_id) == found[0]
    assert once == store.requests.by_kind() - before, "eight activities, the requests of one read"

    # once the run is over (it has been told of), the process keeps none of its tenants; letting
    # go asks nothing of the store (it may be what failed the run)
    before = store.requests.by_kind()
    services.forget_run("20261201T040000Z-00000001")  # another run's: kept
    services.forget_shared_reads(request.run_id)  # this process never read them
    assert store.requests.by_kind() - before == {}
    assert services.started(request.run_id) is found[0]
    services.forget_run(request.run_id)
    assert services._started is None
    again = services.started(request.run_id)
    assert again is not found[0] and again == found[0]


def test_the_value_of_held_decreases_counts_those_with_no_known_price_apart(store: TableStore) -> None:
    """The overview's held decreases are valued at the change's price, else the line's in the last
    run: one with neither is counted apart (the page says how many), not valued at zero."""
    from decimal import Decimal

    from shared.services.overview import held_value

    decisions = DecisionRepository(store)

    def decrease(change_id: str, line: str, price: str | None) -> PlannedChange:
        return PlannedChange(change_id=change_id, kind=ChangeKind.SET_QUANTITY, tenant_id=TENANT, company_id="19",
                             psa="cw", agreement_id="100", line_id=line, sku_id=SPB, old_quantity=25,
                             new_quantity=18, reason="above the safety limit", mapping_key=f"m{line}",
                             hold_key=f"h{change_id}", unit_price=None if price is None else Decimal(price))

    at = datetime(2026, 11, 25, 2, tzinfo=UTC)
    for change in (decrease("c1", "500", "22.00"), decrease("c2", "501", None), decrease("c3", "502", None)):
        assert decisions.hold(change, "20261125T020000Z-0000000a", at)
    assert held_value(decisions, {("cw", "100", "501"): Decimal("4.00")}) == (Decimal("182.00"), 3, 1)
    assert held_value(decisions) == (Decimal("154.00"), 3, 2)


def test_a_run_s_billing_changes_read_for_its_money_share_their_prices_as_written(store: TableStore) -> None:
    """Notifying a large run reads each billing change's mapping, kind, status and price
    (``line_changes``); thousands of changes set a few prices, held once each, and a price keeps
    the digits it was written with."""
    from decimal import Decimal

    from shared.services.reconcile import line_changes

    runs = RunRepository(store)
    run_id = "20261125T020000Z-0000000c"

    def change(n: int, price: str | None, tenant: str = TENANT) -> PlannedChange:
        return PlannedChange(change_id=f"c{n}", kind=ChangeKind.SET_DETAILS if price else ChangeKind.SET_QUANTITY,
                             tenant_id=tenant, company_id="19", psa="cw", agreement_id="100", line_id=str(500 + n),
                             sku_id=SPB, old_quantity=1, new_quantity=2, reason="r", mapping_key=f"m{n}",
                             unit_price=None if price is None else Decimal(price))

    other = "bbbbbbbb-0000-4000-8000-000000000002"
    runs.record_changes(run_id, [change(1, "12.50"), change(2, "12.50", other), change(3, "12.5"), change(4, None)])
    found = line_changes(runs, run_id)
    by_key = {c.mapping_key: c for changes in found.values() for c in changes}
    assert sorted(found) == sorted([TENANT, other]) and len(by_key) == 4
    assert by_key["m1"].unit_price is by_key["m2"].unit_price and str(by_key["m1"].unit_price) == "12.50"
    assert str(by_key["m3"].unit_price) == "12.5" and by_key["m4"].unit_price is None


def test_a_run_s_tenants_are_kept_in_rows_and_read_a_range_at_a_time(store: TableStore) -> None:
    """The start writes each tenant's work to a row as it makes it (a transaction of 100 at a
    time, never a list of every tenant); a chunk reads its range, in the run's order."""
    runs = RunRepository(store)
    run_id = "20261203T040000Z-00000003"
    works = [TenantWork(tenant_id=f"aaaaaaaa-0000-4000-8000-{i:012d}", name=f"Customer {i}",
                        guard="ended" if i % 97 == 0 else None, partner="second" if i % 2 else None)
             for i in range(250)]
    large = TenantWork(tenant_id="bbbbbbbb-0000-4000-8000-000000000001", name="Groups galore",
                       group_ids=tuple(f"cccccccc-0000-4000-8000-{i:012d}" for i in range(1200)))
    works.append(large)  # 48,000 characters of JSON: over several properties of its row
    assert store.requests is not None
    before = store.requests.by_kind()
    made = (w for w in works)
    assert runs.record_started_tenants(run_id, made) == 251
    assert store.requests.by_kind() - before == {f"POST $batch {store.prefix}runs": 3}, "transactions of 100"
    started = StartedRun(run_id=run_id, tenants=[], tenants_total=251, tenants_stored=True,
                         guarded_tenants=[w for w in works if w.guard])
    runs.record_started(started)
    recorded = runs.started(run_id)
    assert recorded == started and recorded.tenants == [] and recorded.total == 251
    assert [w.tenant_id for w in recorded.guarded()] == [works[i].tenant_id for i in (0, 97, 194)]
    assert list(runs.iter_started_tenants(recorded)) == works
    assert list(runs.iter_started_tenants(recorded, 100, 110)) == works[100:110]
    assert list(runs.iter_started_tenants(recorded, 240, 300)) == works[240:], "the range ends at the count"
    assert list(runs.iter_started_tenants(recorded, 300, 310)) == []

    # a start run again with fewer tenants writes its positions over: what lies past its count is
    # not read
    assert runs.record_started_tenants(run_id, iter([*works[:4], large])) == 5
    assert runs.record_started_tenants(run_id, iter(works[:5])) == 5, "a row written over keeps no earlier part"
    shorter = started.model_copy(update={"tenants_total": 5, "guarded_tenants": [works[0]]})
    runs.record_started(shorter)
    assert list(runs.iter_started_tenants(runs.started(run_id) or shorter)) == works[:5]

    # a row that went missing is an error naming the run and the position, never a shorter list
    runs._runs.delete_entity(run_id, "work~0000003")
    with pytest.raises(StoreError, match="set out to do 5 tenants, but the row of its tenant at position 3 is missing"):
        list(runs.iter_started_tenants(shorter))
    runs._runs.delete_entity(run_id, "work~0000004")
    with pytest.raises(StoreError, match="the row of its tenant at position 4 is missing"):
        list(runs.iter_started_tenants(shorter, 4))


def test_a_run_recorded_with_its_tenants_listed_is_read_as_before(store: TableStore) -> None:
    """A run started before its tenants were kept in rows lists them in its record: they are read
    from there, and its guarded tenants are those with a guard."""
    runs = RunRepository(store)
    run_id = "20261203T040000Z-00000004"
    works = [TenantWork(tenant_id=f"aaaaaaaa-0000-4000-8000-{i:012d}", name=f"Customer {i}",
                        guard="vanished" if i == 3 else None) for i in range(8)]
    runs.record_started(StartedRun(run_id=run_id, tenants=works))
    recorded = runs.started(run_id)
    assert recorded is not None and not recorded.tenants_stored and recorded.total == 8
    assert list(runs.iter_started_tenants(recorded)) == works
    assert list(runs.iter_started_tenants(recorded, 2, 4)) == works[2:4]
    assert recorded.guarded() == [works[3]]
