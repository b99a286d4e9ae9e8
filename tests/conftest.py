"""Shared fixtures: the real Table Storage emulator (Azurite) for every test that stores data.

One Azurite per test process (pytest-xdist worker), started by the project's own launcher on
a free loopback port; each test gets its own table prefix so tests never see each other's data.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from local_runner.azurite import Azurite, start_azurite
from shared.adapters.tables import RequestCounter, TableStore


@pytest.fixture(autouse=True)
def logging_as_it_was() -> Iterator[None]:
    """Each test leaves logging as it found it: the command line's ``main`` points the root
    handler at the stderr of its moment (a test's captured stream, closed after that test) and
    sets its loggers' levels; a later test logging before it calls ``main`` would write to the
    closed stream."""
    from local_runner.cli import OWN_LOGGERS, SDK_LOGGERS

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in (*OWN_LOGGERS, *SDK_LOGGERS)}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, previous in levels.items():
        logging.getLogger(name).setLevel(previous)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = start_azurite(log_dir=Path(tmp_path_factory.mktemp("azurite")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def table_prefix() -> str:
    return "t" + secrets.token_hex(5)


@pytest.fixture
def store(azurite: Azurite, table_prefix: str) -> Iterator[TableStore]:
    counter = RequestCounter()
    service = TableServiceClient.from_connection_string(azurite.connection_string, raw_request_hook=counter)
    table_store = TableStore(service, table_prefix, counter)
    yield table_store
    table_store.drop_all()
