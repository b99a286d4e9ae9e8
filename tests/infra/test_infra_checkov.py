"""checkov over infra/: no failed check, and every skip is justified next to the resource."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from infra_helpers import INFRA, ROOT, bicep_files

SKIP_COMMENT = re.compile(r"checkov:skip=([A-Za-z0-9_]+)(?::(.*))?")


def _checkov() -> Path:
    executable = Path(sys.executable).with_name("checkov")
    assert executable.is_file(), f"checkov is not installed next to {sys.executable}; run scripts/infra-check"
    return executable


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    command = [
        str(_checkov()),
        "-d",
        "infra",
        "--framework",
        "bicep",
        "--compact",
        "--quiet",
        "-o",
        "json",
        "--skip-download",  # no calls to the vendor's platform: offline and reproducible
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    try:
        parsed = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    reports = parsed if isinstance(parsed, list) else [parsed]
    bicep = [r for r in reports if r.get("check_type") == "bicep"]
    assert len(bicep) == 1, f"expected one bicep report, got {[r.get('check_type') for r in reports]}"
    bicep[0]["exit_code"] = done.returncode
    return bicep[0]


def _describe(check: dict[str, Any]) -> str:
    lines = check.get("file_line_range") or []
    where = f"{check['file_path']}:{lines[0]}-{lines[1]}" if len(lines) == 2 else check["file_path"]
    text = f"{check['check_id']} {check['check_name']}\n    {where} ({check['resource']})"
    if check.get("guideline"):
        text += f"\n    {check['guideline']}"
    return text


def test_checkov_scans_every_file(report) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, summary
    assert summary["resource_count"] > 0, summary
    assert summary["passed"] > 0, summary


def test_checkov_reports_no_failed_check(report) -> None:
    failed = report["results"].get("failed_checks", [])
    if failed:
        pytest.fail(
            f"checkov: {len(failed)} failed check(s); fix them, or skip one with a justified "
            "'//checkov:skip=CKV_...:reason' inside the resource:\n" + "\n".join(_describe(c) for c in failed),
            pytrace=False,
        )
    assert report["exit_code"] == 0


def _skip_comments() -> list[tuple[Path, int, str, str]]:
    found = []
    for path in bicep_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = SKIP_COMMENT.search(line)
            if match:
                found.append((path, number, match.group(1), (match.group(2) or "").strip()))
    return found


def test_every_skip_names_a_check_and_gives_a_reason() -> None:
    for path, number, check, reason in _skip_comments():
        where = f"{path.relative_to(INFRA)}:{number}"
        assert re.fullmatch(r"CKV2?_AZURE_\d+", check), f"{where}: skip names no checkov Azure check: {check}"
        assert len(reason) >= 40, f"{where}: skip of {check} needs a real justification, got {reason!r}"


def test_every_skip_is_used_by_checkov(report) -> None:
    """A skip that checkov does not apply (typo, wrong block) would hide nothing but mislead."""
    comments = _skip_comments()
    assert report["summary"]["skipped"] == len(comments), (
        f"{len(comments)} skip comments in infra/ but checkov applied {report['summary']['skipped']}"
    )
