"""The published JSON Schema of the configuration file: current with the models, and it accepts
the sample MSP's configuration (licences named by id or by name) and refuses what the models refuse
field by field."""

from __future__ import annotations

import json
import string
from pathlib import Path

import jsonschema
import pytest
import yaml

from shared.config.json_schema import config_json_schema, config_json_schema_text
from shared.config.schema import parse_config

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "docs" / "seatsync-config.schema.json"
SAMPLES = sorted((ROOT / "emulators" / "scenarios").glob("sample-msp*.config.yaml"))


def test_the_published_schema_is_current() -> None:
    assert PUBLISHED.read_text(encoding="utf-8") == config_json_schema_text(), (
        "regenerate it: .venv/bin/seatsync config schema -o docs/seatsync-config.schema.json")
    jsonschema.Draft202012Validator.check_schema(json.loads(PUBLISHED.read_text(encoding="utf-8")))


def sample(path: Path) -> dict[str, object]:
    text = string.Template(path.read_text(encoding="utf-8")).safe_substitute(
        dict.fromkeys(("CONNECTWISE_URL", "AUTOTASK_URL", "HALOPSA_URL", "PARTNER_CENTER_URL", "PAX8_URL"),
                      "https://psa.example/v4_6_release/apis/3.0"))
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_the_sample_configurations_are_valid_against_it(path: Path) -> None:
    document = sample(path)
    jsonschema.validate(document, config_json_schema())
    parse_config(document)  # and the models agree


def test_names_of_licences_are_valid_and_misspelt_fields_are_not() -> None:
    schema = config_json_schema()
    document = sample(SAMPLES[0])
    tenants = document["tenants"]
    assert isinstance(tenants, list)
    tenants[0]["companies"][0]["licences"][0]["skuId"] = "Microsoft 365 Business Premium"
    jsonschema.validate(document, schema)
    tenants[0]["companies"][0]["licences"][0]["skuID"] = "SPB"
    with pytest.raises(jsonschema.ValidationError, match="skuID"):
        jsonschema.validate(document, schema)
