"""Strict readers of scenario values, shared by the Autotask and HaloPSA scenario sections.

Each reader takes the value and its path in the scenario (``autotask.contracts[2].startDate``)
and raises ``EmulatorError`` naming that path when the value is not what the key needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from emulators.base import EmulatorError, FaultRule

T = TypeVar("T")


def fail(path: str, message: str) -> EmulatorError:
    return EmulatorError(f"{path}: {message}")


def mapping(value: Any, path: str, allowed: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(path, f"must be a mapping, got {value!r}")
    allowed_set = set(allowed)
    for key in value:
        if key not in allowed_set:
            raise fail(f"{path}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed_set))})")
    for key in required:
        if value.get(key) is None:
            raise fail(f"{path}.{key}", "is required")
    return value


def listing(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(path, f"must be a list, got {value!r}")
    return value


def integer(value: Any, path: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(path, f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise fail(path, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise fail(path, f"must be at most {maximum}, got {value}")
    return value


def text(value: Any, path: str, max_length: int | None = None, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise fail(path, f"must be a string, got {value!r}")
    if not allow_empty and not value.strip():
        raise fail(path, "must not be empty")
    if max_length is not None and len(value) > max_length:
        raise fail(path, f"must be at most {max_length} characters, got {len(value)}")
    return value


def flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise fail(path, f"must be true or false, got {value!r}")
    return value


def number(value: Any, path: str, minimum: Decimal | None = None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise fail(path, f"must be a number, got {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise fail(path, f"must be a number, got {value!r}") from exc
    if not result.is_finite():
        raise fail(path, f"must be a finite number, got {value!r}")
    if minimum is not None and result < minimum:
        raise fail(path, f"must be at least {minimum}, got {value}")
    return result


def day(value: Any, path: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        stripped = value.strip()
        try:
            if len(stripped) == 10:
                return date.fromisoformat(stripped)
            return datetime.fromisoformat(stripped.replace("Z", "+00:00")).date()
        except ValueError:
            pass
    raise fail(path, f"must be a date like 2026-01-01, got {value!r}")


def choice(value: Any, path: str, choices: Iterable[str]) -> str:
    options = tuple(choices)
    if value not in options:
        raise fail(path, f"must be one of {', '.join(options)}, got {value!r}")
    return str(value)


def optional(raw: dict[str, Any], key: str, path: str, reader: Callable[[Any, str], T]) -> T | None:
    value = raw.get(key)
    return None if value is None else reader(value, f"{path}.{key}")


def assign_ids(entries: list[Any], path: str, *, negative: bool = False) -> list[int]:
    """Explicit ids are kept (and must be unique); missing ones follow the largest (or, for
    ``negative`` ids, go below the smallest), in file order: deterministic."""
    explicit: dict[int, int] = {}
    for index, raw in enumerate(entries):
        if isinstance(raw, dict) and raw.get("id") is not None:
            if negative:
                ident = integer(raw["id"], f"{path}[{index}].id", minimum=None, maximum=-1)
            else:
                ident = integer(raw["id"], f"{path}[{index}].id")
            if ident in explicit:
                raise fail(f"{path}[{index}].id", f"duplicate id {ident} (also {path}[{explicit[ident]}])")
            explicit[ident] = index
    step = -1 if negative else 1
    following = (min(explicit, default=0) if negative else max(explicit, default=0)) + step
    ids: list[int] = []
    for raw in entries:
        if isinstance(raw, dict) and raw.get("id") is not None:
            ids.append(int(raw["id"]))
        else:
            ids.append(following)
            following += step
    return ids


def fault_rules(value: Any, path: str) -> tuple[dict[str, Any], ...]:
    rules = listing(value, path)
    for index, rule in enumerate(rules):
        try:
            FaultRule.from_dict(rule)
        except EmulatorError as exc:
            raise fail(f"{path}[{index}]", str(exc)) from exc
    return tuple(rules)


def emails_of(item: dict[str, Any], at: str) -> tuple[str, ...]:
    """``email`` and/or ``emails`` of a contact entry, each checked to be an address."""
    found: list[str] = []
    if item.get("email") is not None:
        found.append(text(item["email"], f"{at}.email"))
    found += [text(e, f"{at}.emails[{i}]") for i, e in enumerate(listing(item.get("emails"), f"{at}.emails"))]
    for index, address in enumerate(found):
        if "@" not in address:
            where = f"{at}.email" if index == 0 and item.get("email") is not None else f"{at}.emails"
            raise fail(where, f"{address!r} is not an email address")
    return tuple(found)
