"""The dashboard's shipped files: the vendored browser libraries are the pinned npm packages'
own files, every template compiles, and the package data ships them."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from jinja2 import TemplateSyntaxError

from dashboard.web import templates

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "dashboard" / "static"
ASSETS = {"htmx.org": ("dist/htmx.min.js", "htmx.min.js"), "chart.js": ("dist/chart.umd.min.js", "chart.umd.min.js")}


@pytest.mark.parametrize("package", sorted(ASSETS))
def test_vendored_files_are_the_pinned_packages(package: str) -> None:
    source, served = ASSETS[package]
    manifest = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    pinned = manifest["dependencies"][package]
    assert pinned == lock["packages"][f"node_modules/{package}"]["version"], "an exact version, locked"
    installed = ROOT / "node_modules" / package
    assert json.loads((installed / "package.json").read_text(encoding="utf-8"))["version"] == pinned
    assert (VENDOR / served).read_bytes() == (installed / source).read_bytes(), (
        "run scripts/vendor-web-assets after changing the pinned version")
    assert (VENDOR / f"{package}.LICENSE.txt").is_file()


def test_every_template_compiles() -> None:
    environment = templates()
    names = environment.list_templates()
    assert "base.html" in names and len(names) >= 15
    for name in names:
        try:
            environment.get_template(name)
        except TemplateSyntaxError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{name}: {exc}")


def test_the_package_data_ships_templates_and_static_files() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["dashboard"]
    shipped = {p for pattern in patterns for p in (ROOT / "dashboard").glob(pattern)}
    expected = {p for p in (ROOT / "dashboard").rglob("*") if p.is_file() and p.suffix != ".py"
                and "__pycache__" not in p.parts}
    assert expected <= shipped
