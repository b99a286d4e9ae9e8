"""YAML import and export of the configuration document."""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.config.schema import SeatSyncConfig, dump_config, parse_config
from shared.errors import ConfigError


def parse_yaml(text: str, source: str = "configuration") -> SeatSyncConfig:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}", source) from None
    if document is None:
        raise ConfigError("the file is empty", source)
    return parse_config(document, source)


def load_yaml_file(path: Path) -> SeatSyncConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", str(path)) from None
    return parse_yaml(text, source=str(path))


def to_yaml(config: SeatSyncConfig) -> str:
    return yaml.safe_dump(dump_config(config), sort_keys=False, allow_unicode=True, width=100)
