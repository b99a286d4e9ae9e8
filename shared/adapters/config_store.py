"""The configuration in Table Storage, versioned.

Each saved configuration is a new immutable version (a document stored in parts); a single
pointer entity names the current version and is replaced with an ETag check. A save is
therefore all-or-nothing: readers see the old version until the pointer moves, a crash
mid-save leaves only unreferenced parts, and two concurrent saves cannot both win. Every
version records who saved it, when, and why: the history of configuration changes.
"""

from __future__ import annotations

import secrets
import threading
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity

from shared.adapters.tables import (
    DocumentRef,
    StoreError,
    TableStore,
    partition,
    read_document,
    read_document_json,
    upsert,
    write_document,
)
from shared.config.schema import SeatSyncConfig, dump_config, parse_config_json, parse_stored_config
from shared.errors import ConfigError, ConflictError

_POINTER_PK = "config"
_POINTER_RK = "current"
_HISTORY_PK = "history"


@dataclass(frozen=True)
class ConfigVersion:
    version_id: str
    number: int
    saved_at: datetime
    saved_by: str
    comment: str
    etag: str | None = None
    unchanged: bool = False
    """Set by ``save`` when the document saved was the current one: no new version was made."""


def _unreadable(exc: BaseException) -> ConfigError:
    """A damaged record is bad input like any other: named, never an unexplained crash."""
    return ConfigError(f"it cannot be read ({type(exc).__name__}: {exc}); make a saved version current again "
                       "(seatsync config history, then rollback) or import the configuration file again",
                       "stored configuration")


class ConfigRepository:
    """Saved versions are immutable, so the last version read is kept parsed: reading the current
    configuration costs one request (the pointer) while its version stays current, and an activity
    neither re-reads nor re-parses the whole document. Its tenants are kept as their compact JSON
    documents, each parsed when used (``SeatSyncConfig.compacted``): a process holds about 500
    bytes a tenant rather than 2.8 KB of models."""

    def __init__(self, store: TableStore) -> None:
        self._table = store.table("config")
        self._lock = threading.Lock()
        self._parsing = threading.Lock()  # one parse of a version at a time
        self._parsed: tuple[str, SeatSyncConfig] | None = None

    def _pointer(self) -> TableEntity | None:
        try:
            return self._table.get_entity(_POINTER_PK, _POINTER_RK)
        except ResourceNotFoundError:
            return None

    def current(self) -> tuple[SeatSyncConfig, ConfigVersion | None]:
        """The current configuration (empty before the first save) and its version. A version is
        parsed once per process: the activities that start together in a new process wait for
        the first one's parse rather than each parsing every tenant at the same moment."""
        pointer = self._pointer()
        if pointer is None:
            return SeatSyncConfig(), None
        try:
            version = _version_from(pointer)
        except (KeyError, ValueError, TypeError) as exc:
            raise _unreadable(exc) from exc
        with self._lock:
            parsed = self._parsed
        if parsed is not None and parsed[0] == version.version_id:
            return parsed[1], version
        with self._parsing:
            with self._lock:
                parsed = self._parsed
            if parsed is not None and parsed[0] == version.version_id:
                return parsed[1], version
            try:
                document = read_document_json(self._table, DocumentRef.from_entity(pointer))
            except (StoreError, KeyError, ValueError, TypeError, zlib.error) as exc:
                raise _unreadable(exc) from exc
            config = parse_stored_config(document, source=f"stored configuration {version.version_id}")
            with self._lock:
                self._parsed = (version.version_id, config)
        return config, version

    def save(self, config: SeatSyncConfig, saved_by: str, comment: str = "",
             expected: ConfigVersion | str | None = "any") -> ConfigVersion:
        """Store ``config`` as the new current version.

        ``expected`` is the version the caller edited (``None``: there was none yet); when the
        current version is another one, nothing changes and ``ConflictError`` is raised.
        Pass ``"any"`` to overwrite whatever is current (imports of a whole file).
        """
        pointer = self._pointer()
        current = _version_from(pointer) if pointer else None
        if expected != "any":
            expected_id = expected.version_id if isinstance(expected, ConfigVersion) else None
            current_id = current.version_id if current else None
            if expected_id != current_id:
                raise ConflictError(
                    f"the configuration changed since it was read (now version {current_id}, "
                    f"edited {expected_id}); read it again and repeat the change")
        document = dump_config(config)
        if pointer is not None and current is not None and \
                read_document(self._table, DocumentRef.from_entity(pointer)) == document:
            return replace(current, unchanged=True)  # the same document again: no new version
        number = (current.number + 1) if current else 1
        version_id = f"v{number:08d}-{secrets.token_hex(4)}"
        ref = write_document(self._table, version_id, "doc", document)
        now = datetime.now(UTC)
        fields = {
            "VersionId": version_id, "Number": number, "SavedAt": now.isoformat(),
            "SavedBy": saved_by, "Comment": comment, **ref.to_entity_fields(),
        }
        entity = {"PartitionKey": _POINTER_PK, "RowKey": _POINTER_RK, **fields}
        try:
            if pointer is None:
                self._table.create_entity(entity)
            else:
                self._table.update_entity(entity, etag=pointer.metadata["etag"],
                                          match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceExistsError) as exc:
            raise ConflictError("another change to the configuration was saved at the same time; "
                                "read it again and repeat the change") from exc
        upsert(self._table, {"PartitionKey": _HISTORY_PK, "RowKey": f"{number:08d}", **fields})
        return ConfigVersion(version_id, number, now, saved_by, comment)

    def history(self) -> list[ConfigVersion]:
        versions = [_version_from(e) for e in partition(self._table, _HISTORY_PK)]
        return sorted(versions, key=lambda v: v.number)

    def numbered(self, number: int) -> tuple[SeatSyncConfig, ConfigVersion] | None:
        """Version ``number`` of the history and its document, or None when there is none."""
        try:
            entity = self._table.get_entity(_HISTORY_PK, f"{number:08d}")
        except ResourceNotFoundError:
            return None
        version = _version_from(entity)
        config = parse_config_json(read_document_json(self._table, DocumentRef.from_entity(entity)),
                                   source=f"stored configuration {version.version_id}")
        return config, version

    def version(self, version_id: str) -> SeatSyncConfig:
        for entity in partition(self._table, _HISTORY_PK):
            if entity.get("VersionId") == version_id:
                return parse_config_json(read_document_json(self._table, DocumentRef.from_entity(entity)),
                                         source=f"stored configuration {version_id}")
        raise KeyError(version_id)


def _version_from(entity: TableEntity | dict[str, Any]) -> ConfigVersion:
    metadata = getattr(entity, "metadata", None) or {}
    return ConfigVersion(
        version_id=str(entity["VersionId"]),
        number=int(entity["Number"]),
        saved_at=datetime.fromisoformat(str(entity["SavedAt"])),
        saved_by=str(entity.get("SavedBy", "")),
        comment=str(entity.get("Comment", "")),
        etag=metadata.get("etag"),
    )
