"""Errors that name what went wrong and where.

Every error a run can meet carries enough context (tenant, record, field, HTTP status) for an
MSP engineer to act on it without reading a stack trace. Nothing here is swallowed silently:
callers either report the error as a failed tenant/change or let it propagate.
"""

from __future__ import annotations


class SeatSyncError(Exception):
    """Base class of the product's own errors."""


class RunNotRecordedError(SeatSyncError):
    """A run could not even be recorded as failed (Table Storage unreachable as it started and
    still as it finished): the orchestration fails with this one line, also its custom status,
    and the command line prints it and exits 2."""


class ConfigError(SeatSyncError):
    """Invalid configuration or settings. ``problems`` lists every problem found, each
    naming the entry (e.g. ``companies[3].licences[0].skuId``) and what is wrong with it."""

    def __init__(self, problems: list[str] | str, source: str = "configuration") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        joined = "; ".join(self.problems)
        super().__init__(f"invalid {source}: {joined}")


class RequestValidationError(SeatSyncError):
    """A malformed HTTP request body or parameter (answered with 400)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class InputRefused(RequestValidationError):
    """Input refused before it is read: larger than accepted (``too_large``: HTTP 413), nested
    too deeply, not UTF-8, a key given twice, not parseable. ``field`` names the source (a
    file's path, or ``body``); the message names the limit and never quotes the content."""

    def __init__(self, field: str, message: str, *, too_large: bool = False) -> None:
        self.too_large = too_large
        super().__init__(field, message)


class NotFoundError(RequestValidationError):
    """What a request names (a run, a held change, a tenant's history) does not exist: 404 over
    HTTP, bad input (exit 3) on the command line."""


class InvalidIdError(SeatSyncError, ValueError):
    """An id that cannot be one of the system it names (``a ConnectWise agreement id is a whole
    number, got 'abc'``): refused before any request is made. A ``ValueError`` too, as the
    adapters' callers have always caught it."""


class ConflictError(SeatSyncError):
    """The write lost a race with another writer (optimistic concurrency); nothing was changed."""


class HttpServiceError(SeatSyncError):
    """A remote service answered with an error, or did not answer, after retries."""

    def __init__(self, service: str, message: str, status: int | None = None,
                 method: str | None = None, url: str | None = None) -> None:
        self.service = service
        self.status = status
        self.method = method
        self.url = url
        where = f" ({method} {url})" if method and url else ""
        code = f"HTTP {status}: " if status else ""
        super().__init__(f"{service}: {code}{message}{where}")


class GraphError(HttpServiceError):
    """Microsoft Graph or Entra ID failed for one tenant."""

    def __init__(self, tenant_id: str, message: str, status: int | None = None,
                 method: str | None = None, url: str | None = None) -> None:
        self.tenant_id = tenant_id
        super().__init__(f"Microsoft Graph (tenant {tenant_id})", message, status, method, url)


class GraphAuthError(GraphError):
    """No token for a tenant: not consented, app missing, bad secret, GDAP expired.
    ``code`` is the AADSTS code when Entra ID gave one."""

    def __init__(self, tenant_id: str, message: str, code: str | None = None,
                 status: int | None = None) -> None:
        self.code = code
        super().__init__(tenant_id, message, status)


class IncompleteReadError(GraphError):
    """A read returned something that cannot be the whole truth (broken paging, missing
    fields). The tenant is treated as failed so that its billing is left as it was."""


class PsaError(HttpServiceError):
    """A PSA rejected or failed a request; ``record`` names the record concerned. ``refused``: the
    PSA refused the request as it stands although its status says otherwise (Autotask answers a
    validation error with HTTP 500): nothing was written, and sending it again cannot help."""

    def __init__(self, psa: str, message: str, record: str | None = None,
                 status: int | None = None, method: str | None = None,
                 url: str | None = None, *, refused: bool = False) -> None:
        self.psa = psa
        self.record = record
        self.refused = refused
        label = f"{psa} {record}" if record else psa
        super().__init__(label, message, status, method, url)


class PsaAuthError(PsaError):
    """The PSA refused the credentials."""


class SecretError(SeatSyncError):
    """A secret reference could not be resolved."""


class SourceError(HttpServiceError):
    """A subscription source (Partner Center, Pax8) failed or answered something that cannot be
    the whole truth; ``source`` names the configured source."""

    def __init__(self, source: str, message: str, status: int | None = None, method: str | None = None,
                 url: str | None = None) -> None:
        self.source = source
        super().__init__(f"subscription source '{source}'", message, status, method, url)


class SourceAuthError(SourceError):
    """The source refused SeatSync's credentials (or no token could be had)."""
