"""Benchmark: the dashboard's pages on a generated MSP (``seatsync demo --tenants N`` data).

Starts Azurite and the emulators (in a child process), imports a generated MSP of N tenants,
runs one sync, serves the Function App's HTTP functions with the local host (``seatsync serve``)
and prints how long each page takes to answer (server time, through HTTP on loopback: median
and slowest of a few loads) and its size.

    .venv/bin/python scripts/bench_dashboard.py --tenants 500
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from emulators.generator import generate_msp
from emulators.launcher import spawn_emulators
from local_runner.azurite import start_azurite
from local_runner.host import DevIdentity
from local_runner.local_sync import run_local_sync
from local_runner.serve import serving
from shared.bootstrap import Services
from shared.config.yaml_io import parse_yaml
from shared.settings import Settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--loads", type=int, default=5, help="loads of each page (default 5)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seatsync-bench-dashboard-"))
    scenario, config_text = generate_msp(args.tenants)
    azurite = start_azurite(log_dir=work / "azurite")
    try:
        with spawn_emulators(scenario, work / "tls") as emulators:
            env = {**emulators.environment(), "SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string,
                   "SEATSYNC_TABLE_PREFIX": "bench"}
            services = Services(Settings.from_environment(env))
            config = parse_yaml(emulators.render_config(config_text), source="generated configuration")
            services.config_repository.save(config, "bench", f"generated MSP of {args.tenants} tenants")
            started = time.monotonic()
            report = run_local_sync(services, requested_by="bench", max_workers=8)
            print(f"{args.tenants} tenants synced in {time.monotonic() - started:.1f}s ({report['status']}, "
                  f"{len(report['changes'])} changes)", flush=True)
            first = config.tenants[0].tenant_id
            pages = {"Overview": "", "Tenants": "/tenants", "Tenants (search)": "/tenants?q=a",
                     "Tenant (history chart)": f"/tenants/{first}", "Tenant PSA lines": f"/tenants/{first}/lines",
                     "Mapping": "/mapping", "Approvals": "/approvals", "Runs": "/runs", "Run report": "/runs/latest",
                     "Audit": f"/audit?customer={first}", "Onboarding": "/onboarding",
                     "Notifications": "/notifications", "Configuration": "/configuration"}
            with serving(services, DevIdentity("bench@localhost", ("Admin",))) as host:
                session = requests.Session()
                print(f"\n{'page':26s} {'median':>8s} {'slowest':>8s} {'size':>9s}")
                for name, path in pages.items():
                    times, size = [], 0
                    for _ in range(args.loads):
                        begun = time.perf_counter()
                        response = session.get(f"{host.url}/api/dashboard{path}", timeout=300)
                        times.append(time.perf_counter() - begun)
                        if response.status_code != 200:
                            print(f"{name}: HTTP {response.status_code}", file=sys.stderr)
                            return 2
                        size = len(response.content)
                    print(f"{name:26s} {statistics.median(times) * 1000:7.0f}ms {max(times) * 1000:7.0f}ms "
                          f"{size / 1024:7.0f}KB", flush=True)
    finally:
        azurite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
