"""Whether the PSA holds a write (read-back and the settling of open intents), the storage retry
policy, and when a run lease no longer protects a live run."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from shared.adapters.run_store import Lease
from shared.adapters.tables import StoreRetry, StoreUnavailableError, is_transient
from shared.deadline import DeadlineReached
from shared.domain.model import ChangeKind, PlannedChange
from shared.domain.writes import check_write
from shared.errors import PsaError
from shared.services.bookkeeping import answered_no
from shared.services.lease import ProcessRef, stale_reason
from tests.unit.builders import TENANT, TODAY, line

TAG = "seatsync:c:0123456789abcdef0123456789abcdef"
NOV_30 = date(2026, 11, 30)


def change(kind: ChangeKind, new: int = 22, line_id: str | None = "500", **extra: Any) -> PlannedChange:
    return PlannedChange(change_id="c1", kind=kind, tenant_id=TENANT, company_id="19", psa="cw", agreement_id="100",
                         line_id=line_id, sku_id="sku", old_quantity=20, new_quantity=new, reason="why",
                         effective_date=TODAY, **extra)


@pytest.mark.parametrize(("planned", "lines", "answered", "held", "detail"), [
    (change(ChangeKind.SET_QUANTITY), [line("500", 22)], None, True, "line 500 bills 22"),
    (change(ChangeKind.SET_QUANTITY), [line("500", 20)], None, False, "line 500 bills 20, not 22"),
    (change(ChangeKind.SET_QUANTITY), [line("501", 22)], None, False, "line 500 is not on agreement 100"),
    (change(ChangeKind.SET_QUANTITY), [line("500", 22, agreement="101")], None, False, "not on agreement 100"),
    (change(ChangeKind.PRORATE, 2, None, tag=TAG), [line("500", 22), line("900", 2, tag=TAG)], None, True,
     "line 900 bills 2"),
    (change(ChangeKind.PRORATE, 2, None, tag=TAG), [line("500", 22)], None, False, f"a line tagged {TAG}"),
    (change(ChangeKind.CREATE_LINE, 26, None, tag="seatsync:l:x"), [line("910", 26)], "910", True,
     "line 910 bills 26"),
    (change(ChangeKind.CREATE_LINE, 26, None, tag="seatsync:l:x"), [line("910", 0, tag="seatsync:l:x")], None,
     False, "line 910 bills 0, not 26"),
    (change(ChangeKind.CREATE_LINE, 26, None, tag="seatsync:l:x"), [line("910", 26, tag="seatsync:l:y")], "910",
     False, "carries another tag"),
    (change(ChangeKind.SET_DETAILS, 20, description="Alice, Bob", unit_price=Decimal("23.10")),
     [line("500", 20, price="23.1", description="Alice, Bob")], None, True, "has the new details"),
    (change(ChangeKind.SET_DETAILS, 20, description="Alice, Bob", unit_price=Decimal("23.10")),
     [line("500", 20, price="22.00", description="Alice")], None, False,
     "the invoice description differs; the unit price is 22.00, not 23.10"),
    (change(ChangeKind.SET_DETAILS, 20, unit_price=None, description="new"),
     [line("500", 20, price="1.00", description="new")], None, True, "has the new details"),
    # a change the current period is charged for (Autotask units from today, a Halo pro-rata
    # entry), written before the change that brings the next period to the count
    (change(ChangeKind.SET_QUANTITY, 11, end_date=NOV_30), [replace(line("500", 10), period_quantity=Decimal(11))],
     None, True, "line 500 charges 11 to 2026-11-30"),
    (change(ChangeKind.SET_QUANTITY, 11, end_date=NOV_30), [line("500", 11)], None, True, "charges 11"),
    (change(ChangeKind.SET_QUANTITY, 11, end_date=NOV_30), [replace(line("500", 11), period_quantity=Decimal(10))],
     None, False, "line 500 charges 10 to 2026-11-30, not 11"),
    (change(ChangeKind.SET_QUANTITY, 11), [replace(line("500", 10), period_quantity=Decimal(11))], None, False,
     "line 500 bills 10, not 11"),
], ids=["quantity-held", "quantity-not-held", "line-missing", "other-agreement", "prorate-by-tag",
        "prorate-missing", "create-by-answered-id", "create-without-its-units", "create-other-tag", "details-held",
        "details-differ", "details-only-description", "period-charged-before-the-next", "period-charged-with-the-next",
        "period-not-charged", "next-period-not-billed"])
def test_a_write_is_held_only_when_the_psa_shows_it(planned: PlannedChange, lines: list[Any], answered: str | None,
                                                    held: bool, detail: str) -> None:
    check = check_write(planned, lines, answered)
    assert check.held is held
    assert detail in check.detail


@pytest.mark.parametrize(("error", "certain"), [
    (PsaError("cw", "invalid", "addition", 400, "POST", "https://cw/additions"), True),
    (PsaError("cw", "refused before sending", "addition"), True),
    (PsaError("cw", "no answer (ReadTimeout)", "addition", None, "POST", "https://cw/additions"), False),
    (PsaError("cw", "server error", "addition", 503, "POST", "https://cw/additions"), False),
    (PsaError("cw", "throttled", "addition", 429, "POST", "https://cw/additions"), False),
    (RuntimeError("worker died"), False),
    (DeadlineReached("the request window frees a slot after this activity's deadline"), True),
], ids=["400", "never-sent", "timeout", "503", "429", "not-a-psa-answer", "held-back-by-a-request-window"])
def test_only_a_refusal_is_certainly_not_written(error: Exception, certain: bool) -> None:
    assert answered_no(error) is certain


def test_storage_retries_ride_out_an_outage_and_give_up_naming_what_failed() -> None:
    waits: list[float] = []
    outcomes: list[Any] = [ServiceRequestError("refused"), HttpResponseError("busy"), "stored"]
    outcomes[1].status_code = 503

    def operation() -> str:
        result = outcomes.pop(0)
        if isinstance(result, Exception):
            raise result
        return str(result)

    assert StoreRetry(attempts=5, first_wait=0.5).call("the ledger entry", operation, waits.append) == "stored"
    assert waits == [0.5, 1.0]

    def never() -> None:
        raise ServiceRequestError("Connection refused")

    with pytest.raises(StoreUnavailableError, match=r"the ledger entry failed 3 times .*Connection refused"):
        StoreRetry(attempts=3, first_wait=1, max_wait=1.5).call("the ledger entry", never, waits.append)
    assert waits[2:] == [1, 1.5]


def test_an_answer_from_storage_is_never_retried() -> None:
    assert not is_transient(ResourceNotFoundError("gone"))
    calls: list[int] = []

    def missing() -> None:
        calls.append(1)
        raise ResourceNotFoundError("gone")

    with pytest.raises(ResourceNotFoundError):
        StoreRetry().call("a read", missing, lambda seconds: None)
    assert calls == [1]


NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def lease(expires: datetime, process: ProcessRef | None = None) -> Lease:
    return Lease("20261125T015900Z-0000000c", expires, expires - timedelta(minutes=5),
                 process.host if process else None, process.pid if process else None,
                 process.started if process else None)


def test_a_lease_is_stale_once_it_lapsed_or_its_process_is_gone() -> None:
    assert stale_reason(lease(NOW + timedelta(minutes=3)), NOW) is None
    assert "lapsed at 2026-11-25 01:59:00" in str(stale_reason(lease(NOW - timedelta(minutes=1)), NOW))
    assert stale_reason(lease(NOW + timedelta(minutes=3), ProcessRef.current()), NOW) is None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    gone = ProcessRef(socket.gethostname(), child.pid, None)
    assert f"pid {child.pid}" in str(stale_reason(lease(NOW + timedelta(minutes=3), gone), NOW))
    elsewhere = ProcessRef("another-machine", child.pid, None)
    assert stale_reason(lease(NOW + timedelta(minutes=3), elsewhere), NOW) is None, \
        "a process on another machine cannot be checked: only the lapse frees its lease"
    reused = ProcessRef(socket.gethostname(), ProcessRef.current().pid, "1")
    if ProcessRef.current().started is not None:
        assert stale_reason(lease(NOW + timedelta(minutes=3), reused), NOW) is not None, \
            "a pid reused by another process is not the run's process"
