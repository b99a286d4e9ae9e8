"""docs/deploy.md stays in step with the templates it documents."""

from __future__ import annotations

import re

import pytest
from infra_helpers import ROOT
from test_infra_bicep import SECRET_SETTINGS

DEPLOY = ROOT / "docs" / "deploy.md"

GRAPH_PERMISSIONS = [
    "DelegatedAdminRelationship.Read.All",
    "Mail.Send",
    "LicenseAssignment.Read.All",
    "User.Read.All",
    "GroupMember.Read.All",
    "Reports.Read.All",
    "DeviceManagementManagedDevices.Read.All",
]


@pytest.fixture(scope="module")
def text() -> str:
    return DEPLOY.read_text(encoding="utf-8")


def test_every_secret_has_a_command_and_a_row(text: str) -> None:
    secrets = {**SECRET_SETTINGS, "GRAPH_CLIENT_SECRET": "graph-client-secret"}
    for setting, secret in secrets.items():
        assert re.search(rf"^\| `{re.escape(secret)}` \| `{setting}` \|", text, re.M), f"no table row for {secret}"
        assert re.search(rf"(put_secret {re.escape(secret)} |--name {re.escape(secret)} )", text), (
            f"no az keyvault secret set command for {secret}"
        )


def test_every_graph_permission_is_listed(text: str) -> None:
    for permission in GRAPH_PERMISSIONS:
        assert f"| `{permission}` |" in text, permission


def test_the_steps_are_there(text: str) -> None:
    for needle in (
        "azd up",
        "az keyvault secret set",
        "adminconsent",
        "GDAP",
        "curl",
        '"dryRun": true',
        "az functionapp restart",
        "Log stream",
        "## 9. Upgrade",
    ):
        assert needle in text, needle


def test_sign_in_and_roles_are_documented(text: str) -> None:
    section = text[text.index("## Sign-in and roles"):text.index("## 8. Read the logs")]
    for needle in ("authsettingsV2", "x-ms-client-principal", "Viewer", "Approver", "Admin",
                   "infra/dashboard-app-roles.json", "SEATSYNC_DASHBOARD_CLIENT_ID", "api (function key)",
                   "/.auth/login/aad/callback", "seatsync serve"):
        assert needle in section, needle


def test_cost_section_names_the_meters_and_both_sizes(text: str) -> None:
    cost = text[text.index("## 11. What it costs") :]
    for meter in (
        "On Demand Execution Time",
        "On Demand Total Executions",
        "GB-s",
        "Queues",
        "Tables",
        "Blobs",
        "Log Analytics",
        "Key Vault",
    ):
        assert meter in cost, meter
    assert "**100 tenants**" in cost
    assert "**1,000 tenants**" in cost
    assert "estimate" in cost.lower()
