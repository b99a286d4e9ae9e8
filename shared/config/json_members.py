"""The members of a JSON document's top-level object, as text, one at a time.

A stored configuration of thousands of tenants is one JSON document. Parsing it whole, into
models or into dicts, holds every tenant at once: at 3,000 tenants 16 MB for a moment, which sets
a process's peak memory. ``members`` walks the top-level object and hands over each member's
value as its JSON text, and the items of one array member (the tenants) one by one, so that the
caller validates and keeps each in turn. Each value is read by the standard library's decoder,
which also finds where it ends; the caller parses the text again with the parser it needs
(pydantic's JSON mode), so nothing here decides what a value means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import NamedTuple

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class Member(NamedTuple):
    key: str
    text: str
    """The member's value as JSON text; for the array member asked for, one of its items."""
    item: bool
    """True for an item of the array member asked for."""


def members(text: str, spread: str) -> Iterator[Member]:
    """Each member of the top-level object of ``text`` in document order. A member named
    ``spread`` whose value is an array comes as its items, one ``Member`` each (none for an
    empty array); any other value, ``spread``'s included when it is not an array, comes whole.

    Raises ``ValueError`` (``json.JSONDecodeError``) for anything but a JSON object, and for a key
    given twice (which a decoder reads as its last value: the caller reads such a document whole)."""
    keys: set[str] = set()
    position = _skip(text, 0)
    position = _expect(text, position, "{")
    if text.startswith("}", position):
        _end(text, position + 1)
        return
    while True:
        if not text.startswith('"', position):
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, position)
        key, end = _DECODER.raw_decode(text, position)
        if key in keys:
            raise json.JSONDecodeError(f"the key {key!r} is given twice", text, position)
        position = end
        keys.add(key)
        position = _expect(text, _skip(text, position), ":")
        if key == spread and text.startswith("[", position):
            position = _skip(text, position + 1)
            if text.startswith("]", position):
                position += 1
            else:
                while True:
                    end = _DECODER.raw_decode(text, position)[1]
                    yield Member(key, text[position:end], True)
                    position = _skip(text, end)
                    if text.startswith("]", position):
                        position += 1
                        break
                    position = _expect(text, position, ",")
        else:
            end = _DECODER.raw_decode(text, position)[1]
            yield Member(key, text[position:end], False)
            position = end
        position = _skip(text, position)
        if text.startswith("}", position):
            _end(text, position + 1)
            return
        position = _expect(text, position, ",")


def _skip(text: str, position: int) -> int:
    match = _SPACE.match(text, position)
    return match.end() if match else position


def _expect(text: str, position: int, what: str) -> int:
    """The position after ``what`` and any white space after it, ``what`` being at ``position``."""
    if not text.startswith(what, position):
        raise json.JSONDecodeError(f"Expecting {what!r}", text, position)
    return _skip(text, position + len(what))


def _end(text: str, position: int) -> None:
    if _skip(text, position) != len(text):
        raise json.JSONDecodeError("Extra data", text, position)
