"""HaloPSA through the ``HaloPSA`` package: clients, items and recurring invoices with their lines
read page by page (``pageinate``, ``page_size``, ``page_no`` and ``record_count``), and a recurring
invoice's lines posted back with one changed or added, as the package's documentation advises.

The package builds its URLs from the tenant name (``https://{tenant}.halopsa.com``) and has no
setting for another address, so the driver gives its request helper the emulator's address
instead; everything else (token request, parameters, bodies, error handling) is the package's."""

from __future__ import annotations

from typing import Any

import requests
from HaloPSA.Halo import _Clients, _Contracts, _Items, _MethodsHelper, _RecurringInvoices, _Tickets, _Users

from tests.third_party_clients.driver_io import Step, run


class Session:
    def __init__(self, connection: dict[str, Any]) -> None:
        helper = _MethodsHelper.__new__(_MethodsHelper)
        helper.session = requests.Session()
        helper.auth_url = f"{connection['baseUrl']}/auth/token?tenant={connection['tenant']}"
        helper.url = f"{connection['baseUrl']}/api"
        helper.formatted_params = []
        helper.token = helper._create_token(connection["clientId"], connection["secret"])
        helper.session.headers.update({"Content-Type": "application/json", "Authorization": "Bearer " + helper.token})
        self.clients = _Clients(mh=helper)
        self.items = _Items(mh=helper)
        self.invoices = _RecurringInvoices(mh=helper)
        self.users = _Users(mh=helper)
        self.contracts = _Contracts(mh=helper)
        self.tickets = _Tickets(mh=helper)


def every_page(search: Any, key: str, page_size: int, **others: Any) -> list[Any]:
    """Every record of a list, page by page until ``record_count`` records were read."""
    rows: list[Any] = []
    page = 1
    while True:
        answer = search(pageinate=True, page_size=page_size, page_no=page, **others)
        rows += answer[key]
        if len(rows) >= answer["record_count"] or not answer[key]:
            return rows
        page += 1


def clients(session: Session, step: Step) -> Any:
    return every_page(session.clients.search, "clients", step["pageSize"], includeinactive=True)


def items(session: Session, step: Step) -> Any:
    return every_page(session.items.search, "items", step["pageSize"])


def invoices(session: Session, step: Step) -> Any:
    return every_page(session.invoices.search, "invoices", step["pageSize"], includelines=True,
                      client_id=step.get("clientId"))


def users(session: Session, step: Step) -> Any:
    filters = {"client_id": step["clientId"]} if step.get("clientId") else {}
    if step.get("includeInactive"):
        filters["includeinactive"] = True
    return every_page(session.users.search, "users", step["pageSize"], **filters)


def tickets(session: Session, step: Step) -> Any:
    return every_page(session.tickets.search, "tickets", step["pageSize"], client_id=step.get("clientId"))


def create_user(session: Session, step: Step) -> Any:
    """A new user (client contact) posted the way the package posts one (no id)."""
    return session.users.update(**step["user"])


def contracts(session: Session, step: Step) -> Any:
    return every_page(session.contracts.search, "contracts", step["pageSize"])


def invoice(session: Session, step: Step) -> Any:
    return session.invoices.get(step["id"])


def post_lines(session: Session, step: Step) -> Any:
    """Send the recurring invoice's lines back as read, with ``changes`` to one line (``lineId``),
    with ``add`` appended, or without the line ``removeLineId`` (Halo deletes a line left out)."""
    current = session.invoices.get(step["id"])
    lines = [line for line in current["lines"] if line["id"] != step.get("removeLineId")]
    for line in lines:
        if line["id"] == step.get("lineId"):
            line.update(step.get("changes", {}))
    if step.get("add"):
        lines.append(step["add"])
    return session.invoices.update(id=step["id"], lines=lines)


def refused(exc: BaseException) -> dict[str, Any] | None:
    if isinstance(exc, ValueError | PermissionError) or type(exc) is Exception:
        return {"error": type(exc).__name__, "status": None, "body": str(exc)}
    return None


if __name__ == "__main__":
    run(Session, {"clients": clients, "items": items, "invoices": invoices, "invoice": invoice, "users": users,
                  "contracts": contracts, "tickets": tickets,
                  "post_lines": post_lines, "create_user": create_user}, refused)
