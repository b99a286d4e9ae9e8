"""Structure and security rules of the Bicep templates in infra/ (parsed with pycep)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from infra_helpers import (
    INFRA,
    MAIN,
    app_settings,
    bicep_files,
    dotted,
    module_file,
    parse_bicep,
    resource,
    resources_of_type,
    variable,
)

# Built-in Azure role definition ids (identical in every tenant).
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

# App settings whose values are secrets, and the Key Vault secret each one reads.
SECRET_SETTINGS = {
    "CW_PUBLIC_KEY": "cw-public-key",
    "CW_PRIVATE_KEY": "cw-private-key",
    "CW_CLIENT_ID": "cw-client-id",
    "AUTOTASK_USERNAME": "autotask-username",
    "AUTOTASK_SECRET": "autotask-secret",
    "AUTOTASK_INTEGRATION_CODE": "autotask-integration-code",
    "HALO_CLIENT_ID": "halo-client-id",
    "HALO_CLIENT_SECRET": "halo-client-secret",
    "TEAMS_WEBHOOK_URL": "teams-webhook-url",
}

KEY_VAULT_REFERENCE = re.compile(
    r"^@Microsoft\.KeyVault\(VaultName=\$\{keyVaultName\};SecretName=\$\{[A-Za-z][A-Za-z.]*\}\)$"
)

# App settings Flex Consumption rejects or ignores (its runtime and deployment live in
# functionAppConfig), plus every form of a storage connection string.
FORBIDDEN_SETTINGS = {
    "AzureWebJobsStorage",
    "SEATSYNC_STORAGE_CONNECTION_STRING",
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_TIME_ZONE",
    "TZ",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY",
    "WEBSITE_NODE_DEFAULT_VERSION",
}

# Site properties that are not valid on a Flex Consumption app (runtime, scale and deployment
# are in functionAppConfig; FTP does not exist there).
FLEX_INVALID_SITE_CONFIG = {
    "alwaysOn",
    "ftpsState",
    "linuxFxVersion",
    "windowsFxVersion",
    "use32BitWorkerProcess",
    "functionAppScaleLimit",
    "preWarmedInstanceCount",
    "netFrameworkVersion",
    "javaVersion",
    "powerShellVersion",
    "pythonVersion",
}


@pytest.fixture(scope="module")
def functionapp() -> dict[str, Any]:
    return module_file("functionapp")


@pytest.fixture(scope="module")
def settings(functionapp: dict[str, Any]) -> dict[str, Any]:
    return app_settings(functionapp)


# --- every file parses, every module is wired ---------------------------------------


def test_there_are_bicep_files() -> None:
    names = {path.relative_to(INFRA).as_posix() for path in bicep_files()}
    assert "main.bicep" in names
    assert {
        "modules/functionapp.bicep",
        "modules/storage.bicep",
        "modules/keyvault.bicep",
        "modules/monitoring.bicep",
        "modules/identity.bicep",
        "modules/rbac.bicep",
    } <= names


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path) -> None:
    parsed = parse_bicep(path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path} declares nothing"


def test_main_deploys_at_subscription_scope_into_its_own_resource_group(main) -> None:
    assert main["globals"]["scope"]["value"] == "subscription"
    groups = resources_of_type(main, "Microsoft.Resources/resourceGroups")
    assert list(groups) == ["rg"]
    for symbol, module in main["modules"].items():
        assert module["config"]["scope"] == "rg", f"module {symbol} must deploy into the resource group"


def test_every_module_exists_and_its_parameters_are_satisfied(modules) -> None:
    assert modules, "main.bicep uses no modules"
    for symbol, module in modules.items():
        assert module["path"].is_file(), f"module {symbol}: {module['path']} does not exist"
        declared = module["bicep"].get("parameters", {})
        given = module["config"].get("params", {})
        unknown = set(given) - set(declared)
        assert not unknown, f"module {symbol} passes undeclared parameters {sorted(unknown)}"
        required = {name for name, param in declared.items() if param.get("default") is None}
        missing = required - set(given)
        assert not missing, f"module {symbol} misses required parameters {sorted(missing)}"


def test_every_module_file_is_used(modules) -> None:
    used = {module["path"] for module in modules.values()}
    for path in (INFRA / "modules").glob("*.bicep"):
        assert path.resolve() in used, f"{path.name} is not referenced by main.bicep"


def test_module_outputs_used_by_main_exist(main, modules) -> None:
    """Every `<module>.outputs.<name>` that main.bicep reads is declared by that module."""
    text = MAIN.read_text(encoding="utf-8")
    for symbol, output in re.findall(r"\b([A-Za-z]\w*)\.outputs\.(\w+)", text):
        assert symbol in modules, f"{symbol}.outputs.{output}: no module {symbol}"
        assert output in modules[symbol]["bicep"].get("outputs", {}), f"module {symbol} has no output {output}"


def test_parameters_file_matches_main(main, parameters_file) -> None:
    declared = main["parameters"]
    given = parameters_file["parameters"]
    assert not set(given) - set(declared), f"unknown parameters: {sorted(set(given) - set(declared))}"
    required = {name for name, param in declared.items() if param.get("default") is None}
    assert required <= set(given), f"required parameters not in main.parameters.json: {sorted(required - set(given))}"
    assert given["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert given["location"]["value"] == "${AZURE_LOCATION}"
    assert given["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    assert given["graphClientId"]["value"] == "${GRAPH_CLIENT_ID}"


def test_parameters_have_sensible_defaults(main) -> None:
    params = main["parameters"]
    assert params["instanceMemoryMB"]["default"] == 2048
    assert params["maximumInstanceCount"]["default"] == 40
    assert params["storageSkuName"]["default"] == "Standard_LRS"
    assert params["logRetentionInDays"]["default"] == 30
    assert params["tablePrefix"]["default"] == "seatsync"
    # empty falls back to the documented default in a variable (azd passes unset variables as "")
    assert params["syncSchedule"]["default"] == ""
    assert "'0 0 2 * * *'" in MAIN.read_text(encoding="utf-8")
    for name, param in params.items():
        descriptions = [d for d in param["decorators"] if d["type"] == "description"]
        assert descriptions, f"parameter {name} has no @description"


def test_outputs_give_the_function_url(main, modules) -> None:
    outputs = main["outputs"]
    assert dotted(outputs["SEATSYNC_FUNCTION_URL"]["value"]) == "functionApp.outputs.url"
    assert outputs["SEATSYNC_SYNC_ENDPOINT"]["value"] == "${functionApp.outputs.url}/api/sync"
    url = modules["functionApp"]["bicep"]["outputs"]["url"]["value"]
    assert url == "https://${functionApp.properties.defaultHostName}"
    for name in ("AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME", "AZURE_KEY_VAULT_NAME"):
        assert name in outputs


# --- function app ---------------------------------------------------------------------


def test_plan_is_flex_consumption(functionapp) -> None:
    plans = resources_of_type(functionapp, "Microsoft.Web/serverfarms")
    assert len(plans) == 1
    plan = resource(functionapp, next(iter(plans)))
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True  # Linux


def test_function_app_is_python_311_on_flex(functionapp) -> None:
    site = resource(functionapp, "functionApp")
    assert site["kind"] == "functionapp,linux"
    assert dotted(site["properties"]["serverFarmId"]) == "plan.id"
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    scale = config["scaleAndConcurrency"]
    assert scale["instanceMemoryMB"] == "instanceMemoryMB"
    assert scale["maximumInstanceCount"] == "maximumInstanceCount"
    allowed = [d for d in functionapp["parameters"]["instanceMemoryMB"]["decorators"] if d["type"] == "allowed"]
    assert allowed
    assert set(allowed[0]["argument"]) == {512, 2048, 4096}


def test_function_app_sets_no_property_flex_consumption_rejects(functionapp) -> None:
    site = resource(functionapp, "functionApp")
    used = {key.lower() for key in site["properties"]["siteConfig"]} | {key.lower() for key in site["properties"]}
    invalid = {key.lower() for key in FLEX_INVALID_SITE_CONFIG} | {"containersize", "isxenon"}
    assert not used & invalid, sorted(used & invalid)


def test_function_app_is_https_only_with_tls_12(functionapp) -> None:
    site = resource(functionapp, "functionApp")
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["siteConfig"]["minTlsVersion"] == "1.2"
    assert site["properties"]["siteConfig"]["scmMinTlsVersion"] == "1.2"


def test_function_app_runs_as_the_user_assigned_identity(functionapp, modules) -> None:
    site = resource(functionapp, "functionApp")
    assert site["identity"]["type"] == "UserAssigned"
    assert list(site["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"
    deployment = site["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["type"] == "blobContainer"
    assert deployment["value"] == "deploymentContainerUrl"
    assert deployment["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    params = modules["functionApp"]["config"]["params"]
    assert dotted(params["identityId"]) == "identity.outputs.id"
    assert dotted(params["identityClientId"]) == "identity.outputs.clientId"
    assert dotted(params["deploymentContainerUrl"]) == "storage.outputs.deploymentContainerUrl"


def test_function_app_waits_for_its_role_assignments(modules) -> None:
    assert "rbac" in modules["functionApp"]["config"].get("dependsOn", [])


def test_host_storage_is_identity_based(settings) -> None:
    assert settings["AzureWebJobsStorage__accountName"] == "storageAccountName"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"


def test_no_deprecated_or_connection_string_settings(settings) -> None:
    assert not FORBIDDEN_SETTINGS & set(settings), sorted(FORBIDDEN_SETTINGS & set(settings))


def test_no_shared_keys_anywhere_in_infra() -> None:
    forbidden = re.compile(
        r"AccountKey|listKeys|listAccountSas|listServiceSas|SharedAccessSignature|DefaultEndpointsProtocol"
        r"|SEATSYNC_STORAGE_CONNECTION_STRING|InstrumentationKey=",
        re.IGNORECASE,
    )
    for path in [*bicep_files(), INFRA / "main.parameters.json"]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not forbidden.search(line), f"{path.relative_to(INFRA)}:{number}: {line.strip()}"


def test_seatsync_settings_are_wired(settings, modules) -> None:
    assert settings["SEATSYNC_TABLE_ENDPOINT"] == "tableEndpoint"
    assert settings["SEATSYNC_TABLE_PREFIX"] == "tablePrefix"
    assert settings["SYNC_SCHEDULE"] == "syncSchedule"
    assert settings["SEATSYNC_KEY_VAULT_URL"] == "keyVaultUri"
    assert settings["SEATSYNC_PUBLIC_URL"] == "publicUrl"
    assert settings["GRAPH_CLIENT_ID"] == "graphClientId"
    assert settings["GRAPH_PARTNER_TENANT_ID"] == "graphPartnerTenantId"
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "applicationInsightsConnectionString"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    assert variable(module_file("functionapp"), "publicUrl") == "https://${name}.azurewebsites.net"

    params = modules["functionApp"]["config"]["params"]
    assert dotted(params["tableEndpoint"]) == "storage.outputs.tableEndpoint"
    assert dotted(params["keyVaultUri"]) == "keyVault.outputs.uri"
    assert dotted(params["keyVaultName"]) == "keyVault.outputs.name"
    storage_outputs = modules["storage"]["bicep"]["outputs"]
    assert (
        storage_outputs["tableEndpoint"]["value"] == "https://${storage.name}.table.${environment().suffixes.storage}"
    )


def test_every_secret_setting_is_a_key_vault_reference(settings, main, modules, parameters_file) -> None:
    assert KEY_VAULT_REFERENCE.match(settings["GRAPH_CLIENT_SECRET"])
    assert "${graphClientSecretName}" in settings["GRAPH_CLIENT_SECRET"]
    assert main["parameters"]["graphClientSecretName"]["default"] == "graph-client-secret"

    looped = settings["<for each secretSettings>"]
    assert KEY_VAULT_REFERENCE.match(looped)
    assert looped.endswith("SecretName=${setting.secretName})")
    loop_name = variable(module_file("functionapp"), "keyVaultSettings")["config"]["name"]
    assert dotted(loop_name) == "setting.settingName"

    # the mapping main.bicep and main.parameters.json pass covers every PSA and notification secret
    default = {entry["settingName"]: entry["secretName"] for entry in main["parameters"]["secretSettings"]["default"]}
    assert default == SECRET_SETTINGS
    in_file = {
        entry["settingName"]: entry["secretName"] for entry in parameters_file["parameters"]["secretSettings"]["value"]
    }
    assert in_file == SECRET_SETTINGS
    assert modules["functionApp"]["config"]["params"]["secretSettings"] == "secretSettings"
    for setting, secret in SECRET_SETTINGS.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", setting)
        assert re.fullmatch(r"[0-9a-zA-Z-]{1,127}", secret)  # Key Vault secret name rules


def test_settings_with_secret_names_hold_no_plain_value(settings) -> None:
    secret_like = re.compile(r"SECRET|PASSWORD|PRIVATE|TOKEN|WEBHOOK|_KEY$")
    for name, value in settings.items():
        if secret_like.search(name):
            assert isinstance(value, str), f"{name} = {value!r}"
            assert KEY_VAULT_REFERENCE.match(value), f"{name} = {value!r}"


# --- storage, key vault, monitoring ---------------------------------------------------------


def test_storage_account_is_locked_down() -> None:
    storage = module_file("storage")
    account = resource(storage, "storage")
    props = account["properties"]
    assert account["kind"] == "StorageV2"
    assert props["allowBlobPublicAccess"] is False
    assert props["allowSharedKeyAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["defaultToOAuthAuthentication"] is True
    assert props["allowCrossTenantReplication"] is False
    container = resource(storage, "deploymentContainer")
    assert container["properties"]["publicAccess"] == "None"


def test_key_vault_uses_rbac() -> None:
    vault = resource(module_file("keyvault"), "vault")["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert "accessPolicies" not in vault
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    assert vault["enabledForTemplateDeployment"] is False


def test_key_vault_creates_no_secrets() -> None:
    for path in bicep_files():
        assert not resources_of_type(parse_bicep(path), "Microsoft.KeyVault/vaults/secrets"), path


def test_application_insights_requires_entra_auth_and_uses_log_analytics() -> None:
    monitoring = module_file("monitoring")
    component = resource(monitoring, "applicationInsights")["properties"]
    assert component["DisableLocalAuth"] is True
    assert dotted(component["WorkspaceResourceId"]) == "workspace.id"
    workspace = resource(monitoring, "workspace")["properties"]
    assert workspace["sku"] == {"name": "PerGB2018"}
    assert workspace["retentionInDays"] == "retentionInDays"


# --- role assignments -----------------------------------------------------------------


def _assignments() -> dict[str, dict[str, Any]]:
    rbac = module_file("rbac")
    found = {}
    for symbol in resources_of_type(rbac, "Microsoft.Authorization/roleAssignments"):
        config = resource(rbac, symbol)
        role = config["properties"]["roleDefinitionId"]["function"]
        assert role["type"] == "subscription_resource_id"
        assert role["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        role_id = variable(rbac, role["parameters"]["resource_name_1"])
        name = config["name"]["function"]
        assert name["type"] == "guid", f"{symbol}: name must be a deterministic guid()"
        found[symbol] = {
            "scope": config["scope"],
            "role": role_id,
            "principal": config["properties"]["principalId"],
            "principalType": config["properties"]["principalType"],
            "conditional": "condition" in rbac["resources"][symbol]["config"],
            "name_parts": (
                dotted(name["parameters"]["base_string"]),
                *[v for k, v in name["parameters"].items() if k.startswith("extra_string")],
            ),
        }
    return found


def test_managed_identity_gets_exactly_the_least_privilege_roles() -> None:
    app = {(a["scope"], a["role"]) for a in _assignments().values() if a["principal"] == "appPrincipalId"}
    assert app == {
        ("storage", STORAGE_BLOB_DATA_OWNER),
        ("storage", STORAGE_QUEUE_DATA_CONTRIBUTOR),
        ("storage", STORAGE_TABLE_DATA_CONTRIBUTOR),
        ("vault", KEY_VAULT_SECRETS_USER),
        ("applicationInsights", MONITORING_METRICS_PUBLISHER),
    }


def test_role_assignments_are_well_formed() -> None:
    rbac = module_file("rbac")
    existing = {symbol: res["type"] for symbol, res in rbac["resources"].items() if res.get("existing")}
    assert existing == {
        "storage": "Microsoft.Storage/storageAccounts",
        "vault": "Microsoft.KeyVault/vaults",
        "applicationInsights": "Microsoft.Insights/components",
    }
    for symbol, assignment in _assignments().items():
        scope, principal, role_var = assignment["name_parts"]
        assert scope == f"{assignment['scope']}.id", f"{symbol}: guid() must include the scope id"
        assert principal == assignment["principal"], f"{symbol}: guid() must include the principal"
        assert variable(rbac, role_var) == assignment["role"], f"{symbol}: guid() must include the role"
        if assignment["principal"] == "appPrincipalId":
            assert assignment["principalType"] == "ServicePrincipal"
            assert not assignment["conditional"]
        else:
            assert assignment["principal"] == "operatorPrincipalId"
            assert assignment["conditional"], f"{symbol}: operator roles only when an operator is given"


def test_operator_can_set_secrets_and_manage_configuration_only() -> None:
    operator = {(a["scope"], a["role"]) for a in _assignments().values() if a["principal"] == "operatorPrincipalId"}
    assert operator == {
        ("vault", KEY_VAULT_SECRETS_OFFICER),
        ("storage", STORAGE_TABLE_DATA_CONTRIBUTOR),
    }


def test_rbac_module_gets_the_managed_identity(modules) -> None:
    params = modules["rbac"]["config"]["params"]
    assert dotted(params["appPrincipalId"]) == "identity.outputs.principalId"
    assert params["operatorPrincipalId"] == "principalId"
    identity_outputs = modules["identity"]["bicep"]["outputs"]
    assert dotted(identity_outputs["principalId"]["value"]) == "identity.properties.principalId"
    assert dotted(identity_outputs["clientId"]["value"]) == "identity.properties.clientId"
