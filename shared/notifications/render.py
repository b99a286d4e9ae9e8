"""Alerts as a Teams message (an Adaptive Card in the Workflows envelope) and as an email (HTML
and plain text with the same content).

The card is made for a phone: a short title, one group per alert kind with a bold heading and a
FactSet of at most a handful of items ("+N more" after them), what to do in one line, and
``Action.OpenUrl`` buttons for what needs action. Teams refuses messages over about 28 KB, so the
card is shrunk (fewer items, then no per-group buttons) until it fits ``CARD_BYTE_LIMIT``; the
email lists more items per group and has no such limit.

Only Adaptive Card 1.5 elements Teams renders are used: TextBlock, FactSet, Container,
ActionSet and Action.OpenUrl.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from shared.config.notifications import RUN_KINDS, AlertKind
from shared.notifications.alerts import KIND_ORDER, KINDS, Alert, Fact, Severity, plural, sort_key

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.5"
CARD_BYTE_LIMIT = 27_000
BUTTONS_PER_GROUP = 2
_SUBJECT_WIDTH = 32
_CARD_LINE_WIDTH = 160
_COLORS: dict[Severity, str] = {"critical": "Attention", "warning": "Warning", "info": "Accent"}
_HTML_COLORS: dict[Severity, str] = {"critical": "#c4314b", "warning": "#a05a00", "info": "#1f5fa8"}


@dataclass(frozen=True)
class MessageContext:
    run_id: str
    status: str | None
    dry_run: bool
    generated_at: datetime
    zone: tzinfo
    report_url: str | None = None
    banner: str | None = None
    """A line shown above everything, e.g. that this is a preview or a test."""


_SEVERITY_ORDER: tuple[Severity, ...] = ("critical", "warning", "info")


@dataclass(frozen=True)
class AlertGroup:
    """The alerts of one kind in a message: the first of them in display order (``shown``, at
    least as many as the message lists) and how many there are in all (``count``) and how grave
    the gravest is (``severity``). A group of thousands of alerts is sent without holding them."""

    kind: AlertKind
    shown: tuple[Alert, ...]
    count: int
    severity: Severity

    @classmethod
    def of(cls, kind: AlertKind, alerts: Sequence[Alert]) -> AlertGroup:
        return cls(kind, tuple(alerts), len(alerts), gravest(a.severity for a in alerts))

    @property
    def run_level(self) -> bool:
        return self.kind in RUN_KINDS

    @property
    def heading(self) -> str:
        if self.run_level:
            return self.shown[0].title
        return f"{KINDS[self.kind].label} ({self.count})"

    @property
    def action_text(self) -> str:
        return self.shown[0].action_text if self.run_level else KINDS[self.kind].action

    def buttons(self, shown: int, skip_url: str | None) -> list[tuple[str, str]]:
        """Distinct links of the shown items, at most ``BUTTONS_PER_GROUP``."""
        links: list[tuple[str, str]] = []
        for alert in self.shown[: max(shown, 1)]:
            if alert.action_url and alert.action_url != skip_url and alert.action_label:
                link = (alert.action_label, alert.action_url)
                if link not in links:
                    links.append(link)
        return links[:BUTTONS_PER_GROUP]


def gravest(severities: Iterable[Severity]) -> Severity:
    return min(severities, key=_SEVERITY_ORDER.index)


@dataclass(frozen=True)
class AlertMessage:
    """What one message tells, by kind in display order: what the card and the email are made
    from. ``group_alerts`` makes it from alerts at hand; ``MessageBuilder`` from a stream."""

    groups: tuple[AlertGroup, ...]

    @property
    def alerts(self) -> int:
        return sum(g.count for g in self.groups)

    def first(self, kind: AlertKind) -> Alert | None:
        return next((g.shown[0] for g in self.groups if g.kind == kind and g.shown), None)


class MessageBuilder:
    """An ``AlertMessage`` made from alerts one at a time, in any order: each kind keeps its count,
    its gravest severity and its first ``keep`` alerts in display order (``sort_key``), so a
    message about any number of alerts holds at most twice ``keep`` of each kind."""

    def __init__(self, keep: int) -> None:
        self._keep = max(keep, 1)
        self._counts: dict[AlertKind, int] = {}
        self._severity: dict[AlertKind, Severity] = {}
        self._first: dict[AlertKind, list[tuple[tuple[int, str, str, str, int], Alert]]] = {}
        self._added = 0  # equal display keys (never two of a run's alerts) keep their arrival order

    def add(self, alert: Alert) -> None:
        kind = alert.kind
        self._counts[kind] = self._counts.get(kind, 0) + 1
        known = self._severity.get(kind)
        self._severity[kind] = alert.severity if known is None else gravest((known, alert.severity))
        self._added += 1
        first = self._first.setdefault(kind, [])
        first.append(((*sort_key(alert), self._added), alert))
        if len(first) >= 2 * self._keep:  # cut back to the first ``keep`` now and then
            first.sort(key=_display_key)
            del first[self._keep:]

    def message(self) -> AlertMessage:
        groups = []
        for kind in sorted(self._counts, key=KIND_ORDER.__getitem__):
            shown = tuple(alert for _, alert in sorted(self._first[kind], key=_display_key)[: self._keep])
            groups.append(AlertGroup(kind, shown, self._counts[kind], self._severity[kind]))
        return AlertMessage(tuple(groups))


def _display_key(item: tuple[tuple[int, str, str, str, int], Alert]) -> tuple[int, str, str, str, int]:
    return item[0]


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def group_alerts(alerts: Sequence[Alert] | AlertMessage) -> AlertMessage:
    """The message of ``alerts``, all of them shown (a message, as it is)."""
    if isinstance(alerts, AlertMessage):
        return alerts
    by_kind: dict[AlertKind, list[Alert]] = {}
    for alert in alerts:
        by_kind.setdefault(alert.kind, []).append(alert)
    return AlertMessage(tuple(AlertGroup.of(kind, items)
                              for kind, items in sorted(by_kind.items(), key=lambda i: KIND_ORDER[i[0]])))


def headline(alerts: Sequence[Alert] | AlertMessage) -> str:
    """The message in a few words: a failed run first, else how many alerts, else the summary."""
    message = group_alerts(alerts)
    failed = message.first("run-failed")
    others = sum(g.count for g in message.groups if not g.run_level)
    if failed is not None:
        text = failed.title.split(":")[0].lower()
        return text + (f", {plural(others, 'alert')}" if others else "")
    if others:
        return plural(others, "alert")
    summary = message.first("run-summary")
    if summary is not None:
        return summary.title[0].lower() + summary.title[1:]
    return "nothing to report"


def when(context: MessageContext) -> str:
    local = context.generated_at.astimezone(context.zone)
    return f"{local:%d %b %Y %H:%M} {local.tzname()}"


def subtitle(context: MessageContext) -> str:
    parts = [when(context), f"run {context.run_id}"]
    if context.status:
        parts.append(context.status + (" (dry run)" if context.dry_run else ""))
    return " · ".join(parts)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _items(group: AlertGroup, max_items: int) -> tuple[list[Fact], int]:
    """The facts a group shows and how many more it has: a run-level alert's own facts (all of
    them), else one fact per alert, for the first ``max_items`` alerts only (a group of thousands
    of alerts shows a few and counts the rest)."""
    if group.run_level:
        return list(group.shown[0].facts), 0
    shown = [Fact(a.subject, a.line) for a in group.shown[:max_items]]
    return shown, group.count - len(shown)


# --------------------------------------------------------------------------- Teams card


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _open_url(title: str, url: str) -> dict[str, Any]:
    return {"type": "Action.OpenUrl", "title": _clip(title, 40), "url": url}


def _card_group(group: AlertGroup, max_items: int, buttons: bool, skip_url: str | None) -> dict[str, Any]:
    shown, more = _items(group, max_items)
    items: list[dict[str, Any]] = [
        _text(group.heading, weight="Bolder", size="Medium", color=_COLORS[group.severity]),
    ]
    if shown:
        items.append({"type": "FactSet", "facts": [
            {"title": _clip(f.title, _SUBJECT_WIDTH), "value": _clip(f.value, _CARD_LINE_WIDTH)} for f in shown]})
    if more:
        items.append(_text(f"+{more} more", isSubtle=True, size="Small", spacing="Small"))
    if group.action_text:
        items.append(_text(group.action_text, size="Small", spacing="Small"))
    links = group.buttons(len(shown), skip_url) if buttons else []
    if links:
        items.append({"type": "ActionSet", "actions": [_open_url(t, u) for t, u in links]})
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def _card(alerts: AlertMessage, context: MessageContext, max_items: int, buttons: bool) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    if context.banner:
        body.append(_text(context.banner, weight="Bolder", color="Warning", size="Small"))
    body += [
        _text(f"SeatSync: {headline(alerts)}", size="Large", weight="Bolder", style="heading"),
        _text(subtitle(context), isSubtle=True, size="Small", spacing="None"),
    ]
    body += [_card_group(g, max_items, buttons, context.report_url) for g in alerts.groups]
    content: dict[str, Any] = {
        "$schema": CARD_SCHEMA, "type": "AdaptiveCard", "version": CARD_VERSION,
        "msteams": {"width": "Full"}, "body": body,
    }
    if context.report_url:
        content["actions"] = [_open_url("Open run report", context.report_url)]
    return {"type": "message", "attachments": [
        {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": content}]}


def message_bytes(message: dict[str, Any]) -> int:
    return len(json.dumps(message, ensure_ascii=False).encode("utf-8"))


def render_card(alerts: Sequence[Alert] | AlertMessage, context: MessageContext, *, max_items: int = 5,
                byte_limit: int = CARD_BYTE_LIMIT) -> dict[str, Any]:
    """The Workflows message (``{"type": "message", "attachments": [card]}``), within ``byte_limit``."""
    message_of = group_alerts(alerts)
    steps = [(max_items, True), (min(max_items, 3), True), (1, True), (1, False), (0, False)]
    message: dict[str, Any] = {}
    for items, buttons in steps:
        message = _card(message_of, context, items, buttons)
        if message_bytes(message) <= byte_limit:
            return message
    return message


# --------------------------------------------------------------------------- email


def _a(url: str, label: str) -> str:
    return f'<a href="{html.escape(url)}" style="color:#1f5fa8;">{html.escape(label)}</a>'


def render_email(alerts: Sequence[Alert] | AlertMessage, context: MessageContext, *, max_items: int = 100,
                 subject_prefix: str = "SeatSync") -> RenderedEmail:
    message = group_alerts(alerts)
    title = f"SeatSync: {headline(message)}"
    local = context.generated_at.astimezone(context.zone)
    subject = f"{subject_prefix}: {headline(message)} ({local:%d %b %Y})"
    sub = subtitle(context)
    text: list[str] = []
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>",
        '<body style="margin:0;padding:16px;font-family:\'Segoe UI\',Helvetica,Arial,sans-serif;'
        'font-size:14px;line-height:1.4;color:#1f1f1f;">',
    ]
    if context.banner:
        parts.append(f'<p style="margin:0 0 12px;color:#a05a00;font-weight:600;">{html.escape(context.banner)}</p>')
        text += [context.banner, ""]
    parts += [f'<h1 style="font-size:20px;margin:0 0 4px;">{html.escape(title)}</h1>',
              f'<p style="margin:0 0 8px;color:#616161;">{html.escape(sub)}</p>']
    text += [title, sub]
    for group in message.groups:
        shown, more = _items(group, max_items)
        color = _HTML_COLORS[group.severity]
        parts.append(f'<h2 style="font-size:16px;margin:24px 0 8px;color:{color};">{html.escape(group.heading)}</h2>')
        parts.append('<table role="presentation" style="border-collapse:collapse;max-width:760px;">')
        text += ["", group.heading.upper(), "-" * min(len(group.heading), 72)]
        for index, fact in enumerate(shown):
            link = ""
            alert = None if group.run_level else group.shown[index]
            if alert is not None and alert.action_url and alert.action_label and alert.action_url != context.report_url:
                link = f" ({_a(alert.action_url, alert.action_label)})"
            parts.append(
                '<tr><td style="padding:3px 16px 3px 0;vertical-align:top;font-weight:600;">'
                f'{html.escape(fact.title)}</td><td style="padding:3px 0;vertical-align:top;">'
                f"{html.escape(fact.value)}{link}</td></tr>")
            text.append(f"- {fact.title}: {fact.value}")
            if link and alert is not None and alert.action_url:
                text.append(f"  {alert.action_label}: {alert.action_url}")
        parts.append("</table>")
        if more:
            note = f"+{more} more (see the run report)"
            parts.append(f'<p style="margin:4px 0 0;color:#616161;">{html.escape(note)}</p>')
            text.append(f"  {note}")
        if group.action_text:
            parts.append(f'<p style="margin:8px 0 0;">What to do: {html.escape(group.action_text)}</p>')
            text.append(f"What to do: {group.action_text}")
    footer = "Sent by SeatSync after run " + context.run_id + "."
    parts.append(f'<p style="margin:24px 0 0;font-size:12px;color:#616161;">{html.escape(footer)}'
                 + (f" {_a(context.report_url, 'Open the run report')}" if context.report_url else "") + "</p>")
    text += ["", footer]
    if context.report_url:
        text.append(f"Run report: {context.report_url}")
    parts.append("</body></html>")
    return RenderedEmail(subject=subject, html="\n".join(parts) + "\n", text="\n".join(text) + "\n")
