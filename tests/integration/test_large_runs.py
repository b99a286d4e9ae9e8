"""A run of more tenants than one chunk holds, through the local runner as the Function App runs
it (sub-orchestrations of chunks, a few at once), on Azurite and the emulators: every tenant is
synced once, each PSA connection's agreements and catalogue are read once for the whole run, and
an unchanged day reads no more than it must."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from emulators.generator import generate_msp
from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from shared.bootstrap import default_psa_factory
from shared.deadline import DeadlineReached
from tests.integration.msp import running_msp

pytestmark = pytest.mark.integration

TENANTS = 23


def psa_requests(msp: object, since: int) -> list[tuple[str, str]]:
    log = msp.emulators.emulator("connectwise").requests_log()  # type: ignore[attr-defined]
    return [(r["method"], r["path"]) for r in log[since:]]


def test_a_run_in_chunks_syncs_every_tenant_once_and_reads_the_psa_at_the_minimum(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    scenario, config = generate_msp(TENANTS, seed=11)
    agreements = len(scenario["connectwise"]["agreements"])
    # a tenant of the second chunk is no longer a GDAP customer and is billed 10 seats too many:
    # its decrease is held for a person, its guard read from the run's record by its push
    vanished = scenario["graph"]["tenants"][14]
    vanished["gdap"] = "none"
    for addition in scenario["connectwise"]["additions"]:
        if addition["agreementId"] == 5014:
            addition["quantity"] += 10
    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config,
                     env={"SEATSYNC_SYNC_CHUNK": "10", "SEATSYNC_SYNC_PARALLEL_CHUNKS": "2"}) as msp:
        first = msp.sync(max_workers=4)
        assert first["status"] in ("succeeded", "attention")
        assert len(first["tenants"]) == TENANTS and all(t["status"] == "ok" for t in first["tenants"])
        [guarded] = [t for t in first["tenants"] if t["guard"]]
        assert guarded["tenantId"] == vanished["tenantId"] and "no longer among the GDAP customers" in guarded["guard"]
        lowered = [c for c in first["changes"] if c["tenantId"] == vanished["tenantId"]
                   and c["kind"] == "set-quantity" and c["newQuantity"] < c["oldQuantity"]]
        assert lowered and all(c["status"] == "held" for c in lowered), "nothing of it is lowered"
        assert [t["tenantId"] for t in first["gdap"]["guarded"]] == [vanished["tenantId"]]
        started = msp.services.runs.started(first["runId"])
        assert started is not None and started.tenants == [] and started.total == TENANTS, \
            "the record holds the tenants' number, not the tenants"
        stored = list(msp.services.runs.iter_started_tenants(started))
        assert [t.tenant_id for t in stored] == [t.tenant_id for t in msp.services.config().tenants]

        reads = psa_requests(msp, 0)
        writes = [c for c in first["changes"] if c["applied"]]
        written_agreements = {c["agreementId"] for c in writes}
        assert len(reads) == len([r for r in reads if r[0] != "GET"]) + math.ceil(agreements / 100) + 1 + \
            agreements + len(written_agreements), "agreements and catalogue once, each agreement's lines, " \
                                                  "one read-back per written agreement"
        assert sum(1 for m, p in reads if m != "GET") == len(writes)
        assert sum(1 for m, p in reads if p.endswith("/procurement/catalog")) == 1

        before = len(msp.emulators.emulator("connectwise").requests_log())
        second = msp.sync(max_workers=4)
        assert [c for c in second["changes"] if c["applied"]] == []
        again = psa_requests(msp, before)
        assert len(again) == math.ceil(agreements / 100) + 1 + agreements, "an unchanged day: no more than it needs"


class Deadline:
    """A PSA whose request window, once, would have kept a push past its deadline (when it reads
    the lines of ``agreement``)."""

    def __init__(self, real: Any, agreement: str, fired: list[str]) -> None:
        self._real = real
        self._agreement = agreement
        self._fired = fired

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def list_lines(self, agreement_ids: Iterable[str], *, known: Iterable[Any] = ()) -> Any:
        wanted = list(agreement_ids)
        if self._agreement in wanted and not self._fired:
            self._fired.append(self._agreement)
            raise DeadlineReached("the request window frees a slot after this activity's deadline")
        return self._real.list_lines(wanted, known=known)


def test_tenants_a_push_hands_back_are_pushed_by_another_once(azurite: Azurite, store: TableStore,
                                                              tmp_path: Path) -> None:
    scenario, config = generate_msp(12, seed=5)
    held_up = str(scenario["connectwise"]["agreements"][4]["id"])
    fired: list[str] = []

    def factory(msp: Any) -> Any:
        real = default_psa_factory(msp.services.settings, msp.services.secrets, lambda s: None)
        return lambda connection: Deadline(real(connection), held_up, fired)

    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config, psa_factory=factory) as msp:
        report = msp.sync(max_workers=2)
        assert fired == [held_up], "one push handed its tenants back"
        assert all(t["status"] == "ok" for t in report["tenants"]) and len(report["tenants"]) == 12
        to_write = [c for c in report["changes"] if c["status"] not in ("held", "deferred", "rejected")]
        assert to_write and all(c["applied"] for c in to_write), "every tenant was pushed, by one push or the next"
        assert len({c["changeId"] for c in report["changes"]}) == len(report["changes"]), "none twice"
        assert [c for c in msp.sync()["changes"] if c["applied"]] == [], "nothing was left undone"


def test_a_run_in_chunks_tells_its_channels_of_every_tenant_s_alerts_once(azurite: Azurite, store: TableStore,
                                                                          tmp_path: Path) -> None:
    """An MSP that is told of each run in Teams and by email: one message to each channel carries
    the alerts of every chunk's tenants, each alert is recorded as sent, and the next run of the
    same day sends none of them again (their daily digest)."""
    from shared.adapters.notification_store import NotificationRepository
    from shared.notifications.alerts import build_alerts
    from shared.notifications.service import gather_run_data, links_for

    scenario, config_text = generate_msp(TENANTS, seed=11, notifications=True)
    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config_text,
                     env={"SEATSYNC_SYNC_CHUNK": "10", "SEATSYNC_SYNC_PARALLEL_CHUNKS": "2"}) as msp:
        first = msp.sync(max_workers=4)
        assert len(first["tenants"]) == TENANTS and all(t["status"] == "ok" for t in first["tenants"])
        deliveries = {d.channel: d for d in NotificationRepository(store).deliveries(first["runId"])}
        assert set(deliveries) == {"teams:billing", "email"} and all(
            d.status == "sent" for d in deliveries.values()), deliveries
        teams, email = deliveries["teams:billing"], deliveries["email"]
        services = msp.services
        config = services.config()
        built = build_alerts(gather_run_data(services.runs, services.snapshots, config, first["runId"],
                                             margins=services.margins),
                             config.notifications, links_for(services, config.notifications), config)
        assert {a.tenant_id for a in built.alerts if a.kind == "unused-licences"} >= {
            t["tenantId"] for t in first["tenants"][:3]} | {t["tenantId"] for t in first["tenants"][-3:]}
        assert teams.alerts == email.alerts == len(built.alerts) > TENANTS, "every tenant's alerts, every chunk's"
        history = list(NotificationRepository(store).sent("email").values())
        assert {r.key for r in history} == {a.key for a in built.alerts}
        assert all(r.run_id is history[0].run_id and r.sent_at is history[0].sent_at for r in history), \
            "a channel's history holds one run id and one time for the records of a delivery"
        assert len(msp.emulators.emulator("teams").state()["posts"]) == 1
        mail = msp.emulators.emulator("graph").sent_mail  # type: ignore[attr-defined]
        assert len(mail) == 1 and f": {len(built.alerts) - 1} alerts (" in mail[0]["subject"], "the summary, the rest"

        second = msp.sync(max_workers=4)
        again = {d.channel: d for d in NotificationRepository(store).deliveries(second["runId"])}
        assert again["email"].suppressed >= email.alerts - 1, "the same alerts, already sent today"
        assert again["email"].alerts <= 1, "at most the run's summary"
