"""Alerts as PSA tickets end to end, on ConnectWise, Autotask and HaloPSA: runs stored in Table
Storage (Azurite), ``notify_run`` with the PSA ticket channel, the real PSA client against the
PSA's emulator, read back from the emulator's state. One ticket per alert kind and tenant, never
a second one across runs (also when SeatSync's record of the tickets is lost, or a run died between
opening a ticket and recording it), a note while the alert stays, closed when it clears, left open
while its tenant was not looked at; a ticket a person closed is not reopened while the problem is
the same."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulators.tls import TlsFiles, ensure_tls_files
from shared.adapters.notification_store import NotificationRepository
from shared.adapters.secrets import SecretResolver
from shared.adapters.tables import StoreUnavailableError, TableStore, partition
from shared.bootstrap import Services
from shared.config.schema import SeatSyncConfig, parse_config
from shared.contracts import StartedRun, TenantOutcome, TenantWork
from shared.domain.model import TicketSpec
from shared.notifications.alerts import RunData, TenantRow
from shared.notifications.sample import ADATUM, CONTOSO_RETAIL, FABRIKAM, NORTHWIND, sample_run_data
from shared.notifications.service import NotifyResult, NotifyServices, notify_run
from shared.notifications.tickets import TicketRecord, group_key, marker
from shared.settings import Settings
from tests.integration.psa_contract_helpers import PsaUnderTest, connection_entry, start
from tests.notification_support import store_run

pytestmark = pytest.mark.integration

KINDS = ["connectwise", "autotask", "halopsa"]
PLACE = {"connectwise": ("boardId", 1), "autotask": ("queueId", 29683354), "halopsa": ("ticketTypeId", 3)}
DAY_1 = datetime(2026, 11, 25, 2, 5, tzinfo=UTC)
RUN_COMPANY = "20"  # the channel's own company: tickets about the run, and tenants not configured
# The sample run's alerts with a ticket: (kind, tenant), and the PSA company each ticket is for.
EXPECTED = {
    ("run-failed", None): RUN_COMPANY,
    ("auth-failed", NORTHWIND): "19",
    ("gdap-ended", NORTHWIND): "19",
    ("billing-problem", FABRIKAM): "19",
    ("unlinked-licence", FABRIKAM): "19",
    ("unused-licences", FABRIKAM): "19",
    ("shared-mailbox-licensed", FABRIKAM): "19",
    ("changes-held", ADATUM): "20",
    ("gdap-not-added", CONTOSO_RETAIL): RUN_COMPANY,
}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls_files(tmp_path_factory.mktemp("psa-tickets-tls"))


@pytest.fixture(scope="module", params=KINDS)
def running_psa(request: pytest.FixtureRequest, tls: TlsFiles) -> Iterator[PsaUnderTest]:
    psa = start(request.param, tls)
    yield psa
    psa.running.stop()


def ticket_config(kind: str, **channel: Any) -> SeatSyncConfig:
    place, ident = PLACE[kind]
    return parse_config({
        "psaConnections": [connection_entry(kind)],
        "notifications": {"psaTickets": {"psa": kind, place: ident, "companyId": RUN_COMPANY, **channel}},
        "tenants": [{"tenantId": tenant, "name": name, "companies": [{"psa": kind, "companyId": company}]}
                    for tenant, name, company in ((FABRIKAM, "Fabrikam Ltd", "19"),
                                                  (NORTHWIND, "Northwind Traders", "19"),
                                                  (ADATUM, "Adatum Corp", "20"))]})


@dataclass
class Env:
    psa: PsaUnderTest
    store: TableStore
    now: datetime = DAY_1
    services: Services = field(init=False)

    def __post_init__(self) -> None:
        self.services = Services(Settings(sync_schedule="0 0 2 * * *", public_url="https://seatsync.example"),
                                 store=self.store, secrets=SecretResolver({}),
                                 psa_factory=lambda connection: self.psa.client(), clock=lambda: self.now)

    def configure(self, config: SeatSyncConfig) -> None:
        self.services.config_repository.save(config, "test", "psa tickets")

    def run(self, data: RunData) -> NotifyResult:
        store_run(self.services, data)
        return notify_run(NotifyServices.from_services(self.services), data.run_id)

    def next_day(self) -> None:
        self.now += timedelta(days=1)

    @property
    def channel(self) -> str:
        return f"psa-tickets:{self.psa.kind}"

    def tickets(self) -> list[dict[str, Any]]:
        tickets: list[dict[str, Any]] = self.psa.emulator.state()["tickets"]
        return tickets

    def records(self) -> dict[str, Any]:
        return NotificationRepository(self.store).tickets(self.channel)


@pytest.fixture
def env(running_psa: PsaUnderTest, store: TableStore) -> Env:
    running_psa.emulator.reset()
    environment = Env(running_psa, store)
    environment.configure(ticket_config(running_psa.kind))
    return environment


def summary(kind: str, ticket: dict[str, Any]) -> str:
    return str(ticket["title" if kind == "autotask" else "summary"])


def company(kind: str, ticket: dict[str, Any]) -> str:
    return str({"connectwise": lambda: ticket["company"]["id"], "autotask": lambda: ticket["companyID"],
                "halopsa": lambda: ticket["client_id"]}[kind]())


def is_closed(kind: str, ticket: dict[str, Any]) -> bool:
    if kind == "connectwise":
        return bool(ticket["closedFlag"]) and ticket["closedDate"] is not None
    if kind == "autotask":
        return ticket["status"] == 5 and ticket["completedDate"] is not None
    return bool(ticket["status_id"] == 9 and ticket["dateclosed"] is not None)


def notes(kind: str, ticket: dict[str, Any]) -> list[str]:
    key, text = {"connectwise": ("notes", "text"), "autotask": ("notes", "description"),
                 "halopsa": ("actions", "note")}[kind]
    return [str(note[text]) for note in ticket[key]]


def by_group(env: Env) -> dict[tuple[str, str | None], dict[str, Any]]:
    """The PSA's tickets by the alert group their marker names (every ticket has one)."""
    markers = {marker(env.channel, group_key(kind, tenant)): (kind, tenant) for kind, tenant in EXPECTED}
    found: dict[tuple[str, str | None], dict[str, Any]] = {}
    for ticket in env.tickets():
        text = summary(env.psa.kind, ticket)
        group = markers[text[text.rindex("[SeatSync "):]]
        assert group not in found, f"two tickets for {group}"
        found[group] = ticket
    return found


def cleared(data: RunData, now: datetime) -> RunData:
    """The next run: every alert cleared but Northwind's sign-in (and so the run's partial failure);
    Adatum not in the run at all."""
    run_id = f"{now:%Y%m%dT%H%M%SZ}-c1ea0000"
    tenants = (TenantRow(FABRIKAM, "Fabrikam Ltd", TenantOutcome(tenant_id=FABRIKAM, name="Fabrikam Ltd", status="ok")),
               replace(next(t for t in data.tenants if t.tenant_id == NORTHWIND)))
    return replace(
        data, run_id=run_id,
        summary=data.summary.model_copy(update={
            "run_id": run_id, "status": "partial", "started_at": now - timedelta(minutes=4), "finished_at": now,
            "tenants_total": 2, "tenants_ok": 1, "tenants_failed": 1, "problems": 0, "problems_by_kind": {},
            "changes_planned": 0, "changes_applied": 0}),
        started=StartedRun(run_id=run_id, tenants=[TenantWork(tenant_id=FABRIKAM, name="Fabrikam Ltd"),
                                                   TenantWork(tenant_id=NORTHWIND, name="Northwind Traders")]),
        tenants=tenants, changes=(), reconciliation=(), unlinked=(), snapshots={}, new_skus={})


def test_one_ticket_per_alert_kind_and_tenant_never_duplicated_across_runs(env: Env) -> None:
    kind = env.psa.kind
    first = env.run(sample_run_data(env.now))
    [channel] = first.channels
    assert (channel.channel, channel.status, channel.error) == (env.channel, "sent", None)
    tickets = by_group(env)
    assert set(tickets) == set(EXPECTED)
    for group, ticket in tickets.items():
        assert company(kind, ticket) == EXPECTED[group]
        assert not is_closed(kind, ticket)
        assert summary(kind, ticket).startswith("SeatSync: ")
    assert "Northwind Traders" in summary(kind, tickets[("auth-failed", NORTHWIND)])
    records = env.records()
    assert {(r.kind, r.tenant_id) for r in records.values()} == set(EXPECTED)
    assert all(r.open for r in records.values())

    # The same run notified again (a retried activity) writes nothing.
    writes = env.psa.writes()
    again = notify_run(NotifyServices.from_services(env.services), first.run_id)
    assert again.channels[0].status == "nothing-due"
    assert env.psa.writes() == writes

    # The next day the alerts hold: no new ticket; each daily alert's ticket gets a note.
    env.next_day()
    second = env.run(sample_run_data(env.now))
    assert second.channels[0].status == "sent"
    assert set(by_group(env)) == set(EXPECTED)
    assert len(env.tickets()) == len(EXPECTED)
    billing = by_group(env)[("billing-problem", FABRIKAM)]
    assert any(note.startswith("Still open.") for note in notes(kind, billing))


def test_a_ticket_whose_record_was_lost_is_found_again_by_its_marker(env: Env) -> None:
    env.run(sample_run_data(env.now))
    opened = {group: ticket["id"] for group, ticket in by_group(env).items()}
    table = env.store.table("notifications")
    for row in list(partition(table, f"ticket~{env.channel}")):
        table.delete_entity(row["PartitionKey"], row["RowKey"])
    assert env.records() == {}

    env.next_day()
    result = env.run(sample_run_data(env.now))
    assert result.channels[0].status == "sent"
    assert {group: ticket["id"] for group, ticket in by_group(env).items()} == opened  # none opened twice
    assert {r.ticket_id for r in env.records().values()} == {str(i) for i in opened.values()}


def test_tickets_close_when_their_alerts_clear_and_stay_open_while_not_looked_at(env: Env) -> None:
    kind = env.psa.kind
    data = sample_run_data(env.now)
    env.run(data)
    env.next_day()
    result = env.run(cleared(data, env.now))
    assert result.channels[0].status == "sent", result.channels[0].error
    tickets = by_group(env)
    # Northwind still fails to sign in (so the run still partly fails); Adatum was not in the run.
    still = {("run-failed", None), ("auth-failed", NORTHWIND), ("changes-held", ADATUM)}
    for group, ticket in tickets.items():
        assert is_closed(kind, ticket) is (group not in still), group
    assert any(note.startswith("Cleared: run ") for note in notes(kind, tickets[("billing-problem", FABRIKAM)]))
    records = env.records()
    assert {(r.kind, r.tenant_id) for r in records.values() if r.open} == still

    # The problem comes back: a new ticket, the closed one stays closed.
    env.next_day()
    env.run(sample_run_data(env.now))
    billing = [t for t in env.tickets() if summary(kind, t).startswith("SeatSync: Billing")]
    assert len(billing) == 2
    assert sorted(is_closed(kind, t) for t in billing) == [False, True]
    assert len(env.tickets()) == len(EXPECTED) + len(EXPECTED) - len(still)


def test_a_dry_run_writes_no_ticket(env: Env) -> None:
    data = sample_run_data(env.now)
    result = env.run(replace(data, summary=data.summary.model_copy(update={"dry_run": True})))
    assert result.channels[0].status == "nothing-due"
    assert env.tickets() == []
    assert env.psa.writes() == 0


def close_by_hand(env: Env, ticket_id: Any) -> None:
    """A person closes the ticket in the PSA (through the PSA's API, as its UI does)."""
    client: Any = env.psa.client()
    spec = TicketSpec(queue=str(PLACE[env.psa.kind][1]))
    ticket = client.get_ticket(spec, str(ticket_id))
    client.close_ticket(spec, ticket, "Handled: the customer was called.")


def another_unmatched_user(data: RunData) -> RunData:
    """Fabrikam's billing problem changes: a second user nobody bills."""
    rows = tuple(replace(t, problems=tuple(replace(p, users=(*p.users, "eve@fabrikam.example"),
                                                   message="2 users hold it but match no company's user filter")
                                           for p in t.problems)) if t.tenant_id == FABRIKAM else t
                 for t in data.tenants)
    return replace(data, tenants=rows)


def billing_tickets(env: Env) -> list[dict[str, Any]]:
    return sorted((t for t in env.tickets() if summary(env.psa.kind, t).startswith("SeatSync: Billing")),
                  key=lambda t: int(t["id"]))


def test_a_ticket_a_person_closed_is_not_reopened_until_the_problem_changes(env: Env) -> None:
    kind = env.psa.kind
    env.run(sample_run_data(env.now))
    [ticket] = billing_tickets(env)
    close_by_hand(env, ticket["id"])

    for _ in range(2):  # the next days, the same problem: acknowledged, never reopened nor opened again
        env.next_day()
        result = env.run(sample_run_data(env.now))
        assert result.channels[0].error is None
        assert [(t["id"], is_closed(kind, t)) for t in billing_tickets(env)] == [(ticket["id"], True)]
        record = env.records()[group_key("billing-problem", FABRIKAM)]
        assert (record.status, record.ticket_id) == ("acknowledged", str(ticket["id"]))
    assert len(env.tickets()) == len(EXPECTED), "the other groups' tickets stay as they were"

    # the problem changes (a second user nobody bills): a new ticket tells about it
    env.next_day()
    env.run(another_unmatched_user(sample_run_data(env.now)))
    old, new = billing_tickets(env)
    assert (old["id"], is_closed(kind, old), is_closed(kind, new)) == (ticket["id"], True, False)
    assert env.records()[group_key("billing-problem", FABRIKAM)].ticket_id == str(new["id"])


def test_a_run_that_died_between_opening_a_ticket_and_recording_it_never_opens_a_second(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PSA opened the billing ticket, then storage refused SeatSync's record of it (as a run
    killed there would leave it: only the intent recorded); a person closed the ticket meanwhile.
    The next run finds it by its marker, closed as it is, and opens no second ticket."""
    kind = env.psa.kind
    original = NotificationRepository.record_ticket
    billing = group_key("billing-problem", FABRIKAM)

    def refused(self: NotificationRepository, channel: str, record: TicketRecord) -> None:
        if record.key == billing and record.status == "open":
            raise StoreUnavailableError("Table Storage refused the connection")
        original(self, channel, record)

    monkeypatch.setattr(NotificationRepository, "record_ticket", refused)
    with pytest.raises(StoreUnavailableError):
        env.run(sample_run_data(env.now))
    monkeypatch.undo()
    intent = env.records()[billing]
    assert (intent.status, intent.ticket_id) == ("opening", "")
    [ticket] = billing_tickets(env)
    close_by_hand(env, ticket["id"])

    env.next_day()
    env.run(sample_run_data(env.now))
    assert [(t["id"], is_closed(kind, t)) for t in billing_tickets(env)] == [(ticket["id"], True)]
    record = env.records()[billing]
    assert (record.status, record.ticket_id) == ("acknowledged", str(ticket["id"]))


def test_an_acknowledged_problem_that_clears_and_comes_back_opens_a_ticket(env: Env) -> None:
    kind = env.psa.kind
    data = sample_run_data(env.now)
    env.run(data)
    [ticket] = billing_tickets(env)
    close_by_hand(env, ticket["id"])
    env.next_day()
    env.run(sample_run_data(env.now))
    assert env.records()[group_key("billing-problem", FABRIKAM)].status == "acknowledged"

    env.next_day()  # the problem clears: the acknowledgement ends with it
    env.run(cleared(data, env.now))
    assert env.records()[group_key("billing-problem", FABRIKAM)].status == "closed"

    env.next_day()  # the same problem comes back: a ticket tells about it again
    env.run(sample_run_data(env.now))
    old, new = billing_tickets(env)
    assert (old["id"], is_closed(kind, old), is_closed(kind, new)) == (ticket["id"], True, False)
    record = env.records()[group_key("billing-problem", FABRIKAM)]
    assert (record.status, record.ticket_id) == ("open", str(new["id"]))
