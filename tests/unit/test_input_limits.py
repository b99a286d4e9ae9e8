"""Documents are read strictly: duplicate keys at any level name the key and both lines; size,
nesting depth (aliases expanded) and UTF-8 are checked before anything is built, and a refusal
never quotes the content."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config.input_limits import (
    MAX_DEPTH,
    MAX_KEY_CHARS,
    check_nesting,
    key_problem,
    read_file,
    read_json,
    read_yaml,
)
from shared.errors import InputRefused


def refusal(reader: object, data: bytes | str, source: str = "config.yaml", **limits: int) -> InputRefused:
    with pytest.raises(InputRefused) as raised:
        reader(data, source, **limits)  # type: ignore[operator]
    assert raised.value.field == source
    return raised.value


# --------------------------------------------------------------------------- duplicate keys


def test_a_second_tenants_section_is_refused_with_both_lines() -> None:
    text = "tenants:\n  - tenantId: a\npsaConnections: []\ntenants:\n  - tenantId: b\n"
    assert refusal(read_yaml, text).message == "the key 'tenants' is given twice in one mapping, at lines 1 and 4"


def test_a_duplicate_key_deep_in_the_document_is_refused() -> None:
    text = ("tenants:\n"
            "  - tenantId: a\n"
            "    companies:\n"
            "      - psa: cw\n"
            "        licences:\n"
            "          - skuId: x\n"
            "            agreementId: '1'\n"
            "            agreementId: '2'\n")
    assert refusal(read_yaml, text).message == ("the key 'agreementId' is given twice in one mapping, at lines 7 "
                                                "and 8")


def test_the_same_key_in_different_mappings_and_merge_keys_are_fine() -> None:
    text = "a: {x: 1}\nb: {x: 2}\nbase: &base {y: 1, z: 2}\nc:\n  <<: *base\n  y: 3\n"
    assert read_yaml(text, "f") == {"a": {"x": 1}, "b": {"x": 2}, "base": {"y": 1, "z": 2}, "c": {"y": 3, "z": 2}}


def test_json_duplicate_keys_name_the_key_and_both_lines_even_when_escaped() -> None:
    text = b'{\n  "tenants": [],\n  "note": "a \\"tenants\\": here",\n  "ten\\u0061nts": [1]\n}'
    message = refusal(read_json, text, "body").message
    assert message == "the key 'tenants' is given twice in one object, at lines 2 and 4"


def test_json_keys_of_sibling_objects_do_not_collide() -> None:
    assert read_json(b'[{"a": 1}, {"a": 2}, {"b": {"a": 3}}]', "body") == [{"a": 1}, {"a": 2}, {"b": {"a": 3}}]


# --------------------------------------------------------------------------- depth, size, encoding


@pytest.mark.parametrize("reader", [read_json, read_yaml])
def test_depth_is_limited_without_recursing(reader: object) -> None:
    limit = MAX_DEPTH
    assert reader("[" * limit + "]" * limit, "body") == json.loads("[" * limit + "]" * limit)  # type: ignore[operator]
    for depth in (limit + 1, 100_000):
        message = refusal(reader, "[" * depth + "]" * depth, "body").message
        assert message == f"the request body is nested more than {limit} levels deep; at most {limit} are accepted"


def test_block_yaml_depth_is_limited() -> None:
    text = "".join("  " * level + f"k{level}:\n" for level in range(MAX_DEPTH + 1)) + "  " * (MAX_DEPTH + 1) + "v\n"
    assert "nested more than" in refusal(read_yaml, text).message


def test_aliases_count_as_what_they_expand_to() -> None:
    laughs = ["a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    for name, previous in zip("bcdefg", "abcdef", strict=True):
        laughs.append(f"{name}: &{name} [{', '.join(['*' + previous] * 10)}]")
    message = refusal(read_yaml, "\n".join(laughs) + "\n").message
    assert message.startswith("the file expands to more than 2000000 values (through its aliases)")
    deep = "a: &a " + "[" * 20 + "]" * 20 + "\nb: " + "[" * 20 + "*a" + "]" * 20 + "\n"
    assert "nested more than" in refusal(read_yaml, deep).message


def test_size_is_limited_and_named() -> None:
    refused = refusal(read_json, b"[" + b"0," * 600 + b"0]", "body", limit=1000)
    assert refused.too_large
    assert refused.message == "the request body is 1203 bytes; at most 1000 bytes are accepted"


def test_a_large_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * 5000 + b"\n")
    with pytest.raises(InputRefused) as raised:
        read_file(path, limit=1024)
    assert raised.value.too_large and raised.value.field == str(path)
    assert raised.value.message == "the file is 5003 bytes; at most 1024 bytes are accepted"
    assert read_file(path, limit=6000).startswith(b"# x")
    with pytest.raises(InputRefused, match="cannot be read"):
        read_file(tmp_path / "missing.yaml")


def test_bytes_that_are_not_utf8_are_refused_without_quoting_them() -> None:
    secret = "privateKey: hunter2-\u00e9t\u00e9\n".encode("latin-1")
    message = refusal(read_yaml, secret).message
    assert message == "the file is not UTF-8 text (byte 20 cannot be decoded); save it as UTF-8"
    assert "hunter2" not in message
    assert read_yaml("\ufeffa: 1\n".encode(), "f") == {"a": 1}, "a UTF-8 byte order mark is fine"


def test_syntax_errors_name_the_place_not_the_content() -> None:
    message = refusal(read_yaml, "secret: hunter2\n  bad: [\n").message
    assert message.startswith("the file is not valid YAML at line 2") and "hunter2" not in message
    message = refusal(read_json, b'{"secret": "hunter2",}', "body").message
    assert message.startswith("the request body is not valid JSON") and "hunter2" not in message


def test_numbers_no_reader_can_hold_are_refused_not_crashed_on() -> None:
    huge = "1" + "0" * 5000
    assert refusal(read_json, f'{{"quantity": {huge}}}', "body").message == (
        "the request body holds a number of more than 4300 digits")
    assert refusal(read_yaml, f"included: {huge}\n").message == "line 1: a number of more than 4300 digits"
    for constant in ("NaN", "Infinity", "-Infinity"):
        message = refusal(read_json, f'{{"dryRun": {constant}}}', "body").message
        assert message == f"the request body is not valid JSON: it holds {constant}, which is not a JSON number"
    assert "beyond what JSON numbers carry" in refusal(read_json, '{"a": 1e400}', "body").message
    assert read_json('{"a": 1.5, "b": -3, "c": 1e10}', "body") == {"a": 1.5, "b": -3, "c": 1e10}


@pytest.mark.parametrize(("text", "message"), [
    ("startDate: 2026-02-30\n", "line 1: '2026-02-30' is not a date (day is out of range for month)"),
    ("a:\n  startDate: 2026-13-01\n", "line 2: '2026-13-01' is not a date (month must be in 1..12)"),
    ('secret: !!int "hunter2"\n', "line 1: the value cannot be read as !!int"),
    ('secret: !!bool "hunter2"\n', "line 1: the value cannot be read as !!bool"),
    ('secret: !!timestamp "hunter2"\n', "line 1: the value cannot be read as !!timestamp"),
    ("a: !!map [1]\n", "the file holds a value YAML cannot read"),
])
def test_yaml_values_their_tag_cannot_make_are_refused_with_the_line(text: str, message: str) -> None:
    refused = refusal(read_yaml, text).message
    assert refused == message and "hunter2" not in refused


def test_nesting_is_checked_for_either_syntax_without_parsing() -> None:
    check_nesting(b"{not json at all", "body", yaml_text=False)
    check_nesting(b"a: [1, 2", "body", yaml_text=True)
    for yaml_text in (False, True):
        with pytest.raises(InputRefused, match="nested more than"):
            check_nesting(b"[" * 5000, "body", yaml_text=yaml_text)


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize("value", ["a/b", "a\\b", "a#b", "a?b", "a\x00b", "tab\there", "del\x7f", "c1\x85"])
def test_characters_table_storage_forbids_in_keys_are_named(value: str) -> None:
    problem = key_problem(value)
    assert problem is not None and problem.startswith("holds the character U+")


def test_ids_are_bounded_in_length() -> None:
    assert key_problem("x" * MAX_KEY_CHARS) is None
    assert key_problem("x" * (MAX_KEY_CHARS + 1)) == f"is {MAX_KEY_CHARS + 1} characters; an id is at most 256"
    assert key_problem("20260115T020000Z-1a2b") is None
