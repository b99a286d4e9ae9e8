"""What the tests of the PSA clients and their emulators share: a fake clock, a ``RetryingHttp``
that records its sleeps, work run in threads at once, emulators started for one test, and
changed copies of a scenario section with the message the emulator refuses them with."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from emulators.base import Emulator, EmulatorError, RunningEmulator
from emulators.tls import TlsFiles
from shared.adapters.http import RetryingHttp, RetryPolicy

E = TypeVar("E", bound=Emulator)
P = TypeVar("P")


class FakeClock:
    """A monotonic clock that moves only when told (``now``) or slept on (``sleep``, recorded)."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def in_threads(work: Callable[[], None], count: int) -> list[BaseException]:
    """Run ``work`` in ``count`` threads at once, wait for them all and return what they raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # pragma: no cover - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def recording_http(service: str, tls: TlsFiles, sleep: Callable[[float], None],
                   policy: RetryPolicy | None = None) -> RetryingHttp:
    """A ``RetryingHttp`` trusting the emulators' CA that hands its waits to ``sleep`` (which
    records them) and waits the whole back-off (no jitter)."""
    return RetryingHttp(service, policy=policy, verify=str(tls.ca_certificate), sleep=sleep, jitter=lambda: 1.0)


def reset_emulator(server: RunningEmulator, kind: type[E]) -> E:
    """The emulator ``server`` runs, back at the start of its scenario."""
    emulator = server.emulator
    assert isinstance(emulator, kind)
    emulator.reset()
    return emulator


def serve_emulators(tls: TlsFiles, emulator: Callable[..., E], scenario: Callable[[], dict[str, Any]],
                    wrap: Callable[[E, RunningEmulator, TlsFiles], P]) -> Iterator[Callable[..., P]]:
    """For a fixture: ``start(section=None, **kwargs)`` runs a new ``emulator(section or
    scenario(), **kwargs)`` over HTTPS and returns it wrapped; every one started is stopped at
    the end of the test."""
    started: list[RunningEmulator] = []

    def start(section: dict[str, Any] | None = None, **kwargs: Any) -> P:
        made = emulator(section if section is not None else scenario(), **kwargs)
        running = RunningEmulator(made, tls).start()
        started.append(running)
        return wrap(made, running, tls)

    try:
        yield start
    finally:
        for running in started:
            running.stop()


@dataclass(frozen=True)
class ScenarioSection:
    """A valid scenario section of one emulator and the emulator's parser of it."""

    valid: dict[str, Any]
    parse: Callable[[Any], object]

    def changed(self, **changes: Any) -> dict[str, Any]:
        """A copy of the valid section with ``changes`` to its keys."""
        result = copy.deepcopy(self.valid)
        result.update(changes)
        return result

    def rejected(self, value: Any) -> str:
        """The message the parser refuses ``value`` with."""
        with pytest.raises(EmulatorError) as caught:
            self.parse(value)
        return str(caught.value)
