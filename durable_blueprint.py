"""Durable Functions' blueprint and app, the SDK loaded when a durable function first runs.

``azure.durable_functions`` imports aiohttp for its client, and aiohttp builds its TLS contexts
as it is imported: 0.25 to 0.4 s of every cold start (measured on two cores), before the
first function can run, and most of what ``import function_app`` costs beyond ``azure.functions`` (the
Functions worker has that loaded already). The timer, the HTTP routes without a durable client
and the activities never need the SDK.

``Blueprint`` and ``DFApp`` declare the same functions as the SDK's (``azure.durable_functions``
``Blueprint`` and ``DFApp``, version pinned in requirements): the same trigger and binding
metadata, an orchestrator registered as the SDK's ``Orchestrator.create`` handle would be (named
after the generator, which it exposes as ``orchestrator_function``), and a durable client handed
to the function as the SDK's client middleware hands it (the host's JSON made into a
``DurableOrchestrationClient``; the function's own code under ``__wrapped__``). Only the SDK's
import moves: to the first orchestration or client call. ``tests/unit/test_durable_blueprint.py``
compares both against the SDK's own decorators.

The run status helpers compare the SDK's status enum by value, so that the routes that check
whether a sync runs need not import the enum at registration.
"""

from collections.abc import Callable, Generator
from functools import wraps
from typing import TYPE_CHECKING, Any

import azure.functions as func
from azure.functions import FunctionRegister
from azure.functions.decorators.core import InputBinding, Trigger
from azure.functions.decorators.function_app import BindingApi, SettingsApi, TriggerApi

if TYPE_CHECKING:  # the SDK itself is imported where a function runs
    import azure.durable_functions as df

ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
DURABLE_CLIENT = "durableClient"

ACTIVE_STATUSES = frozenset({"Running", "Pending", "ContinuedAsNew"})
"""The runtime statuses (``OrchestrationRuntimeStatus`` values) of an orchestration that still runs."""


def is_active(status: "df.DurableOrchestrationStatus | None") -> bool:
    """Whether ``status`` (the client's ``get_status`` answer, or None) is of an orchestration
    that is running, pending or continued as new."""
    if status is None:
        return False
    runtime = status.runtime_status
    return getattr(runtime, "value", runtime) in ACTIVE_STATUSES


class OrchestrationTrigger(Trigger):
    """The ``orchestrationTrigger`` binding, as the SDK declares it."""

    @staticmethod
    def get_binding_name() -> str:
        return ORCHESTRATION_TRIGGER

    def __init__(self, name: str, orchestration: str | None = None) -> None:
        self.orchestration = orchestration
        super().__init__(name=name)


class ActivityTrigger(Trigger):
    """The ``activityTrigger`` binding, as the SDK declares it."""

    @staticmethod
    def get_binding_name() -> str:
        return ACTIVITY_TRIGGER

    def __init__(self, name: str, activity: str | None = None) -> None:
        self.activity = activity
        super().__init__(name=name)


class DurableClient(InputBinding):
    """The ``durableClient`` input binding, as the SDK declares it."""

    @staticmethod
    def get_binding_name() -> str:
        return DURABLE_CLIENT

    def __init__(self, name: str, task_hub: str | None = None, connection_name: str | None = None) -> None:
        self.task_hub = task_hub
        self.connection_name = connection_name
        super().__init__(name=name)


def orchestrator_handle(orchestrator: Callable[[Any], Generator[Any, Any, Any]]) -> Callable[..., str]:
    """What the host calls for an orchestrator: the SDK's ``Orchestrator.create(orchestrator)``
    handle, made at the first call."""
    made: list[Callable[..., str]] = []

    def handle(context: func.OrchestrationContext) -> str:
        if not made:
            from azure.durable_functions import Orchestrator

            made.append(Orchestrator.create(orchestrator))
        return made[0](context)

    handle.orchestrator_function = orchestrator  # type: ignore[attr-defined]  # as the SDK's handle
    handle.__name__ = orchestrator.__name__
    return handle


class Blueprint(TriggerApi, BindingApi, SettingsApi):
    """Functions declared with Durable Functions' triggers and bindings, registered by
    ``DFApp.register_functions``; the SDK's decorators, without importing the SDK."""

    def __init__(self, http_auth_level: func.AuthLevel | str = func.AuthLevel.FUNCTION) -> None:
        super().__init__(auth_level=http_auth_level)  # type: ignore[no-untyped-call]

    def orchestration_trigger(self, context_name: str, orchestration: str | None = None) -> Callable[..., Any]:
        @self._configure_function_builder
        def wrap(fb: Any) -> Any:
            fb.add_trigger(trigger=OrchestrationTrigger(name=context_name, orchestration=orchestration))
            return fb

        def decorator(orchestrator: Callable[[Any], Generator[Any, Any, Any]]) -> Any:
            return wrap(orchestrator_handle(orchestrator))

        return decorator

    def activity_trigger(self, input_name: str, activity: str | None = None) -> Callable[..., Any]:
        @self._configure_function_builder
        def wrap(fb: Any) -> Any:
            fb.add_trigger(trigger=ActivityTrigger(name=input_name, activity=activity))
            return fb

        return wrap

    def durable_client_input(self, client_name: str, task_hub: str | None = None,
                             connection_name: str | None = None) -> Callable[..., Any]:
        @self._configure_function_builder
        def wrap(fb: Any) -> Any:
            _hand_client(fb, client_name)
            fb.add_binding(binding=DurableClient(name=client_name, task_hub=task_hub,
                                                 connection_name=connection_name))
            return fb

        return wrap


def _hand_client(fb: Any, parameter: str) -> None:
    """Make the function take the host's durable client JSON (annotated ``str``, as the worker
    type-checks it) and call its code with a ``DurableOrchestrationClient`` made from it, as the
    SDK's client middleware does."""
    code = fb._function._func
    code.__annotations__[parameter] = str

    @wraps(code)
    async def with_client(*args: Any, **kwargs: Any) -> Any:
        from azure.durable_functions import DurableOrchestrationClient

        context = kwargs.get("context")
        invocation = context.invocation_id if context is not None and hasattr(context, "invocation_id") else None
        kwargs[parameter] = DurableOrchestrationClient(kwargs[parameter], invocation)
        return await code(*args, **kwargs)

    with_client.__annotations__ = {**with_client.__annotations__, parameter: str}
    with_client.client_function = code  # type: ignore[attr-defined]  # as the SDK's middleware
    fb._function._func = with_client


class DFApp(Blueprint, FunctionRegister):
    """The Function App: registers blueprints' functions, and declares its own like a blueprint."""
