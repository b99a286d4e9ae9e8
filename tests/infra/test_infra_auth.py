"""Sign-in for the dashboard: App Service Authentication (authsettingsV2) with the Entra ID
provider, configured so that the platform's principal is the only identity the app trusts,
and the app roles the dashboard checks."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from infra_helpers import INFRA, MAIN, app_settings, module_file, parse_bicep, resource

ROLES = {"Viewer", "Approver", "Admin"}


@pytest.fixture(scope="module")
def functionapp() -> dict[str, Any]:
    return module_file("functionapp")


@pytest.fixture(scope="module")
def auth(functionapp: dict[str, Any]) -> dict[str, Any]:
    return resource(functionapp, "authSettings")


def test_auth_settings_are_the_v2_config_of_the_function_app(functionapp: dict[str, Any]) -> None:
    declared = functionapp["resources"]["authSettings"]
    assert declared["type"] == "Microsoft.Web/sites/config"
    config = declared["config"]
    assert "condition" in config, "sign-in is configured once the dashboard's Entra app exists"
    inner = resource(functionapp, "authSettings")
    assert inner["name"] == "authsettingsV2"
    assert inner["parent"] == "functionApp"


def test_the_platform_signs_users_in_with_entra_id(auth: dict[str, Any]) -> None:
    properties = auth["properties"]
    assert properties["platform"]["enabled"] is True
    entra = properties["identityProviders"]["azureActiveDirectory"]
    assert entra["enabled"] is True
    registration = entra["registration"]
    assert registration["clientId"] == "dashboardClientId"
    assert registration["openIdIssuer"].endswith("${dashboardTenantId}/v2.0"), "only the partner tenant's users"
    assert registration["clientSecretSettingName"] == "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"
    assert set(entra["validation"]["allowedAudiences"]) == {"dashboardClientId", "api://${dashboardClientId}"}
    assert properties["httpSettings"]["requireHttps"] is True
    assert properties["login"]["nonce"]["validateNonce"] is True


def test_function_key_calls_pass_and_the_app_refuses_anonymous_pages(auth: dict[str, Any]) -> None:
    validation = auth["properties"]["globalValidation"]
    # the API's callers hold a function key, not an Entra session; the dashboard answers 401 itself
    assert validation == {"requireAuthentication": False, "unauthenticatedClientAction": "AllowAnonymous"}


def test_the_sign_in_secret_is_a_key_vault_reference(functionapp: dict[str, Any]) -> None:
    settings = app_settings(functionapp)
    value = settings["MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"]
    assert value == "@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${dashboardClientSecretName})"
    assert functionapp["parameters"]["dashboardClientSecretName"]["default"] == "dashboard-client-secret"


def test_main_passes_the_dashboard_app_and_the_partner_tenant() -> None:
    main = parse_bicep(MAIN)
    assert main["parameters"]["dashboardClientId"]["default"] == ""
    params = main["modules"]["functionApp"]["config"]["params"]
    assert params["dashboardClientId"] == "dashboardClientId"
    assert params["dashboardTenantId"] == "partnerTenantId"
    assert "SEATSYNC_DASHBOARD_URL" in main["outputs"]
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    assert parameters["parameters"]["dashboardClientId"]["value"] == "${SEATSYNC_DASHBOARD_CLIENT_ID}"


def test_the_app_roles_the_dashboard_checks() -> None:
    roles = json.loads((INFRA / "dashboard-app-roles.json").read_text(encoding="utf-8"))
    assert {r["value"] for r in roles} == ROLES
    assert len({r["id"] for r in roles}) == len(roles)
    for role in roles:
        uuid.UUID(role["id"])
        assert role["allowedMemberTypes"] == ["User"] and role["isEnabled"] is True
