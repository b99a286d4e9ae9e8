"""Who is calling, and what they may do.

Identity comes from one place only: the client principal that App Service Authentication puts
in the ``x-ms-client-principal`` header (base64 JSON with the signed-in user's claims and app
roles). The platform removes that header from requests that arrive from outside, so it can be
trusted, but only when authentication is on: the platform then sets ``WEBSITE_AUTH_ENABLED``.
Without it any caller could write the header, so it is ignored. ``x-ms-client-principal-name``
alone is never read: it is what a caller with a function key could forge.

A call that carries a function key (``x-functions-key`` or ``?code=``) to a route with
function-level authorisation (the host has checked the key) is the API key, whatever principal
headers it has: the key is a shared secret with every right, and the audit trail says so
instead of naming a person.

Roles are Entra app roles (docs/deploy.md): ``Viewer`` reads, ``Approver`` also decides held
changes and starts syncs, ``Admin`` may change everything. Locally ``seatsync serve`` plays the
platform's part with a development identity (``auth_type`` ``development``), which is trusted
only when ``SEATSYNC_DEVELOPMENT_IDENTITY`` is set in the process, so it cannot be sent from
outside in Azure either.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

PRINCIPAL_HEADER = "x-ms-client-principal"
FUNCTION_KEY_HEADER = "x-functions-key"
API_KEY_ACTOR = "api (function key)"
DEVELOPMENT_AUTH_TYPE = "development"
DEVELOPMENT_SETTING = "SEATSYNC_DEVELOPMENT_IDENTITY"
PLATFORM_AUTH_SETTING = "WEBSITE_AUTH_ENABLED"
ROLE_CLAIM_TYPES = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
NAME_CLAIM_TYPES = ("name", "preferred_username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "upn", "email")
_MAX_PRINCIPAL = 16_384  # characters of the header read; the platform's principal is far smaller


class Role(IntEnum):
    """The app roles, each including the rights of those below it."""

    VIEWER = 1
    APPROVER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.capitalize()

    @classmethod
    def parse(cls, value: str) -> Role | None:
        return cls.__members__.get(value.strip().upper())


@dataclass(frozen=True)
class Caller:
    """The caller of one request. ``kind``: ``user`` (signed in through App Service
    Authentication), ``development`` (the local host's development identity), ``function-key``,
    or ``anonymous`` (nobody: no trusted principal and no key)."""

    kind: str
    name: str
    roles: frozenset[Role]
    user_id: str = ""

    @property
    def signed_in(self) -> bool:
        return self.kind in ("user", "development", "function-key")

    @property
    def role(self) -> Role | None:
        return max(self.roles) if self.roles else None

    def may(self, needed: Role) -> bool:
        return any(role >= needed for role in self.roles)

    @property
    def actor(self) -> str:
        """The name written into the audit trail and the configuration history."""
        return API_KEY_ACTOR if self.kind == "function-key" else self.name


ANONYMOUS = Caller("anonymous", "", frozenset())


def _enabled(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in ("true", "1", "yes")


def platform_auth_enabled(environ: Mapping[str, str] | None = None) -> bool:
    return _enabled(os.environ if environ is None else environ, PLATFORM_AUTH_SETTING)


def decode_principal(value: str) -> dict[str, Any] | None:
    """The JSON of an ``x-ms-client-principal`` header, or None when it is not one."""
    if not value or len(value) > _MAX_PRINCIPAL:
        return None
    try:
        document = json.loads(base64.b64decode(value + "=" * (-len(value) % 4), validate=False))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("claims", []), list):
        return None
    return document


def encode_principal(name: str, roles: list[str], auth_type: str = "aad", user_id: str = "") -> str:
    """An ``x-ms-client-principal`` value as App Service writes it (the local host and tests use it)."""
    claims = [{"typ": "name", "val": name}, *({"typ": "roles", "val": role} for role in roles)]
    if user_id:
        claims.append({"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": user_id})
    document = {"auth_typ": auth_type, "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(document).encode()).decode()


def _claims(document: dict[str, Any], types: tuple[str, ...]) -> list[str]:
    values = []
    for claim in document.get("claims", []):
        if isinstance(claim, dict) and claim.get("typ") in types and isinstance(claim.get("val"), str):
            values.append(claim["val"])
    return values


def principal_caller(document: dict[str, Any]) -> Caller | None:
    """A signed-in caller from a decoded principal; None when it names nobody."""
    name_type = str(document.get("name_typ") or "name")
    role_type = str(document.get("role_typ") or "roles")
    names = _claims(document, (name_type, *NAME_CLAIM_TYPES))
    if not names or not names[0].strip():
        return None
    roles = frozenset(r for r in (Role.parse(v) for v in _claims(document, (role_type, *ROLE_CLAIM_TYPES))) if r)
    ids = _claims(document, ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid"))
    kind = "development" if document.get("auth_typ") == DEVELOPMENT_AUTH_TYPE else "user"
    return Caller(kind, names[0].strip()[:200], roles, ids[0] if ids else names[0].strip())


def has_function_key(headers: Mapping[str, str], params: Mapping[str, str]) -> bool:
    return bool(headers.get(FUNCTION_KEY_HEADER) or params.get("code"))


def identify(headers: Mapping[str, str], params: Mapping[str, str], *, key_checked: bool,
             environ: Mapping[str, str] | None = None) -> Caller:
    """The caller of a request, from its headers and query (see the module's docstring).

    ``key_checked``: the route has function-level authorisation, so the host has verified any
    key the request carries. On anonymous routes (the dashboard) a key proves nothing and is
    ignored."""
    environ = os.environ if environ is None else environ
    if key_checked and has_function_key(headers, params):
        return Caller("function-key", API_KEY_ACTOR, frozenset(Role), "function-key")
    if not platform_auth_enabled(environ):
        return ANONYMOUS
    document = decode_principal(headers.get(PRINCIPAL_HEADER) or "")
    caller = principal_caller(document) if document is not None else None
    if caller is None:
        return ANONYMOUS
    if caller.kind == "development" and not _enabled(environ, DEVELOPMENT_SETTING):
        return ANONYMOUS
    return caller
