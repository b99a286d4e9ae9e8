"""Runs the Function App's orchestrator and activities in-process.

The Functions host cannot run everywhere SeatSync is developed or evaluated, so this runner
executes the *registered* functions of ``function_app.app`` (found by their trigger bindings,
not by a separate list) the way Durable Functions would: the orchestrator generator is driven
task by task; an activity starts, on a thread pool, when the orchestrator first yields it (alone
or inside ``task_all``/``task_any``), as Durable schedules what is yielded; ``task_all`` waits for
all its tasks, ``task_any`` for the first; activity inputs and outputs make a JSON round trip as
they would through the orchestration history; ``call_activity_with_retry`` honours the retry
options' attempts; a sub-orchestration (``call_sub_orchestrator``) is another registered
orchestrator driven the same way on a thread of its own, its activities on the same pool; and
``set_custom_status`` reaches a listener (the CLI's progress display, the run store), as Durable
keeps it for its status endpoint.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

Activity = Callable[[Any], Any]


def _roundtrip(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} is not JSON-serialisable as Durable Functions requires: {exc}") from exc


class LocalTask:
    """An activity or sub-orchestration call; it starts when the orchestrator first yields it (a
    sub-orchestration on ``pool``, a thread of its own, so that it never waits for its activities
    on a thread the activities need)."""

    def __init__(self, run: Callable[[], Any], name: str, pool: ThreadPoolExecutor | None = None) -> None:
        self._run = run
        self.name = name
        self.future: Future[Any] | None = None
        self._pool = pool

    def start(self, pool: ThreadPoolExecutor) -> Future[Any]:
        if self.future is None:
            self.future = (self._pool or pool).submit(self._run)
        return self.future

    @property
    def result(self) -> Any:
        """The activity's output (or its exception raised), once it has finished."""
        if self.future is None:
            raise RuntimeError(f"activity {self.name} was never scheduled")
        return self.future.result()


class LocalTaskAll:
    def __init__(self, tasks: list[LocalTask]) -> None:
        self.tasks = tasks


class LocalTaskAny:
    def __init__(self, tasks: list[LocalTask]) -> None:
        self.tasks = tasks


@dataclass
class FunctionTable:
    orchestrators: dict[str, Callable[[Any], Generator[Any, Any, Any]]]
    activities: dict[str, Activity]


def discover(functions: Iterable[Any]) -> FunctionTable:
    """Orchestrators and activities among a ``DFApp``'s functions, by their function names."""
    orchestrators: dict[str, Any] = {}
    activities: dict[str, Any] = {}
    for function in functions:
        bindings = [json.loads(b) for b in function.get_raw_bindings()]
        kinds = {b["type"] for b in bindings}
        user = function.get_user_function()
        if "orchestrationTrigger" in kinds:
            orchestrators[function.get_function_name()] = user.orchestrator_function
        elif "activityTrigger" in kinds:
            activities[function.get_function_name()] = user
    return FunctionTable(orchestrators, activities)


class LocalOrchestrationContext:
    """The parts of ``DurableOrchestrationContext`` SeatSync's orchestrator uses."""

    def __init__(self, instance_id: str, orchestration_input: Any, activities: Mapping[str, Activity],
                 clock: Callable[[], datetime] | None = None, retry_delay_scale: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep,
                 on_status: Callable[[Any], None] | None = None, version: str | None = None,
                 orchestrators: Mapping[str, Callable[[Any], Generator[Any, Any, Any]]] | None = None,
                 pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor] | None = None) -> None:
        self.instance_id = instance_id
        self.version = version  # as Durable sets it from host.json's defaultVersion
        self._input = _roundtrip(orchestration_input, "orchestration input")
        self._activities = activities
        self._clock = clock or (lambda: datetime.now(UTC))
        self._retry_delay_scale = retry_delay_scale
        self._sleep = sleep
        self.is_replaying = False
        self.custom_status: Any = None
        self._on_status = on_status
        self._orchestrators = orchestrators or {}
        self._pools = pools  # (activities, sub-orchestrations), set by run_orchestration
        self.activity_calls: dict[str, int] = {}
        self.sub_orchestrations = 0

    @property
    def current_utc_datetime(self) -> datetime:
        return self._clock()

    def get_input(self) -> Any:
        return self._input

    def set_custom_status(self, status: Any) -> None:
        self.custom_status = _roundtrip(status, "custom status")
        if self._on_status is not None:
            self._on_status(self.custom_status)

    def _activity(self, name: str) -> Activity:
        try:
            return self._activities[name]
        except KeyError:
            raise LookupError(f"no activity function named {name!r} is registered") from None

    def _invoke(self, name: str, payload: Any) -> Any:
        activity = self._activity(name)
        self.activity_calls[name] = self.activity_calls.get(name, 0) + 1
        result = activity(_roundtrip(payload, f"input of {name}"))
        return _roundtrip(result, f"output of {name}")

    def call_activity(self, name: str, input_: Any = None) -> LocalTask:
        self._activity(name)
        return LocalTask(lambda: self._invoke(name, input_), name)

    def call_activity_with_retry(self, name: str, retry_options: Any, input_: Any = None) -> LocalTask:
        self._activity(name)
        attempts = max(1, int(retry_options.max_number_of_attempts))
        first = retry_options.first_retry_interval_in_milliseconds / 1000.0
        coefficient = float(getattr(retry_options, "backoff_coefficient", 1.0) or 1.0)

        def run() -> Any:
            for attempt in range(1, attempts + 1):
                try:
                    return self._invoke(name, input_)
                except Exception as exc:
                    if attempt == attempts:
                        raise
                    delay = first * coefficient ** (attempt - 1) * self._retry_delay_scale
                    log.warning("activity %s failed (attempt %d of %d): %s; retrying in %.1fs",
                                name, attempt, attempts, exc, delay)
                    self._sleep(delay)
            raise AssertionError("unreachable")

        return LocalTask(run, name)

    def _sub(self, name: str, input_: Any, instance_id: str | None, attempts: int, first: float,
             coefficient: float) -> LocalTask:
        try:
            orchestrator = self._orchestrators[name]
        except KeyError:
            raise LookupError(f"no orchestrator function named {name!r} is registered") from None
        if self._pools is None:
            raise RuntimeError("sub-orchestrations run inside run_orchestration")
        self.sub_orchestrations += 1
        child_id = instance_id or f"{self.instance_id}:{self.sub_orchestrations:04d}"
        pools = self._pools

        def run() -> Any:
            for attempt in range(1, attempts + 1):
                child = LocalOrchestrationContext(child_id, input_, self._activities, self._clock,
                                                  self._retry_delay_scale, self._sleep, version=self.version,
                                                  orchestrators=self._orchestrators, pools=pools)
                try:
                    return _drive(orchestrator(child), pools[0], name)
                except Exception as exc:
                    if attempt == attempts:
                        raise
                    delay = first * coefficient ** (attempt - 1) * self._retry_delay_scale
                    log.warning("sub-orchestration %s failed (attempt %d of %d): %s; retrying in %.1fs",
                                name, attempt, attempts, exc, delay)
                    self._sleep(delay)
            raise AssertionError("unreachable")

        return LocalTask(run, name, pools[1])

    def call_sub_orchestrator(self, name: str, input_: Any = None, instance_id: str | None = None) -> LocalTask:
        return self._sub(name, _roundtrip(input_, f"input of {name}"), instance_id, 1, 0.0, 1.0)

    def call_sub_orchestrator_with_retry(self, name: str, retry_options: Any, input_: Any = None,
                                         instance_id: str | None = None) -> LocalTask:
        return self._sub(name, _roundtrip(input_, f"input of {name}"), instance_id,
                         max(1, int(retry_options.max_number_of_attempts)),
                         retry_options.first_retry_interval_in_milliseconds / 1000.0,
                         float(getattr(retry_options, "backoff_coefficient", 1.0) or 1.0))

    def task_all(self, tasks: list[LocalTask]) -> LocalTaskAll:
        return LocalTaskAll(list(tasks))

    def task_any(self, tasks: list[LocalTask]) -> LocalTaskAny:
        return LocalTaskAny(list(tasks))


def _settle(step: Any, pool: ThreadPoolExecutor) -> Any:
    """What the orchestrator receives for a yielded task (or the exception it gets thrown)."""
    if isinstance(step, LocalTaskAll):
        futures = [task.start(pool) for task in step.tasks]
        wait(futures)  # all of them, like Durable's task_all; the first failure is raised
        return [future.result() for future in futures]
    if isinstance(step, LocalTaskAny):
        done, _ = wait([task.start(pool) for task in step.tasks], return_when=FIRST_COMPLETED)
        return next(task for task in step.tasks if task.future in done)
    if isinstance(step, LocalTask):
        return step.start(pool).result()
    raise TypeError(f"orchestrator yielded {type(step).__name__}, not a task")


def run_orchestration(table: FunctionTable, name: str, orchestration_input: Any, instance_id: str,
                      max_workers: int = 8, clock: Callable[[], datetime] | None = None,
                      retry_delay_scale: float = 1.0, on_status: Callable[[Any], None] | None = None,
                      version: str | None = None) -> Any:
    """Drive an orchestrator to completion and return its output (or raise its exception).
    ``on_status`` receives each custom status the orchestrator sets; ``version`` is the
    instance's orchestration version (host.json's ``defaultVersion`` in the Functions host)."""
    try:
        orchestrator = table.orchestrators[name]
    except KeyError:
        raise LookupError(f"no orchestrator named {name!r} is registered") from None
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="activity") as pool, \
            ThreadPoolExecutor(max_workers=64, thread_name_prefix="orchestration") as orchestrations:
        context = LocalOrchestrationContext(instance_id, orchestration_input, table.activities, clock,
                                            retry_delay_scale, on_status=on_status, version=version,
                                            orchestrators=table.orchestrators, pools=(pool, orchestrations))
        return _drive(orchestrator(context), pool, name)


def _drive(generator: Generator[Any, Any, Any], pool: ThreadPoolExecutor, name: str) -> Any:
    """Run an orchestrator generator to its end: each yielded task settled, its result sent back
    (or its exception thrown in); the output makes the JSON round trip of the history."""
    send: Any = None
    throw: BaseException | None = None
    while True:
        try:
            step = generator.throw(throw) if throw is not None else generator.send(send)
        except StopIteration as stop:
            return _roundtrip(stop.value, f"output of {name}")
        send, throw = None, None
        try:
            send = _settle(step, pool)
        except Exception as exc:
            throw = exc
