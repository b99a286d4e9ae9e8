"""The Teams card against the Adaptive Card 1.5 rules it relies on and the Workflows envelope;
the email's HTML and plain-text parts; size and speed at 500 tenants."""

from __future__ import annotations

import html
import json
import random
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from emulators.webhook import MAX_MESSAGE_BYTES, validate_message
from shared.adapters.run_store import ReconciliationRow, UnlinkedLicence
from shared.config.notifications import NotificationSettings
from shared.contracts import RunSummary, StartedRun, TenantOutcome, TenantWork
from shared.domain.model import ChangeKind, ChangeStatus, PlannedChange, SkuCount, TenantSnapshot
from shared.notifications.alerts import Alert, Links, RunData, TenantRow, build_alerts, sort_key
from shared.notifications.render import (
    CARD_BYTE_LIMIT,
    MessageBuilder,
    MessageContext,
    group_alerts,
    message_bytes,
    render_card,
    render_email,
)
from shared.notifications.sample import sample_run_data
from tests.notification_support import buttons, expected_sample_card, texts

NOW = datetime(2026, 11, 25, 2, 5, tzinfo=UTC)
LINKS = Links(base_url="https://seatsync.contoso-msp.example", graph_client_id="c1c1c1c1-0000-4000-8000-000000000002")

# --------------------------------------------------------------------------- Adaptive Card 1.5 rules

COMMON = {"type", "id", "isVisible", "separator", "spacing", "height", "requires", "fallback"}
SPACING = {"None", "Small", "Default", "Medium", "Large", "ExtraLarge", "Padding"}
ELEMENTS: dict[str, set[str]] = {
    "TextBlock": COMMON | {"text", "color", "fontType", "horizontalAlignment", "isSubtle", "maxLines", "size",
                           "weight", "wrap", "style"},
    "FactSet": COMMON | {"facts"},
    "Container": COMMON | {"items", "selectAction", "style", "verticalContentAlignment", "bleed",
                           "backgroundImage", "minHeight", "rtl"},
    "ActionSet": COMMON | {"actions"},
}
ENUMS: dict[str, set[str]] = {
    "color": {"Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"},
    "size": {"Default", "Small", "Medium", "Large", "ExtraLarge"},
    "weight": {"Default", "Lighter", "Bolder"},
    "spacing": SPACING,
}
CARD_KEYS = {"type", "version", "body", "actions", "$schema", "msteams", "fallbackText", "speak", "lang",
             "minHeight", "selectAction", "verticalContentAlignment", "backgroundImage", "rtl", "refresh",
             "authentication", "metadata"}
OPEN_URL_KEYS = {"type", "url", "title", "iconUrl", "id", "style", "fallback", "tooltip", "isEnabled", "mode"}


def card_problems(message: Any) -> list[str]:
    """Everything in a Workflows message that breaks the envelope or the Adaptive Card 1.5
    rules the renderer relies on (element types, their properties and enumerations, facts,
    Action.OpenUrl)."""
    problems: list[str] = []
    envelope = validate_message(message)
    if envelope:
        return [f"envelope: {envelope}"]
    if set(message) != {"type", "attachments"} or len(message["attachments"]) != 1:
        problems.append("the message must be exactly one attachment")
    attachment = message["attachments"][0]
    if set(attachment) - {"contentType", "contentUrl", "content"}:
        problems.append(f"attachment: unknown keys {set(attachment) - {'contentType', 'contentUrl', 'content'}}")
    card = attachment["content"]
    if card.get("version") != "1.5":
        problems.append(f"version must be 1.5, got {card.get('version')!r}")
    if card.get("$schema") != "http://adaptivecards.io/schemas/adaptive-card.json":
        problems.append("$schema must be the Adaptive Card schema")
    if set(card) - CARD_KEYS:
        problems.append(f"card: unknown keys {sorted(set(card) - CARD_KEYS)}")
    if card.get("msteams") not in (None, {"width": "Full"}):
        problems.append(f"msteams: {card['msteams']!r}")

    def action(where: str, item: Any) -> None:
        if not isinstance(item, dict) or item.get("type") != "Action.OpenUrl":
            problems.append(f"{where}: only Action.OpenUrl is used, got {item!r}")
            return
        if set(item) - OPEN_URL_KEYS:
            problems.append(f"{where}: unknown keys {sorted(set(item) - OPEN_URL_KEYS)}")
        if not isinstance(item.get("url"), str) or not item["url"].startswith("https://"):
            problems.append(f"{where}.url must be an https URL")
        if not isinstance(item.get("title"), str) or not item["title"].strip():
            problems.append(f"{where}.title must be a non-empty string")

    def element(where: str, item: Any) -> None:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind not in ELEMENTS:
            problems.append(f"{where}: unknown element type {kind!r}")
            return
        unknown = set(item) - ELEMENTS[kind]
        if unknown:
            problems.append(f"{where} ({kind}): unknown keys {sorted(unknown)}")
        for key, allowed in ENUMS.items():
            if key in item and item[key] not in allowed:
                problems.append(f"{where}.{key}: {item[key]!r} is not one of {sorted(allowed)}")
        if kind == "TextBlock":
            if not isinstance(item.get("text"), str) or not item["text"].strip():
                problems.append(f"{where}.text must be a non-empty string")
            if item.get("style") not in (None, "default", "heading"):
                problems.append(f"{where}.style: {item['style']!r}")
        elif kind == "FactSet":
            facts = item.get("facts")
            if not isinstance(facts, list) or not facts:
                problems.append(f"{where}.facts must be a non-empty array")
            else:
                for k, fact in enumerate(facts):
                    if (not isinstance(fact, dict) or set(fact) != {"title", "value"}
                            or not all(isinstance(fact[f], str) and fact[f].strip() for f in ("title", "value"))):
                        problems.append(f"{where}.facts[{k}] must be {{title, value}} non-empty strings")
        elif kind == "Container":
            items = item.get("items")
            if not isinstance(items, list) or not items:
                problems.append(f"{where}.items must be a non-empty array")
            else:
                for k, child in enumerate(items):
                    element(f"{where}.items[{k}]", child)
        elif kind == "ActionSet":
            actions = item.get("actions")
            if not isinstance(actions, list) or not actions:
                problems.append(f"{where}.actions must be a non-empty array")
            else:
                for k, child in enumerate(actions):
                    action(f"{where}.actions[{k}]", child)

    body = card.get("body")
    if not isinstance(body, list) or not body:
        problems.append("body must be a non-empty array")
    else:
        for index, item in enumerate(body):
            element(f"body[{index}]", item)
    for index, item in enumerate(card.get("actions", [])):
        action(f"actions[{index}]", item)
    return problems


def test_the_validator_catches_what_it_should() -> None:
    good = render_card(build_alerts(sample_run_data(NOW), NotificationSettings(), LINKS).alerts, context())
    assert card_problems(good) == []
    bad = json.loads(json.dumps(good))
    content = bad["attachments"][0]["content"]
    content["body"].append({"type": "Table", "rows": []})
    content["body"][0]["size"] = "Huge"
    content["body"][2]["items"][1]["facts"].append({"title": "x"})
    content["actions"].append({"type": "Action.Submit", "title": "x"})
    problems = card_problems(bad)
    assert any("unknown element type 'Table'" in p for p in problems)
    assert any("'Huge' is not one of" in p for p in problems)
    assert any("facts[" in p for p in problems)
    assert any("only Action.OpenUrl" in p for p in problems)
    assert card_problems({"type": "message", "attachments": []})[0].startswith("envelope:")


# --------------------------------------------------------------------------- helpers


RUN = sample_run_data(NOW).run_id
REPORT = f"https://seatsync.contoso-msp.example/api/dashboard/runs/{RUN}"


def context(**changes: Any) -> MessageContext:
    values: dict[str, Any] = {"run_id": RUN, "status": "partial", "dry_run": False, "generated_at": NOW,
                              "zone": ZoneInfo("UTC"), "report_url": REPORT}
    values.update(changes)
    return MessageContext(**values)


def sample_alerts() -> tuple[Alert, ...]:
    return build_alerts(sample_run_data(NOW), NotificationSettings(), LINKS).alerts


# --------------------------------------------------------------------------- the card


def test_card_of_every_kind_is_valid_and_reads_in_order() -> None:
    message = render_card(sample_alerts(), context())
    assert card_problems(message) == []
    assert texts(message) == expected_sample_card(RUN)
    assert buttons(message) == [
        ("Grant consent: Northwind Traders", "https://login.microsoftonline.com/00000000-0000-4000-8000-0000000000b2"
                                             "/adminconsent?client_id=c1c1c1c1-0000-4000-8000-000000000002"),
        ("Review approvals", "https://seatsync.contoso-msp.example/api/dashboard/approvals"),
        ("Unlinked licences", "https://seatsync.contoso-msp.example/api/dashboard/mapping"),
        ("Open run report", REPORT),
    ]
    colors = [c["items"][0]["color"] for c in message["attachments"][0]["content"]["body"] if c["type"] == "Container"]
    assert colors == ["Attention", "Attention", "Warning", "Warning", "Warning", "Accent", "Accent", "Accent",
                      "Warning", "Warning"]


def test_a_group_lists_a_handful_then_plus_n_more() -> None:
    alerts = many_tenants(12)
    message = render_card([a for a in alerts if a.kind == "unlinked-licence"], context(), max_items=5)
    lines = texts(message)
    assert lines[2] == "Licences with no billing mapping (12)"
    assert lines[3:8] == [f"Tenant {i:03d} | Microsoft 365 E3: 10 purchased, 7 assigned" for i in range(5)]
    assert lines[8] == "+7 more"


def test_without_a_public_url_there_are_no_run_report_buttons() -> None:
    alerts = build_alerts(sample_run_data(NOW), NotificationSettings(), Links()).alerts
    message = render_card(alerts, context(report_url=None))
    assert card_problems(message) == []
    assert buttons(message) == []
    assert "actions" not in message["attachments"][0]["content"]


def test_long_names_are_clipped_for_a_phone() -> None:
    alert = Alert(kind="gdap-not-added", key="k", fingerprint="f", severity="info", title="t",
                  line="x" * 400, facts=(), tenant_name="A" * 80)
    fact = render_card([alert], context())["attachments"][0]["content"]["body"][2]["items"][1]["facts"][0]
    assert len(fact["title"]) == 32 and fact["title"].endswith("…")
    assert len(fact["value"]) == 160


def test_a_banner_comes_first() -> None:
    message = render_card(sample_alerts(), context(banner="Preview with sample data"))
    assert texts(message)[0] == "Preview with sample data"
    assert card_problems(message) == []


# --------------------------------------------------------------------------- 500 tenants


def many_tenants(count: int) -> tuple[Alert, ...]:
    e3 = "05e9a617-0261-4cee-bb44-138d3ef5d965"
    run_id = "20261125T020000Z-1a2b3c4d"
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(count)]
    names = {t: f"Tenant {i:03d}" for i, t in enumerate(ids)}
    tenants = []
    for i, t in enumerate(ids):
        outcome = (TenantOutcome(tenant_id=t, name=names[t], status="auth-failed", error_code="AADSTS65001")
                   if i % 10 == 0 else TenantOutcome(tenant_id=t, name=names[t], status="ok"))
        tenants.append(TenantRow(t, names[t], outcome))
    snapshots = {t: TenantSnapshot(tenant_id=t, run_id=run_id, collected_at=NOW, users=(),
                                   skus=(SkuCount(e3, "SPE_E3", purchased=10, consumed=7),)) for t in ids}
    data = RunData(
        run_id=run_id,
        summary=RunSummary(run_id=run_id, status="partial", dry_run=False, trigger="timer", requested_by="timer",
                           started_at=NOW, finished_at=NOW, tenants_total=count, tenants_ok=count - count // 10,
                           tenants_failed=count // 10, changes_applied=count),
        started=StartedRun(run_id=run_id, tenants=[TenantWork(tenant_id=t, name=names[t]) for t in ids],
                           gdap_not_configured=[TenantWork(tenant_id=t, name=f"New {names[t]}") for t in ids[:50]]),
        tenants=tuple(tenants),
        changes=tuple((PlannedChange(change_id=f"c{i}", kind=ChangeKind.SET_QUANTITY, tenant_id=t, company_id="1",
                                     psa="connectwise", agreement_id=str(i), line_id=str(i), sku_id=e3,
                                     old_quantity=10, new_quantity=5, reason="decrease above the limit",
                                     status=ChangeStatus.HELD), None) for i, t in enumerate(ids)),
        reconciliation=tuple(ReconciliationRow(t, names[t], "connectwise", "1", "1", "1", "k", f"sku:{e3}", "E3", 10, 7,
                                               7, 7, Decimal("36.00")) for t in ids),
        unlinked=tuple(UnlinkedLicence(t, names[t], e3, "SPE_E3", "Microsoft 365 E3", 10, 7) for t in ids),
        snapshots=snapshots,
    )
    return build_alerts(data, NotificationSettings(), LINKS).alerts


def test_500_tenants_of_alerts_fit_one_teams_message() -> None:
    alerts = many_tenants(500)
    assert len(alerts) == 1602
    message = render_card(alerts, context())
    email = render_email(alerts, context())
    size = message_bytes(message)
    assert card_problems(message) == []
    assert size <= CARD_BYTE_LIMIT < MAX_MESSAGE_BYTES
    assert "+495 more" in texts(message), "each group shows a handful and counts the rest"
    assert "+400 more (see the run report)" in email.text


def test_a_card_over_the_limit_is_shrunk_rather_than_refused() -> None:
    alerts = many_tenants(40)
    full = render_card(alerts, context(), max_items=5)
    assert "+35 more" in texts(full)
    smaller = render_card(alerts, context(), max_items=5, byte_limit=message_bytes(full) - 1)
    assert message_bytes(smaller) < message_bytes(full)
    assert card_problems(smaller) == []
    assert "+37 more" in texts(smaller), "three items per group instead of five"
    tiny = render_card(alerts, context(), max_items=5, byte_limit=1000)
    assert card_problems(tiny) == []
    assert "+40 more" in texts(tiny), "at the last resort only the headings and counts"
    assert buttons(tiny) == [("Open run report", REPORT)]


def test_a_message_made_from_a_stream_reads_as_one_made_from_every_alert() -> None:
    """Notifying a run streams its alerts in the order they were kept, not in display order: the
    message keeps each kind's count, gravest severity and first items, and renders as the whole."""
    many = many_tenants(500)
    alerts = list(many) + [a for a in sample_alerts() if a.key not in {m.key for m in many}]
    whole = group_alerts(sorted(alerts, key=sort_key))
    shuffled = alerts[:]
    random.Random(14).shuffle(shuffled)
    builder = MessageBuilder(keep=100)
    for alert in shuffled:
        builder.add(alert)
    streamed = builder.message()
    assert [(g.kind, g.count, g.severity) for g in streamed.groups] == [
        (g.kind, g.count, g.severity) for g in whole.groups]
    assert streamed.alerts == len(alerts)
    assert max(len(g.shown) for g in streamed.groups) == 100, "a kind of 500 alerts holds its first 100"
    for group, full in zip(streamed.groups, whole.groups, strict=True):
        assert group.shown == full.shown[:100]
    assert render_card(streamed, context()) == render_card(sorted(alerts, key=sort_key), context())
    assert render_email(streamed, context()) == render_email(sorted(alerts, key=sort_key), context())


# --------------------------------------------------------------------------- email


def test_email_subject_and_both_parts_carry_the_same_content() -> None:
    email = render_email(sample_alerts(), context())
    assert email.subject == "SeatSync: run partly failed, 8 alerts (25 Nov 2026)"
    text_lines = [line for line in email.text.splitlines() if line.startswith("- ")]
    assert len(text_lines) == 21
    plain_html = html.unescape(re.sub(r"<[^>]+>", " ", email.html))
    plain_html = " ".join(plain_html.split())
    for line in text_lines:
        title, _, value = line[2:].partition(": ")
        assert title in plain_html and value in plain_html, line
    assert "Grant consent: Northwind Traders: https://login.microsoftonline.com/" in email.text
    assert ('href="https://login.microsoftonline.com/00000000-0000-4000-8000-0000000000b2/adminconsent?'
            'client_id=c1c1c1c1-0000-4000-8000-000000000002"') in email.html
    assert email.text.endswith(f"Run report: {REPORT}\n")
    assert email.html.startswith("<!DOCTYPE html>")


def test_email_escapes_what_it_did_not_write() -> None:
    alert = Alert(kind="gdap-not-added", key="k", fingerprint="f", severity="info", title="t",
                  line="<script>alert(1)</script>", facts=(), tenant_name="Fish & <Chips>")
    email = render_email([alert], context())
    assert "<script>" not in email.html
    assert "Fish &amp; &lt;Chips&gt;" in email.html
    assert "- Fish & <Chips>: <script>alert(1)</script>" in email.text


def test_email_subject_prefix_and_time_zone() -> None:
    email = render_email(sample_alerts(), context(zone=ZoneInfo("Australia/Sydney")), subject_prefix="Billing")
    assert email.subject == "Billing: run partly failed, 8 alerts (25 Nov 2026)"
    assert "25 Nov 2026 13:05 AEDT" in email.text
