"""The seatsync command line: configuration import/export/validate/history, reports."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_runner.azurite import Azurite
from local_runner.cli import main
from local_runner.wiring import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from shared.adapters.config_store import ConfigRepository
from shared.adapters.decision_store import DecisionRepository
from shared.adapters.run_store import RunRepository
from shared.adapters.snapshot_store import SnapshotRepository
from shared.adapters.tables import TableStore
from shared.config.schema import SeatSyncConfig
from shared.config.yaml_io import load_yaml_file
from shared.contracts import SyncRequest
from shared.domain.model import DirectoryUser, SkuCount, TenantSnapshot
from shared.services.lease import ProcessRef, acquire
from shared.services.report import build_report

pytestmark = pytest.mark.integration

T1 = "aaaaaaaa-0000-0000-0000-000000000001"
GOOD: dict[str, Any] = {
    "psaConnections": [{"name": "cw", "type": "connectwise", "url": "https://cw.example.com/v4_6_release/apis/3.0",
                        "companyId": "msp", "publicKey": {"setting": "CW_PUBLIC_KEY"},
                        "privateKey": {"setting": "CW_PRIVATE_KEY"},
                        "clientId": "12345678-1234-1234-1234-123456789012"}],
    "tenants": [{"tenantId": T1, "name": "Fabrikam", "companies": [
        {"psa": "cw", "companyId": "19", "licences": [
            {"skuId": "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "agreementId": "100", "lineId": "500"}]}]}],
}


@pytest.fixture
def env(azurite: Azurite, store: TableStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TableStore:
    monkeypatch.setenv("SEATSYNC_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("SEATSYNC_TABLE_PREFIX", store.prefix)
    monkeypatch.chdir(tmp_path)
    return store


def write(path: Path, document: object) -> Path:
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_import_then_export_round_trips(env: TableStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path / "in.yaml", GOOD)
    assert main(["config", "import", str(source), "--by", "alice", "--comment", "first"]) == EXIT_OK
    assert "version 1" in capsys.readouterr().out
    assert main(["config", "export", "-o", str(tmp_path / "out.yaml")]) == EXIT_OK
    assert load_yaml_file(tmp_path / "out.yaml") == load_yaml_file(source)
    assert main(["config", "history"]) == EXIT_OK
    assert "alice" in capsys.readouterr().out


def test_an_invalid_file_is_rejected_whole(env: TableStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "import", str(write(tmp_path / "in.yaml", GOOD))]) == EXIT_OK
    bad = {**GOOD, "tenants": [*GOOD["tenants"], {"tenantId": "nope", "name": "Broken"}]}
    capsys.readouterr()
    assert main(["config", "import", str(write(tmp_path / "bad.yaml", bad))]) == EXIT_USAGE
    errors = capsys.readouterr().err
    assert "tenants[1] (Broken).tenantId: 'nope' is not a GUID" in errors
    config, version = ConfigRepository(env).current()
    assert version is not None and version.number == 1, "nothing was stored"
    assert len(config.tenants) == 1
    other = {"tenantId": "aaaaaaaa-0000-0000-0000-000000000002", "name": "Other",
             "companies": [{"psa": "missing", "companyId": "1"}]}
    wrong_psa = {**GOOD, "tenants": [*GOOD["tenants"], other]}
    assert main(["config", "import", str(write(tmp_path / "bad2.yaml", wrong_psa))]) == EXIT_USAGE
    assert "tenants[1] (Other).companies[0].psa: no PSA connection named 'missing'" in capsys.readouterr().err
    assert ConfigRepository(env).current()[1].number == 1  # type: ignore[union-attr]


def test_validate_does_not_store(env: TableStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", str(write(tmp_path / "in.yaml", GOOD))]) == EXIT_OK
    assert "valid (1 tenants" in capsys.readouterr().out
    assert ConfigRepository(env).current() == (SeatSyncConfig(), None)


def test_sync_of_an_unknown_tenant_is_refused(env: TableStore, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    main(["config", "import", str(write(tmp_path / "in.yaml", GOOD))])
    capsys.readouterr()
    assert main(["sync", "--tenant", "bbbbbbbb-0000-0000-0000-000000000009"]) == EXIT_USAGE
    assert "--tenant[0]" in capsys.readouterr().err


def test_report_without_runs_says_so(env: TableStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report"]) == EXIT_USAGE
    assert "no run has been recorded yet" in capsys.readouterr().err


def test_overlapping_filters_are_refused_by_validate_and_import(env: TableStore, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    spb = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
    users = (DirectoryUser("1", "ana@fabrikam.example", "Ana", sku_ids=(spb,), department="Sales", city="Leeds"),
             DirectoryUser("2", "ben@fabrikam.example", "Ben", sku_ids=(spb,), department="Sales", city="York"))
    SnapshotRepository(env).save(TenantSnapshot(T1, "20261125T020000Z-00000001", datetime(2026, 11, 25, tzinfo=UTC),
                                                (SkuCount(spb, "SPB", 5, 2),), users))
    split = copy.deepcopy(GOOD)
    licence = split["tenants"][0]["companies"][0]["licences"][0]
    split["tenants"][0]["companies"] = [
        {"psa": "cw", "companyId": "19", "userFilter": {"department": ["Sales"]}, "licences": [licence]},
        {"psa": "cw", "companyId": "20", "userFilter": {"city": ["Leeds"]},
         "licences": [{**licence, "agreementId": "200", "lineId": "600"}]}]
    source = write(tmp_path / "split.yaml", split)
    for verb in ("validate", "import"):
        capsys.readouterr()
        assert main(["config", verb, str(source)]) == EXIT_USAGE
        errors = capsys.readouterr().err
        assert ("tenants[0] (Fabrikam).companies[1].userFilter: 1 user(s) match the filters of companies[0] "
                "(cw 19) and companies[1] (cw 20) and would be billed twice: ana@fabrikam.example") in errors
    assert ConfigRepository(env).current() == (SeatSyncConfig(), None), "nothing was stored"
    split["tenants"][0]["companies"][1]["userFilter"] = {"city": ["York"], "department": ["Engineering"]}
    assert main(["config", "import", str(write(tmp_path / "fixed.yaml", split))]) == EXIT_OK


def test_runs_unlock_clears_only_a_dead_run_unless_forced(env: TableStore, capsys: pytest.CaptureFixture[str]) -> None:
    runs, decisions = RunRepository(env), DecisionRepository(env)
    run_id = "20261125T015900Z-0000000c"
    runs.start(SyncRequest(run_id=run_id, trigger="local", requested_by="carol",
                           requested_at=datetime(2026, 11, 25, 1, 59, tzinfo=UTC)))
    assert main(["runs", "unlock"]) == EXIT_OK
    assert "nothing to clear" in capsys.readouterr().out
    assert acquire(runs, decisions, run_id, timedelta(minutes=5), ProcessRef.current()).refused is None
    assert main(["runs", "lease"]) == EXIT_OK
    assert f"run {run_id} holds the run lease by process" in capsys.readouterr().out
    assert main(["runs", "unlock", "--by", "dave"]) == EXIT_FAILED
    assert "is alive" in capsys.readouterr().err
    assert runs.lease() is not None, "a live run's lease is never cleared without --force"
    assert main(["runs", "unlock", "--force", "--by", "dave", "--comment", "the laptop slept"]) == EXIT_OK
    assert f"Cleared the run lease of run {run_id}" in capsys.readouterr().out
    assert runs.lease() is None
    assert [(e.event, e.actor) for e in decisions.run_events()] == [("lease-cleared", "dave"), ("died", "dave")]
    report = build_report(runs, run_id)
    assert report["status"] == "died"
    assert "cleared by dave" in report["error"]
    assert main(["runs", "lease", "--events", "5"]) == EXIT_OK
    assert "lease-cleared" in capsys.readouterr().out


@pytest.mark.parametrize(("value", "message"), [("tomorrow", "ISO instant"), ("2026-11-25T02:00:00", "offset")])
def test_a_fixed_clock_that_is_not_an_instant_is_refused(env: TableStore, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str], value: str,
                                                         message: str) -> None:
    monkeypatch.setenv("SEATSYNC_CLOCK", value)
    assert main(["runs", "lease"]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert "SEATSYNC_CLOCK must" in error and message in error


def test_an_unchanged_file_makes_no_new_version_and_versions_diff_and_roll_back(
        env: TableStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path / "in.yaml", GOOD)
    assert main(["config", "import", str(source), "--by", "alice"]) == EXIT_OK
    assert main(["config", "import", str(source), "--by", "alice"]) == EXIT_OK
    assert "unchanged" in capsys.readouterr().out
    assert [v.number for v in ConfigRepository(env).history()] == [1]

    renamed = {**GOOD, "tenants": [{**GOOD["tenants"][0], "name": "Fabrikam Ltd"}]}
    assert main(["config", "import", str(write(tmp_path / "v2.yaml", renamed)), "--by", "bob"]) == EXIT_OK
    capsys.readouterr()
    assert main(["config", "diff"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("version 1 (") and "-> version 2 (" in out
    assert "-  name: Fabrikam\n" in out and "+  name: Fabrikam Ltd\n" in out

    assert main(["config", "rollback", "1", "--by", "carol"]) == EXIT_OK
    assert "version 1 is current again, saved as version 3" in capsys.readouterr().out
    config, version = ConfigRepository(env).current()
    assert version is not None and version.number == 3 and version.saved_by == "carol"
    assert config.tenants[0].name == "Fabrikam"
    assert main(["config", "diff", "2", "--to", "v3"]) == EXIT_OK
    assert "+  name: Fabrikam\n" in capsys.readouterr().out
    assert main(["config", "rollback", "3"]) == EXIT_OK
    assert "unchanged" in capsys.readouterr().out
    assert main(["config", "rollback", "9"]) == EXIT_USAGE
    assert "no configuration version 9" in capsys.readouterr().err
    assert main(["config", "diff", "latest"]) == EXIT_USAGE


def test_licences_can_be_named_in_the_file(env: TableStore, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    named = {**GOOD, "tenants": [{**GOOD["tenants"][0], "companies": [
        {"psa": "cw", "companyId": "19", "licences": [
            {"skuId": "Microsoft 365 Business Premium", "agreementId": "100", "lineId": "500"}]}]}]}
    assert main(["config", "import", str(write(tmp_path / "named.yaml", named))]) == EXIT_OK
    config, _ = ConfigRepository(env).current()
    assert config.tenants[0].companies[0].licences[0].sku_id == "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
    ambiguous = {**named, "tenants": [{**named["tenants"][0], "companies": [
        {"psa": "cw", "companyId": "19", "licences": [
            {"skuId": "Microsoft 365 Business Basic", "agreementId": "100", "lineId": "500"}]}]}]}
    assert main(["config", "validate", str(write(tmp_path / "ambiguous.yaml", ambiguous))]) == EXIT_USAGE
    assert "names 2 licences" in capsys.readouterr().err


def test_the_schema_is_printed(env: TableStore, tmp_path: Path) -> None:
    assert main(["config", "schema", "-o", str(tmp_path / "schema.json")]) == EXIT_OK
    assert "skuPartNumber" in (tmp_path / "schema.json").read_text(encoding="utf-8")
