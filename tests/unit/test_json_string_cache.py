"""Reading thousands of tenants from JSON keeps none of their strings: pydantic's JSON parser
caches every short string it reads for the life of the process unless a model says otherwise,
which grew a process's memory with the tenants (``cache_strings`` in ``Model`` and ``Message``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

_MEASURE = textwrap.dedent('''
    import gc, json, sys, tracemalloc
    from pydantic import ConfigDict
    from shared.config.schema import TenantConfig
    from shared.contracts import TenantOutcome, TenantWork

    def tenant(n):
        return json.dumps({"tenantId": f"aaaaaaaa-0000-4000-8000-{n:012d}", "name": f"Customer {n}",
                           "companies": [{"psa": "connectwise", "companyId": str(100000 + n), "licences": [
                               {"skuId": "c42b9cae-ea4f-4ab7-9717-81576235ccac", "agreementId": str(500000 + n),
                                "lineId": str(900000 + n)}]}]})

    def work(n):
        return json.dumps({"tenantId": f"bbbbbbbb-0000-4000-8000-{n:012d}", "name": f"Client {n}"})

    def outcome(n):
        return json.dumps({"tenantId": f"cccccccc-0000-4000-8000-{n:012d}", "name": f"Outcome {n}",
                           "status": "ok"})

    class Cached(TenantConfig):  # the default: every string cached
        model_config = ConfigDict(cache_strings="all")

    def kept(model, make):
        texts = [make(n) for n in range(2000)]
        model.model_validate_json(texts[0])
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for text in texts[1:]:
            model.model_validate_json(text)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        return grown

    print(json.dumps({"tenant": kept(TenantConfig, tenant), "work": kept(TenantWork, work),
                      "outcome": kept(TenantOutcome, outcome),
                      "cached": kept(Cached, lambda n: tenant(n + 10000))}))
''')


def test_models_read_from_json_keep_none_of_their_strings() -> None:
    """In a fresh process (the cache is the process's): 2,000 tenants, run tenants and outcomes
    read and dropped leave almost nothing behind, where the same tenants read by a model that
    caches every string leave each one's strings."""
    import json

    done = subprocess.run([sys.executable, "-c", _MEASURE], capture_output=True, text=True, check=True)
    grown = json.loads(done.stdout.strip().splitlines()[-1])
    assert grown["cached"] > 200_000, grown  # the measure sees a cache: about 100 bytes a string
    for kind in ("tenant", "work", "outcome"):
        assert grown[kind] < 20_000, grown
