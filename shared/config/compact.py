"""The tenants of a stored configuration, kept as their JSON documents.

Every process that works on a run reads the configuration, and a tenant parsed into its models
(the tenant, its companies and licence mappings, each with its ``__dict__``) is about 2.8 KB,
where its compact JSON is about 470 bytes: at 3,000 tenants that was 8 MB that every process
kept for nothing, since an activity works on a few tenants and a pass over all of them (the start
of a run, notifying it) needs one at a time. ``CompactModels`` is that sequence: immutable, found
by key, each item parsed again when it is read. The models are frozen and validated when the
configuration was read, so a document parses back to an equal model; the work is pydantic's JSON
parser, about 15 microseconds a tenant.

Each document is also deflated against a dictionary made of the first documents (``zlib``'s
preset dictionary, RFC 1950): tenants repeat their member names, licence ids, profiles and
policies, so a 470-byte document of the generated MSP keeps about 75 bytes. A stored
configuration of 3,000 tenants then keeps 0.9 MB instead of 2.0 MB in every process that reads
it; reading it takes 0.3 s instead of 0.2, and a tenant a few microseconds more.

The deflated documents are kept end to end in one buffer, and the keys sorted in another, each
with an array of offsets: a tenant is then three machine integers and its bytes, not three Python
objects (its document, its key and the key's entry in a dict, 300 bytes with their headers). At
3,000 tenants that is 0.4 MB instead of 0.9 MB, and a handful of large blocks that the allocator
gives back whole, where 9,000 small objects kept for the life of the process were scattered among
the pages the configuration was parsed in, each page kept for the few it holds.
"""

from __future__ import annotations

import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class CompactModels(Sequence[M], Generic[M]):
    """An immutable sequence of frozen models held as their JSON documents (aliases, defaults
    left out: the stored form), found by ``key``. It compares equal to any sequence of equal
    models, so a configuration read from storage equals the one that was saved."""

    __slots__ = ("_derived", "_dictionary", "_documents", "_index", "_model")
    _model: type[M]
    _dictionary: bytes
    _documents: _Spans
    """The deflated documents, end to end."""
    _index: _KeyIndex
    _derived: dict[str, Any]

    def __init__(self, model: type[M], documents: tuple[bytes, ...], keys: Sequence[str]) -> None:
        if len(keys) != len(documents):
            raise ValueError("a key is needed for each document")
        packer = _Packer()
        packer.dictionary = _dictionary(documents)
        for document, key in zip(documents, keys, strict=True):
            packer.add_key(key)
            packer.add_document(document)
        packer.fill(self, model)

    @classmethod
    def of(cls, model: type[M], items: Sequence[M], key: Callable[[M], str]) -> CompactModels[M]:
        return cls(model, tuple(cls.document(item) for item in items), [key(item) for item in items])

    @staticmethod
    def document(item: BaseModel) -> bytes:
        """The compact JSON document ``item`` is held as."""
        return item.model_dump_json(by_alias=True, exclude_defaults=True).encode()

    def __len__(self) -> int:
        return len(self._documents)

    @overload
    def __getitem__(self, index: int) -> M: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[M, ...]: ...

    def __getitem__(self, index: int | slice) -> M | tuple[M, ...]:
        if isinstance(index, slice):
            return tuple(self._parse(self._documents[position]) for position in range(len(self))[index])
        return self._parse(self._documents[range(len(self))[index]])

    def __iter__(self) -> Iterator[M]:
        for position in range(len(self)):
            yield self._parse(self._documents[position])

    def get(self, key: str) -> M | None:
        """The first item of ``key``, or None."""
        position = self._index.position(key)
        return None if position is None else self._parse(self._documents[position])

    def has(self, key: str) -> bool:
        """Whether an item of ``key`` is held (nothing is parsed)."""
        return self._index.position(key) is not None

    def derived(self, name: str, compute: Callable[[Sequence[M]], T]) -> T:
        """``compute(self)``, worked out once: what a caller would otherwise find by parsing every
        item again on each call (an index over all of them). ``name`` tells results apart."""
        if name not in self._derived:
            self._derived[name] = compute(self)
        result: T = self._derived[name]
        return result

    def _parse(self, document: bytes) -> M:
        return self._model.model_validate_json(_inflate(document, self._dictionary))

    def __eq__(self, other: object) -> bool:
        if (isinstance(other, CompactModels) and other._model is self._model
                and other._dictionary == self._dictionary and other._documents == self._documents):
            return True  # the same documents: no need to parse them
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"CompactModels({self._model.__name__}, {len(self)} items)"


class _Spans:
    """Byte strings end to end in one buffer, with an array of where each ends: the i-th is a
    slice of the buffer, and no object is kept for each."""

    __slots__ = ("_buffer", "_ends")

    def __init__(self, buffer: bytes, ends: array[int]) -> None:
        self._buffer = buffer
        self._ends = ends

    @classmethod
    def of(cls, items: Iterable[bytes]) -> _Spans:
        listed = list(items)
        return cls(b"".join(listed), array("Q", accumulate(len(item) for item in listed)))

    @property
    def size(self) -> int:
        """The bytes held, all spans together."""
        return len(self._buffer)

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> bytes:
        """Span ``index`` (0 to len - 1)."""
        return self._buffer[self._ends[index - 1] if index else 0:self._ends[index]]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Spans):
            return NotImplemented
        return self._ends == other._ends and self._buffer == other._buffer

    __hash__ = None  # type: ignore[assignment]


class _KeyIndex:
    """Keys sorted (``_Spans``), each with the position of its item: found by bisection (a dozen
    comparisons at 3,000 keys), the first position of a repeated key first."""

    __slots__ = ("_keys", "_positions")

    def __init__(self, keys: _Spans) -> None:
        order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: the first of a key first
        self._keys = _Spans.of(keys[i] for i in order)
        self._positions = array("Q", order)

    def position(self, key: str) -> int | None:
        wanted = key.encode()
        rank = bisect_left(range(len(self._keys)), wanted, key=self._keys.__getitem__)
        if rank < len(self._keys) and self._keys[rank] == wanted:
            return self._positions[rank]
        return None


class _Packer:
    """What ``CompactModels`` is made of, an item at a time: deflated documents and keys appended
    to buffers, their ends to arrays."""

    def __init__(self) -> None:
        self.dictionary = b""
        self.blob = bytearray()
        self.ends: array[int] = array("Q")
        self.keys = bytearray()
        self.key_ends: array[int] = array("Q")

    def add_key(self, key: str) -> None:
        self.keys += key.encode()
        self.key_ends.append(len(self.keys))

    def add_document(self, document: bytes) -> None:
        self.blob += _deflate(document, self.dictionary)
        self.ends.append(len(self.blob))

    def fill(self, made: CompactModels[M], model: type[M]) -> None:
        made._model = model
        made._dictionary = self.dictionary
        made._documents = _Spans(bytes(self.blob), self.ends)
        made._index = _KeyIndex(_Spans(bytes(self.keys), self.key_ends))
        made._derived = {}


class CompactCollector(Generic[M]):
    """``CompactModels`` made an item at a time, each deflated as soon as the dictionary is known
    (after the first 8 KB of documents): reading a stored configuration holds the deflated
    documents, not every tenant's JSON as well."""

    def __init__(self, model: type[M]) -> None:
        self._model = model
        self._first: list[bytes] = []
        self._first_size = 0
        self._packer = _Packer()
        self._sealed = False

    def add(self, item: M, key: str) -> None:
        document = CompactModels.document(item)
        self._packer.add_key(key)
        if self._sealed:
            self._packer.add_document(document)
            return
        self._first.append(document)
        self._first_size += len(document)
        if self._first_size >= _DICTIONARY_BYTES:
            self._seal()

    def _seal(self) -> None:
        self._packer.dictionary = _dictionary(self._first)
        for document in self._first:
            self._packer.add_document(document)
        self._first = []
        self._sealed = True

    def collected(self) -> CompactModels[M]:
        if not self._sealed:
            self._seal()
        made: CompactModels[M] = CompactModels.__new__(CompactModels)
        self._packer.fill(made, self._model)
        return made


_DICTIONARY_BYTES = 8 * 1024
_RAW = -14
"""Raw deflate (no header or checksum on each of thousands of short documents) with a 16 KB
window, the dictionary's and a document's: compressing one then needs about 65 KB of state
(``memLevel`` 1), not the 260 KB of zlib's defaults."""


def _dictionary(documents: Sequence[bytes]) -> bytes:
    """The preset dictionary of a set of documents: the first of them, up to 8 KB (the strings
    they share with the rest: member names, licence ids, profiles)."""
    taken: list[bytes] = []
    size = 0
    for document in documents:
        if size >= _DICTIONARY_BYTES:
            break
        taken.append(document)
        size += len(document)
    return b"".join(taken)[-_DICTIONARY_BYTES:]


def _deflate(document: bytes, dictionary: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, _RAW, 1, zdict=dictionary) if dictionary else \
        zlib.compressobj(6, zlib.DEFLATED, _RAW, 1)
    return packer.compress(document) + packer.flush()


def _inflate(document: bytes, dictionary: bytes) -> bytes:
    unpacker = zlib.decompressobj(_RAW, zdict=dictionary) if dictionary else zlib.decompressobj(_RAW)
    return unpacker.decompress(document) + unpacker.flush()
