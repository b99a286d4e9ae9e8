"""A made-up run with one alert of every kind: what ``seatsync notify preview`` shows before any
run exists, and what ``seatsync notify send-test`` sends."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from shared.adapters.run_store import ReconciliationRow, UnlinkedLicence
from shared.contracts import RunSummary, StartedRun, TenantOutcome, TenantWork
from shared.domain.model import (
    ChangeKind,
    ChangeStatus,
    DirectoryUser,
    Mailbox,
    PlannedChange,
    SkuCount,
    TenantSnapshot,
)
from shared.domain.problems import Problem, ProblemKind
from shared.notifications.alerts import RunData, TenantRow

FABRIKAM = "fab00000-0000-4000-8000-000000000001"
NORTHWIND = "00000000-0000-4000-8000-0000000000b2"
ADATUM = "ada00000-0000-4000-8000-000000000003"
CONTOSO_RETAIL = "c0000000-0000-4000-8000-000000000004"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
EXCHANGE_P1 = "4b9405b0-7788-4568-add1-99614e613b69"
POWER_BI_PRO = "f8a1db68-be16-40ed-86d5-cb42ce701560"


def sample_run_id(now: datetime) -> str:
    return f"{now - timedelta(minutes=4):%Y%m%dT%H%M%SZ}-5a3b1e00"


def sample_run_data(now: datetime) -> RunData:
    started_at = now - timedelta(minutes=4)
    run_id = sample_run_id(now)
    summary = RunSummary(
        run_id=run_id, status="partial", dry_run=False, trigger="timer", requested_by="timer",
        started_at=started_at, finished_at=now, tenants_total=3, tenants_ok=2, tenants_failed=1,
        changes_planned=3, changes_applied=2, lines_unchanged=5, problems=1,
        problems_by_kind={ProblemKind.USERS_UNMATCHED.value: 1},
    )
    fabrikam = TenantSnapshot(
        tenant_id=FABRIKAM, run_id=run_id, collected_at=started_at,
        skus=(SkuCount(SPB, "SPB", purchased=25, consumed=22),
              SkuCount(EXCHANGE_P1, "EXCHANGESTANDARD", purchased=3, consumed=3),
              SkuCount(POWER_BI_PRO, "POWER_BI_PRO", purchased=2, consumed=2)),
        users=(DirectoryUser("u1", "alice@fabrikam.example", "Alice Archer", sku_ids=(SPB, POWER_BI_PRO)),
               DirectoryUser("u2", "info@fabrikam.example", "Info", account_enabled=False,
                             sku_ids=(EXCHANGE_P1,))),
        mailboxes=(Mailbox("alice@fabrikam.example", "Alice Archer", "User"),
                   Mailbox("info@fabrikam.example", "Info", "Shared")),
    )
    adatum = TenantSnapshot(tenant_id=ADATUM, run_id=run_id, collected_at=started_at,
                            skus=(SkuCount(SPB, "SPB", purchased=18, consumed=18),), users=())
    reconciliation = (
        ReconciliationRow(tenant_id=FABRIKAM, tenant_name="Fabrikam Ltd", psa="connectwise", company_id="250",
                          agreement_id="1001", line_id="5001", mapping_key=f"{FABRIKAM}|sku:{SPB}",
                          source=f"sku:{SPB}", label="Microsoft 365 Business Premium", purchased=25, counted=22,
                          target=22, billed_before=21, unit_price=Decimal("22.00")),
    )
    unlinked = (UnlinkedLicence(tenant_id=FABRIKAM, tenant_name="Fabrikam Ltd", sku_id=POWER_BI_PRO,
                                sku_part_number="POWER_BI_PRO", label="Power BI Pro", purchased=2, assigned=2),)
    held = PlannedChange(
        change_id="c-adatum-spb", kind=ChangeKind.SET_QUANTITY, tenant_id=ADATUM, company_id="260",
        psa="connectwise", agreement_id="1002", line_id="5002", sku_id=SPB, old_quantity=25, new_quantity=18,
        reason="decrease of 7 seats (28%) is above the 20% safety limit", status=ChangeStatus.HELD)
    applied = PlannedChange(
        change_id="c-fabrikam-spb", kind=ChangeKind.SET_QUANTITY, tenant_id=FABRIKAM, company_id="250",
        psa="connectwise", agreement_id="1001", line_id="5001", sku_id=SPB, old_quantity=21, new_quantity=22,
        reason="1 more assigned", status=ChangeStatus.APPLIED)
    unmatched = Problem(
        ProblemKind.USERS_UNMATCHED, FABRIKAM, "1 user holds it but matches no company's user filter: nobody "
        "bills them", source=f"sku:{SPB}", label="Microsoft 365 Business Premium",
        users=("dan@fabrikam.example",), blocks=False)
    return RunData(
        run_id=run_id, summary=summary,
        started=StartedRun(
            run_id=run_id,
            tenants=[TenantWork(tenant_id=t, name=n) for t, n in
                     ((FABRIKAM, "Fabrikam Ltd"), (NORTHWIND, "Northwind Traders"), (ADATUM, "Adatum Corp"))],
            gdap_not_configured=[TenantWork(tenant_id=CONTOSO_RETAIL, name="Contoso Retail")],
            configured_not_in_gdap=[TenantWork(tenant_id=NORTHWIND, name="Northwind Traders")]),
        tenants=(
            TenantRow(ADATUM, "Adatum Corp", TenantOutcome(tenant_id=ADATUM, name="Adatum Corp", status="ok")),
            TenantRow(FABRIKAM, "Fabrikam Ltd", TenantOutcome(tenant_id=FABRIKAM, name="Fabrikam Ltd", status="ok"),
                      problems=(unmatched,)),
            TenantRow(NORTHWIND, "Northwind Traders", TenantOutcome(
                tenant_id=NORTHWIND, name="Northwind Traders", status="auth-failed", error_code="AADSTS700016",
                error="cannot get a token: AADSTS700016: Application with identifier 'c1c1c1c1' was not found "
                      "in the directory 'Northwind Traders'.")),
        ),
        changes=((held, None), (applied, None)),
        reconciliation=reconciliation, unlinked=unlinked,
        snapshots={FABRIKAM: fabrikam, ADATUM: adatum},
        new_skus={FABRIKAM: frozenset({POWER_BI_PRO})},
    )
