"""JSON forms of domain objects stored in Table Storage."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Any

from shared.domain.model import BillingAttributes, BillMode, ChangeKind, ChangeStatus, ContactDetails, PlannedChange


def change_to_json(change: PlannedChange) -> str:
    raw = asdict(change)
    raw["kind"] = change.kind.value
    raw["status"] = change.status.value
    raw["bill_mode"] = change.bill_mode.value if change.bill_mode else None
    for key in ("unit_price", "amount", "unit_cost", "old_unit_price"):
        raw[key] = None if raw[key] is None else str(raw[key])
    for key in ("effective_date", "end_date", "due_date"):
        raw[key] = None if raw[key] is None else raw[key].isoformat()
    return json.dumps(raw)  # billing attributes are text and flags: asdict's mapping is their JSON form


def change_from_json(text: str) -> PlannedChange:
    raw: dict[str, Any] = json.loads(text)
    raw["kind"] = ChangeKind(raw["kind"])
    raw["status"] = ChangeStatus(raw["status"])
    raw["bill_mode"] = BillMode(raw["bill_mode"]) if raw.get("bill_mode") else None
    for key in ("unit_price", "amount", "unit_cost", "old_unit_price"):
        raw[key] = None if raw.get(key) is None else Decimal(raw[key])
    for key in ("effective_date", "end_date", "due_date"):
        raw[key] = None if raw.get(key) is None else date.fromisoformat(raw[key])
    raw["billing"] = None if raw.get("billing") is None else BillingAttributes(**raw["billing"])
    raw["contact"] = None if raw.get("contact") is None else ContactDetails(**raw["contact"])
    return PlannedChange(**raw)
