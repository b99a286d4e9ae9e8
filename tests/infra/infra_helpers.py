"""Helpers of the infrastructure tests: parse the Bicep files with pycep and read them.

pycep renders an identifier and a string literal alike (``name: name`` and ``name: 'name'``
both give ``"name"``); the tests compare against what the templates are meant to contain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


_PARSER: BicepParser | None = None
_CACHE: dict[Path, dict[str, Any]] = {}


def parse_bicep(path: Path) -> dict[str, Any]:
    """Parse one Bicep file into pycep's JSON form (cached per session)."""
    global _PARSER
    path = path.resolve()
    if path not in _CACHE:
        if _PARSER is None:
            _PARSER = BicepParser()
        _CACHE[path] = _PARSER.parse(file_path=path)
    return _CACHE[path]


def module_file(name: str) -> dict[str, Any]:
    return parse_bicep(INFRA / "modules" / f"{name}.bicep")


def resource(bicep: dict[str, Any], symbol: str) -> dict[str, Any]:
    """The config of a resource; for a conditional resource, the inner config."""
    config = bicep["resources"][symbol]["config"]
    if "condition" in config and "config" in config:
        return config["config"]
    return config


def resources_of_type(bicep: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {
        symbol: res
        for symbol, res in bicep["resources"].items()
        if res["type"].lower() == type_.lower() and not res.get("existing")
    }


def variable(bicep: dict[str, Any], name: str) -> Any:
    return bicep["variables"][name]["value"]


def app_settings(functionapp: dict[str, Any]) -> dict[str, Any]:
    """Name -> value of every app setting the function app module writes.

    siteConfig.appSettings is concat() of array variables; a variable built with a
    for-loop contributes one entry, keyed by the loop's name expression.
    """
    site = resource(functionapp, "functionApp")
    expression = site["properties"]["siteConfig"]["appSettings"]
    assert expression["function"]["type"] == "concat", "appSettings should be concat(<array variables>)"
    settings: dict[str, Any] = {}
    for name in expression["function"]["parameters"].values():
        value = variable(functionapp, name)
        if isinstance(value, dict) and "loop_type" in value:
            settings[f"<for each {value['loop_type']['detail']['array_name']}>"] = value["config"]["value"]
            continue
        for entry in value:
            assert entry["name"] not in settings, f"app setting {entry['name']} set twice"
            settings[entry["name"]] = entry["value"]
    return settings


def dotted(expression: Any) -> Any:
    """``a.b.c`` for a pycep property-accessor chain; any other expression unchanged."""
    if isinstance(expression, dict) and "operator" in expression:
        operator = expression["operator"]
        if operator["type"] == "property_accessor":
            operands = operator["operands"]
            return f"{dotted(operands['operand_1'])}.{dotted(operands['operand_2'])}"
    return expression
