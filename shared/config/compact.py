"""The tenants of a stored configuration, kept as their JSON documents.

Every process that works on a run reads the configuration, and a tenant parsed into its models
(the tenant, its companies and licence mappings, each with its ``__dict__``) is about 2.8 KB,
where its compact JSON is about 470 bytes: at 3,000 tenants that was 8 MB that every process
kept for nothing, since an activity works on a few tenants and a pass over all of them (the start
of a run, notifying it) needs one at a time. ``CompactModels`` is that sequence: immutable, found
by key, each item parsed again when it is read. The models are frozen and validated when the
configuration was read, so a document parses back to an equal model; the work is pydantic's JSON
parser, about 15 microseconds a tenant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class CompactModels(Sequence[M], Generic[M]):
    """An immutable sequence of frozen models held as their JSON documents (aliases, defaults
    left out: the stored form), found by ``key``. It compares equal to any sequence of equal
    models, so a configuration read from storage equals the one that was saved."""

    __slots__ = ("_derived", "_documents", "_model", "_positions")

    def __init__(self, model: type[M], documents: tuple[bytes, ...], keys: Sequence[str]) -> None:
        if len(keys) != len(documents):
            raise ValueError("a key is needed for each document")
        self._model = model
        self._documents = documents
        self._positions: dict[str, int] = {}
        for position, key in enumerate(keys):
            self._positions.setdefault(key, position)  # the first of a key, as a scan would find
        self._derived: dict[str, Any] = {}

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
            return tuple(self._parse(document) for document in self._documents[index])
        return self._parse(self._documents[index])

    def __iter__(self) -> Iterator[M]:
        for document in self._documents:
            yield self._parse(document)

    def get(self, key: str) -> M | None:
        """The first item of ``key``, or None."""
        position = self._positions.get(key)
        return None if position is None else self._parse(self._documents[position])

    def derived(self, name: str, compute: Callable[[Sequence[M]], T]) -> T:
        """``compute(self)``, worked out once: what a caller would otherwise find by parsing every
        item again on each call (an index over all of them). ``name`` tells results apart."""
        if name not in self._derived:
            self._derived[name] = compute(self)
        result: T = self._derived[name]
        return result

    def _parse(self, document: bytes) -> M:
        return self._model.model_validate_json(document)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CompactModels) and other._model is self._model and other._documents == self._documents:
            return True  # the same documents: no need to parse them
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"CompactModels({self._model.__name__}, {len(self)} items)"
