"""The dashboard's pages, one route each, all under ``/api/dashboard``. Each parses the request,
calls the service layer (the same functions the API and the CLI use) and renders a template.
Reads need the Viewer role; deciding held changes and starting syncs, Approver; changing the
configuration, onboarding and test notifications, Admin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import azure.functions as func

from admin_api.auth import Role
from dashboard.web import BASE, Page, form, guard, guard_async, paging, static_file
from durable_blueprint import is_active
from shared.bootstrap import get_services
from shared.contracts import SYNC_INSTANCE_ID, RunProgress, SyncRequest, new_run_id
from shared.errors import ConfigError, HttpServiceError, RequestValidationError, SeatSyncError
from shared.errors import NotFoundError as UnknownError
from shared.functions import SYNC_ORCHESTRATOR
from shared.services.config_api import TENANTS, ConfigApi, NotFoundError, version_json
from shared.services.decisions import (
    approval_json,
    audit_csv,
    audit_json,
    audit_query,
    audit_trail,
    decide,
    list_approvals,
    unlinked,
)
from shared.services.history import live_progress, run_page, tenant_history
from shared.services.lease import duplicate_instance, live_lease
from shared.services.onboarding import Decision, apply_rows, level_counts, onboarding_suggestions
from shared.services.overview import overview
from shared.services.psa_catalogue import agreement_lines, company_agreements
from shared.services.report import ReportError, run_page_report
from shared.services.report import starting_report as report_of_starting_run
from shared.services.run_digest import run_digest
from shared.services.sync_requests import validate_tenants

if TYPE_CHECKING:
    import azure.durable_functions as df

ANONYMOUS = func.AuthLevel.ANONYMOUS
APPROVALS_PAGE = 200
"""Held changes on one page of the approvals list (the bulk decision takes up to 500 at once)."""
AUDIT_EVENTS = ("applied", "failed", "held", "deferred", "approved", "rejected", "superseded")


def problem(exc: Exception) -> str:
    if isinstance(exc, RequestValidationError):
        return f"{exc.field}: {exc.message}"
    if isinstance(exc, ConfigError):
        return "; ".join(exc.problems) or str(exc)
    return str(exc)


def field(page: Page, name: str) -> str:
    values = form(page.req).get(name)
    return values[0].strip() if values else ""


async def start_sync(client: Any, by: str, tenants: list[str] | None, dry_run: bool) -> tuple[str | None, str]:
    """Start a run like ``POST /api/sync``; (run id, message), run id None when one is running
    (the orchestration, or a run anywhere holding the run lease)."""
    services = get_services()
    status = await client.get_status(SYNC_INSTANCE_ID)
    running = is_active(status)
    lease = live_lease(services.runs, services.decisions, running, "the dashboard")
    if lease is not None:
        return None, f"Run {lease.run_id} is running; try again when it has finished."
    if running:
        return None, "A sync is already running; try again when it has finished."
    now = datetime.now(UTC)
    request = SyncRequest(run_id=new_run_id(now), trigger="manual", requested_by=by, requested_at=now,
                          dry_run=dry_run, tenants=tenants)
    try:
        await client.start_new(SYNC_ORCHESTRATOR, SYNC_INSTANCE_ID, request.to_json())
    except Exception as exc:
        if not duplicate_instance(exc):
            raise
        return None, "A sync is already running (it started at the same moment); try again when it has finished."
    return request.run_id, f"{'Dry run' if dry_run else 'Sync'} {request.run_id} started."


# ------------------------------------------------------------------------ overview


def overview_page(req: func.HttpRequest) -> func.HttpResponse:
    def show(page: Page) -> func.HttpResponse:
        services = get_services()
        data = overview(services.runs, services.decisions, services.config(), services.clock())
        return page.render("overview.html", title="Overview", active="", **data)

    return guard(req, Role.VIEWER, show)


# ------------------------------------------------------------------------ tenants


def tenant_rows(query: str) -> list[dict[str, Any]]:
    """The tenants grid: each configured tenant with its status in the latest run (from the run's
    digest: one read), its pending approvals and unlinked licences."""
    services = get_services()
    config = services.config()
    latest = services.runs.latest_run_id()
    digest = run_digest(services.runs, latest, config) if latest else None
    status = {t.tenant_id: t for t in digest.tenants} if digest else {}
    pending: dict[str, int] = {}
    for record in services.decisions.approvals("pending"):
        pending[record.tenant_id] = pending.get(record.tenant_id, 0) + 1
    wanted = query.strip().casefold()
    rows = []
    for tenant in config.tenants:
        if wanted and wanted not in tenant.name.casefold() and wanted not in tenant.tenant_id:
            continue
        outcome = status.get(tenant.tenant_id)
        rows.append({"tenantId": tenant.tenant_id, "name": tenant.name, "enabled": tenant.enabled,
                     "status": outcome.status if outcome else ("disabled" if not tenant.enabled else "not synced"),
                     "problems": outcome.problems if outcome else 0,
                     "licences": outcome.licences if outcome else None,
                     "companies": ", ".join(c.name or f"{c.psa} {c.company_id}" for c in tenant.companies),
                     "pending": pending.get(tenant.tenant_id, 0), "unlinked": outcome.unlinked if outcome else 0})
    return sorted(rows, key=lambda r: r["name"].casefold())


def tenants_page(req: func.HttpRequest) -> func.HttpResponse:
    def show(page: Page) -> func.HttpResponse:
        query = (req.params.get("q") or "")[:100]
        rows = tenant_rows(query)
        shown = paging(req, len(rows))
        template = "tenant_rows.html" if page.partial else "tenants.html"
        return page.render(template, title="Tenants", active="tenants", rows=shown.rows(rows), paging=shown, q=query)

    return guard(req, Role.VIEWER, show)


def tenant_page(req: func.HttpRequest) -> func.HttpResponse:
    def show(page: Page) -> func.HttpResponse:
        services = get_services()
        config = services.config()
        try:
            tenant_id = TENANTS.ident(req.route_params.get("tenantId", ""))
        except RequestValidationError as exc:
            return page.render("message.html", http_status=404, title="Tenant", active="tenants", message=problem(exc))
        tenant = config.tenant(tenant_id)
        if tenant is None:
            return page.render("message.html", http_status=404, title="Tenant", active="tenants",
                               message=f"Tenant {tenant_id} is not configured.")
        history = tenant_history(config, services.snapshots, services.runs, tenant_id).to_json()["licences"]
        pending = [approval_json(r, config) for r in services.decisions.approvals("pending", tenant_id)]
        return page.render("tenant.html", title=tenant.name, active="tenants", tenant=tenant, history=history,
                           pending=pending)

    return guard(req, Role.VIEWER, show)


def tenant_lines(req: func.HttpRequest) -> func.HttpResponse:
    """The tenant's PSA lines, read live (loaded after the page, so a slow PSA does not hold it)."""
    def show(page: Page) -> func.HttpResponse:
        services = get_services()
        config = services.config()
        groups: list[dict[str, Any]] = []
        error = None
        try:
            tenant = config.tenant(TENANTS.ident(req.route_params.get("tenantId", "")))
            if tenant is None:
                raise NotFoundError("tenant", req.route_params.get("tenantId", ""))
            for company in tenant.companies:
                agreements = company_agreements(config, services.psa_clients, company.psa, company.company_id)
                for agreement in agreements:
                    lines = agreement_lines(config, services.psa_clients, company.psa, agreement["agreementId"])
                    groups.append({"company": company.name or company.company_id, "psa": company.psa,
                                   "agreement": agreement, "lines": lines})
        except SeatSyncError as exc:
            error = problem(exc)
        return page.render("tenant_lines.html", groups=groups, error=error)

    return guard(req, Role.VIEWER, show)


# ------------------------------------------------------------------------ mapping


def mapping_page(req: func.HttpRequest) -> func.HttpResponse:
    def show(page: Page) -> func.HttpResponse:
        services = get_services()
        config = services.config()
        rows = sorted((r for r in unlinked(config, services.snapshots) if r["skuId"]),
                      key=lambda r: (str(r["licence"]).casefold(), str(r["tenantName"]).casefold()))
        counts: dict[str, int] = {}
        for row in rows:
            counts[str(row["licence"])] = counts.get(str(row["licence"]), 0) + 1
        shown = paging(req, len(rows))
        by_licence: dict[str, list[dict[str, Any]]] = {}
        for row in shown.rows(rows):
            by_licence.setdefault(str(row["licence"]), []).append(row)
        tenants = {t.tenant_id: t for t in config.tenants}
        return page.render("mapping.html", title="Mapping", active="mapping", groups=list(by_licence.items()),
                           counts=counts, paging=shown, tenants=tenants, profiles=config.billing_profiles,
                           message=req.params.get("message"))

    return guard(req, Role.VIEWER, show)


def mapping_agreements(req: func.HttpRequest) -> func.HttpResponse:
    """Options of the agreement list for the chosen company (``company`` is ``psa|companyId``)."""
    def show(page: Page) -> func.HttpResponse:
        services = get_services()
        psa, _, company_id = (req.params.get("company") or "").partition("|")
        try:
            agreements = company_agreements(services.config(), services.psa_clients, psa, company_id)
            error = None
        except SeatSyncError as exc:
            agreements, error = [], problem(exc)
        return page.render("options_agreements.html", agreements=agreements, error=error)

    return guard(req, Role.VIEWER, show)


def mapping_lines(req: func.HttpRequest) -> func.HttpResponse:
    def show(page: Page) -> func.HttpResponse:
        services = get_services()
        psa, _, _company = (req.params.get("company") or "").partition("|")
        agreement = req.params.get("agreement") or ""
        try:
            lines = agreement_lines(services.config(), services.psa_clients, psa, agreement) if agreement else []
            error = None
        except SeatSyncError as exc:
            lines, error = [], problem(exc)
        return page.render("options_lines.html", lines=lines, error=error)

    return guard(req, Role.VIEWER, show)


async def mapping_link(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Link an unlinked licence, then (``dryRun``) start a dry run of the tenant to show the change."""
    async def link(page: Page) -> func.HttpResponse:
        services = get_services()
        tenant_id, sku_id = field(page, "tenantId"), field(page, "skuId")
        company, profile = field(page, "company"), field(page, "profile")
        agreement, line = field(page, "agreement"), field(page, "line")
        try:
            config = services.config()
            tenant = config.tenant(TENANTS.ident(tenant_id))
            if tenant is None:
                raise NotFoundError("tenant", tenant_id)
            psa, _, company_id = company.partition("|")
            index = next((i for i, c in enumerate(tenant.companies) if (c.psa, c.company_id) == (psa, company_id)),
                         None)
            if index is None:
                raise RequestValidationError("company", "choose one of the tenant's companies")
            if not profile:
                raise RequestValidationError("profile", "choose a billing profile")
            if not agreement:
                raise RequestValidationError("agreement", "choose an agreement")
            api = ConfigApi(services.config_repository, services.snapshots)
            api.link_licence(tenant.tenant_id, index, sku_id, profile, agreement, line or None, page.caller.actor)
        except SeatSyncError as exc:
            return page.render("message.html", http_status=400, title="Mapping", active="mapping",
                               message=f"The licence was not linked: {problem(exc)}")
        if field(page, "dryRun") and page.caller.may(Role.APPROVER):
            run_id, _ = await start_sync(client, page.caller.actor, [tenant.tenant_id], dry_run=True)
            if run_id is not None:
                return page.redirect(f"{BASE}/runs/{run_id}")
        return page.redirect(f"{BASE}/mapping?message=" + "Linked.%20It%20is%20billed%20from%20the%20next%20run.")

    return await guard_async(req, Role.ADMIN, link)


# ------------------------------------------------------------------------ approvals


def money_of(record: dict[str, Any], unit_price: Any) -> str | None:
    if unit_price is None or record["from"] is None:
        return None
    return str((record["to"] - record["from"]) * unit_price)


def approvals_page(req: func.HttpRequest) -> func.HttpResponse:
    def show(page: Page) -> func.HttpResponse:
        services = get_services()
        config = services.config()
        status = req.params.get("status") or "pending"
        try:
            records = list_approvals(services.decisions, None if status == "all" else status)
        except SeatSyncError as exc:
            return page.render("message.html", http_status=400, title="Approvals", active="approvals",
                               message=problem(exc))
        rows = []
        latest = services.runs.latest_run_id()
        prices = run_digest(services.runs, latest, config).prices if latest else {}
        shown = paging(req, len(records), size=APPROVALS_PAGE)
        for record in shown.rows(records):
            row = approval_json(record, config)
            change = record.change
            price = change.unit_price if change.unit_price is not None else \
                prices.get((change.psa, change.agreement_id, change.line_id or ""))
            row["monthly"] = money_of(row, price)
            rows.append(row)
        return page.render("approvals.html", title="Approvals", active="approvals", rows=rows, paging=shown,
                           status=status,
                           currency=config.notifications.currency, message=req.params.get("message"))

    return guard(req, Role.VIEWER, show)


async def approvals_decide(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Approve or reject the selected held changes; ``applyNow`` then syncs their tenants."""
    async def decide_selected(page: Page) -> func.HttpResponse:
        services = get_services()
        values = form(page.req)
        ids = [i for i in values.get("id", []) if i][:500]
        decision = field(page, "decision")
        comment = field(page, "comment")[:500] or None
        if decision not in ("approve", "reject", "apply"):
            return page.render("message.html", http_status=400, title="Approvals", active="approvals",
                               message="Choose approve, reject or apply now.")
        if not ids:
            return page.redirect(f"{BASE}/approvals?message=Select%20at%20least%20one%20change.")
        config = services.config()
        done, failed, tenants = 0, [], []
        for hold_key in ids:
            try:
                record = decide(services.decisions, config, hold_key, decision != "reject", page.caller.actor,
                                comment, services.clock())
            except SeatSyncError as exc:  # DecisionError too: unknown or already decided
                failed.append(f"{hold_key}: {exc}")
                continue
            done += 1
            if record.tenant_id not in tenants:
                tenants.append(record.tenant_id)
        verb = {"approve": "approved", "reject": "rejected", "apply": "approved"}[decision]
        message = f"{done} change(s) {verb}." + (f" Not decided: {'; '.join(failed)}" if failed else "")
        if decision == "apply" and tenants:
            run_id, started = await start_sync(client, page.caller.actor, tenants, dry_run=False)
            if run_id is not None:
                return page.redirect(f"{BASE}/runs/{run_id}")
            message += " " + started
        elif decision == "approve" and done:
            message += " The next sync applies them (re-planned first)."
        return page.redirect(f"{BASE}/approvals?message=" + _quote(message))

    return await guard_async(req, Role.APPROVER, decide_selected)


def _quote(text: str) -> str:
    return quote(text[:600], safe="")


# ------------------------------------------------------------------------ runs


async def runs_page(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    async def show(page: Page) -> func.HttpResponse:
        services = get_services()
        custom = await custom_status(client)
        live = RunProgress.model_validate(custom) if isinstance(custom, dict) and custom.get("runId") else None
        try:
            listing = run_page(services.runs, 50, req.params.get("before") or None, live).to_json()
        except RequestValidationError as exc:
            return page.render("message.html", http_status=404 if isinstance(exc, UnknownError) else 400,
                               title="Runs", active="runs", message=problem(exc))
        return page.render("runs.html", title="Runs", active="runs", runs=listing["runs"],
                           next_before=listing["nextBefore"], running=custom is not None,
                           message=req.params.get("message"))

    async def start(page: Page) -> func.HttpResponse:
        services = get_services()
        tenants_text = field(page, "tenants")
        try:
            tenants = validate_tenants([t.strip() for t in tenants_text.split(",") if t.strip()],
                                       services.config()) if tenants_text else None
        except SeatSyncError as exc:
            return page.redirect(f"{BASE}/runs?message=" + _quote(problem(exc)))
        run_id, message = await start_sync(client, page.caller.actor, tenants, dry_run=bool(field(page, "dryRun")))
        if run_id is None:
            return page.redirect(f"{BASE}/runs?message=" + _quote(message))
        return page.redirect(f"{BASE}/runs/{run_id}")

    if req.method == "POST":
        return await guard_async(req, Role.APPROVER, start)
    return await guard_async(req, Role.VIEWER, show)


async def custom_status(client: Any) -> Any:
    """The running orchestration's custom status (its ``RunProgress``), None when none runs."""
    status = await client.get_status(SYNC_INSTANCE_ID)
    if not is_active(status):
        return None
    return getattr(status, "custom_status", None) or {}


async def starting_report(client: Any, run_id: str) -> dict[str, Any] | None:
    """The report of a run the orchestration was started for but has not recorded yet
    (``shared.services.report.starting_report``); None when the running orchestration is not
    this run's."""
    status = await client.get_status(SYNC_INSTANCE_ID, show_input=True)  # the host leaves the input out unless asked
    if not is_active(status):
        return None
    return report_of_starting_run(SyncRequest.started_with(getattr(status, "input_", None)), run_id)


async def run_report_page(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    async def show(page: Page) -> func.HttpResponse:
        services = get_services()
        run_id = req.route_params.get("runId", "")
        if run_id == "latest":
            run_id = services.runs.latest_run_id() or ""
        try:
            report = run_page_report(services.runs, run_id, services.config())
        except ReportError as exc:
            starting = await starting_report(client, run_id)
            if starting is None:
                return page.render("message.html", http_status=404, title="Run", active="runs", message=str(exc))
            report = starting
        progress = None
        if report["status"] == "running":
            live = live_progress(services.runs, run_id, await custom_status(client))
            progress = live.to_json() if live is not None else {}
        changes = paging(req, len(report["changes"]), param="changes")
        tenants = paging(req, len(report["tenants"]), param="tenants")
        template = "run_body.html" if page.partial else "run.html"
        return page.render(template, title=f"Run {run_id}", active="runs", report=report, progress=progress,
                           changes=changes, tenants=tenants)

    return await guard_async(req, Role.VIEWER, show)


# ------------------------------------------------------------------------ audit


def audit_entries(req: func.HttpRequest) -> tuple[Any, list[Any]]:
    services = get_services()
    query = audit_query(services.config(), req.params.get("customer"), req.params.get("from"), req.params.get("to"))
    event = req.params.get("event") or ""
    if event and event not in AUDIT_EVENTS:
        raise RequestValidationError("event", f"must be one of {', '.join(AUDIT_EVENTS)}")
    entries = audit_trail(services.decisions, query)
    return query, [e for e in entries if not event or e.event == event]


def audit_page(req: func.HttpRequest) -> func.HttpResponse:
    def show(page: Page) -> func.HttpResponse:
        tenants = sorted(get_services().config().tenants, key=lambda t: t.name.casefold())
        params = {k: (req.params.get(k) or "")[:100] for k in ("customer", "from", "to", "event")}
        entries, error, query = [], None, None
        if params["customer"]:
            try:
                query, found = audit_entries(req)
                entries = [audit_json(e) for e in found]
            except SeatSyncError as exc:
                error = problem(exc)
        return page.render("audit.html", title="Audit", active="audit", tenants=tenants, params=params,
                           entries=entries, error=error, events=AUDIT_EVENTS, query=query)

    return guard(req, Role.VIEWER, show)


def audit_download(req: func.HttpRequest) -> func.HttpResponse:
    def download(page: Page) -> func.HttpResponse:
        try:
            query, entries = audit_entries(req)
        except SeatSyncError as exc:
            return page.render("message.html", http_status=400, title="Audit", active="audit", message=problem(exc))
        name = f"seatsync-audit-{query.tenant_id}.csv"
        return page.finish(func.HttpResponse(audit_csv(entries), status_code=200, mimetype="text/csv", charset="utf-8",
                                             headers={"Content-Disposition": f'attachment; filename="{name}"'}))

    return guard(req, Role.VIEWER, download)


# ------------------------------------------------------------------------ onboarding


def onboarding_page(req: func.HttpRequest) -> func.HttpResponse:
    def show(page: Page) -> func.HttpResponse:
        services = get_services()
        try:
            found, inputs = onboarding_suggestions(services, only_unconfigured=True)
        except SeatSyncError as exc:  # Graph or a PSA unreachable is 502; a configuration not ready, 400
            return page.render("message.html", http_status=502 if isinstance(exc, HttpServiceError) else 400,
                               title="Onboarding", active="onboarding", message=problem(exc))
        problems = [f"PSA connection '{n}' could not be read: {why}" for n, why in inputs.unreadable.items()]
        return page.render("onboarding.html", title="Onboarding", active="onboarding", suggestions=found,
                           counts=level_counts(found), problems=problems, message=req.params.get("message"))

    def accept(page: Page) -> func.HttpResponse:
        services = get_services()
        selected = set(form(page.req).get("tenant", []))
        try:
            found, _ = onboarding_suggestions(services, only_unconfigured=True)
            chosen = [s for s in found if s.tenant_id in selected and s.best is not None]
            if not chosen:
                return page.redirect(f"{BASE}/onboarding?message=Select%20at%20least%20one%20suggestion.")
            # the person reviewed each selected row: accept its suggested company whatever the confidence
            rows = [Decision(s.tenant_id, s.best.psa, s.best.company_id, row=i)
                    for i, s in enumerate(chosen) if s.best is not None]
            result = apply_rows(services, rows, page.caller.actor,
                                f"onboarding: {len(chosen)} suggestion(s) accepted in the dashboard")
        except SeatSyncError as exc:
            return page.render("message.html", http_status=400, title="Onboarding", active="onboarding",
                               message=f"Nothing was saved: {problem(exc)}")
        added = len(result.added) + len(result.replaced)
        return page.redirect(f"{BASE}/onboarding?message=" + _quote(f"{added} tenant(s) added."))

    if req.method == "POST":
        return guard(req, Role.ADMIN, accept)
    return guard(req, Role.VIEWER, show)


# ------------------------------------------------------------------------ notifications


def notifications_page(req: func.HttpRequest) -> func.HttpResponse:
    from shared.notifications.sample import sample_run_data
    from shared.notifications.service import (
        NotifyServices,
        gather_run_data,
        links_for,
        preview_document,
        preview_name,
        send_test,
    )

    def rendered(data: Any, config: Any, banner: str | None) -> dict[str, Any]:
        services = get_services()
        return preview_document(data, config, links_for(services, config.notifications), services.clock(), banner)

    def show(page: Page, results: list[Any] | None = None) -> func.HttpResponse:
        services = get_services()
        config, version = services.config_repository.current()
        latest = services.runs.latest_run_id()
        if latest is not None:
            # stored when the run was notified (and otherwise rendered once per finished run and
            # configuration version): reading every tenant's snapshot on a visit takes seconds at
            # hundreds of tenants
            name = preview_name(version.version_id if version else None)
            preview = services.runs.derived(latest, name)
            if preview is None:
                preview = rendered(gather_run_data(services.runs, services.snapshots, config, latest), config, None)
                if services.runs.summary(latest) is not None:
                    services.runs.record_derived(latest, name, preview)
            source = f"run {latest}"
        else:
            preview = rendered(sample_run_data(services.clock()), config, "Preview with sample data")
            source = "the built-in sample run"
        return page.render("notifications.html", title="Notifications", active="notifications",
                           settings=config.notifications, source=source, card=preview["card"],
                           email={"subject": preview["subject"], "html": preview["html"]},
                           alerts=preview["alerts"], results=results)

    def test(page: Page) -> func.HttpResponse:
        services = get_services()
        try:
            results = send_test(NotifyServices.from_services(services), sample_run_data(services.clock()))
        except SeatSyncError as exc:
            return page.render("message.html", http_status=400, title="Notifications", active="notifications",
                               message=problem(exc))
        return show(page, results)

    if req.method == "POST":
        return guard(req, Role.ADMIN, test)
    return guard(req, Role.VIEWER, show)


# ------------------------------------------------------------------------ configuration


def configuration_page(req: func.HttpRequest) -> func.HttpResponse:
    def show(page: Page) -> func.HttpResponse:
        services = get_services()
        api = ConfigApi(services.config_repository, services.snapshots)
        versions = [v for v in (version_json(v) for v in api.history()) if v is not None]
        older, newer = (req.params.get("from") or "")[:40], (req.params.get("to") or "")[:40]
        diff, error = None, None
        if older:
            try:
                diff = api.diff(older, newer or "current")
            except SeatSyncError as exc:
                error = problem(exc)
        current = versions[0]["versionId"] if versions and versions[0] else None
        return page.render("configuration.html", title="Configuration", active="configuration", versions=versions,
                           diff=diff, error=error, older=older, newer=newer or "current", current=current,
                           summary=configuration_summary(services.config()), message=req.params.get("message"))

    def rollback(page: Page) -> func.HttpResponse:
        services = get_services()
        api = ConfigApi(services.config_repository, services.snapshots)
        version_id = field(page, "version")
        try:
            change = api.rollback(version_id, page.caller.actor, expected=field(page, "current") or None)
        except SeatSyncError as exc:
            return page.render("message.html", http_status=409 if "version" in str(exc) else 400, title="Configuration",
                               active="configuration", message=f"Not rolled back: {problem(exc)}")
        message = (f"Rolled back: version {change.version.number} is a copy of {version_id}."
                   if change.changed and change.version else "Nothing to roll back: that is the current content.")
        return page.redirect(f"{BASE}/configuration?message=" + _quote(message))

    if req.method == "POST":
        return guard(req, Role.ADMIN, rollback)
    return guard(req, Role.VIEWER, show)


def configuration_summary(config: Any) -> list[tuple[str, str]]:
    """What the configuration holds, counted: the page shows this, and the whole document (a
    few hundred KB for hundreds of tenants) only as a download."""
    enabled = sum(1 for t in config.tenants if t.enabled)
    mappings = sum(len(c.licences) for t in config.tenants for c in t.companies)
    channels = len(config.notifications.teams) + (1 if config.notifications.email else 0)
    return [
        ("Tenants", f"{len(config.tenants):,} ({enabled:,} enabled)"),
        ("Licence mappings", f"{mappings:,}"),
        ("PSA connections", ", ".join(f"{c.name} ({c.type})" for c in config.psa_connections) or "none"),
        ("Billing profiles", f"{len(config.billing_profiles):,}"),
        ("Subscription sources", ", ".join(s.name for s in config.subscription_sources) or "none"),
        ("Partner accounts", f"{len(config.partner_accounts) + 1:,}"),
        ("Custom and excluded licences", f"{len(config.custom_licences):,} custom, "
                                         f"{len(config.excluded_licences):,} excluded"),
        ("Notification channels", f"{channels:,}"),
    ]


def configuration_download(req: func.HttpRequest) -> func.HttpResponse:
    def download(page: Page) -> func.HttpResponse:
        services = get_services()
        text, version = ConfigApi(services.config_repository, services.snapshots).export_yaml()
        name = f"seatsync-config-v{version.number}.yaml" if version else "seatsync-config.yaml"
        return page.finish(func.HttpResponse(text, status_code=200, mimetype="application/yaml", charset="utf-8",
                                             headers={"Content-Disposition": f'attachment; filename="{name}"'}))

    return guard(req, Role.VIEWER, download)


# ------------------------------------------------------------------------ static files


def dashboard_static(req: func.HttpRequest) -> func.HttpResponse:
    """The dashboard's stylesheet, script and vendored libraries (no secrets: served to anyone,
    like the platform's own sign-in page assets)."""
    return static_file(req.route_params.get("name", ""))
