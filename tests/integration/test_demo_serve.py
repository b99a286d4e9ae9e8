"""``seatsync demo --serve``: the demo, then the dashboard on a loopback port as the development
identity given, until Ctrl-C, which stops everything it started; and ``seatsync serve`` while the
store cannot be reached."""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from local_runner.azurite import ACCOUNT_KEY
from tests.process_support import sigint_as_in_a_terminal

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"SeatSync dashboard: (http://127\.0\.0\.1:\d+)/api/dashboard/")


def test_demo_serve_keeps_the_dashboard_up_until_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local_runner.cli", "demo", "--serve", "--port", "0", "--user", "dana@msp.example",
         "--role", "Viewer"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "SEATSYNC_WORK_DIR": str(tmp_path)},
        preexec_fn=sigint_as_in_a_terminal)
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if URL.search(line):
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while not found.wait(0.5):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines[-30:])
        url = next(m.group(1) for m in map(URL.search, lines) if m)
        page = requests.get(f"{url}/api/dashboard/approvals", timeout=60)
        assert page.status_code == 200
        assert "Development identity" in page.text and "dana@msp.example" in page.text
        assert "Deciding needs the Approver role" in page.text, "the identity's role is the one given"
        assert requests.get(f"{url}/api/openapi.json", timeout=60).json()["openapi"] == "3.1.0"
        assert any("Signed in as the development identity dana@msp.example (Viewer)" in line for line in lines)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(60)
        reader.join(10)
    assert code == 0, "".join(lines[-30:])
    azurite_logs = list((tmp_path / "azurite").glob("azurite-*.log"))
    assert azurite_logs, "the demo ran its own Azurite in the work directory given"


def test_serve_answers_503_in_one_line_while_the_store_cannot_be_reached(tmp_path: Path) -> None:
    from tests.integration.test_cli_errors import closed_port

    store = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
             f"TableEndpoint=http://127.0.0.1:{closed_port()}/devstoreaccount1;")
    process = subprocess.Popen(
        [sys.executable, "-m", "local_runner.cli", "serve", "--port", "0"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "SEATSYNC_STORAGE_CONNECTION_STRING": store},
        preexec_fn=sigint_as_in_a_terminal)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        while first and not URL.search(first):
            first = process.stdout.readline()
        found = URL.search(first)
        assert found, "serve printed no URL"
        url = found.group(1)
        page = requests.get(f"{url}/api/dashboard/runs", timeout=60)
        api = requests.get(f"{url}/api/runs?code=the-function-key", timeout=60)
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert page.status_code == 503 and page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Retry-After"] == "60"
    alert = re.search(r'<p class="error" role="alert">([^<]*)</p>', page.text)
    assert alert and alert.group(1).startswith("Table Storage cannot be reached, so SeatSync can neither read nor "
                                               "record anything now: check SEATSYNC_STORAGE_CONNECTION_STRING")
    assert "Traceback" not in page.text and "ServiceRequestError" not in page.text
    assert api.status_code == 503 and api.headers["Content-Type"] == "application/problem+json"
    problem = api.json()
    assert (problem["title"], problem["status"]) == ("Storage unavailable", 503)
    assert problem["detail"] == problem["error"] == html.unescape(alert.group(1))
    assert "Traceback" not in err, err
    logged = [line for line in err.splitlines() if "Table Storage cannot be reached" in line]
    assert [line.split(" ERROR admin_api.http: ")[1].split(":")[0] for line in logged] == [
        "GET /api/dashboard/runs", "GET /api/runs"], err
    assert not any("the-function-key" in line for line in logged), "the query (a function key) is not logged"
