"""Reading the fields of a subscription source's answers strictly, shared by the Partner Center
and Pax8 adapters: a field that is missing or not what it must be raises ``SourceError`` naming
the record and the field, so that a malformed answer is never taken for the truth."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from shared.domain.model import MAX_COUNT, count_problem
from shared.errors import SourceError

_FRACTION = re.compile(r"(\.\d{6})\d+")
_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


class Fields:
    """One record of a source's answer, read field by field."""

    def __init__(self, source: str, raw: Any, what: str) -> None:
        if not isinstance(raw, dict):
            raise SourceError(source, f"{what} is not a JSON object")
        self.source = source
        self.raw = raw
        self.what = what

    def _fail(self, name: str, problem: str) -> SourceError:
        return SourceError(self.source, f"{self.what}: '{name}' {problem}")

    def text(self, name: str) -> str:
        value = self.raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise self._fail(name, f"is missing or not text ({value!r})")
        return value.strip()

    def optional_text(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self._fail(name, f"is not text ({value!r})")
        return value.strip()

    def whole(self, name: str) -> int:
        """A count of seats: a JSON number with no fraction (1 and 1.0 are both 1) from 0 to
        ``MAX_COUNT``; NaN, infinities and 1e300 are refused like text or a fraction."""
        value = self.raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(name, f"is missing or not a number ({value!r})")
        problem = count_problem(value)
        if problem is not None:
            raise self._fail(name, f"is not a whole number of seats from 0 to {MAX_COUNT} ({value!r})")
        return int(value)

    def money(self, name: str) -> Decimal | None:
        """A price or cost as an exact Decimal (from the JSON number's text), or None."""
        value = self.raw.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self._fail(name, f"is not a number ({value!r})")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise self._fail(name, f"is not a number ({value!r})") from None
        if not amount.is_finite():
            raise self._fail(name, f"is not a finite number ({value!r})")
        return amount

    def flag(self, name: str) -> bool | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self._fail(name, f"is not true or false ({value!r})")
        return value

    def moment(self, name: str) -> datetime | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        parsed = parse_moment(value)
        if parsed is None:
            raise self._fail(name, f"is not an ISO 8601 date-time ({value!r})")
        return parsed

    def day(self, name: str) -> date | None:
        moment = self.moment(name)
        return moment.date() if moment else None

    def child(self, name: str) -> Fields | None:
        value = self.raw.get(name)
        if value is None:
            return None
        return Fields(self.source, value, f"{self.what}.{name}")

    def items(self, name: str) -> list[Fields]:
        value = self.raw.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._fail(name, "is not a list")
        return [Fields(self.source, item, f"{self.what}.{name}[{i}]") for i, item in enumerate(value)]


def parse_moment(value: Any) -> datetime | None:
    """An ISO 8601 date or date-time as a UTC datetime (a date alone is its midnight UTC; a
    time without an offset is taken as UTC, as both sources document their times)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = _FRACTION.sub(r"\1", value.strip().replace("Z", "+00:00"))
    text = _OFFSET.sub(r"\1:\2", text) if "T" in text else text
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def json_body(source: str, response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        raise SourceError(source, f"{what}: the answer is not JSON", response.status_code,
                          response.request.method if response.request else None, response.url) from None


def json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):  # not JSON, or nested deeper than any real answer
        return None
