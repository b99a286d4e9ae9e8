"""Every ``SEATSYNC_*`` setting the app or the command line reads is in the configuration
reference: a setting nobody can find is a setting nobody can use (or knows to keep out of Azure)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTING = re.compile(r"\bSEATSYNC_[A-Z0-9_]*[A-Z0-9]\b")
NOT_PRODUCT = {"tests", "node_modules", "docs"}


def product_sources() -> list[Path]:
    """The project's own Python, without its tests and without any virtual environment."""
    tops = [path for path in sorted(ROOT.iterdir())
            if path.is_dir() and path.name not in NOT_PRODUCT and not path.name.startswith(".")]
    return sorted(ROOT.glob("*.py")) + [path for top in tops for path in sorted(top.rglob("*.py"))]


def settings_read_by_the_code() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in product_sources():
        for name in SETTING.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, path.relative_to(ROOT))
    return found


def test_the_scan_sees_the_settings_it_is_meant_to() -> None:
    found = settings_read_by_the_code()
    assert {"SEATSYNC_STORAGE_CONNECTION_STRING", "SEATSYNC_WORK_DIR", "SEATSYNC_RUN_LEASE_MINUTES",
            "SEATSYNC_CLOCK"} <= set(found)
    assert all(not str(path).startswith(("tests/", ".venv")) for path in found.values())


def test_every_setting_the_code_reads_is_in_the_configuration_reference() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(SEATSYNC_[A-Z0-9_]+)`", reference))
    missing = {name: str(path) for name, path in settings_read_by_the_code().items() if name not in documented}
    assert missing == {}, "add these to docs/configuration.md (App settings, or the command line's table)"
