"""One line for a service the command could not use: what failed and how to fix it.

The command line promises (README) that a store, Graph or a PSA that cannot be reached gives one
line and exit status 2, not a traceback; ``--debug`` shows the traceback as well. Errors that are
not about reaching a service are left to the caller.
"""

from __future__ import annotations

import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.errors import GraphAuthError, GraphError, HttpServiceError, PsaAuthError, PsaError, SecretError
from shared.run_failures import STORE_FIX
from shared.text import short

_STORE_FIX = STORE_FIX


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return short(text[0] if text else type(exc).__name__, 160)


def _network_cause(exc: BaseException) -> BaseException | None:
    """The connection failure under ``exc``, if that is what it is: the token libraries report an
    authority they cannot reach as an authentication failure, which it is not."""
    seen: set[int] = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ServiceRequestError | ServiceResponseError | requests.ConnectionError | requests.Timeout):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def explain(exc: BaseException) -> str | None:
    """The line to print for ``exc`` when it means a service could not be used, else None."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return f"the table store cannot be reached ({_first_line(exc)}): {_STORE_FIX}"
    if isinstance(exc, ClientAuthenticationError) or (isinstance(exc, HttpResponseError)
                                                      and exc.status_code in (401, 403)):
        return (f"the table store refused SeatSync's credentials ({_first_line(exc)}): check the account key in "
                "SEATSYNC_STORAGE_CONNECTION_STRING, or that the identity has 'Storage Table Data Contributor'")
    if isinstance(exc, HttpResponseError):
        return f"the table store answered with an error ({_first_line(exc)}): {_STORE_FIX}"
    if isinstance(exc, GraphAuthError) and (network := _network_cause(exc)) is not None:
        return (f"Entra ID cannot be reached for a token ({_first_line(network)}): check the network and "
                "GRAPH_AUTHORITY_HOST, then try again")
    if isinstance(exc, GraphAuthError):
        return (f"{_first_line(exc)}: check GRAPH_CLIENT_ID, GRAPH_PARTNER_TENANT_ID and the client secret or "
                "certificate, and the app's consent (docs/permissions.md)")
    if isinstance(exc, GraphError):
        return (f"{_first_line(exc)}: check the network and GRAPH_ENDPOINT / GRAPH_AUTHORITY_HOST, then try again")
    if isinstance(exc, PsaAuthError):
        return f"{_first_line(exc)}: check the PSA connection's API credentials (docs/psa-setup.md)"
    if isinstance(exc, PsaError):
        return f"{_first_line(exc)}: check the PSA connection's url in the configuration and the network"
    if isinstance(exc, HttpServiceError):
        return f"{_first_line(exc)}: check the network and the service's URL, then try again"
    if isinstance(exc, SecretError):
        return f"{_first_line(exc)}: check the secret's app setting or Key Vault secret, and SEATSYNC_KEY_VAULT_URL"
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        request = getattr(exc, "request", None)
        where = f" {request.url}" if request is not None and request.url else ""
        return f"cannot reach{where} ({type(exc).__name__}): check the network and the URL in the settings"
    return None
