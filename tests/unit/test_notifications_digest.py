"""Digests with a fake clock: what is due given what was sent, per kind's period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.config.notifications import AlertRules, Digest, NotificationSettings
from shared.notifications.alerts import Alert, Links, build_alerts
from shared.notifications.digest import SentRecord, is_due, period_of, select_due
from shared.notifications.sample import sample_run_data

UTC_ZONE = ZoneInfo("UTC")
RUN_1 = "20261125T020000Z-00000001"
RUN_2 = "20261126T020000Z-00000002"


def alert(fp: str = "f1", kind: str = "unlinked-licence") -> Alert:
    return Alert(kind=kind, key=f"{kind}|t|s", fingerprint=fp, severity="warning",  # type: ignore[arg-type]
                 title="t", line="l", facts=())


def sent(at: datetime, fp: str = "f1", run_id: str = RUN_1) -> SentRecord:
    return SentRecord(key="unlinked-licence|t|s", fingerprint=fp, sent_at=at, run_id=run_id)


def due(digest: Digest, sent_at: datetime, now: datetime, *, fp: str = "f1", run_id: str = RUN_2,
        zone: ZoneInfo = UTC_ZONE) -> bool:
    return is_due(alert(fp), sent(sent_at), digest=digest, now=now, run_id=run_id, zone=zone)


def at(day: int, hour: int = 2, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def test_a_new_alert_is_due_whatever_its_digest() -> None:
    for digest in ("immediate", "daily", "weekly", "monthly"):
        assert is_due(alert(), None, digest=digest, now=at(25), run_id=RUN_1, zone=UTC_ZONE)


def test_daily_unchanged_is_not_repeated_the_same_day_and_is_the_next() -> None:
    assert not due("daily", at(25, 2), at(25, 23, 59))
    assert due("daily", at(25, 2), at(26, 0, 0))
    assert due("daily", at(25, 2, 1), at(26, 1, 59)), "calendar days: an earlier run time the next day still counts"


def test_daily_days_begin_in_the_configured_time_zone() -> None:
    new_york = ZoneInfo("America/New_York")
    # 03:00 UTC on the 26th is still the 25th in New York (UTC-5)
    assert not due("daily", at(25, 14), at(26, 3), zone=new_york)
    assert due("daily", at(25, 14), at(26, 3), zone=UTC_ZONE)
    assert due("daily", at(25, 14), at(26, 5, 1), zone=new_york)


def test_weekly_is_an_iso_week_from_monday() -> None:
    # 23 Nov 2026 is a Monday, 29 Nov a Sunday, 30 Nov the next Monday
    assert not due("weekly", at(23, 2), at(29, 23))
    assert due("weekly", at(29, 23), at(30, 0, 1))
    assert not due("weekly", at(25, 2), at(27, 2))


def test_monthly_is_a_calendar_month() -> None:
    assert not due("monthly", at(1, 2), at(30, 23))
    assert due("monthly", at(30, 23), datetime(2026, 12, 1, 0, 1, tzinfo=UTC))
    assert period_of("monthly", datetime(2026, 12, 31, 23, tzinfo=UTC), ZoneInfo("Europe/Berlin")) == (2027, 1)


def test_a_changed_alert_is_sent_again_within_its_period() -> None:
    for digest in ("daily", "weekly", "monthly"):
        assert due(digest, at(25, 2), at(25, 3), fp="f2")


def test_immediate_alerts_go_with_every_run_but_never_twice_for_one_run() -> None:
    assert due("immediate", at(25, 2), at(25, 2, 10), run_id=RUN_2)
    assert not due("immediate", at(25, 2), at(25, 2, 10), run_id=RUN_1)


def test_one_run_never_sends_the_same_alert_twice_even_across_a_period_boundary() -> None:
    assert not due("daily", at(25, 23, 59), at(26, 0, 5), run_id=RUN_1)


def test_period_of_immediate_has_no_calendar() -> None:
    with pytest.raises(ValueError, match="no calendar period"):
        period_of("immediate", at(25), UTC_ZONE)


def test_select_due_over_a_whole_run_with_the_default_digests() -> None:
    """Day 1 sends everything; later the same day nothing; day 2 the daily and immediate kinds;
    the next week the weekly ones too."""
    settings = NotificationSettings()
    links = Links(base_url="https://seatsync.example.com")
    history: dict[str, SentRecord] = {}

    def run(now: datetime, run_id: str) -> set[str]:
        data = sample_run_data(now)
        alerts = build_alerts(data, settings, links).alerts
        decision = select_due(alerts, history, digest_of=settings.alerts.digest, now=now, run_id=run_id,
                              zone=settings.zone)
        assert len(decision.due) + len(decision.suppressed) == len(alerts)
        for a in decision.due:
            history[a.key] = SentRecord(a.key, a.fingerprint, now, run_id, a.kind)
        return {a.kind for a in decision.due}

    day1 = datetime(2026, 11, 25, 2, 5, tzinfo=UTC)  # a Wednesday
    everything = {"run-failed", "auth-failed", "billing-problem", "changes-held", "unlinked-licence", "unused-licences",
                  "shared-mailbox-licensed", "gdap-not-added", "gdap-ended", "run-summary"}
    assert run(day1, "r1") == everything
    assert run(day1, "r1") == set(), "the same run again: nothing"
    # a manual run later the same day: the sample's run id changes with the time, so its run
    # failure is a new alert; the auth failure is sent at once again; daily kinds wait
    assert run(day1 + timedelta(hours=3), "r2") == {"run-failed", "auth-failed"}
    day2 = day1 + timedelta(days=1)
    assert run(day2, "r3") == {"run-failed", "auth-failed", "billing-problem", "changes-held", "unlinked-licence",
                               "gdap-ended", "run-summary"}
    next_week = day1 + timedelta(days=5)  # Monday 30 Nov
    assert run(next_week, "r4") == everything


def test_a_kind_can_be_given_another_digest() -> None:
    rules = AlertRules.model_validate({"unusedLicences": {"digest": "monthly"}, "authFailed": {"digest": "daily"}})
    assert rules.digest("unused-licences") == "monthly"
    assert rules.digest("auth-failed") == "daily"
    assert rules.digest("run-failed") == "immediate"
    assert rules.digest("gdap-not-added") == "weekly"
