"""A running local host (``seatsync serve``'s) over the sample MSP, shared by a test module:
Azurite, the emulators, one sync of the sample, and the Function App's HTTP functions on a
loopback port."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from azure.data.tables import TableServiceClient

from local_runner.azurite import Azurite
from local_runner.host import DevIdentity
from local_runner.serve import RunningHost, serving
from shared.adapters.tables import TableStore
from shared.bootstrap import set_services
from tests.integration.msp import Msp, running_msp

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PROJECT_P3 = "53818b1b-4a27-454b-8896-0dba576410e6"
"""Planner and Project Plan 3: Contoso's licence of ours that no mapping of the sample bills yet."""


@dataclass
class Served:
    msp: Msp
    host: RunningHost

    @property
    def url(self) -> str:
        return self.host.url

    def session(self, user: str | None = "admin@msp.example", *roles: str) -> requests.Session:
        """A browser-like session signed in as ``user`` (None: signed out)."""
        session = requests.Session()
        if user is None:
            session.get(f"{self.url}/.auth/logout", allow_redirects=False)
        else:
            session.get(f"{self.url}/.auth/login/dev", params={"user": user, "role": list(roles or ("Admin",))},
                        allow_redirects=False)
        return session

    def token(self, session: requests.Session, page: str = "/api/dashboard/runs") -> str:
        found = CSRF.search(session.get(self.url + page).text)
        assert found, "the page has a CSRF token"
        return found.group(1)

    def reinstall(self) -> None:
        """Other tests of the worker install their own services between ours."""
        set_services(self.msp.services)


@contextmanager
def served_msp(azurite: Azurite, tmp: Path) -> Iterator[Served]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = TableStore(service, "w" + secrets.token_hex(5))
    try:
        with running_msp(azurite, store, tmp) as msp:
            msp.sync()
            with serving(msp.services, DevIdentity("admin@msp.example", ("Admin",))) as host:
                yield Served(msp, host)
    finally:
        store.drop_all()
