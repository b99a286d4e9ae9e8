"""One ``seatsync demo --serve`` for the browser tests (Azurite, the emulators, the sample MSP
synced once, the dashboard on a free loopback port) and headless Chromium driven by Playwright.

Chromium is Debian's package (``make`` installs it); Playwright drives it through its executable
path, so nothing is downloaded from outside the package registries.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
URL = re.compile(r"SeatSync dashboard: (http://127\.0\.0\.1:\d+)/api/dashboard/")


def chromium_path() -> str:
    for candidate in (os.environ.get("SEATSYNC_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("Chromium is not installed: `make test` installs Debian's chromium package (apt-get, as root); "
                "or set SEATSYNC_CHROMIUM to a Chromium executable", pytrace=False)


class DemoServer:
    def __init__(self, work: Path) -> None:
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_runner.cli", "demo", "--serve", "--port", "0",
             "--user", "admin@msp.example", "--role", "Admin"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "SEATSYNC_WORK_DIR": str(work)})
        self.url = ""
        found = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                match = URL.search(line)
                if match:
                    self.url = match.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 240
        while not found.wait(0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("seatsync demo --serve did not start:\n" + "".join(self.output[-40:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    running = DemoServer(tmp_path_factory.mktemp("demo"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped: Playwright's sync API keeps an event loop running in this thread while it
    is open, which would stop other tests of the worker from running their own."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def new_page(browser: Any, server: DemoServer, user: str | None = "admin@msp.example", role: str = "Admin",
             width: int = 1280, height: int = 900) -> Any:
    """A fresh browser context (own cookies) signed in as ``user`` (None: signed out)."""
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    if user is None:
        page.goto(f"{server.url}/.auth/logout")
    else:
        page.goto(f"{server.url}/.auth/login/dev?user={user}&role={role}")
    return page
