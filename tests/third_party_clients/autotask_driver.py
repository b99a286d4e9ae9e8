"""Autotask through ``autotask-client``: companies, contracts, contract services and services read
with its paging (it asks again for ``id`` greater than the last one until a page holds fewer than
500), and contract services created and updated the way the client writes them."""

from __future__ import annotations

import asyncio
from typing import Any

from autotask.client import AutotaskClient
from autotask.config import AutotaskConfig
from autotask.entities.manager import EntityManager
from autotask.exceptions import AutotaskAPIError, AutotaskError
from autotask.models.contract import ContractService
from autotask.query import Q

from tests.third_party_clients.driver_io import Step, run


class Session:
    """One client for the whole job, driven by its own event loop."""

    def __init__(self, connection: dict[str, Any]) -> None:
        self.loop = asyncio.new_event_loop()
        config = AutotaskConfig(username=connection["username"], secret=connection["secret"],
                                integration_code=connection["integrationCode"], api_url=connection["apiUrl"])
        self.client = AutotaskClient(config)
        self.loop.run_until_complete(self.client.connect())
        self.entities = EntityManager(self.client)

    def wait(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)


def filters(step: Step) -> list[Q]:
    return [Q.raw(item) for item in step.get("filter", [])]


def query(session: Session, step: Step) -> Any:
    found = session.wait(session.entities.query(step["entity"], *filters(step)))
    return [dict(item) for item in found]


def get(session: Session, step: Step) -> Any:
    found = session.wait(session.entities.get(step["entity"], step["id"]))
    return found.model_dump(mode="json") if hasattr(found, "model_dump") else dict(found)


def create_contract_service(session: Session, step: Step) -> Any:
    service = ContractService(**step["fields"])
    created = session.wait(session.entities.create(service))
    return created.model_dump(mode="json")


def update_contract_service(session: Session, step: Step) -> Any:
    """Read the contract service, change ``changes`` and send the record back (the client's
    read, modify, save)."""
    current = session.wait(session.entities.get(ContractService, step["id"]))
    assert isinstance(current, ContractService)
    changed = current.model_copy(update=step["changes"])
    path = f"Contracts/{changed.contractID}/Services"
    return session.wait(session.client.patch(path, json=changed.for_update()))


def create_contact(session: Session, step: Step) -> Any:
    """A contact POSTed under its company, as Autotask wants a child entity created."""
    return session.wait(session.client.post(f"Companies/{step['companyId']}/Contacts", json=step["fields"]))


def refused(exc: BaseException) -> dict[str, Any] | None:
    if isinstance(exc, AutotaskAPIError):
        return {"error": type(exc).__name__, "status": exc.status_code, "body": exc.response_body}
    if isinstance(exc, AutotaskError):
        return {"error": type(exc).__name__, "status": None, "body": str(exc)}
    return None


if __name__ == "__main__":
    run(Session, {"query": query, "get": get, "create_contract_service": create_contract_service,
                  "update_contract_service": update_contract_service, "create_contact": create_contact}, refused)
