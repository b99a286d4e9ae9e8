"""The ``notifications`` section: a full example, defaults, and errors that name their field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from shared.config.notifications import ALERT_KINDS, DEFAULT_DIGESTS, NotificationSettings
from shared.config.schema import dump_config, parse_config
from shared.errors import ConfigError

EXAMPLE = """
notifications:
  teams:
    - name: billing
      webhook: {setting: TEAMS_WEBHOOK_URL}
    - name: service-desk
      webhook: {keyVault: teams-service-desk-webhook}
      kinds: [auth-failed, run-failed]
  email:
    sender: seatsync@contoso-msp.example
    recipients: [billing@contoso-msp.example, finance@contoso-msp.example]
    subjectPrefix: SeatSync (Contoso)
  alerts:
    unusedLicences: {digest: monthly, minimumUnused: 2}
    sharedMailboxLicensed: {enabled: false}
    gdapExpiring: {daysBefore: 45}
    inactiveUsers: {enabled: true, days: 60}
    runSummary: {digest: weekly}
  exclusions:
    - tenantId: FAB00000-0000-4000-8000-000000000001
      note: our own tenant
    - skuId: f30db892-07e9-47e9-837c-80727f46fd3d
    - tenantId: ada00000-0000-4000-8000-000000000003
      skuId: cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46
      kinds: [unused-licences]
  linkBaseUrl: https://seatsync.contoso-msp.example/
  timeZone: Europe/London
  currency: GBP
"""


def problems(section: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config({"notifications": section})
    return caught.value.problems


def test_the_documented_example_is_valid() -> None:
    settings = parse_config(yaml.safe_load(EXAMPLE)).notifications
    assert [c.name for c in settings.teams] == ["billing", "service-desk"]
    assert settings.teams[0].webhook.reference == "setting:TEAMS_WEBHOOK_URL"
    assert settings.teams[1].webhook.reference == "keyvault:teams-service-desk-webhook"
    assert settings.email is not None and settings.email.recipients[1] == "finance@contoso-msp.example"
    assert settings.alerts.digest("unused-licences") == "monthly"
    assert settings.alerts.unused_licences.minimum_unused == 2
    assert not settings.alerts.enabled("shared-mailbox-licensed")
    assert settings.alerts.digest("run-summary") == "weekly"
    assert settings.link_base_url == "https://seatsync.contoso-msp.example"
    assert settings.excluded("unlinked-licence", "fab00000-0000-4000-8000-000000000001")
    assert settings.excluded("unused-licences", "ada00000-0000-4000-8000-000000000003",
                             "CBDC14AB-D96C-4C30-B9F4-6ADA7CDC1D46")
    assert not settings.excluded("changes-held", "ada00000-0000-4000-8000-000000000003",
                                 "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46")
    assert not settings.excluded("run-failed", "fab00000-0000-4000-8000-000000000001")
    assert settings.has_channels


def test_the_example_in_the_docs_is_this_example() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "notifications.md").read_text(encoding="utf-8")
    block = re.search(r"## Configuration.*?```yaml\n(.*?)```", docs, re.S)
    assert block is not None
    assert parse_config(yaml.safe_load(block.group(1))) == parse_config(yaml.safe_load(EXAMPLE))


def test_defaults_send_nowhere_and_run_failures_and_auth_failures_at_once() -> None:
    settings = NotificationSettings()
    assert not settings.has_channels
    assert {k: settings.alerts.digest(k) for k in ALERT_KINDS} == DEFAULT_DIGESTS
    assert settings.alerts.digest("run-failed") == settings.alerts.digest("auth-failed") == "immediate"
    assert dump_config(parse_config({"notifications": {}})) == {}


def test_a_section_survives_export_and_import() -> None:
    config = parse_config(yaml.safe_load(EXAMPLE))
    assert parse_config(dump_config(config)) == config


@pytest.mark.parametrize(("section", "expected"), [
    ({"teams": [{"name": "billing"}]}, "notifications.teams[0].webhook: Field required"),
    ({"teams": [{"name": "Billing", "webhook": {"setting": "X"}}]},
     "notifications.teams[0].name: 'Billing' must be lower-case letters, digits and dashes"),
    ({"teams": [{"name": "a", "webhook": {"setting": "X", "keyVault": "y"}}]},
     "notifications.teams[0].webhook: give exactly one of 'setting'"),
    ({"teams": [{"name": "a", "webhook": {"setting": "X"}}, {"name": "a", "webhook": {"setting": "Y"}}]},
     "notifications.teams: the channel name 'a' is used twice"),
    ({"teams": [{"name": "a", "webhook": {"setting": "X"}, "kinds": ["everything"]}]},
     "notifications.teams[0].kinds[0]: Input should be 'run-failed'"),
    ({"email": {"sender": "seatsync", "recipients": ["a@b.example"]}},
     "notifications.email.sender: 'seatsync' is not an email address"),
    ({"email": {"sender": "s@b.example", "recipients": []}}, "notifications.email.recipients: "),
    ({"email": {"sender": "s@b.example", "recipients": ["a@b.example", "A@b.example"]}},
     "notifications.email.recipients: 'A@b.example' is listed twice"),
    ({"alerts": {"runFailed": {"digest": "weekly"}}},
     "notifications.alerts.runFailed.digest: run failures are always sent at once"),
    ({"alerts": {"unusedLicences": {"digest": "hourly"}}}, "notifications.alerts.unusedLicences.digest: "),
    ({"alerts": {"unusedLicences": {"minimumUnused": 0}}},
     "notifications.alerts.unusedLicences.minimumUnused: Input should be greater than or equal to 1"),
    ({"alerts": {"unknownKind": {}}}, "notifications.alerts.unknownKind: unknown field"),
    ({"exclusions": [{"note": "x"}]}, "notifications.exclusions[0]: give 'tenantId', 'skuId' or both"),
    ({"exclusions": [{"tenantId": "nope"}]}, "notifications.exclusions[0].tenantId: 'nope' is not a GUID"),
    ({"exclusions": [{"tenantId": "fab00000-0000-4000-8000-000000000001", "kinds": ["run-summary"]}]},
     "notifications.exclusions[0]: run-summary concern a whole run"),
    ({"timeZone": "Mars/Olympus"}, "notifications.timeZone: 'Mars/Olympus' is not an IANA time zone"),
    ({"linkBaseUrl": "seatsync.example.com"}, "notifications.linkBaseUrl: must be an https:// URL"),
    ({"cardItems": 50}, "notifications.cardItems: Input should be less than or equal to 15"),
    ({"slack": {}}, "notifications.slack: unknown field"),
])
def test_errors_name_the_field(section: dict[str, object], expected: str) -> None:
    found = problems(section)
    assert any(p.startswith(expected) for p in found), found
