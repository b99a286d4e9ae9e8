"""The notification activity: tells the MSP what a run did and what needs attention.

Thin: it validates the run's summary and hands over to ``shared.notifications.service``. A
channel that cannot deliver never fails the activity (the run is already recorded); only a
storage failure does.
"""

from __future__ import annotations

from typing import Any

from durable_blueprint import Blueprint
from shared.functions import NOTIFY_RUN

bp = Blueprint()


@bp.function_name(NOTIFY_RUN)
@bp.activity_trigger(input_name="payload")
def notify_run(payload: dict[str, Any]) -> dict[str, Any]:
    from shared.bootstrap import get_services  # imported when the activity runs, not at registration
    from shared.contracts import RunSummary
    from shared.notifications.service import NotifyServices
    from shared.notifications.service import notify_run as notify_run_service

    summary = RunSummary.model_validate(payload)
    services = get_services()
    try:
        return notify_run_service(NotifyServices.from_services(services), summary.run_id, summary).to_json()
    finally:
        services.forget_run(summary.run_id)  # telling of the run is its last step
