"""The PSA ticket channel's pure parts: its configuration, which alerts make which ticket, the
ticket's text, and when a group's ticket may close."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.config.notifications import PsaTicketChannel
from shared.config.schema import parse_config
from shared.errors import ConfigError
from shared.notifications.alerts import Alert, Fact, Links, build_alerts
from shared.notifications.sample import ADATUM, CONTOSO_RETAIL, FABRIKAM, NORTHWIND, sample_run_data
from shared.notifications.service import message_context
from shared.notifications.tickets import (
    assessed,
    details_of,
    group_key,
    groups_of,
    marker,
    summary_of,
    ticket_kinds,
)

NOW = datetime(2026, 11, 25, 2, 5, tzinfo=UTC)
CONNECTIONS = [
    {"name": "cw", "type": "connectwise", "url": "https://cw.example.com/v2025_1/apis/3.0", "companyId": "msp",
     "publicKey": {"setting": "A"}, "privateKey": {"setting": "B"}, "clientId": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"},
    {"name": "halo", "type": "halopsa", "url": "https://halo.example.com", "clientId": "app",
     "clientSecret": {"setting": "S"}},
]


def document(tickets: dict[str, Any]) -> dict[str, Any]:
    return {"psaConnections": CONNECTIONS, "notifications": {"psaTickets": tickets}}


def problems(tickets: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document(tickets))
    return caught.value.problems


def test_the_channel_names_a_connection_and_the_place_of_its_psa() -> None:
    config = parse_config(document({"psa": "cw", "boardId": 12, "companyId": "250", "priority": 3}))
    channel = config.notifications.psa_tickets
    assert channel is not None
    assert (channel.place, channel.channel_id, channel.company_id) == (12, "psa-tickets:cw", "250")
    assert config.notifications.has_channels
    assert any("no PSA connection named 'autotask'" in p for p in problems({"psa": "autotask", "queueId": 5}))
    assert any("'halo' is a halopsa connection: give ticketTypeId" in p
               for p in problems({"psa": "halo", "boardId": 12}))
    assert any("give exactly one of boardId" in p for p in problems({"psa": "cw", "boardId": 1, "queueId": 2}))
    assert any("give exactly one of boardId" in p for p in problems({"psa": "cw"}))
    assert any("run summary is not an alert" in p
               for p in problems({"psa": "cw", "boardId": 1, "kinds": ["run-summary"]}))
    assert any("boardId" in p for p in problems({"psa": "cw", "boardId": 0}))
    off = parse_config(document({"psa": "cw", "boardId": 12, "enabled": False})).notifications
    assert not off.tickets_enabled and not off.has_channels


def test_without_a_company_of_its_own_the_channel_leaves_out_the_kinds_that_need_one() -> None:
    own = PsaTicketChannel(psa="cw", board_id=1, company_id="250")
    assert "run-failed" in ticket_kinds(own) and "gdap-not-added" in ticket_kinds(own)
    assert "run-summary" not in ticket_kinds(own)
    bare = ticket_kinds(PsaTicketChannel(psa="cw", board_id=1))
    assert {"run-failed", "writes-recovered", "gdap-not-added", "run-summary"}.isdisjoint(bare)
    assert "billing-problem" in bare
    named = PsaTicketChannel(psa="cw", board_id=1, kinds=("auth-failed",))
    assert ticket_kinds(named) == {"auth-failed"}


def test_alerts_group_by_kind_and_tenant_and_each_group_has_a_stable_marker() -> None:
    data = sample_run_data(NOW)
    alerts = build_alerts(data, parse_config({}).notifications, Links(base_url="https://s.example")).alerts
    groups = groups_of(alerts, ticket_kinds(PsaTicketChannel(psa="cw", board_id=1, company_id="1")),
                       data.tenant_name)
    assert [(g.kind, g.tenant_id) for g in groups] == sorted(
        [("auth-failed", NORTHWIND), ("billing-problem", FABRIKAM), ("changes-held", ADATUM),
         ("gdap-ended", NORTHWIND), ("gdap-not-added", CONTOSO_RETAIL), ("run-failed", None),
         ("shared-mailbox-licensed", FABRIKAM), ("unlinked-licence", FABRIKAM), ("unused-licences", FABRIKAM)],
        key=lambda pair: group_key(*pair))
    billing = next(g for g in groups if g.kind == "billing-problem")
    assert summary_of(billing) == "SeatSync: Billing problems - Fabrikam Ltd"
    assert marker("psa-tickets:cw", billing.key) == marker("psa-tickets:cw", billing.key)
    assert marker("psa-tickets:cw", billing.key) != marker("psa-tickets:halo", billing.key)
    assert len(marker("psa-tickets:cw", billing.key)) == len("[SeatSync 1a2b3c4d5e6f]")


def test_a_tickets_text_lists_each_alert_within_its_limit() -> None:
    data = sample_run_data(NOW)
    settings = parse_config({}).notifications
    links = Links(base_url="https://s.example")
    context = message_context(data, settings, links, NOW)
    alert = Alert(kind="unlinked-licence", key="k", fingerprint="f", severity="warning", title="Power BI Pro is not "
                  "billed", line="", facts=(Fact("Purchased", "2"),), tenant_id=FABRIKAM, tenant_name="Fabrikam Ltd",
                  action_text="Link it to a product.")
    [group] = groups_of([alert], frozenset({"unlinked-licence"}), data.tenant_name)
    text = details_of(group, context)
    assert text.splitlines()[:3] == [
        "SeatSync alert: Licences with no billing mapping", f"Tenant: Fabrikam Ltd ({FABRIKAM})",
        f"Run: {data.run_id} (partial) - https://s.example/api/dashboard/runs/{data.run_id}"]
    assert "- Power BI Pro is not billed\n  Purchased: 2\n  What to do: Link it to a product." in text
    many = [replace(alert, key=f"k{i}", title="x" * 300) for i in range(40)]
    [big] = groups_of(many, frozenset({"unlinked-licence"}), data.tenant_name)
    long = details_of(big, context, limit=2000)
    assert len(long) <= 2000
    assert long.endswith("more: see the run report)")


def test_a_group_clears_only_when_the_run_looked_at_what_it_is_about() -> None:
    data = sample_run_data(NOW)
    assert assessed(data, "run-failed", None)
    assert assessed(data, "billing-problem", FABRIKAM)  # collected and pushed
    assert assessed(data, "auth-failed", NORTHWIND)  # tried, whatever came of it
    assert not assessed(data, "billing-problem", NORTHWIND)  # tried but failed
    assert not assessed(data, "changes-held", "11111111-0000-4000-8000-000000000000")  # not in the run
    assert assessed(data, "gdap-ended", NORTHWIND)  # the customers were listed
    unlisted = replace(data, summary=data.summary.model_copy(update={"gdap_error": "HTTP 503"}))
    assert not assessed(unlisted, "gdap-ended", NORTHWIND)
    pushed_badly = replace(data, tenants=tuple(
        replace(t, push_error="HTTP 500") if t.tenant_id == FABRIKAM else t for t in data.tenants))
    assert not assessed(pushed_badly, "billing-problem", FABRIKAM)
