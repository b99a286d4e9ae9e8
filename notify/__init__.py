"""The notification activity: tells the MSP what a run did and what needs attention."""

from __future__ import annotations

import logging
from typing import Any

import azure.durable_functions as df

from shared.contracts import RunSummary
from shared.functions import NOTIFY_RUN

bp = df.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name(NOTIFY_RUN)
@bp.activity_trigger(input_name="payload")
def notify_run(payload: dict[str, Any]) -> dict[str, Any]:
    summary = RunSummary.model_validate(payload)
    level = logging.INFO if summary.status == "succeeded" else logging.WARNING
    log.log(level, "SeatSync run %s %s: %d/%d tenants synced, %d changes applied, %d failed, "
            "%d planned (dry run), %d problems", summary.run_id, summary.status, summary.tenants_ok,
            summary.tenants_total, summary.changes_applied, summary.changes_failed,
            summary.changes_dry_run, summary.problems)
    return {"sent": 0, "logged": True}
