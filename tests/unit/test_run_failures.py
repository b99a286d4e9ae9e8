"""The one line a run records when Table Storage could not be reached, whether the orchestrator
sees the exception itself (the local runner) or Durable's report of it."""

from __future__ import annotations

from azure.core.exceptions import ServiceRequestError

from shared.adapters.tables import StoreUnavailableError
from shared.run_failures import STORE_FIX, run_failure, store_unreachable

RAW = ("<urllib3.connection.HTTPConnection object at 0x7f3a2c1d0e50>: Failed to establish a new connection: "
       "[Errno 111] Connection refused")


def test_storage_unreachable_through_durable_is_one_line_naming_storage_and_the_fix() -> None:
    reported = Exception(f"Activity function 'push_changes' failed: ServiceRequestError: {RAW} \n Traceback (most "
                         "recent call last):\n  File \"/home/site/wwwroot/psa_push/__init__.py\", line 43")
    line = run_failure(reported)
    assert line == (f"Table Storage could not be reached during push_changes, so the run stopped: {STORE_FIX}; "
                    "then run it again")
    assert "\n" not in line and "urllib3" not in line and "0x7f" not in line


def test_storage_unreachable_in_process_is_the_same_line() -> None:
    for exc in (ServiceRequestError(RAW), StoreUnavailableError(
            f"Table Storage is unavailable: the configuration failed 7 times (ServiceRequestError: {RAW})")):
        assert store_unreachable(exc)
        assert run_failure(exc) == (f"Table Storage could not be reached, so the run stopped: {STORE_FIX}; "
                                    "then run it again")
    assert "SEATSYNC_STORAGE_CONNECTION_STRING" in STORE_FIX and "Azurite" in STORE_FIX


def test_other_failures_keep_their_own_words() -> None:
    assert not store_unreachable(RuntimeError("PSA unreachable"))
    assert run_failure(RuntimeError("PSA unreachable")) == "RuntimeError: PSA unreachable"
    durable = Exception("Activity function 'collect_tenant' failed: PsaError: HTTP 503")
    assert run_failure(durable) == "Exception: Activity function 'collect_tenant' failed: PsaError: HTTP 503"
