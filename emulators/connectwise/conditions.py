"""The ConnectWise PSA query language: ``conditions``, ``childConditions``, ``orderBy``, ``fields``.

ConnectWise documents conditions as ``field operator value`` clauses joined with ``and``/``or``
and grouped with parentheses::

    company/id = 19 and (type/name = "Microsoft 365" or type/name like "M365*")
    lastUpdated > [2026-01-01T00:00:00Z]
    id in (100, 101, 102) and agreementStatus != "Cancelled" and endDate = null

Operators: ``= != < <= > >=``, ``like`` (``*`` or ``%`` wildcards), ``contains``, ``in (...)``,
each of the last three may be preceded by ``not``. Values: strings in double (or single) quotes,
numbers, ``true``/``false``, ``null`` (with ``=`` and ``!=`` only) and datetimes in square
brackets. Keywords and field names are case-insensitive; string comparisons are
case-insensitive too (the PSA runs on SQL Server with a case-insensitive collation).

Field paths are checked against a per-resource schema (``FieldSpec``) when the expression is
compiled, so a typo in a field name is a 400 rather than an empty result.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

# Field kinds of a resource schema.
STR = "string"
NUM = "number"
BOOL = "boolean"
DATE = "datetime"
REF = "reference"
LIST = "list"

FieldSpec = Mapping[str, str]
"""Canonical field path (``company/id``) -> kind. Reference objects list their own paths."""


class ConditionError(ValueError):
    """A query parameter the emulator rejects with 400 (the message says what and where)."""

    def __init__(self, message: str, parameter: str = "conditions") -> None:
        super().__init__(message)
        self.parameter = parameter


# --------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lpar>\()
  | (?P<rpar>\))
  | (?P<comma>,)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<dq>"(?:[^"\\]|\\.)*")
  | (?P<sq>'(?:[^'\\]|\\.)*')
  | (?P<date>\[[^\]]*\])
  | (?P<num>-?\d+(?:\.\d+)?(?![A-Za-z_/]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)

# Metadata fields conditions may name without their ``_info/`` prefix.
_ALIASES = {"lastupdated": "_info/lastUpdated", "dateentered": "_info/dateEntered",
            "updatedby": "_info/updatedBy", "enteredby": "_info/enteredBy"}

_KEYWORDS = frozenset({"and", "or", "not", "like", "contains", "in", "true", "false", "null"})


@dataclass(frozen=True)
class Token:
    kind: str  # lpar rpar comma op str num date word kw end
    text: str
    position: int
    value: Any = None


def tokenize(text: str, parameter: str = "conditions") -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ConditionError(
                f"{parameter}: unexpected character {text[position]!r} at position {position + 1}",
                parameter,
            )
        kind = match.lastgroup or ""
        raw = match.group(0)
        if kind == "ws":
            pass
        elif kind in ("dq", "sq"):
            body = raw[1:-1]
            tokens.append(Token("str", raw, position, re.sub(r"\\(.)", r"\1", body)))
        elif kind == "date":
            tokens.append(Token("date", raw, position, _parse_literal_date(raw, position, parameter)))
        elif kind == "num":
            tokens.append(Token("num", raw, position, Decimal(raw)))
        elif kind == "word":
            lowered = raw.lower()
            if lowered in _KEYWORDS:
                tokens.append(Token("kw", raw, position, lowered))
            else:
                tokens.append(Token("word", raw, position, raw))
        elif kind == "op":
            tokens.append(Token("op", raw, position, "!=" if raw == "<>" else raw))
        else:
            tokens.append(Token(kind, raw, position))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _parse_literal_date(raw: str, position: int, parameter: str) -> datetime:
    inner = raw[1:-1].strip()
    parsed = parse_datetime(inner)
    if parsed is None:
        raise ConditionError(
            f"{parameter}: {raw} at position {position + 1} is not a datetime "
            "(expected e.g. [2026-01-01T00:00:00Z])",
            parameter,
        )
    return parsed


def parse_datetime(text: str) -> datetime | None:
    """An ISO-8601 date or datetime as an aware UTC datetime (naive means UTC), else None."""
    candidate = text.strip()
    if not candidate:
        return None
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        if len(candidate) == 10:
            day = date.fromisoformat(candidate)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        value = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class Comparison:
    path: tuple[str, ...]
    kind: str
    operator: str  # = != < <= > >= like contains in
    negated: bool
    values: tuple[Any, ...]  # one value, or the list of ``in``
    literal_kinds: tuple[str, ...]


@dataclass(frozen=True)
class BoolOp:
    operator: str  # and / or
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Comparison | BoolOp | Not


class _Parser:
    def __init__(self, text: str, spec: FieldSpec, parameter: str, prefix: str = "") -> None:
        self.text = text
        self.spec = spec
        self.parameter = parameter
        self.prefix = prefix
        self.tokens = tokenize(text, parameter)
        self.index = 0
        self.lowered = {path.lower(): path for path in spec}
        for alias, target in _ALIASES.items():  # documented: lastUpdated > [2016-08-20T18:04:26Z]
            if alias not in self.lowered and target in spec:
                self.lowered[alias] = target

    # helpers
    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, message: str, token: Token | None = None) -> ConditionError:
        token = token or self.peek()
        where = f"at position {token.position + 1}" if token.kind != "end" else "at the end"
        return ConditionError(f"{self.parameter}: {message} {where}", self.parameter)

    def is_kw(self, token: Token, *words: str) -> bool:
        return token.kind == "kw" and token.value in words

    # grammar
    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.fail("is empty")
        node = self.parse_or()
        if self.peek().kind != "end":
            raise self.fail(f"unexpected {self.peek().text!r}")
        return node

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while self.is_kw(self.peek(), "or"):
            self.take()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def parse_and(self) -> Node:
        operands = [self.parse_unary()]
        while self.is_kw(self.peek(), "and"):
            self.take()
            operands.append(self.parse_unary())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def parse_unary(self) -> Node:
        token = self.peek()
        if self.is_kw(token, "not") and self.tokens[self.index + 1].kind == "lpar":
            self.take()
            return Not(self.parse_group())
        if token.kind == "lpar":
            return self.parse_group()
        return self.parse_comparison()

    def parse_group(self) -> Node:
        self.take()  # (
        node = self.parse_or()
        if self.peek().kind != "rpar":
            raise self.fail("expected ')'")
        self.take()
        return node

    def resolve(self, token: Token) -> tuple[tuple[str, ...], str]:
        raw = token.value
        full = f"{self.prefix}/{raw}" if self.prefix and not raw.lower().startswith(
            self.prefix.lower() + "/") else raw
        canonical = self.lowered.get(full.lower())
        if canonical is None:
            raise self.fail(f"unknown field {raw!r}", token)
        kind = self.spec[canonical]
        path = canonical.split("/")
        if self.prefix:
            path = path[1:]
        return tuple(path), kind

    def parse_comparison(self) -> Node:
        field_token = self.take()
        if field_token.kind != "word":
            raise self.fail(f"expected a field name, found {field_token.text or 'nothing'!r}", field_token)
        path, kind = self.resolve(field_token)
        negated = False
        token = self.take()
        if self.is_kw(token, "not"):
            negated = True
            token = self.take()
            if not self.is_kw(token, "like", "contains", "in"):
                raise self.fail("expected like, contains or in after not", token)
        if token.kind == "op" or self.is_kw(token, "like", "contains", "in"):
            operator = token.value
        else:
            raise self.fail(f"expected an operator after {field_token.text!r}", token)

        if operator == "in":
            if self.peek().kind != "lpar":
                raise self.fail("expected '(' after in")
            self.take()
            values: list[Any] = []
            kinds: list[str] = []
            while True:
                value, literal_kind = self.parse_value()
                values.append(value)
                kinds.append(literal_kind)
                separator = self.take()
                if separator.kind == "rpar":
                    break
                if separator.kind != "comma":
                    raise self.fail("expected ',' or ')' in the in list", separator)
            comparison = Comparison(path, kind, "in", negated, tuple(values), tuple(kinds))
        else:
            value, literal_kind = self.parse_value()
            comparison = Comparison(path, kind, operator, negated, (value,), (literal_kind,))
        self.check(comparison, field_token)
        return comparison

    def parse_value(self) -> tuple[Any, str]:
        token = self.take()
        if token.kind == "str":
            return token.value, STR
        if token.kind == "num":
            return token.value, NUM
        if token.kind == "date":
            return token.value, DATE
        if self.is_kw(token, "true", "false"):
            return token.value == "true", BOOL
        if self.is_kw(token, "null"):
            return None, "null"
        raise self.fail(f"expected a value, found {token.text or 'nothing'!r}", token)

    def check(self, comparison: Comparison, token: Token) -> None:
        name = token.text
        kind = comparison.kind
        if kind in (REF, LIST):
            raise self.fail(f"{name!r} is an object: compare one of its fields (e.g. {name}/id)", token)
        for literal_kind in comparison.literal_kinds:
            if literal_kind == "null":
                if comparison.operator not in ("=", "!=") or comparison.negated:
                    raise self.fail(f"null can only be compared with = or != ({name!r})", token)
                continue
            if comparison.operator in ("like", "contains") and literal_kind != STR:
                raise self.fail(f"{comparison.operator} needs a string value ({name!r})", token)
            if comparison.operator in ("like", "contains") and kind != STR:
                raise self.fail(f"{comparison.operator} only applies to text fields ({name!r})", token)
            if kind == DATE and literal_kind != DATE:
                raise self.fail(f"{name!r} is a datetime: write the value in square brackets, "
                                "e.g. [2026-01-01T00:00:00Z]", token)
            if kind == BOOL and literal_kind != BOOL:
                raise self.fail(f"{name!r} is a boolean: compare it with true or false", token)
            if kind == NUM and literal_kind not in (NUM, STR):
                raise self.fail(f"{name!r} is a number", token)
            if kind == NUM and literal_kind == STR:
                _as_number(comparison.values[0], name, self)
            if kind == STR and literal_kind not in (STR, NUM):
                raise self.fail(f"{name!r} is text: put the value in double quotes", token)


def _as_number(value: Any, name: str, parser: _Parser) -> Decimal:
    try:
        return Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise parser.fail(f"{name!r} is a number, {value!r} is not") from exc


# --------------------------------------------------------------------------- evaluation

Predicate = Callable[[Mapping[str, Any]], bool]


def lookup(record: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = record
    for segment in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(segment)
    return value


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if ch in "*%" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _normalise(value: Any, kind: str) -> Any:
    """A record value in a comparable form (None stays None)."""
    if value is None:
        return None
    if kind == STR:
        return str(value).casefold()
    if kind == NUM:
        if isinstance(value, bool):
            return None
        return Decimal(str(value))
    if kind == DATE:
        return parse_datetime(str(value))
    if kind == BOOL:
        return bool(value)
    return value


def _literal(value: Any, literal_kind: str, kind: str) -> Any:
    if literal_kind == "null":
        return None
    if kind == STR:
        return str(value).casefold()
    if kind == NUM:
        return Decimal(str(value))
    return value


def _compile(node: Node) -> Predicate:
    if isinstance(node, BoolOp):
        parts = [_compile(operand) for operand in node.operands]
        if node.operator == "and":
            return lambda record: all(part(record) for part in parts)
        return lambda record: any(part(record) for part in parts)
    if isinstance(node, Not):
        inner = _compile(node.operand)
        return lambda record: not inner(record)
    return _compile_comparison(node)


def _compile_comparison(node: Comparison) -> Predicate:
    path, kind, negated = node.path, node.kind, node.negated
    literals = [_literal(v, k, kind) for v, k in zip(node.values, node.literal_kinds, strict=True)]
    operator = node.operator

    if operator in ("=", "!=") and literals[0] is None:
        want_null = operator == "="
        return lambda record: (lookup(record, path) is None) == want_null

    if operator == "like":
        regex = _like_regex(str(node.values[0]))

        def like(record: Mapping[str, Any]) -> bool:
            value = lookup(record, path)
            if value is None:
                return False
            return (regex.fullmatch(str(value)) is not None) != negated

        return like

    if operator == "contains":
        needle = str(node.values[0]).casefold()

        def contains(record: Mapping[str, Any]) -> bool:
            value = lookup(record, path)
            if value is None:
                return False
            return (needle in str(value).casefold()) != negated

        return contains

    if operator == "in":
        members = [m for m in literals if m is not None]
        has_null = any(m is None for m in literals)

        def within(record: Mapping[str, Any]) -> bool:
            value = _normalise(lookup(record, path), kind)
            if value is None:
                return has_null != negated if has_null else False
            return (value in members) != negated

        return within

    target = literals[0]
    compare: Callable[[Any, Any], bool] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }[operator]

    def scalar(record: Mapping[str, Any]) -> bool:
        value = _normalise(lookup(record, path), kind)
        if value is None:
            return False  # SQL semantics: a comparison with NULL is never true
        return compare(value, target)

    return scalar


def compile_conditions(text: str, spec: FieldSpec, parameter: str = "conditions") -> Predicate:
    """Parse ``conditions`` against a resource schema; raises ``ConditionError``."""
    return _compile(_Parser(text, spec, parameter).parse())


def compile_child_conditions(text: str, spec: FieldSpec) -> Predicate:
    """``childConditions``: clauses on one array field (``communicationItems/value like ...``).
    A record matches when one element of the array satisfies the whole expression."""
    fields = {token.value.split("/")[0].lower() for token in tokenize(text, "childConditions")
              if token.kind == "word"}
    arrays = {path.split("/")[0] for path, kind in spec.items() if kind == LIST}
    chosen = [name for name in arrays if name.lower() in fields]
    if len(fields) != 1 or len(chosen) != 1:
        listed = ", ".join(sorted(arrays)) or "none"
        raise ConditionError(
            f"childConditions: every clause must be on one array field (arrays here: {listed})",
            "childConditions",
        )
    array = chosen[0]
    element_spec = {path: kind for path, kind in spec.items() if path.startswith(array + "/")}
    element = _compile(_Parser(text, element_spec, "childConditions", prefix=array).parse())

    def matches(record: Mapping[str, Any]) -> bool:
        items = record.get(array) or []
        return any(isinstance(item, Mapping) and element(item) for item in items)

    return matches


# --------------------------------------------------------------------------- orderBy / fields


def compile_order_by(text: str, spec: FieldSpec) -> list[tuple[tuple[str, ...], str, bool]]:
    """``orderBy=name asc, id desc`` -> [(path, kind, descending)]."""
    lowered = {path.lower(): path for path in spec}
    keys: list[tuple[tuple[str, ...], str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise ConditionError(f"orderBy: {part.strip()!r} is not 'field asc|desc'", "orderBy")
        canonical = lowered.get(words[0].lower())
        if canonical is None or spec[canonical] in (REF, LIST):
            raise ConditionError(f"orderBy: unknown or unsortable field {words[0]!r}", "orderBy")
        keys.append((tuple(canonical.split("/")), spec[canonical],
                     len(words) == 2 and words[1].lower() == "desc"))
    return keys


def sort_records(records: list[dict[str, Any]], keys: list[tuple[tuple[str, ...], str, bool]]) -> None:
    """Stable multi-key sort; nulls sort first ascending (as SQL Server does)."""
    for path, kind, descending in reversed(keys):
        def key(record: Mapping[str, Any], path: tuple[str, ...] = path, kind: str = kind) -> tuple[int, Any]:
            value = _normalise(lookup(record, path), kind)
            return (0, 0) if value is None else (1, value)

        records.sort(key=key, reverse=descending)


def project(record: Mapping[str, Any], fields: list[tuple[str, ...]]) -> dict[str, Any]:
    """The ``fields`` partial response: only the listed (possibly nested) fields."""
    out: dict[str, Any] = {}
    for path in fields:
        source: Any = record
        target = out
        for depth, segment in enumerate(path):
            if not isinstance(source, Mapping):
                break
            key = _find_key(source, segment)
            if key is None:
                break
            source = source[key]
            if depth == len(path) - 1:
                target[key] = source
            else:
                if not isinstance(source, Mapping):
                    target[key] = source
                    break
                existing = target.get(key)
                if not isinstance(existing, dict):
                    existing = {}
                    target[key] = existing
                target = existing
    return out


def _find_key(mapping: Mapping[str, Any], name: str) -> str | None:
    if name in mapping:
        return name
    lowered = name.lower()
    for key in mapping:
        if key.lower() == lowered:
            return key
    return None


def parse_fields(text: str) -> list[tuple[str, ...]]:
    return [tuple(part.strip().split("/")) for part in text.split(",") if part.strip()]
