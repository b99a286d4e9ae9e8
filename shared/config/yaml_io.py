"""YAML import and export of the configuration document.

Files are read strictly (``shared.config.input_limits``): at most 8 MiB of UTF-8 text, nested at most 32
levels, and a key given twice in one mapping is refused with both lines, so a second
``tenants:`` can never silently replace the first."""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.config.input_limits import read_file, read_yaml
from shared.config.schema import SeatSyncConfig, dump_config, parse_config
from shared.errors import ConfigError


def parse_yaml(text: str | bytes, source: str = "configuration") -> SeatSyncConfig:
    document = read_yaml(text, source)
    if document is None:
        raise ConfigError("the file is empty", source)
    return parse_config(document, source)


def load_yaml_file(path: Path) -> SeatSyncConfig:
    return parse_yaml(read_file(path), source=str(path))


def to_yaml(config: SeatSyncConfig) -> str:
    return yaml.safe_dump(dump_config(config), sort_keys=False, allow_unicode=True, width=100)
