"""``seatsync demo --serve``: the demo, then the dashboard on a loopback port as the development
identity given, until Ctrl-C, which stops everything it started."""

from __future__ import annotations

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

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"SeatSync dashboard: (http://127\.0\.0\.1:\d+)/api/dashboard/")


def test_demo_serve_keeps_the_dashboard_up_until_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local_runner.cli", "demo", "--serve", "--port", "0", "--user", "dana@msp.example",
         "--role", "Viewer"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "SEATSYNC_WORK_DIR": str(tmp_path)})
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
