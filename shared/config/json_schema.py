"""The JSON Schema of the configuration file, generated from the configuration's models.

Published as ``docs/seatsync-config.schema.json`` (``seatsync config schema`` prints it) so an
editor can complete and check a configuration file as it is written, e.g. with the YAML language
server's modeline ``# yaml-language-server: $schema=<path or URL of the file>``. The models stay
the authority: a file the schema accepts can still be refused for a rule that spans entries (a
profile of another PSA, overlapping user filters, ...), with every problem named.
"""

from __future__ import annotations

import json
from typing import Any

from shared.config.schema import SeatSyncConfig


def config_json_schema() -> dict[str, Any]:
    schema = SeatSyncConfig.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "SeatSync configuration",
            "description": "The configuration document of SeatSync (docs/configuration.md): PSA connections, "
                           "billing profiles, tenants and how each licence is billed.",
            **{k: v for k, v in schema.items() if k not in ("title", "description")}}


def config_json_schema_text() -> str:
    return json.dumps(config_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
