"""The fault matrix: faults a run can meet, driven on Azurite and the emulators, and what each
leaves behind compared with a clean run of the same sample MSP: what the PSA bills, the run
report, the write ledger, the audit trail and the alert a person receives.

Write faults (``test_a_fault_leaves_what_a_clean_run_leaves``). The scenario is the sample MSP's
Fabrikam (a new line of 26 seats, written first, then a period record, a prorate line, a
quantity raised, one lowered, a new invoice description): one tenant, six writes, synced once
without a fault for the baseline (``clean_fabrikam``). Each case runs it with a fault, then
whatever follows (usually the next run), and must leave what the clean run leaves:

- the PSA bills exactly what the clean run left (every line of every agreement, ids and
  timestamps aside): nothing written twice, nothing missing;
- every write the clean run made is reported written (``applied``, or ``recovered`` by the run
  that found it), recorded once in the ledger and audited once (``applied`` or ``recovered``);
- no write intent is left open and no run holds the lease;
- the runs the fault hit say what happened (failed, died, writes recorded late, alerted)
  instead of "succeeded".

The faults: a PSA answer held past the client's timeout (the emulators' ``timeout`` fault),
Table Storage refusing connections for a while (a TCP proxy in front of Azurite,
``tests/storage_proxy.py``) for three lengths of time, a ``seatsync sync`` process killed
(SIGKILL) at four points of the push (paused there by the test hook ``SEATSYNC_PAUSE_AT``,
``shared/checkpoints.py``) and re-run at once, and a manual sync over HTTP while a command-line
run holds the lease. To add one: a ``case_<what>(world)`` that makes the fault happen, runs what
follows (``world.sync()`` in process, ``world.cli_paused_at(point)`` as a process) and returns
the ids of the runs it made, oldest first; then an entry in ``CASES`` with the statuses those
runs end with.

Impossible values (an impossible count from Graph, an impossible quantity from the PSA): the
whole sample MSP with one fault injected, its ``Aftermath`` compared with the clean run's
(``clean``): whatever the fault touched is named in the report and alerted, nothing of it is
lowered or half-written, and everything else is exactly as in the clean run. To add a case:
inject the fault (an emulator fault rule, a wrapped adapter), run, and compare with ``clean``
using the helpers of that section.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from local_runner.azurite import Azurite
from shared import checkpoints
from shared.adapters.tables import TableStore
from shared.bootstrap import default_psa_factory, set_services
from shared.domain import planning
from shared.errors import RunNotRecordedError
from shared.services.report import build_report
from tests.http_support import DurableHost, call, http_routes
from tests.integration.msp import FABRIKAM, LITWARE, NOW, Msp, running_msp, seatsync_paused_at
from tests.notification_support import texts
from tests.storage_proxy import TcpProxy

pytestmark = pytest.mark.integration

WRITTEN = ("applied", "recovered")


# --------------------------------------------------------------------------- what a run leaves behind


@dataclass(frozen=True)
class Outcome:
    """What runs left behind, in terms that do not depend on ids the PSA assigns or on time."""

    psa: list[str]
    reported: set[tuple[str, str]]  # (change id, kind) of every change a report says was written
    ledger: Counter[str]  # change id -> ledger rows (a row per change: 1)
    audited: Counter[str]  # change id -> 'applied' and 'recovered' audit events
    open_intents: int
    lease: str | None


def psa_lines(msp: Msp) -> list[str]:
    state = msp.emulators.emulator("connectwise").state()
    lines = []
    for agreement in state["agreements"]:
        for addition in agreement.get("additions", []):
            kept = {k: v for k, v in addition.items() if k not in ("id", "_info")}
            lines.append(json.dumps({"agreement": agreement["id"], **kept}, sort_keys=True, default=str))
    return sorted(lines)


def outcome(world: World) -> Outcome:
    services = world.msp.services
    reported = {(c["changeId"], c["kind"]) for run_id in world.run_ids
                for c in build_report(services.runs, run_id)["changes"] if c["status"] in WRITTEN}
    ledger = Counter(e.change_id for e in services.decisions.ledger(FABRIKAM))
    audited = Counter(e.change_id for e in services.decisions.audit_trail(FABRIKAM) if e.event in WRITTEN)
    lease = services.runs.lease()
    return Outcome(psa_lines(world.msp), reported, ledger, audited, len(services.decisions.intents()),
                   lease.run_id if lease else None)


# --------------------------------------------------------------------------- a world per case


@dataclass
class World:
    """One case's emulators, store (through a proxy that can refuse connections) and runs."""

    msp: Msp
    azurite: Azurite
    proxy: TcpProxy
    prefix: str
    tmp: Path
    run_ids: list[str] = field(default_factory=list)
    sleeps: int = 0
    on_sleep: Callable[[int], None] | None = None

    def sync(self) -> dict[str, Any]:
        report = self.msp.sync(tenants=[FABRIKAM])
        self.run_ids.append(report["runId"])
        return report

    def cli_env(self, **extra: str) -> dict[str, str]:
        return {**self.msp.emulators.environment(),
                "SEATSYNC_STORAGE_CONNECTION_STRING": self.azurite.connection_string,
                "SEATSYNC_TABLE_PREFIX": self.prefix, "SEATSYNC_CLOCK": NOW.isoformat(), **extra}

    @contextmanager
    def cli_paused_at(self, point: str) -> Iterator[subprocess.Popen[str]]:
        """A ``seatsync sync`` process of the scenario, paused when it reaches ``point``; it goes
        on when the block ends (unless killed in it)."""
        with seatsync_paused_at(point, ["sync", "--tenant", FABRIKAM, "--json", "--quiet"], self.cli_env(),
                                self.tmp) as process:
            self.run_ids.append(self.msp.services.runs.latest_run_id() or "")
            yield process


@pytest.fixture(scope="module")
def clean_fabrikam(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The baseline of the write faults: Fabrikam synced once, without a fault."""
    with make_world(azurite, tmp_path_factory.mktemp("clean")) as world:
        report = world.sync()
        assert report["status"] == "succeeded", report["error"]
        baseline = outcome(world)
    kinds = Counter(kind for _, kind in baseline.reported)
    assert kinds["create-line"] == 1 and kinds["set-quantity"] >= 2 and len(baseline.reported) >= 5
    assert '"quantity": 26' in " ".join(baseline.psa), "the new line of 26 seats is billed"
    return baseline


@contextmanager
def make_world(azurite: Azurite, tmp: Path, read_timeout: float | None = None) -> Iterator[World]:
    proxy = TcpProxy(azurite.port)
    prefix = "f" + secrets.token_hex(5)
    # no retries inside the SDK: a refused connection fails at once and SeatSync's own retries
    # (whose waits the world counts) decide how long an outage is ridden out
    store = TableStore(TableServiceClient.from_connection_string(proxy.connection_string, retry_total=0), prefix)
    holder: dict[str, World] = {}

    def factory(msp: Msp) -> Any:
        return default_psa_factory(msp.services.settings, msp.services.secrets, lambda seconds: None,
                                   msp.services.clock, read_timeout=read_timeout)

    try:
        with running_msp(azurite, store, tmp, psa_factory=factory) as msp:
            world = World(msp, azurite, proxy, prefix, tmp)
            holder["world"] = world

            def sleep(seconds: float) -> None:
                world.sleeps += 1
                if world.on_sleep is not None:
                    world.on_sleep(world.sleeps)

            msp.services.retry_sleep = sleep
            yield world
    finally:
        proxy.restore()
        store.drop_all()
        proxy.close()


@pytest.fixture
def world(azurite: Azurite, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    with make_world(azurite, tmp_path, getattr(request, "param", None)) as made:
        yield made


# --------------------------------------------------------------------------- the cases


def case_psa_answer_lost_to_a_timeout(world: World) -> list[str]:
    """The PSA creates the 26-seat line (agreement 107) but holds its answer past the client's
    timeout."""
    world.msp.emulators.emulator("connectwise").faults.add(
        {"kind": "timeout", "path": "/agreements/107/additions$", "method": "POST", "times": 1, "delay": 2.5})
    report = world.sync()
    [created] = [c for c in report["changes"] if c["kind"] == "create-line"]
    assert created["status"] == "applied"
    assert "answer was lost" in created["reason"] and "ReadTimeout" in created["reason"]
    return world.run_ids


def case_storage_refuses_then_comes_back(world: World) -> list[str]:
    """Storage refuses connections right after the first PSA write; back after two retries."""
    world.on_sleep = lambda sleeps: world.proxy.restore() if sleeps == 2 else None
    with checkpoints.listening("after-psa-write", once(world.proxy.refuse)):
        world.sync()
    assert world.proxy.refusals == 1 and world.sleeps >= 2
    return world.run_ids


def case_storage_refuses_longer_than_the_bookkeeping_waits(world: World) -> list[str]:
    """Storage stays away through every bookkeeping retry: the push activity fails and is
    retried, and its second attempt finds the writes in the PSA. The tenant's intents were all
    stored before its first write, so its writes went on while storage was away; none of them
    could be recorded, and the retry recovers each one."""
    with checkpoints.listening("after-psa-write", once(world.proxy.refuse)), \
            checkpoints.listening("push-started", nth(2, world.proxy.restore)):
        report = world.sync()
    recovered = [c for c in report["changes"] if c["status"] == "recovered"]
    assert len(recovered) == 6, "the six writes made while storage was away"
    assert report["totals"]["changesRecovered"] == 6
    return world.run_ids


def case_storage_refuses_at_the_pushs_first_read(world: World) -> list[str]:
    """Storage refuses connections as the push activity starts (its first read is the
    run's shared PSA reads, the configuration being the one the run read moments ago): the read is
    retried like every other storage read, and the run goes on."""
    world.on_sleep = lambda sleeps: world.proxy.restore() if sleeps == 2 else None
    with checkpoints.listening("push-started", once(world.proxy.refuse)):
        report = world.sync()
    assert world.proxy.refusals >= 1 and world.sleeps >= 2
    assert report["status"] == "succeeded", report["error"]
    return world.run_ids


def case_storage_down_until_the_run_gives_up(world: World) -> list[str]:
    """Storage stays away through every attempt of the push: the run fails and says so (and a
    person is alerted); the next run records what the failed one wrote."""
    with checkpoints.listening("after-psa-write", once(world.proxy.refuse)), \
            checkpoints.listening("finish-run", world.proxy.restore):
        failed = world.sync()
    assert failed["status"] == "failed"
    # the run says why it failed, in one line naming storage and what to check
    assert failed["error"].startswith("Table Storage could not be reached, so the run stopped: check "
                                      "SEATSYNC_STORAGE_CONNECTION_STRING"), failed["error"]
    assert "\n" not in failed["error"] and "Errno" not in failed["error"]
    assert not [c for c in failed["changes"] if c["status"] in WRITTEN], "nothing is reported written unrecorded"
    sent = world.msp.emulators.emulator("teams").state()["posts"]
    assert any("Run failed" in json.dumps(post) for post in sent), "a person is told"
    again = world.sync()
    assert again["status"] == "succeeded"
    # its intents stored before its first write, the failed run made all six; none was recorded
    assert len([c for c in again["changes"] if c["status"] == "recovered"]) == 6, "the writes the failed run made"
    return world.run_ids


def case_storage_down_as_the_run_starts(world: World) -> list[str]:
    """Storage refuses connections as the run's first activity records the run: the run is
    recorded as failed once storage is back, says why in one line, and a person is alerted."""
    with checkpoints.listening("start-run", once(world.proxy.refuse)), \
            checkpoints.listening("finish-run", world.proxy.restore):
        failed = world.sync()
    assert failed["status"] == "failed"
    assert failed["error"].startswith("Table Storage could not be reached, so the run stopped: check "
                                      "SEATSYNC_STORAGE_CONNECTION_STRING"), failed["error"]
    assert failed["changes"] == [] and failed["totals"]["tenantsTotal"] == 0
    sent = world.msp.emulators.emulator("teams").state()["posts"]
    assert any("Run failed" in json.dumps(post) for post in sent), "a person is told"
    assert world.msp.services.runs.lease() is None, "the lease it may have taken is freed"
    world.sync()
    return world.run_ids


def killed_at(point: str, recovered: Callable[[list[tuple[str, int]]], bool]) -> Callable[[World], list[str]]:
    """A ``seatsync sync`` process killed (SIGKILL) at ``point``, then an immediate re-run;
    ``recovered`` judges the (kind, quantity) of the writes the re-run found and recorded."""

    def case(world: World) -> list[str]:
        with world.cli_paused_at(point) as process:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        dead = world.run_ids[-1]
        again = world.sync()  # at once: the dead process's lease does not make it wait
        assert again["tookOver"] is not None and dead in again["tookOver"] and "has ended" in again["tookOver"]
        found = sorted((c["kind"], c["newQuantity"]) for c in again["changes"] if c["status"] == "recovered")
        assert recovered(found), found
        died = build_report(world.msp.services.runs, dead)
        assert died["status"] == "died" and "has ended" in died["error"]
        assert not [c for c in died["changes"] if c["status"] == "planned"], "the dead run's changes are settled"
        posts = json.dumps(world.msp.emulators.emulator("teams").state()["posts"])
        assert "Writes recorded late" in posts or "died without finishing" in posts, "a person is told"
        return world.run_ids

    case.__name__ = f"case_killed_at_{point}"
    return case


def case_http_sync_while_a_command_line_run_holds_the_lease(world: World) -> list[str]:
    """A manual sync over HTTP while a ``seatsync sync`` process runs: 409 naming that run, and no
    orchestration started to fail later; the process then finishes as a clean run would."""
    [route] = [r for r in http_routes() if r.name == "sync_http"]
    host = DurableHost()
    try:
        with world.cli_paused_at("before-psa-write"):
            set_services(world.msp.services)
            try:
                response = call(route, "POST", body=b"{}", host=host)
            finally:
                set_services(None)
            assert response.status_code == 409
            assert json.loads(response.get_body())["runId"] == world.run_ids[-1]
            assert host.started == [], "no orchestration was started to fail later"
    finally:
        host.close()
    return world.run_ids


def once(action: Callable[[], None]) -> Callable[[], None]:
    return nth(1, action)


def nth(wanted: int, action: Callable[[], None]) -> Callable[[], None]:
    seen = [0]

    def listener() -> None:
        seen[0] += 1
        if seen[0] == wanted:
            action()

    return listener


@dataclass(frozen=True)
class Case:
    run: Callable[[World], list[str]]
    statuses: tuple[str, ...]  # of the runs the case made, oldest first
    read_timeout: float | None = None


CASES: dict[str, Case] = {
    "psa-answer-timeout": Case(case_psa_answer_lost_to_a_timeout, ("succeeded",), read_timeout=0.5),
    "storage-refuses-briefly": Case(case_storage_refuses_then_comes_back, ("succeeded",)),
    "storage-refuses-past-the-retries": Case(case_storage_refuses_longer_than_the_bookkeeping_waits, ("succeeded",)),
    "storage-refuses-as-the-push-starts": Case(case_storage_refuses_at_the_pushs_first_read, ("succeeded",)),
    "storage-down-for-the-run": Case(case_storage_down_until_the_run_gives_up, ("failed", "succeeded")),
    "storage-down-as-the-run-starts": Case(case_storage_down_as_the_run_starts, ("failed", "succeeded")),
    # the intent is stored, the PSA not called: nothing to recover, the write is made by the re-run
    "kill-9-after-the-intent": Case(killed_at("before-psa-write", lambda found: found == []), ("died", "succeeded")),
    # the new line of 26 seats is in the PSA, in no record: the re-run finds and records it
    "kill-9-after-the-first-psa-write": Case(killed_at("after-psa-write", lambda found: found == [("create-line", 26)]),
                                             ("died", "succeeded")),
    # every write made and read back, none recorded: all six are recovered
    "kill-9-after-the-read-back": Case(killed_at("after-read-back", lambda found: len(found) == 6),
                                       ("died", "succeeded")),
    # everything recorded, the run not finished: nothing to recover, the run is still found dead
    "kill-9-after-the-bookkeeping": Case(killed_at("after-bookkeeping", lambda found: found == []),
                                         ("died", "succeeded")),
    "http-and-cli-at-once": Case(case_http_sync_while_a_command_line_run_holds_the_lease, ("succeeded",)),
}


@pytest.mark.parametrize(("world", "case"), [(c.read_timeout, c) for c in CASES.values()], ids=list(CASES),
                         indirect=["world"])
def test_a_fault_leaves_what_a_clean_run_leaves(world: World, case: Case, clean_fabrikam: Outcome) -> None:
    clean = clean_fabrikam
    run_ids = case.run(world)
    runs = world.msp.services.runs
    assert [build_report(runs, run_id)["status"] for run_id in run_ids] == list(case.statuses)
    seen = outcome(world)
    assert seen.psa == clean.psa, "the PSA bills what a clean run leaves: nothing twice, nothing missing"
    assert seen.reported == clean.reported, "every write is reported written, by the run that made or found it"
    assert seen.ledger == clean.ledger, "every write is in the ledger, once"
    assert seen.audited == clean.audited, "every write is audited once, applied or recovered"
    assert (seen.open_intents, seen.lease) == (0, None), "no intent left open, no lease held"
    again = world.sync()
    assert not [c for c in again["changes"] if c["status"] in (*WRITTEN, "failed")], "nothing left to write"
    assert psa_lines(world.msp) == clean.psa


def test_a_run_that_storage_lets_neither_start_nor_be_recorded_says_so_in_one_line(world: World) -> None:
    with checkpoints.listening("start-run", once(world.proxy.refuse)), pytest.raises(RunNotRecordedError) as raised:
        world.sync()
    line = str(raised.value)
    assert line.startswith("Table Storage could not be reached, so the run could not be recorded: check "
                           "SEATSYNC_STORAGE_CONNECTION_STRING"), line
    assert "\n" not in line and line.count("SEATSYNC_STORAGE_CONNECTION_STRING") == 1
    world.proxy.restore()
    assert world.msp.services.runs.lease() is None
    assert world.sync()["status"] == "succeeded", "the next run is not held up by it"


def test_the_hook_that_pauses_a_run_acts_only_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    signal_file = tmp_path / "paused"
    monkeypatch.setenv("SEATSYNC_PAUSE_FILE", str(signal_file))
    monkeypatch.delenv("SEATSYNC_PAUSE_AT", raising=False)
    checkpoints.reached("after-psa-write")
    monkeypatch.setenv("SEATSYNC_PAUSE_AT", "after-read-back")
    checkpoints.reached("after-psa-write")
    assert not signal_file.exists(), "another point, or no point asked for: the run goes on"
    with pytest.raises(ValueError, match="unknown checkpoint"):
        checkpoints.reached("nowhere")
    calls: list[int] = []
    with checkpoints.listening("finish-run", lambda: calls.append(1)):
        checkpoints.reached("finish-run")
    checkpoints.reached("finish-run")
    assert calls == [1], "a listener hears its point while it listens, and only then"


# --------------------------------------------------------------------------- the whole sample MSP: helpers

EXCHANGE_P1 = "4b9405b0-7788-4568-add1-99614e613b69"
EXCHANGE_P1_LINE = 501  # Fabrikam's Exchange Online (Plan 1) line: 5 seats, lowered to 4 by a clean run
LITWARE_LINES = (550, 560)  # Litware's Business Premium lines (sales, engineering) on agreements 105, 106


@dataclass(frozen=True)
class Aftermath:
    """What a run leaves behind."""

    billed: dict[str, float]  # a ConnectWise addition (``line``) -> the quantity it bills now
    report: dict[str, Any]
    ledger: dict[str, set[tuple[str, str]]]  # tenant -> (change id, kind) of every write recorded
    audit: dict[str, list[tuple[str, str, str, int | None, int | None]]]  # tenant -> (event, kind, licence, ...)
    alerts: list[str]  # the texts of the Teams cards sent

    def changes(self, tenant_id: str | None = None, *, exclude: str | None = None) -> list[tuple[Any, ...]]:
        return sorted((c["tenantId"], c["changeId"], c["kind"], c["status"], c["oldQuantity"], c["newQuantity"])
                      for c in self.report["changes"]
                      if (tenant_id is None or c["tenantId"] == tenant_id) and c["tenantId"] != exclude)

    def tenant(self, tenant_id: str) -> dict[str, Any]:
        return next(t for t in self.report["tenants"] if t["tenantId"] == tenant_id)


def line(addition: dict[str, Any], existing: set[int]) -> str:
    """An addition's name across runs: its id when it was there before the run; for one the run
    created, its agreement and tag (deterministic, where created ids depend on the order of writes)."""
    if addition["id"] in existing:
        return str(addition["id"])
    return f"new on {addition['agreementId']}: {addition.get('serialNumber') or addition['product']['id']}"


def billed(msp: Msp, existing: set[int]) -> dict[str, float]:
    state = msp.emulators.emulator("connectwise").state()
    return {line({**a, "agreementId": agreement["id"]}, existing): a["quantity"]
            for agreement in state["agreements"] for a in agreement.get("additions", [])}


def aftermath(msp: Msp, store: TableStore, report: dict[str, Any], existing: set[int]) -> Aftermath:
    ledger: dict[str, set[tuple[str, str]]] = {}
    for entity in store.table("ledger").list_entities():
        ledger.setdefault(str(entity["PartitionKey"]), set()).add((str(entity["RowKey"]), str(entity.get("Kind"))))
    audit = {tenant.tenant_id: [(e.event, e.kind, e.licence, e.before, e.after)
                                for e in msp.services.decisions.audit_trail(tenant.tenant_id)]
             for tenant in msp.config.tenants}
    posts = msp.emulators.emulator("teams").state()["posts"]
    return Aftermath(billed(msp, existing), report, ledger, {k: v for k, v in audit.items() if v},
                     [text for post in posts for text in texts(post)])


def run_once(azurite: Azurite, store: TableStore, tmp: Path, faults: dict[str, list[dict[str, Any]]] | None = None
             ) -> tuple[Aftermath, dict[str, float]]:
    """Run the sample MSP once (with ``faults`` per emulator); its aftermath and the PSA before."""
    with running_msp(azurite, store, tmp) as msp:
        existing = set(msp.cw_quantities())
        before = billed(msp, existing)
        for section, rules in (faults or {}).items():
            msp.emulators.emulator(section).faults.add(rules)
        report = msp.sync()
        return aftermath(msp, store, report, existing), before


@pytest.fixture(scope="module")
def clean(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aftermath]:
    """The clean run every case is compared with."""
    store = TableStore(TableServiceClient.from_connection_string(azurite.connection_string), "cleanrun")
    try:
        yield run_once(azurite, store, tmp_path_factory.mktemp("clean"))[0]
    finally:
        store.drop_all()


def without(mapping: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != tenant_id}


# --------------------------------------------------------------------------- impossible values


@pytest.mark.parametrize(("field", "value", "shown"), [
    ("consumedUnits", 2**31, "consumedUnits is 2147483648, outside 0 to 2147483647 (subscribedSku SPB"),
    ("prepaidUnits.enabled", float("nan"), "prepaidUnits.enabled is nan, not a finite number"),
])
def test_an_impossible_count_from_graph_fails_that_tenant_only(
        field: str, value: Any, shown: str, clean: Aftermath, azurite: Azurite, store: TableStore,
        tmp_path: Path) -> None:
    fault = {"kind": "corrupt", "path": "subscribedSkus", "tenant": LITWARE, "set": {field: value}}
    after, before = run_once(azurite, store, tmp_path, {"graph": [fault]})

    litware = after.tenant(LITWARE)
    assert litware["status"] == "failed"
    assert shown in litware["error"] and LITWARE in litware["error"], "the tenant, the field and the value"
    assert after.report["status"] == "partial"
    # the PSA: Litware's lines as before the run, every other line as the clean run left it
    lines = {str(n) for n in LITWARE_LINES} | {k for k in clean.billed if k.startswith(("new on 105:",
                                                                                        "new on 106:"))}
    assert {k: v for k, v in after.billed.items() if k in lines} == {k: v for k, v in before.items() if k in lines}
    assert {k: v for k, v in after.billed.items() if k not in lines} == {
        k: v for k, v in clean.billed.items() if k not in lines}
    # the report, the ledger and the audit trail: the clean run's, without Litware
    assert after.changes(LITWARE) == []
    assert after.changes(exclude=LITWARE) == clean.changes(exclude=LITWARE)
    assert LITWARE not in after.ledger and without(after.ledger, LITWARE) == without(clean.ledger, LITWARE)
    assert LITWARE not in after.audit and after.audit == without(clean.audit, LITWARE)
    # nothing unstorable was stored: no snapshot, no licence history for Litware in this run
    assert not list(store.table("licencecounts").query_entities("PartitionKey eq @pk", parameters={"pk": LITWARE}))
    # a person is told, by name
    named = f"Litware Inc (IncompleteReadError: Microsoft Graph (tenant {LITWARE}): {field}"
    assert any(text.startswith("Tenants failed |") and named in text for text in after.alerts), after.alerts
    assert not any("Litware Inc (" in text for text in clean.alerts)


@pytest.mark.parametrize(("value", "shown"), [
    (1e300, "quantity is 1E+300, beyond the 2,147,483,647 SeatSync accepts"),
])
def test_an_impossible_quantity_from_the_psa_freezes_that_line_only(
        value: Any, shown: str, clean: Aftermath, azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    fault = {"kind": "corrupt", "path": "/finance/agreements/100/additions", "method": "GET",
             "set": {"quantity": value}, "where": {"id": EXCHANGE_P1_LINE}}
    after, before = run_once(azurite, store, tmp_path, {"connectwise": [fault]})

    [problem] = [p for p in after.report["problems"] if p["kind"] == "impossible-value"]
    assert problem["tenantName"] == "Fabrikam Ltd" and problem["lineId"] == str(EXCHANGE_P1_LINE)
    assert shown in problem["message"], "the line, the field and the value"
    # the PSA: the line is as before the run; every other line as the clean run left it
    line_id = str(EXCHANGE_P1_LINE)
    assert after.billed[line_id] == before[line_id] == 5
    exchange_writes = [c for c in clean.report["changes"] if c["tenantId"] == FABRIKAM and c["skuId"] == EXCHANGE_P1]
    assert exchange_writes, "the clean run lowers the line"
    exchange_lines = {line_id} | {k for k in clean.billed if k.startswith("new on 100:") and k not in after.billed}
    assert {k: v for k, v in after.billed.items() if k not in exchange_lines} == {
        k: v for k, v in clean.billed.items() if k not in exchange_lines}
    # the report: nothing for the line; Fabrikam's other licences and every other tenant as in the clean run
    assert [c for c in after.report["changes"] if c["tenantId"] == FABRIKAM and c["skuId"] == EXCHANGE_P1] == []
    assert after.changes(exclude=FABRIKAM) == clean.changes(exclude=FABRIKAM)
    assert after.changes(FABRIKAM) == sorted(set(clean.changes(FABRIKAM)) - {
        (c["tenantId"], c["changeId"], c["kind"], c["status"], c["oldQuantity"], c["newQuantity"])
        for c in exchange_writes})
    # the ledger and the audit trail: the clean run's, without the line's writes
    exchange_ids = {c["changeId"] for c in exchange_writes}
    assert after.ledger[FABRIKAM] == {entry for entry in clean.ledger[FABRIKAM] if entry[0] not in exchange_ids}
    assert without(after.ledger, FABRIKAM) == without(clean.ledger, FABRIKAM)
    exchange_licence = {c["licence"] for c in exchange_writes}
    assert after.audit[FABRIKAM] == [e for e in clean.audit[FABRIKAM] if e[2] not in exchange_licence]
    assert without(after.audit, FABRIKAM) == without(clean.audit, FABRIKAM)
    # a person is told
    assert any(shown in text for text in after.alerts), after.alerts
    assert not any("impossible" in text for text in clean.alerts)


def test_a_defect_met_planning_one_tenant_fails_that_tenant_only(
        clean: Aftermath, azurite: Azurite, store: TableStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error while planning Litware (a defect, not a read that failed) fails Litware
    alone, with a message naming it; the other tenants of the batch are pushed as in a clean run."""
    real = planning.plan_tenant

    def plan_tenant(config: Any, tenant: Any, *args: Any, **kwargs: Any) -> Any:
        if tenant.tenant_id == LITWARE:
            raise KeyError("no such licence state")
        return real(config, tenant, *args, **kwargs)

    monkeypatch.setattr("shared.services.push.plan_tenant", plan_tenant)
    after, before = run_once(azurite, store, tmp_path)

    litware = after.tenant(LITWARE)
    assert litware["status"] == "push-failed"
    assert litware["error"].startswith(f"planning Litware Inc ({LITWARE}) failed unexpectedly, so nothing was "
                                       "written for it: KeyError: 'no such licence state'")
    assert after.report["status"] == "partial"
    # Litware: nothing written, nothing lowered; everyone else exactly as the clean run left them
    lines = {str(n) for n in LITWARE_LINES} | {k for k in clean.billed if k.startswith(("new on 105:",
                                                                                        "new on 106:"))}
    assert {k: v for k, v in after.billed.items() if k in lines} == {k: v for k, v in before.items() if k in lines}
    assert {k: v for k, v in after.billed.items() if k not in lines} == {
        k: v for k, v in clean.billed.items() if k not in lines}
    assert after.changes(LITWARE) == [] and after.changes(exclude=LITWARE) == clean.changes(exclude=LITWARE)
    assert LITWARE not in after.ledger and without(after.ledger, LITWARE) == without(clean.ledger, LITWARE)
    # a person is told, by name
    assert any(text.startswith("Tenants failed |") and "Litware Inc (push failed: planning Litware Inc" in text
               for text in after.alerts), after.alerts
