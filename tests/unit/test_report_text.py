"""The text report: a large run is summarised to what needs attention, --all lists everything;
the progress display is drawn only on a terminal and never when asked to be quiet."""

from __future__ import annotations

import io
from typing import Any

from local_runner.demo import billed_summary
from local_runner.progress import ProgressDisplay, wanted
from shared.contracts import RunProgress
from shared.services.report import SUMMARY_TENANTS, render_text


def tenant(i: int, status: str = "ok", error: str | None = None, problems: list[Any] | None = None) -> dict[str, Any]:
    return {"tenantId": f"t{i}", "name": f"Customer {i:04d}", "status": status, "error": error, "errorCode": None,
            "licences": 3, "users": 10, "warnings": [], "problems": problems or []}


def change(i: int, status: str = "applied", error: str | None = None) -> dict[str, Any]:
    return {"changeId": f"c{i}", "kind": "set-quantity", "tenantId": f"t{i}", "tenantName": f"Customer {i:04d}",
            "skuId": "s", "licence": "Microsoft 365 Business Premium", "additionId": "10", "oldQuantity": 5,
            "newQuantity": 6, "status": status, "error": error, "amount": None, "effectiveDate": None,
            "endDate": None, "holdKey": f"h{i}" if status == "held" else None, "dueDate": None}


def report(tenants: list[dict[str, Any]], changes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"runId": "20261125T020000Z-0a0b0c0d", "status": "partial", "dryRun": False, "trigger": "local",
            "requestedBy": "tests", "startedAt": "2026-11-25T02:00:00+00:00", "finishedAt": None, "error": None,
            "totals": {"linesUnchanged": 4}, "calls": {"graph": 1, "psa": 2}, "tenants": tenants, "changes": changes,
            "unlinked": [], "licences": [], "gdap": {"notConfigured": [], "configuredNotInGdap": [], "error": None}}


def large() -> dict[str, Any]:
    tenants = [tenant(i) for i in range(300)]
    tenants[7] = tenant(7, "auth-failed", error="AADSTS700016: the app is not consented")
    tenants[9] = tenant(9, problems=[{"message": "a user no filter bills"}])
    changes = [change(i) for i in range(200)] + [change(200, "held"), change(201, "failed", error="HTTP 500")]
    return report(tenants, changes)


def test_a_large_run_lists_only_what_needs_attention() -> None:
    text = render_text(large())
    lines = text.splitlines()
    assert "298 synced without warnings or problems (--all lists them); the 2 that need attention:" in text
    assert "Customer 0007" in text and "Customer 0009" in text
    assert "Customer 0008" not in text, "a tenant without problems is counted, not listed"
    assert "by kind: 202 quantity (--all lists every change); the 1 that failed:" in text
    assert "HTTP 500" in text and "Customer 0201" in text
    assert "  - h200  Customer 0200" in text, "held changes are listed for approval"
    assert len(lines) < 40


def test_all_lists_every_tenant_and_change() -> None:
    text = render_text(large(), full=True)
    assert "Customer 0008" in text and "Customer 0150" in text
    assert len(text.splitlines()) > 500


def test_a_small_run_is_listed_whole() -> None:
    small = report([tenant(i) for i in range(SUMMARY_TENANTS)], [change(1)])
    text = render_text(small)
    assert "Customer 0024" in text and "--all" not in text


def test_a_long_billed_list_is_counted() -> None:
    lines = ["  (units on 2026-11-25)", "  A  SPB  5  10.00  (SeatSync)", "  B  SPB  3  10.00"]
    assert billed_summary(lines) == ["  2 lines billed, 1 of them written by SeatSync (--all lists them)"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_only_on_a_terminal_and_not_when_quiet() -> None:
    assert not wanted(False, io.StringIO())
    assert not wanted(True, Terminal())
    assert wanted(False, Terminal())


def test_the_display_follows_the_runs_phases() -> None:
    stream = Terminal()
    with ProgressDisplay(True, stream) as display:
        display.update(RunProgress(run_id="r", phase="collecting", tenants_total=300, tenants_collected=120,
                                   tenants_failed=2))
        task = display._progress.tasks[0]  # type: ignore[union-attr]
        assert (task.description, task.completed, task.total, task.fields["failed"]) == (
            "Reading tenants", 120, 300, "2 failed")
        display.update(RunProgress(run_id="r", phase="pushing", tenants_total=300, tenants_collected=300,
                                   tenants_to_push=298, tenants_pushed=40))
        task = display._progress.tasks[0]  # type: ignore[union-attr]
        assert (task.description, task.completed, task.total) == ("Updating the PSA", 40, 298)
    assert display.updates == 2
    quiet = io.StringIO()
    with ProgressDisplay(False, quiet) as off:
        off.update(RunProgress(run_id="r", phase="collecting"))
    assert quiet.getvalue() == "" and off.updates == 1


def test_billing_problems_are_listed_with_their_facts_and_what_to_do() -> None:
    from shared.domain.problems import Problem, ProblemKind, problem_to_json

    lapsed = Problem(ProblemKind.SUBSCRIPTION_NOT_ACTIVE, "t1", "suspended since 2026-11-22: 20 active, 5 suspended",
                     label="Microsoft 365 Business Premium", facts=(("Since", "2026-11-22"),), blocks=False)
    cancelled = Problem(ProblemKind.LINE_CANCELLED, "t2", "line 500 was cancelled on 2026-10-31",
                        label="Exchange Online (Plan 1)")
    data = {**report([tenant(1), tenant(2)], []), "status": "attention",
            "problems": [{**problem_to_json(lapsed), "tenantName": "Customer 0001"},
                         {**problem_to_json(cancelled), "tenantName": "Customer 0002"}]}
    text = render_text(data)
    assert "(live): ATTENTION" in text
    assert "Billing problems: 2 (line cancelled: 1, subscription not active: 1)" in text
    assert ("  - [subscription-not-active] Customer 0001: Microsoft 365 Business Premium: suspended since "
            "2026-11-22: 20 active, 5 suspended.") in text
    assert "      Since: 2026-11-22" in text
    assert ("  - [line-cancelled] Customer 0002: Exchange Online (Plan 1): line 500 was cancelled on 2026-10-31. "
            "Nothing written for it.") in text
    assert f"      What to do: {cancelled.action}" in text


def test_a_large_run_lists_its_first_problems_and_counts_the_rest() -> None:
    from shared.domain.problems import Problem, ProblemKind, problem_to_json

    many = [{**problem_to_json(Problem(ProblemKind.DISABLED_USERS_LICENSED, f"t{i}", f"problem {i}")),
             "tenantName": f"Customer {i:04d}"} for i in range(120)]
    data = {**large(), "problems": many}
    text = render_text(data)
    assert "Billing problems: 120 (disabled users licensed: 120)" in text
    assert "problem 49" in text and "problem 50" not in text
    assert "  ... and 70 more (--all lists every problem)" in text
    assert "problem 119" in render_text(data, full=True)


def test_configured_tenants_gdap_no_longer_lists_are_named() -> None:
    data = report([tenant(1)], [])
    data["gdap"]["configuredNotInGdap"] = [{"tenantId": "t1", "name": "Customer 0001"}]
    text = render_text(data)
    assert "Configured tenants GDAP no longer lists (renew GDAP or remove them): 1\n  - Customer 0001 (t1)" in text
    data["gdap"]["error"] = "HTTP 503"
    assert "no longer lists" not in render_text(data), "an unread list says nothing"
