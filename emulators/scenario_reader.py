"""Strict reading of scenario sections, shared by the emulators.

Every read takes a value and its path in the scenario (``connectwise.additions[3].quantity``)
and raises ``EmulatorError`` naming that path when the value is not what the key needs, e.g.
``connectwise.additions[3].quantity: must be a number, got 'ten'``. Unknown keys are errors too,
so a misspelt key never silently falls back to a default.

``Node`` is one mapping of a section with its path: ``node.text("name", max_length=50)``,
``node.flag("inactive", False)``, ``node.optional("website", text)``, ``node.entries("companies",
allowed, required)`` (each entry with its id), ``node.reference("companyId", company_ids,
"company")``. The value readers (``text``, ``integer``, ...) also work on their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Concatenate, ParamSpec, TypeVar

from emulators.base import EmulatorError, FaultRule
from emulators.common import parse_day

T = TypeVar("T")
P = ParamSpec("P")

_REQUIRED: Any = object()
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# --------------------------------------------------------------------------- value readers


def fail(path: str, message: str) -> EmulatorError:
    return EmulatorError(f"{path}: {message}")


def unknown_key(path: str, key: str, allowed: Iterable[str]) -> EmulatorError:
    return fail(f"{path}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def mapping(value: Any, path: str, allowed: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(path, f"must be a mapping, got {value!r}")
    allowed_set = set(allowed)
    for key in value:
        if key not in allowed_set:
            raise unknown_key(path, key, allowed_set)
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


def guid(value: Any, path: str) -> str:
    """A GUID, in lower case."""
    found = text(value, path)
    if not _GUID.match(found):
        raise fail(path, f"must be a GUID, got {found!r}")
    return found.lower()


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
    result = parse_day(value)
    if result is None:
        raise fail(path, f"must be a date like 2026-01-01, got {value!r}")
    return result


def choice(value: Any, path: str, choices: Iterable[str]) -> str:
    options = tuple(choices)
    if value not in options:
        raise fail(path, f"must be one of {', '.join(options)}, got {value!r}")
    return str(value)


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


# --------------------------------------------------------------------------- nodes


class Node:
    """One mapping of a scenario section with its path, its keys read strictly.

    A typed read of a key with no ``default`` needs the key (list it as required); with a
    ``default``, an absent key reads as the default (an explicit null is still refused).
    ``optional`` reads an absent or null key as None."""

    def __init__(self, raw: Any, path: str, allowed: Iterable[str], required: Iterable[str] = ()) -> None:
        self.raw = mapping(raw, path, allowed, required)
        self.path = path

    @classmethod
    def section(cls, section: Any, root: str, allowed: Iterable[str]) -> Node:
        """A whole scenario section (None reads as an empty one)."""
        return cls(section if section is not None else {}, root, allowed)

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def _value(self, key: str, default: Any) -> Any:
        return self.raw.get(key) if default is _REQUIRED else self.raw.get(key, default)

    def text(self, key: str, default: Any = _REQUIRED, max_length: int | None = None,
             allow_empty: bool = False) -> str:
        return text(self._value(key, default), self.at(key), max_length, allow_empty)

    def integer(self, key: str, default: Any = _REQUIRED, minimum: int | None = 1,
                maximum: int | None = None) -> int:
        return integer(self._value(key, default), self.at(key), minimum, maximum)

    def number(self, key: str, default: Any = _REQUIRED, minimum: Decimal | None = None) -> Decimal:
        return number(self._value(key, default), self.at(key), minimum)

    def flag(self, key: str, default: Any = _REQUIRED) -> bool:
        return flag(self._value(key, default), self.at(key))

    def guid(self, key: str) -> str:
        return guid(self.raw.get(key), self.at(key))

    def client_credentials(self, key: str = "applications", client_id: Callable[[Any, str], str] | None = None
                           ) -> tuple[tuple[str, str], ...]:
        """The ``(clientId, clientSecret)`` of each application listed under ``key``; ``client_id``
        reads the id (default: any text)."""
        read_id = client_id or text
        found = []
        for index, raw in enumerate(self.listing(key)):
            entry = Node(raw, f"{self.at(key)}[{index}]", ("clientId", "clientSecret"), ("clientId", "clientSecret"))
            found.append((read_id(entry.raw["clientId"], entry.at("clientId")), entry.text("clientSecret")))
        return tuple(found)

    def day(self, key: str) -> date:
        return day(self.raw.get(key), self.at(key))

    def choice(self, key: str, choices: Iterable[str], default: Any = _REQUIRED) -> str:
        return choice(self._value(key, default), self.at(key), choices)

    def optional(self, key: str, reader: Callable[Concatenate[Any, str, P], T], *args: P.args,
                 **kwargs: P.kwargs) -> T | None:
        """``reader(value, path, *args, **kwargs)``, or None when the key is absent or null."""
        value = self.raw.get(key)
        return None if value is None else reader(value, self.at(key), *args, **kwargs)

    def listing(self, key: str) -> list[Any]:
        return listing(self.raw.get(key), self.at(key))

    def entries(self, key: str, allowed: Iterable[str], required: Iterable[str] = (), *,
                negative: bool = False) -> Iterator[tuple[int, Node]]:
        """The list under ``key``, one ``(id, entry)`` at a time (ids as ``assign_ids`` gives them)."""
        return records(self.listing(key), self.at(key), allowed, required, negative=negative)

    def reference(self, key: str, known: Container[int], what: str, *, minimum: int | None = 1) -> int:
        """The id under ``key``, which must be one of ``known`` (``no company with id 99``)."""
        ident = self.integer(key, minimum=minimum)
        if ident not in known:
            raise fail(self.at(key), f"no {what} with id {ident}")
        return ident

    def ordered(self, start_key: str, start: date | None, end_key: str, end: date | None) -> None:
        """Refuse an end before its start (either may be absent)."""
        if start is not None and end is not None and end < start:
            raise fail(self.at(end_key), f"{end} is before {start_key} {start}")

    def emails(self) -> tuple[str, ...]:
        """``email`` and/or ``emails`` of a contact entry, each checked to be an address."""
        found: list[str] = []
        if self.has("email"):
            found.append(self.text("email"))
        found += [text(e, f"{self.at('emails')}[{i}]") for i, e in enumerate(self.listing("emails"))]
        for index, address in enumerate(found):
            if "@" not in address:
                where = self.at("email") if index == 0 and self.has("email") else self.at("emails")
                raise fail(where, f"{address!r} is not an email address")
        return tuple(found)

    def faults(self) -> tuple[dict[str, Any], ...]:
        """The section's ``faults:``, each a valid fault rule."""
        return fault_rules(self.raw.get("faults"), self.at("faults"))


def records(entries: list[Any], path: str, allowed: Iterable[str], required: Iterable[str] = (), *,
            negative: bool = False) -> Iterator[tuple[int, Node]]:
    """The entries of a list, one ``(id, entry)`` at a time: ids are assigned (and checked) for
    the whole list first, then each entry is read when its turn comes."""
    ids = assign_ids(entries, path, negative=negative)
    allowed = tuple(allowed)
    required = tuple(required)
    for index, (raw, ident) in enumerate(zip(entries, ids, strict=True)):
        yield ident, Node(raw, f"{path}[{index}]", allowed, required)


class Unique:
    """Values that must not repeat within a list (compared whatever their case), each with the
    path of the entry that gave it first: ``duplicate identifier 'x' (also connectwise.catalog[0])``."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._first: dict[str, str] = {}

    def add(self, value: str, where: str, entry: str) -> None:
        key = value.lower()
        if key in self._first:
            raise fail(where, f"duplicate {self.what} {value!r} (also {self._first[key]})")
        self._first[key] = entry
