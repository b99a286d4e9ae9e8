"""Notifications end to end: run data in Table Storage (Azurite), a Teams channel on the
Workflows webhook receiver and email through the Graph emulator, read back from their state."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import notify
from emulators.base import RunningEmulator
from emulators.graph import GraphEmulator
from emulators.tls import TlsFiles, ensure_tls_files
from emulators.webhook import TeamsWebhookEmulator, validate_message
from local_runner.azurite import Azurite
from local_runner.notify_cli import cmd_notify_preview, cmd_notify_send_test
from shared.adapters.graph import GraphClient, TenantCredentials
from shared.adapters.http import RetryingHttp
from shared.adapters.notification_store import NotificationRepository
from shared.adapters.secrets import SecretResolver
from shared.adapters.tables import TableStore
from shared.adapters.teams import WEBHOOK_POLICY
from shared.bootstrap import Services, set_services
from shared.config.notifications import NotificationSettings
from shared.config.schema import SeatSyncConfig, TenantConfig
from shared.domain.model import ChangeStatus
from shared.notifications.alerts import ALERTED_CHANGES, KIND_ORDER, RunData
from shared.notifications.sample import sample_run_data
from shared.notifications.service import (
    NotifyServices,
    gather_run_data,
    links_for,
    notify_run,
    preview_document,
    preview_name,
)
from shared.settings import GraphSettings, Settings
from tests.notification_support import buttons, expected_sample_card, store_run, texts

pytestmark = pytest.mark.integration

PARTNER = "0a0a0a0a-0000-4000-8000-000000000001"
CLIENT = "c1c1c1c1-0000-4000-8000-000000000002"
SECRET = "emulator-secret-value"
SENDER = "seatsync@contoso-msp.example"
RECIPIENTS = ["billing@contoso-msp.example", "finance@contoso-msp.example"]
PUBLIC_URL = "https://seatsync.contoso-msp.example"
DAY_1 = datetime(2026, 11, 25, 2, 5, tzinfo=UTC)  # a Wednesday


@dataclass
class Emulators:
    graph: GraphEmulator
    graph_url: str
    teams: TeamsWebhookEmulator
    teams_url: str
    tls: TlsFiles

    @property
    def ca(self) -> str:
        return str(self.tls.ca_certificate)


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    tls = ensure_tls_files(tmp_path_factory.mktemp("tls"))
    graph = GraphEmulator({
        "partner": {"tenantId": PARTNER, "clientId": CLIENT, "clientSecret": SECRET, "displayName": "Contoso MSP",
                    "defaultDomain": "contoso-msp.example",
                    "users": [{"userPrincipalName": SENDER, "mailbox": "User"}]},
        "tenants": [],
    })
    teams = TeamsWebhookEmulator({"workflows": ["billing", {"id": "ops", "sig": "s3cr3t"}]})
    with RunningEmulator(graph, tls) as graph_running, RunningEmulator(teams, tls) as teams_running:
        yield Emulators(graph, graph_running.url, teams, teams_running.url, tls)


@pytest.fixture(autouse=True)
def clean(emulators: Emulators) -> None:
    emulators.graph.reset()
    emulators.teams.reset()


@dataclass
class Clock:
    now: datetime = DAY_1

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    emulators: Emulators
    store: TableStore
    clock: Clock = field(default_factory=Clock)
    sleeps: list[float] = field(default_factory=list)
    services: Services = field(init=False)

    def __post_init__(self) -> None:
        self.services = self.make_services()

    def webhook(self, workflow: str, sig: str | None = None) -> str:
        path = f"/powerautomate/automations/direct/workflows/{workflow}/triggers/manual/paths/invoke"
        query = "?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0" + (f"&sig={sig}" if sig else "")
        return f"{self.emulators.teams_url}{path}{query}"

    def app_settings(self) -> dict[str, str]:
        return {"TEAMS_BILLING_WEBHOOK": self.webhook("billing"), "TEAMS_OPS_WEBHOOK": self.webhook("ops", "s3cr3t")}

    def graph_settings(self) -> GraphSettings:
        url = self.emulators.graph_url
        return GraphSettings(client_id=CLIENT, partner_tenant_id=PARTNER, client_secret=SECRET,
                             authority_host=url, endpoint=url)

    def make_services(self) -> Services:
        graph = self.graph_settings()
        ca = self.emulators.ca
        settings = Settings(sync_schedule="0 0 2 * * *", graph=graph, ca_bundle=ca, public_url=PUBLIC_URL,
                            environment=self.app_settings())
        credentials = TenantCredentials(graph, verify=ca)

        def graph_client() -> GraphClient:
            http = RetryingHttp("Microsoft Graph", verify=ca, sleep=self.sleeps.append, jitter=lambda: 0.5)
            return GraphClient(graph, verify=ca, credentials=credentials, http=http, sleep=self.sleeps.append)

        return Services(settings, store=self.store, secrets=SecretResolver(self.app_settings()),
                        graph_factory=graph_client, clock=self.clock)

    def notify_services(self) -> NotifyServices:
        http = RetryingHttp("Teams webhook", policy=WEBHOOK_POLICY, verify=self.emulators.ca,
                            sleep=self.sleeps.append, jitter=lambda: 0.5)
        return NotifyServices.from_services(self.services, teams_http=http, sleep=self.sleeps.append)

    def configure(self, notifications: dict[str, Any]) -> None:
        config = SeatSyncConfig(
            tenants=tuple(TenantConfig(tenant_id=t, name=n) for t, n in (
                ("fab00000-0000-4000-8000-000000000001", "Fabrikam Ltd"),
                ("00000000-0000-4000-8000-0000000000b2", "Northwind Traders"),
                ("ada00000-0000-4000-8000-000000000003", "Adatum Corp"))),
            notifications=NotificationSettings.model_validate(notifications))
        self.services.config_repository.save(config, "test", "notifications")

    def store_run(self, data: RunData) -> str:
        return store_run(self.services, data)

    def notify(self, run_id: str) -> Any:
        return notify_run(self.notify_services(), run_id)

    def posts(self, workflow: str = "billing") -> list[dict[str, Any]]:
        return self.emulators.teams.posts_for(workflow)

    def mail(self) -> list[dict[str, Any]]:
        return list(self.emulators.graph.state()["sentMail"])


@pytest.fixture
def env(emulators: Emulators, store: TableStore) -> Env:
    return Env(emulators, store)


BOTH = {
    "teams": [{"name": "billing", "webhook": {"setting": "TEAMS_BILLING_WEBHOOK"}}],
    "email": {"sender": SENDER, "recipients": RECIPIENTS},
}


def consent_url(env: Env, tenant: str = "00000000-0000-4000-8000-0000000000b2") -> str:
    return f"{env.emulators.graph_url}/{tenant}/adminconsent?client_id={CLIENT}"


def expected_card(env: Env, run: str) -> list[str]:
    return expected_sample_card(run)


def expected_email_text(env: Env, run: str) -> str:
    return f"""SeatSync: run partly failed, 8 alerts
25 Nov 2026 02:05 UTC · run {run} · partial

RUN PARTLY FAILED: 1 OF 3 TENANTS
---------------------------------
- Run: {run}
- Status: partial
- Tenants failed: Northwind Traders (AADSTS700016)
What to do: See what failed: seatsync report {run}

TENANTS SEATSYNC CANNOT SIGN IN TO (1)
--------------------------------------
- Northwind Traders: AADSTS700016: The SeatSync app is not consented in this tenant: a Global Administrator \
of the customer grants admin consent.
  Grant consent: Northwind Traders: {consent_url(env)}
What to do: Nothing is read or billed for these tenants until this is fixed.

BILLING PROBLEMS (1)
--------------------
- Fabrikam Ltd: Microsoft 365 Business Premium: 1 user holds it but matches no company's user filter: nobody bills \
them. Give the tenant a catch-all company (catchAll: true), widen a company's user filter, or fill in the users' \
Office/Department/City/State/Country in Entra.
What to do: Each item says what to do. Until it is fixed SeatSync writes nothing for a line it cannot decide.

CHANGES HELD FOR APPROVAL (1)
-----------------------------
- Adatum Corp: Microsoft 365 Business Premium: 25 → 18 (decrease of 7 seats (28%) is above the 20% safety limit)
  Review approvals: {PUBLIC_URL}/api/dashboard/approvals
What to do: Approve or dismiss them: seatsync approvals list

LICENCES WITH NO BILLING MAPPING (1)
------------------------------------
- Fabrikam Ltd: Power BI Pro: 2 purchased, 2 assigned (new)
  Unlinked licences: {PUBLIC_URL}/api/dashboard/mapping
What to do: Map each to a billing profile, or exclude it: seatsync unlinked

UNUSED LICENCES (1)
-------------------
- Fabrikam Ltd: Microsoft 365 Business Premium: 3 of 25 unused, 66.00 USD a month
What to do: Assign them, or reduce the subscription (NCE: at its renewal).

SHARED MAILBOXES HOLDING A LICENCE (1)
--------------------------------------
- Fabrikam Ltd: info@fabrikam.example: Exchange Online (Plan 1)
What to do: A shared mailbox needs no licence unless it is over 50 GB or has an archive: remove the licence or \
confirm it is needed.

GDAP CUSTOMERS NOT YET IN SEATSYNC (1)
--------------------------------------
- Contoso Retail: in GDAP, not configured
What to do: Add them to the configuration (seatsync config export, add the tenant, seatsync config import), or \
exclude them from this alert.

CONFIGURED TENANTS GDAP NO LONGER LISTS (1)
-------------------------------------------
- Northwind Traders: configured, not in GDAP's customer list
What to do: Renew the GDAP relationship, or, if the customer left, remove the tenant from the configuration; its \
billing is not changed until a person decides.

RUN PARTIAL: 2 CHANGES APPLIED, 1 BILLING PROBLEM
-------------------------------------------------
- Status: partial
- Tenants: 2 of 3 synced
- Tenants failed: 1
- Changes applied: 2
- Held for approval: 1
- Deferred: 0
- Changes failed: 0
- Lines unchanged: 5
- Billing problems: 1 (users unmatched: 1)
- Open alerts: 8
What to do: The whole report: seatsync report {run}

Sent by SeatSync after run {run}.
Run report: {PUBLIC_URL}/api/dashboard/runs/{run}
"""


# --------------------------------------------------------------------------- delivery


def test_a_run_with_every_alert_kind_delivers_a_card_and_an_email(env: Env) -> None:
    env.configure(BOTH)
    run = env.store_run(sample_run_data(DAY_1))
    result = env.notify(run)
    assert result.to_json() == {
        "runId": run, "alerts": 10, "excluded": 0, "sent": 20, "suppressed": 0, "failed": 0,
        "channels": [{"channel": "teams:billing", "status": "sent", "sent": 10, "suppressed": 0, "attempts": 1,
                      "error": None},
                     {"channel": "email", "status": "sent", "sent": 10, "suppressed": 0, "attempts": 1, "error": None}],
    }

    [post] = env.posts()
    assert validate_message(post["body"]) is None
    [card] = post["cards"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.5")
    assert texts(card) == expected_card(env, run)
    assert buttons(card) == [
        ("Grant consent: Northwind Traders", consent_url(env)),
        ("Review approvals", f"{PUBLIC_URL}/api/dashboard/approvals"),
        ("Unlinked licences", f"{PUBLIC_URL}/api/dashboard/mapping"),
        ("Open run report", f"{PUBLIC_URL}/api/dashboard/runs/{run}"),
    ]

    [mail] = env.mail()
    assert (mail["format"], mail["contentType"]) == ("mime", "multipart/alternative")
    assert (mail["sender"], mail["tenantId"], mail["to"]) == (SENDER, PARTNER, RECIPIENTS)
    assert mail["subject"] == "SeatSync: run partly failed, 8 alerts (25 Nov 2026)"
    assert mail["text"] == expected_email_text(env, run)
    assert ('<h2 style="font-size:16px;margin:24px 0 8px;color:#a05a00;">Changes held for approval (1)</h2>'
            in mail["html"])
    assert f'<a href="{consent_url(env)}" style="color:#1f5fa8;">Grant consent: Northwind Traders</a>' in mail["html"]
    assert "25 → 18 (decrease of 7 seats (28%) is above the 20% safety limit)" in mail["html"]

    deliveries = NotificationRepository(env.store).deliveries(run)
    assert sorted((d.channel, d.status, d.alerts, d.attempts) for d in deliveries) == [
        ("email", "sent", 10, 1), ("teams:billing", "sent", 10, 1)]
    teams = next(d for d in deliveries if d.channel == "teams:billing")
    assert len(teams.fingerprints) == 10 and teams.kinds["unused-licences"] == 1
    assert list(teams.kinds) == [k for k in KIND_ORDER if k in teams.kinds], "in the message's order"
    assert teams.size == len(json.dumps(post["body"], ensure_ascii=False).encode("utf-8"))
    assert teams.at == DAY_1
    assert spooled(env) == [], "the run's alerts are kept only while they are sent"


def spooled(env: Env) -> list[dict[str, Any]]:
    """The rows of every notification's alerts kept while it sends them (``AlertSpool``)."""
    return list(env.store.table("notifications").query_entities(
        "PartitionKey ge 'spool~' and PartitionKey lt 'spool~~'"))


def test_a_run_s_alerts_are_kept_in_storage_while_they_are_sent_and_deleted_after(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each channel reads the run's alerts back from Table Storage; when recording what was sent
    fails (Table Storage unreachable), the failure propagates (the activity is retried, and the
    channel's alerts are still due) and the kept alerts are deleted all the same."""
    from shared.adapters.tables import StoreUnavailableError
    from shared.notifications.channels import EmailNotifier, TeamsNotifier

    env.configure(BOTH)
    run = env.store_run(sample_run_data(DAY_1))
    seen: list[tuple[str, int, set[str]]] = []
    for notifier in (TeamsNotifier, EmailNotifier):
        real = notifier.send

        def watched(self: Any, alerts: Any, context: Any, real: Any = real) -> Any:
            rows = spooled(env)
            seen.append((self.channel_id, len(rows), {str(r["Kind"]) for r in rows}))
            return real(self, alerts, context)

        monkeypatch.setattr(notifier, "send", watched)
    env.notify(run)
    kinds = {"run-failed", "auth-failed", "billing-problem", "changes-held", "unlinked-licence", "unused-licences",
             "shared-mailbox-licensed", "gdap-not-added", "gdap-ended", "run-summary"}
    assert seen == [("teams:billing", 10, kinds), ("email", 10, kinds)]
    assert spooled(env) == []

    def unreachable(*args: Any) -> None:
        raise StoreUnavailableError("Table Storage did not answer")

    env.clock.now = DAY_1 + timedelta(days=7)
    later = env.store_run(sample_run_data(env.clock.now))
    monkeypatch.setattr(NotificationRepository, "record_sent", unreachable)
    with pytest.raises(StoreUnavailableError):
        env.notify(later)
    assert spooled(env) == []
    monkeypatch.undo()
    assert [(c.channel, c.status) for c in env.notify(later).channels] == [
        ("teams:billing", "sent"), ("email", "sent")], "nothing was recorded as sent: the alerts are still due"


def test_a_snapshot_that_cannot_be_read_leaves_its_alerts_out_and_the_run_summary_says_so(env: Env) -> None:
    """The licence alerts of a tenant whose snapshot cannot be read when the run is told of are
    missing: the message says which tenants, so that a person does not take it as complete."""
    from shared.adapters.tables import row_range
    from shared.notifications.sample import FABRIKAM

    env.configure(BOTH)
    run = env.store_run(sample_run_data(DAY_1))
    snapshots = env.store.table("snapshots")
    parts = list(row_range(snapshots, FABRIKAM, f"{run}~", f"{run}~~"))
    assert parts, "the sample run stores Fabrikam's snapshot document"
    for entity in parts:  # its header stays: the document it points to is gone
        snapshots.delete_entity(entity["PartitionKey"], entity["RowKey"])

    result = env.notify(run)
    assert result.alerts == 8, "Fabrikam's unused-licence and shared-mailbox alerts are left out"
    text = env.mail()[0]["text"]
    assert "UNUSED LICENCES" not in text and "SHARED MAILBOXES HOLDING A LICENCE" not in text
    assert "RUN PARTIAL: 2 CHANGES APPLIED, 1 BILLING PROBLEM; LICENCE ALERTS OF 1 TENANT LEFT OUT" in text
    assert ("- Licence alerts left out: 1 tenant (Fabrikam Ltd): their snapshots could not be read when the run "
            "was told of; see the run report, or run seatsync notify again") in text
    assert "Licence alerts left out" in " ".join(texts(env.posts()[0]["cards"][0]))


def test_the_same_run_again_sends_nothing_and_the_next_days_run_only_what_is_due(env: Env) -> None:
    env.configure(BOTH)
    run = env.store_run(sample_run_data(DAY_1))
    env.notify(run)
    again = env.notify(run)
    assert [(c.channel, c.status, c.sent, c.suppressed) for c in again.channels] == [
        ("teams:billing", "nothing-due", 0, 10), ("email", "nothing-due", 0, 10)]
    assert len(env.posts()) == 1 and len(env.mail()) == 1
    statuses = [d.status for d in NotificationRepository(env.store).deliveries(run)]
    assert sorted(statuses) == ["nothing-due", "nothing-due", "sent", "sent"]

    env.clock.now = DAY_1 + timedelta(days=1)
    tomorrow = env.store_run(sample_run_data(env.clock.now))
    result = env.notify(tomorrow)
    assert [(c.status, c.sent, c.suppressed) for c in result.channels] == [("sent", 7, 3), ("sent", 7, 3)]
    card_text = texts(env.posts()[-1]["cards"][0])
    for kept in ("Tenants SeatSync cannot sign in to (1)", "Changes held for approval (1)",
                 "Licences with no billing mapping (1)", "Billing problems (1)",
                 "Run partial: 2 changes applied, 1 billing problem"):
        assert kept in card_text
    for weekly in ("Unused licences (1)", "Shared mailboxes holding a licence (1)",
                   "GDAP customers not yet in SeatSync (1)"):
        assert weekly not in card_text, "weekly digests wait for next week"
    assert "SeatSync: run partly failed, 5 alerts" in card_text

    env.clock.now = DAY_1 + timedelta(days=5)  # Monday: a new week
    monday = env.store_run(sample_run_data(env.clock.now))
    assert [c.sent for c in env.notify(monday).channels] == [10, 10]


def test_a_dry_run_does_not_use_up_the_days_digest(env: Env) -> None:
    """A dry run tells what it found, but what it sent never stands for the real runs' message:
    a real run later the same day still sends every alert; a second dry run has its own digest."""
    env.configure(BOTH)

    def dry(data: RunData) -> RunData:
        return replace(data, summary=data.summary.model_copy(update={"dry_run": True}))

    first = env.notify(env.store_run(dry(sample_run_data(DAY_1))))
    assert [(c.status, c.sent) for c in first.channels] == [("sent", 9), ("sent", 9)], "no held changes on a dry run"
    env.clock.now = DAY_1 + timedelta(hours=1)
    real = env.notify(env.store_run(sample_run_data(env.clock.now)))
    assert [(c.status, c.sent, c.suppressed) for c in real.channels] == [("sent", 10, 0), ("sent", 10, 0)]
    env.clock.now = DAY_1 + timedelta(hours=2)
    second_dry = env.notify(env.store_run(dry(sample_run_data(env.clock.now))))
    assert all(c.suppressed > 0 and c.sent < 10 for c in second_dry.channels), "dry runs keep their own digest"
    env.clock.now = DAY_1 + timedelta(hours=3)
    second_real = env.notify(env.store_run(sample_run_data(env.clock.now)))
    # the real runs' own digest, as if no dry run had been: only the run's own alerts go out again
    assert [c.sent for c in second_real.channels] == [c.sent for c in second_dry.channels]
    assert [c.suppressed for c in second_real.channels] == [8, 8]


def test_a_webhook_answering_500_is_retried_then_recorded_while_email_still_goes(env: Env) -> None:
    env.configure(BOTH)
    env.emulators.teams.faults.add({"kind": "error", "path": "/workflows/billing", "status": 500})
    run = env.store_run(sample_run_data(DAY_1))
    result = env.notify(run)
    teams, email = result.channels
    assert (teams.status, teams.attempts, teams.sent) == ("failed", WEBHOOK_POLICY.max_attempts, 0)
    assert teams.error is not None and teams.error.startswith("Teams webhook 'billing': HTTP 500")
    assert (email.status, email.sent) == ("sent", 10)
    assert env.emulators.teams.count_requests("/workflows/billing", "POST") == WEBHOOK_POLICY.max_attempts
    assert env.posts() == [] and len(env.mail()) == 1
    assert len([s for s in env.sleeps if s > 0]) == WEBHOOK_POLICY.max_attempts - 1, "backed off between tries"
    [failed] = [d for d in NotificationRepository(env.store).deliveries(run) if d.channel == "teams:billing"]
    assert (failed.status, failed.attempts, failed.alerts) == ("failed", 4, 10)
    assert failed.error == teams.error
    assert "sig" not in (failed.error or "") and env.emulators.teams_url not in (failed.error or "")

    env.emulators.teams.faults.clear()
    retry = env.notify(run)
    assert [(c.channel, c.status, c.sent) for c in retry.channels] == [
        ("teams:billing", "sent", 10), ("email", "nothing-due", 0)], "what failed is still due; email is not repeated"
    assert texts(env.posts()[0]["cards"][0]) == expected_card(env, run)


def test_an_email_answered_503_once_is_sent_again(env: Env) -> None:
    env.configure({"email": {"sender": SENDER, "recipients": RECIPIENTS[:1]}})
    env.emulators.graph.faults.add({"kind": "error", "path": "/sendMail", "status": 503, "times": 1})
    result = env.notify(env.store_run(sample_run_data(DAY_1)))
    assert [(c.channel, c.status, c.attempts) for c in result.channels] == [("email", "sent", 2)]
    assert [m["to"] for m in env.mail()] == [RECIPIENTS[:1]]


def test_the_activity_never_fails_because_a_channel_did(env: Env) -> None:
    env.configure({
        "teams": [{"name": "billing", "webhook": {"setting": "NOT_SET"}},
                  {"name": "ops", "webhook": {"setting": "TEAMS_OPS_WEBHOOK"}, "kinds": ["run-failed"]}],
        "email": {"sender": "nobody@contoso-msp.example", "recipients": RECIPIENTS},
    })
    data = sample_run_data(DAY_1)
    env.store_run(data)
    set_services(env.services)
    try:
        answer = notify.notify_run(data.summary.to_json())
    finally:
        set_services(None)
    assert (answer["sent"], answer["failed"]) == (1, 2)
    billing, ops, email = answer["channels"]
    assert billing["status"] == "failed"
    assert billing["error"].startswith("the webhook URL cannot be read: app setting NOT_SET is not set")
    assert (ops["status"], ops["sent"]) == ("sent", 1)
    assert email["status"] == "failed" and "ErrorInvalidUser" in email["error"] and email["attempts"] == 1
    [post] = env.posts("ops")
    assert texts(post["cards"][0])[:3] == ["SeatSync: run partly failed", f"25 Nov 2026 02:05 UTC · run "
                                           f"{data.run_id} · partial", "Run partly failed: 1 of 3 tenants"]
    assert env.mail() == []


def test_no_channel_means_nothing_is_sent_but_the_preview_is_kept(env: Env) -> None:
    env.configure({})
    run = env.store_run(sample_run_data(DAY_1))
    result = env.notify(run)
    assert result.to_json() == {"runId": result.run_id, "alerts": 0, "excluded": 0, "sent": 0, "suppressed": 0,
                                "failed": 0, "channels": []}
    assert env.posts() == [] and env.mail() == []
    version = env.services.config_repository.current()[1]
    assert version is not None
    kept = env.services.runs.derived(run, preview_name(version.version_id))
    assert kept is not None and kept["alerts"] == 10, "the Notifications page shows what would be sent"


def test_exclusions_apply_to_what_is_delivered(env: Env) -> None:
    env.configure({**BOTH, "exclusions": [{"tenantId": "fab00000-0000-4000-8000-000000000001"}],
                   "alerts": {"runSummary": {"enabled": False}}})
    result = env.notify(env.store_run(sample_run_data(DAY_1)))
    assert (result.alerts, result.excluded) == (5, 4)
    card = texts(env.posts()[0]["cards"][0])
    assert not any("Fabrikam" in line for line in card)
    assert "Fabrikam" not in env.mail()[0]["text"]


# --------------------------------------------------------------------------- the CLI


def local_settings(tmp_path: Path, azurite: Azurite, store: TableStore, **extra: str) -> Path:
    path = tmp_path / "local.settings.json"
    values = {"SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string, "SEATSYNC_TABLE_PREFIX": store.prefix,
              **extra}
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    return path


def test_notify_preview_writes_the_card_and_the_email_of_the_latest_run(
        env: Env, azurite: Azurite, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env.configure(BOTH)
    run = env.store_run(sample_run_data(DAY_1))
    args = argparse.Namespace(settings=local_settings(tmp_path, azurite, env.store, SEATSYNC_PUBLIC_URL=PUBLIC_URL),
                              run="latest", output_dir=str(tmp_path / "out"), sample=False)
    assert cmd_notify_preview(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Notification preview of run {run}: 10 alerts; digests are not applied, nothing was sent.")
    message = json.loads((tmp_path / "out" / "teams-message.json").read_text(encoding="utf-8"))
    assert validate_message(message) is None
    card = json.loads((tmp_path / "out" / "adaptive-card.json").read_text(encoding="utf-8"))
    assert card == message["attachments"][0]["content"]
    assert texts(card)[2:] == expected_card(env, run)[2:]
    text = (tmp_path / "out" / "email.txt").read_text(encoding="utf-8")
    assert "- Fabrikam Ltd: Power BI Pro: 2 purchased, 2 assigned (new)" in text
    assert "Grant consent: Northwind Traders: https://login.microsoftonline.com/" not in text, "no Graph app set"
    assert (tmp_path / "out" / "email.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert env.posts() == [] and env.mail() == [], "a preview sends nothing"
    assert NotificationRepository(env.store).deliveries(run) == [], "and records nothing"


def test_notify_preview_without_a_run_renders_the_sample_and_says_so(
        azurite: Azurite, store: TableStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(settings=local_settings(tmp_path, azurite, store), run="latest",
                              output_dir=str(tmp_path / "out"), sample=False)
    assert cmd_notify_preview(args) == 0
    assert "Notification preview of the built-in sample run (no run is recorded yet): 10 alerts" in \
        capsys.readouterr().out
    lines = texts(json.loads((tmp_path / "out" / "adaptive-card.json").read_text(encoding="utf-8")))
    assert lines[:2] == ["Preview with sample data", "SeatSync: run partly failed, 8 alerts"]
    sample = argparse.Namespace(settings=None, run="latest", output_dir=str(tmp_path / "sample"), sample=True)
    assert cmd_notify_preview(sample) == 0
    assert "of the built-in sample run: 10 alerts" in capsys.readouterr().out
    assert (tmp_path / "sample" / "email.txt").is_file()


def test_notify_send_test_reaches_every_channel(
        env: Env, azurite: Azurite, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env.configure({**BOTH, "teams": [*BOTH["teams"], {"name": "ops", "webhook": {"setting": "TEAMS_OPS_WEBHOOK"}}]})
    url = env.emulators.graph_url
    settings = local_settings(
        tmp_path, azurite, env.store, GRAPH_CLIENT_ID=CLIENT, GRAPH_PARTNER_TENANT_ID=PARTNER,
        GRAPH_CLIENT_SECRET=SECRET, GRAPH_AUTHORITY_HOST=url, GRAPH_ENDPOINT=url,
        SEATSYNC_CA_BUNDLE=env.emulators.ca, **env.app_settings())
    assert cmd_notify_send_test(argparse.Namespace(settings=settings)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["  teams:billing: sent (10 sample alerts, 1 attempt(s))", "  teams:ops: sent (10 sample alerts, "
                   "1 attempt(s))", "  email: sent (10 sample alerts, 1 attempt(s))"]
    assert texts(env.posts("billing")[0]["cards"][0])[0] == "Test message from SeatSync: sample data, no action needed"
    assert len(env.posts("ops")) == 1
    assert env.mail()[0]["text"].startswith("Test message from SeatSync: sample data, no action needed\n")
    history = NotificationRepository(env.store)
    assert history.sent("teams:billing") == {} and history.sent("email") == {}, "a test marks nothing as sent"


@pytest.mark.parametrize(("email_sender", "expected", "statuses"), [
    (SENDER, 1, ["FAILED", "sent"]),
    ("nobody@contoso-msp.example", 2, ["FAILED", "FAILED"]),
], ids=["some-delivered-is-partial", "nothing-delivered-is-failed"])
def test_notify_send_test_exits_1_when_some_channels_failed_and_2_when_all_did(
        env: Env, azurite: Azurite, tmp_path: Path, capsys: pytest.CaptureFixture[str], email_sender: str,
        expected: int, statuses: list[str]) -> None:
    from local_runner.cli import main

    env.configure({"teams": [{"name": "billing", "webhook": {"setting": "NOT_SET"}}],
                   "email": {"sender": email_sender, "recipients": RECIPIENTS[:1]}})
    url = env.emulators.graph_url
    settings = local_settings(
        tmp_path, azurite, env.store, GRAPH_CLIENT_ID=CLIENT, GRAPH_PARTNER_TENANT_ID=PARTNER,
        GRAPH_CLIENT_SECRET=SECRET, GRAPH_AUTHORITY_HOST=url, GRAPH_ENDPOINT=url,
        SEATSYNC_CA_BUNDLE=env.emulators.ca)
    assert main(["notify", "send-test", "--settings", str(settings)]) == expected
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[1].split(" ")[0] for line in out] == statuses, out
    assert len(env.mail()) == (1 if expected == 1 else 0)


def test_notifying_a_run_keeps_the_preview_the_notifications_page_shows(env: Env) -> None:
    """The page then reads this one document, not every tenant's snapshot, on its first view."""
    env.configure(BOTH)
    run = env.store_run(sample_run_data(DAY_1))
    config, version = env.services.config_repository.current()
    assert version is not None and env.services.runs.derived(run, preview_name(version.version_id)) is None
    env.notify(run)
    kept = env.services.runs.derived(run, preview_name(version.version_id))
    assert kept is not None
    data = gather_run_data(env.services.runs, env.services.snapshots, config, run, margins=env.services.margins)
    assert kept == preview_document(data, config, links_for(env.services, config.notifications), DAY_1)
    assert (kept["alerts"], kept["subject"]) == (10, env.mail()[0]["subject"])


def test_a_run_s_data_for_alerts_holds_the_changes_alerts_are_made_from_not_every_write(env: Env) -> None:
    """A run of thousands of tenants writes tens of thousands of changes; the alerts read the
    failed, recovered, held and deferred ones, and the summary counts the rest."""
    env.configure(BOTH)
    sample = sample_run_data(DAY_1)
    run = env.store_run(sample)
    config, _version = env.services.config_repository.current()
    data = gather_run_data(env.services.runs, env.services.snapshots, config, run, margins=env.services.margins)
    stored = [change for change, _ in env.services.runs.changes(run)]
    assert {c.status for c in stored} >= {ChangeStatus.APPLIED, ChangeStatus.HELD}
    assert sorted(c.change_id for c, _ in data.changes) == sorted(
        c.change_id for c in stored if c.status in ALERTED_CHANGES)
    assert all(c.status != ChangeStatus.APPLIED for c, _ in data.changes)


def test_two_alerts_of_one_key_are_sent_and_recorded_once_per_key(env: Env) -> None:
    """Alert keys are unique within a run; should two ever share one, the channel still gets both
    in its message and records the key once (a transaction may not write one row twice)."""
    from shared.notifications.alerts import Alert, Fact
    from shared.notifications.render import MessageContext
    from shared.notifications.service import _deliver

    env.configure({"email": {"sender": SENDER, "recipients": RECIPIENTS[:1]}})
    services = env.notify_services()
    settings = services.config().notifications
    first = Alert(kind="unused-licences", key="unused-licences|t1|s", fingerprint="f1", severity="info",
                  title="Fabrikam Ltd: 3 unused", line="3 unused", facts=(Fact("Unused", "3"),),
                  tenant_id="t1", tenant_name="Fabrikam Ltd")
    second = replace(first, fingerprint="f2", line="4 unused")
    spool = services.spool("run-dup")
    spool.write([first, second])
    [email] = services.notifiers(settings)
    context = MessageContext(run_id="run-dup", status="succeeded", dry_run=False, generated_at=DAY_1,
                             zone=settings.zone)
    try:
        result = _deliver(services, email, spool, settings, context, DAY_1)
    finally:
        spool.discard()
    assert (result.status, result.sent) == ("sent", 2)
    assert "UNUSED LICENCES (2)" in env.mail()[0]["text"]
    assert list(NotificationRepository(env.store).sent("email")) == [first.key]
