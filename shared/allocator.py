"""The C allocator of a process that runs activity after activity for months.

Python hands every object over 512 bytes (response bodies, JSON documents, lists of entities) to
the C library's ``malloc``. With glibc's defaults, a long-lived process that runs activities on
several threads keeps what it freed instead of giving it back to the system:

- each thread that allocates while another holds the lock gets an arena of its own (up to eight
  per core), and what an arena frees stays in that arena;
- after the first large body (say a 2 MB page of users) is freed, glibc raises its threshold for
  serving large blocks from their own mappings to that size, and the threshold under which it
  keeps free memory at an arena's top to twice that: later bodies come from the arenas, and their
  holes stay resident.

So the resident memory of a sync grew with the number of tenants it had read (about 27 KB a
tenant, every run, measured by ``scripts/bench_sync.py``) although what it holds does not. Three
settings bound it, all glibc's own and documented in ``mallopt(3)``:

- ``M_ARENA_MAX`` 2: threads share two arenas (``MALLOC_ARENA_MAX`` in the environment wins);
- ``M_MMAP_THRESHOLD`` 128 KiB, fixed: blocks from 128 KiB up get their own mapping and return to
  the system when freed (``MALLOC_MMAP_THRESHOLD_`` wins);
- ``malloc_trim(0)`` when an activity ends, at most once a second: free pages inside the arenas go
  back to the system.

Elsewhere (macOS, musl) nothing is done: ``tune`` answers False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 128 * 1024
TRIM_INTERVAL_SECONDS = 1.0

_lock = threading.Lock()
_libc: Any = None  # glibc (a ctypes.CDLL) once tuned, else None
_tuned = False
_last_trim = 0.0


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc has it; musl does not
        libc.malloc_trim  # noqa: B018
        libc.gnu_get_libc_version  # noqa: B018 - glibc alone
    except (OSError, AttributeError):
        return None
    return libc


def tune(environ: Mapping[str, str] = os.environ, libc: Any = None) -> bool:
    """Set glibc's arenas and large-block threshold for this process, once; False where the C
    library is not glibc. Settings already given in the environment are left as they are.
    (``libc``: the library to set, for the tests; glibc itself by default.)"""
    global _libc, _tuned
    with _lock:
        if _tuned:
            return _libc is not None
        _tuned = True
        _libc = libc if libc is not None else _glibc()
        if _libc is None:
            return False
        if "MALLOC_ARENA_MAX" not in environ and not _libc.mallopt(M_ARENA_MAX, ARENAS):
            log.warning("glibc refused M_ARENA_MAX=%d", ARENAS)
        if "MALLOC_MMAP_THRESHOLD_" not in environ and not _libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD):
            log.warning("glibc refused M_MMAP_THRESHOLD=%d", MMAP_THRESHOLD)
        return True


def untune() -> None:
    """Forget ``tune`` (the tests' fresh start; what was set in glibc stays set)."""
    global _libc, _tuned, _last_trim
    with _lock:
        _libc, _tuned, _last_trim = None, False, 0.0


def release(clock: float | None = None) -> bool:
    """Give the free pages of glibc's arenas back to the system, at most once a second (an
    activity ends every few milliseconds in a large run); True when it trimmed."""
    global _last_trim
    libc = _libc
    if libc is None:
        return False
    now = time.monotonic() if clock is None else clock
    with _lock:
        if now - _last_trim < TRIM_INTERVAL_SECONDS:
            return False
        _last_trim = now
    libc.malloc_trim(0)
    return True
