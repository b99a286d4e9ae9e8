"""ConnectWise PSA through ``pyconnectwise``: companies, agreements, additions and catalogue items
read page by page the way the client pages (it finds the next page in the ``Link`` header), and
additions created and patched."""

from __future__ import annotations

from typing import Any

from pyconnectwise import ConnectWiseManageAPIClient
from pyconnectwise.exceptions import ConnectWiseException

from tests.third_party_clients.driver_io import Step, answer_of, run


def connect(connection: dict[str, Any]) -> ConnectWiseManageAPIClient:
    """The client finds the codebase itself from ``/login/companyinfo/{companyId}`` (given one, it
    forgets to keep it)."""
    return ConnectWiseManageAPIClient(connection["companyId"], connection["host"], connection["clientId"],
                                      connection["publicKey"], connection["privateKey"])


def dumped(models: Any) -> list[dict[str, Any]]:
    return [model.model_dump(mode="json", by_alias=True, exclude_none=True) for model in models]


def params(step: Step) -> dict[str, Any]:
    return {"conditions": step["conditions"]} if step.get("conditions") else {}


def companies(client: ConnectWiseManageAPIClient, step: Step) -> Any:
    return dumped(client.company.companies.paginated(1, step["pageSize"], params(step)).all())


def agreements(client: ConnectWiseManageAPIClient, step: Step) -> Any:
    return dumped(client.finance.agreements.paginated(1, step["pageSize"], params(step)).all())


def additions(client: ConnectWiseManageAPIClient, step: Step) -> Any:
    endpoint = client.finance.agreements.id(step["agreementId"]).additions
    return dumped(endpoint.paginated(1, step["pageSize"], params(step)).all())


def contacts(client: ConnectWiseManageAPIClient, step: Step) -> Any:
    return dumped(client.company.contacts.paginated(1, step["pageSize"], params(step)).all())


def tickets(client: ConnectWiseManageAPIClient, step: Step) -> Any:
    return dumped(client.service.tickets.paginated(1, step["pageSize"], params(step)).all())


def ticket_notes(client: ConnectWiseManageAPIClient, step: Step) -> Any:
    return dumped(client.service.tickets.id(step["ticketId"]).notes.paginated(1, step["pageSize"], {}).all())


def agreement_types(client: ConnectWiseManageAPIClient, step: Step) -> Any:
    return dumped(client.finance.agreements.types.paginated(1, step["pageSize"], params(step)).all())


def catalog(client: ConnectWiseManageAPIClient, step: Step) -> Any:
    return dumped(client.procurement.catalog.paginated(1, step["pageSize"], params(step)).all())


def create_addition(client: ConnectWiseManageAPIClient, step: Step) -> Any:
    created = client.finance.agreements.id(step["agreementId"]).additions.post(data=step["body"])
    return created.model_dump(mode="json", by_alias=True, exclude_none=True)


def patch_addition(client: ConnectWiseManageAPIClient, step: Step) -> Any:
    endpoint = client.finance.agreements.id(step["agreementId"]).additions.id(step["additionId"])
    return endpoint.patch(data=step["operations"]).model_dump(mode="json", by_alias=True, exclude_none=True)


def delete_addition(client: ConnectWiseManageAPIClient, step: Step) -> Any:
    """Delete an addition, as an MSP may in ConnectWise (the API allows it)."""
    client.finance.agreements.id(step["agreementId"]).additions.id(step["additionId"]).delete()
    return {"deleted": step["additionId"]}


def refused(exc: BaseException) -> dict[str, Any] | None:
    if isinstance(exc, ConnectWiseException):
        return {"error": type(exc).__name__, "status": exc.response.status_code, "body": answer_of(exc.response)}
    return None


if __name__ == "__main__":
    run(connect, {"companies": companies, "agreements": agreements, "additions": additions, "catalog": catalog,
                  "contacts": contacts, "agreement_types": agreement_types, "tickets": tickets,
                  "ticket_notes": ticket_notes,
                  "create_addition": create_addition, "patch_addition": patch_addition,
                  "delete_addition": delete_addition}, refused)
