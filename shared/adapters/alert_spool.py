"""A run's alerts kept in Table Storage while its notification sends them.

A large MSP's run raises thousands of alerts (two a tenant is common). Notifying it used to hold
them all at once, about 900 bytes each, to decide per channel what is due and to render the
message; the process kept that memory. Instead, the alerts are written here as they are made,
a few tenants at a time, and each channel reads them back a page at a time: the notification
holds one page, the message's first items per kind and a flag per alert.

Table ``<prefix>notifications``, partition ``spool~<runId>~<token>`` (one per notification of a
run: a retried or hand-run notification of the same run has a partition of its own), row
``<hash of the alert key>~<sequence>``: the alert as JSON (``Alert0``, ``Alert1``, … 15,000
characters each: within a property's 64 KiB whatever the characters). Rows come back in the order
of the hash, which is also the order of the channels' history rows
(``notification_store.row_key_for``), so deciding what is due is a merge of two ordered streams.
The partition is deleted when the notification ends; one left by a process that died while it
notified is deleted by a later notification (``discard_abandoned``).
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.notification_store import row_key_for
from shared.adapters.tables import LARGE_ROWS_PAGE, TableStore, partition, submit_streamed
from shared.domain.problems import ProblemKind
from shared.notifications.alerts import Alert, Fact

log = logging.getLogger(__name__)

_PART_CHARS = 15_000
_MAX_PARTS = 15
"""An alert's JSON may take 15 properties of 15,000 characters (64 KiB of UTF-16 each even when
every character takes two units), within an entity's 1 MiB; the largest alert SeatSync makes (a
failed run's reasons, clipped) is a few thousand characters."""

ABANDONED_AFTER = timedelta(hours=12)
"""Kept alerts older than this belong to no notification still running: a notification runs
within one activity, and an activity is stopped by the host long before (``functionTimeout``)."""

_FIELDS = ("kind", "key", "fingerprint", "severity", "title", "line", "tenant_id", "tenant_name", "sku_id",
           "licence", "action_text", "action_url", "action_label")


def alert_to_json(alert: Alert) -> str:
    raw: dict[str, Any] = {name: getattr(alert, name) for name in _FIELDS}
    raw["facts"] = [[fact.title, fact.value] for fact in alert.facts]
    raw["problem"] = alert.problem.value if alert.problem is not None else None
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":"))


def alert_from_json(text: str) -> Alert:
    raw: dict[str, Any] = json.loads(text)
    facts = tuple(Fact(title, value) for title, value in raw.pop("facts"))
    problem = raw.pop("problem")
    for name in ("kind", "severity", "sku_id", "licence"):
        if raw[name]:
            raw[name] = sys.intern(raw[name])
    return Alert(**raw, facts=facts, problem=ProblemKind(problem) if problem is not None else None)


class SpoolError(ValueError):
    """An alert too large to be kept even when shortened (never made by SeatSync's own kinds)."""


_SHORT_FACTS = 40
_SHORT_TEXT = 2_000


def _shortened(alert: Alert) -> Alert:
    """An alert whose JSON would not fit a row (none of SeatSync's own kinds comes near it), kept
    with its first facts and each text clipped, rather than costing the run its notification:
    the run report has the whole. Its key and fingerprint are the alert's own."""
    def clip(text: str) -> str:
        return text if len(text) <= _SHORT_TEXT else text[: _SHORT_TEXT - 1] + "…"

    facts = tuple(Fact(clip(f.title), clip(f.value)) for f in alert.facts[:_SHORT_FACTS])
    if len(alert.facts) > _SHORT_FACTS:
        facts += (Fact("More", f"{len(alert.facts) - _SHORT_FACTS} more facts: see the run report"),)
    return replace(alert, title=clip(alert.title), line=clip(alert.line), facts=facts,
                   action_text=clip(alert.action_text), tenant_name=clip(alert.tenant_name or "") or None,
                   licence=clip(alert.licence or "") or None)


class AlertSpool:
    """One notification's alerts, written once (``write``) and read in hash order (``read``) as
    often as its channels need, then deleted (``discard``)."""

    def __init__(self, store: TableStore, run_id: str) -> None:
        self._table = store.table("notifications")
        self.partition_key = f"spool~{run_id}~{secrets.token_hex(4)}"
        self.written = 0

    def write(self, alerts: Iterable[Alert]) -> int:
        """Keep ``alerts`` (a stream: a transaction of them is held at a time); answers how many."""
        def rows() -> Iterator[tuple[str, dict[str, Any]]]:
            for alert in alerts:
                text = alert_to_json(alert)
                if len(text) > _PART_CHARS * _MAX_PARTS:
                    log.warning("notify: alert %s is %d characters of JSON; kept shortened", alert.key, len(text))
                    text = alert_to_json(_shortened(alert))
                    if len(text) > _PART_CHARS * _MAX_PARTS:
                        raise SpoolError(f"alert {alert.key} is {len(text)} characters of JSON even shortened, "
                                         f"more than {_PART_CHARS * _MAX_PARTS} a notification can keep")
                parts = [text[i:i + _PART_CHARS] for i in range(0, len(text), _PART_CHARS)]
                entity: dict[str, Any] = {"PartitionKey": self.partition_key,
                                          "RowKey": f"{row_key_for(alert.key)}~{self.written:07d}", "Kind": alert.kind}
                entity.update((f"Alert{index}", part) for index, part in enumerate(parts))
                self.written += 1
                yield "upsert", entity

        return submit_streamed(self._table, rows())

    def read(self) -> Iterator[tuple[str, Alert]]:
        """Every alert kept, with the row key of its history (``row_key_for``), in that order."""
        for entity in partition(self._table, self.partition_key, page_size=LARGE_ROWS_PAGE):
            text = "".join(str(entity[f"Alert{index}"]) for index in range(_MAX_PARTS) if f"Alert{index}" in entity)
            yield str(entity["RowKey"]).split("~", 1)[0], alert_from_json(text)

    def discard_abandoned(self, now: datetime, older_than: timedelta = ABANDONED_AFTER) -> int:
        """Delete what notifications that never ended (their process died, or their host timed
        them out) left kept more than ``older_than`` before ``now``; answers how many rows. Usually
        a single request that finds nothing."""
        table = self._table
        rows = table.query_entities(
            "PartitionKey ge @low and PartitionKey lt @high and Timestamp lt @before",
            parameters={"low": "spool~", "high": "spool~~", "before": now - older_than},
            select=["PartitionKey", "RowKey"])
        return submit_streamed(table, (("delete", {"PartitionKey": str(e["PartitionKey"]), "RowKey": str(e["RowKey"])})
                                       for e in rows))

    def discard(self) -> int:
        """Delete the kept alerts; answers how many rows were deleted."""
        return submit_streamed(self._table, (
            ("delete", {"PartitionKey": self.partition_key, "RowKey": str(entity["RowKey"])})
            for entity in partition(self._table, self.partition_key, select=("RowKey",))))
