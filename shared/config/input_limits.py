"""Reading untrusted documents strictly: configuration files, onboarding review files and HTTP
bodies (JSON or YAML).

Before a document is parsed it must be at most ``MAX_DOCUMENT_BYTES`` long, UTF-8 text and nested
at most ``MAX_DEPTH`` levels deep; a YAML document's aliases may not expand it beyond
``MAX_VALUES`` values. While it is parsed, a key given twice in one mapping (at any level) is an
error naming the key and both lines: a second ``tenants:`` never silently replaces the first.

A refusal raises ``InputRefused`` naming the source (a file's path, or ``body``) and the limit,
never quoting the content (a file may hold anything). The limits are documented in
docs/configuration.md ("Limits of files and request bodies").
"""

from __future__ import annotations

import json
import os
import re
from array import array
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

import yaml

from shared.errors import InputRefused

try:  # libyaml's parser when PyYAML was built with it (the wheels are): faster, same results
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 32
MAX_VALUES = 2_000_000
MAX_KEY_CHARS = 256
MAX_NUMBER_DIGITS = 4300
"""The longest whole number a document may hold: Python's own limit on converting text to an
integer (``sys.get_int_max_str_digits``); no count, price or id SeatSync reads comes near it."""

# JSON strings (skipped whole, so brackets inside them do not count) and the structural characters.
_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"(?:\s*:)?|[\[\]{}]', re.DOTALL)
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(rb"[^\[\]{}]+")
_BRACKET_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")  # +1 and -1 as signed bytes
# Characters Table Storage forbids in PartitionKey and RowKey, and control characters.
_FORBIDDEN_IN_KEYS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"


def _subject(source: str) -> str:
    """How messages name what was refused: the request body, or a file (named by the field)."""
    return "the request body" if source == "body" else "the file"


def _too_deep(source: str, max_depth: int) -> str:
    return f"{_subject(source)} is nested more than {max_depth} levels deep; at most {max_depth} are accepted"


def _too_large(source: str, size: int, limit: int) -> InputRefused:
    return InputRefused(source, f"{_subject(source)} is {size} bytes; at most {size_text(limit)} are accepted",
                        too_large=True)


def size_text(limit: int) -> str:
    """``8 MiB (8388608 bytes)``, or ``1000 bytes``."""
    mib = 1024 * 1024
    return f"{limit // mib} MiB ({limit} bytes)" if limit % mib == 0 else f"{limit} bytes"


def read_file(path: Path, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of a file of at most ``limit`` bytes; ``InputRefused`` naming the path otherwise
    (a larger file is not read at all)."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
            if len(data) > limit:
                size = os.fstat(handle.fileno()).st_size
                raise _too_large(source, size, limit)
    except OSError as exc:
        raise InputRefused(source, f"the file cannot be read: {exc.strerror}") from None
    return data


def check_size(data: bytes | str, source: str, limit: int = MAX_DOCUMENT_BYTES) -> None:
    size = len(data.encode("utf-8") if isinstance(data, str) else data)
    if size > limit:
        raise _too_large(source, size, limit)


def decode_text(data: bytes, source: str) -> str:
    """The UTF-8 text of ``data`` (a leading byte order mark is dropped); ``InputRefused`` naming
    the offset of the first byte that is not UTF-8 otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputRefused(source, f"{_subject(source)} is not UTF-8 text (byte {exc.start} cannot be decoded); "
                           "save it as UTF-8") from None


def key_problem(value: str) -> str | None:
    """What makes ``value`` unusable as an id (it becomes a Table Storage key): a character Table
    Storage forbids in keys (``/ \\ # ?``), a control character, or more than ``MAX_KEY_CHARS``
    characters. None when it is usable."""
    if len(value) > MAX_KEY_CHARS:
        return f"is {len(value)} characters; an id is at most {MAX_KEY_CHARS}"
    found = _FORBIDDEN_IN_KEYS.search(value)
    if found is not None:
        return (f"holds the character U+{ord(found.group()):04X}; an id may not hold / \\ # ? or "
                "control characters")
    return None


# --------------------------------------------------------------------------- JSON


def _json_depth(data: bytes, source: str, max_depth: int) -> None:
    """Refuse JSON nested deeper than ``max_depth``, measured without recursion or a loop in
    Python: strings are removed, the remaining brackets become +1 and -1, and their running sum
    is the depth."""
    brackets = _NOT_A_BRACKET.sub(b"", _JSON_STRING.sub(b"", data)).translate(_BRACKET_STEPS)
    if max(accumulate(array("b", brackets)), default=0) > max_depth:
        raise InputRefused(source, _too_deep(source, max_depth))


def _first_duplicate(data: bytes) -> str:
    """Where the first key given twice in one object is, by line: read by scanning tokens, only
    once the parser has seen a duplicate (the document is valid JSON of bounded depth)."""
    stack: list[dict[str, int] | None] = []
    line, counted_to = 1, 0
    for match in _JSON_TOKENS.finditer(data):
        token = match.group()
        if token in (b"{", b"["):
            stack.append({} if token == b"{" else None)
        elif token in (b"}", b"]"):
            stack.pop()
        elif token.endswith(b":") and stack and stack[-1] is not None:
            line += data.count(b"\n", counted_to, match.start())
            counted_to = match.start()
            key, keys = json.loads(token[:-1].rstrip()), stack[-1]
            if key in keys:
                return f"the key {key!r} is given twice in one object, at lines {keys[key]} and {line}"
            keys[key] = line
    raise AssertionError("the parser saw a key given twice that the scan does not find")


class _Duplicate(Exception):
    """A key given twice in one object (raised while parsing, then located by line)."""


class _BadNumber(Exception):
    """A number JSON cannot carry: NaN, Infinity or beyond a double (raised while parsing;
    fractions and exponents are rare in SeatSync's bodies, so only they pass through Python)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _json_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _BadNumber("a number beyond what JSON numbers carry (about 1.8e308)")
    return value


def _json_constant(name: str) -> float:
    raise _BadNumber(f"{name}, which is not a JSON number")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise _Duplicate
    return mapping


def read_json(data: bytes | str, source: str, *, max_depth: int = MAX_DEPTH,
              limit: int = MAX_DOCUMENT_BYTES) -> Any:
    """A JSON document read strictly (size, UTF-8, depth, duplicate keys)."""
    check_size(data, source, limit)
    text = decode_text(data, source) if isinstance(data, bytes) else data
    raw = text.encode("utf-8")
    _json_depth(raw, source, max_depth)
    try:
        return json.loads(text, object_pairs_hook=_unique, parse_float=_json_float, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise InputRefused(source, f"{_subject(source)} is not valid JSON: {exc}") from None
    except _BadNumber as exc:
        raise InputRefused(source, f"{_subject(source)} is not valid JSON: it holds {exc.reason}") from None
    except ValueError:  # Python's limit on the digits of an integer (after JSONDecodeError, a ValueError too)
        raise InputRefused(source, f"{_subject(source)} holds a number of more than {MAX_NUMBER_DIGITS} "
                                   "digits") from None
    except _Duplicate:
        raise InputRefused(source, _first_duplicate(raw)) from None


# --------------------------------------------------------------------------- YAML


@dataclass
class _Open:
    """A collection being read: the values inside it so far and how deep it reaches."""

    anchor: str | None
    values: int = 1
    height: int = 1


@dataclass
class _YamlShape:
    anchors: dict[str, tuple[int, int]] = field(default_factory=dict)  # anchor -> (values, height)


def _check_yaml_shape(text: str, source: str, max_depth: int, max_values: int) -> None:
    """Nesting depth and size as the document will be built, aliases expanded, from the parser's
    events (no recursion): refused past ``max_depth`` or ``max_values``."""
    shape = _YamlShape()
    stack: list[_Open] = []
    total = 0

    def add(values: int, height: int) -> None:
        nonlocal total
        total += values
        if total > max_values:
            raise InputRefused(source, f"{_subject(source)} expands to more than {max_values} values (through its "
                               f"aliases); at most {max_values} are accepted")
        if len(stack) + height > max_depth:
            raise InputRefused(source, _too_deep(source, max_depth))
        if stack:
            stack[-1].values += values
            stack[-1].height = max(stack[-1].height, height + 1)

    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) + 1 > max_depth:
                raise InputRefused(source, _too_deep(source, max_depth))
            stack.append(_Open(event.anchor))
        elif isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            if done.anchor is not None:
                shape.anchors[done.anchor] = (done.values, done.height)
            total -= done.values - 1  # counted again, whole, by add()
            add(done.values, done.height)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                shape.anchors[event.anchor] = (1, 0)
            add(1, 0)
        elif isinstance(event, yaml.AliasEvent):
            values, height = shape.anchors.get(event.anchor or "", (1, 0))
            add(values, height)


_CONSTRUCTION_ERRORS = (ValueError, TypeError, AttributeError, KeyError)
"""What PyYAML's constructors raise for a value their tag cannot make (beside ``YAMLError``)."""


def _unreadable(node: yaml.Node | None) -> str:
    if node is None:
        return "the file holds a value YAML cannot read"
    tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
    return f"line {node.start_mark.line + 1}: the value cannot be read as {tag}"


class _StrictLoader(_BaseLoader):
    """The safe loader, refusing a key given twice in one mapping."""

    source = "document"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key is a list or a mapping", key_node.start_mark) from None
            line = key_node.start_mark.line + 1
            if first is not None:
                raise InputRefused(self.source, f"the key {key!r} is given twice in one mapping, at lines {first} "
                                   f"and {line}")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A value its tag cannot make (``!!int "abc"``, ``!!bool "maybe"``, a date that does not
        exist) is refused with its line, never a crash; the value is not quoted."""
        try:
            return super().construct_object(node, deep=deep)
        except _CONSTRUCTION_ERRORS:
            raise InputRefused(self.source, _unreadable(node)) from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(str(node.value)) > MAX_NUMBER_DIGITS:
            raise InputRefused(self.source, f"line {node.start_mark.line + 1}: a number of more than "
                                            f"{MAX_NUMBER_DIGITS} digits")
        return int(super().construct_yaml_int(node))

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """YAML reads ``2026-02-30`` as a date; one that does not exist is named with its line
        (it is only digits, dashes and colons, so it is quoted)."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise InputRefused(self.source, f"line {node.start_mark.line + 1}: {node.value!r} is not a date "
                                            f"({exc})") from None


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _StrictLoader.construct_yaml_timestamp)


def read_yaml(data: bytes | str, source: str, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES,
              limit: int = MAX_DOCUMENT_BYTES) -> Any:
    """A YAML document read strictly (size, UTF-8, depth and values with aliases expanded,
    duplicate keys); None for an empty document. Syntax errors name the line and column."""
    check_size(data, source, limit)
    text = decode_text(data, source) if isinstance(data, bytes) else data
    try:
        _check_yaml_shape(text, source, max_depth, max_values)
        loader = _StrictLoader(text)
        loader.source = source
        try:
            return loader.get_single_data()
        except _CONSTRUCTION_ERRORS:  # raised while a collection is filled in, outside construct_object
            raise InputRefused(source, _unreadable(None)) from None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        if problem == _LIBYAML_TOO_DEEP:  # libyaml stops at 1000 levels, before the events reach 33
            raise InputRefused(source, _too_deep(source, max_depth)) from None
        raise InputRefused(source, f"{_subject(source)} is not valid YAML{where}: {problem}") from None


def read_document(data: bytes | str, source: str, *, yaml_text: bool) -> Any:
    """A JSON or YAML document read strictly."""
    return read_yaml(data, source) if yaml_text else read_json(data, source)


def check_nesting(data: bytes, source: str, *, yaml_text: bool, max_depth: int = MAX_DEPTH) -> None:
    """Refuse ``data`` nested deeper than ``max_depth`` (as JSON, or as YAML), without building
    it. Text that is not UTF-8 or not parseable is left to the reader that parses it."""
    if not yaml_text:
        _json_depth(data, source, max_depth)
        return
    try:
        _check_yaml_shape(data.decode("utf-8-sig"), source, max_depth, MAX_VALUES)
    except UnicodeDecodeError:
        return
    except yaml.YAMLError as exc:
        if getattr(exc, "problem", None) == _LIBYAML_TOO_DEEP:
            raise InputRefused(source, _too_deep(source, max_depth)) from None
