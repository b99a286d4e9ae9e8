"""The billing admin's daily tasks in a real browser (headless Chromium through Playwright) against
``seatsync serve``: each page's main task, sign-in and roles, keyboard and phone width.
Saves a screenshot of every page: into a temporary directory, or with ``make screenshots`` into
docs/screenshots for the README (only the pages that look different: tests/browser/screenshots.py)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Server, new_page
from tests.browser.screenshots import save_screenshot

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("browser")]

CONTOSO = "2e1b6c3d-0002-4b2c-9d3e-000000000002"
WOODGROVE = "5b4e9f60-0005-4e5f-8061-000000000005"
PAGES = {"overview": "", "tenants": "/tenants", "tenant": f"/tenants/{CONTOSO}", "mapping": "/mapping",
         "approvals": "/approvals", "runs": "/runs", "run": "/runs/latest", "audit": f"/audit?customer={WOODGROVE}",
         "onboarding": "/onboarding", "notifications": "/notifications", "configuration": "/configuration"}


@pytest.fixture(scope="module")
def admin(browser: Any, server: Server) -> Any:
    page = new_page(browser, server)
    yield page
    page.context.close()


def go(page: Any, server: Server, path: str) -> Any:
    response = page.goto(f"{server.url}/api/dashboard{path}")
    page.wait_for_load_state("networkidle")
    return response


def wait_for_run(page: Any) -> None:
    deadline = time.monotonic() + 120
    while "Running" in page.locator("#run-body").inner_text() and time.monotonic() < deadline:
        page.wait_for_timeout(500)


def test_every_page_loads_labelled_and_is_saved_as_a_screenshot(admin: Any, server: Server,
                                                                 screenshots: Path) -> None:
    for name, path in PAGES.items():
        response = go(admin, server, path)
        assert response.status == 200, f"{name}: {response.status}"
        assert "Development identity" in admin.locator(".dev-banner").inner_text()
        unlabelled = admin.evaluate("""() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                         && !(e.tagName === 'BUTTON' && e.textContent.trim()))
            .map(e => e.outerHTML.slice(0, 80))""")
        assert unlabelled == [], f"{name}: controls without a label: {unlabelled}"
        if name == "mapping":
            admin.locator("details.mapping summary").first.click()
            admin.locator("details.mapping select[name=agreement] option[value='101']").first.wait_for(
                state="attached")
        if name == "tenant":
            admin.wait_for_selector("canvas[data-drawn=true]")
            admin.wait_for_selector("text=Contoso Pharma Microsoft 365")
        save_screenshot(admin, screenshots / f"{name}.png")
        assert (screenshots / f"{name}.png").stat().st_size > 0


def test_pages_are_readable_at_phone_width(browser: Any, server: Server) -> None:
    page = new_page(browser, server, width=390, height=844)
    try:
        for name, path in PAGES.items():
            go(page, server, path)
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at phone width"
    finally:
        page.context.close()


def test_the_keyboard_reaches_the_navigation_and_the_main_content(admin: Any, server: Server) -> None:
    go(admin, server, "")
    admin.keyboard.press("Tab")
    assert admin.evaluate("() => document.activeElement.textContent") == "Skip to content"
    admin.keyboard.press("Enter")
    assert admin.evaluate("() => document.activeElement.id") == "main"
    focused = set()
    for _ in range(12):
        admin.keyboard.press("Tab")
        focused.add(admin.evaluate("() => document.activeElement.textContent.trim()"))
    assert {"Tenants", "Approvals", "Mapping"} <= focused or "Overview" in focused


def test_the_licence_history_chart(admin: Any, server: Server) -> None:
    go(admin, server, f"/tenants/{CONTOSO}")
    admin.wait_for_selector("canvas[data-drawn=true]")
    charts = admin.evaluate("""() => [...document.querySelectorAll('canvas[data-series]')].map(c => ({
        licence: c.closest('figure').querySelector('figcaption').textContent,
        series: c.chart.data.datasets.map(d => [d.label, d.data])}))""")
    standard = next(c for c in charts if c["licence"] == "Microsoft 365 Business Standard")
    assert dict(standard["series"]) == {"Assigned": [10], "Purchased": [12], "Billed": [10]}


def test_bulk_approval_reaches_the_audit_trail_and_its_csv(admin: Any, server: Server, tmp_path: Path) -> None:
    go(admin, server, "/approvals")
    rows = admin.locator("input[name=id]")
    assert rows.count() >= 1
    assert "Woodgrove Bank" in admin.locator("table").inner_text()
    admin.check("#select-all")
    count = rows.count()
    assert all(rows.nth(i).is_checked() for i in range(count))
    admin.fill("#comment", "confirmed with the customer")
    admin.click("button[value=approve]")
    admin.wait_for_load_state("networkidle")
    note = admin.locator(".note").inner_text()
    assert f"{count} change(s) approved" in note and "Not decided" not in note, note
    go(admin, server, "/approvals?status=approved")
    assert "approved by admin@msp.example" in admin.locator("table").inner_text()

    go(admin, server, "/audit")
    admin.select_option("#customer", WOODGROVE)
    admin.select_option("#event", "approved")
    admin.click("button:has-text('Show')")
    admin.wait_for_url("**event=approved**")  # the filtered page, not the link of the page before it
    admin.wait_for_load_state("networkidle")
    shown = admin.locator("table").inner_text()
    assert "approved" in shown and "admin@msp.example" in shown, shown
    with admin.expect_download() as download:
        admin.click("#download-csv")
    target = tmp_path / "audit.csv"
    download.value.save_as(target)
    rows_read = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [(r["event"], r["tenant_name"], r["actor"], r["reason"]) for r in rows_read] == [
        ("approved", "Woodgrove Bank", "admin@msp.example", "confirmed with the customer")]


def test_mapping_an_unlinked_licence_so_the_next_dry_run_bills_it(admin: Any, server: Server) -> None:
    go(admin, server, "/mapping")
    section = admin.locator("section", has_text="Planner and Project Plan 3")
    section.locator("summary", has_text="Contoso Pharma").click()
    form = section.locator("form[data-mapping]")
    form.locator("select[name=profile]").select_option("project-p3")
    agreement = form.locator("select[name=agreement]")
    agreement.locator("option[value='101']").wait_for(state="attached")
    agreement.select_option("101")
    form.locator("select[name=line] >> option").first.wait_for(state="attached")
    form.locator("button[type=submit]").click()
    admin.wait_for_url("**/api/dashboard/runs/*")
    wait_for_run(admin)
    body = admin.locator("#run-body").inner_text()
    assert "dry run" in body
    row = admin.locator("tr", has_text="Planner and Project Plan 3").first.inner_text()
    assert "create-line" in row and "dry-run" in row and "2" in row
    go(admin, server, "/mapping")
    assert admin.locator("section", has_text="Planner and Project Plan 3").count() == 0, "no longer unlinked"


def test_nobody_signed_in_is_refused(browser: Any, server: Server) -> None:
    page = new_page(browser, server, user=None)
    try:
        response = go(page, server, "/approvals")
        assert response.status == 401
        assert page.locator("a", has_text="Sign in").get_attribute("href").startswith("/.auth/login/aad")
        assert page.locator("table").count() == 0
    finally:
        page.context.close()


def test_a_viewer_is_refused_an_approval(browser: Any, server: Server) -> None:
    page = new_page(browser, server, user="vera@msp.example", role="Viewer")
    try:
        go(page, server, "/approvals?status=all")
        assert "vera@msp.example" in page.locator(".who").inner_text()
        assert page.locator("button[value=approve]").count() == 0
        token = page.locator("input[name=csrf]").first.get_attribute("value")
        answer = page.request.post(f"{server.url}/api/dashboard/approvals/decide",
                                   form={"csrf": token, "id": "0" * 24, "decision": "approve"}, max_redirects=0)
        assert answer.status == 403
        assert "needs the Approver role; you have Viewer" in answer.text()
    finally:
        page.context.close()
