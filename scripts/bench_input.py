"""Benchmark: what reading documents strictly costs (shared.config.input_limits).

Prints, for a configuration document of N tenants as JSON and as YAML, the time the plain
parser takes and the time the strict reader takes (size, UTF-8, depth, duplicate keys), and the
time the per-request depth check of every HTTP route takes on the largest bodies accepted.

    .venv/bin/python scripts/bench_input.py --tenants 2000
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import yaml

from shared.config.input_limits import MAX_DOCUMENT_BYTES, check_nesting, read_json, read_yaml


def document(tenants: int) -> dict[str, Any]:
    return {"tenants": [
        {"tenantId": f"1f0a5b2c-0001-4a1b-8c2d-{i:012d}", "name": f"Tenant {i}", "companies": [
            {"psa": "cw", "companyId": str(i), "licences": [
                {"skuId": "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "agreementId": str(100 + i),
                 "lineId": str(500 + i), "profile": "m365-bp"}]}]}
        for i in range(tenants)]}


def timed(work: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=2000)
    args = parser.parse_args()
    as_json = json.dumps(document(args.tenants)).encode()
    as_yaml = yaml.safe_dump(document(args.tenants), sort_keys=False).encode()
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    print(f"configuration of {args.tenants} tenants: {len(as_json):,} bytes of JSON, {len(as_yaml):,} of YAML")
    print(f"  json.loads            {timed(lambda: json.loads(as_json)):8.3f} s")
    print(f"  strict JSON reading   {timed(lambda: read_json(as_json, 'body')):8.3f} s")
    print(f"  yaml (libyaml) load   {timed(lambda: yaml.load(as_yaml, Loader=loader)):8.3f} s")
    print(f"  strict YAML reading   {timed(lambda: read_yaml(as_yaml, 'file')):8.3f} s")
    largest = {
        "strings": b"[" + b",".join(b'"%d"' % i for i in range(MAX_DOCUMENT_BYTES // 9)) + b"]",
        "brackets": b"[]" * (MAX_DOCUMENT_BYTES // 2),
    }
    for name, body in largest.items():
        clipped = body[:MAX_DOCUMENT_BYTES]

        def check(data: bytes = clipped) -> None:
            check_nesting(data, "body", yaml_text=False)

        print(f"depth check of every route, {len(clipped):,} bytes of {name}: {timed(check):.3f} s")


if __name__ == "__main__":
    main()
