"""Benchmark: a full sync of a generated MSP on Azurite and the emulators, then an unchanged one.

Prints, for each sync:

- the wall time next to its lower bound, max(longest tenant chain, requests / concurrency x
  latency, writes / PSA rate), and their ratio (``--latency-ms`` holds every emulator answer back
  that long, through the emulators' documented delay fault, so that the bound means something);
- Microsoft Graph, Entra ID (token and discovery) and PSA requests against the minimum a sync
  needs, counted by the emulators themselves;
- Table Storage requests per tenant (counted by the store's client);

then the peak memory (RSS) of the process that ran the syncs (with ``--trace-memory N``, also its
Python heap at its largest and the N lines, file:line, that held most of it; with ``--allocator``,
what the allocators hold after each step and the largest RSS seen while each kind of activity
ran, so the step that sets the peak is named), and how long ``import function_app`` takes
(``python -X importtime``). The syncs run in a child process of their own, as an activity host
would, so that the figures are SeatSync's: the generated scenario, the emulators and their request
logs live elsewhere.
Before the sync, the figures of the parts: how long the Graph emulator takes to load 500 tenants
and one of 10,000 users, and the client to page through those users.

    .venv/bin/python scripts/bench_sync.py --tenants 500 [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SYNCS = ("first sync", "second sync (nothing to change)")
IDENTITY_TOKEN = re.compile(r"/oauth2/v2\.0/token$")
IDENTITY_DISCOVERY = re.compile(r"(openid-configuration|/discovery/)")


# --------------------------------------------------------------------------- cold start


def cold_start() -> str:
    """``import function_app`` in a fresh interpreter (best of three), next to importing
    ``azure.functions`` alone (the Functions worker has it loaded before it imports the app) and
    the Durable Functions SDK alone (which the app imports when a durable function first runs), and
    what ``-X importtime`` attributes to it."""

    def best(statement: str) -> float:
        code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
        return min(float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                        check=True).stdout.strip()) for _ in range(3))

    app = best("import function_app")
    functions = best("import azure.functions")
    durable = best("import azure.durable_functions")
    traced = subprocess.run([sys.executable, "-X", "importtime", "-c", "import function_app"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    cumulative = 0
    loaded = set()
    for line in traced.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3:
            loaded.add(parts[2].strip())
            if parts[2].strip() == "function_app":
                cumulative = int(parts[1].strip())
    sdk = "imported" if "azure.durable_functions" in loaded else "not imported"
    return (f"import function_app: {app:.3f}s (best of 3; -X importtime {cumulative / 1e6:.3f}s; the Durable "
            f"Functions SDK {sdk}); azure.functions alone: {functions:.3f}s; the Durable Functions SDK alone, "
            f"loaded when a durable function first runs: {durable:.3f}s")


# --------------------------------------------------------------------------- the parts


def part_figures(work: Path) -> None:
    """Speed of the emulator and the Graph client at scale (measured here, never asserted in tests)."""
    from emulators.base import RunningEmulator
    from emulators.graph import GraphEmulator, stable_id
    from emulators.tls import ensure_tls_files
    from shared.adapters.graph import GraphClient
    from shared.settings import Settings

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


# --------------------------------------------------------------------------- the syncs (child process)


def emulator_log(url: str, ca: str) -> list[dict[str, Any]]:
    import requests

    answer = requests.get(f"{url}/_admin/requests", verify=ca, timeout=120)
    answer.raise_for_status()
    return list(answer.json()["requests"])


class HeapPeak:
    """The Python allocations alive when the traced heap was at its largest (``--trace-memory``):
    a thread samples the traced size and takes a snapshot whenever it passes the largest seen, so
    that the top lines by file:line explain the peak, not whatever is left at the end."""

    def __init__(self, top: int, interval: float = 2.0) -> None:
        import threading
        import tracemalloc

        self.top = top
        self.interval = interval
        self.largest = 0
        self.snapshot: tracemalloc.Snapshot | None = None
        self._stop = threading.Event()
        tracemalloc.start(10)  # frames enough to find the project's line behind a library's allocation
        self._thread = threading.Thread(target=self._sample, name="heap-peak", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import tracemalloc

        while not self._stop.wait(self.interval):
            current = tracemalloc.get_traced_memory()[0]
            if current > self.largest * 1.05:
                self.snapshot = tracemalloc.take_snapshot()
                self.largest = tracemalloc.get_traced_memory()[0]

    def stop(self) -> dict[str, Any]:
        import tracemalloc

        self._stop.set()
        self._thread.join()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        lines: list[list[Any]] = []
        if self.snapshot is not None:
            snapshot = self.snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            # each allocating line, with the project's line that called it (the innermost frame of
            # SeatSync's own code), so that a library's allocation says whose it is
            held: Counter[tuple[str, str]] = Counter()
            blocks: Counter[tuple[str, str]] = Counter()
            for trace in snapshot.traces:
                frames = list(reversed(trace.traceback))  # tracemalloc keeps the oldest first
                where = self._name(frames[0])
                caller = next((self._name(f) for f in frames[1:] if self._ours(f.filename)), "") \
                    if not self._ours(frames[0].filename) else ""
                held[where, caller] += trace.size
                blocks[where, caller] += 1
            for (where, caller), size in held.most_common(self.top):
                lines.append([where + (f" (from {caller})" if caller else ""), size, blocks[where, caller]])
        return {"peakMb": peak / 2**20, "sampledMb": self.largest / 2**20, "top": lines}

    @staticmethod
    def _ours(filename: str) -> bool:
        return filename.startswith(str(ROOT)) and "/.venv/" not in filename

    @staticmethod
    def _name(frame: Any) -> str:
        filename = str(frame.filename)
        name = os.path.relpath(filename, ROOT) if HeapPeak._ours(filename) else filename.split("site-packages/")[-1]
        return f"{name}:{frame.lineno}"


def rss() -> tuple[float, float]:
    """This process's peak and current resident memory, MB. The peak is the address space's own
    (``VmHWM``), not ``getrusage``'s: Linux carries a parent's peak into a child it spawns, so the
    scenario the parent generated would count as the syncs'."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024


class ActivityRss:
    """The largest resident memory seen while each kind of activity ran (``--allocator``): a
    thread samples ``VmRSS`` every 20 ms and credits it to every activity running then, so the
    step that sets a sync's peak (collect, push, notify) is named, not guessed."""

    def __init__(self, activities: dict[str, Any]) -> None:
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.largest: dict[str, float] = {}
        self.calls: Counter[str] = Counter()
        for name, function in list(activities.items()):
            activities[name] = self._wrap(name, function)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-rss", daemon=True)
        self._thread.start()

    def _wrap(self, name: str, function: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self._running[name] += 1
                self.calls[name] += 1
            try:
                return function(*args, **kwargs)
            finally:
                self._credit({name})
                with self._lock:
                    self._running[name] -= 1
        return run

    def _credit(self, names: set[str]) -> None:
        now = rss()[1]
        with self._lock:
            for name in names:
                self.largest[name] = max(self.largest.get(name, 0.0), now)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            with self._lock:
                running = {name for name, count in self._running.items() if count}
            if running:
                self._credit(running)

    def take(self) -> list[list[Any]]:
        """What was seen since the last ``take``: [activity, calls, largest MB], largest first."""
        with self._lock:
            taken = [[name, self.calls[name], mb] for name, mb in sorted(self.largest.items(), key=lambda i: -i[1])]
            self.largest.clear()
            self.calls.clear()
        return taken

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def allocator_figures() -> list[str]:
    """What the two allocators hold now (``--allocator``): glibc's arenas (``mallinfo2``), in use
    and free, and Python's small-object allocator (``sys._debugmallocstats``), whose 1 MiB arenas
    go back to the system only when empty."""
    import ctypes
    import tempfile as tf

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                         "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    m = libc.mallinfo2()
    with tf.TemporaryFile() as out:  # the statistics go to the C stderr
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        stats = out.read().decode()
    found = dict(re.findall(r"^# (arenas allocated current|bytes in allocated blocks|bytes in available blocks)"
                            r"\s*=\s*([\d,]+)", stats, re.M))
    unused = re.search(r"^(\d+) unused pools \* (\d+) bytes", stats, re.M)

    def mb(value: str) -> float:
        return int(value.replace(",", "")) / 2**20

    figures = [f"glibc: arenas {m.arena / 2**20:.1f} MB, in use {m.uordblks / 2**20:.1f} MB, "
               f"free {m.fordblks / 2**20:.1f} MB; own mappings {m.hblkhd / 2**20:.1f} MB"]
    if "arenas allocated current" not in found:  # tracemalloc's hooks hide Python's allocator
        return [*figures, "Python objects: not measured while --trace-memory traces them"]
    return [*figures,
            f"Python objects: {found['arenas allocated current']} arenas of 1 MiB, "
            f"{mb(found['bytes in allocated blocks']):.1f} MB in objects, "
            f"{mb(found['bytes in available blocks']):.1f} MB free in used pools, "
            f"{int(unused.group(1)) * int(unused.group(2)) / 2**20 if unused else 0:.1f} MB in unused pools"]


def run_child(spec_path: str) -> None:
    """The syncs, in this (child) process: figures as one JSON line on stdout."""
    from local_runner.local_sync import function_table, sync_locally
    from shared.bootstrap import Services
    from shared.domain.model import ChangeStatus
    from shared.services.report import report_text
    from shared.settings import Settings

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    heap = HeapPeak(spec["traceTop"]) if spec.get("traceTop") else None
    by_activity = ActivityRss(function_table().activities) if spec.get("allocator") else None
    services = Services(Settings.from_environment(spec["env"]))
    store = services.store.requests
    assert store is not None
    results = []
    phases: list[list[Any]] = []  # [what, peak RSS so far, RSS now, (allocator lines), (activities)]

    def phase(what: str) -> None:
        phases.append([what, *rss(), allocator_figures() if spec.get("allocator") else [],
                       by_activity.take() if by_activity else []])

    phase("set up")
    for label in SYNCS:
        tables_before, kinds_before, rows_before = store.count, store.by_kind(), store.rows()
        started, t0 = time.time(), time.perf_counter()
        run_id = sync_locally(services, requested_by="bench", max_workers=spec["workers"])
        elapsed, finished = time.perf_counter() - t0, time.time()
        phase(label)
        tables = store.count - tables_before
        kinds = store.by_kind() - kinds_before
        rows = store.rows() - rows_before
        # the text report, as ``seatsync sync`` prints it (made from the run's pages, not measured in time)
        head, _text = report_text(services.runs, run_id, services.config(), services.margins, services.sources,
                                  started=services.started(run_id))
        phase(f"{label}: its text report")
        writes: Counter[str] = Counter()
        agreements: set[tuple[str, str | None]] = set()
        held = 0
        for change, _error in services.runs.iter_changes(run_id):
            held += change.status == ChangeStatus.HELD
            if change.status in (ChangeStatus.APPLIED, ChangeStatus.RECOVERED):
                writes[change.tenant_id] += 1
                agreements.add((change.tenant_id, change.agreement_id))
        results.append({
            "wall": elapsed, "status": head["status"], "tenants": head["totals"]["tenantsTotal"],
            "writes": sum(writes.values()), "held": held, "writesByTenant": dict(writes),
            "agreementsWritten": len(agreements),
            "reportCalls": head["calls"], "tables": tables, "tableKinds": dict(kinds), "tableRows": dict(rows),
            "window": [started, finished],  # the emulators' requests in it are this sync's (read by the parent)
        })
    peak = rss()[0]
    if by_activity:
        by_activity.stop()
    print(json.dumps({"syncs": results, "peakMb": peak, "phases": phases, "heap": heap.stop() if heap else None}))


# --------------------------------------------------------------------------- figures


def tenant_shapes(scenario: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per tenant: its Graph requests at the minimum (one batch and every further page of users)
    and its agreements."""
    agreements_of: Counter[str] = Counter()
    companies = {c["id"]: c["name"] for c in scenario["connectwise"]["companies"]}
    by_name = {t["displayName"]: t["tenantId"] for t in scenario["graph"]["tenants"]}
    for agreement in scenario["connectwise"]["agreements"]:
        agreements_of[by_name[companies[agreement["companyId"]]]] += 1
    shapes = {}
    for tenant in scenario["graph"]["tenants"]:
        users = sum(g["count"] for g in tenant.get("generatedUsers", []))
        shapes[tenant["tenantId"]] = {"graph": 1 + max(math.ceil(users / 999) - 1, 0),
                                      "agreements": agreements_of[tenant["tenantId"]]}
    return shapes


def figures(label: str, sync: dict[str, Any], scenario: dict[str, Any], latency: float, workers: int,
            notifications: bool) -> None:
    tenants = scenario["graph"]["tenants"]
    shapes = tenant_shapes(scenario)
    agreements = len(scenario["connectwise"]["agreements"])
    products = len(scenario["connectwise"]["catalog"])
    graph_log = sync["requests"]["graph"]
    psa_log = sync["requests"]["connectwise"]
    tokens = sum(1 for method, path in graph_log if method == "POST" and IDENTITY_TOKEN.search(path))
    discovery = sum(1 for _, path in graph_log if IDENTITY_DISCOVERY.search(path))
    graph = len(graph_log) - tokens - discovery
    psa = len(psa_log)
    mails = sum(1 for method, path in graph_log if method == "POST" and path.endswith("/sendMail"))
    posts = len(sync["requests"].get("teams", []))

    # With channels to tell, the shared-mailbox alert reads each tenant's mailbox usage report: Graph
    # answers it in the batch with a redirect, and the report is one more request to download. The
    # messages are Graph requests too: one sendMail per email sent.
    reports = len(tenants) if notifications else 0
    graph_min = math.ceil(len(tenants) / 300) + sum(s["graph"] for s in shapes.values()) + reports + mails
    token_min = len(tenants) + 1  # one per customer tenant, one for the partner tenant
    shared_reads = math.ceil(agreements / 100) + math.ceil(products / 100)
    lines = agreements
    writes, read_backs = sync["writes"], sync["agreementsWritten"]
    psa_min = shared_reads + lines + writes + read_backs

    # the lower bound of the wall time
    writes_of = sync["writesByTenant"]
    run_serial = 2 + math.ceil(len(tenants) / 300) + shared_reads  # partner token + discovery, GDAP, shared reads
    run_serial += mails + posts  # the run's messages go out after its pushes
    report = 1 if notifications else 0
    chain = max((2 + s["graph"] + report + s["agreements"] + writes_of.get(t, 0) + (1 if writes_of.get(t) else 0))
                for t, s in shapes.items())
    everything = graph + tokens + discovery + psa
    bound_chain = (run_serial + chain) * latency
    bound_spread = everything / workers * latency
    bound_rate = 0.0  # ConnectWise documents no request rate; Autotask's and HaloPSA's would count here
    bound = max(bound_chain, bound_spread, bound_rate)
    ratio = f"{sync['wall'] / bound:.2f}x the bound" if bound > 0 else "no bound without --latency-ms"
    print(f"{label}: {sync['wall']:.1f}s wall, status {sync['status']}, {sync['tenants']} tenants, "
          f"{writes} writes, {sync['held']} held")
    print(f"  lower bound {bound:.1f}s = max(longest tenant chain {bound_chain:.1f}s, "
          f"{everything} requests / {workers} at once x {latency * 1000:.0f} ms = {bound_spread:.1f}s, "
          f"writes / PSA rate {bound_rate:.1f}s); wall {ratio}")
    print(f"  Graph requests {graph} (minimum {graph_min}, {graph / graph_min:.3f}x); Entra ID: {tokens} token "
          f"requests (at most {token_min}: one per tenant and the partner, fewer while tokens are cached), "
          f"{discovery} discovery requests (each tenant authority's OpenID metadata, read by MSAL before its token)")
    print(f"  PSA requests {psa} (minimum {psa_min}, {psa / psa_min:.3f}x: {shared_reads} agreement and catalogue "
          f"reads, {lines} agreements' lines, {writes} writes, {read_backs} read-backs of written agreements that "
          f"the write-intent rule requires); the run report counts {sync['reportCalls']['psa']} PSA and "
          f"{sync['reportCalls']['graph']} Graph calls")
    if "teams" in sync["requests"] or mails:
        print(f"  notifications: {posts} Teams requests, {mails} emails; {reports} mailbox reports downloaded")
    per = max(sync["tenants"], 1)
    kinds = sorted(sync["tableKinds"].items(), key=lambda item: -item[1])
    print(f"  Table Storage requests {sync['tables']} ({sync['tables'] / per:.1f} per tenant): "
          + ", ".join(f"{kind} {count / per:.1f}" for kind, count in kinds if count / per >= 0.05))
    rows = sorted(sync["tableRows"].items(), key=lambda item: -item[1])
    if rows:
        print("  what the transactions carried, entities per tenant: "
              + ", ".join(f"{row} {count / per:.1f}" for row, count in rows if count / per >= 0.05))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--large", type=int, default=0, help="users of the first tenant (e.g. 10000)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="hold every emulator answer back this long (the emulators' delay fault)")
    parser.add_argument("--same-process", action="store_true",
                        help="serve the emulators from this process (default: a child process)")
    parser.add_argument("--no-parts", action="store_true", help="skip the figures of the emulator and client")
    parser.add_argument("--no-notifications", action="store_true",
                        help="an MSP with no Teams channel or email to tell (as the bench was before)")
    parser.add_argument("--trace-memory", type=int, default=0, metavar="N",
                        help="also trace the syncing process's Python allocations and print the N lines "
                             "(file:line) that held the most at the largest heap (slows the syncs)")
    parser.add_argument("--allocator", action="store_true",
                        help="also print, after each step, what glibc's and Python's allocators hold")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return 0

    from emulators.generator import generate_msp
    from emulators.launcher import spawn_emulators, start_emulators
    from local_runner.azurite import start_azurite
    from shared.bootstrap import Services
    from shared.config.yaml_io import parse_yaml
    from shared.settings import Settings

    print(cold_start())
    if not args.no_parts:
        part_figures(Path(tempfile.mkdtemp(prefix="seatsync-bench-parts-")))

    started = time.perf_counter()
    scenario, config_text = generate_msp(args.tenants, large=args.large, notifications=not args.no_notifications)
    generated = time.perf_counter() - started
    work = Path(tempfile.mkdtemp(prefix="seatsync-bench-"))
    azurite = start_azurite(log_dir=work)
    try:
        launch = start_emulators if args.same_process else spawn_emulators
        with launch(scenario, work / "tls") as emulators:
            env = {**emulators.environment(), "SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string}
            services = Services(Settings.from_environment(env))
            services.config_repository.save(parse_yaml(emulators.render_config(config_text)), "bench")
            urls = {name: served.url for name, served in emulators.served.items()}
            if args.latency_ms > 0:
                import requests

                for url in urls.values():
                    requests.post(f"{url}/_admin/faults", json={"kind": "timeout", "delay": args.latency_ms / 1000},
                                  verify=env["SEATSYNC_CA_BUNDLE"], timeout=60).raise_for_status()
            print(f"{args.tenants} tenants generated in {generated:.2f}s; "
                  f"{sum(len(t.get('generatedUsers', [])) for t in scenario['graph']['tenants'])} user groups"
                  + (f"; every emulator answer held back {args.latency_ms:.0f} ms" if args.latency_ms else ""))
            spec = work / "child.json"
            spec.write_text(json.dumps({"env": env, "emulators": urls, "workers": args.workers,
                                        "traceTop": args.trace_memory, "allocator": args.allocator}), encoding="utf-8")
            child = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(spec)], cwd=ROOT,
                                   capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if child.returncode != 0:
                print(child.stderr[-4000:], file=sys.stderr)
                return 2
            result = json.loads(child.stdout.strip().splitlines()[-1])
            logs = {name: emulator_log(url, env["SEATSYNC_CA_BUNDLE"]) for name, url in urls.items()}
            for sync in result["syncs"]:
                start, end = sync["window"]
                sync["requests"] = {name: [[r["method"], r["path"]] for r in log if start <= r["at"] <= end]
                                    for name, log in logs.items()}
            for label, sync in zip(SYNCS, result["syncs"], strict=True):
                figures(label, sync, scenario, args.latency_ms / 1000, args.workers, not args.no_notifications)
            print(f"peak memory of the process that ran the syncs: {result['peakMb']:.0f} MB (peak RSS)")
            for what, peak, now, allocators, activities in result["phases"]:
                print(f"  after {what}: peak {peak:.0f} MB, now {now:.0f} MB")
                for line in allocators:
                    print(f"    {line}")
                if activities:
                    print("    largest while each activity ran: " + ", ".join(
                        f"{name} {mb:.0f} MB ({calls})" for name, calls, mb in activities))
            if result["heap"]:
                heap = result["heap"]
                print(f"  Python heap (tracemalloc): peak {heap['peakMb']:.1f} MB; the largest sampled, "
                      f"{heap['sampledMb']:.1f} MB, held by:")
                for where, size, count in heap["top"]:
                    print(f"    {size / 2**20:8.2f} MB {count:>8} blocks  {where}")
    finally:
        azurite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
