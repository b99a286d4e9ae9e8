"""The status of a finished run, from its tenants' outcomes and push summaries: it says
``succeeded`` only when nothing failed and no billing problem waits for a person."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.contracts import PushSummary, SyncRequest, TenantOutcome, summarize

NOW = datetime(2026, 11, 25, 2, 5, tzinfo=UTC)
T1, T2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
REQUEST = SyncRequest(run_id="20261125T020000Z-0a0b0c0d", trigger="timer", requested_by="schedule",
                      requested_at=datetime(2026, 11, 25, 2, tzinfo=UTC))


def outcome(tenant_id: str, status: str = "ok") -> TenantOutcome:
    return TenantOutcome.model_validate({"tenantId": tenant_id, "name": tenant_id[:4], "status": status})


def push(**values: Any) -> PushSummary:
    return PushSummary.model_validate({"tenants": 2, **values})


OK = [outcome(T1), outcome(T2)]


@pytest.mark.parametrize(("outcomes", "pushes", "extra", "status"), [
    (OK, [push(applied=2)], {}, "succeeded"),
    (OK, [push(problems=1, problemsByKind={"users-unmatched": 1})], {}, "attention"),
    (OK, [push(problems=1, problemsByKind={"price-differs": 1}, problemsExcluded=1)], {}, "succeeded"),
    (OK, [push(problems=2, problemsByKind={"price-differs": 2}, problemsExcluded=1)], {}, "attention"),
    (OK, [push(applied=1, failed=1, tenantsUnwritten=[T2])], {}, "partial"),
    (OK, [push(tenantsFailed=[T2])], {}, "partial"),
    (OK, [push(problems=1)], {"gdap_error": "HTTP 503"}, "partial"),
    ([outcome(T1), outcome(T2, "failed")], [push(tenants=1, problems=3)], {}, "partial"),
    (OK, [push(tenantsFailed=[T1, T2])], {}, "failed"),
    (OK, [push(failed=2, tenantsUnwritten=[T1, T2])], {}, "failed"),
    (OK, [push(tenantsFailed=[T1], failed=1, tenantsUnwritten=[T2])], {}, "failed"),
    ([outcome(T1, "auth-failed"), outcome(T2, "failed")], [], {}, "failed"),
    (OK, [], {"error": "TimeoutError: push"}, "failed"),
    ([], [], {}, "succeeded"),
], ids=["clean", "problem", "acknowledged-problem", "one-of-two-acknowledged", "a-tenant-unwritten",
        "a-tenant-unread", "gdap-not-listed", "a-tenant-not-collected", "psa-down-for-every-tenant",
        "psa-refuses-every-write", "nothing-pushed-for-mixed-reasons", "nothing-collected", "stopped",
        "no-tenant-configured"])
def test_the_run_status(outcomes: list[TenantOutcome], pushes: list[PushSummary], extra: dict[str, Any],
                        status: str) -> None:
    summary = summarize(REQUEST, outcomes, pushes, extra_graph_calls=0, finished_at=NOW, **extra)
    assert summary.status == status


def test_the_summary_counts_problems_by_kind_across_batches() -> None:
    summary = summarize(REQUEST, OK, [push(problems=2, problemsByKind={"line-missing": 1, "price-differs": 1}),
                                      push(problems=1, problemsByKind={"price-differs": 1}, problemsExcluded=1)],
                        extra_graph_calls=0, finished_at=NOW, gdap_error="HTTP 503")
    assert (summary.problems, summary.problems_excluded, summary.problems_open) == (3, 1, 2)
    assert summary.problems_by_kind == {"line-missing": 1, "price-differs": 2}
    assert summary.gdap_error == "HTTP 503"
