"""Benchmark: the start of a run's read of the subscription sources for a large partner.

Serves a Partner Center and a Pax8 emulator (in a child process) with N customers of three
subscriptions each, reads both whole as ``start_run`` does (``read_catalogue``), and prints the
wall time, the requests sent against the fewest the APIs allow, and the peak memory.

    .venv/bin/python scripts/bench_sources.py --customers 500
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from emulators.launcher import spawn_emulators
from shared.adapters.http import RetryingHttp
from shared.adapters.partner_center import PartnerCenterClient, PartnerCenterCredential
from shared.adapters.pax8 import Pax8Client, Pax8Token
from shared.services.sources import read_catalogue

PARTNER = "0a0a0a0a-0000-4000-8000-000000000001"
APP = "6d2b9f4e-8a1c-4b3d-9e5f-7a6b5c4d3e2f"
OFFERS = (("CFQ7TTC0LCHC:0002", "Microsoft 365 Business Premium", "19.80"),
          ("CFQ7TTC0LH16:0001", "Exchange Online (Plan 1)", "3.60"),
          ("CFQ7TTC0LF8Q:0001", "Office 365 E3", "20.70"))


def scenario(customers: int) -> dict[str, Any]:
    pc_customers, companies = [], []
    for index in range(customers):
        tenant = f"1f0a5b2c-{index:04d}-4a1b-8c2d-{index:012d}"
        subs = [{"id": f"2f0a5b2c-{index:04d}-4000-8000-{n:012d}", "offerId": offer, "offerName": name,
                 "quantity": 10 + n, "termDuration": "P1Y", "billingCycle": "monthly",
                 "effectiveStartDate": "2026-01-01", "commitmentEndDate": "2026-12-31", "unitPrice": price}
                for n, (offer, name, price) in enumerate(OFFERS)]
        pc_customers.append({"id": tenant, "companyName": f"Customer {index}", "subscriptions": subs})
        companies.append({"id": f"9ba32659-{index:04d}-4539-be21-{index:012d}", "name": f"Customer {index}",
                          "subscriptions": [{"id": f"e8f372b6-{index:04d}-4f3c-9baa-{n:012d}",
                                             "productId": "1810aea9-0c95-421d-a77a-7ebccdfa2f6c",
                                             "productName": name, "quantity": 10 + n, "billingTerm": "Monthly",
                                             "partnerCost": price, "currencyCode": "USD"}
                                            for n, (_, name, price) in enumerate(OFFERS)]})
    return {"partnercenter": {"partnerTenantId": PARTNER, "applications": [{"clientId": APP, "clientSecret": "s"}],
                              "customers": pc_customers},
            "pax8": {"applications": [{"clientId": "c", "clientSecret": "s"}], "companies": companies}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=500, help="customers of each source (default 500)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        emulators = spawn_emulators(scenario(args.customers), Path(tmp) / "tls")
        try:
            ca = str(emulators.tls.ca_certificate)
            pc_url, pax8_url = emulators.urls["partnercenter"], emulators.urls["pax8"]
            pc = PartnerCenterClient("pc", pc_url, PartnerCenterCredential("pc", PARTNER, APP, "s", pc_url, verify=ca),
                                     http=RetryingHttp("Partner Center", verify=ca))
            http = RetryingHttp("Pax8", verify=ca)
            pax8 = Pax8Client("pax8", f"{pax8_url}/v1",
                              Pax8Token("pax8", f"{pax8_url}/oauth/token", "c", "s", "https://api.pax8.com", http),
                              http=http)
            # Partner Center: the customer pages, one subscription list a customer, one page of
            # reconciliation lines (its token comes through azure-identity, not counted here);
            # Pax8: the company and subscription pages and its one token request
            for client, fewest in ((pc, math.ceil(args.customers / 500) + args.customers + 1),
                                   (pax8, math.ceil(args.customers / 200) + math.ceil(3 * args.customers / 200) + 1)):
                started = time.perf_counter()
                catalogue = read_catalogue(client, {})
                seconds = time.perf_counter() - started
                assert catalogue.error is None, catalogue.error
                print(f"{client.name:5s}: {len(catalogue.customers)} customers, {catalogue.subscription_count} "
                      f"subscriptions in {seconds:.1f}s; {catalogue.calls} requests (the fewest possible: {fewest})")
        finally:
            emulators.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
