"""Fixtures of the infrastructure tests.

They run from ``scripts/infra-check`` in ``.venv-infra`` (pycep-parser, checkov, PyYAML),
read files only and never import the app. Collected from an environment without pycep
(the app's own test run) they are left out, unless SEATSYNC_INFRA_CHECK=1, in which case
a missing tool is an error.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

try:
    import pycep  # noqa: F401
except ImportError:
    if os.environ.get("SEATSYNC_INFRA_CHECK") == "1":
        raise
    collect_ignore_glob = ["test_*.py"]
else:
    from infra_helpers import INFRA, MAIN, parse_bicep

    @pytest.fixture(scope="session")
    def main() -> dict[str, Any]:
        return parse_bicep(MAIN)

    @pytest.fixture(scope="session")
    def modules(main: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Each module main.bicep declares, by symbolic name: its path, config and parsed file."""
        found = {}
        for symbol, module in main["modules"].items():
            path = (MAIN.parent / module["detail"]["path"]).resolve()
            found[symbol] = {
                "path": path,
                "config": module["config"],
                "bicep": parse_bicep(path) if path.is_file() else None,
            }
        return found

    @pytest.fixture(scope="session")
    def parameters_file() -> dict[str, Any]:
        return json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
