"""The progress display of a running sync on the command line.

It shows what the orchestrator reports as its custom status (``RunProgress``): the phase, a bar
of tenants collected and then pushed out of N, and the failures so far. It is drawn with rich
on standard error, only when standard error is a terminal and ``--quiet`` was not given, so a
redirected or scripted run prints nothing but its report.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from shared.contracts import RunProgress

_PHASES = {"starting": "Starting", "collecting": "Reading tenants", "pushing": "Updating the PSA",
           "finishing": "Finishing", "notifying": "Sending alerts", "finished": "Finished"}


def wanted(quiet: bool, stream: TextIO | None = None) -> bool:
    """Show progress: not asked to be quiet, and the stream is a terminal."""
    stream = stream or sys.stderr
    return not quiet and stream.isatty()


class ProgressDisplay:
    """A context manager whose ``update`` takes each ``RunProgress``; a no-op when disabled."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self._stream = stream or sys.stderr
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.updates = 0

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[failed]}"), TimeElapsedColumn(),
                console=Console(file=self._stream), transient=True)
            self._progress.start()
            self._task = self._progress.add_task("Starting", total=None, failed="")
        return self

    def update(self, progress: RunProgress) -> None:
        self.updates += 1
        if self._progress is None or self._task is None:
            return
        if progress.phase == "pushing":
            done, total = progress.tenants_pushed, progress.tenants_to_push
        else:
            done, total = progress.tenants_collected, progress.tenants_total
        failed = f"{progress.tenants_failed} failed" if progress.tenants_failed else ""
        self._progress.update(self._task, description=_PHASES.get(progress.phase, progress.phase),
                              completed=done, total=total or None, failed=failed)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
