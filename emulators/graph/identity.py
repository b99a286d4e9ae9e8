"""Entra ID's side of the emulator: OpenID discovery, the v2.0 token endpoint (client credentials
with a client secret or a certificate assertion), AADSTS errors in Entra's shape, and the
access tokens Graph accepts.

Tokens are JWT-shaped (header.payload.signature, HS256 with a key private to the emulator) and
carry the claims of a real app-only Graph token (``tid``, ``appid``, ``roles``, ``exp``...), so
a client that reads ``tid`` from its token sees the tenant it asked for. The emulator validates
a token by looking it up in its registry, never by trusting what the token says.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from emulators.base import Response
from emulators.graph.scenario import Directory, Partner, Tenant

GRAPH_RESOURCE = "https://graph.microsoft.com"

# AADSTS code -> (HTTP status, OAuth error, description template). Templates take app_id,
# app_name, tenant and resource.
AADSTS: dict[int, tuple[int, str, str]] = {
    90002: (400, "invalid_request",
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
            "signing into the correct cloud. Check with your subscription administrator, this may "
            "happen if there are no active subscriptions for the tenant."),
    700016: (400, "unauthorized_client",
             "Application with identifier '{app_id}' was not found in the directory '{tenant}'. This "
             "can happen if the application has not been installed by the administrator of the "
             "tenant or consented to by any user in the tenant. You may have sent your "
             "authentication request to the wrong tenant."),
    65001: (400, "invalid_grant",
            "The user or administrator has not consented to use the application with ID "
            "'{app_id}' named '{app_name}'. Send an interactive authorization request for this "
            "user and resource."),
    7000215: (401, "invalid_client",
              "Invalid client secret provided. Ensure the secret being sent in the request is the "
              "client secret value, not the client secret ID, for a secret added to app "
              "'{app_id}'."),
    7000222: (401, "invalid_client",
              "The provided client secret keys for app '{app_id}' are expired. Visit the Azure "
              "portal to create new keys for your app: https://aka.ms/NewClientSecret, or "
              "consider using certificate credentials for added security: "
              "https://aka.ms/certCreds."),
    7000112: (400, "unauthorized_client", "Application '{app_id}'({app_name}) is disabled."),
    53003: (400, "access_denied",
            "Access has been blocked by Conditional Access policies. The access policy does not "
            "allow token issuance."),
    7000218: (401, "invalid_client",
              "The request body must contain the following parameter: 'client_assertion' or "
              "'client_secret'."),
    700027: (401, "invalid_client",
             "Client assertion failed signature validation. Trace the assertion's key: the "
             "certificate must be one registered on app '{app_id}'."),
    700024: (400, "invalid_client",
             "Client assertion is not within its valid time range."),
    70003: (400, "unsupported_grant_type", "The app requested an unsupported grant type ."),
    900144: (400, "invalid_request", "The request body must contain the following parameter: '{param}'."),
    1002012: (400, "invalid_scope",
              "The provided value for scope {scope} is not valid. Client credential flows must have "
              "a scope value with /.default suffixed to the resource identifier (application ID "
              "URI)."),
    500011: (400, "invalid_resource",
             "The resource principal named {resource} was not found in the tenant named "
             "{tenant_name}. This can happen if the application has not been installed by the "
             "administrator of the tenant or consented to by any user in the tenant. You might "
             "have sent your authentication request to the wrong tenant."),
}

AUTH_MODE_CODES = {
    "not-consented": 700016,
    "app-missing": 700016,
    "consent-required": 65001,
    "bad-secret": 7000215,
    "secret-expired": 7000222,
    "disabled": 7000112,
    "unknown-tenant": 90002,
    "blocked-by-conditional-access": 53003,
}


def aadsts_response(code: int, **values: str) -> Response:
    """An Entra ID error answer: JSON with ``error``, ``error_description`` (``AADSTSnnnnn: ...``
    with trace and correlation ids and a timestamp), ``error_codes`` and the ids again."""
    status, error, template = AADSTS[code]
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    trace = str(uuid.uuid4())
    correlation = str(uuid.uuid4())
    defaults = {"app_id": "", "app_name": "", "tenant": "", "resource": "", "tenant_name": "",
                "param": "", "scope": ""}
    defaults.update(values)
    text = template.format(**defaults)
    description = (f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} "
                   f"Timestamp: {stamp}")
    body = {
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return Response(status, body, {"x-ms-request-id": trace, "Cache-Control": "no-store, no-cache"})


@dataclass(frozen=True)
class TokenInfo:
    tenant_id: str
    client_id: str
    roles: frozenset[str]
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenRegistry:
    """Access tokens issued by this emulator (thread-safe; survives ``reset``)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._tokens: dict[str, TokenInfo] = {}
        self._lock = threading.Lock()

    def issue(self, tenant: Tenant, client_id: str, roles: frozenset[str], lifetime: int,
              issuer_base: str) -> tuple[str, TokenInfo]:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "HS256", "kid": "seatsync-emulator"}
        sp_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant.tenant_id}/{client_id}"))
        payload = {
            "aud": GRAPH_RESOURCE,
            "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
            "iat": now, "nbf": now, "exp": now + lifetime,
            "app_displayname": "SeatSync",
            "appid": client_id,
            "appidacr": "1",
            "idp": f"https://sts.windows.net/{tenant.tenant_id}/",
            "idtyp": "app",
            "oid": sp_id,
            "roles": sorted(roles),
            "sub": sp_id,
            "tid": tenant.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
            "xms_emulator": issuer_base,
        }
        signing_input = (_b64(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         _b64(json.dumps(payload, separators=(",", ":")).encode()))
        signature = hmac.new(self._key, signing_input.encode("ascii"), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(signature)}"
        info = TokenInfo(tenant.tenant_id, client_id, roles, time.time() + lifetime)
        with self._lock:
            self._tokens[token] = info
        return token, info

    def lookup(self, token: str) -> TokenInfo | None:
        with self._lock:
            return self._tokens.get(token)

    def expire(self, tenant_id: str | None = None) -> int:
        """Make tokens (of one tenant, or all) expired: Graph answers 401 "token is expired"."""
        past = time.time() - 1
        with self._lock:
            doomed = [t for t, i in self._tokens.items() if tenant_id is None or i.tenant_id == tenant_id]
            for token in doomed:
                info = self._tokens[token]
                self._tokens[token] = TokenInfo(info.tenant_id, info.client_id, info.roles, past)
            return len(doomed)

    def revoke(self, tenant_id: str | None = None) -> int:
        """Forget tokens (of one tenant, or all): Graph then answers 401 for them."""
        with self._lock:
            doomed = [t for t, i in self._tokens.items() if tenant_id is None or i.tenant_id == tenant_id]
            for token in doomed:
                del self._tokens[token]
            return len(doomed)


def openid_configuration(base: str, tenant_id: str) -> dict[str, Any]:
    root = f"{base}/{tenant_id}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                  "client_secret_basic"],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{tenant_id}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                             "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat",
                             "auth_time", "acr", "nonce", "preferred_username", "name", "tid",
                             "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": f"{root}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


@dataclass(frozen=True)
class TokenDecision:
    """What the token endpoint answers: an error, or a token for ``tenant`` with ``roles``."""

    error: Response | None = None
    tenant: Tenant | None = None
    roles: frozenset[str] = frozenset()
    client_id: str = ""


def decide_token(directory: Directory, tenant_ref: str, form: dict[str, list[str]],
                 token_endpoint: str, accepted_resources: set[str],
                 forced_failure: int | None = None) -> TokenDecision:
    """Check a client-credentials token request the way Entra ID does, in Entra's order: the
    tenant, the grant, the app's presence in the tenant, its credential, then the scope. The app
    is one of the partners' (each partner tenant has its own); it is present in its own tenant and
    in the customers that consented it (``Directory.consents``)."""

    def arg(name: str) -> str | None:
        values = form.get(name)
        return values[0] if values else None

    tenant = directory.resolve(tenant_ref)
    if tenant is None or tenant.auth == "unknown-tenant":
        return TokenDecision(aadsts_response(90002, tenant=tenant_ref))
    grant = arg("grant_type")
    if grant is None:
        return TokenDecision(aadsts_response(900144, param="grant_type"))
    if grant != "client_credentials":
        return TokenDecision(aadsts_response(70003))
    client_id = (arg("client_id") or "").lower()
    if not client_id:
        return TokenDecision(aadsts_response(900144, param="client_id"))
    partner = directory.partner_by_client(client_id)
    app = {"app_id": client_id, "app_name": partner.app_name if partner else "", "tenant": tenant.tenant_id}
    if partner is None or not directory.consents(tenant, partner):
        return TokenDecision(aadsts_response(700016, **app))
    mode_code = AUTH_MODE_CODES.get(tenant.auth)
    if mode_code in (700016, 7000112, 65001):
        return TokenDecision(aadsts_response(mode_code, **app))
    credential_error = _check_credential(partner, form, token_endpoint, app)
    if credential_error is not None:
        return TokenDecision(credential_error)
    if forced_failure is not None:
        return TokenDecision(aadsts_response(forced_failure, **app))
    if mode_code is not None:
        return TokenDecision(aadsts_response(mode_code, **app))
    scope = arg("scope")
    if not scope:
        return TokenDecision(aadsts_response(900144, param="scope"))
    scopes = scope.split()
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        return TokenDecision(aadsts_response(1002012, scope=scope))
    resource = scopes[0][: -len("/.default")].rstrip("/")
    if resource.lower() not in accepted_resources:
        return TokenDecision(aadsts_response(500011, resource=resource,
                                             tenant_name=tenant.tenant_id))
    roles = frozenset() if tenant.auth == "no-permissions" else tenant.permissions
    return TokenDecision(tenant=tenant, roles=roles, client_id=partner.client_id)


def _check_credential(partner: Partner, form: dict[str, list[str]], token_endpoint: str,
                      app: dict[str, str]) -> Response | None:
    secret = _first(form, "client_secret")
    assertion = _first(form, "client_assertion")
    if secret is None and assertion is None:
        return aadsts_response(7000218, **app)
    if secret is not None:
        if partner.client_secret is None or not hmac.compare_digest(secret, partner.client_secret):
            return aadsts_response(7000215, **app)
        return None
    assertion_type = _first(form, "client_assertion_type") or ""
    if assertion_type != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
        return aadsts_response(900144, param="client_assertion_type")
    key = partner.certificate.public_key() if partner.certificate is not None else None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return aadsts_response(700027, **app)
    try:
        claims = jwt.decode(
            assertion or "", key,
            algorithms=["RS256", "PS256", "ES256"],
            audience=token_endpoint,
            options={"require": ["exp", "aud", "iss", "sub"]},
            leeway=300,
        )
    except jwt.ExpiredSignatureError:
        return aadsts_response(700024, **app)
    except jwt.PyJWTError:
        return aadsts_response(700027, **app)
    if str(claims.get("iss", "")).lower() != partner.client_id or \
            str(claims.get("sub", "")).lower() != partner.client_id:
        return aadsts_response(700027, **app)
    return None


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None
