"""HTTP with the retry rules every SeatSync adapter shares.

Graph and the PSAs throttle with 429 and a ``Retry-After`` header and fail transiently with
5xx and timeouts. ``RetryingHttp`` waits as long as the service asks (capped), backs off
exponentially otherwise, and counts every request it sends so runs can report their API cost.

A request that is not idempotent (a POST that creates a record) is retried only when the
service cannot have acted on it (429, or a connection that was never made); after a timeout or
a 5xx it raises instead, because a blind retry could create a second record. The push's
exactly-once bookkeeping then checks the PSA before writing again.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
import urllib3

from shared import telemetry

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 30.0
    max_retry_after_seconds: float = 300.0
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0
    retry_statuses: frozenset[int] = TRANSIENT_STATUSES


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP-date)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        current = now or datetime.now(UTC)
        seconds = (when - current).total_seconds()
    return max(0.0, seconds)


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection was never established, so the server cannot have acted."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)
    return isinstance(inner, urllib3.exceptions.NewConnectionError)


def pooled_session(session: requests.Session | None = None, pool_size: int = 32) -> requests.Session:
    """A session whose connection pool serves ``pool_size`` concurrent requests per host, to be
    shared by the clients of one process: connections (and their TLS handshakes) are reused
    across activity invocations instead of being opened per client."""
    session = session or requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class RetryingHttp:
    """A ``requests`` session wrapper with retries, timeouts and a request counter.

    Thread-safe for concurrent use by the threads of one activity.
    """

    def __init__(
        self,
        service: str,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.service = service
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE override session.verify.
        self.verify = verify
        self._sleep = sleep
        self._jitter = jitter
        self._lock = threading.Lock()
        self._calls = 0
        self._throttled = 0
        self._retries = 0
        self._tally = telemetry.current_tally()  # the activity's, for its telemetry

    @property
    def calls(self) -> int:
        """Requests sent, retries included."""
        return self._calls

    @property
    def throttled(self) -> int:
        """Responses that were 429 (each one waited for)."""
        return self._throttled

    @property
    def retries(self) -> int:
        """Requests sent again after a failure, a timeout or a 429."""
        return self._retries

    def note(self, throttled: int = 0, retries: int = 0) -> None:
        """Count 429s and retries the caller handled itself (the sub-requests of a Graph
        ``$batch``, answered 429 inside a 200 and sent again in the next batch)."""
        with self._lock:
            self._throttled += throttled
            self._retries += retries
        if self._tally is not None:
            for _ in range(throttled):
                self._tally.count(self.service, throttled=True)
            self._tally.add_retries(self.service, retries)

    def _count(self, throttled: bool = False, retry: bool = False) -> None:
        with self._lock:
            if throttled:
                self._throttled += 1
            else:
                self._calls += 1
                self._retries += int(retry)
        if self._tally is not None:
            self._tally.count(self.service, throttled=throttled, retry=retry)

    def _backoff(self, attempt: int) -> float:
        base = self.policy.backoff_base_seconds * (2 ** (attempt - 1))
        return float(min(self.policy.backoff_max_seconds, base * (0.5 + self._jitter() / 2)))

    def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        on_retry: Callable[[], None] | None = None,
        final: Callable[[requests.Response], bool] | None = None,
    ) -> requests.Response:
        """Send a request, retrying transient failures. Returns the final response whatever its
        status (callers turn error statuses into their own errors); raises
        ``requests.RequestException`` when no response could be had.

        ``on_retry`` runs before each new attempt (e.g. to refresh an expired token). ``final``
        says of an answer with a retried status that retrying cannot change it (a service that
        answers a refused login with a 5xx).
        """
        if idempotent is None:
            idempotent = method.upper() in {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"}
        timeout = (self.policy.connect_timeout_seconds, self.policy.read_timeout_seconds)
        attempt = 0
        while True:
            attempt += 1
            self._count(retry=attempt > 1)
            try:
                response = self.session.request(
                    method, url, headers=dict(headers or {}), params=params, json=json,
                    data=data, timeout=timeout, verify=self.verify,
                )
            except requests.ConnectionError as exc:
                never_sent = _never_sent(exc)
                if attempt >= self.policy.max_attempts or not (idempotent or never_sent):
                    raise
                wait = self._backoff(attempt)
                log.warning("%s: %s %s failed (%s); retry %d in %.1fs", self.service, method,
                            url, type(exc).__name__, attempt, wait)
            except requests.Timeout:
                if attempt >= self.policy.max_attempts or not idempotent:
                    raise
                wait = self._backoff(attempt)
                log.warning("%s: %s %s timed out; retry %d in %.1fs", self.service, method, url,
                            attempt, wait)
            else:
                status = response.status_code
                if status not in self.policy.retry_statuses or attempt >= self.policy.max_attempts:
                    return response
                if final is not None and final(response):
                    return response
                if status != 429 and not idempotent:
                    return response
                if status == 429:
                    self._count(throttled=True)
                asked = parse_retry_after(response.headers.get("Retry-After"))
                if asked is not None and asked > self.policy.max_retry_after_seconds:
                    log.warning("%s: asked to wait %.0fs, more than the %.0fs cap; giving up",
                                self.service, asked, self.policy.max_retry_after_seconds)
                    return response
                wait = asked if asked is not None else self._backoff(attempt)
                log.info("%s: HTTP %d on %s %s; retry %d in %.1fs", self.service, status, method,
                         url, attempt, wait)
                response.close()
            self._sleep(wait)
            if on_retry is not None:
                on_retry()
