"""One PSA line bills one licence, end to end on ConnectWise (Azurite, the emulators, the line read
back through pyconnectwise): two of Fabrikam's licences find the same addition (Business Premium
names it by lineId, Exchange Online adopts it as the one line of its profile's product). Neither is
written, and a person is told which licences share the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from tests.integration.msp import FABRIKAM, running_msp
from tests.integration.test_third_party_clients import drive

pytestmark = pytest.mark.integration
EXO = "4b9405b0-7788-4568-add1-99614e613b69"


def exchange_on_business_premium(document: dict[str, Any]) -> None:
    """The MSP maps Exchange Online to the Business Premium profile, without a lineId."""
    fabrikam = next(t for t in document["tenants"] if t["tenantId"] == FABRIKAM)
    exchange = next(lic for lic in fabrikam["companies"][0]["licences"] if lic.get("skuId") == EXO)
    exchange.pop("lineId")
    exchange["profile"] = "m365-bp"


def test_two_licences_finding_the_same_line_write_nothing(azurite: Azurite, store: TableStore,
                                                          tmp_path: Path) -> None:
    with running_msp(azurite, store, tmp_path, edit_config=exchange_on_business_premium) as msp:
        before = msp.cw_additions(100)
        report = msp.sync(tenants=[FABRIKAM])
        shared = [p for p in report["problems"] if p["kind"] == "line-shared"]
        assert sorted((p["licence"], p["lineId"], p["agreementId"], p["blocks"]) for p in shared) == [
            ("Exchange Online (Plan 1)", "500", "100", True), ("Microsoft 365 Business Premium", "500", "100", True)]
        assert any("is also the line of Exchange Online (Plan 1) (adopted)" in p["message"] for p in shared)
        assert [c for c in report["changes"] if c["agreementId"] == "100"] == []
        assert msp.cw_additions(100) == before
        assert [r for r in msp.emulators.emulator("connectwise").requests_log()
                if r["method"] != "GET" and "/agreements/100/" in r["path"]] == [], "nothing written to agreement 100"

        scenario = msp.emulators.scenario["connectwise"]
        credential = scenario["credentials"][0]
        connection = {"companyId": scenario["companyId"], "host": f"127.0.0.1:{msp.emulators['connectwise'].port}",
                      "clientId": credential["clientId"], "publicKey": credential["publicKey"],
                      "privateKey": credential["privateKey"]}
        (additions,) = drive("connectwise", msp.emulators.tls, connection,
                             [{"op": "additions", "agreementId": 100, "pageSize": 10}])
        assert sorted((a["id"], a["quantity"]) for a in additions) == [(500, 20.0), (501, 5.0)]
