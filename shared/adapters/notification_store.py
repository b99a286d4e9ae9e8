"""What notifications were sent, when and where, and the deliveries that failed.

Table ``<prefix>notifications``:

- partition ``sent~<channel>`` (``sent~teams:billing``, ``sent~email``), row = a hash of the
  alert's key: the last delivery of that alert to that channel (``Key``, ``Kind``,
  ``Fingerprint``, ``SentAt``, ``RunId``, ``TenantId``, ``SkuId``, ``Title``). The digest reads
  the partition to decide what is due; rows older than ``PRUNE_AFTER`` are deleted (no digest
  period is that long).
- partition ``delivery~<runId>``, row = ``<time>~<channel>~<random>``: one row per channel per
  notification of a run (``Status`` sent / failed / nothing-due, ``Attempts``, ``Alerts``,
  ``Suppressed``, ``Kinds`` and ``Fingerprints`` as JSON, ``Error`` with the reason, ``Size`` in
  bytes). A fingerprint list too long for one property is stored as a document next to it.
- partition ``ticket~<channel>`` (``ticket~psa-tickets:cw``), row = a hash of the alert group's
  key: the PSA ticket of that group (``Key``, ``Kind``, ``TenantId``, ``TicketId``, ``CompanyId``,
  ``Marker``, ``Status`` opening / open / closed / acknowledged, ``OpenedAt``, ``OpenedInRun``,
  ``ClosedAt``, ``Digest`` of what the ticket told). Written ``opening`` before the PSA is asked to
  create a ticket (the intent) and ``open`` as soon as it answers; a closed ticket's row stays as
  its history.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from azure.data.tables import UpdateMode

from shared.adapters.tables import (
    LARGE_ROWS_PAGE,
    DocumentRef,
    TableStore,
    partition,
    read_document,
    submit_streamed,
    upsert,
    write_document,
)
from shared.notifications.alerts import Alert
from shared.notifications.digest import SentRecord
from shared.notifications.tickets import TICKET_STATUSES, TicketRecord

PRUNE_AFTER = timedelta(days=62)
_TEXT_LIMIT = 30_000
DeliveryStatus = Literal["sent", "failed", "nothing-due"]


def _clip(text: str, limit: int = _TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 20] + " ...(truncated)"


def row_key_for(key: str) -> str:
    """Alert keys may hold characters a RowKey may not (``/``, ``#``), so rows use a hash."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True)
class DeliveryRecord:
    run_id: str
    channel: str
    channel_type: str
    status: DeliveryStatus
    at: datetime
    attempts: int = 0
    alerts: int = 0
    suppressed: int = 0
    kinds: Mapping[str, int] = field(default_factory=dict)
    fingerprints: tuple[str, ...] = ()
    error: str | None = None
    size: int = 0
    test: bool = False


class NotificationRepository:
    def __init__(self, store: TableStore) -> None:
        self._table = store.table("notifications")

    # what was sent ---------------------------------------------------------------------------
    def sent(self, channel: str) -> dict[str, SentRecord]:
        """The last delivery of every alert to ``channel``, by alert key (the ticket channel's
        history; the message channels' is read as a stream, ``iter_sent``)."""
        return {record.key: record for _row, record in self.iter_sent(channel)}

    def iter_sent(self, channel: str) -> Iterator[tuple[str, SentRecord]]:
        """The last delivery of every alert to ``channel`` with its row key, in row key order (the
        order of ``AlertSpool.read``), a page at a time: nothing of the history is held."""
        times: dict[str, datetime] = {}
        names: dict[str, str] = {}
        for entity in partition(self._table, f"sent~{channel}", page_size=LARGE_ROWS_PAGE,
                                select=("RowKey", "Key", "Fingerprint", "SentAt", "RunId", "Kind")):
            sent_at = str(entity["SentAt"])
            if sent_at not in times:
                if len(times) > 64:  # a few deliveries share the rows of a page; keep only the last few
                    times.clear()
                times[sent_at] = datetime.fromisoformat(sent_at)
            run_id, kind = str(entity["RunId"]), str(entity.get("Kind") or "")
            if len(names) > 256:
                names.clear()
            yield str(entity["RowKey"]), SentRecord(
                key=str(entity["Key"]), fingerprint=str(entity["Fingerprint"]), sent_at=times[sent_at],
                run_id=names.setdefault(run_id, run_id), kind=names.setdefault(kind, kind))

    def prune_rows(self, channel: str, row_keys: Iterable[str]) -> int:
        """Delete the history rows ``row_keys`` of ``channel`` (``iter_sent``'s row keys)."""
        return submit_streamed(self._table, (("delete", {"PartitionKey": f"sent~{channel}", "RowKey": row})
                                             for row in row_keys))

    def record_sent(self, channel: str, run_id: str, alerts: Iterable[Alert], sent_at: datetime) -> None:
        pk = f"sent~{channel}"
        at = sent_at.isoformat()
        # made as they are sent, a transaction at a time: a large MSP's run tells of thousands of alerts
        submit_streamed(self._table, (("upsert", {
            "PartitionKey": pk, "RowKey": row_key_for(alert.key), "Key": alert.key, "Kind": alert.kind,
            "Fingerprint": alert.fingerprint, "SentAt": at, "RunId": run_id,
            "TenantId": alert.tenant_id or "", "SkuId": alert.sku_id or "", "Title": _clip(alert.title, 500),
        }, {"mode": UpdateMode.REPLACE}) for alert in alerts))

    def prune(self, channel: str, records: Mapping[str, SentRecord], now: datetime) -> int:
        """Delete the rows of ``records`` last sent more than ``PRUNE_AFTER`` ago."""
        return submit_streamed(self._table, (
            ("delete", {"PartitionKey": f"sent~{channel}", "RowKey": row_key_for(key)})
            for key, record in records.items() if now - record.sent_at > PRUNE_AFTER))

    # PSA tickets ----------------------------------------------------------------------------
    def tickets(self, channel: str) -> dict[str, TicketRecord]:
        """SeatSync's record of every ticket of ``channel``, by alert group key."""
        records: dict[str, TicketRecord] = {}
        for entity in partition(self._table, f"ticket~{channel}"):
            status = next((s for s in TICKET_STATUSES if s == entity["Status"]), None)
            if status is None:
                raise ValueError(f"ticket row {entity['RowKey']} of {channel} has status {entity['Status']!r}")
            closed_at = str(entity.get("ClosedAt") or "")
            record = TicketRecord(
                key=str(entity["Key"]), kind=str(entity["Kind"]), tenant_id=str(entity.get("TenantId") or "") or None,
                ticket_id=str(entity["TicketId"]), company_id=str(entity.get("CompanyId") or ""),
                marker=str(entity["Marker"]), status=status,
                opened_at=datetime.fromisoformat(str(entity["OpenedAt"])), opened_in_run=str(entity["OpenedInRun"]),
                closed_at=datetime.fromisoformat(closed_at) if closed_at else None,
                digest=str(entity.get("Digest") or ""))
            records[record.key] = record
        return records

    def record_ticket(self, channel: str, record: TicketRecord) -> None:
        upsert(self._table, {
            "PartitionKey": f"ticket~{channel}", "RowKey": row_key_for(record.key), "Key": record.key,
            "Kind": record.kind, "TenantId": record.tenant_id or "", "TicketId": record.ticket_id,
            "CompanyId": record.company_id, "Marker": record.marker, "Status": record.status,
            "OpenedAt": record.opened_at.isoformat(), "OpenedInRun": record.opened_in_run,
            "ClosedAt": record.closed_at.isoformat() if record.closed_at else "", "Digest": record.digest,
        })

    # deliveries -----------------------------------------------------------------------------
    def record_delivery(self, record: DeliveryRecord) -> None:
        pk = f"delivery~{record.run_id}"
        rk = f"{record.at:%Y%m%dT%H%M%S.%fZ}~{record.channel}~{secrets.token_hex(4)}"
        entity: dict[str, Any] = {
            "PartitionKey": pk, "RowKey": rk, "Channel": record.channel, "ChannelType": record.channel_type,
            "Status": record.status, "At": record.at.isoformat(), "Attempts": record.attempts,
            "Alerts": record.alerts, "Suppressed": record.suppressed, "Kinds": json.dumps(dict(record.kinds)),
            "Error": _clip(record.error or ""), "Size": record.size, "Test": record.test,
        }
        fingerprints = json.dumps(list(record.fingerprints))
        if len(fingerprints) <= _TEXT_LIMIT:
            entity["Fingerprints"] = fingerprints
        else:
            ref = write_document(self._table, pk, f"{rk}~fingerprints", list(record.fingerprints))
            entity.update(ref.to_entity_fields())
        upsert(self._table, entity)

    def deliveries(self, run_id: str) -> list[DeliveryRecord]:
        """Every delivery recorded for a run, oldest first."""
        pk = f"delivery~{run_id}"
        records = []
        for entity in sorted(partition(self._table, pk), key=lambda e: str(e["RowKey"])):
            if "Channel" not in entity:
                continue  # a part of a fingerprint document
            if "DocPrefix" in entity:
                fingerprints = read_document(self._table, DocumentRef.from_entity(entity))
            else:
                fingerprints = json.loads(str(entity.get("Fingerprints") or "[]"))
            records.append(DeliveryRecord(
                run_id=run_id, channel=str(entity["Channel"]), channel_type=str(entity["ChannelType"]),
                status=entity["Status"], at=datetime.fromisoformat(str(entity["At"])),
                attempts=int(entity["Attempts"]), alerts=int(entity["Alerts"]),
                suppressed=int(entity["Suppressed"]), kinds=json.loads(str(entity["Kinds"])),
                fingerprints=tuple(fingerprints), error=str(entity.get("Error") or "") or None,
                size=int(entity.get("Size", 0)), test=bool(entity.get("Test", False)),
            ))
        return records
