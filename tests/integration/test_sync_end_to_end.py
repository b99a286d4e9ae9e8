"""A whole sync, as `make run` and the Function App run it, on Azurite and the emulators."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from tests.integration.msp import CONTOSO, FABRIKAM, NORTHWIND, SPB, TAILSPIN, WOODGROVE, running_msp

pytestmark = pytest.mark.integration


def test_first_run_brings_additions_in_line_and_second_run_writes_nothing(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        first = msp.sync()
        assert first["status"] == "partial"  # Tailspin cannot be read
        applied = {(c["kind"], c["additionId"], c["oldQuantity"], c["newQuantity"])
                   for c in first["changes"] if c["applied"]}
        assert applied == {("set-quantity", "500", 20, 22), ("set-quantity", "501", 5, 4),
                           ("set-quantity", "530", 7, 8), ("set-quantity", "540", 1150, 1200),
                           ("prorate", "541", None, 2), ("prorate", "542", None, 1), ("prorate", "543", None, 50)}
        assert msp.cw_quantities() == {500: 22, 501: 4, 510: 10, 520: 6, 530: 8, 540: 1200,
                                       541: 2, 542: 1, 543: 50}
        writes_after_first = msp.cw_writes()
        assert writes_after_first == 7, "only the lines whose quantity differs are written, with their prorates"

        second = msp.sync()
        assert second["changes"] == []
        assert msp.cw_writes() == writes_after_first, "an unchanged day writes nothing"
        assert second["totals"]["linesUnchanged"] == 5
        assert msp.cw_quantities()[541] == 2, "a second run on the same day does not prorate again"
        assert second["calls"]["psa"] < first["calls"]["psa"]


def test_a_tenant_whose_token_fails_keeps_its_billing_and_is_reported(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        report = msp.sync()
        tailspin = next(t for t in report["tenants"] if t["tenantId"] == TAILSPIN)
        assert tailspin["status"] == "auth-failed"
        assert tailspin["errorCode"] == "AADSTS700016"
        assert "adminconsent" in tailspin["error"]
        assert msp.cw_quantities()[520] == 6, "a tenant that cannot be read is never billed less"
        assert not [c for c in report["changes"] if c["tenantId"] == TAILSPIN]
        assert msp.services.snapshots.latest(TAILSPIN) is None


def test_a_throttled_tenant_still_syncs(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        report = msp.sync(tenants=[NORTHWIND])
        graph = msp.emulators.emulator("graph")
        [rule] = graph.faults.rules()
        assert rule["fired"] == 2, "Northwind's user reads were answered 429 twice"
        assert report["tenants"][0]["status"] == "ok"
        assert msp.cw_quantities()[530] == 8


def test_paging_over_999_users(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        report = msp.sync(tenants=[WOODGROVE])
        [woodgrove] = report["tenants"]
        assert woodgrove["users"] == 1200
        graph = msp.emulators.emulator("graph")
        assert graph.count_requests(r"^/v1.0/\$batch$") == 1, "first pages of every read in one batch"
        assert graph.count_requests("^/v1.0/users$") == 1, "1,200 users: the second page of 999 follows"
        snapshot = msp.services.snapshots.latest(WOODGROVE)
        assert snapshot is not None and len(snapshot.users_holding(SPB)) == 1200
        assert msp.cw_quantities()[540] == 1200


def test_a_dry_run_writes_nothing_and_reports_the_plan(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        before = msp.cw_quantities()
        report = msp.sync(dry_run=True)
        assert msp.cw_writes() == 0
        assert msp.cw_quantities() == before
        assert {c["status"] for c in report["changes"]} == {"dry-run"}
        planned = {(c["kind"], c["additionId"], c["newQuantity"], c["amount"]) for c in report["changes"]}
        assert planned == {("set-quantity", "500", 22, None), ("set-quantity", "501", 4, None),
                           ("set-quantity", "530", 8, None), ("set-quantity", "540", 1200, None),
                           ("prorate", None, 2, "8.80"), ("prorate", None, 1, "4.60"), ("prorate", None, 50, "220.00")}
        real = msp.sync()
        assert {(c["kind"], c["newQuantity"], c["amount"]) for c in real["changes"]} == {
            (kind, quantity, amount) for kind, _, quantity, amount in planned}, "the dry run showed the real plan"


def test_only_the_requested_tenants_are_synced(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        report = msp.sync(tenants=[FABRIKAM, CONTOSO])
        assert {t["tenantId"] for t in report["tenants"]} == {FABRIKAM, CONTOSO}
        assert msp.cw_quantities()[540] == 1150


def test_a_failed_psa_write_is_reported_and_others_still_apply(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        msp.emulators.emulator("connectwise").faults.add(
            {"kind": "error", "status": 400, "path": "/additions/501$", "method": "PATCH"})
        report = msp.sync(tenants=[FABRIKAM])
        by_line = {c["additionId"]: c for c in report["changes"] if c["kind"] == "set-quantity"}
        assert by_line["500"]["status"] == "applied"
        assert by_line["501"]["status"] == "failed"
        assert "501" in by_line["501"]["error"]
        assert report["status"] == "partial"
        assert msp.cw_quantities()[501] == 5


def test_gdap_customers_not_yet_added_are_reported(azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path) as msp:
        report = msp.sync(tenants=[CONTOSO])
        assert [t["name"] for t in report["gdap"]["notConfigured"]] == ["Adatum Corporation"]
