"""Why a run stopped, in one line a person can act on.

An activity that fails after its retries stops the run, and the run records why. Most failures say
so well enough themselves; one does not: Table Storage being unreachable surfaces as the storage
SDK's own text (``ServiceRequestError: <urllib3.connection.HTTPConnection object at 0x7f...>:
Failed to establish a new connection``), and, through Durable Functions, wrapped in the activity's
name and followed by a stack trace. That becomes one line naming storage and what to check.

Pure code, used by the orchestrator: it sees either the exception itself (the local runner) or
Durable's ``Exception("<reason> \\n <details>")`` naming the original exception's type, so storage
failures are recognised by their type's name, not only by ``isinstance``.
"""

from __future__ import annotations

import re

STORE_FIX = ("check SEATSYNC_STORAGE_CONNECTION_STRING or SEATSYNC_TABLE_ENDPOINT (in the app settings, the "
             "environment or local.settings.json) and that the storage account, or Azurite, is running and "
             "reachable from SeatSync")

STORE_UNREACHABLE = ("Table Storage cannot be reached, so SeatSync can neither read nor record anything now: "
                     f"{STORE_FIX}; then try again")
"""What an HTTP answer (a dashboard page, an API call) says when Table Storage does not answer."""

# The exceptions that mean Table Storage could not be reached: SeatSync's own after its retries,
# and the Azure SDK's for a request that got no answer.
_UNREACHABLE = ("StoreUnavailableError", "ServiceRequestError", "ServiceResponseError")
_ACTIVITY = re.compile(r"Activity function '([^']+)' failed")


def store_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or the failure Durable reports for it) is Table Storage not answering."""
    if any(cls.__name__ in _UNREACHABLE for cls in type(exc).__mro__):
        return True
    text = str(exc)
    return any(f"{name}:" in text or f"{name}(" in text for name in _UNREACHABLE)


def run_failure(exc: BaseException) -> str:
    """The run's error for the failure that stopped it."""
    if store_unreachable(exc):
        step = _ACTIVITY.search(str(exc))
        where = f" during {step.group(1)}" if step else ""
        return f"Table Storage could not be reached{where}, so the run stopped: {STORE_FIX}; then run it again"
    return f"{type(exc).__name__}: {exc}"
