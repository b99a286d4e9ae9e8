"""The change plan: from a tenant's snapshot, its configuration and what the PSA bills today,
the exact writes that bring the PSA in line. Pure code, no I/O.

Rules kept here (each tested in tests/unit/test_planning.py):
- a line is written only when its quantity differs from the billable quantity; an unchanged
  day plans nothing;
- a licence configured for billing but missing from the tenant, a PSA line that is missing,
  cancelled or on another agreement, are reported as problems and leave billing as it is;
- every change has a deterministic id (tenant, licence, agreement, line, target quantity,
  effective date) so a retried or repeated run recognises work it has already done.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from shared.config.schema import CompanyLink, LicenceLink, TenantConfig
from shared.domain.model import (
    BilledLine,
    ChangeKind,
    DesiredLine,
    PlannedChange,
    TenantSnapshot,
)
from shared.domain.quantities import billable_quantity

LineKey = tuple[str, str]  # (psa connection, line id)


@dataclass(frozen=True)
class Problem:
    """Something the plan cannot fix by itself: reported, never guessed at."""

    tenant_id: str
    message: str
    sku_id: str | None = None
    agreement_id: str | None = None
    line_id: str | None = None


@dataclass(frozen=True)
class TenantPlan:
    tenant_id: str
    changes: tuple[PlannedChange, ...]
    unchanged: tuple[DesiredLine, ...]
    problems: tuple[Problem, ...]


def change_id(tenant_id: str, sku_id: str, agreement_id: str, line_id: str | None,
              kind: ChangeKind, quantity: int, effective: date) -> str:
    """A stable id for one intended write: the same intent on the same day has the same id."""
    material = "|".join([tenant_id.lower(), sku_id.lower(), agreement_id, line_id or "-",
                         kind.value, str(quantity), effective.isoformat()])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def referenced_lines(tenant: TenantConfig) -> list[LineKey]:
    """The PSA lines a tenant's configuration bills through (what the push must read)."""
    return [(company.psa, licence.line_id)
            for company in tenant.companies for licence in company.licences
            if licence.line_id is not None]


def referenced_agreements(tenant: TenantConfig) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for company in tenant.companies:
        for licence in company.licences:
            seen[(company.psa, licence.agreement_id)] = None
    return list(seen)


def _desired(tenant: TenantConfig, company: CompanyLink, licence: LicenceLink,
             snapshot: TenantSnapshot) -> DesiredLine | None:
    quantity = billable_quantity(snapshot, licence.sku_id)
    if quantity is None:
        return None
    return DesiredLine(
        tenant_id=tenant.tenant_id, company_id=company.company_id, psa=company.psa,
        agreement_id=licence.agreement_id, line_id=licence.line_id, sku_id=licence.sku_id,
        quantity=quantity, reason="assigned licences",
    )


def plan_tenant(tenant: TenantConfig, snapshot: TenantSnapshot,
                lines: Mapping[LineKey, BilledLine], effective: date) -> TenantPlan:
    """Plan the writes for one tenant.

    ``lines`` holds the PSA's current lines by (connection, line id), as read just before
    planning; ``effective`` is the day the change is detected (UTC).
    """
    changes: list[PlannedChange] = []
    unchanged: list[DesiredLine] = []
    problems: list[Problem] = []
    for company in tenant.companies:
        for licence in company.licences:
            def problem(message: str, licence: LicenceLink = licence) -> None:
                problems.append(Problem(tenant.tenant_id, message, licence.sku_id,
                                        licence.agreement_id, licence.line_id))

            desired = _desired(tenant, company, licence, snapshot)
            if desired is None:
                problem(f"licence {licence.sku_id} is no longer in the tenant; its billing is "
                        "left unchanged until the decrease is confirmed")
                continue
            if licence.line_id is None:
                problem(f"licence {licence.sku_id} has no PSA line on agreement "
                        f"{licence.agreement_id}; nothing can be billed")
                continue
            line = lines.get((company.psa, licence.line_id))
            if line is None:
                problem(f"{company.psa} line {licence.line_id} was not found on agreement "
                        f"{licence.agreement_id}")
                continue
            if line.agreement_id != licence.agreement_id:
                problem(f"{company.psa} line {licence.line_id} belongs to agreement "
                        f"{line.agreement_id}, not {licence.agreement_id}; fix the mapping")
                continue
            if not line.active:
                problem(f"{company.psa} line {licence.line_id} was cancelled on "
                        f"{line.cancelled_date}; billing is not restarted automatically")
                continue
            if line.quantity == Decimal(desired.quantity):
                unchanged.append(desired)
                continue
            old = line.quantity
            changes.append(PlannedChange(
                change_id=change_id(tenant.tenant_id, licence.sku_id, licence.agreement_id,
                                    licence.line_id, ChangeKind.SET_QUANTITY, desired.quantity,
                                    effective),
                kind=ChangeKind.SET_QUANTITY,
                tenant_id=tenant.tenant_id,
                company_id=company.company_id,
                psa=company.psa,
                agreement_id=licence.agreement_id,
                line_id=licence.line_id,
                sku_id=licence.sku_id,
                old_quantity=int(old) if old == old.to_integral_value() else None,
                new_quantity=desired.quantity,
                reason=f"{desired.reason}: {old.normalize():f} -> {desired.quantity}",
            ))
    return TenantPlan(tenant.tenant_id, tuple(changes), tuple(unchanged), tuple(problems))
