"""The dashboard and the new endpoints through the local host (``seatsync serve``), on the sample
MSP: every page answers, roles and sign-in are enforced, writes need the CSRF token, and the
daily tasks change what they should (mapping, approvals, rollback, audit CSV)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_runner.azurite import Azurite
from shared.contracts import SYNC_INSTANCE_ID
from shared.services.config_api import PROFILES, ConfigApi
from shared.services.report import build_report, run_page_report
from tests.integration.msp import CONTOSO, WOODGROVE
from tests.integration.web_support import PROJECT_P3, Served, served_msp

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dashboard")]
PAGES = ("", "/tenants", f"/tenants/{CONTOSO}", f"/tenants/{CONTOSO}/lines", "/mapping", "/approvals", "/runs",
         "/runs/latest", f"/audit?customer={WOODGROVE}", "/onboarding", "/notifications", "/configuration")


@pytest.fixture(scope="module")
def served(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_msp(azurite, Path(tmp_path_factory.mktemp("dashboard"))) as running:
        yield running


@pytest.fixture(autouse=True)
def installed(served: Served) -> Iterator[None]:
    """Our services for the test, and no run of ours left going into another module's test."""
    served.reinstall()
    yield
    served.host.durable.wait(120)


def wait_for_run(served: Served) -> None:
    served.host.durable.wait(120)
    status = served.host.durable.status(SYNC_INSTANCE_ID)
    assert status is None or status.runtime_status.value in ("Completed", "Failed")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_answers_a_signed_in_viewer(served: Served, page: str) -> None:
    response = served.session("vera@msp.example", "Viewer").get(f"{served.url}/api/dashboard{page}")
    assert response.status_code == 200, response.text[:500]
    assert "Development identity" in response.text or page.endswith("/lines")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_printed_url_and_the_site_root_open_the_overview(served: Served) -> None:
    """``seatsync serve`` prints ``.../api/dashboard/`` and ``/`` redirects there: a trailing
    slash is the same route, as in the Functions host."""
    session = served.session("vera@msp.example", "Viewer")
    assert served.host.dashboard_url.endswith("/api/dashboard/")
    for url in (served.host.dashboard_url, f"{served.url}/", f"{served.url}/api/dashboard/runs/"):
        response = session.get(url)
        assert response.status_code == 200, (url, response.text[:300])
        assert "Development identity" in response.text
    assert session.get(f"{served.url}/api/dashboard/runs", params={"before": "20990101T000000Z-0"}).status_code == 404


def test_nobody_signed_in_is_refused_and_offered_the_sign_in(served: Served) -> None:
    response = served.session(None).get(f"{served.url}/api/dashboard/approvals", allow_redirects=False)
    assert response.status_code == 401
    assert "/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Fdashboard%2Fapprovals" in response.text


def test_a_function_key_does_not_open_the_dashboard(served: Served) -> None:
    session = served.session(None)
    response = session.get(f"{served.url}/api/dashboard", params={"code": "guess"},
                           headers={"x-functions-key": "guess", "x-ms-client-principal-name": "ceo@msp.example"})
    assert response.status_code == 401


def test_a_viewer_cannot_approve(served: Served) -> None:
    held = served.msp.services.decisions.approvals("pending")[0]   # Woodgrove's and guarded Wingtip's
    viewer = served.session("vera@msp.example", "Viewer")
    page = viewer.get(f"{served.url}/api/dashboard/approvals").text
    assert "Deciding needs the Approver role" in page
    token = served.token(viewer, "/api/dashboard/approvals")
    response = viewer.post(f"{served.url}/api/dashboard/approvals/decide",
                           data={"csrf": token, "id": held.hold_key, "decision": "approve"}, allow_redirects=False)
    assert response.status_code == 403
    assert "needs the Approver role; you have Viewer" in response.text
    assert served.msp.services.decisions.approval(held.hold_key).status == "pending"  # type: ignore[union-attr]


def test_writes_need_the_csrf_token_and_the_same_site(served: Served) -> None:
    admin = served.session()
    token = served.token(admin)
    no_token = admin.post(f"{served.url}/api/dashboard/runs", data={"dryRun": "1"}, allow_redirects=False)
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    other_site = admin.post(f"{served.url}/api/dashboard/runs", data={"dryRun": "1", "csrf": token},
                            headers={"Origin": "https://evil.example"}, allow_redirects=False)
    assert other_site.status_code == 403


def test_mapping_an_unlinked_licence_bills_it_in_the_next_dry_run(served: Served) -> None:
    admin = served.session()
    page = admin.get(f"{served.url}/api/dashboard/mapping").text
    assert "Planner and Project Plan 3" in page and "Contoso Pharma" in page
    options = admin.get(f"{served.url}/api/dashboard/mapping/agreements", params={"company": "connectwise|20"}).text
    assert 'value="101"' in options and "Contoso Pharma Microsoft 365" in options
    response = admin.post(f"{served.url}/api/dashboard/mapping/link", allow_redirects=False, data={
        "csrf": served.token(admin, "/api/dashboard/mapping"), "tenantId": CONTOSO, "skuId": PROJECT_P3,
        "company": "connectwise|20", "profile": "project-p3", "agreement": "101", "line": "", "dryRun": "1"})
    assert response.status_code == 303, response.text[:500]
    run_id = response.headers["Location"].rsplit("/", 1)[-1]
    wait_for_run(served)
    report = served.msp.services.runs
    changes = [c for c, _ in report.changes(run_id) if c.sku_id == PROJECT_P3]
    assert [(c.kind.value, c.new_quantity, c.status.value) for c in changes] == [("create-line", 2, "dry-run")]
    config, version = served.msp.services.config_repository.current()
    assert version is not None and version.saved_by == "admin@msp.example"
    mapped = [lic for c in config.tenant(CONTOSO).companies for lic in c.licences]  # type: ignore[union-attr]
    assert any(lic.source.startswith(f"sku:{PROJECT_P3}") for lic in mapped)
    run_page = admin.get(f"{served.url}/api/dashboard/runs/{run_id}").text
    assert "Planner and Project Plan 3" in run_page and "dry run" in run_page


def test_bulk_approval_and_the_audit_csv(served: Served) -> None:
    approver = served.session("april@msp.example", "Approver")
    pending = served.msp.services.decisions.approvals("pending")
    assert pending, "the sample holds Woodgrove's decrease"
    response = approver.post(f"{served.url}/api/dashboard/approvals/decide", allow_redirects=False, data={
        "csrf": served.token(approver, "/api/dashboard/approvals"), "id": [p.hold_key for p in pending],
        "decision": "approve", "comment": "checked with the customer"})
    assert response.status_code == 303
    assert all(served.msp.services.decisions.approval(p.hold_key).status == "approved"  # type: ignore[union-attr]
               for p in pending)
    text = approver.get(f"{served.url}/api/dashboard/audit.csv",
                        params={"customer": WOODGROVE, "event": "approved"}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["event"], r["actor"], r["reason"]) for r in rows] == [
        ("approved", "april@msp.example", "checked with the customer")]


def test_configuration_diff_and_rollback(served: Served) -> None:
    admin = served.session()
    repository = served.msp.services.config_repository
    before = repository.current()[1]
    assert before is not None
    ConfigApi(repository, served.msp.services.snapshots).put_entry(
        PROFILES, "rollback-me", {"psa": "connectwise", "productId": "4"}, "tests")
    page = admin.get(f"{served.url}/api/dashboard/configuration", params={"from": before.version_id}).text
    assert "Differences" in page and "+- name: rollback-me" in page.replace("&#43;", "+")
    changed = repository.current()[1]
    assert changed is not None
    response = admin.post(f"{served.url}/api/dashboard/configuration", allow_redirects=False, data={
        "csrf": served.token(admin), "version": before.version_id, "current": changed.version_id})
    assert response.status_code == 303
    config, version = repository.current()
    assert version is not None and version.number == changed.number + 1 and version.saved_by == "admin@msp.example"
    assert config == repository.version(before.version_id)
    stale = admin.post(f"{served.url}/api/dashboard/configuration", allow_redirects=False, data={
        "csrf": served.token(admin), "version": before.version_id, "current": changed.version_id})
    assert stale.status_code == 409, "the configuration moved on since the page was read"


def test_the_configuration_page_summarises_and_the_document_is_a_download(served: Served) -> None:
    viewer = served.session("vic@msp.example", "Viewer")
    config, version = served.msp.services.config_repository.current()
    assert version is not None
    page = viewer.get(f"{served.url}/api/dashboard/configuration").text
    assert f"<dt>Tenants</dt><dd>{len(config.tenants)} (" in page
    assert "psaConnections:" not in page and "tenantId:" not in page, "the document is not rendered into the page"
    assert 'href="/api/dashboard/configuration.yaml" download' in page
    download = viewer.get(f"{served.url}/api/dashboard/configuration.yaml")
    assert download.status_code == 200 and download.headers["Content-Type"].startswith("application/yaml")
    assert download.headers["Content-Disposition"] == f'attachment; filename="seatsync-config-v{version.number}.yaml"'
    assert download.text == ConfigApi(served.msp.services.config_repository,
                                      served.msp.services.snapshots).export_yaml()[0]
    assert served.session(None).get(f"{served.url}/api/dashboard/configuration.yaml").status_code == 401


def test_the_run_page_reads_only_what_it_shows_and_shows_what_the_whole_report_says(served: Served) -> None:
    services = served.msp.services
    run_id = services.runs.latest_run_id()
    assert run_id is not None
    whole = build_report(services.runs, run_id, services.config())
    shown = run_page_report(services.runs, run_id, services.config())
    assert "licences" not in shown and "gdap" not in shown and "reconciliation" not in shown
    assert shown["changes"] and shown["tenants"]
    for key, value in shown.items():
        if key == "tenants":  # the page shows no partner account or guard: the run's start record is not read
            assert value == [{**t, "partner": p["partner"], "guard": None} for t, p in zip(whole[key], value,
                                                                                            strict=True)]
        elif key != "tookOver":
            assert value == whole[key], key
    page = served.session().get(f"{served.url}/api/dashboard/runs/{run_id}").text
    assert f"Changes ({len(whole['changes'])})" in page and f"Tenants ({len(whole['tenants'])})" in page


def test_sync_now_shows_the_run(served: Served) -> None:
    approver = served.session("april@msp.example", "Approver")
    response = approver.post(f"{served.url}/api/dashboard/runs", allow_redirects=False, data={
        "csrf": served.token(approver), "dryRun": "1", "tenants": WOODGROVE})
    assert response.status_code == 303
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        page = approver.get(served.url + response.headers["Location"]).text
        if "Running" not in page:
            break
        time.sleep(0.5)
    assert "Woodgrove Bank" in page
    wait_for_run(served)


def test_the_api_lists_runs_history_and_the_psa_catalogue(served: Served) -> None:
    api = served.session(None)
    key = {"x-functions-key": "local"}
    runs = api.get(f"{served.url}/api/runs", headers=key).json()["runs"]
    assert runs and runs[0]["status"] in ("succeeded", "attention", "partial")
    history = api.get(f"{served.url}/api/tenants/{CONTOSO}/history", headers=key).json()
    series = {s["licence"]: s for s in history["licences"]}
    point = series["Microsoft 365 Business Standard"]["points"][0]
    assert (point["purchased"], point["assigned"], point["billed"]) == (12, 10, 10)
    agreements = api.get(f"{served.url}/api/psa/connectwise/companies/20/agreements", headers=key).json()
    assert [a["agreementId"] for a in agreements["agreements"]] == ["101"]
    lines = api.get(f"{served.url}/api/psa/connectwise/agreements/101/lines", headers=key).json()["lines"]
    assert (lines[0]["lineId"], lines[0]["productIdentifier"]) == ("510", "M365-BS")
    products = api.get(f"{served.url}/api/psa/connectwise/products", headers=key).json()["products"]
    assert "PBI-PRO" in {p["identifier"] for p in products}
    assert api.get(f"{served.url}/api/psa/nope/products", headers=key).status_code == 404
    assert api.get(f"{served.url}/api/psa/connectwise/companies/a%20b/agreements", headers=key).status_code == 400
    for path, field in (("companies/abc/agreements", "companyId"), ("companies/1e400/agreements", "companyId"),
                        ("agreements/-1/lines", "agreementId"), (f"agreements/{'9' * 30}/lines", "agreementId")):
        refused = api.get(f"{served.url}/api/psa/connectwise/{path}", headers=key)
        assert (refused.status_code, refused.json()["field"]) == (400, field), refused.text
    assert refused.json()["error"] == "a ConnectWise agreement id has at most 18 digits, got 30"
    assert api.get(f"{served.url}/api/runs", params={"limit": "x"}, headers=key).status_code == 400


def test_static_files_and_nothing_else(served: Served) -> None:
    session = served.session(None)
    assert session.get(f"{served.url}/api/dashboard/static/htmx.min.js").status_code == 200
    assert session.get(f"{served.url}/api/dashboard/static/..%5Cpages.py").status_code in (400, 404)
    assert session.get(f"{served.url}/api/dashboard/static/.hidden").status_code == 404


def test_onboarding_suggestions_are_accepted_in_bulk_by_an_admin(served: Served) -> None:
    import re

    admin = served.session()
    page = admin.get(f"{served.url}/api/dashboard/onboarding").text
    offered = re.findall(r'name="tenant" value="([0-9a-f-]{36})"', page)
    assert offered, "the sample has a GDAP customer not yet added"
    approver = served.session("april@msp.example", "Approver")
    refused = approver.post(f"{served.url}/api/dashboard/onboarding", allow_redirects=False, data={
        "csrf": served.token(approver, "/api/dashboard/onboarding"), "tenant": offered})
    assert refused.status_code == 403
    response = admin.post(f"{served.url}/api/dashboard/onboarding", allow_redirects=False, data={
        "csrf": served.token(admin, "/api/dashboard/onboarding"), "tenant": offered})
    assert response.status_code == 303, response.text[:300]
    config, version = served.msp.services.config_repository.current()
    assert all(config.tenant(t) is not None for t in offered)
    assert version is not None and version.saved_by == "admin@msp.example"


def test_sync_now_is_refused_while_a_command_line_run_holds_the_lease(served: Served) -> None:
    from datetime import timedelta

    from shared.contracts import SyncRequest
    from shared.services.lease import ProcessRef, acquire

    services = served.msp.services
    run_id = "20261125T015900Z-0000000d"
    services.runs.start(SyncRequest(run_id=run_id, trigger="local", requested_by="carol",
                                    requested_at=services.clock()))
    assert acquire(services.runs, services.decisions, run_id, timedelta(minutes=5), ProcessRef.current()).refused \
        is None
    try:
        approver = served.session("april@msp.example", "Approver")
        response = approver.post(f"{served.url}/api/dashboard/runs", allow_redirects=False,
                                 data={"csrf": served.token(approver), "dryRun": "1"})
        assert response.status_code == 303
        assert f"Run%20{run_id}%20is%20running" in response.headers["Location"]
        assert served.host.durable.status(SYNC_INSTANCE_ID) is None or \
            served.host.durable.status(SYNC_INSTANCE_ID).runtime_status.value != "Running"  # type: ignore[union-attr]
    finally:
        services.runs.release_lease(run_id)


def test_a_finished_run_is_digested_once_for_the_pages(served: Served) -> None:
    """The sync's finish stores its digest (tenants' status, money, line prices) and, on the run's
    row, its money: the overview, tenants grid and approvals read these, not every tenant's rows."""
    from shared.services.run_digest import RunDigest, compute_digest, run_digest

    services = served.msp.services
    runs, config = services.runs, services.config()
    first = next(r for r in runs.run_ids() if (request := runs.request(r)) and request.requested_by == "tests")
    stored = runs.digest(first)
    assert stored is not None, "written when the run finished"
    digest = RunDigest.from_json(stored)
    assert digest == compute_digest(runs, first, config)
    contoso = digest.tenant(CONTOSO)
    assert contoso is not None and contoso.status == "ok" and contoso.unlinked >= 1
    assert digest.prices and all(price > 0 for price in digest.prices.values())
    [(_, request, money)] = [r for r in runs.month_runs(first[:6]) if r[0] == first]
    assert not request.dry_run and money == digest.money.to_json()
    wait_for_run(served)
    latest = runs.latest_run_id()
    assert latest is not None
    page = served.session().get(f"{served.url}/api/dashboard").text
    attention = run_digest(runs, latest, config).attention
    assert f"Tenants needing attention ({len(attention)})" in page


def test_unlinked_licences_from_the_latest_licences_are_those_of_the_snapshots(served: Served) -> None:
    """Every tenant's billable licences are kept with its latest snapshot, so the mapping page,
    ``GET /api/unlinked`` and ``seatsync unlinked`` read one partition, with the same answer as
    reading each tenant's snapshot."""
    from shared.domain.billing import unlinked_licences, unmapped

    services = served.msp.services
    config = services.config()
    kept = services.snapshots.latest_licences()
    compared = 0
    for tenant in config.tenants:
        snapshot = services.snapshots.latest(tenant.tenant_id)
        if snapshot is None:
            assert tenant.tenant_id not in kept
            continue
        assert kept[tenant.tenant_id].run_id == snapshot.run_id
        from_row = [(s.sku_id, s.purchased, s.consumed) for s in unmapped(config, tenant, kept[tenant.tenant_id].skus)]
        from_snapshot = [(s.sku_id, s.purchased, s.consumed) for s in unlinked_licences(config, tenant, snapshot)]
        assert from_row == from_snapshot, tenant.name
        compared += 1
    assert compared >= 5
