"""The PSA contract suite's fixtures: one equivalent small MSP in each PSA's emulator, the real
client of that PSA, and what the suite reads back from the emulator (writes sent, what the PSA
bills) to check the client through ``PsaPort`` only.

``ensure_quantity`` is the guard a push uses so that a second identical push writes nothing:
read the line, and write only when the PSA does not already bill the target quantity.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from emulators.autotask import AutotaskEmulator
from emulators.base import Emulator, RunningEmulator
from emulators.connectwise import ConnectWiseEmulator
from emulators.halopsa import HaloEmulator
from emulators.tls import TlsFiles
from shared.adapters.autotask import AutotaskClient, AutotaskLimits
from shared.adapters.connectwise import ConnectWiseClient
from shared.adapters.halopsa import HaloClient, HaloLimits
from shared.adapters.http import RetryingHttp
from shared.domain.model import BilledLine
from shared.ports import NewLine, PsaPort
from tests.psa_test_support import recording_http

TODAY = date(2026, 1, 15)
PERIOD_START = date(2026, 1, 1)
PERIOD_END = date(2026, 1, 31)
NEXT_PERIOD = date(2026, 2, 1)
CW_CLIENT_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"

# The one MSP every PSA holds: two companies, three contacts, three products (one inactive), one
# monthly agreement of Fabrikam starting 2026-01-01 billing 20 Business Premium seats, and an
# agreement of Contoso that was cancelled (made inactive) with no line left.
COMPANIES = [(19, "Fabrikam Ltd", "fabrikam.com"), (20, "Contoso Ltd", None)]
CONTACTS = [(7, 19, "Ann", "Lee", "ann@fabrikam.com"), (8, 19, "Bob", "Kay", "bob@fabrikam.com"),
            (9, 20, "Cy", "", "cy@contoso.com")]
PRODUCTS = [(1, "M365-BP", "Microsoft 365 Business Premium", 22.0, 19.8, False),
            (2, "M365-E3", "Microsoft 365 E3", 36.0, 32.4, False),
            (3, "OLD-BACKUP", "Retired backup", 5.0, 1.0, True)]
AGREEMENT_TYPE = "Microsoft 365"
LINE_QUANTITY = 20
# Billing attributes: the E3 product is taxable (ConnectWise) / has its own billing code (Autotask) / tax and
# nominal codes (Halo); the base line of Business Premium bills with attributes of its own, unlike its product.
TAXABLE_PRODUCT = "2"


def connection_entry(kind: str) -> dict[str, Any]:
    """The ``psaConnections`` entry of ``kind`` in a configuration document (its secrets are
    never read: the tests give the client themselves)."""
    entry: dict[str, Any] = {
        "connectwise": {"type": "connectwise", "url": "https://cw.example.com/v2025_1/apis/3.0", "companyId": "msp",
                        "publicKey": {"setting": "A"}, "privateKey": {"setting": "B"}, "clientId": CW_CLIENT_ID},
        "autotask": {"type": "autotask", "username": "seatsync@msp.example", "secret": {"setting": "S"},
                     "integrationCode": {"setting": "I"}},
        "halopsa": {"type": "halopsa", "url": "https://halo.example.com", "clientId": "seatsync-app",
                    "clientSecret": {"setting": "S"}},
    }[kind]
    return {"name": kind, **entry}


def ensure_quantity(psa: PsaPort, line: BilledLine, quantity: int, effective_date: date) -> BilledLine | None:
    """Bring a line to ``quantity`` unless the PSA already bills it: None when nothing was written."""
    current = psa.get_line(line.agreement_id, line.line_id)
    if current.quantity == Decimal(quantity):
        return None
    return psa.set_quantity(current, quantity, effective_date)


@dataclass
class PsaUnderTest:
    """One PSA of the suite: its emulator, a factory of its real client and read-backs."""

    kind: str
    emulator: Emulator
    running: RunningEmulator
    tls: TlsFiles
    agreement_id: str
    line_id: str
    make: Callable[[RetryingHttp], PsaPort]
    lines_path: str  # a regular expression for the request that reads an agreement's lines
    missing_agreement_id: str
    cancelled_agreement_id: str  # Contoso's agreement, cancelled (made inactive) in the PSA
    sleeps: list[float] = field(default_factory=list)

    def client(self) -> PsaPort:
        return self.make(recording_http(self.kind, self.tls, self.sleeps.append))

    def log(self) -> list[dict[str, Any]]:
        return self.emulator.requests_log()

    def writes(self) -> int:
        """Requests that change something in the PSA (reads, queries and tokens excluded)."""
        reads = re.compile(r"/query(/next|/count)?$|/auth/token$", re.IGNORECASE)
        return sum(1 for entry in self.log()
                   if entry["method"] in ("PATCH", "PUT", "DELETE")
                   or (entry["method"] == "POST" and not reads.search(entry["path"])))

    def fault(self, **rule: Any) -> None:
        self.emulator.faults.add(rule)

    def billed(self, line_id: str) -> Decimal:
        """What the PSA bills for a line from now on, read from the emulator's own state."""
        state = self.emulator.state()
        if self.kind == "connectwise":
            for agreement in state["agreements"]:
                for addition in agreement["additions"]:
                    if str(addition["id"]) == line_id:
                        return Decimal(str(addition["quantity"]))
        elif self.kind == "autotask":
            for contract in state["contracts"]:
                for service in contract["services"]:
                    if str(service["id"]) == line_id:
                        return Decimal(service["units"])
        else:
            for invoice in state["recurringInvoices"]:
                for line in invoice["lines"]:
                    if str(line["id"]) == line_id:
                        return Decimal(str(line["billed_quantity"]))
        raise AssertionError(f"{self.kind} holds no line {line_id}")

    def billing_held(self, line_id: str) -> dict[str, Any]:
        """The billing attributes the PSA holds for a line, read from the emulator's own state and
        named as ``BillingAttributes`` names them (only those the PSA has)."""
        state = self.emulator.state()
        if self.kind == "connectwise":
            held = next(a for g in state["agreements"] for a in g["additions"] if str(a["id"]) == line_id)
            grouping = held["invoiceGrouping"]
            return {key: value for key, value in {
                "taxable": held["taxableFlag"], "unit_of_measure": held["uom"],
                "invoice_grouping": str(grouping["id"]) if grouping else None,
                "purchase_item": held["purchaseItemFlag"], "special_order": held["specialOrderFlag"]}.items()
                if value is not None}
        if self.kind == "autotask":
            service = next(s for c in state["contracts"] for s in c["services"] if str(s["id"]) == line_id)
            billing_code = next(s["billingCodeID"] for s in state["services"] if s["id"] == service["serviceID"])
            return {"billing_code": str(billing_code)}
        held = next(ln for i in state["recurringInvoices"] for ln in i["lines"] if str(ln["id"]) == line_id)
        return {"tax_code": str(held["tax_code"]), "nominal_code": held["nominal_code"]}

    def prorated_increase(self, psa: PsaPort, line: BilledLine, added: int) -> BilledLine:
        """Record ``added`` seats from today the way this PSA prorates them."""
        if self.kind == "connectwise":
            return psa.create_line(NewLine(
                agreement_id=line.agreement_id, product_id=line.product_id, quantity=added, effective_date=TODAY,
                end_date=PERIOD_END, unit_price=line.unit_price, tag="seatsync:prorate:bp-0115",
                unit_cost=line.unit_cost, billing=line.billing,
                description="Business Premium added mid-period"))
        return psa.set_quantity(line, int(line.quantity) + added, TODAY)

    def assert_prorated(self, line: BilledLine, added: int) -> None:
        """The PSA holds the change as it prorates: a tagged line with an end date (ConnectWise),
        an adjustment with today's effective date (Autotask), a pending pro-rata entry for the rest
        of the period (Halo)."""
        state = self.emulator.state()
        if self.kind == "connectwise":
            additions = [a for agreement in state["agreements"] for a in agreement["additions"]
                         if a["serialNumber"] == "seatsync:prorate:bp-0115"]
            assert len(additions) == 1
            assert additions[0]["quantity"] == float(added)
            assert additions[0]["effectiveDate"] == "2026-01-15T00:00:00Z"
            assert additions[0]["cancelledDate"] == "2026-01-31T00:00:00Z"
            assert additions[0]["proratePrice"] == 12.06  # 22.00 x 17/31: ConnectWise prorates the days left
            return
        if self.kind == "autotask":
            assert isinstance(self.emulator, AutotaskEmulator)
            adjustment = state["adjustments"][-1]
            assert adjustment["contractServiceID"] == int(line.line_id)
            assert adjustment["unitChange"] == added
            assert adjustment["effectiveDate"] == "2026-01-15T00:00:00Z"
            ident = int(line.line_id)
            assert self.emulator.units_on(ident, date(2026, 1, 14)) == int(line.quantity)
            assert self.emulator.units_on(ident, TODAY) == int(line.quantity) + added
            return
        invoice = next(i for i in state["recurringInvoices"] if str(i["id"]) == line.agreement_id)
        entry = next(p for ln in invoice["lines"] if str(ln["id"]) == line.line_id for p in ln["prorata_data"])
        assert entry["date"] == "2026-01-15T00:00:00"
        assert entry["quantity"] == float(added)
        assert entry["unitprice"] == 12.06  # Halo's price for the 17 of 31 days left
        assert entry["isinvoiced"] is False


# --------------------------------------------------------------------------- scenarios


def connectwise_section() -> dict[str, Any]:
    return {
        "codebase": "v2025_1", "companyId": "seatsyncmsp", "today": TODAY.isoformat(),
        "credentials": [{"publicKey": "pubkey", "privateKey": "privkey", "clientId": CW_CLIENT_ID}],
        "companies": [{"id": i, "identifier": n.split()[0], "name": n, **({"website": w} if w else {})}
                      for i, n, w in COMPANIES],
        "contacts": [{"id": i, "companyId": c, "firstName": f, "lastName": sn, "email": e}
                     for i, c, f, sn, e in CONTACTS],
        "catalog": [{"id": i, "identifier": code, "description": d, "price": p, "cost": c, "inactive": off,
                     "taxable": str(i) == TAXABLE_PRODUCT, "uom": "Seat" if str(i) == TAXABLE_PRODUCT else "Each"}
                    for i, code, d, p, c, off in PRODUCTS],
        "agreementTypes": [{"id": 1, "name": AGREEMENT_TYPE, "prorate": True}],
        "agreements": [{"id": 100, "name": "Fabrikam M365", "companyId": 19, "typeId": 1,
                        "startDate": PERIOD_START.isoformat()},
                       {"id": 101, "name": "Contoso M365", "companyId": 20, "typeId": 1, "startDate": "2025-01-01",
                        "cancelled": True, "dateCancelled": "2025-12-31"}],
        "additions": [{"id": 500, "agreementId": 100, "productIdentifier": "M365-BP", "quantity": LINE_QUANTITY,
                       "effectiveDate": PERIOD_START.isoformat(), "taxable": True, "invoiceGrouping": "Licences",
                       "uom": "User", "unitCost": 18.5, "purchaseItem": True}],
    }


def autotask_section() -> dict[str, Any]:
    return {
        "today": TODAY.isoformat(),
        "users": [{"username": "seatsync@msp.example", "secret": "s3cret", "integrationCode": "SEATSYNC1"}],
        "contractCategories": ["Standard", AGREEMENT_TYPE],
        "companies": [{"id": i, "name": n, **({"website": w} if w else {})} for i, n, w in COMPANIES],
        "contacts": [{"id": i, "companyId": c, "firstName": f, "lastName": sn, "email": e}
                     for i, c, f, sn, e in CONTACTS],
        "services": [{"id": i, "name": code, "description": d, "unitPrice": p, "unitCost": c, "active": not off,
                      "billingCodeId": 7000 + i} for i, code, d, p, c, off in PRODUCTS],
        "contracts": [{"id": 100, "name": "Fabrikam M365", "companyId": 19, "startDate": PERIOD_START.isoformat(),
                       "endDate": "2026-12-31", "category": AGREEMENT_TYPE},
                      {"id": 101, "name": "Contoso M365", "companyId": 20, "startDate": "2025-01-01",
                       "endDate": "2026-12-31", "category": AGREEMENT_TYPE, "status": "Inactive"}],
        "contractServices": [{"id": 500, "contractId": 100, "serviceId": 1, "units": LINE_QUANTITY}],
    }


def halo_section() -> dict[str, Any]:
    return {
        "today": TODAY.isoformat(), "tenant": "seatsyncmsp", "allowNegativeProRata": True,
        "applications": [{"clientId": "seatsync-app", "clientSecret": "s3cret"}],
        "clients": [{"id": i, "name": n, **({"website": w} if w else {})} for i, n, w in COMPANIES],
        "users": [{"id": i, "clientId": c, "firstName": f, "surname": sn, "email": e} for i, c, f, sn, e in CONTACTS],
        "items": [{"id": i, "name": code, "description": d, "price": p, "cost": c, "inactive": off,
                   "taxCode": 2 if str(i) == TAXABLE_PRODUCT else 0, "nominalCode": f"40{i}0"}
                  for i, code, d, p, c, off in PRODUCTS],
        "recurringInvoices": [{"id": -1, "clientId": 19, "reference": "Fabrikam M365",
                               "startDate": PERIOD_START.isoformat()},
                              {"id": -2, "clientId": 20, "reference": "Contoso M365", "startDate": "2025-01-01",
                               "disabled": True}],
        "lines": [{"id": 500, "invoiceId": -1, "itemId": 1, "quantity": LINE_QUANTITY, "taxCode": 5,
                   "nominalCode": "4999", "unitCost": 18.5}],
    }


def start(kind: str, tls: TlsFiles) -> PsaUnderTest:
    """Start ``kind``'s emulator with the suite's MSP and say how to build its real client."""
    now = datetime(2026, 1, 15, 9, 0)
    if kind == "connectwise":
        cw = ConnectWiseEmulator(connectwise_section())
        running = RunningEmulator(cw, tls).start()
        base = f"{running.url}/v2025_1/apis/3.0"

        def make_cw(http: RetryingHttp) -> PsaPort:
            return ConnectWiseClient("connectwise", base, "seatsyncmsp", "pubkey", "privkey", CW_CLIENT_ID, http=http)

        return PsaUnderTest(kind, cw, running, tls, "100", "500", make_cw, r"/agreements/\d+/additions$", "999",
                            "101")
    if kind == "autotask":
        at = AutotaskEmulator(autotask_section(), now=lambda: now)
        running = RunningEmulator(at, tls).start()

        def make_at(http: RetryingHttp) -> PsaPort:
            return AutotaskClient(name="autotask", username="seatsync@msp.example", secret="s3cret",
                                  integration_code="SEATSYNC1", zone_url=None,
                                  discovery_url=f"{running.url}/ATServicesRest", hourly_request_share=Decimal("0.25"),
                                  max_concurrent_requests=3, http=http, limits=AutotaskLimits(Decimal("0.25"), 3),
                                  today=lambda: TODAY)

        return PsaUnderTest(kind, at, running, tls, "100", "500", make_at, r"/ContractServices/query$", "999",
                            "101")
    halo = HaloEmulator(halo_section(), now=lambda: now)
    running = RunningEmulator(halo, tls).start()

    def make_halo(http: RetryingHttp) -> PsaPort:
        return HaloClient(name="halopsa", base_url=running.url, tenant="seatsyncmsp", client_id="seatsync-app",
                          client_secret="s3cret", lines="recurring-invoice", requests_per_5_minutes=250, http=http,
                          limits=HaloLimits.create(250), today=lambda: TODAY)

    return PsaUnderTest("halopsa", halo, running, tls, "-1", "500", make_halo, r"^/api/RecurringInvoice/-?\d+$",
                       "-999", "-2")
