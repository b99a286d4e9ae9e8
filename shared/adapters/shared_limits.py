"""PSA request limits shared by every instance of the Function App, in Table Storage.

A PSA's limits are its own, whatever number of processes send its requests: Autotask allows a
database 10,000 requests a rolling hour and an integration 3 requests at once per endpoint; hosted
HaloPSA allows a few hundred requests a rolling 5 minutes. A Function App on the Flex Consumption
plan runs on as many instances as the load asks for, each with its own memory, so the limits are
kept where every instance sees them: one row per limit in ``<prefix>psalimits``, changed only with
optimistic concurrency (the row's ETag), so that two instances never both take the last permit.

- ``SharedWindow``: at most ``limit`` requests in any ``window`` seconds. The window is divided in
  buckets; an instance reserves permits in the current bucket (a few at a time, so that a busy
  instance does not pay a round trip per request, and one at a time near the limit, so that what
  one holds unused does not starve the others) and uses them only within that bucket, so every
  request is counted in the bucket it is sent in. Buckets older than the window are dropped; a
  reservation that would pass the limit waits until the oldest bucket leaves the window. Unused
  permits are counted all the same: the limit errs on the safe side.
- ``SharedSlots``: at most ``limit`` requests in flight at once. An instance takes a slot as a
  lease (a row's list of holders and when each lease ends), renews it while it keeps sending, and
  gives it back shortly after its last request, so that a busy instance keeps its slot without a
  round trip per request and an idle one frees it for the others. A lease lasts longer than one
  attempt of a request (connect and read timeouts) and is renewed before each attempt; a crashed
  instance's leases end by themselves.

Times are wall-clock times (``time.time``), which every instance shares. Waits are bounded by the
activity's deadline (``shared.deadline``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared import deadline
from shared.adapters.tables import TableStore

log = logging.getLogger(__name__)

_WINDOWS = "window"
_SLOTS = "slots"
_CONTENTION_TRIES = 20


def row_key(*parts: str) -> str:
    """A row key for a limit named by ``parts`` (URLs and user names hold characters row keys refuse)."""
    return hashlib.sha256("\x1f".join(p.strip().lower() for p in parts).encode("utf-8")).hexdigest()


def holder_id() -> str:
    """This process, as a slot holder: host, pid and a random part (a reused pid is another holder)."""
    return f"{socket.gethostname()}-{os.getpid()}-{random.getrandbits(32):08x}"


class LimitsTable:
    """The ``psalimits`` table of the deployment."""

    def __init__(self, store: TableStore) -> None:
        self.table: TableClient = store.table("psalimits")
        self.identity = (str(self.table.url), str(self.table.table_name))
        """Which table this is (a process may hold several clients of one table)."""

    def window(self, key: str, limit: int, window: float, *, buckets: int = 30,
               clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
               too_long: Callable[[float], Exception] | None = None, max_wait: float = math.inf) -> SharedWindow:
        return SharedWindow(self.table, key, limit, window, buckets=buckets, clock=clock, sleep=sleep,
                            too_long=too_long, max_wait=max_wait)

    def slots(self, key: str, limit: int, *, clock: Callable[[], float] = time.time,
              sleep: Callable[[float], None] = time.sleep, lease: float = 120.0, linger: float = 1.0) -> SharedSlots:
        return SharedSlots(self.table, key, limit, clock=clock, sleep=sleep, lease=lease, linger=linger)


def _etag(entity: Any) -> str:
    return str(entity.metadata["etag"])


class SharedWindow:
    """At most ``limit`` requests in any ``window`` seconds, across every process that uses the
    same table row. Thread-safe. ``take`` waits for a permit (bounded by the deadline and by
    ``max_wait``, beyond which ``too_long(wait)`` is raised)."""

    def __init__(self, table: TableClient, key: str, limit: int, window: float, *, buckets: int = 30,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 too_long: Callable[[float], Exception] | None = None, max_wait: float = math.inf,
                 max_block: int = 16) -> None:
        if limit < 1 or window <= 0 or buckets < 1:
            raise ValueError("a shared window needs a limit of at least 1 and a positive length")
        self._table = table
        self.table = (str(table.url), str(table.table_name))
        self.key = key
        self.limit = limit
        self.window = window
        self.buckets = buckets
        self._clock = clock
        self._sleep = sleep
        self.too_long = too_long
        """Raised (given the wait) instead of waiting longer than ``max_wait``; None: wait."""
        self.max_wait = max_wait
        self._max_block = max(1, max_block)
        self._lock = threading.Lock()  # the local permits
        self._reserving = threading.Lock()  # one reservation at a time from this process
        self._permits = 0
        self._permits_bucket = -1.0
        self._block = 1
        self.reservations = 0
        self.waited = 0.0

    @property
    def bucket(self) -> float:
        return self.window / self.buckets

    def _bucket_of(self, now: float) -> float:
        return math.floor(now / self.bucket) * self.bucket

    def _local(self, now: float) -> bool:
        with self._lock:
            if self._permits > 0 and self._permits_bucket == self._bucket_of(now):
                self._permits -= 1
                return True
            if self._permits > 0:  # the bucket ended with permits unused: reserve fewer next time
                self._permits = 0
                self._block = max(1, self._block // 2)
            return False

    def take(self, what: str = "request") -> float:
        """Wait for a permit and take it; returns the moment it was granted for (the request is
        sent at once, within the bucket it was counted in)."""
        while True:
            now = self._clock()
            if self._local(now):
                return now
            with self._reserving:
                now = self._clock()
                if self._local(now):
                    return now
                with self._lock:
                    want = self._block
                got, wait, now = self._reserve(want)
                if got:
                    with self._lock:
                        self._permits = got - 1
                        self._permits_bucket = self._bucket_of(now)
                        if got == want:
                            self._block = min(self._max_block, self._block * 2)
                    return now
            if wait > self.max_wait and self.too_long is not None:
                raise self.too_long(wait)
            allowed = deadline.allowed_wait(wait)
            if allowed < wait:
                raise deadline.DeadlineReached(
                    f"{what}: the shared request window frees a slot in {wait:.0f}s, after this activity's deadline")
            self.waited += wait
            self._sleep(wait)

    def usage(self) -> int:
        """Requests counted in the window now (all processes)."""
        entity = self._read()
        if entity is None:
            return 0
        return sum(self._live(entity, self._clock()).values())

    def _read(self) -> Any:
        try:
            return self._table.get_entity(_WINDOWS, self.key)
        except ResourceNotFoundError:
            return None

    def _live(self, entity: Any, now: float) -> dict[str, int]:
        raw = json.loads(str(entity.get("Buckets") or "{}"))
        return {start: int(count) for start, count in raw.items() if float(start) + self.bucket > now - self.window}

    def _reserve(self, want: int) -> tuple[int, float, float]:
        """Reserve up to ``want`` permits in the current bucket: (permits, 0, the moment they are
        for) or (0, seconds to wait, now). The moment is read after the row: every reservation the
        row holds was made at that moment or before, so the window is judged as it is now."""
        now = self._clock()
        for _ in range(_CONTENTION_TRIES):
            entity = self._read()
            now = self._clock()
            bucket = self._bucket_of(now)
            live = self._live(entity, now) if entity is not None else {}
            used = sum(live.values())
            # a block never takes more than an eighth of what is left: near the limit, one at a time,
            # so that permits one instance holds unused do not starve the others
            got = min(want, max(1, (self.limit - used) // 8), self.limit - used)
            if got <= 0:
                oldest = min(float(start) for start in live)
                return 0, max(oldest + self.bucket + self.window - now, 0.01), now
            name = repr(bucket) if not bucket.is_integer() else str(int(bucket))
            live[name] = live.get(name, 0) + got
            row = {"PartitionKey": _WINDOWS, "RowKey": self.key, "Buckets": json.dumps(live),
                   "Limit": self.limit, "WindowSeconds": self.window}
            try:
                if entity is None:
                    self._table.create_entity(row)
                else:
                    self._table.update_entity(row, mode=UpdateMode.REPLACE, etag=_etag(entity),
                                              match_condition=MatchConditions.IfNotModified)
            except (ResourceExistsError, ResourceModifiedError):
                self._sleep(random.uniform(0.005, 0.05))  # another instance reserved meanwhile: read again
                continue
            self.reservations += 1
            return got, 0.0, now
        return 0, random.uniform(0.05, 0.2), now  # heavy contention: try again shortly


@dataclass
class _Lease:
    ends: float
    in_use: bool = False
    release_at: float | None = None


@dataclass
class SlotHandle:
    """The slot a request holds (``name`` changes if its lease had to be taken again)."""

    name: str
    what: str


class SharedSlots:
    """At most ``limit`` requests in flight at once across every process using the same row.
    Thread-safe: ``with slots.slot(what):`` around each request; ``keep()`` before each attempt of
    it renews the lease when it could end before the attempt does."""

    def __init__(self, table: TableClient, key: str, limit: int, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, lease: float = 120.0, linger: float = 1.0,
                 poll: float = 0.25) -> None:
        if limit < 1:
            raise ValueError("shared slots need a limit of at least 1")
        self._table = table
        self.key = key
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self.lease = lease
        self.renew_below = lease * 0.75
        self.linger = linger
        self._poll = poll
        self._holder = holder_id()
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}
        self._sequence = 0
        self._janitor: threading.Timer | None = None
        self.waited = 0.0

    @contextmanager
    def slot(self, what: str = "request") -> Iterator[SlotHandle]:
        handle = SlotHandle(self._take(what), what)
        try:
            yield handle
        finally:
            self._put_back(handle.name)

    def keep(self, handle: SlotHandle) -> None:
        """Before another attempt of the request: renew its lease if it could end during the attempt,
        or take a slot again if it ended meanwhile (a long wait between attempts)."""
        with self._lock:
            lease = self._leases.get(handle.name)
            due = lease is not None and lease.ends - self._clock() < self.renew_below
        if due and not self._renew(handle.name):
            with self._lock:
                self._leases.pop(handle.name, None)
            handle.name = self._take(handle.what)

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._leases)

    # -- the table ---------------------------------------------------------------------------
    def _read(self) -> tuple[Any, dict[str, float]]:
        try:
            entity = self._table.get_entity(_SLOTS, self.key)
        except ResourceNotFoundError:
            return None, {}
        return entity, {name: float(ends) for name, ends in json.loads(str(entity.get("Holders") or "{}")).items()}

    def _write(self, entity: Any, holders: dict[str, float]) -> bool:
        row = {"PartitionKey": _SLOTS, "RowKey": self.key, "Holders": json.dumps(holders), "Limit": self.limit}
        try:
            if entity is None:
                self._table.create_entity(row)
            else:
                self._table.update_entity(row, mode=UpdateMode.REPLACE, etag=_etag(entity),
                                          match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError):
            return False
        return True

    def _claim(self, now: float) -> str | None:
        """A new lease for this process, if fewer than ``limit`` are held (by anyone) now."""
        for _ in range(_CONTENTION_TRIES):
            entity, holders = self._read()
            live = {name: ends for name, ends in holders.items() if ends > now}
            if len(live) >= self.limit:
                return None
            with self._lock:
                self._sequence += 1
                name = f"{self._holder}-{self._sequence}"
            live[name] = now + self.lease
            if self._write(entity, live):
                with self._lock:
                    self._leases[name] = _Lease(now + self.lease, in_use=True)
                return name
            self._sleep(random.uniform(0.005, 0.05))
        return None

    def _renew(self, name: str) -> bool:
        """Extend the lease ``name``; False when it already ended (another may hold the slot now)."""
        for _ in range(_CONTENTION_TRIES):
            now = self._clock()
            entity, holders = self._read()
            if name not in holders or holders[name] <= now:
                return False
            holders = {n: ends for n, ends in holders.items() if ends > now}
            holders[name] = now + self.lease
            if self._write(entity, holders):
                with self._lock:
                    if name in self._leases:
                        self._leases[name].ends = now + self.lease
                return True
            self._sleep(random.uniform(0.005, 0.05))
        return False

    def _release(self, names: list[str]) -> None:
        for _ in range(_CONTENTION_TRIES):
            entity, holders = self._read()
            if entity is None or not any(n in holders for n in names):
                return
            now = self._clock()
            kept = {n: ends for n, ends in holders.items() if n not in names and ends > now}
            if self._write(entity, kept):
                return
            self._sleep(random.uniform(0.005, 0.05))

    # -- this process's leases ---------------------------------------------------------------
    def _reuse(self, now: float) -> str | None:
        with self._lock:
            for name, lease in self._leases.items():
                if not lease.in_use and lease.ends - now > self.renew_below:
                    lease.in_use, lease.release_at = True, None
                    return name
            return None

    def _take(self, what: str) -> str:
        wait = self._poll
        while True:
            now = self._clock()
            name = self._reuse(now) or self._claim(now)
            if name is not None:
                return name
            self._expire_unused(now)
            allowed = deadline.allowed_wait(wait)
            if allowed < wait:
                raise deadline.DeadlineReached(f"{what}: every shared request slot stays busy past this activity's "
                                               "deadline")
            self.waited += wait
            self._sleep(wait * random.uniform(0.5, 1.5))
            wait = min(wait * 2, 2.0)

    def _expire_unused(self, now: float) -> None:
        """Give back this process's leases that are not in use and would need renewing."""
        with self._lock:
            stale = [n for n, lease in self._leases.items()
                     if not lease.in_use and lease.ends - now <= self.renew_below]
            for name in stale:
                del self._leases[name]
        if stale:
            self._release(stale)

    def _put_back(self, name: str) -> None:
        with self._lock:
            lease = self._leases.get(name)
            if lease is None:
                return
            lease.in_use = False
            lease.release_at = self._clock() + self.linger
            if self._janitor is None:
                self._janitor = threading.Timer(self.linger, self._give_back_idle)
                self._janitor.daemon = True
                self._janitor.start()

    def _give_back_idle(self) -> None:
        """Give back the leases nobody in this process used for ``linger`` seconds."""
        with self._lock:
            self._janitor = None
            now = self._clock()
            idle = [n for n, lease in self._leases.items()
                    if not lease.in_use and lease.release_at is not None and lease.release_at <= now]
            for name in idle:
                del self._leases[name]
            pending = any(not lease.in_use for lease in self._leases.values())
        if idle:
            try:
                self._release(idle)
            except Exception:  # a lease not given back ends by itself; logged, never lost silently
                log.warning("request slots %s were not given back; they end by themselves within %.0fs", idle,
                            self.lease, exc_info=True)
        if pending:
            with self._lock:
                if self._janitor is None:
                    self._janitor = threading.Timer(self.linger, self._give_back_idle)
                    self._janitor.daemon = True
                    self._janitor.start()

    def close(self) -> None:
        """Give back every lease this process holds (none may be in use)."""
        with self._lock:
            names = [n for n, lease in self._leases.items() if not lease.in_use]
            for name in names:
                del self._leases[name]
            janitor, self._janitor = self._janitor, None
        if janitor is not None:
            janitor.cancel()
        if names:
            self._release(names)
