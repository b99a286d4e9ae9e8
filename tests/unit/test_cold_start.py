"""A cold start registers the functions without importing what they run: the Functions host
imports ``function_app`` to index the functions, and every module imported then is paid for by
every cold start, whichever function it serves. (Speed is measured by ``make bench``; this test
only checks which modules are imported.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HEAVY = (
    "shared.bootstrap", "shared.contracts", "shared.config.schema", "shared.config.input_limits",
    "shared.services", "shared.adapters", "shared.domain", "shared.notifications",
    "sync_orchestrator.orchestration", "pydantic", "requests", "urllib3", "yaml", "azure.core", "azure.data.tables",
    "azure.identity", "msal", "azure.durable_functions", "aiohttp",
)


def test_importing_the_app_registers_the_functions_without_importing_what_they_run() -> None:
    script = ("import json, sys\nimport function_app\n"
              "print(json.dumps({'modules': sorted(sys.modules), "
              "'functions': len(function_app.app.get_functions())}))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                          timeout=120)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = [m for m in found["modules"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == [], "import these where the function runs, not at registration"
    assert found["functions"] > 10


def test_the_route_bound_on_bodies_is_the_document_limit() -> None:
    from admin_api.http import MAX_BODY_BYTES
    from shared.config.input_limits import MAX_DOCUMENT_BYTES

    assert MAX_BODY_BYTES == MAX_DOCUMENT_BYTES
