"""Requests as the platform passes them when App Service Authentication is on: a signed-in
principal in ``x-ms-client-principal`` (tests set ``WEBSITE_AUTH_ENABLED`` as the platform does)."""

from __future__ import annotations

import pytest

from admin_api.auth import PLATFORM_AUTH_SETTING, encode_principal


def signed_in(name: str, *roles: str) -> dict[str, str]:
    """Headers of a request by a signed-in user with these app roles (Admin when none given)."""
    return {"x-ms-client-principal": encode_principal(name, list(roles or ("Admin",)))}


@pytest.fixture
def platform_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """App Service Authentication is on, as in Azure."""
    monkeypatch.setenv(PLATFORM_AUTH_SETTING, "True")
