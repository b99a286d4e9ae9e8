"""App-only tokens for Microsoft Graph, per (partner app, tenant).

SeatSync reads every customer tenant with its own app-only token (client credentials against
``{authority}/{customerTenantId}``), so the app must be consented in each tenant. ``TenantTokens``
holds the tokens of one app registration (one partner account): it caches each tenant's token
until shortly before it expires (at most ``MAX_CACHED_TOKENS`` of them), and nothing else per
tenant. The azure-identity credential that fetches a token is created for that request and closed
after it, so a process that reads thousands of tenants for months keeps no credential (nor its
connection pool and token cache) per tenant, and tokens for a bounded number of them. It is safe
to share between threads. Failures become ``GraphAuthError`` with the AADSTS code and a one-line
"what to do".
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import CertificateCredential, ClientSecretCredential

from shared.adapters.http import pooled_session
from shared.errors import GraphAuthError
from shared.settings import GraphSettings

CredentialFactory = Callable[[str], TokenCredential]

# Entra ID hosts of Microsoft's clouds; any other authority host (a proxy, the emulator) is not
# in azure-identity's instance metadata, so its discovery must be switched off.
MICROSOFT_AUTHORITY_HOSTS = frozenset({
    "login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "login.microsoftonline.us",
    "login.chinacloudapi.cn", "login.partner.microsoftonline.cn", "login.microsoftonline.de",
    "login.sts.microsoft.com",
})
_AADSTS = re.compile(r"AADSTS(\d{4,7})")

# What to do about each AADSTS code; ``{consent_url}`` is the tenant's admin-consent link.
AADSTS_HINTS: dict[str, str] = {
    "AADSTS700016": "the SeatSync app is not consented in this tenant; a Global Administrator of the "
                    "customer must grant admin consent at {consent_url}",
    "AADSTS65001": "admin consent is missing in this tenant; a Global Administrator of the customer "
                   "must grant it at {consent_url}",
    "AADSTS7000215": "the client secret is wrong; set GRAPH_CLIENT_SECRET to the secret's Value "
                     "(not its Secret ID)",
    "AADSTS7000222": "the client secret has expired; add a new secret to the app registration and "
                     "update GRAPH_CLIENT_SECRET",
    "AADSTS7000218": "no credential was sent; set GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE_PATH",
    "AADSTS90002": "the tenant does not exist (deleted, or a wrong tenant ID); correct or remove it "
                   "in the configuration",
    "AADSTS7000112": "the SeatSync enterprise application is disabled in this tenant; enable it "
                     "(Enterprise applications > Properties > Enabled for users to sign-in)",
    "AADSTS53003": "a Conditional Access policy blocks the app; exclude its service principal from "
                   "the tenant's workload identity policy",
    "AADSTS700027": "the certificate is not registered on the app; upload the public part of "
                    "GRAPH_CLIENT_CERTIFICATE_PATH to the app registration",
    "AADSTS700024": "the client assertion is outside its validity window; check this host's clock",
    "AADSTS500011": "Microsoft Graph is not available to this tenant; check GRAPH_ENDPOINT and the "
                    "tenant's cloud",
    "AADSTS1002012": "the scope is not valid for client credentials; GRAPH_ENDPOINT must be the "
                     "Graph root URL (the scope is GRAPH_ENDPOINT/.default)",
}


def is_microsoft_authority(authority_host: str) -> bool:
    host = urlsplit(authority_host if "://" in authority_host else f"https://{authority_host}").hostname
    return (host or "").lower() in MICROSOFT_AUTHORITY_HOSTS


def aadsts_code(error: BaseException) -> str | None:
    """The first AADSTS code in an exception or anything it was raised from."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        match = _AADSTS.search(str(current))
        if match:
            return f"AADSTS{match.group(1)}"
        response = getattr(current, "response", None)
        text = getattr(response, "text", None)
        if callable(text):
            try:
                found = _AADSTS.search(str(text()))
            except Exception:  # a response without a readable body
                found = None
            if found:
                return f"AADSTS{found.group(1)}"
        current = current.__cause__ or current.__context__
    return None


def describe_auth_failure(error: BaseException) -> str:
    """Entra's own sentence for an AADSTS error, without trace ids; else the exception text."""
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        match = re.search(r"(AADSTS\d+:.*?)(?:\s+Trace ID:|\\r|\\n|\"|$)", text)
        if match:
            return match.group(1).strip()
        current = current.__cause__ or current.__context__
    return str(error).strip() or type(error).__name__


def token_tenant(token: str) -> str | None:
    """The ``tid`` claim of a JWT access token, read without verification (None if opaque)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    tid = payload.get("tid") if isinstance(payload, dict) else None
    return tid.lower() if isinstance(tid, str) else None


@dataclass
class _Cached:
    token: str
    expires_on: float


_LOCK_STRIPES = 64  # token fetches of different tenants rarely wait for each other, with bounded memory

MAX_CACHED_TOKENS = 256
"""Tenants whose token one app registration keeps, the least recently used forgotten first (the
partner tenant's is kept: the start of a run and its messages both use it): about
half a megabyte of tokens, whatever the number of tenants. A run uses a tenant's token while it
collects that tenant (and its retries); a token lasts about an hour and runs are daily, so a
larger cache would only keep expired tokens. More than the tenants collected at once (the
workers, times the chunks that run together), so a collection never loses its token midway."""


class TenantTokens:
    """The tokens of one app registration, per tenant; thread-safe."""

    def __init__(self, settings: GraphSettings, *, verify: bool | str = True,
                 credential_factory: CredentialFactory | None = None,
                 refresh_margin_seconds: float = 300.0) -> None:
        self.settings = settings
        self.verify = verify
        self.scope = f"{settings.endpoint.rstrip('/')}/.default"
        self._factory = credential_factory or self._default_credential
        self._margin = refresh_margin_seconds
        self._lock = threading.Lock()
        self._tokens: OrderedDict[str, _Cached] = OrderedDict()  # least recently used first
        # The partner tenant's token is never the one forgotten: a run reads the GDAP listing with it
        # at its start and sends its email with it at its end, with every customer's token between.
        self._partner = settings.partner_tenant_id.lower()
        self._stripes = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        # one connection pool to Entra ID for the credentials this object creates, one at a time
        self._session = pooled_session()
        self._counter_lock = threading.Lock()
        self._token_requests = 0
        self._identity_requests = 0

    # -- counters --------------------------------------------------------------------------
    @property
    def token_requests(self) -> int:
        """Token requests sent to Entra ID by credentials this object created (retries included)."""
        return self._token_requests

    @property
    def identity_requests(self) -> int:
        """Every request sent to Entra ID (OpenID discovery and token requests)."""
        return self._identity_requests

    def _count(self, request: Any) -> None:
        http_request = getattr(request, "http_request", None)
        method = str(getattr(http_request, "method", "")).upper()
        url = str(getattr(http_request, "url", ""))
        with self._counter_lock:
            self._identity_requests += 1
            if method == "POST" and "/oauth2/" in url and url.rstrip("/").endswith("/token"):
                self._token_requests += 1

    # -- credentials ----------------------------------------------------------------------
    def consent_url(self, tenant_id: str) -> str:
        return (f"{self.settings.authority_host.rstrip('/')}/{tenant_id}/adminconsent"
                f"?client_id={self.settings.client_id}")

    def _default_credential(self, tenant_id: str) -> TokenCredential:
        s = self.settings
        options: dict[str, Any] = {
            "authority": s.authority_host,
            "connection_verify": self.verify,
            "raw_request_hook": self._count,
            "transport": RequestsTransport(session=self._session, session_owner=False,
                                           connection_verify=self.verify),
        }
        if not is_microsoft_authority(s.authority_host):
            options["disable_instance_discovery"] = True
        if s.client_certificate_path:
            return CertificateCredential(tenant_id, s.client_id,
                                         certificate_path=s.client_certificate_path, **options)
        if not s.client_secret:
            raise GraphAuthError(tenant_id, "no client secret or certificate is configured; set "
                                            "GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE_PATH")
        return ClientSecretCredential(tenant_id, s.client_id, s.client_secret, **options)

    def credential(self, tenant_id: str) -> TokenCredential:
        """A new credential for one token request to ``tenant_id`` (the caller closes it)."""
        try:
            return self._factory(tenant_id)
        except GraphAuthError:
            raise
        except (ValueError, ClientAuthenticationError) as exc:
            raise self._auth_error(tenant_id, exc) from exc

    def _tenant_lock(self, key: str) -> threading.Lock:
        return self._stripes[hash(key) % _LOCK_STRIPES]

    # -- tokens ---------------------------------------------------------------------------
    def token(self, tenant_id: str) -> str:
        """A valid access token for ``tenant_id``; raises ``GraphAuthError``."""
        key = tenant_id.lower()
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None:
                self._tokens.move_to_end(key)
        if cached is not None and cached.expires_on - self._margin > time.time():
            return cached.token
        with self._tenant_lock(key):
            with self._lock:
                cached = self._tokens.get(key)
            if cached is not None and cached.expires_on - self._margin > time.time():
                return cached.token
            credential = self.credential(tenant_id)
            try:
                access = credential.get_token(self.scope)
            except (ClientAuthenticationError, ValueError) as exc:
                raise self._auth_error(tenant_id, exc) from exc
            finally:
                _close(credential)
            issued_for = token_tenant(access.token)
            if issued_for is not None and issued_for != key:
                raise GraphAuthError(
                    tenant_id,
                    f"the credential returned a token for tenant {issued_for}, not {tenant_id}; "
                    "refusing to read another tenant's data (check the credential factory)",
                    code=None)
            with self._lock:
                self._tokens[key] = _Cached(access.token, float(access.expires_on))
                self._tokens.move_to_end(key)
                while len(self._tokens) > MAX_CACHED_TOKENS:
                    oldest = next(iter(self._tokens))
                    if oldest == self._partner:
                        self._tokens.move_to_end(oldest)  # kept: the run's start and its messages use it
                        continue
                    self._tokens.popitem(last=False)
            return access.token

    def invalidate(self, tenant_id: str) -> None:
        """Forget the tenant's token, so the next ``token`` call asks Entra ID for a fresh one."""
        with self._lock:
            self._tokens.pop(tenant_id.lower(), None)

    @property
    def cached_tenants(self) -> int:
        """Tenants with a token held (what this object keeps per tenant)."""
        with self._lock:
            return len(self._tokens)

    def close(self) -> None:
        with self._lock:
            self._tokens.clear()
        self._session.close()

    def _auth_error(self, tenant_id: str, exc: BaseException) -> GraphAuthError:
        code = aadsts_code(exc)
        what = describe_auth_failure(exc)
        hint = AADSTS_HINTS.get(code or "")
        message = f"cannot get a token: {what}"
        if hint:
            message += " -> what to do: " + hint.format(consent_url=self.consent_url(tenant_id))
        elif code is None:
            message += " -> what to do: check that Entra ID is reachable and the app settings are right"
        return GraphAuthError(tenant_id, message, code=code)


def _close(credential: TokenCredential) -> None:
    close = getattr(credential, "close", None)
    if callable(close):
        close()


# The name the service layer uses for the shared, per-process token holder.
TenantCredentials = TenantTokens
