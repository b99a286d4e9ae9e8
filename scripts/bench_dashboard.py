"""Benchmark: the dashboard's pages on a generated MSP (``seatsync demo --tenants N`` data).

For each size asked for, starts Azurite and the emulators (in a child process), imports a
generated MSP of N tenants (every fifth tenant's decreases held for approval, every seventh with
a licence no mapping bills, so that the approvals and mapping pages have something to list),
runs one sync, serves the Function App's HTTP functions with the local host (``seatsync serve``)
and prints, for each page and for the run report's JSON (``GET /api/runs/latest``): how long it
takes to answer (server time, through HTTP on loopback: median and slowest of a few loads), its
size, and how many Table Storage requests one load sends. The sync's own Table Storage requests
per tenant are printed too (what the pages' bookkeeping costs the run).

    .venv/bin/python scripts/bench_dashboard.py --tenants 500 3000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
import yaml
from azure.data.tables import TableServiceClient

from emulators.generator import generate_msp
from emulators.launcher import spawn_emulators
from local_runner.azurite import start_azurite
from local_runner.host import DevIdentity
from local_runner.local_sync import run_local_sync
from local_runner.serve import serving
from shared.adapters.tables import TableStore
from shared.bootstrap import Services
from shared.config.yaml_io import parse_yaml
from shared.settings import Settings

VISIO = ("c5928f49-12ba-48f7-ada3-0d743a3601d5", "VISIOCLIENT")


class Requests:
    """Counts the requests the Table Storage client sends (azure-core's ``raw_request_hook``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self, request: Any) -> None:
        with self._lock:
            self.count += 1


def with_work_to_show(scenario: dict[str, Any], config_text: str) -> str:
    """The generated MSP with held decreases (every fifth tenant: the default policy, hold) and
    unlinked licences (every seventh tenant: two seats of Visio Plan 2 no mapping bills)."""
    config = yaml.safe_load(config_text)
    for index, tenant in enumerate(config["tenants"]):
        if index % 5 == 0:
            for company in tenant["companies"]:
                for licence in company["licences"]:
                    licence.pop("decreasePolicy", None)
    for index, tenant in enumerate(scenario["graph"]["tenants"]):
        if index % 7 == 0:
            tenant["skus"].append({"skuId": VISIO[0], "skuPartNumber": VISIO[1], "enabled": 2})
    return yaml.safe_dump(config, sort_keys=False)


def measure(size: int, loads: int, work: Path) -> bool:
    scenario, config_text = generate_msp(size)
    config_text = with_work_to_show(scenario, config_text)
    azurite = start_azurite(log_dir=work / f"azurite-{size}")
    try:
        with spawn_emulators(scenario, work / "tls") as emulators:
            env = {**emulators.environment(), "SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string,
                   "SEATSYNC_TABLE_PREFIX": "bench"}
            counter = Requests()
            store = TableStore(TableServiceClient.from_connection_string(azurite.connection_string,
                                                                         raw_request_hook=counter), "bench")
            services = Services(Settings.from_environment(env), store=store)
            config = parse_yaml(emulators.render_config(config_text), source="generated configuration")
            services.config_repository.save(config, "bench", f"generated MSP of {size} tenants")
            started, before = time.monotonic(), counter.count
            report = run_local_sync(services, requested_by="bench", max_workers=8)
            print(f"\n{size} tenants synced in {time.monotonic() - started:.1f}s ({report['status']}, "
                  f"{len(report['changes'])} changes); Table Storage requests of the sync: "
                  f"{counter.count - before} ({(counter.count - before) / size:.1f} a tenant)", flush=True)
            first = config.tenants[0].tenant_id
            pages = {"Overview": "", "Tenants": "/tenants", "Tenants (search)": "/tenants?q=0042",
                     "Tenant (history chart)": f"/tenants/{first}", "Tenant PSA lines": f"/tenants/{first}/lines",
                     "Mapping": "/mapping", "Approvals": "/approvals", "Runs": "/runs", "Run report": "/runs/latest",
                     "Audit": f"/audit?customer={first}", "Onboarding": "/onboarding",
                     "Notifications": "/notifications", "Configuration": "/configuration"}
            urls = {name: f"/api/dashboard{path}" for name, path in pages.items()}
            urls["Run report JSON (API)"] = "/api/runs/latest"
            with serving(services, DevIdentity("bench@localhost", ("Admin",))) as host:
                session = requests.Session()
                print(f"{'page':26s} {'median':>9s} {'slowest':>9s} {'size':>8s} {'Table requests':>15s}")
                for name, path in urls.items():
                    times, size_kb, requests_sent = [], 0.0, 0
                    for _ in range(loads):
                        begun, sent = time.perf_counter(), counter.count
                        response = session.get(f"{host.url}{path}", timeout=900)
                        times.append(time.perf_counter() - begun)
                        requests_sent = counter.count - sent
                        if response.status_code != 200:
                            print(f"{name}: HTTP {response.status_code}", file=sys.stderr)
                            return False
                        size_kb = len(response.content) / 1024
                    print(f"{name:26s} {statistics.median(times) * 1000:8.0f}ms {max(times) * 1000:8.0f}ms "
                          f"{size_kb:6.0f}KB {requests_sent:15d}", flush=True)
    finally:
        azurite.stop()
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, nargs="+", default=[500],
                        help="sizes of the generated MSP (default 500; e.g. --tenants 500 3000)")
    parser.add_argument("--loads", type=int, default=3, help="loads of each page (default 3)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seatsync-bench-dashboard-"))
    for size in args.tenants:
        if not measure(size, args.loads, work):
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
