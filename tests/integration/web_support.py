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
from typing import Any

import requests
from azure.data.tables import TableServiceClient

from local_runner.azurite import Azurite
from local_runner.host import DevIdentity
from local_runner.serve import RunningHost, serving
from shared.adapters.tables import TableStore
from shared.bootstrap import set_services
from tests.integration.msp import CONTOSO, Msp, running_msp, sample_scenario

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
POWER_BI = "f8a1db68-be16-40ed-86d5-cb42ce701560"


def sample_with_an_unlinked_licence() -> dict[str, Any]:
    """The sample MSP, except that the MSP sold Contoso its Power BI Pro seats (Partner Center lists
    them): a licence of ours that no mapping bills yet, for the mapping task."""
    scenario, _ = sample_scenario()
    contoso = next(c for c in scenario["partnercenter"]["customers"] if c["id"] == CONTOSO)
    contoso["subscriptions"].append({
        "id": "2e1b6c3d-5c00-4000-8000-000000000002", "offerId": "CFQ7TTC0LHSF:0001", "offerName": "Power BI Pro",
        "quantity": 3, "termDuration": "P1M", "billingCycle": "monthly", "effectiveStartDate": "2026-01-01",
        "commitmentEndDate": "2027-12-31", "unitPrice": "12.60"})
    return scenario


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
        with running_msp(azurite, store, tmp, scenario=sample_with_an_unlinked_licence()) as msp:
            msp.sync()
            with serving(msp.services, DevIdentity("admin@msp.example", ("Admin",))) as host:
                yield Served(msp, host)
    finally:
        store.drop_all()
