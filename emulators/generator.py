"""Generate an MSP of N tenants: a scenario for the emulators and the matching SeatSync
configuration, deterministic for a given seed.

Each tenant has two or three licences and between 5 and 400 users (optionally one tenant with
``large`` users); its PSA company has one agreement whose lines bill each licence. About a third
of the lines are already right, the others are a few seats off either way, so a first sync has
realistic work to do (increases, small decreases applied, larger ones held) and a second sync
has none.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import yaml

NAMESPACE = uuid.UUID("6f1c0a52-98e2-4c0b-9b8e-3b7d1e2f4a10")
PARTNER = {"tenantId": "0a0a0a0a-0000-4000-8000-000000000001", "displayName": "Generated Partner MSP",
           "defaultDomain": "generatedmsp.onmicrosoft.com", "clientId": "5e1f0c2a-7d3b-4c8e-9a6f-2b4d8e1c3f70",
           "clientSecret": "generated-client-secret"}
CW_CREDENTIAL = {"publicKey": "genPublicKey", "privateKey": "genPrivateKey",
                 "clientId": "7b0e3f1a-2c4d-4e5f-8a9b-0c1d2e3f4a5b"}
# (skuId, part number, catalogue id, catalogue identifier, price)
LICENCES = [
    ("cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "SPB", 1, "M365-BP", "22.00"),
    ("f245ecc8-75af-4f8e-b61f-27d8114de5f3", "O365_BUSINESS_PREMIUM", 2, "M365-BS", "12.50"),
    ("3b555118-da6a-4418-894f-7df1e2096870", "O365_BUSINESS_ESSENTIALS", 3, "M365-BB", "6.00"),
    ("4b9405b0-7788-4568-add1-99614e613b69", "EXCHANGESTANDARD", 4, "EXO-P1", "4.00"),
    ("6fd2c87f-b296-42f0-b197-1e91e994b900", "ENTERPRISEPACK", 5, "O365-E3", "23.00"),
]


def _id(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)))


SENDER = "seatsync@generatedmsp.onmicrosoft.com"
"""The partner tenant's mailbox that sends the alerts (``notifications``)."""
WORKFLOW = "generated-billing"
"""The Teams Workflows webhook of the MSP's billing channel (``notifications``)."""


def generate_msp(tenants: int, psa: str = "connectwise", seed: int = 7, large: int = 0,
                 notifications: bool = False) -> tuple[dict[str, Any], str]:
    """``(scenario, configuration YAML)`` for ``tenants`` tenants billed through ConnectWise.
    ``notifications``: the MSP is told of each run in a Teams channel and by email, as an MSP
    running SeatSync is, so that notifying a run of thousands of tenants sends real messages."""
    if psa != "connectwise":
        raise ValueError("the generator builds ConnectWise scenarios")
    if tenants < 1:
        raise ValueError("tenants must be at least 1")
    rng = random.Random(seed)
    graph_tenants: list[dict[str, Any]] = []
    companies, agreements, additions = [], [], []
    config_tenants: list[dict[str, Any]] = []
    addition_id = 1000
    for index in range(tenants):
        tenant_id = _id("tenant", index)
        name = f"Customer {index + 1:04d}"
        domain = f"customer{index + 1:04d}.onmicrosoft.com"
        company_id = 100 + index
        agreement_id = 5000 + index
        users = large if (large and index == 0) else rng.randint(5, 400)
        chosen = rng.sample(LICENCES, rng.choice((2, 3)))
        skus, generated, licences = [], [], []
        for position, (sku_id, part, _product, identifier, _price) in enumerate(chosen):
            holders = users if position == 0 else rng.randint(0, max(1, users // 3))
            skus.append({"skuId": sku_id, "skuPartNumber": part, "enabled": holders + rng.randint(0, 5)})
            if position == 0:
                generated.append({"count": users, "prefix": "user", "licenses": [part]})
            elif holders:
                generated.append({"count": holders, "prefix": f"extra{position}", "licenses": [part]})
            drift = rng.choice((0, 0, 0, 1, 2, -1, -2, 5, -5))
            billed = max(holders + drift, 0)
            additions.append({"id": addition_id, "agreementId": agreement_id, "productIdentifier": identifier,
                              "quantity": billed})
            licences.append({"skuId": sku_id, "agreementId": str(agreement_id), "lineId": str(addition_id),
                             "profile": identifier.lower(), "decreasePolicy": "apply"})
            addition_id += 1
        graph_tenants.append({"tenantId": tenant_id, "displayName": name, "defaultDomain": domain,
                              "skus": skus, "generatedUsers": generated})
        companies.append({"id": company_id, "identifier": f"Customer{index + 1:04d}", "name": name})
        agreements.append({"id": agreement_id, "name": f"{name} Microsoft 365", "companyId": company_id,
                           "typeId": 1, "startDate": "2026-01-01"})
        config_tenants.append({"tenantId": tenant_id, "name": name, "companies": [
            {"psa": "connectwise", "companyId": str(company_id), "licences": licences}]})
    graph: dict[str, Any] = {"partner": dict(PARTNER), "tenants": graph_tenants}
    scenario: dict[str, Any] = {
        "graph": graph,
        "connectwise": {
            "companyId": "seatsyncmsp", "credentials": [dict(CW_CREDENTIAL)], "companies": companies,
            "catalog": [{"id": product_id, "identifier": identifier, "description": part, "price": float(price)}
                        for _sku, part, product_id, identifier, price in LICENCES],
            "agreementTypes": [{"id": 1, "name": "Microsoft 365", "prorate": True, "billingCycle": "Monthly"}],
            "agreements": agreements, "additions": additions,
        },
    }
    config = {
        "psaConnections": [{"name": "connectwise", "type": "connectwise", "url": "${CONNECTWISE_URL}",
                            "companyId": "seatsyncmsp", "publicKey": {"setting": "CW_PUBLIC_KEY"},
                            "privateKey": {"setting": "CW_PRIVATE_KEY"}, "clientId": {"setting": "CW_CLIENT_ID"}}],
        "billingProfiles": [{"name": identifier.lower(), "psa": "connectwise", "productId": str(product_id)}
                            for _sku, _part, product_id, identifier, _price in LICENCES],
        "tenants": config_tenants,
    }
    if notifications:
        graph["partner"]["users"] = [{"userPrincipalName": SENDER, "displayName": "SeatSync"}]
        scenario["teams"] = {"workflows": [{"id": WORKFLOW}]}
        config["notifications"] = {
            "teams": [{"name": "billing", "webhook": {"setting": "TEAMS_WEBHOOK_URL"}}],
            "email": {"sender": SENDER, "recipients": ["billing@generatedmsp.onmicrosoft.com"]}}
    return scenario, yaml.safe_dump(config, sort_keys=False)
