"""Small builders for the pure core's tests: configurations, snapshots and PSA views."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from shared.config.schema import SeatSyncConfig, parse_config
from shared.domain.model import (
    Agreement,
    BilledLine,
    BillMode,
    DirectoryUser,
    GroupMember,
    Mailbox,
    ManagedDevice,
    Product,
    PsaCapabilities,
    SkuCount,
    Subscription,
    TenantSnapshot,
)
from shared.domain.planning import PsaView

TENANT = "aaaaaaaa-0000-0000-0000-000000000001"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
EXO = "4b9405b0-7788-4568-add1-99614e613b69"
TODAY = date(2026, 11, 25)
CW = PsaCapabilities(kind="connectwise", prorate="separate-line", description_limit=6000, tag_limit=50)
AUTOTASK = PsaCapabilities(kind="autotask", prorate="native", description_limit=1000, tag_limit=100)
HALO = PsaCapabilities(kind="halopsa", prorate="native", description_limit=4000, tag_limit=50)

CONNECTION = {"name": "cw", "type": "connectwise", "url": "https://cw.example.com/v4_6_release/apis/3.0",
              "companyId": "msp", "publicKey": {"setting": "A"}, "privateKey": {"setting": "B"},
              "clientId": "12345678-1234-1234-1234-123456789012"}
PROFILE = {"name": "m365-bp", "psa": "cw", "productId": "1", "price": {"mode": "psa"}}


def config(*licences: dict[str, Any], companies: list[dict[str, Any]] | None = None,
           **extra: Any) -> SeatSyncConfig:
    """A configuration with one tenant; ``licences`` go to one company (19) unless ``companies``."""
    document: dict[str, Any] = {
        "psaConnections": [CONNECTION],
        "billingProfiles": [PROFILE],
        "tenants": [{"tenantId": TENANT, "name": "Fabrikam",
                     "companies": companies if companies is not None else
                     [{"psa": "cw", "companyId": "19", "licences": list(licences)}]}],
    }
    for key, value in extra.items():
        if key in ("excludedLicences_tenant", "customLicences_tenant"):
            document["tenants"][0][key.removesuffix("_tenant")] = value
        else:
            document[key] = value
    return parse_config(copy.deepcopy(document))


def licence(sku: str = SPB, **options: Any) -> dict[str, Any]:
    return {"skuId": sku, "agreementId": "100", "lineId": "500", **options}


def user(name: str, *skus: str, **fields: Any) -> DirectoryUser:
    return DirectoryUser(id=f"id-{name}", user_principal_name=f"{name}@fabrikam.example", display_name=name.title(),
                         sku_ids=tuple(skus), **fields)


def snapshot(skus: list[tuple[str, int, int]] | None = None, users: list[DirectoryUser] | None = None,
             **extra: Any) -> TenantSnapshot:
    return TenantSnapshot(
        tenant_id=TENANT, run_id="20261125T020000Z-00000000", collected_at=datetime(2026, 11, 25, 2, tzinfo=UTC),
        skus=tuple(SkuCount(sku_id=s, sku_part_number="X", purchased=p, consumed=c) for s, p, c in (skus or [])),
        users=tuple(users or ()), **extra)


def subscription(sub_id: str, sku: str, total: int, created: date, renews: date, status: str = "Enabled",
                 trial: bool = False) -> Subscription:
    return Subscription(id=sub_id, sku_id=sku, sku_part_number="X", total_licenses=total, status=status,
                        is_trial=trial, created=datetime(created.year, created.month, created.day, tzinfo=UTC),
                        next_lifecycle=datetime(renews.year, renews.month, renews.day, tzinfo=UTC))


def mailbox(name: str, kind: str) -> Mailbox:
    return Mailbox(user_principal_name=f"{name}@fabrikam.example", display_name=name, recipient_type=kind)


def member(member_id: str, kind: str = "user", enabled: bool = True) -> GroupMember:
    return GroupMember(id=member_id, kind=kind, account_enabled=enabled)


def device(name: str, system: str = "Windows", owner: str | None = None) -> ManagedDevice:
    return ManagedDevice(id=name, device_name=name, operating_system=system,
                         user_principal_name=f"{owner}@fabrikam.example" if owner else None)


def line(line_id: str = "500", quantity: int | str = 20, agreement: str = "100", product: str = "1",
         price: str | None = "22.00", tag: str | None = None, cancelled: date | None = None,
         description: str = "") -> BilledLine:
    return BilledLine(psa="cw", line_id=line_id, agreement_id=agreement, company_id="19", product_id=product,
                      product_identifier="M365-BP", quantity=Decimal(str(quantity)),
                      unit_price=Decimal(price) if price else None, bill_mode=BillMode.BILLABLE,
                      invoice_description=description, tag=tag, cancelled_date=cancelled)


def agreement(agreement_id: str = "100", prorate: bool = True, cycle: str = "monthly", company: str = "19",
              start: date | None = date(2026, 1, 1), active: bool = True, type_name: str = "Microsoft 365",
              end: date | None = None) -> Agreement:
    return Agreement(psa="cw", agreement_id=agreement_id, company_id=company, name=f"Agreement {agreement_id}",
                     type_name=type_name, active=active, prorate=prorate, billing_cycle=cycle, start_date=start,
                     end_date=end)


def view(*lines: BilledLine, agreements: list[Agreement] | None = None, price: str | None = "22.00",
         capabilities: PsaCapabilities = CW, capabilities_for: dict[str, PsaCapabilities] | None = None) -> PsaView:
    agreements = agreements if agreements is not None else [agreement()]
    by_agreement: dict[tuple[str, str], list[BilledLine]] = {("cw", a.agreement_id): [] for a in agreements}
    for item in lines:
        by_agreement.setdefault(("cw", item.agreement_id), []).append(item)
    product = Product(psa="cw", product_id="1", identifier="M365-BP", description="Microsoft 365 Business Premium",
                      price=Decimal(price) if price else None)
    return PsaView(agreements={("cw", a.agreement_id): a for a in agreements},
                   lines={k: tuple(v) for k, v in by_agreement.items()},
                   products={("cw", "1"): product},
                   capabilities={"cw": capabilities} if capabilities_for is None else capabilities_for)
