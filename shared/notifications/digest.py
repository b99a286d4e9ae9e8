"""Which alerts to send now, given what was already sent to a channel.

Every alert kind has a digest: ``immediate``, ``daily``, ``weekly`` or ``monthly``. Periods are
calendar periods in the configured time zone (a day; an ISO week, Monday to Sunday; a month),
so a run at 01:59 and one at 02:01 the next day are in different days, whatever the timer's
jitter. An alert is due on a channel when:

- it was never sent there, or its fingerprint changed since (a changed alert is news); or
- it was last sent there in an earlier period of its kind (the reminder of the digest).

An ``immediate`` alert is sent with every run in which it holds. Whatever the digest, one run
never sends the same alert twice to a channel, so running the notification again for a run
(a retried activity, ``seatsync notify`` by hand) sends nothing new.

A delivery that failed records nothing as sent, so the alert stays due for the next run. A dry
run's deliveries are remembered apart (``service.sent_history``): they never use up the real
runs' digest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from shared.config.notifications import AlertKind, Digest
from shared.notifications.alerts import Alert


@dataclass(frozen=True, slots=True)
class SentRecord:
    """The last delivery of one alert (by key) to one channel. A channel's history holds one per
    alert sent in the last weeks, thousands for a large MSP: slotted, and its run, time and kind
    are shared by the records of one delivery (``NotificationRepository.sent``)."""

    key: str
    fingerprint: str
    sent_at: datetime
    run_id: str
    kind: str = ""


@dataclass(frozen=True)
class DigestDecision:
    due: tuple[Alert, ...]
    suppressed: tuple[Alert, ...]


def period_of(digest: Digest, when: datetime, zone: tzinfo) -> tuple[int, ...]:
    """The calendar period of ``digest`` that contains ``when`` (in ``zone``)."""
    local = when.astimezone(zone)
    if digest == "daily":
        return (local.year, local.month, local.day)
    if digest == "weekly":
        year, week, _ = local.isocalendar()
        return (year, week)
    if digest == "monthly":
        return (local.year, local.month)
    raise ValueError(f"'{digest}' has no calendar period")


def is_due(alert: Alert, last: SentRecord | None, *, digest: Digest, now: datetime, run_id: str,
           zone: tzinfo) -> bool:
    if last is None or last.fingerprint != alert.fingerprint:
        return True
    if last.run_id == run_id:
        return False
    if digest == "immediate":
        return True
    return period_of(digest, last.sent_at, zone) != period_of(digest, now, zone)


def select_due(alerts: Sequence[Alert], history: Mapping[str, SentRecord], *,
               digest_of: Callable[[AlertKind], Digest], now: datetime, run_id: str,
               zone: tzinfo) -> DigestDecision:
    due: list[Alert] = []
    suppressed: list[Alert] = []
    for alert in alerts:
        target = due if is_due(alert, history.get(alert.key), digest=digest_of(alert.kind), now=now,
                               run_id=run_id, zone=zone) else suppressed
        target.append(alert)
    return DigestDecision(tuple(due), tuple(suppressed))


def join_history(alerts: Iterable[tuple[str, Alert]],
                 history: Iterable[tuple[str, SentRecord]]) -> Iterator[tuple[Alert, SentRecord | None]]:
    """Each alert with its channel's record of it (None: never sent there), from two streams in
    the order of their row keys (a hash of the alert's key: ``AlertSpool.read`` and
    ``NotificationRepository.iter_sent``), so that neither is held. The whole history is read,
    also past the last alert, for whoever watches it for rows to prune."""
    records = iter(history)
    current = next(records, None)
    for row, alert in alerts:
        while current is not None and current[0] < row:
            current = next(records, None)
        found = current is not None and current[0] == row and current[1].key == alert.key
        yield alert, current[1] if found and current is not None else None
    deque(records, maxlen=0)  # the rest of the history, read to its end and let go
