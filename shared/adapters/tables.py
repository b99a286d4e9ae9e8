"""Azure Table Storage access shared by the repositories.

Two things every repository needs live here: opening tables (with a per-deployment prefix)
and storing a document too large for one property. Table Storage limits a property to 64 KiB
and an entity to 1 MiB, while a tenant with 10,000 users or an MSP's whole configuration is
several megabytes of JSON. Documents are therefore compressed and split into numbered part
entities; a reader checks it got every part and the digest matches, so a torn write is
detected instead of read as truth. Writers commit a document by writing a small entity that
points to it *after* all parts are stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from shared.errors import ConfigError, SeatSyncError
from shared.settings import Settings

PART_BYTES = 60_000
BATCH_LIMIT = 100
BATCH_BYTES = 3_500_000
"""What one transaction may carry, with room to spare: Table Storage takes at most 4 MiB."""
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreError(SeatSyncError):
    """Stored data is missing or inconsistent."""


class StoreUnavailableError(StoreError):
    """Table Storage did not accept a write (or answer a read) after every retry."""


def is_transient(exc: BaseException) -> bool:
    """A storage failure worth trying again: no answer at all (connection refused or reset, a
    timeout) or a status that says "not now" (408, 429, 5xx). A 404, 409 or 412 is an answer."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return True
    return isinstance(exc, HttpResponseError) and exc.status_code in TRANSIENT_STATUSES


@dataclass(frozen=True)
class StoreRetry:
    """How long bookkeeping rides out a storage outage: ``attempts`` tries, waiting
    ``first_wait`` seconds and doubling up to ``max_wait`` between them (the SDK's own retries
    run inside each try). About a minute and a half in all with the defaults."""

    attempts: int = 7
    first_wait: float = 1.0
    max_wait: float = 30.0

    def call(self, what: str, operation: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
        """Run ``operation``, retrying transient storage failures; raises
        ``StoreUnavailableError`` naming ``what`` when every attempt failed."""
        wait = self.first_wait
        for attempt in range(1, self.attempts + 1):
            try:
                return operation()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if attempt == self.attempts:
                    raise StoreUnavailableError(
                        f"Table Storage is unavailable: {what} failed {attempt} times "
                        f"({type(exc).__name__}: {_first_line(exc)})") from exc
                log.warning("storage: %s failed (%s); attempt %d of %d, retrying in %.1fs", what,
                            type(exc).__name__, attempt, self.attempts, wait)
            sleep(wait)
            wait = min(self.max_wait, wait * 2)
        raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


class RequestCounter:
    """Counts the HTTP requests a Table Storage client sends (an entity group transaction is one;
    the SDK's own retries count again): the storage cost of a run, reported by ``make bench``.
    Installed as the client's ``raw_request_hook``, which azure-core calls for every request sent.
    A transaction is counted as ``POST $batch <table>``, and the entities it carries by what they
    are (``rows``), so that the cost of each kind of record shows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._kinds: Counter[str] = Counter()
        self._rows: Counter[str] = Counter()

    def __call__(self, request: Any) -> None:
        kind, rows = _request_kind(request)
        with self._lock:
            self._count += 1
            self._kinds[kind] += 1
            self._rows.update(rows)

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def by_kind(self) -> Counter[str]:
        """The requests sent so far by method and table (``GET runs``, ``POST $batch runs``)."""
        with self._lock:
            return Counter(self._kinds)

    def rows(self) -> Counter[str]:
        """The entities the transactions sent so far carried, by operation, table and the shape of
        their row key (``PUT snapshots <id>~doc~<n>``)."""
        with self._lock:
            return Counter(self._rows)


_KEY_PARTS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d{8}T\d{6}[.\d]*Z(-[0-9a-f]+)?"
                        r"|[0-9a-f]{16,}|\d+")


def _request_kind(pipeline_request: Any) -> tuple[str, list[str]]:
    """``<method> <table>`` of a request as azure-core hands it to the hook (``POST $batch <table>``
    for a transaction), and for a transaction what each of its operations writes."""
    http = getattr(pipeline_request, "http_request", pipeline_request)
    method, table, _ = _method_table_key(http)
    if table != "$batch":
        return f"{method} {table}", []
    operations = _batched(http)
    tables = sorted({t for _, t, _ in (_method_table_key(o) for o in operations)})
    rows = []
    for operation in operations:
        op_method, op_table, key = _method_table_key(operation)
        rows.append(f"{op_method} {op_table} {_KEY_PARTS.sub('<id>', key) or '-'}")
    return f"{method} $batch {'+'.join(tables) or '?'}", rows


def _batched(http: Any) -> list[Any]:
    """The operations inside a transaction (a changeset of requests inside the batch request)."""
    found = []
    for part in (getattr(http, "multipart_mixed_info", None) or ((),))[0]:
        inner = getattr(part, "multipart_mixed_info", None)
        found += list(inner[0]) if inner else [part]
    return found


def _method_table_key(http: Any) -> tuple[str, str, str]:
    path = unquote(urlsplit(str(getattr(http, "url", ""))).path).rstrip("/").split("/")[-1]
    table, _, key = path.partition("(")
    row = re.search(r"RowKey='([^']*)'", key)
    return str(getattr(http, "method", "?")), table or "?", row.group(1) if row else ""


class TableStore:
    """Opens (and creates once) the deployment's tables."""

    def __init__(self, service: TableServiceClient, prefix: str = "seatsync",
                 requests: RequestCounter | None = None) -> None:
        self.service = service
        self.prefix = prefix
        self.requests = requests
        """Counts the requests sent, when the service client was built with it (``from_settings``)."""
        self._tables: dict[str, TableClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> TableStore:
        counter = RequestCounter()
        if settings.table_connection_string:
            try:
                service = TableServiceClient.from_connection_string(settings.table_connection_string,
                                                                    raw_request_hook=counter)
            except ValueError as exc:  # the SDK's words; the string itself holds the account key
                raise ConfigError(f"SEATSYNC_STORAGE_CONNECTION_STRING is not a storage connection string ({exc}): "
                                  "copy it from the storage account's access keys (or Azurite's), or set "
                                  "SEATSYNC_TABLE_ENDPOINT to use a managed identity", source="app settings") from None
        elif settings.table_endpoint:
            from azure.identity import DefaultAzureCredential

            service = TableServiceClient(
                endpoint=settings.table_endpoint,
                credential=DefaultAzureCredential(exclude_interactive_browser_credential=True),
                raw_request_hook=counter,
            )
        else:  # Settings.from_environment already refuses this; kept for direct construction
            raise ConfigError("no table storage configured", source="app settings")
        return cls(service, settings.table_prefix, counter)

    def table(self, name: str) -> TableClient:
        """The table ``<prefix><name>``, created on first use."""
        full = f"{self.prefix}{name}"
        with self._lock:
            client = self._tables.get(full)
            if client is None:
                with contextlib.suppress(ResourceExistsError):
                    self.service.create_table(full)
                client = self.service.get_table_client(full)
                self._tables[full] = client
            return client

    def drop_all(self) -> None:
        """Delete every table of this prefix (tests and the demo's clean start)."""
        for table in list(self.service.list_tables()):
            if table.name.startswith(self.prefix):
                self.service.delete_table(table.name)
        with self._lock:
            self._tables.clear()


def _size(entity: dict[str, Any]) -> int:
    """About how many bytes an entity takes in a transaction's body (binary as base64)."""
    total = 200
    for key, value in entity.items():
        total += len(key) + 20
        if isinstance(value, bytes | bytearray):
            total += len(value) * 4 // 3 + 4
        elif isinstance(value, str):
            total += len(value.encode("utf-8"))
        else:
            total += 32
    return total


def _filled(operations: Iterable[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    """Operations in transactions, in their order: a transaction ends when it holds 100
    operations or about 3.5 MB, or when the partition key changes (Table Storage's limits: 100
    and 4 MiB, one partition). Each is made when the one before has been taken."""
    current: list[tuple[Any, ...]] = []
    size = 0
    for operation in operations:
        weight = _size(operation[1])
        if current and (len(current) == BATCH_LIMIT or size + weight > BATCH_BYTES
                        or operation[1]["PartitionKey"] != current[0][1]["PartitionKey"]):
            yield current
            current, size = [], 0
        current.append(operation)
        size += weight
    if current:
        yield current


def transactions(operations: Sequence[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """Operations in entity group transactions: grouped by partition key, in their order, at most
    100 operations and about 3.5 MB each (Table Storage's limits: 100 and 4 MiB)."""
    by_partition: dict[str, list[tuple[Any, ...]]] = {}
    for operation in operations:
        by_partition.setdefault(str(operation[1]["PartitionKey"]), []).append(operation)
    return [batch for ops in by_partition.values() for batch in _filled(ops)]


def submit_batches(table: TableClient, operations: Sequence[tuple[Any, ...]]) -> None:
    """Submit operations in as few transactions as Table Storage allows (``transactions``).

    Each transaction is atomic on its own; callers that need the whole set to appear at once
    write a commit marker after this returns (or use ``write_committed_document``).
    """
    for batch in transactions(operations):
        table.submit_transaction(batch)


def submit_streamed(table: TableClient, operations: Iterable[tuple[Any, ...]]) -> int:
    """``submit_batches`` for operations made one at a time (a generator), in their order: a
    transaction is sent as soon as it is full or the partition key changes, so that only one
    transaction's operations are held, however many there are. Answers how many were sent."""
    sent = 0
    for batch in _filled(operations):
        table.submit_transaction(batch)
        sent += len(batch)
    return sent


def upsert(table: TableClient, entity: dict[str, Any]) -> None:
    table.upsert_entity(entity, mode=UpdateMode.REPLACE)


def query(table: TableClient, filter_: str, **parameters: Any) -> Iterator[dict[str, Any]]:
    """Parameterised query: values are never spliced into the filter text."""
    yield from table.query_entities(filter_, parameters=parameters)


LARGE_ROWS_PAGE = 200
"""The page a reader of a run's larger rows (its tenants' outcomes, its changes, its tenants'
reconciliation and licence facts) asks for, instead of Table Storage's 1,000: a page of 1,000
tenant outcomes was about 6 MB of response bodies and parsed entities at once, which Python's
allocator kept partly after. Five times the requests for a run's partitions: 15 instead of 3
for 3,000 tenants, a few thousandths of a request a tenant."""


def partition(table: TableClient, partition_key: str, *, page_size: int | None = None,
              select: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """The entities of one partition, a page at a time (``page_size`` each, Table Storage's 1,000
    by default), each page read when the one before has been consumed: a caller that does not
    keep them holds one page. ``select``: only these properties are sent (``$select``)."""
    yield from table.query_entities("PartitionKey eq @pk", parameters={"pk": partition_key},
                                    results_per_page=page_size, select=list(select) if select else None)


def row_range(table: TableClient, partition_key: str, low: str, high: str) -> Iterator[dict[str, Any]]:
    """Entities of one partition with ``low <= RowKey < high``."""
    yield from query(
        table, "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
        pk=partition_key, lo=low, hi=high,
    )


@dataclass(frozen=True)
class DocumentRef:
    """Where a document's parts are and how to check them."""

    partition_key: str
    row_prefix: str
    parts: int
    sha256: str

    def to_entity_fields(self) -> dict[str, Any]:
        return {"DocPartition": self.partition_key, "DocPrefix": self.row_prefix, "DocParts": self.parts,
                "DocSha256": self.sha256}

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> DocumentRef:
        try:
            return cls(str(entity["DocPartition"]), str(entity["DocPrefix"]), int(entity["DocParts"]),
                       str(entity["DocSha256"]))
        except KeyError as exc:
            raise StoreError(f"entity {entity.get('PartitionKey')}/{entity.get('RowKey')} has no "
                             f"document reference ({exc})") from exc


@dataclass(frozen=True)
class JsonText:
    """A document given as its JSON text in pieces: a large document (a run's digest of thousands
    of tenants) is then compressed as its pieces are made, never held as a tree of dicts and one
    long text. Readers parse it as JSON, so any JSON text will do: the digest gives exactly the
    text ``canonical_json`` gives its dict; what a run set out to do gives pydantic's, whose keys
    are in the models' order, not sorted."""

    pieces: Iterable[bytes]


def canonical_json(value: Any) -> bytes:
    """The stored form of a value: compact, keys sorted."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str).encode("utf-8")


def encode_document(document: Any) -> tuple[list[bytes], str]:
    if isinstance(document, JsonText):
        compressor = zlib.compressobj(6)
        packed = b"".join([*(compressor.compress(piece) for piece in document.pieces), compressor.flush()])
    else:
        packed = zlib.compress(canonical_json(document), 6)
    parts = [packed[i:i + PART_BYTES] for i in range(0, len(packed), PART_BYTES)] or [b""]
    return parts, hashlib.sha256(packed).hexdigest()


def write_document(table: TableClient, partition_key: str, row_prefix: str, document: Any) -> DocumentRef:
    """Store ``document`` (JSON-serialisable) as compressed parts; returns the reference that
    the caller's commit entity must carry."""
    operations, ref = document_parts(document, partition_key, row_prefix)
    submit_batches(table, operations)
    return ref


def document_parts(document: Any, partition_key: str, row_prefix: str) -> tuple[list[tuple[Any, ...]], DocumentRef]:
    """The upserts that store ``document`` as compressed parts, and its reference."""
    parts, digest = encode_document(document)
    operations: list[tuple[Any, ...]] = [
        ("upsert", {"PartitionKey": partition_key, "RowKey": f"{row_prefix}~{index:05d}",
                    "Part": part, "Parts": len(parts)}, {"mode": UpdateMode.REPLACE})
        for index, part in enumerate(parts)
    ]
    return operations, DocumentRef(partition_key, row_prefix, len(parts), digest)


def write_committed_document(table: TableClient, partition_key: str, row_prefix: str, document: Any,
                             commit: dict[str, Any], *, also: Sequence[dict[str, Any]] = (),
                             before: Sequence[dict[str, Any]] = ()) -> DocumentRef:
    """Store ``document`` and the entity that commits it (``commit`` with the document's
    reference added; ``before`` and ``also``: more entities of the partition, written with it,
    before and after the commit entity). One transaction when they fit in one (a document under
    about 3 MB compressed), so the document appears whole or not at all; otherwise the parts
    first and then the other entities in their order: the commit entity is never written before
    every part is."""
    [ref] = write_committed_documents(table, partition_key, [(row_prefix, document, commit)], also=also,
                                      before=before)
    return ref


def write_committed_documents(table: TableClient, partition_key: str,
                              documents: Sequence[tuple[str, Any, dict[str, Any]]], *,
                              also: Sequence[dict[str, Any]] = (),
                              before: Sequence[dict[str, Any]] = ()) -> list[DocumentRef]:
    """``write_committed_document`` for several documents of one partition (row prefix, document,
    commit entity each): one transaction when everything fits in one, otherwise every part first,
    then ``before``, the commit entities and ``also``, in that order."""
    entities = [*before, *(commit for _, _, commit in documents), *also]
    if any(str(e["PartitionKey"]) != partition_key for e in entities):
        raise ValueError("committed documents and their commit entities share one partition")
    operations: list[tuple[Any, ...]] = []
    refs: list[DocumentRef] = []
    commits: list[tuple[Any, ...]] = []
    for row_prefix, document, commit in documents:
        parts, ref = document_parts(document, partition_key, row_prefix)
        operations += parts
        refs.append(ref)
        commits.append(("upsert", {**commit, **ref.to_entity_fields()}, {"mode": UpdateMode.REPLACE}))
    tail: list[tuple[Any, ...]] = [("upsert", dict(entity), {"mode": UpdateMode.REPLACE}) for entity in before]
    tail += commits
    tail += [("upsert", dict(entity), {"mode": UpdateMode.REPLACE}) for entity in also]
    batches = transactions(operations + tail)
    if len(batches) == 1:
        table.submit_transaction(batches[0])
        return refs
    submit_batches(table, operations)
    submit_batches(table, tail)
    return refs


def read_document(table: TableClient, ref: DocumentRef, read: dict[str, Any] | None = None) -> Any:
    """The document ``ref`` points to, checked whole (every part, and the digest); ``read``: the
    entities of its partition already read, by row key, so that the parts are not read again.
    Parts beyond the reference's count (left by an earlier, longer version) are not part of it."""
    return json.loads(read_document_json(table, ref, read))


def read_document_json(table: TableClient, ref: DocumentRef, read: dict[str, Any] | None = None) -> bytes:
    """``read_document``'s JSON text, checked whole, not parsed: for a reader that parses it
    into its own objects directly (a large configuration, without a tree of dicts between)."""
    wanted = [f"{ref.row_prefix}~{index:05d}" for index in range(ref.parts)]
    found = read if read is not None and all(key in read for key in wanted) else {
        str(e["RowKey"]): e for e in row_range(table, ref.partition_key, f"{ref.row_prefix}~", f"{ref.row_prefix}~~")}
    entities = [found[key] for key in wanted if key in found]
    if len(entities) != ref.parts:
        raise StoreError(f"document {ref.partition_key}/{ref.row_prefix} has {len(entities)} of "
                         f"{ref.parts} parts")
    packed = b"".join(_as_bytes(e["Part"]) for e in entities)
    if hashlib.sha256(packed).hexdigest() != ref.sha256:
        raise StoreError(f"document {ref.partition_key}/{ref.row_prefix} fails its checksum")
    return zlib.decompress(packed)


def committed_documents(table: TableClient, partition_key: str, *,
                        page_size: int | None = None) -> Iterator[tuple[dict[str, Any], Any]]:
    """Every committed document of a partition, with its commit entity, in row-key order, read a
    page at a time. A document's parts follow its commit entity (``{key}~lines~00000`` sorts after
    ``{key}``), so one document's entities are held at a time, not the partition's; a document
    whose parts are elsewhere is read by itself."""
    held: dict[str, Any] = {}
    commit: dict[str, Any] | None = None
    for entity in partition(table, partition_key, page_size=page_size):
        if "~" in str(entity["RowKey"]):
            held[str(entity["RowKey"])] = entity
            continue
        if commit is not None:
            yield commit, read_document(table, DocumentRef.from_entity(commit), held)
        commit, held = entity, {}
    if commit is not None:
        yield commit, read_document(table, DocumentRef.from_entity(commit), held)


def delete_rows(table: TableClient, entities: Iterable[dict[str, Any]]) -> None:
    submit_batches(table, [("delete", e) for e in entities])


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raw = getattr(value, "value", None)  # EntityProperty
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    raise StoreError(f"document part is not binary: {type(value).__name__}")
