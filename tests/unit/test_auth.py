"""Who is calling: only the principal the platform sets, the API key, or nobody."""

from __future__ import annotations

import base64
import json

from admin_api.auth import (
    API_KEY_ACTOR,
    DEVELOPMENT_AUTH_TYPE,
    Role,
    decode_principal,
    encode_principal,
    identify,
)

AUTH_ON = {"WEBSITE_AUTH_ENABLED": "True"}


def principal(name: str, *roles: str, auth_type: str = "aad") -> dict[str, str]:
    return {"x-ms-client-principal": encode_principal(name, list(roles), auth_type)}


def test_the_platform_principal_names_the_caller_and_its_roles() -> None:
    caller = identify(principal("alice@msp.example", "Approver"), {}, key_checked=True, environ=AUTH_ON)
    assert (caller.kind, caller.actor, caller.role) == ("user", "alice@msp.example", Role.APPROVER)
    assert caller.may(Role.VIEWER) and caller.may(Role.APPROVER) and not caller.may(Role.ADMIN)


def test_the_roles_claim_of_an_entra_token_as_app_service_passes_it() -> None:
    document = {"auth_typ": "aad", "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
                "claims": [{"typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "val": "Bo"},
                           {"typ": "roles", "val": "Admin"}, {"typ": "roles", "val": "Unknown"}]}
    header = base64.b64encode(json.dumps(document).encode()).decode().rstrip("=")
    caller = identify({"x-ms-client-principal": header}, {}, key_checked=False, environ=AUTH_ON)
    assert (caller.name, caller.roles) == ("Bo", frozenset({Role.ADMIN}))


def test_a_name_header_alone_is_never_an_identity() -> None:
    forged = {"x-ms-client-principal-name": "ceo@msp.example"}
    assert identify(forged, {}, key_checked=False, environ=AUTH_ON).kind == "anonymous"
    with_key = identify({**forged, "x-functions-key": "k"}, {}, key_checked=True, environ=AUTH_ON)
    assert with_key.actor == API_KEY_ACTOR


def test_a_principal_header_is_ignored_when_platform_authentication_is_off() -> None:
    assert identify(principal("mallory", "Admin"), {}, key_checked=False, environ={}).kind == "anonymous"


def test_a_function_key_call_is_the_api_key_whatever_principal_it_sends() -> None:
    caller = identify({**principal("mallory", "Viewer"), "x-functions-key": "k"}, {}, key_checked=True,
                      environ=AUTH_ON)
    assert caller.actor == API_KEY_ACTOR and caller.may(Role.ADMIN)
    assert identify({}, {"code": "k"}, key_checked=True, environ={}).actor == API_KEY_ACTOR


def test_a_key_on_an_anonymous_route_proves_nothing() -> None:
    assert identify({"x-functions-key": "k"}, {"code": "k"}, key_checked=False, environ=AUTH_ON).kind == "anonymous"


def test_the_development_identity_is_trusted_only_where_the_local_host_runs() -> None:
    headers = principal("dev", "Admin", auth_type=DEVELOPMENT_AUTH_TYPE)
    assert identify(headers, {}, key_checked=False, environ=AUTH_ON).kind == "anonymous"
    local = {**AUTH_ON, "SEATSYNC_DEVELOPMENT_IDENTITY": "true"}
    assert identify(headers, {}, key_checked=False, environ=local).kind == "development"


def test_malformed_principals_are_nobody() -> None:
    for value in ("", "%%%", base64.b64encode(b"[1]").decode(), base64.b64encode(b'{"claims": 3}').decode(),
                  "A" * 20_000, encode_principal("", ["Admin"])):
        assert identify({"x-ms-client-principal": value}, {}, key_checked=False, environ=AUTH_ON).kind == "anonymous"
    assert decode_principal(base64.b64encode(b"\xff\xfe").decode()) is None
