"""The C allocator's settings (``shared.allocator``): what is set, what the environment keeps,
and how often free memory is given back."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from shared import allocator


class RecordingLibc:
    """Stands for glibc: records ``mallopt`` and ``malloc_trim`` calls."""

    def __init__(self, accept: bool = True) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.accept = accept

    def mallopt(self, option: int, value: int) -> int:
        self.calls.append(("mallopt", option, value))
        return 1 if self.accept else 0

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    allocator.untune()
    yield
    allocator.untune()


def test_tune_sets_two_arenas_and_a_fixed_large_block_threshold() -> None:
    libc = RecordingLibc()
    assert allocator.tune({}, libc) is True
    assert libc.calls == [("mallopt", allocator.M_ARENA_MAX, 2), ("mallopt", allocator.M_MMAP_THRESHOLD, 131072)]


def test_tune_happens_once_per_process() -> None:
    libc = RecordingLibc()
    allocator.tune({}, libc)
    allocator.tune({}, libc)
    assert len(libc.calls) == 2


def test_settings_given_in_the_environment_are_kept() -> None:
    libc = RecordingLibc()
    allocator.tune({"MALLOC_ARENA_MAX": "4", "MALLOC_MMAP_THRESHOLD_": "65536"}, libc)
    assert libc.calls == []


def test_a_refused_setting_is_logged_and_the_process_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    assert allocator.tune({}, RecordingLibc(accept=False)) is True
    assert "glibc refused M_ARENA_MAX=2" in caplog.text
    assert "glibc refused M_MMAP_THRESHOLD=131072" in caplog.text


def test_free_memory_is_given_back_at_most_once_a_second() -> None:
    libc = RecordingLibc()
    allocator.tune({}, libc)
    libc.calls.clear()
    assert allocator.release(clock=100.0) is True
    assert allocator.release(clock=100.5) is False
    assert allocator.release(clock=101.0) is True
    assert libc.calls == [("malloc_trim", 0), ("malloc_trim", 0)]


def test_nothing_is_done_before_tune_or_where_the_library_is_not_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    assert allocator.release(clock=1000.0) is False
    monkeypatch.setattr(sys, "platform", "darwin")
    assert allocator.tune({}) is False
    assert allocator.release(clock=2000.0) is False


def test_on_this_machine_glibc_is_found_and_trimmed() -> None:
    """The Function App runs on Linux (glibc), as the machines that test it do."""
    assert allocator.tune() is True
    assert allocator.release(clock=10_000.0) is True
