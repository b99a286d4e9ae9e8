"""The configuration's versions: what changed between two, and going back to an earlier one.

Shared by the command line (``seatsync config diff`` / ``rollback``) and whatever else shows the
history. A rollback saves the old document as a new version (the history only grows), and only if
nobody saved another version meanwhile; rolling back to what is current changes nothing.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from shared.adapters.config_store import ConfigRepository, ConfigVersion
from shared.config.schema import SeatSyncConfig
from shared.config.yaml_io import to_yaml
from shared.errors import NotFoundError, RequestValidationError


@dataclass(frozen=True)
class ConfigDiff:
    old: ConfigVersion
    new: ConfigVersion
    text: str
    """A unified diff of the two versions as YAML (empty when they are the same)."""


def parse_version(value: str | int, field: str = "version") -> int:
    """A version number as the user gives it: ``12``, ``v12`` or a version id ``v00000012-...``."""
    text = str(value).strip().lower()
    digits = text.removeprefix("v").split("-")[0]
    if not digits.isdigit() or int(digits) < 1:
        raise RequestValidationError(field, f"{value!r} is not a configuration version (a number from "
                                            "'seatsync config history')")
    return int(digits)


def load_version(repository: ConfigRepository, number: int, field: str = "version"
                 ) -> tuple[SeatSyncConfig, ConfigVersion]:
    found = repository.numbered(number)
    if found is None:
        raise NotFoundError(field, f"there is no configuration version {number} (see 'seatsync config history')")
    return found


def config_diff(repository: ConfigRepository, old: int | None = None, new: int | None = None) -> ConfigDiff:
    """What changed from version ``old`` (default: the one before ``new``) to version ``new``
    (default: the current one)."""
    current = repository.current()[1]
    if current is None:
        raise NotFoundError("version", "no configuration has been saved yet")
    new_number = new if new is not None else current.number
    new_config, new_version = load_version(repository, new_number, "to")
    old_number = old if old is not None else new_number - 1
    if old_number < 1:
        raise NotFoundError("version", f"version {new_number} is the first: there is nothing before it")
    old_config, old_version = load_version(repository, old_number)
    lines = difflib.unified_diff(to_yaml(old_config).splitlines(keepends=True),
                                 to_yaml(new_config).splitlines(keepends=True),
                                 fromfile=f"version {old_version.number} ({old_version.saved_by})",
                                 tofile=f"version {new_version.number} ({new_version.saved_by})")
    return ConfigDiff(old_version, new_version, "".join(lines))


def rollback(repository: ConfigRepository, number: int, by: str, comment: str | None = None) -> ConfigVersion:
    """Make version ``number``'s document current again, as a new version."""
    config, version = load_version(repository, number)
    current = repository.current()[1]
    return repository.save(config, by, comment or f"rollback to version {version.number}", expected=current)
