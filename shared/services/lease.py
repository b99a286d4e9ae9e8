"""The run lease: one run at a time whatever started it, and no run blocked by a dead one.

- ``start_run`` takes the lease for its run. While the run lives its activities renew it, every
  fifth of the lease's length (``Heartbeat``); the activities of one run in one process share
  their renewals (``LeaseRenewal``), so a process renews a run's lease at most once per fifth,
  whatever the number of activities it hosts. A run that died stops renewing, so its lease lapses within
  ``SEATSYNC_RUN_LEASE_MINUTES`` (default 5) of its last sign of life.
- A run of the command line also records its process (host, pid and the process's start time).
  On the same machine a later run sees at once that the process is gone (kill -9, a crash, a
  closed terminal) and takes over without waiting for the lease to lapse. The Function App's
  starters check the Durable orchestration instead: a lease held by a Function App run whose
  orchestration no longer runs is stale at once.
- Whoever takes over or clears a stale lease records the run that held it as *died* (with why)
  in the run's record and in the audit trail; its report says so instead of "running".
- ``unlock`` clears a stale lease, and a live one only when forced; the audit records who.
- Before every PSA write the push checks that its run still holds the lease (``Heartbeat.check``):
  a run whose lease was cleared or taken over stops writing.

Lease times are wall-clock times (``datetime.now(UTC)``), never the run's business clock (which
tests and rehearsals may fix): a lease is about whether a process is alive now.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import TracebackType

from shared.adapters.decision_store import DecisionRepository, RunEvent
from shared.adapters.run_store import Lease, RunRepository
from shared.adapters.tables import StoreRetry, is_transient
from shared.errors import ConflictError, SeatSyncError

log = logging.getLogger(__name__)
WallClock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


class LeaseLostError(SeatSyncError):
    """The run no longer holds the run lease (cleared, or taken over after it lapsed): it must
    not write to a PSA any more."""


class LeaseHeldError(SeatSyncError):
    """A live run holds the lease (and clearing it was not forced)."""

    def __init__(self, lease: Lease, message: str) -> None:
        self.lease = lease
        super().__init__(message)


@dataclass(frozen=True)
class ProcessRef:
    """A process on a machine: host name, pid and (where the OS tells) when it started."""

    host: str
    pid: int
    started: str | None

    @classmethod
    def current(cls) -> ProcessRef:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _process_started(pid))


def _process_started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _process_gone(lease: Lease) -> bool:
    """Whether the lease's process is known to have ended: it ran on this machine and no
    process of that pid (and start time) lives any more, or only as a zombie."""
    if not lease.host or not lease.pid or lease.host != socket.gethostname():
        return False
    try:
        os.kill(lease.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # a process of another user holds that pid: alive, as far as we can tell
    try:
        stat = Path(f"/proc/{lease.pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    if fields and fields[0] in ("Z", "X"):
        return True
    return bool(lease.process_started and len(fields) > 19 and fields[19] != lease.process_started)


def stale_reason(lease: Lease, now: datetime) -> str | None:
    """Why a lease no longer protects a live run, or None when it does."""
    if _process_gone(lease):
        return f"its process (pid {lease.pid} on {lease.host}) has ended"
    if lease.expires <= now:
        return (f"its lease lapsed at {lease.expires:%Y-%m-%d %H:%M:%S} UTC (last renewed "
                f"{lease.renewed:%Y-%m-%d %H:%M:%S} UTC)")
    return None


def lease_json(lease: Lease) -> dict[str, object]:
    """The lease as the CLI and the API show it."""
    return {"runId": lease.run_id, "expires": lease.expires.isoformat(), "renewed": lease.renewed.isoformat(),
            "host": lease.host, "pid": lease.pid, "stale": stale_reason(lease, wall_clock())}


def record_dead(runs: RunRepository, decisions: DecisionRepository, run_id: str, reason: str, actor: str,
                now: datetime) -> bool:
    """Record that ``run_id`` died (unless it finished): its record and a run event."""
    if not runs.mark_died(run_id, reason, now):
        return False
    runs.abandon_changes(run_id, f"not written: the run died before writing it ({reason}); a later run plans it "
                                 "again from what the PSA bills")
    decisions.audit_run_event(RunEvent(now, "died", run_id, actor, reason))
    log.warning("run %s died without finishing: %s", run_id, reason)
    return True


@dataclass(frozen=True)
class Acquired:
    """The outcome of taking the lease: ``refused`` says why not (another run holds it);
    ``took_over`` names a dead run whose lease this run took, and why it was dead."""

    refused: str | None = None
    holder: str | None = None
    took_over: str | None = None


def acquire(runs: RunRepository, decisions: DecisionRepository, run_id: str, ttl: timedelta,
            process: ProcessRef | None = None, now: datetime | None = None) -> Acquired:
    """Take the lease for ``run_id`` unless a live run holds it; a dead holder is recorded as died."""
    moment = now or wall_clock()
    for _ in range(3):
        current = runs.lease()
        reason = None
        if current is not None and current.run_id != run_id:
            reason = stale_reason(current, moment)
            if reason is None:
                return Acquired(refused=f"run {current.run_id} is still in progress (its lease runs to "
                                        f"{current.expires:%H:%M:%S} UTC); this run did nothing",
                                holder=current.run_id)
        lease = Lease(run_id, moment + ttl, moment, process.host if process else None, process.pid if process else None,
                      process.started if process else None)
        if not runs.take_lease(lease, current):
            continue  # another run got there first: look again
        if current is None or current.run_id == run_id or reason is None:
            return Acquired()
        record_dead(runs, decisions, current.run_id, reason, f"run {run_id}", moment)
        return Acquired(took_over=f"run {current.run_id} died without finishing: {reason}")
    return Acquired(refused="another run took the lease at the same moment; this run did nothing")


def clear_stale(runs: RunRepository, decisions: DecisionRepository, lease: Lease, reason: str, actor: str,
                now: datetime | None = None) -> bool:
    """Clear a lease known to be stale (e.g. its orchestration no longer runs) and record its run
    as died; False when the lease changed meanwhile."""
    moment = now or wall_clock()
    if not runs.clear_lease(lease):
        return False
    decisions.audit_run_event(RunEvent(moment, "lease-cleared", lease.run_id, actor, reason))
    record_dead(runs, decisions, lease.run_id, reason, actor, moment)
    return True


def live_lease(runs: RunRepository, decisions: DecisionRepository, orchestration_running: bool, actor: str
               ) -> Lease | None:
    """The lease of a live run, if one holds it. A lease that lapsed, whose command-line process
    is gone, or held by a Function App run while the orchestration does not run, is stale: it
    is cleared here (its run recorded as died) so that the new run is not refused. Every
    starter (the timer, ``POST /api/sync``, the dashboard) asks this before starting a run."""
    lease = runs.lease()
    if lease is None:
        return None
    reason = stale_reason(lease, wall_clock())
    if reason is None and lease.pid is None and not orchestration_running:
        reason = "its orchestration is no longer running"
    if reason is None:
        return lease
    clear_stale(runs, decisions, lease, reason, actor)
    return runs.lease()


def duplicate_instance(exc: Exception) -> bool:
    """The Durable runtime's refusal to start an instance id that is running: the Python client
    raises a plain ``Exception`` carrying the host's ``InvalidOperationException`` message ("An
    Orchestration instance with the status Running already exists")."""
    return "already exists" in str(exc).lower()


def unlock(runs: RunRepository, decisions: DecisionRepository, actor: str, *, force: bool = False,
           comment: str | None = None, now: datetime | None = None) -> Lease | None:
    """Clear the run lease for ``actor``: when stale, or live and ``force``. Returns the lease
    cleared (None: no run held it); raises ``LeaseHeldError`` for a live lease not forced."""
    moment = now or wall_clock()
    current = runs.lease()
    if current is None:
        return None
    stale = stale_reason(current, moment)
    if stale is None and not force:
        raise LeaseHeldError(current, f"run {current.run_id} holds the lease and is alive (renewed "
                                      f"{current.renewed:%Y-%m-%d %H:%M:%S} UTC, until "
                                      f"{current.expires:%H:%M:%S} UTC); clear it only if you know the run is "
                                      "dead: force it (seatsync runs unlock --force, or \"force\": true)")
    why = stale or "cleared while it was still renewed (forced)"
    reason = f"its lease was cleared by {actor}: {why}" + (f" ({comment})" if comment else "")
    if not clear_stale(runs, decisions, current, reason, actor, moment):
        raise ConflictError("the run lease changed while it was being cleared; look at it again")
    return current


STARTING_GRACE = timedelta(minutes=5)
"""How long a run that recorded its request may take to take the run lease and record what it
sets out to do (``start_run``) before a run without either is said to have died."""


def liveness(runs: RunRepository, run_id: str, now: datetime | None = None) -> tuple[str, str | None]:
    """For a run with no summary: ("running", None) while it holds a live lease, or while it is
    starting (its request recorded less than ``STARTING_GRACE`` ago, its lease and start not yet:
    ``start_run`` records the request first); else ("died", why)."""
    died = runs.died(run_id)
    if died is not None:
        return "died", died[1]
    moment = now or wall_clock()
    state = unfinished_state(run_id, runs.lease(), moment)
    if state[0] == "died":
        request = runs.request(run_id)
        if (request is not None and moment - request.requested_at < STARTING_GRACE
                and runs.started(run_id) is None):
            return "running", None
    return state


def unfinished_state(run_id: str, lease: Lease | None, now: datetime | None = None) -> tuple[str, str | None]:
    """("running", None) while ``run_id`` holds ``lease`` and it is live, else ("died", why)."""
    if lease is not None and lease.run_id == run_id:
        stale = stale_reason(lease, now or wall_clock())
        return ("running", None) if stale is None else ("died", f"the run stopped without finishing: {stale}")
    return "died", "the run stopped without finishing: it holds no lease and recorded no summary"


class LeaseRenewal:
    """What one process knows of its run's lease, shared by every activity of that run the process
    hosts: when it last renewed the lease and whether it found it lost.

    Renewing costs a read and a write of the ``runs`` table; one renewal per ``interval`` keeps the
    lease as alive as one per activity did, so the activities of a run in one process renew it
    together, at most once per interval (``renew``), one thread at a time. A loss seen by any of
    them stops them all: once lost, a lease is never renewed again by this process."""

    def __init__(self, runs: RunRepository, run_id: str, ttl: timedelta, clock: WallClock = wall_clock,
                 interval: float | None = None) -> None:
        self.runs = runs
        self.run_id = run_id
        self.ttl = ttl
        self.clock = clock
        self.interval = interval if interval is not None else max(1.0, ttl.total_seconds() / 5)
        self._renewing = threading.Lock()  # one renewal at a time: the others find it fresh
        self._lock = threading.Lock()
        self._renewed: datetime | None = None
        self._lost = False

    def state(self) -> tuple[datetime | None, bool]:
        """When the lease was last renewed by this process, and whether it was found lost."""
        with self._lock:
            return self._renewed, self._lost

    def renew(self, older_than: timedelta | None = None, *, ride_out: bool = True) -> None:
        """Renew unless this process renewed it less than ``older_than`` ago (default: the
        interval) or found it lost; a storage outage is ridden out (the lease lapses only after
        ``ttl``), or raised when not ``ride_out``."""
        due = older_than if older_than is not None else timedelta(seconds=self.interval)
        with self._renewing:
            renewed, lost = self.state()
            now = self.clock()
            if lost or (renewed is not None and now - renewed < due):
                return
            try:
                held = self.runs.renew_lease(self.run_id, now, self.ttl)
            except Exception as exc:
                if not ride_out or not is_transient(exc):
                    raise
                log.warning("run %s: the lease could not be renewed (%s); trying again", self.run_id, exc)
                return
            with self._lock:
                if held:
                    self._renewed = now
                else:
                    self._lost = True


class Heartbeat:
    """Keeps a run's lease renewed while an activity works, from a background thread, through the
    process's ``LeaseRenewal`` of the run (so that the activities of one run renew it together);
    ``check`` (before every PSA write) raises ``LeaseLostError`` once the run no longer holds it.
    An activity that ``writes`` to a PSA renews when it starts, even if its process renewed less
    than an interval ago."""

    def __init__(self, renewal: LeaseRenewal, *, writes: bool = False,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._renewal = renewal
        self._writes = writes
        self._sleep = sleep
        self._run_id = renewal.run_id
        self._ttl = renewal.ttl
        self._clock = renewal.clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self._writes:
            # an activity that writes to a PSA renews at its start whatever its process did before,
            # so that a lease cleared in the meantime stops it before its first write; it is its
            # first storage request, retried while Table Storage is unreachable like any other
            StoreRetry().call(f"renewing the lease of run {self._run_id}",
                              partial(self._renewal.renew, timedelta(0), ride_out=False), self._sleep)
        else:
            self._renewal.renew()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{self._run_id}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def lost(self) -> bool:
        return self._renewal.state()[1]

    def _loop(self) -> None:
        while not self._stop.wait(self._renewal.interval):
            try:
                self.beat()
            except Exception:  # a thread's exception would vanish: logged, and check() renews in the open
                log.exception("run %s: renewing the lease failed", self._run_id)

    def beat(self) -> None:
        """Renew unless this process renewed the lease less than an interval ago."""
        self._renewal.renew()

    def check(self) -> None:
        """Raise ``LeaseLostError`` unless the run still holds its lease (renewing first when the
        last renewal is older than half the lease)."""
        renewed, lost = self._renewal.state()
        if not lost and (renewed is None or self._clock() - renewed > self._ttl / 2):
            self._renewal.renew(self._ttl / 2)
            renewed, lost = self._renewal.state()
        if lost or renewed is None or self._clock() - renewed >= self._ttl:
            raise LeaseLostError(f"run {self._run_id} no longer holds the run lease (it was cleared, or taken "
                                 "over after it lapsed); it stops writing to the PSA")
