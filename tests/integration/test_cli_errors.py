"""The command line's error probes: every kind of bad input exits 3 with one message, a service
that cannot be reached exits 2 with one line saying what failed and how to fix it (no traceback
unless --debug), -v keeps the SDKs' HTTP logging quiet, and SIGTERM stops what the command
started."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from local_runner.azurite import ACCOUNT_KEY, Azurite, free_port
from local_runner.cli import EXIT_TERMINATED, main
from local_runner.wiring import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from shared.adapters.tables import TableStore
from tests.integration.test_cli import GOOD

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(azurite: Azurite, store: TableStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TableStore:
    monkeypatch.setenv("SEATSYNC_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("SEATSYNC_TABLE_PREFIX", store.prefix)
    monkeypatch.chdir(tmp_path)
    return store


def closed_port() -> int:
    port = free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv", [
    ["sync", "--nope"],
    ["--nope", "sync"],
    [],
    ["config"],
    ["approvals"],
    ["runs"],
    ["notify"],
    ["sync", "--workers", "many"],
    ["sync", "--workers", "0"],
    ["runs", "list", "--limit", "-1"],
    ["demo", "--tenants", "lots"],
    ["demo", "--psa", "sap"],
    ["frobnicate"],
    ["reconcile", "--renewal-days", "0"],
    ["reconcile", "--renewal-days", "soon"],
    ["serve", "--port", "99999"],
    ["serve", "--port", "-1"],
    ["runs", "lease", "--events", "-1"],
], ids=["unknown-option", "unknown-root-option", "no-verb", "no-config-verb", "no-approvals-verb", "no-runs-verb",
        "no-notify-verb", "workers-not-a-number", "workers-zero", "negative-limit", "tenants-not-a-number",
        "unknown-psa", "unknown-verb", "renewal-days-zero", "renewal-days-not-a-number", "port-too-large",
        "negative-port", "negative-event-count"])
def test_bad_usage_exits_3_with_the_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "error:" in err and "usage:" in err and "Traceback" not in err


@pytest.mark.parametrize(("argv", "usage"), [
    (["sync", "--frob"], "usage: seatsync sync "),
    (["config", "import", "x.yaml", "--frob"], "usage: seatsync config import "),
    (["runs", "list", "--frob"], "usage: seatsync runs list "),
    (["--frob", "sync"], "usage: seatsync [-h]"),
], ids=["sync", "config-import", "runs-list", "before-the-verb"])
def test_an_unknown_option_is_told_with_the_usage_of_the_verb_it_was_given_to(argv: list[str], usage: str) -> None:
    done = subprocess.run([sys.executable, "-m", "local_runner.cli", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.startswith(usage), done.stderr
    assert done.stderr.rstrip().splitlines()[-1].endswith("error: unrecognized arguments: --frob")
    assert "Traceback" not in done.stderr and done.stdout == ""


def run_cli(*argv: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The command line as a user runs it, in its own process."""
    env = {**os.environ, "SEATSYNC_WORK_DIR": str(tmp_path / "work")}
    return subprocess.run([sys.executable, "-m", "local_runner.cli", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_demo_refuses_more_tenants_than_it_generates(tmp_path: Path) -> None:
    done = run_cli("demo", "--tenants", "1001", tmp_path=tmp_path)
    assert done.returncode == EXIT_USAGE
    assert one_line(done.stderr) == ("seatsync demo: --tenants is at most 1000 (the generated MSP lives in this "
                                     "process's memory), got 1001")
    assert done.stdout == "" and not (tmp_path / "work").exists(), "nothing was started"


def test_the_demo_tells_a_port_it_cannot_have_before_it_syncs(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_cli("--quiet", "demo", "--serve", "--port", str(port), tmp_path=tmp_path)
    assert done.returncode == EXIT_FAILED
    line = one_line(done.stderr)
    assert line.startswith(f"seatsync: cannot listen on 127.0.0.1 port {port} (") and "--port" in line, line
    assert done.stdout == "" and not (tmp_path / "work").exists(), "no sync was started"


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == EXIT_OK
    assert "VERB" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["report", "20990101T000000Z-deadbeef"], "no run 20990101T000000Z-deadbeef"),
    (["approvals", "approve", "nope"], "no held change nope"),
    (["approvals", "reject", "nope"], "no held change nope"),
    (["notify", "preview", "--run", "20990101T000000Z-deadbeef"], "no run"),
    (["history", "aaaaaaaa-0000-0000-0000-000000000009"], "no recorded history"),
    (["history", "Nobody"], "no configured tenant is named"),
    (["audit", "--customer", "Fabrikam", "--from", "yesterday"], "not a date"),
    (["sync", "--tenant", "not-a-guid"], "not a tenant id"),
    (["reconcile", "--run", "20990101T000000Z-deadbeef"], "run: no run 20990101T000000Z-deadbeef is recorded"),
    (["runs", "list", "--before", "20990101T000000Z-deadbeef"], "before: no run 20990101T000000Z-deadbeef"),
    (["runs", "list", "--before", "a/b"], "before: the run id holds the character U+002F"),
    (["notify", "send-test"], "no notification channel is configured"),
    (["reconcile", "--month", "2020-01"], "month: no finished run in 2020-01 to reconcile"),
    (["demo", "--tenants", "3", "--psa", "halopsa"], "--tenants generates MSPs billed through ConnectWise only"),
], ids=["unknown-run", "unknown-approval", "unknown-approval-reject", "unknown-run-preview", "unknown-tenant",
        "unknown-tenant-name", "invalid-date", "invalid-tenant", "unknown-run-reconcile", "unknown-run-before",
        "unusable-run-before", "no-channel-to-test", "no-run-in-the-month",
        "generated-msp-on-another-psa"])
def test_unknown_ids_and_invalid_values_exit_3(env: TableStore, tmp_path: Path, argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.yaml"
    source.write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    assert main(["config", "import", str(source)]) == EXIT_OK
    capsys.readouterr()
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def unreachable_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEATSYNC_STORAGE_CONNECTION_STRING", (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:{closed_port()}/devstoreaccount1;"))


@pytest.mark.parametrize("argv", [["config", "history"], ["report"], ["sync", "--dry-run"]],
                         ids=["config-history", "report", "sync"])
def test_an_unreachable_store_is_one_line_and_exit_2(argv: list[str], monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    unreachable_store(monkeypatch)
    assert main(argv) == EXIT_FAILED
    line = one_line(capsys.readouterr().err)
    assert line.startswith("seatsync: the table store cannot be reached")
    assert "SEATSYNC_STORAGE_CONNECTION_STRING" in line and "Azurite" in line


def test_a_connection_string_that_is_not_one_is_bad_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEATSYNC_STORAGE_CONNECTION_STRING", "AccountKey=hunter2")
    assert main(["runs", "list"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err and "hunter2" not in err
    assert "SEATSYNC_STORAGE_CONNECTION_STRING is not a storage connection string" in err


def test_a_wrong_account_key_names_the_credentials(azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEATSYNC_STORAGE_CONNECTION_STRING",
                       azurite.connection_string.replace(ACCOUNT_KEY, "A" * 86 + "=="))
    assert main(["runs", "list"]) == EXIT_FAILED
    line = one_line(capsys.readouterr().err)
    assert line.startswith("seatsync: the table store refused SeatSync's credentials")
    assert "account key" in line


def test_a_port_in_use_is_one_line_and_exit_2(env: TableStore, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == EXIT_FAILED
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"seatsync: cannot listen on 127.0.0.1 port {port}") and "--port" in line


def test_debug_adds_the_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    unreachable_store(monkeypatch)
    assert main(["--debug", "config", "history"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.rstrip().splitlines()[-1].startswith("seatsync: the table store cannot be reached")


def test_unreachable_graph_is_one_line_and_exit_2(env: TableStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.yaml"
    source.write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    assert main(["config", "import", str(source)]) == EXIT_OK
    capsys.readouterr()
    port = closed_port()
    for name, value in {"GRAPH_CLIENT_ID": "5e1f0c2a-7d3b-4c8e-9a6f-2b4d8e1c3f70", "GRAPH_CLIENT_SECRET": "secret",
                        "GRAPH_PARTNER_TENANT_ID": "0a0a0a0a-0000-4000-8000-000000000001",
                        "GRAPH_AUTHORITY_HOST": f"https://127.0.0.1:{port}",
                        "GRAPH_ENDPOINT": f"https://127.0.0.1:{port}"}.items():
        monkeypatch.setenv(name, value)
    assert main(["onboard"]) == EXIT_FAILED
    line = one_line(capsys.readouterr().err)
    # an authority that does not answer is the network, not the app's credentials
    assert line.startswith("seatsync: Entra ID cannot be reached for a token (")
    assert "check the network and GRAPH_AUTHORITY_HOST" in line and "client secret" not in line


def test_verbose_logs_seatsync_but_keeps_the_sdks_at_warning(env: TableStore,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-v", "config", "history"]) == EXIT_OK
    assert logging.getLogger("shared.services").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("seatsync.run").getEffectiveLevel() == logging.INFO
    for sdk in ("azure.core.pipeline.policies.http_logging_policy", "urllib3.connectionpool", "msal",
                "azure.identity", "seatsync.telemetry"):
        assert logging.getLogger(sdk).getEffectiveLevel() == logging.WARNING, sdk
    assert "http_logging_policy" not in capsys.readouterr().err
    assert main(["config", "history", "--debug"]) == EXIT_OK
    assert logging.getLogger("azure.core.pipeline.policies.http_logging_policy").getEffectiveLevel() == logging.DEBUG
    assert main(["config", "history"]) == EXIT_OK
    assert logging.getLogger("shared").getEffectiveLevel() == logging.ERROR


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found | {grandchild for child in list(found) if Path(f"/proc/{child}").exists()
                    for grandchild in _children_safe(child)}


def _children_safe(pid: int) -> set[int]:
    try:
        return _children(pid)
    except FileNotFoundError:
        return set()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_sigterm_stops_azurite_and_the_emulators(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEATSYNC_", "GRAPH_"))}
    process = subprocess.Popen([sys.executable, "-m", "local_runner.cli", "--quiet", "demo", "--keep"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 240
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Still running" in line or time.monotonic() > deadline:
                break
        assert any("Still running" in line for line in lines), "".join(lines)
        children = _children(process.pid)
        assert children, "Azurite runs as a child process"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == EXIT_TERMINATED
        assert "Traceback" not in (process.stderr.read() if process.stderr else "")
        deadline = time.monotonic() + 15
        while any(_alive(child) for child in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [child for child in children if _alive(child)], "every child process stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_an_unreachable_psa_fails_the_sync_with_one_line(azurite: Azurite, store: TableStore, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from local_runner import sync_cli
    from local_runner.wiring import environment
    from shared.bootstrap import Services
    from shared.settings import Settings
    from tests.integration.msp import running_msp

    port = closed_port()
    # the PSA client's retries back off for real seconds; the test does not wait for them
    monkeypatch.setattr(sync_cli, "build_services", lambda args: Services(
        Settings.from_environment(environment(None)), retry_sleep=lambda seconds: None))

    def unreachable(document: dict[str, object]) -> None:
        connections = document["psaConnections"]
        assert isinstance(connections, list)
        connections[0]["url"] = f"https://127.0.0.1:{port}/v4_6_release/apis/3.0"

    with running_msp(azurite, store, tmp_path, edit_config=unreachable) as msp:
        for name, value in msp.services.settings.environment.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        assert main(["sync", "--quiet"]) == EXIT_FAILED
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert line.startswith("seatsync: run ") and " failed: " in line
    assert "could not be read" in line and "ConnectWise" in line
    assert "FAILED" in captured.out, "the report says what happened to each tenant"
