"""Autotask's REST query language: the ``filter`` of ``POST /V1.0/{Entity}/query``.

A query body is ``{"filter": [...], "IncludeFields": [...], "MaxRecords": 500}``. The top-level
filter items are AND-combined; an item is a condition ``{"op": "eq", "field": "companyID",
"value": 1}`` or a group ``{"op": "and"|"or", "items": [...]}``. Operators: ``eq noteq gt gte lt
lte beginsWith endsWith contains exist notExist in notIn``. Field names and string comparisons
are case-insensitive; a condition on a null field is false except ``notExist`` (and ``noteq``
/``notIn``, which hold for null). Dates compare as dates whatever the time part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

INT, NUM, STR, BOOL, DATE = "integer", "decimal", "string", "boolean", "datetime"
OPERATORS = frozenset({"eq", "noteq", "gt", "gte", "lt", "lte", "beginswith", "endswith", "contains", "exist",
                       "notexist", "in", "notin"})
MAX_RECORDS = 500


class QueryError(Exception):
    """A query Autotask refuses: answered 500 with ``{"errors": [message]}``."""


def parse_when(value: Any) -> datetime | None:
    """An Autotask date value: ``2026-01-15``, ``2026-01-15T00:00:00Z`` or with fractions."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            parsed = date.fromisoformat(text)
            return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _key(body: Mapping[str, Any], name: str) -> Any:
    for key, value in body.items():
        if key.lower() == name.lower():
            return value
    return None


class Query:
    """A parsed query body for one entity (``fields``: field name -> type)."""

    def __init__(self, body: Any, entity: str, fields: Mapping[str, str]) -> None:
        if not isinstance(body, Mapping):
            raise QueryError("The query body must be a JSON object with a filter.")
        self.entity = entity
        self.fields = fields
        self._lower = {name.lower(): name for name in fields}
        raw_filter = _key(body, "filter")
        if not isinstance(raw_filter, list) or not raw_filter:
            raise QueryError("A query must have a filter with at least one condition "
                             "(e.g. {\"op\": \"gte\", \"field\": \"id\", \"value\": 0}).")
        self.items = raw_filter
        self.predicate = self._all(raw_filter)
        include = _key(body, "IncludeFields")
        self.include: list[str] | None = None
        if include is not None:
            if not isinstance(include, list) or not all(isinstance(f, str) for f in include):
                raise QueryError("IncludeFields must be a list of field names.")
            self.include = [self._field(name) for name in include] if include else None
        max_records = _key(body, "MaxRecords")
        if max_records is None:
            self.max_records = MAX_RECORDS
        elif isinstance(max_records, bool) or not isinstance(max_records, int) or not 1 <= max_records <= MAX_RECORDS:
            raise QueryError(f"MaxRecords must be a whole number from 1 to {MAX_RECORDS}.")
        else:
            self.max_records = max_records

    def _field(self, name: Any) -> str:
        if not isinstance(name, str) or name.lower() not in self._lower:
            raise QueryError(f"Unable to find {name} in the {self.entity} entity.")
        return self._lower[name.lower()]

    def _all(self, items: list[Any]) -> Predicate:
        predicates = [self._item(item) for item in items]
        return lambda record: all(p(record) for p in predicates)

    def _item(self, item: Any) -> Predicate:
        if not isinstance(item, Mapping):
            raise QueryError(f"A filter item must be an object, got {item!r}.")
        op = str(_key(item, "op") or "").lower()
        if op in ("and", "or"):
            children = _key(item, "items")
            if not isinstance(children, list) or not children:
                raise QueryError(f"A filter group '{op}' needs a non-empty items list.")
            predicates = [self._item(child) for child in children]
            if op == "and":
                return lambda record: all(p(record) for p in predicates)
            return lambda record: any(p(record) for p in predicates)
        if op not in OPERATORS:
            raise QueryError(f"The filter operator '{_key(item, 'op')}' is not valid.")
        if _key(item, "udf"):
            raise QueryError("User-defined fields are not kept by this Autotask database.")
        name = self._field(_key(item, "field"))
        kind = self.fields[name]
        value = _key(item, "value")
        if op in ("exist", "notexist"):
            wanted = op == "exist"
            return lambda record: (record.get(name) not in (None, "")) == wanted
        if op in ("in", "notin"):
            if not isinstance(value, list):
                raise QueryError(f"The value of '{op}' on {name} must be a list.")
            options = [self._coerce(name, kind, v) for v in value]
            if op == "in":
                return lambda record: self._value(record, name, kind) in options
            return lambda record: self._value(record, name, kind) not in options
        target = self._coerce(name, kind, value)
        if op in ("beginswith", "endswith", "contains"):
            if kind != STR:
                raise QueryError(f"The operator '{op}' applies to text fields; {name} is {kind}.")
            needle = str(target)
            tests: dict[str, Callable[[str], bool]] = {
                "beginswith": lambda s: s.startswith(needle),
                "endswith": lambda s: s.endswith(needle),
                "contains": lambda s: needle in s,
            }
            test = tests[op]
            return lambda record: (v := self._value(record, name, kind)) is not None and test(str(v))
        compare: dict[str, Callable[[Any, Any], bool]] = {
            "eq": lambda a, b: a == b, "noteq": lambda a, b: a != b,
            "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
            "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
        }
        check = compare[op]

        def predicate(record: Mapping[str, Any]) -> bool:
            current = self._value(record, name, kind)
            if current is None or target is None:
                return op == "noteq" and (current is None) != (target is None)
            return check(current, target)

        return predicate

    def _coerce(self, name: str, kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind in (INT, NUM):
            if isinstance(value, bool):
                raise QueryError(f"The value {value!r} is not valid for {name} ({kind}).")
            try:
                number = Decimal(str(value))
            except InvalidOperation:
                raise QueryError(f"The value {value!r} is not valid for {name} ({kind}).") from None
            return number
        if kind == BOOL:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if value in (0, 1):
                return bool(value)
            raise QueryError(f"The value {value!r} is not valid for {name} (boolean).")
        if kind == DATE:
            moment = parse_when(value)
            if moment is None:
                raise QueryError(f"The value {value!r} is not a valid date for {name}.")
            return moment.date()
        return str(value).lower()

    @staticmethod
    def _value(record: Mapping[str, Any], name: str, kind: str) -> Any:
        value = record.get(name)
        if value is None:
            return None
        if kind in (INT, NUM):
            return Decimal(str(value)) if not isinstance(value, bool) else None
        if kind == BOOL:
            return bool(value)
        if kind == DATE:
            moment = parse_when(value)
            return moment.date() if moment else None
        return str(value).lower()

    def shape(self, record: Mapping[str, Any]) -> dict[str, Any]:
        if self.include is None:
            return dict(record)
        keep = set(self.include) | {"id"}
        return {key: value for key, value in record.items() if key in keep}

    def wanted_ids(self, field: str) -> set[int] | None:
        """The values a top-level ``eq``/``in`` condition on ``field`` allows (an index hint so
        large tables are not scanned), or None when the filter does not restrict ``field``."""
        allowed: set[int] | None = None
        for item in self.items:
            if not isinstance(item, Mapping) or str(_key(item, "field") or "").lower() != field.lower():
                continue
            op = str(_key(item, "op") or "").lower()
            value = _key(item, "value")
            values: list[Any] = value if op == "in" and isinstance(value, list) else [value] if op == "eq" else []
            if op not in ("eq", "in"):
                continue
            found: set[int] = set()
            for candidate in values:
                try:
                    found.add(int(Decimal(str(candidate))))
                except (InvalidOperation, ValueError):
                    continue
            allowed = found if allowed is None else allowed & found
        return allowed
