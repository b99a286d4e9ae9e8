"""Configuration and review files are read strictly by the command line: a key given twice, a
file too large, nested too deeply or not UTF-8 is refused on one line naming the file and the
limit, exit 3, nothing stored and nothing of the content echoed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from local_runner.azurite import Azurite
from local_runner.cli import main
from local_runner.wiring import EXIT_OK, EXIT_USAGE
from shared.adapters.config_store import ConfigRepository
from shared.adapters.tables import TableStore
from shared.config.input_limits import MAX_DOCUMENT_BYTES
from tests.integration.test_cli import GOOD

pytestmark = pytest.mark.integration

SECOND_TENANT = """\
  - tenantId: aaaaaaaa-0000-0000-0000-000000000002
    name: Contoso
"""


@pytest.fixture
def env(azurite: Azurite, store: TableStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TableStore:
    monkeypatch.setenv("SEATSYNC_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("SEATSYNC_TABLE_PREFIX", store.prefix)
    monkeypatch.chdir(tmp_path)
    return store


def refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(args) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def good_text() -> str:
    return yaml.safe_dump(GOOD, sort_keys=False)


def test_a_second_tenants_section_is_refused_not_merged(env: TableStore, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    text = good_text() + "tenants:\n" + SECOND_TENANT
    path = tmp_path / "two-sections.yaml"
    path.write_text(text, encoding="utf-8")
    first = 1 + text.splitlines().index("tenants:")
    second = len(text.splitlines()) - 2
    for command in ("validate", "import"):
        line = refused(["config", command, str(path)], capsys)
        assert line == (f"seatsync: {path}: the key 'tenants' is given twice in one mapping, at lines {first} "
                        f"and {second}")
    assert ConfigRepository(env).current()[1] is None, "nothing was stored"


def test_a_duplicate_key_deep_in_a_mapping_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = good_text().replace("      lineId: '500'\n", "      lineId: '500'\n      lineId: '501'\n")
    assert "lineId: '501'" in text
    path = tmp_path / "twice.yaml"
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    first, second = lines.index("      lineId: '500'") + 1, lines.index("      lineId: '501'") + 1
    assert refused(["config", "validate", str(path)], capsys) == (
        f"seatsync: {path}: the key 'lineId' is given twice in one mapping, at lines {first} and {second}")


def test_a_file_too_large_is_refused_unread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(good_text().encode() + b"# " + b"x" * MAX_DOCUMENT_BYTES + b"\n")
    size = path.stat().st_size
    assert refused(["config", "validate", str(path)], capsys) == (
        f"seatsync: {path}: the file is {size} bytes; at most 8 MiB (8388608 bytes) are accepted")


def test_a_file_nested_too_deeply_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(good_text() + "notifications: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    assert refused(["config", "validate", str(path)], capsys) == (
        f"seatsync: {path}: the file is nested more than 32 levels deep; at most 32 are accepted")


def test_a_file_that_is_not_utf8_is_refused_without_echoing_it(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(good_text().encode() + "# note: the key is s\u00e9cret-hunter2\n".encode("latin-1"))
    line = refused(["config", "validate", str(path)], capsys)
    assert line.startswith(f"seatsync: {path}: the file is not UTF-8 text (byte ")
    assert "hunter2" not in line


def test_a_review_file_is_read_as_strictly(env: TableStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "import", str(tmp_path / "missing.yaml")]) == EXIT_USAGE
    path = tmp_path / "good.yaml"
    path.write_text(good_text(), encoding="utf-8")
    assert main(["config", "import", str(path)]) == EXIT_OK
    review = tmp_path / "review.yaml"
    review.write_text("tenants: []\ntenants: []\n", encoding="utf-8")
    assert refused(["onboard", "--apply", str(review)], capsys) == (
        f"seatsync: {review}: the key 'tenants' is given twice in one mapping, at lines 1 and 2")
    assert ConfigRepository(env).current()[1].number == 1  # type: ignore[union-attr]
