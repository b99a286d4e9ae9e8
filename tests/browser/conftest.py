"""One ``seatsync serve`` for the browser tests (over Azurite, the emulators and the sample MSP
synced once; the dashboard on a free loopback port) and headless Chromium driven by Playwright.

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

from emulators.launcher import start_emulators
from local_runner.azurite import start_azurite
from local_runner.local_sync import run_local_sync
from shared.bootstrap import Services
from shared.config.yaml_io import parse_yaml
from shared.settings import Settings
from tests.integration.msp import sample_scenario
from tests.process_support import sigint_as_in_a_terminal

ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
SCREENSHOTS_VARIABLE = "SEATSYNC_SCREENSHOTS"
"""Where the browser tests save the pages' screenshots: by default a temporary directory, so that a
test run leaves the working tree as it was; ``make screenshots`` sets it to docs/screenshots."""
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


class Server:
    """``seatsync serve`` (a child process, as a user runs it) over Azurite and the emulators with
    the sample MSP synced once (its Contoso has a licence of ours no mapping bills yet, for the
    mapping task), signed in as the development identity admin@msp.example (Admin)."""

    def __init__(self, work: Path) -> None:
        self.output: list[str] = []
        self.azurite = start_azurite(log_dir=work / "azurite")
        scenario, config_text = sample_scenario()
        self.emulators = start_emulators(scenario, work / "tls")
        self.running = self.emulators.__enter__()
        env = {**self.running.environment(), "SEATSYNC_STORAGE_CONNECTION_STRING": self.azurite.connection_string,
               "SEATSYNC_TABLE_PREFIX": "browser"}
        services = Services(Settings.from_environment(env))
        services.config_repository.save(parse_yaml(self.running.render_config(config_text)), "tests", "sample")
        run_local_sync(services, requested_by="tests", retry_delay_scale=0.0)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_runner.cli", "serve", "--port", "0", "--user", "admin@msp.example",
             "--role", "Admin"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, preexec_fn=sigint_as_in_a_terminal)
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
        deadline = time.monotonic() + 120
        while not found.wait(0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("seatsync serve did not start:\n" + "".join(self.output[-40:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.emulators.__exit__(None, None, None)
        self.azurite.stop()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory screenshots go to (``SEATSYNC_SCREENSHOTS``, else a temporary one)."""
    chosen = os.environ.get(SCREENSHOTS_VARIABLE)
    return Path(chosen).resolve() if chosen else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("serve"))
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


def new_page(browser: Any, server: Server, user: str | None = "admin@msp.example", role: str = "Admin",
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
