"""Named points of a push where the fault tests act: storage stopped after the first PSA write,
the process paused so that it can be killed (kill -9) right after a write, and so on.

``reached(point)`` does nothing unless a test asked for something:

- in the same process, ``listening(point, callback)`` runs ``callback`` each time the point is
  reached (a test stops Azurite's port there, for instance);
- in a ``seatsync`` process started by a test, the environment variables
  ``SEATSYNC_PAUSE_AT=<point>`` (or ``<point>#<n>`` for its n-th passage) and
  ``SEATSYNC_PAUSE_FILE=<path>`` make the process write ``<point> <pid>`` to the file when it
  gets there and then wait until the file is removed (the test lets it go on) or for
  ``SEATSYNC_PAUSE_SECONDS`` (default 300), long enough for the test to kill it. Both variables
  must be set; they are for tests only (docs/emulators.md).

The points, in the order a run passes them: ``start-run`` (the run's first activity begins to
record the run and take the lease), ``push-started`` (a push activity begins, before it reads
anything),
``before-psa-write`` (the intent is stored, the PSA not yet called), ``after-psa-write`` (the PSA
answered, nothing recorded yet), ``after-read-back`` (the tenant's writes were read back, not
yet recorded), ``after-bookkeeping`` (the tenant's writes are recorded), ``finish-run`` (the run's
summary is about to be stored).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

POINTS = ("start-run", "push-started", "before-psa-write", "after-psa-write", "after-read-back", "after-bookkeeping",
          "finish-run")

_listeners: dict[str, list[Callable[[], None]]] = {}
_passages: dict[str, int] = {}
_lock = threading.Lock()


def reached(point: str) -> None:
    """Called by the push at ``point``."""
    if point not in POINTS:
        raise ValueError(f"unknown checkpoint {point!r}")
    with _lock:
        _passages[point] = _passages.get(point, 0) + 1
        passage = _passages[point]
        listeners = list(_listeners.get(point, ()))
    for listener in listeners:
        listener()
    _pause_if_asked(point, passage)


@contextmanager
def listening(point: str, callback: Callable[[], None]) -> Iterator[None]:
    """Run ``callback`` whenever ``point`` is reached, within the ``with`` block."""
    if point not in POINTS:
        raise ValueError(f"unknown checkpoint {point!r}")
    with _lock:
        _listeners.setdefault(point, []).append(callback)
    try:
        yield
    finally:
        with _lock:
            _listeners[point].remove(callback)


def _pause_if_asked(point: str, passage: int) -> None:
    wanted, signal_file = os.environ.get("SEATSYNC_PAUSE_AT"), os.environ.get("SEATSYNC_PAUSE_FILE")
    if not wanted or not signal_file:
        return
    name, _, nth = wanted.partition("#")
    if name != point or passage != (int(nth) if nth else 1):
        return
    path = Path(signal_file)
    # written whole, then renamed: a watcher that sees the file reads the point and the process
    # (a file written in place can be seen empty)
    written = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    written.write_text(f"{point} {os.getpid()}\n", encoding="utf-8")
    written.replace(path)
    deadline = time.monotonic() + float(os.environ.get("SEATSYNC_PAUSE_SECONDS", "300"))
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
