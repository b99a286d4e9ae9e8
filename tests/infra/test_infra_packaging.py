"""azure.yaml, .funcignore, requirements-infra.txt and scripts/infra-check."""

from __future__ import annotations

import fnmatch
import os
import re

import pytest
import yaml
from infra_helpers import ROOT

DEPLOYED = [
    "function_app.py",
    "durable_blueprint.py",
    "host.json",
    "requirements.txt",
    "sync_orchestrator/__init__.py",
    "tenant_activity/activity.py",
    "psa_push/connectwise.py",
    "notify/teams.py",
    "shared/settings.py",
    "shared/adapters/graph.py",
    "dashboard/pages.py",
    "dashboard/templates/base.html",
    "dashboard/static/app.css",
    "dashboard/static/htmx.min.js",
    "dashboard/static/chart.js.LICENSE.txt",
]

NOT_DEPLOYED = [
    "tests/unit/test_settings.py",
    "tests/infra/conftest.py",
    "emulators/graph.py",
    "local_runner/__main__.py",
    "scripts/infra-check",
    "docs/deploy.md",
    "infra/main.bicep",
    "infra/modules/storage.bicep",
    "node_modules/x/index.js",
    ".venv/bin/python",
    ".venv-infra/bin/checkov",
    ".venv311/bin/python",
    "Makefile",
    ".ci/run",
    "package.json",
    "package-lock.json",
    "README.md",
    "local.settings.json",
    ".git/config",
    ".gitignore",
    "shared/__pycache__/settings.cpython-311.pyc",
    "__pycache__/function_app.cpython-311.pyc",
    ".seatsync/state.json",
    "requirements-dev.txt",
    "requirements-infra.txt",
    "azure.yaml",
    "pyproject.toml",
    ".azure/dev/.env",
    ".pytest_cache/v/cache",
]


def _patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    """gitignore-style: a pattern without '/' matches any path component (and so all below it)."""
    parts = path.split("/")
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern[1:] if negate else pattern
        pattern = pattern.rstrip("/")
        if "/" in pattern.lstrip("/"):
            hit = fnmatch.fnmatchcase(path, pattern.lstrip("/")) or path.startswith(pattern.lstrip("/") + "/")
        else:
            hit = any(fnmatch.fnmatchcase(part, pattern) for part in parts)
        if hit:
            ignored = not negate
    return ignored


@pytest.mark.parametrize("path", NOT_DEPLOYED)
def test_funcignore_keeps_development_files_out(path: str) -> None:
    assert _ignored(path, _patterns()), f"{path} would be deployed"


@pytest.mark.parametrize("path", DEPLOYED)
def test_funcignore_keeps_the_app(path: str) -> None:
    assert not _ignored(path, _patterns()), f"{path} would be left out of the package"


def test_azure_yaml_deploys_the_root_as_a_python_function_app() -> None:
    project = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    assert project["name"] == "seatsync"
    assert project["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert project["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    assert (ROOT / project["infra"]["path"] / f"{project['infra']['module']}.bicep").is_file()


def test_service_name_matches_the_azd_tag() -> None:
    text = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")
    assert "serviceName: 'api'" in text  # tagged azd-service-name: api in modules/functionapp.bicep


def test_requirements_infra_pins_everything() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "requirements-infra.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    names = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        assert match, f"not an exact pin: {line}"
        names[match.group(1).lower().replace("_", "-")] = match.group(2)
    assert names["checkov"] == "3.3.30"
    assert names["pycep-parser"]
    assert names["pytest"]
    assert names["pyyaml"]


def test_infra_check_script_is_executable() -> None:
    script = ROOT / "scripts" / "infra-check"
    assert os.access(script, os.X_OK)
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash")
    for needle in ("requirements-infra.txt", ".venv-infra", "pytest", "tests/infra"):
        assert needle in text, needle
