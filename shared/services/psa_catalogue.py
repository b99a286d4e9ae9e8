"""What a PSA offers for a mapping, read live: a company's agreements, an agreement's lines and
the product catalogue. The mapping page lists them so that a licence is linked by picking, not
by typing ids."""

from __future__ import annotations

from typing import Any

import requests

from shared.config.schema import SeatSyncConfig
from shared.domain.model import Agreement, BilledLine, Product
from shared.errors import InvalidIdError, PsaError, RequestValidationError, SeatSyncError
from shared.services.config_api import NotFoundError


class PsaUnavailableError(SeatSyncError):
    """The PSA could not be read (answered with 502)."""


def agreement_json(agreement: Agreement) -> dict[str, Any]:
    return {"agreementId": agreement.agreement_id, "name": agreement.name, "companyId": agreement.company_id,
            "type": agreement.type_name, "active": agreement.active, "prorate": agreement.prorate}


def line_json(line: BilledLine) -> dict[str, Any]:
    return {"lineId": line.line_id, "agreementId": line.agreement_id, "productId": line.product_id,
            "productIdentifier": line.product_identifier, "description": line.description,
            "quantity": str(line.quantity),
            "unitPrice": None if line.unit_price is None else str(line.unit_price)}


def product_json(product: Product) -> dict[str, Any]:
    return {"productId": product.product_id, "identifier": product.identifier, "description": product.description,
            "price": None if product.price is None else str(product.price), "inactive": product.inactive}


def _client(config: SeatSyncConfig, psa_clients: Any, connection: str) -> Any:
    if config.connection(connection) is None:
        raise NotFoundError("PSA connection", connection)
    return psa_clients(config)(connection)


def _read(what: str, work: Any, field: str | None = None) -> Any:
    try:
        return work()
    except InvalidIdError as exc:  # refused by the adapter before any request: the caller's id
        raise RequestValidationError(field or "id", str(exc)) from None
    except (PsaError, requests.RequestException) as exc:
        raise PsaUnavailableError(f"{what} could not be read from the PSA: {exc}") from exc


def _id(value: str, field: str) -> str:
    value = value.strip()
    if not value or len(value) > 64 or any(c in value for c in "/?#&\\ \t\r\n"):
        raise RequestValidationError(field, f"{value!r} is not a PSA id")
    return value


def company_agreements(config: SeatSyncConfig, psa_clients: Any, connection: str, company_id: str
                       ) -> list[dict[str, Any]]:
    client = _client(config, psa_clients, connection)
    company_id = _id(company_id, "companyId")
    agreements = _read("the company's agreements", lambda: client.list_agreements(company_id), "companyId")
    return [agreement_json(a) for a in sorted(agreements, key=lambda a: (not a.active, a.name.casefold()))]


def agreement_lines(config: SeatSyncConfig, psa_clients: Any, connection: str, agreement_id: str
                    ) -> list[dict[str, Any]]:
    client = _client(config, psa_clients, connection)
    agreement_id = _id(agreement_id, "agreementId")
    lines = _read("the agreement's lines", lambda: client.list_lines([agreement_id]), "agreementId")
    return [line_json(line) for line in lines]


def products(config: SeatSyncConfig, psa_clients: Any, connection: str) -> list[dict[str, Any]]:
    client = _client(config, psa_clients, connection)
    found = _read("the product catalogue", client.list_products)
    return [product_json(p) for p in sorted(found, key=lambda p: p.identifier.casefold())]

