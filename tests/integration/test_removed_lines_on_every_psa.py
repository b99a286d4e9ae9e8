"""A line SeatSync created that the MSP removed in the PSA, synced end to end on Azurite and the
emulators of each PSA: an addition deleted in ConnectWise, a contract service deleted (or its units
taken off) in Autotask, a recurring invoice line deleted in HaloPSA. The next runs create nothing,
hold the line's recreation for a person and raise a billing problem naming the tenant, the licence,
the agreement and the line; what each PSA holds is read back through the vendor's third-party
client (pyconnectwise, autotask-client, HaloPSA). Once a person approves, the line is created
again, once."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from tests.integration.msp import NOW, PROSEWARE, Msp, billing_writes, running_msp, sample_scenario
from tests.integration.test_third_party_clients import drive

pytestmark = pytest.mark.integration


def tagged_lines(msp: Msp, psa: str, agreement_id: str, tag: str) -> list[str]:
    """The ids of the agreement's lines carrying ``tag``, read through the PSA's third-party client."""
    tls = msp.emulators.tls
    section = msp.emulators.scenario[psa]
    if psa == "connectwise":
        credential = section["credentials"][0]
        connection = {"companyId": section["companyId"], "host": f"127.0.0.1:{msp.emulators[psa].port}",
                      "clientId": credential["clientId"], "publicKey": credential["publicKey"],
                      "privateKey": credential["privateKey"]}
        (additions,) = drive("connectwise", tls, connection,
                             [{"op": "additions", "agreementId": int(agreement_id), "pageSize": 5}])
        return [str(a["id"]) for a in additions if a.get("serialNumber") == tag]
    if psa == "autotask":
        (services,) = drive("autotask", tls, autotask_connection(msp), [
            {"op": "query", "entity": "ContractServices",
             "filter": [{"op": "eq", "field": "contractID", "value": int(agreement_id)}]}])
        return [str(s["id"]) for s in services if s.get("internalDescription") == tag]
    (invoice,) = drive("halopsa", tls, halo_connection(msp), [{"op": "invoice", "id": int(agreement_id)}])
    return [str(line["id"]) for line in invoice["lines"] if line.get("item_internal_reference") == tag]


def autotask_connection(msp: Msp) -> dict[str, Any]:
    user = msp.emulators.scenario["autotask"]["users"][0]
    return {"username": user["username"], "secret": user["secret"], "integrationCode": user["integrationCode"],
            "apiUrl": msp.emulators["autotask"].url}


def halo_connection(msp: Msp) -> dict[str, Any]:
    section = msp.emulators.scenario["halopsa"]
    application = section["applications"][0]
    return {"baseUrl": msp.emulators["halopsa"].url, "tenant": section["tenant"],
            "clientId": application["clientId"], "secret": application["clientSecret"]}


def delete_line(msp: Msp, psa: str, agreement_id: str, line_id: str) -> None:
    """The MSP deletes SeatSync's line: through the API where the PSA allows it (ConnectWise's
    additions, Halo's recurring invoice lines), in Autotask's contract page otherwise."""
    if psa == "connectwise":
        section = msp.emulators.scenario[psa]
        credential = section["credentials"][0]
        connection = {"companyId": section["companyId"], "host": f"127.0.0.1:{msp.emulators[psa].port}",
                      "clientId": credential["clientId"], "publicKey": credential["publicKey"],
                      "privateKey": credential["privateKey"]}
        drive("connectwise", msp.emulators.tls, connection,
              [{"op": "delete_addition", "agreementId": int(agreement_id), "additionId": int(line_id)}])
    elif psa == "autotask":
        emulator: Any = msp.emulators.emulator("autotask")
        emulator.delete_contract_service(int(line_id))
    else:
        drive("halopsa", msp.emulators.tls, halo_connection(msp),
              [{"op": "post_lines", "id": int(agreement_id), "removeLineId": int(line_id)}])


def scenario_of(psa: str) -> tuple[dict[str, Any], str]:
    """The PSA's sample MSP on the day the tests' runs detect their changes."""
    scenario, config_text = sample_scenario(psa)
    scenario = copy.deepcopy(scenario)
    scenario[psa]["today"] = NOW.date().isoformat()
    return scenario, config_text


def writes(msp: Msp, psa: str) -> int:
    return billing_writes(msp.emulators.emulator(psa))


@pytest.mark.parametrize("psa", ["connectwise", "autotask", "halopsa"])
def test_a_line_seatsync_created_that_the_msp_deleted_is_never_silently_created_again(
        psa: str, azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    scenario, config_text = scenario_of(psa)
    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config_text) as msp:
        first = msp.sync(tenants=[PROSEWARE])
        [created] = [c for c in first["changes"] if c["kind"] == "create-line"]
        agreement, line_id, tag = created["agreementId"], created["additionId"], created["tag"]
        assert created["status"] == "applied" and tagged_lines(msp, psa, agreement, tag) == [line_id]

        delete_line(msp, psa, agreement, line_id)
        assert tagged_lines(msp, psa, agreement, tag) == []
        before = writes(msp, psa)
        for _ in range(2):  # the day after, and the day after that: the same answer, nothing written
            report = msp.sync(tenants=[PROSEWARE])
            assert report["status"] == "attention"
            [held] = [c for c in report["changes"] if c["kind"] == "create-line"]
            assert (held["status"], held["agreementId"], held["additionId"]) == ("held", agreement, None)
            [problem] = [p for p in report["problems"] if p["kind"] == "line-removed"]
            assert (problem["tenantName"], problem["agreementId"], problem["lineId"], problem["blocks"]) == (
                "Proseware Ltd", agreement, line_id, True)
            assert problem["licence"] == created["licence"]
            assert "it was deleted there" in problem["message"]
            assert f"seatsync approvals approve {held['holdKey']}" in problem["action"]
        assert writes(msp, psa) == before, "no line is created for what the MSP deleted"
        assert tagged_lines(msp, psa, agreement, tag) == []
        trail = msp.services.decisions.audit_trail(PROSEWARE)
        assert [e.event for e in trail if e.change_id == held["changeId"]] == ["held"]

        # a person says "create it again": the next run creates the line, once
        msp.decide(held["holdKey"], True, "ops@msp.example", "the customer still uses it")
        again = msp.sync(tenants=[PROSEWARE])
        [recreated] = [c for c in again["changes"] if c["kind"] == "create-line"]
        assert recreated["status"] == "applied" and recreated["additionId"] not in (None, line_id)
        assert [p for p in again["problems"] if p["kind"] == "line-removed"] == []
        assert tagged_lines(msp, psa, agreement, tag) == [recreated["additionId"]]
        approval = msp.services.decisions.approval(held["holdKey"])
        assert approval is not None and approval.status == "applied"
        settled = msp.sync(tenants=[PROSEWARE])
        assert [c for c in settled["changes"] if c["kind"] == "create-line"] == []
        assert tagged_lines(msp, psa, agreement, tag) == [recreated["additionId"]]


def test_a_contract_service_whose_units_the_msp_removed_is_not_raised_again(
        azurite: Azurite, store: TableStore, tmp_path: Path) -> None:
    """Autotask: the MSP adjusted SeatSync's contract service to zero units; the next run does not
    raise it back on its own."""
    scenario, config_text = scenario_of("autotask")
    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config_text) as msp:
        first = msp.sync(tenants=[PROSEWARE])
        [created] = [c for c in first["changes"] if c["kind"] == "create-line"]
        emulator: Any = msp.emulators.emulator("autotask")
        emulator.remove_units(int(created["additionId"]), date(2026, 12, 1))
        before = writes(msp, "autotask")
        report = msp.sync(tenants=[PROSEWARE])
        [problem] = [p for p in report["problems"] if p["kind"] == "line-removed"]
        assert (problem["lineId"], problem["agreementId"]) == (created["additionId"], created["agreementId"])
        assert "its units were removed in" in problem["message"]
        assert [(c["kind"], c["status"]) for c in report["changes"] if c["additionId"] == created["additionId"]] == [
            ("set-quantity", "held")]
        assert writes(msp, "autotask") == before
        (units,) = drive("autotask", msp.emulators.tls, autotask_connection(msp), [
            {"op": "query", "entity": "ContractServiceUnits",
             "filter": [{"op": "eq", "field": "contractServiceID", "value": int(created["additionId"])}]}])
        assert [u["units"] for u in units if u["startDate"][:10] >= "2026-12-01"][:1] == [0]
