"""A stored configuration is read a tenant at a time (``parse_stored_config``): it must give
exactly what reading the whole document gives, and refuse what that refuses, with the same
errors."""

from __future__ import annotations

import copy
import json
import tracemalloc
from typing import Any

import pytest

from shared.config.compact import CompactModels
from shared.config.json_members import Member, members
from shared.config.schema import SeatSyncConfig, TenantConfig, dump_config, parse_config_json, parse_stored_config
from shared.errors import ConfigError
from tests.unit.test_compact_config import _document


def _as_whole(text: str | bytes) -> SeatSyncConfig:
    return parse_config_json(text).compacted()


def _stored(document: dict[str, Any], **dumps: Any) -> str:
    return json.dumps(document, **dumps)


# --------------------------------------------------------------------------- the walk


def test_members_gives_each_value_as_text_and_the_array_asked_for_item_by_item() -> None:
    text = ' { "a" : {"x": [1, 2]} ,"tenants":[ {"id": 1} , {"id": "]}"} ],\n"b": "t\\"x" } \n'
    assert list(members(text, spread="tenants")) == [
        Member("a", '{"x": [1, 2]}', False),
        Member("tenants", '{"id": 1}', True),
        Member("tenants", '{"id": "]}"}', True),
        Member("b", '"t\\"x"', False),
    ]


def test_members_of_empty_objects_and_arrays() -> None:
    assert list(members("{}", spread="tenants")) == []
    assert list(members('{"tenants": []}', spread="tenants")) == []
    assert list(members('{"tenants": null}', spread="tenants")) == [Member("tenants", "null", False)]


@pytest.mark.parametrize("text", [
    "", "[]", '"x"', "{", '{"a": 1', '{"a": 1,}', '{"a" 1}', '{a: 1}', '{"a": 1} x', '{"a": 1}{}',
    '{"tenants": [1, ]}', '{"tenants": [1 2]}', '{"tenants": [1', '{"a": 1, "a": 2}',
])
def test_members_refuses_what_is_not_one_json_object(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        list(members(text, spread="tenants"))


# --------------------------------------------------------------------------- the configuration


@pytest.mark.parametrize("dumps", [{}, {"indent": 2}, {"separators": (",", ":")}, {"ensure_ascii": False}])
def test_a_stored_document_reads_as_the_whole_document_does(dumps: dict[str, Any]) -> None:
    document = _document()
    document["tenants"][0]["name"] = "Contoso Ünited"
    text = _stored(document, **dumps)
    stored = parse_stored_config(text)
    whole = _as_whole(text)
    assert isinstance(stored.tenants, CompactModels) and isinstance(whole.tenants, CompactModels)
    assert stored == whole
    assert stored.tenants._documents == whole.tenants._documents  # the very bytes kept
    assert dump_config(stored) == dump_config(whole)
    assert parse_stored_config(text.encode()) == whole
    assert stored.tenant(document["tenants"][2]["tenantId"].upper()) == whole.tenants[2]
    assert stored.lines_named("connectwise") == whole.lines_named("connectwise")


def test_tenants_first_or_last_or_none_at_all() -> None:
    document = _document()
    tenants = document.pop("tenants")
    first = json.dumps({"tenants": tenants, **document})
    assert parse_stored_config(first) == _as_whole(first)
    none = json.dumps(document)
    assert parse_stored_config(none) == _as_whole(none)
    assert len(parse_stored_config(none).tenants) == 0
    assert parse_stored_config("{}") == SeatSyncConfig()


def _error(call: Any, text: str | bytes) -> str:
    with pytest.raises(ConfigError) as raised:
        call(text, "stored configuration v1")
    return str(raised.value)


@pytest.mark.parametrize("damage", [
    "a tenant field", "a tenant twice", "a section", "an unknown section", "tenants not a list",
    "not json", "not an object",
])
def test_a_document_that_is_not_valid_is_refused_with_the_whole_documents_errors(damage: str) -> None:
    document = _document()
    if damage == "a tenant field":
        document["tenants"][2]["companies"][0]["licences"][0]["included"] = -1
    elif damage == "a tenant twice":  # a rule across tenants
        document["tenants"].append(copy.deepcopy(document["tenants"][0]))
    elif damage == "a section":
        document["psaConnections"][0]["type"] = "nope"
    elif damage == "an unknown section":
        document["tenant"] = []
    elif damage == "tenants not a list":
        document["tenants"] = {"a": 1}
    text = json.dumps(document)
    if damage == "not json":
        text = text[:-1]
    elif damage == "not an object":
        text = json.dumps([document])
    expected = _error(lambda t, s: parse_config_json(t, s), text)
    assert _error(parse_stored_config, text) == expected
    assert _error(parse_stored_config, text.encode()) == expected


def test_a_key_given_twice_reads_as_the_whole_document_reads_it() -> None:
    document = _document()
    text = json.dumps(document)[:-1] + ', "tenants": ' + json.dumps(document["tenants"][:1]) + "}"
    assert parse_stored_config(text) == _as_whole(text)
    assert len(parse_stored_config(text).tenants) == 1


def test_a_tenant_is_validated_as_within_the_whole_document() -> None:
    """A tenant alone is validated in pydantic's JSON mode, as within the whole: a number given
    as text where the JSON mode refuses it is refused the same way."""
    document = _document()
    document["tenants"][0]["companies"][0]["licences"][0]["included"] = "2"
    text = json.dumps(document)
    try:
        whole: SeatSyncConfig | str = _as_whole(text)
    except ConfigError as exc:
        whole = str(exc)
    try:
        stored: SeatSyncConfig | str = parse_stored_config(text)
    except ConfigError as exc:
        stored = str(exc)
    assert stored == whole


def test_reading_tenant_at_a_time_never_holds_every_tenants_models() -> None:
    """The point of it: the most held while reading stays near what is kept (the compact
    documents and the text), not every tenant's models at once."""
    document = _document()
    template = document["tenants"][2]
    document["tenants"] = []
    for n in range(400):
        tenant = {**copy.deepcopy(template), "tenantId": f"aaaaaaaa-0000-0000-0000-{n:012d}", "name": f"Customer {n}"}
        tenant["companies"][0]["licences"][0]["lineId"] = str(1000 + n)  # one PSA line bills one licence
        document["tenants"].append(tenant)
    text = json.dumps(document).encode()
    one_model = TenantConfig.model_validate(document["tenants"][0])
    assert one_model  # warms pydantic's validators before measuring

    def held(read: Any) -> tuple[int, int]:
        tracemalloc.start()
        try:
            kept = read(text)
            current, peak = tracemalloc.get_traced_memory()
            assert len(kept.tenants) == 400
            return current, peak
        finally:
            tracemalloc.stop()

    kept_whole, peak_whole = held(_as_whole)
    kept_stored, peak_stored = held(parse_stored_config)
    assert kept_stored <= kept_whole * 1.1
    assert peak_stored < peak_whole / 2
    assert peak_stored < kept_stored + 3 * len(text)
