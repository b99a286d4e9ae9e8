"""A realistic MSP, written from the documentation alone, for ConnectWise, Autotask and HaloPSA: the
emulator scenario (Graph, Partner Center, Teams and one PSA) and SeatSync's configuration, with the
same tenants, agreements and lines on each PSA (ConnectWise agreements and additions, Autotask
contracts and contract services, Halo recurring invoices (negative ids) and their lines).

Seven customers, each in a state MSPs live in, on 20 November 2026 (every agreement bills monthly
from 1 January 2026, so November is invoiced and runs 1..30 November, 30 days):

- Alpine Dental: split by department (Clinical, Admin), no catch-all; one user's department is
  " clinical " (case and spaces ignored), one's is Reception (no filter), one has none; a
  disabled Clinical account still holds Business Premium.
- Birch Logistics: split by city (Leeds) with a catch-all company that has no line yet.
- Cedar Law: Business Premium on a cancelled agreement, Exchange on one that ended 31 October.
- Dune Retail: Business Premium 10 enabled + 5 suspended with 13 users holding it; Exchange
  3 enabled + 2 in Warning with 5 users holding it.
- Elm Architects: an adopted Business Premium line at a negotiated 19.50 (the profile says 22.00),
  and a taxable Exchange line in the "Microsoft 365" invoice grouping; both grow mid-period.
- Fir Consulting: three decreases: Business Premium bought 4 days ago (inside the NCE window),
  Office 365 E3 renewed in March (held for approval), Business Standard renewing on 1 December
  (deferred to the renewal).
- Grove Health: Business Premium split between an annual (20) and a monthly (5) subscription, with
  Partner Center telling their terms; the monthly one has no line yet.

``world(psa)`` gives (scenario, configuration text); ``LINES`` names each line the same on every PSA.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import yaml

TODAY = date(2026, 11, 20)
PARTNER = "0a0a0a0a-0000-4000-8000-000000000001"
GRAPH_APP = "5e1f0c2a-7d3b-4c8e-9a6f-2b4d8e1c3f70"
PC_APP = "6d2b9f4e-8a1c-4b3d-9e5f-7a6b5c4d3e2f"

SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
EXO = "4b9405b0-7788-4568-add1-99614e613b69"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
BS = "f245ecc8-75af-4f8e-b61f-27d8114de5f3"

ALPINE = "a1000000-0000-4000-8000-000000000001"
BIRCH = "b2000000-0000-4000-8000-000000000002"
CEDAR = "c3000000-0000-4000-8000-000000000003"
DUNE = "d4000000-0000-4000-8000-000000000004"
ELM = "e5000000-0000-4000-8000-000000000005"
FIR = "f6000000-0000-4000-8000-000000000006"
GROVE = "a7000000-0000-4000-8000-000000000007"

GROVE_ANNUAL = "a7000000-5b00-4000-8000-00000000000a"
GROVE_MONTHLY = "a7000000-5b00-4000-8000-00000000000b"

# product id -> (name, identifier, price, cost)
PRODUCTS: dict[int, tuple[str, str, str, str]] = {
    1: ("Microsoft 365 Business Premium", "M365-BP", "22.00", "19.80"),
    2: ("Microsoft 365 Business Standard", "M365-BS", "12.50", "11.25"),
    3: ("Office 365 E3", "O365-E3", "23.00", "20.70"),
    4: ("Exchange Online (Plan 1)", "EXO-P1", "4.00", "3.60"),
    5: ("Microsoft 365 Business Premium (annual)", "M365-BP-ANNUAL", "22.00", "19.80"),
    6: ("Microsoft 365 Business Premium (monthly)", "M365-BP-MONTHLY", "22.00", "21.78"),
}

# company id -> name
COMPANIES = {31: "Alpine Dental - Clinical", 32: "Alpine Dental - Admin", 33: "Birch Logistics - Leeds",
             34: "Birch Logistics", 35: "Cedar Law", 36: "Dune Retail", 37: "Elm Architects",
             38: "Fir Consulting", 39: "Grove Health"}

# agreement id (Halo: its negative) -> (company, name, end date or None, state)
AGREEMENTS: dict[int, tuple[int, str, str | None, str]] = {
    131: (31, "Alpine Clinical Microsoft 365", None, "active"),
    132: (32, "Alpine Admin Microsoft 365", None, "active"),
    133: (33, "Birch Leeds Microsoft 365", None, "active"),
    134: (34, "Birch Microsoft 365", None, "active"),
    135: (35, "Cedar Law Microsoft 365", None, "cancelled"),
    136: (35, "Cedar Law Exchange", "2026-10-31", "active"),
    137: (36, "Dune Retail Microsoft 365", None, "active"),
    139: (37, "Elm Architects Microsoft 365", None, "active"),
    141: (38, "Fir Consulting Microsoft 365", None, "active"),
    144: (39, "Grove Health Microsoft 365", None, "active"),
}

# line id -> (agreement, product, quantity, unit price or None (the product's), taxable, grouping)
LINES: dict[int, tuple[int, int, int, str | None, bool, str | None]] = {
    631: (131, 1, 5, None, False, None),
    632: (132, 1, 3, None, False, None),
    633: (133, 1, 3, None, False, None),
    635: (135, 1, 4, None, False, None),
    636: (136, 4, 2, None, False, None),
    637: (137, 1, 10, None, False, None),
    638: (137, 4, 4, None, False, None),
    639: (139, 1, 8, "19.50", False, None),
    640: (139, 4, 4, None, True, "Microsoft 365"),
    641: (141, 1, 10, None, False, None),
    642: (141, 3, 10, None, False, None),
    643: (141, 2, 6, None, False, None),
    644: (144, 5, 20, "20.90", False, None),
}


def _user(upn: str, name: str, licences: list[str], **fields: Any) -> dict[str, Any]:
    return {"userPrincipalName": upn, "displayName": name, "licenses": licences, **fields}


def _people(domain: str, prefix: str, count: int, licences: list[str], **fields: Any) -> list[dict[str, Any]]:
    return [_user(f"{prefix}{n}@{domain}", f"{prefix.title()} {n}", licences, **fields) for n in range(1, count + 1)]


def graph_tenants() -> list[dict[str, Any]]:
    alpine = "alpinedental.onmicrosoft.com"
    birch = "birchlogistics.onmicrosoft.com"
    cedar = "cedarlaw.onmicrosoft.com"
    dune = "duneretail.onmicrosoft.com"
    elm = "elmarchitects.onmicrosoft.com"
    fir = "firconsulting.onmicrosoft.com"
    grove = "grovehealth.onmicrosoft.com"
    return [
        {"tenantId": ALPINE, "displayName": "Alpine Dental", "defaultDomain": alpine,
         "skus": [{"skuId": SPB, "skuPartNumber": "SPB", "enabled": 14}],
         "users": [*_people(alpine, "dentist", 5, ["SPB"], department="Clinical"),
                   _user(f"retired.dentist@{alpine}", "Retired Dentist", ["SPB"], department="Clinical",
                         accountEnabled=False),
                   *_people(alpine, "admin", 3, ["SPB"], department="Admin"),
                   _user(f"hygienist@{alpine}", "Hygienist", ["SPB"], department=" clinical "),
                   _user(f"receptionist@{alpine}", "Receptionist", ["SPB"], department="Reception"),
                   _user(f"no.department@{alpine}", "No Department", ["SPB"])]},
        {"tenantId": BIRCH, "displayName": "Birch Logistics", "defaultDomain": birch,
         "skus": [{"skuId": SPB, "skuPartNumber": "SPB", "enabled": 8}],
         "users": [*_people(birch, "leeds", 3, ["SPB"], city="Leeds"),
                   *_people(birch, "london", 2, ["SPB"], city="London"),
                   _user(f"nocity@{birch}", "No City", ["SPB"])]},
        {"tenantId": CEDAR, "displayName": "Cedar Law", "defaultDomain": cedar,
         "skus": [{"skuId": SPB, "skuPartNumber": "SPB", "enabled": 5},
                  {"skuId": EXO, "skuPartNumber": "EXCHANGESTANDARD", "enabled": 3}],
         "users": [*_people(cedar, "lawyer", 5, ["SPB"]), *_people(cedar, "clerk", 3, ["EXCHANGESTANDARD"])]},
        {"tenantId": DUNE, "displayName": "Dune Retail", "defaultDomain": dune,
         "skus": [{"skuId": SPB, "skuPartNumber": "SPB"}, {"skuId": EXO, "skuPartNumber": "EXCHANGESTANDARD"}],
         "subscriptions": [
             {"id": "d4000000-5b00-4000-8000-000000000001", "skuId": SPB, "totalLicenses": 10,
              "createdDateTime": "2026-02-01T00:00:00Z", "nextLifecycleDateTime": "2027-02-01T00:00:00Z"},
             {"id": "d4000000-5b00-4000-8000-000000000002", "skuId": SPB, "totalLicenses": 5, "status": "Suspended",
              "createdDateTime": "2025-06-01T00:00:00Z", "nextLifecycleDateTime": "2026-12-30T00:00:00Z"},
             {"id": "d4000000-5b00-4000-8000-000000000003", "skuId": EXO, "totalLicenses": 3,
              "createdDateTime": "2026-02-01T00:00:00Z", "nextLifecycleDateTime": "2027-02-01T00:00:00Z"},
             {"id": "d4000000-5b00-4000-8000-000000000004", "skuId": EXO, "totalLicenses": 2, "status": "Warning",
              "createdDateTime": "2025-11-01T00:00:00Z", "nextLifecycleDateTime": "2026-12-31T00:00:00Z"}],
         "users": [*_people(dune, "cashier", 13, ["SPB"]), *_people(dune, "stock", 5, ["EXCHANGESTANDARD"])]},
        {"tenantId": ELM, "displayName": "Elm Architects", "defaultDomain": elm,
         "skus": [{"skuId": SPB, "skuPartNumber": "SPB", "enabled": 10},
                  {"skuId": EXO, "skuPartNumber": "EXCHANGESTANDARD", "enabled": 6}],
         "users": [*_people(elm, "architect", 10, ["SPB"]), *_people(elm, "drafter", 6, ["EXCHANGESTANDARD"])]},
        {"tenantId": FIR, "displayName": "Fir Consulting", "defaultDomain": fir,
         "skus": [{"skuId": SPB, "skuPartNumber": "SPB"}, {"skuId": E3, "skuPartNumber": "ENTERPRISEPACK"},
                  {"skuId": BS, "skuPartNumber": "O365_BUSINESS_PREMIUM"}],
         "subscriptions": [
             {"id": "f6000000-5b00-4000-8000-000000000001", "skuId": SPB, "totalLicenses": 10,
              "createdDateTime": "2026-11-16T09:00:00Z", "nextLifecycleDateTime": "2027-11-16T00:00:00Z"},
             {"id": "f6000000-5b00-4000-8000-000000000002", "skuId": E3, "totalLicenses": 10,
              "createdDateTime": "2025-03-01T00:00:00Z", "nextLifecycleDateTime": "2027-03-01T00:00:00Z"},
             {"id": "f6000000-5b00-4000-8000-000000000003", "skuId": BS, "totalLicenses": 6,
              "createdDateTime": "2025-12-01T00:00:00Z", "nextLifecycleDateTime": "2026-12-01T00:00:00Z"}],
         "users": [*_people(fir, "consultant", 8, ["SPB"]), *_people(fir, "analyst", 9, ["ENTERPRISEPACK"]),
                   *_people(fir, "partner", 5, ["O365_BUSINESS_PREMIUM"])]},
        {"tenantId": GROVE, "displayName": "Grove Health", "defaultDomain": grove,
         "skus": [{"skuId": SPB, "skuPartNumber": "SPB"}],
         "subscriptions": [
             {"id": GROVE_ANNUAL, "skuId": SPB, "totalLicenses": 20, "commerceSubscriptionId": GROVE_ANNUAL,
              "createdDateTime": "2026-02-01T00:00:00Z", "nextLifecycleDateTime": "2027-02-01T00:00:00Z"},
             {"id": GROVE_MONTHLY, "skuId": SPB, "totalLicenses": 5, "commerceSubscriptionId": GROVE_MONTHLY,
              "createdDateTime": "2026-09-15T00:00:00Z", "nextLifecycleDateTime": "2026-12-15T00:00:00Z"}],
         "users": _people(grove, "nurse", 24, ["SPB"])},
    ]


def partner_center() -> dict[str, Any]:
    return {
        "partnerTenantId": PARTNER, "today": TODAY.isoformat(),
        "applications": [{"clientId": PC_APP, "clientSecret": "realistic-partner-center-secret"}],
        "customers": [{"id": GROVE, "companyName": "Grove Health", "subscriptions": [
            {"id": GROVE_ANNUAL, "offerId": "CFQ7TTC0LCHC:0002", "offerName": "Microsoft 365 Business Premium",
             "quantity": 20, "termDuration": "P1Y", "billingCycle": "monthly", "effectiveStartDate": "2026-02-01",
             "commitmentEndDate": "2027-01-31", "unitPrice": "19.80"},
            {"id": GROVE_MONTHLY, "offerId": "CFQ7TTC0LCHC:0002", "offerName": "Microsoft 365 Business Premium",
             "quantity": 5, "termDuration": "P1M", "billingCycle": "monthly", "effectiveStartDate": "2026-09-15",
             "commitmentEndDate": "2026-12-14", "unitPrice": "23.76"}]}],
    }


def connectwise_section() -> dict[str, Any]:
    return {
        "companyId": "realisticmsp", "today": TODAY.isoformat(),
        "credentials": [{"publicKey": "rmPublic", "privateKey": "rmPrivate",
                         "clientId": "9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}],
        "companies": [{"id": cid, "identifier": name.replace(" ", "").replace("-", ""), "name": name}
                      for cid, name in COMPANIES.items()],
        "catalog": [{"id": pid, "identifier": ident, "description": name, "price": float(price),
                     "cost": float(cost), "taxable": False} for pid, (name, ident, price, cost) in PRODUCTS.items()],
        "agreementTypes": [{"id": 1, "name": "Microsoft 365", "prorate": True, "billingCycle": "Monthly"}],
        "agreements": [{"id": aid, "name": name, "companyId": company, "typeId": 1, "startDate": "2026-01-01",
                        **({"endDate": end} if end else {}),
                        **({"cancelled": True, "dateCancelled": "2026-10-15"} if state == "cancelled" else {})}
                       for aid, (company, name, end, state) in AGREEMENTS.items()],
        "additions": [{"id": lid, "agreementId": aid, "productId": pid, "quantity": qty,
                       "effectiveDate": "2026-01-01",
                       **({"unitPrice": float(price)} if price else {}),
                       **({"taxable": True} if taxable else {}),
                       **({"invoiceGrouping": grouping} if grouping else {})}
                      for lid, (aid, pid, qty, price, taxable, grouping) in LINES.items()],
    }


def autotask_section() -> dict[str, Any]:
    return {
        "today": TODAY.isoformat(),
        "users": [{"username": "seatsync@realisticmsp.example", "secret": "rmSecret",
                   "integrationCode": "REALISTICMSP"}],
        "contractCategories": ["Microsoft 365"],
        "companies": [{"id": cid, "name": name} for cid, name in COMPANIES.items()],
        # Exchange bills with a taxable billing code (Autotask's tax category lives there)
        "services": [{"id": pid, "name": name, "unitPrice": float(price), "unitCost": float(cost),
                      **({"billingCodeId": 29682900} if pid == 4 else {})}
                     for pid, (name, _, price, cost) in PRODUCTS.items()],
        "contracts": [{"id": aid, "name": name, "companyId": company, "category": "Microsoft 365",
                       "startDate": "2026-01-01", "endDate": end or "2027-12-31",
                       **({"status": "Inactive"} if state == "cancelled" else {})}
                      for aid, (company, name, end, state) in AGREEMENTS.items()],
        "contractServices": [{"id": lid, "contractId": aid, "serviceId": pid, "units": qty,
                              **({"unitPrice": float(price)} if price and pid != 1 else {}),
                              **({"adjustedPrice": float(price)} if price and pid == 1 else {})}
                             for lid, (aid, pid, qty, price, _, _) in LINES.items()],
    }


def halo_section() -> dict[str, Any]:
    return {
        "today": TODAY.isoformat(), "tenant": "realisticmsp", "rateLimit": None,
        "applications": [{"clientId": "c0ffee00-1111-4222-8333-444455556666", "clientSecret": "rmHaloSecret"}],
        "clients": [{"id": cid, "name": name} for cid, name in COMPANIES.items()],
        "items": [{"id": pid, "name": name, "price": float(price), "cost": float(cost),
                   **({"taxCode": 2} if pid == 4 else {})}
                  for pid, (name, _, price, cost) in PRODUCTS.items()],
        "recurringInvoices": [{"id": -aid, "clientId": company, "reference": name, "period": "Monthly",
                               "startDate": "2026-01-01", **({"endDate": end} if end else {}),
                               **({"disabled": True} if state == "cancelled" else {})}
                              for aid, (company, name, end, state) in AGREEMENTS.items()],
        "lines": [{"id": lid, "invoiceId": -aid, "itemId": pid, "quantity": qty,
                   **({"unitPrice": float(price)} if price else {}),
                   **({"taxCode": 2} if taxable else {})}
                  for lid, (aid, pid, qty, price, taxable, _) in LINES.items()],
    }


SECTIONS = {"connectwise": connectwise_section, "autotask": autotask_section, "halopsa": halo_section}


def scenario(psa: str) -> dict[str, Any]:
    return {
        "graph": {"partner": {"tenantId": PARTNER, "displayName": "Realistic MSP",
                              "defaultDomain": "realisticmsp.onmicrosoft.com", "clientId": GRAPH_APP,
                              "clientSecret": "realistic-graph-secret",
                              "users": [{"userPrincipalName": "seatsync@realisticmsp.onmicrosoft.com",
                                         "displayName": "SeatSync"}]},
                  "tenants": graph_tenants()},
        "partnercenter": partner_center(),
        "teams": {"workflows": [{"id": "billing", "sig": "realisticSig"}]},
        psa: SECTIONS[psa](),
    }


def agreement_id(psa: str, agreement: int) -> str:
    return str(-agreement if psa == "halopsa" else agreement)


CONNECTIONS = {
    "connectwise": {"name": "connectwise", "type": "connectwise", "url": "${CONNECTWISE_URL}",
                    "companyId": "realisticmsp", "publicKey": {"setting": "CW_PUBLIC_KEY"},
                    "privateKey": {"setting": "CW_PRIVATE_KEY"}, "clientId": {"setting": "CW_CLIENT_ID"}},
    "autotask": {"name": "autotask", "type": "autotask", "username": {"setting": "AUTOTASK_USERNAME"},
                 "secret": {"setting": "AUTOTASK_SECRET"}, "integrationCode": {"setting": "AUTOTASK_INTEGRATION_CODE"},
                 "discoveryUrl": "${AUTOTASK_URL}"},
    "halopsa": {"name": "halopsa", "type": "halopsa", "url": "${HALOPSA_URL}", "tenant": "realisticmsp",
                "clientId": {"setting": "HALO_CLIENT_ID"}, "clientSecret": {"setting": "HALO_CLIENT_SECRET"},
                "lines": "recurring-invoice"},
}


def configuration(psa: str) -> dict[str, Any]:
    def mapping(sku: str, agreement: int, line: int | None, profile: str, **options: Any) -> dict[str, Any]:
        found = {"skuId": sku, "agreementId": agreement_id(psa, agreement), "profile": profile, **options}
        if line is not None:
            found["lineId"] = str(line)
        return found

    def company(cid: int, licences: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
        return {"psa": psa, "companyId": str(cid), "name": COMPANIES[cid], **options, "licences": licences}

    types = {"agreementTypes": ["Microsoft 365"]} if psa != "halopsa" else {}
    return {
        "psaConnections": [CONNECTIONS[psa]],
        "subscriptionSources": [{"name": "partner-center", "type": "partner-center", "partnerTenantId": PARTNER,
                                 "clientId": {"setting": "PARTNER_CENTER_CLIENT_ID"},
                                 "clientSecret": {"setting": "PARTNER_CENTER_CLIENT_SECRET"},
                                 "url": "${PARTNER_CENTER_URL}", "authorityHost": "${PARTNER_CENTER_URL}"}],
        "billingProfiles": [
            {"name": "m365-bp", "psa": psa, "productId": "1", **types, "price": {"mode": "psa"}},
            {"name": "exchange-p1", "psa": psa, "productId": "4", **types},
            {"name": "o365-e3", "psa": psa, "productId": "3", **types},
            {"name": "m365-bs", "psa": psa, "productId": "2", **types},
            {"name": "m365-bp-annual", "psa": psa, "productId": "5", "price": {"mode": "custom", "amount": "20.90"}},
            {"name": "m365-bp-monthly", "psa": psa, "productId": "6", "price": {"mode": "markup", "percent": "20"}},
        ],
        "notifications": {"teams": [{"name": "billing", "webhook": {"setting": "TEAMS_WEBHOOK_URL"}}]},
        "tenants": [
            {"tenantId": ALPINE, "name": "Alpine Dental", "companies": [
                company(31, [mapping(SPB, 131, 631, "m365-bp")], userFilter={"department": ["Clinical"]}),
                company(32, [mapping(SPB, 132, 632, "m365-bp")], userFilter={"department": ["Admin"]})]},
            {"tenantId": BIRCH, "name": "Birch Logistics", "companies": [
                company(33, [mapping(SPB, 133, 633, "m365-bp")], userFilter={"city": ["Leeds"]}),
                company(34, [mapping(SPB, 134, None, "m365-bp")], catchAll=True)]},
            {"tenantId": CEDAR, "name": "Cedar Law", "companies": [
                company(35, [mapping(SPB, 135, 635, "m365-bp"), mapping(EXO, 136, 636, "exchange-p1")])]},
            {"tenantId": DUNE, "name": "Dune Retail", "companies": [
                company(36, [mapping(SPB, 137, 637, "m365-bp"), mapping(EXO, 137, 638, "exchange-p1")])]},
            {"tenantId": ELM, "name": "Elm Architects", "companies": [
                company(37, [mapping(SPB, 139, 639, "m365-bp"), mapping(EXO, 139, 640, "exchange-p1")])]},
            {"tenantId": FIR, "name": "Fir Consulting", "companies": [
                company(38, [mapping(SPB, 141, 641, "m365-bp"), mapping(E3, 141, 642, "o365-e3"),
                             mapping(BS, 141, 643, "m365-bs", decreasePolicy="defer")])]},
            {"tenantId": GROVE, "name": "Grove Health", "companies": [
                company(39, [mapping(SPB, 144, 644, "m365-bp-annual", subscriptionIds=[GROVE_ANNUAL]),
                             mapping(SPB, 144, None, "m365-bp-monthly", subscriptionIds=[GROVE_MONTHLY],
                                     subscriptionTerm="monthly")])]},
        ],
    }


def world(psa: str) -> tuple[dict[str, Any], str]:
    """The scenario and the configuration file's text (with the emulators' ``${...}`` placeholders)."""
    return scenario(psa), yaml.safe_dump(configuration(psa), sort_keys=False)
