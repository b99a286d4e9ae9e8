"""A large run's report read back from storage a page at a time: the text is the same as the one
made from the whole report, the run's digest the same as what the whole report says, and what the
text keeps while it reads is what it lists (the tenants and changes that need a person), never
every tenant."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from emulators.generator import generate_msp
from local_runner.azurite import Azurite
from local_runner.local_sync import sync_locally
from shared.adapters.tables import TableStore
from shared.services.reconcile import run_reconciliation, run_reconciliation_summary
from shared.services.reconcile import to_json as reconciliation_json
from shared.services.report import SUMMARY_TENANTS, ReportTally, build_report, render_text, report_text
from shared.services.run_digest import compute_digest, money_of
from tests.integration.msp import Msp, running_msp

pytestmark = pytest.mark.integration

TENANTS = SUMMARY_TENANTS + 7  # a run the text summarises
PAGE = 4  # entities a page: every table is read in several


@pytest.fixture(scope="module")
def run(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Msp, str, dict[str, Any]]]:
    scenario, config = generate_msp(TENANTS, seed=23)
    gone = scenario["graph"]["tenants"].pop(3)  # still configured, no longer in the partner's tenants: it fails
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = TableStore(service, "p" + secrets.token_hex(5))
    tmp: Path = tmp_path_factory.mktemp("pages")
    try:
        with running_msp(azurite, store, tmp, scenario=scenario, config_text=config) as msp:
            run_id = sync_locally(msp.services, requested_by="tests", max_workers=4, retry_delay_scale=0.0)
            report = build_report(msp.services.runs, run_id, msp.config, msp.services.margins, msp.services.sources)
            assert any(t["tenantId"] == gone["tenantId"] and t["status"] != "ok" for t in report["tenants"])
            yield msp, run_id, report
    finally:
        store.drop_all()


def test_the_text_read_in_pages_is_the_text_of_the_whole_report(run: tuple[Msp, str, dict[str, Any]]) -> None:
    msp, run_id, report = run
    services = msp.services
    assert len(report["tenants"]) == TENANTS and report["changes"]
    for full in (None, True, False):
        head, text = report_text(services.runs, run_id, msp.config, services.margins, services.sources, full,
                                 page_size=PAGE, started=services.runs.started(run_id) if full else None)
        assert text == render_text(report, full)
        assert {k: head[k] for k in ("runId", "status", "totals", "calls", "error")} == \
            {k: report[k] for k in ("runId", "status", "totals", "calls", "error")}
        assert head["firstError"] == next(t["error"] for t in report["tenants"] if t["error"])
        if full is False:  # the reconciliation's totals, made without the JSON of every licence
            assert f"  {len(report['reconciliation']['licences'])} licences; a month: revenue" in text
    assert "Tenants: " + str(TENANTS) in text and "that need attention" in text


def test_a_large_run_s_reconciliation_summary_is_made_a_tenant_at_a_time(run: tuple[Msp, str, dict[str, Any]]
                                                                       ) -> None:
    """The text report's summary of the reconciliation: the totals and counts of the whole one."""
    msp, run_id, _report = run
    services = msp.services
    assert services.margins is not None
    whole = reconciliation_json(run_reconciliation(services.runs, services.margins, run_id, msp.config))
    summary = run_reconciliation_summary(services.runs, services.margins, run_id, msp.config)
    assert whole["licences"] and summary["totals"] == whole["totals"]
    assert (summary["licenceCount"], summary["renewalCount"]) == (len(whole["licences"]), len(whole["renewals"]))
    assert {k: summary[k] for k in ("runId", "dryRun", "day", "currency")} == \
        {k: whole[k] for k in ("runId", "dryRun", "day", "currency")}


def test_a_summarised_report_keeps_only_what_it_lists(run: tuple[Msp, str, dict[str, Any]]) -> None:
    _msp, _run_id, report = run
    attention = [t for t in report["tenants"] if t["status"] != "ok" or t["error"] or t["warnings"]
                 or t["problems"] or t["guard"] or t["signInsUnavailable"]]
    listed = [c for c in report["changes"] if c["status"] in ("failed", "held")]
    assert 0 < len(attention) < TENANTS and len(listed) < len(report["changes"])
    tally = ReportTally.of(report["tenants"], report["changes"], full=False)
    assert tally.tenants == attention and tally.changes == listed
    assert tally.tenants_total == TENANTS and tally.changes_total == len(report["changes"])
    automatic = ReportTally.of(report["tenants"], report["changes"])
    assert automatic.summary
    assert len(automatic.tenants) + len(automatic.changes) <= len(attention) + len(listed) + 3 * SUMMARY_TENANTS, \
        "what it kept before it knew the run is large is dropped once it knows"
    assert ReportTally.of(report["tenants"], report["changes"], full=True).tenants == report["tenants"]


def test_the_runs_tables_read_in_pages_hold_every_row(run: tuple[Msp, str, dict[str, Any]]) -> None:
    msp, run_id, _report = run
    runs = msp.services.runs
    assert list(runs.iter_tenant_rows(run_id, PAGE)) == runs.tenant_rows(run_id)
    assert list(runs.iter_changes(run_id, PAGE)) == runs.changes(run_id)
    rows, unlinked = runs.reconciliation(run_id)
    paged = list(runs.iter_reconciliation(run_id, 1))  # a tenant's document parts on pages of their own
    assert [r for _t, tenant_rows, _u in paged for r in tenant_rows] == rows and rows
    assert [u for _t, _r, tenant_unlinked in paged for u in tenant_unlinked] == unlinked
    assert {t for t, _r, _u in paged} == {r.tenant_id for r in rows}


def test_a_run_s_larger_rows_are_read_in_pages_smaller_than_table_storage_s(
        run: tuple[Msp, str, dict[str, Any]], azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that names no page size (notifying, digesting, reporting a run) gets
    ``LARGE_ROWS_PAGE`` rows a request, not a page of 1,000 tenants' outcomes at once."""
    from shared.adapters import margin_store, run_store
    from shared.adapters.margin_store import MarginRepository
    from shared.adapters.run_store import RunRepository
    from shared.adapters.tables import RequestCounter

    msp, run_id, report = run
    counter = RequestCounter()
    service = TableServiceClient.from_connection_string(azurite.connection_string, raw_request_hook=counter)
    counted = TableStore(service, msp.services.store.prefix, counter)
    runs, margins = RunRepository(counted), MarginRepository(counted)
    for module in (run_store, margin_store):
        monkeypatch.setattr(module, "LARGE_ROWS_PAGE", PAGE)
    expected = {"tenants": runs.tenant_rows(run_id), "changes": runs.changes(run_id)}
    before = counter.by_kind()
    assert list(runs.iter_tenant_rows(run_id)) == expected["tenants"]
    assert list(runs.iter_changes(run_id)) == expected["changes"]
    facts = [f for _tenant, tenant_facts in margins.iter_facts(run_id) for f in tenant_facts]
    lines = list(runs.iter_reconciliation(run_id))
    read = counter.by_kind() - before
    prefix = msp.services.store.prefix

    def pages(rows: int) -> range:  # after a full last page, a service may still hand a continuation
        return range(-(-rows // PAGE), -(-rows // PAGE) + 2)

    assert read[f"GET {prefix}runtenants"] in pages(len(report["tenants"]))
    assert read[f"GET {prefix}changes"] in pages(len(report["changes"]))
    assert read[f"GET {prefix}margins"] >= len({f.tenant_id for f in facts}) // PAGE and facts
    assert read[f"GET {prefix}runlines"] >= len(lines) // PAGE and lines


def test_the_digest_read_in_pages_says_what_the_whole_report_says(run: tuple[Msp, str, dict[str, Any]]) -> None:
    msp, run_id, report = run
    runs = msp.services.runs
    digest = compute_digest(runs, run_id, msp.config)
    assert [(t.tenant_id, t.name, t.status, t.licences) for t in digest.tenants] == \
        [(t["tenantId"], t["name"], t["status"], t["licences"]) for t in report["tenants"]]
    unlinked = {t["tenantId"]: sum(1 for u in report["unlinked"] if u["tenantId"] == t["tenantId"])
                for t in report["tenants"]}
    assert {t.tenant_id: t.unlinked for t in digest.tenants} == unlinked
    assert digest.unlinked == len(report["unlinked"])
    rows, _ = runs.reconciliation(run_id)
    assert digest.money == money_of([change for change, _ in runs.changes(run_id)], rows)
    assert [t.tenant_id for t in digest.attention] == \
        [t["tenantId"] for t in report["tenants"] if t["error"] or t["problems"] or t["status"] != "ok"]
