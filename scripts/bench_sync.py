"""Benchmark: a full sync of a generated MSP on Azurite and the emulators, then an unchanged one.

Prints wall time, Microsoft Graph and PSA calls against the minimum a sync needs, and the peak
memory of the process. Before the sync, the figures of the parts: how long the Graph emulator
takes to load 500 tenants and one of 10,000 users, and the client to page through those users.
The emulators run in this process (threads), so the figures include
serving every request too; the real services would answer in parallel elsewhere.

    .venv/bin/python scripts/bench_sync.py --tenants 500
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from emulators.generator import generate_msp
from emulators.launcher import spawn_emulators, start_emulators
from local_runner.azurite import start_azurite
from local_runner.local_sync import run_local_sync
from shared.bootstrap import Services
from shared.config.yaml_io import parse_yaml
from shared.settings import Settings


def minimum_calls(scenario: dict[str, Any], changes: int, read_back: int = 0) -> tuple[int, int]:
    """The fewest Graph and PSA requests a sync of this MSP can make: GDAP's customer list, one
    batch per tenant and every further page of users; the agreements (100 per request), each
    product's price, each agreement's lines, one request per write, and one read back of each
    agreement written to (``read_back``: no write is recorded as applied before it is read back)."""
    tenants = scenario["graph"]["tenants"]
    graph = math.ceil(len(tenants) / 300)  # GDAP customers, $top=300 a page
    for tenant in tenants:
        users = sum(g["count"] for g in tenant.get("generatedUsers", []))
        graph += 1 + max(math.ceil(users / 999) - 1, 0)
    agreements = len(scenario["connectwise"]["agreements"])
    products = len(scenario["connectwise"]["catalog"])
    psa = math.ceil(agreements / 100) + products + agreements + changes + read_back
    return graph, psa


def part_figures(work: Path) -> None:
    """Speed of the emulator and the Graph client at scale (measured here, never asserted in tests)."""
    from emulators.base import RunningEmulator
    from emulators.graph import GraphEmulator, stable_id
    from emulators.tls import ensure_tls_files
    from shared.adapters.graph import GraphClient

    tenants: list[dict[str, Any]] = [
        {"tenantId": stable_id("bench", str(i)), "displayName": f"Tenant {i}",
         "skus": [{"skuPartNumber": "SPB", "enabled": 60}], "generatedUsers": [{"count": 50, "licenses": ["SPB"]}]}
        for i in range(500)]
    big = stable_id("bench", "big")
    tenants.append({"tenantId": big, "displayName": "Big Corp", "skus": [{"skuPartNumber": "SPB", "enabled": 10000}],
                    "generatedUsers": [{"count": 10000, "licenses": ["SPB"]}]})
    partner = {"tenantId": "0a0a0a0a-0000-4000-8000-000000000001", "clientId": "c1c1c1c1-0000-4000-8000-000000000002",
               "clientSecret": "bench-secret", "displayName": "Partner"}
    t0 = time.perf_counter()
    emulator = GraphEmulator({"partner": partner, "tenants": tenants})
    loaded = time.perf_counter() - t0
    tls = ensure_tls_files(work / "tls")
    with RunningEmulator(emulator, tls) as running:
        settings = Settings.from_environment({
            "SEATSYNC_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", "GRAPH_CLIENT_ID": partner["clientId"],
            "GRAPH_CLIENT_SECRET": partner["clientSecret"], "GRAPH_PARTNER_TENANT_ID": partner["tenantId"],
            "GRAPH_AUTHORITY_HOST": running.url, "GRAPH_ENDPOINT": running.url,
            "SEATSYNC_CA_BUNDLE": str(tls.ca_certificate)})
        client = GraphClient(settings.require_graph(), verify=settings.tls_verify)
        client.tokens.token(big)
        t0 = time.perf_counter()
        users = client.list_users(big)
        listed = time.perf_counter() - t0
    print(f"Graph emulator: 501 tenants (one of 10,000 users) loaded in {loaded:.2f}s; "
          f"{len(users)} users listed in {listed:.2f}s ({client.calls} requests)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--large", type=int, default=0, help="users of the first tenant (e.g. 10000)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--same-process", action="store_true",
                        help="serve the emulators from this process (default: a child process)")
    parser.add_argument("--no-parts", action="store_true", help="skip the figures of the emulator and client")
    args = parser.parse_args()
    if not args.no_parts:
        part_figures(Path(tempfile.mkdtemp(prefix="seatsync-bench-parts-")))

    started = time.perf_counter()
    scenario, config_text = generate_msp(args.tenants, large=args.large)
    generated = time.perf_counter() - started
    work = Path(tempfile.mkdtemp(prefix="seatsync-bench-"))
    azurite = start_azurite(log_dir=work)
    try:
        launch = start_emulators if args.same_process else spawn_emulators
        with launch(scenario, work / "tls") as emulators:
            env = {**emulators.environment(), "SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string}
            services = Services(Settings.from_environment(env))
            services.config_repository.save(parse_yaml(emulators.render_config(config_text)), "bench")
            print(f"{args.tenants} tenants generated in {generated:.2f}s; "
                  f"{sum(len(t.get('generatedUsers', [])) for t in scenario['graph']['tenants'])} user groups")
            for label in ("first sync", "second sync (nothing to change)"):
                t0 = time.perf_counter()
                report = run_local_sync(services, requested_by="bench", max_workers=args.workers)
                elapsed = time.perf_counter() - t0
                writes = sum(1 for c in report["changes"] if c["applied"])
                read_back = len({(c["psa"], c["agreementId"]) for c in report["changes"] if c["applied"]})
                graph_min, psa_min = minimum_calls(scenario, writes, read_back)
                print(f"{label}: {elapsed:.1f}s wall, status {report['status']}, "
                      f"{len(report['tenants'])} tenants, {writes} writes, "
                      f"{sum(1 for c in report['changes'] if c['status'] == 'held')} held")
                print(f"  Graph calls {report['calls']['graph']} (minimum {graph_min}); "
                      f"PSA calls {report['calls']['psa']} (minimum {psa_min}, of which {read_back} reading back "
                      "the agreements written to)")
    finally:
        azurite.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of the process: {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
