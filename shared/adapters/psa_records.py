"""What the PSA adapters (ConnectWise, Autotask, HaloPSA) share to read and write PSA records.

``RecordFields`` reads one JSON record field by field: each read checks the field's type and
raises ``PsaError`` naming the PSA, the record and the field (``field quantity: expected a
number, got 'ten'``). Each adapter's reader is a small subclass saying how its PSA writes flags
and dates, with the reads only that PSA needs.

The helpers check the ids, quantities and tags SeatSync is given or is to write, write dates as
PSAs take them, parse a PSA's JSON answers, turn its error statuses into ``PsaError`` and
recognise SeatSync's tag on a line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Self

import requests

from shared.domain.model import MAX_COUNT, MAX_PRICE
from shared.errors import InvalidIdError, PsaError

TAG_PREFIX = "seatsync"


# --------------------------------------------------------------------------- helpers


def whole_number(value: Any, what: str) -> int:
    """``value`` when it is an int (a bool is not) within ``±MAX_COUNT``; ``ValueError`` naming
    ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be a whole number (int), got {value!r}")
    if abs(value) > MAX_COUNT:
        raise ValueError(f"{what} cannot be beyond {MAX_COUNT} either way, got {value}")
    return value


def whole_quantity(value: Any) -> int:
    """A quantity to write: a whole number (int) from 0 to ``MAX_COUNT``; ``ValueError`` otherwise."""
    quantity = whole_number(value, "quantity")
    if quantity < 0:
        raise ValueError(f"quantity cannot be negative, got {quantity}")
    return quantity


def checked_quantity(value: Any) -> tuple[int, list[str]]:
    """A new line's quantity and what is wrong with it: ``(0, [the problem])`` when it is not a
    whole number of at least 0."""
    try:
        return whole_quantity(value), []
    except ValueError as exc:
        return 0, [str(exc)]


MAX_ID_DIGITS = 18
"""The PSAs' record ids are 32- or 64-bit integers: 18 digits hold every one of them."""


def numeric_id(value: str, what: str, *, signed: bool = False) -> int:
    """A record id given as text (``" 42"`` -> 42). ``what`` names the id in the
    ``InvalidIdError`` (a ``ValueError``; ``a ConnectWise agreement id``); ``signed`` accepts
    negative ids."""
    text = str(value).strip()
    digits = text.lstrip("-") if signed else text
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidIdError(f"{what} is a whole number, got {value!r}")
    if len(digits) > MAX_ID_DIGITS:
        raise InvalidIdError(f"{what} has at most {MAX_ID_DIGITS} digits, got {len(digits)}")
    return int(text)


def utc_midnight(value: date) -> str:
    """A date as the datetime PSAs take for it: ``2026-01-15T00:00:00Z``."""
    return f"{value.isoformat()}T00:00:00Z"


def iso_moment(text: str) -> date | datetime:
    """An ISO-8601 date (``2026-01-15``) or datetime (``Z`` for UTC); ``ValueError`` otherwise."""
    text = text.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def is_seatsync_tag(value: str | None) -> bool:
    """Whether a line's tag field marks it as SeatSync's: it starts with ``seatsync`` (any case)."""
    return bool(value) and str(value).strip().lower().startswith(TAG_PREFIX)


def too_long(field: str, value: str, limit: int, allows: str) -> list[str]:
    """``["invoiceDescription is 1200 characters; Autotask allows at most 1000"]`` when ``value``
    is longer than ``limit`` (``allows`` says whose limit it is), else ``[]``."""
    if len(value) <= limit:
        return []
    return [f"{field} is {len(value)} characters; {allows} at most {limit}"]


def tag_problems(tag: str | None, field: str, limit: int, allows: str) -> list[str]:
    """What is wrong with a tag SeatSync would write in ``field``: longer than ``limit``, or not
    starting with ``seatsync`` (SeatSync would not recognise its own line)."""
    if tag is None:
        return []
    problems = too_long(f"{field} (the tag)", tag, limit, allows)
    if not is_seatsync_tag(tag):
        problems.append(f"the tag must start with '{TAG_PREFIX}' so that SeatSync recognises the line, got {tag!r}")
    return problems


def record_label(kind: str, raw: Any) -> str:
    """A record named by its kind and id for messages (``contract 100``; ``?`` for a non-object)."""
    return f"{kind} {raw.get('id') if isinstance(raw, Mapping) else '?'}"


def json_answer(response: requests.Response, psa: str, method: str, url: str, record: str) -> Any:
    """The JSON of a PSA's answer, numbers with a fraction as ``Decimal``; None for an empty
    answer. An answer that is not JSON raises ``PsaError``."""
    if not response.content:
        return None
    try:
        return json.loads(response.text, parse_float=Decimal)
    except ValueError:
        raise PsaError(psa, f"the answer is not JSON: {response.text[:200]!r}", record, response.status_code,
                       method, url) from None
    except RecursionError:  # nesting no real answer has: refused like an answer that is not JSON
        raise PsaError(psa, "the answer is JSON nested too deeply to be read", record, response.status_code,
                       method, url) from None


def status_error(psa: str, status: int, detail: str, record: str, method: str, url: str, *,
                 maybe_created: str = "") -> PsaError:
    """The error for a PSA's answer with an error status (other than a refused login): not found,
    still throttled after retrying, or the PSA's own message. ``maybe_created`` is added to a 5xx
    answer to a write that may have happened all the same."""
    if status == 404:
        return PsaError(psa, f"not found ({detail or 'HTTP 404'})", record, status, method, url)
    if status == 429:
        return PsaError(psa, f"still throttled (HTTP 429) after retrying: {detail}", record, status, method, url)
    text = detail or f"HTTP {status}"
    if status >= 500:
        text += maybe_created
    return PsaError(psa, text, record, status, method, url)


# --------------------------------------------------------------------------- reading a record


class RecordFields:
    """Typed reads of one record, raising ``PsaError`` that names the record and field.

    A field that is absent or null reads as None (or the default given) unless it is required.
    Subclasses set how their PSA writes flags (``numeric_flags``: 1/0 as well as true/false) and
    what the messages call a flag and a date."""

    numeric_flags: ClassVar[bool] = False
    flag_expected: ClassVar[str] = "true or false"
    day_expected: ClassVar[str] = "an ISO-8601 datetime"
    finite_numbers: ClassVar[bool] = True

    def __init__(self, raw: Any, psa: str, record: str) -> None:
        if not isinstance(raw, Mapping):
            raise PsaError(psa, f"expected a JSON object, got {type(raw).__name__}", record)
        self.raw: Mapping[str, Any] = raw
        self.psa = psa
        self.record = record
        self.problems: list[str] = []

    @classmethod
    def of(cls, raw: Any, psa: str, kind: str) -> Self:
        """The reader of a record named by its kind and id (``contract 100``)."""
        return cls(raw, psa, record_label(kind, raw))

    def fail(self, key: str, problem: str) -> PsaError:
        return PsaError(self.psa, f"field {key}: {problem}", self.record)

    def integer(self, key: str, source: Mapping[str, Any] | None = None, label: str | None = None) -> int:
        """A whole number (``5``, or ``5.0`` as read). ``source`` is an object nested in the record
        to read it from, and ``label`` the name messages give the field (``company/id``)."""
        value = (source if source is not None else self.raw).get(key)
        if isinstance(value, Decimal) and value == value.to_integral_value():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(label or key, f"expected a whole number, got {value!r}")
        return value

    def ident(self, key: str = "id") -> int:
        """A record id (or a reference to one): a required whole number."""
        return self.integer(key)

    def optional_integer(self, key: str) -> int | None:
        return None if self.raw.get(key) is None else self.integer(key)

    def text(self, key: str, source: Mapping[str, Any] | None = None, label: str | None = None,
             optional: bool = True) -> str | None:
        value = (source if source is not None else self.raw).get(key)
        name = label or key
        if value is None:
            if optional:
                return None
            raise self.fail(name, "is missing")
        if not isinstance(value, str):
            raise self.fail(name, f"expected text, got {value!r}")
        return value

    def decimal(self, key: str, optional: bool = True) -> Decimal | None:
        value = self.raw.get(key)
        if value is None:
            if optional:
                return None
            raise self.fail(key, "is missing")
        if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
            raise self.fail(key, f"expected a number, got {value!r}")
        number = Decimal(str(value))
        if self.finite_numbers and not number.is_finite():
            raise self.fail(key, f"expected a finite number, got {value!r}")
        return number

    def bounded(self, key: str, limit: Decimal, source: Mapping[str, Any] | None = None,
                label: str | None = None) -> Decimal | None:
        """A number SeatSync bills from (a quantity, a price), None when absent. A value that is
        not a finite number within ``±limit`` is impossible data: it is recorded in ``problems``
        instead of raised (the caller marks the record ``unreadable``), so that this record alone
        is left as it is while the rest of the read stands; it reads as None."""
        value = (source if source is not None else self.raw).get(key)
        if value is None:
            return None
        problem = None
        if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
            problem = f"is {value!r}, not a number"
        else:
            number = Decimal(str(value))
            if not number.is_finite():
                problem = f"is {number}, not a finite number"
            elif abs(number) > limit:
                problem = f"is {number}, beyond the {limit:,} SeatSync accepts"
            else:
                return number
        self.problems.append(f"{label or key} {problem}")
        return None

    def quantity(self, key: str, source: Mapping[str, Any] | None = None, label: str | None = None
                 ) -> Decimal | None:
        """A billed quantity: at most ``MAX_COUNT`` seats either way (see ``bounded``)."""
        return self.bounded(key, Decimal(MAX_COUNT), source, label)

    def price(self, key: str) -> Decimal | None:
        """A unit price or cost: at most ``MAX_PRICE`` either way (see ``bounded``)."""
        return self.bounded(key, MAX_PRICE)

    @property
    def unreadable(self) -> str | None:
        """What ``bounded`` found impossible in this record, or None."""
        return "; ".join(self.problems) or None

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if self.numeric_flags and isinstance(value, int | Decimal) and value in (0, 1):
            return bool(value)
        raise self.fail(key, f"expected {self.flag_expected}, got {value!r}")

    def day(self, key: str) -> date | None:
        """The date of an ISO-8601 date or datetime (a datetime's own date, whatever its time)."""
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"expected {self.day_expected}, got {value!r}")
        try:
            moment = iso_moment(value)
        except ValueError:
            raise self.fail(key, f"expected an ISO-8601 datetime, got {value!r}") from None
        return moment.date() if isinstance(moment, datetime) else moment
