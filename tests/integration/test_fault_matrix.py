"""The fault matrix: faults a run can meet, driven on Azurite and the emulators, and what each
leaves behind compared with a clean run of the same sample MSP: what the PSA bills, the run
report, the write ledger, the audit trail and the alert a person receives.

A case runs the sample MSP with one fault injected, captures its ``Aftermath`` and compares it
with the clean run's (computed once for the module): whatever the fault touched is named in the
report and alerted, nothing of it is lowered or half-written, and everything else is exactly as
in the clean run. To add a case: inject the fault (an emulator fault rule, a wrapped adapter, a
killed process), run, and compare with ``clean`` using the helpers below.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from tests.integration.msp import FABRIKAM, LITWARE, Msp, running_msp
from tests.notification_support import texts

pytestmark = pytest.mark.integration

EXCHANGE_P1 = "4b9405b0-7788-4568-add1-99614e613b69"
EXCHANGE_P1_LINE = 501  # Fabrikam's Exchange Online (Plan 1) line: 5 seats, lowered to 4 by a clean run
LITWARE_LINES = (550, 560)  # Litware's Business Premium lines (sales, engineering) on agreements 105, 106


@dataclass(frozen=True)
class Aftermath:
    """What a run leaves behind."""

    billed: dict[str, float]  # a ConnectWise addition (``line``) -> the quantity it bills now
    report: dict[str, Any]
    ledger: dict[str, set[tuple[str, str]]]  # tenant -> (change id, kind) of every write recorded
    audit: dict[str, list[tuple[str, str, str, int | None, int | None]]]  # tenant -> (event, kind, licence, ...)
    alerts: list[str]  # the texts of the Teams cards sent

    def changes(self, tenant_id: str | None = None, *, exclude: str | None = None) -> list[tuple[Any, ...]]:
        return sorted((c["tenantId"], c["changeId"], c["kind"], c["status"], c["oldQuantity"], c["newQuantity"])
                      for c in self.report["changes"]
                      if (tenant_id is None or c["tenantId"] == tenant_id) and c["tenantId"] != exclude)

    def tenant(self, tenant_id: str) -> dict[str, Any]:
        return next(t for t in self.report["tenants"] if t["tenantId"] == tenant_id)


def line(addition: dict[str, Any], existing: set[int]) -> str:
    """An addition's name across runs: its id when it was there before the run; for one the run
    created, its agreement and tag (deterministic, where created ids depend on the order of writes)."""
    if addition["id"] in existing:
        return str(addition["id"])
    return f"new on {addition['agreementId']}: {addition.get('serialNumber') or addition['product']['id']}"


def billed(msp: Msp, existing: set[int]) -> dict[str, float]:
    state = msp.emulators.emulator("connectwise").state()
    return {line({**a, "agreementId": agreement["id"]}, existing): a["quantity"]
            for agreement in state["agreements"] for a in agreement.get("additions", [])}


def aftermath(msp: Msp, store: TableStore, report: dict[str, Any], existing: set[int]) -> Aftermath:
    ledger: dict[str, set[tuple[str, str]]] = {}
    for entity in store.table("ledger").list_entities():
        ledger.setdefault(str(entity["PartitionKey"]), set()).add((str(entity["RowKey"]), str(entity.get("Kind"))))
    audit = {tenant.tenant_id: [(e.event, e.kind, e.licence, e.before, e.after)
                                for e in msp.services.decisions.audit_trail(tenant.tenant_id)]
             for tenant in msp.config.tenants}
    posts = msp.emulators.emulator("teams").state()["posts"]
    return Aftermath(billed(msp, existing), report, ledger, {k: v for k, v in audit.items() if v},
                     [text for post in posts for text in texts(post)])


def run_once(azurite: Azurite, store: TableStore, tmp: Path, faults: dict[str, list[dict[str, Any]]] | None = None
             ) -> tuple[Aftermath, dict[str, float]]:
    """Run the sample MSP once (with ``faults`` per emulator); its aftermath and the PSA before."""
    with running_msp(azurite, store, tmp) as msp:
        existing = set(msp.cw_quantities())
        before = billed(msp, existing)
        for section, rules in (faults or {}).items():
            msp.emulators.emulator(section).faults.add(rules)
        report = msp.sync()
        return aftermath(msp, store, report, existing), before


@pytest.fixture(scope="module")
def clean(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aftermath]:
    """The clean run every case is compared with."""
    store = TableStore(TableServiceClient.from_connection_string(azurite.connection_string), "cleanrun")
    try:
        yield run_once(azurite, store, tmp_path_factory.mktemp("clean"))[0]
    finally:
        store.drop_all()


def without(mapping: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != tenant_id}


# --------------------------------------------------------------------------- impossible values


@pytest.mark.parametrize(("field", "value", "shown"), [
    ("consumedUnits", 2**31, "consumedUnits is 2147483648, outside 0 to 2147483647 (subscribedSku SPB"),
    ("prepaidUnits.enabled", float("nan"), "prepaidUnits.enabled is nan, not a finite number"),
])
def test_an_impossible_count_from_graph_fails_that_tenant_only(
        field: str, value: Any, shown: str, clean: Aftermath, azurite: Azurite, store: TableStore,
        tmp_path: Path) -> None:
    fault = {"kind": "corrupt", "path": "subscribedSkus", "tenant": LITWARE, "set": {field: value}}
    after, before = run_once(azurite, store, tmp_path, {"graph": [fault]})

    litware = after.tenant(LITWARE)
    assert litware["status"] == "failed"
    assert shown in litware["error"] and LITWARE in litware["error"], "the tenant, the field and the value"
    assert after.report["status"] == "partial"
    # the PSA: Litware's lines as before the run, every other line as the clean run left it
    lines = {str(n) for n in LITWARE_LINES} | {k for k in clean.billed if k.startswith(("new on 105:",
                                                                                        "new on 106:"))}
    assert {k: v for k, v in after.billed.items() if k in lines} == {k: v for k, v in before.items() if k in lines}
    assert {k: v for k, v in after.billed.items() if k not in lines} == {
        k: v for k, v in clean.billed.items() if k not in lines}
    # the report, the ledger and the audit trail: the clean run's, without Litware
    assert after.changes(LITWARE) == []
    assert after.changes(exclude=LITWARE) == clean.changes(exclude=LITWARE)
    assert LITWARE not in after.ledger and without(after.ledger, LITWARE) == without(clean.ledger, LITWARE)
    assert LITWARE not in after.audit and after.audit == without(clean.audit, LITWARE)
    # nothing unstorable was stored: no snapshot, no licence history for Litware in this run
    assert not list(store.table("licencecounts").query_entities("PartitionKey eq @pk", parameters={"pk": LITWARE}))
    # a person is told, by name
    named = f"Litware Inc (IncompleteReadError: Microsoft Graph (tenant {LITWARE}): {field}"
    assert any(text.startswith("Tenants failed |") and named in text for text in after.alerts), after.alerts
    assert not any("Litware Inc (" in text for text in clean.alerts)


@pytest.mark.parametrize(("value", "shown"), [
    (1e300, "quantity is 1E+300, beyond the 2,147,483,647 SeatSync accepts"),
])
def test_an_impossible_quantity_from_the_psa_freezes_that_line_only(
        value: Any, shown: str, clean: Aftermath, azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    fault = {"kind": "corrupt", "path": "/finance/agreements/100/additions", "method": "GET",
             "set": {"quantity": value}, "where": {"id": EXCHANGE_P1_LINE}}
    after, before = run_once(azurite, store, tmp_path, {"connectwise": [fault]})

    [problem] = [p for p in after.report["problems"] if p["kind"] == "impossible-value"]
    assert problem["tenantName"] == "Fabrikam Ltd" and problem["lineId"] == str(EXCHANGE_P1_LINE)
    assert shown in problem["message"], "the line, the field and the value"
    # the PSA: the line is as before the run; every other line as the clean run left it
    line_id = str(EXCHANGE_P1_LINE)
    assert after.billed[line_id] == before[line_id] == 5
    exchange_writes = [c for c in clean.report["changes"] if c["tenantId"] == FABRIKAM and c["skuId"] == EXCHANGE_P1]
    assert exchange_writes, "the clean run lowers the line"
    exchange_lines = {line_id} | {k for k in clean.billed if k.startswith("new on 100:") and k not in after.billed}
    assert {k: v for k, v in after.billed.items() if k not in exchange_lines} == {
        k: v for k, v in clean.billed.items() if k not in exchange_lines}
    # the report: nothing for the line; Fabrikam's other licences and every other tenant as in the clean run
    assert [c for c in after.report["changes"] if c["skuId"] == EXCHANGE_P1] == []
    assert after.changes(exclude=FABRIKAM) == clean.changes(exclude=FABRIKAM)
    assert after.changes(FABRIKAM) == sorted(set(clean.changes(FABRIKAM)) - {
        (c["tenantId"], c["changeId"], c["kind"], c["status"], c["oldQuantity"], c["newQuantity"])
        for c in exchange_writes})
    # the ledger and the audit trail: the clean run's, without the line's writes
    exchange_ids = {c["changeId"] for c in exchange_writes}
    assert after.ledger[FABRIKAM] == {entry for entry in clean.ledger[FABRIKAM] if entry[0] not in exchange_ids}
    assert without(after.ledger, FABRIKAM) == without(clean.ledger, FABRIKAM)
    exchange_licence = {c["licence"] for c in exchange_writes}
    assert after.audit[FABRIKAM] == [e for e in clean.audit[FABRIKAM] if e[2] not in exchange_licence]
    assert without(after.audit, FABRIKAM) == without(clean.audit, FABRIKAM)
    # a person is told
    assert any(shown in text for text in after.alerts), after.alerts
    assert not any("impossible" in text for text in clean.alerts)
