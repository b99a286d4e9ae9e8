"""Friendly licence names, from Microsoft's "Product names and service plan identifiers for
licensing" table (shipped as shared/data/sku-names.csv, one row per SKU). Unknown SKUs fall
back to their part number."""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources


@cache
def _names() -> dict[str, tuple[str, str]]:
    text = resources.files("shared").joinpath("data/sku-names.csv").read_text(encoding="utf-8")
    return {row["skuId"].lower(): (row["skuPartNumber"], row["displayName"])
            for row in csv.DictReader(text.splitlines())}


def sku_display_name(sku_id: str, sku_part_number: str | None = None) -> str:
    known = _names().get(sku_id.lower())
    if known:
        return known[1]
    return sku_part_number or sku_id


def sku_part_number(sku_id: str) -> str | None:
    known = _names().get(sku_id.lower())
    return known[0] if known else None


@cache
def _by_display_name() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for sku_id, (_, name) in _names().items():
        key = " ".join(name.casefold().split())
        found[key] = None if key in found and found[key] != sku_id else sku_id
    return found


def sku_id_for_name(display_name: str) -> str | None:
    """The ``skuId`` of the licence Microsoft names ``display_name`` (case and spacing ignored);
    None when no licence, or more than one, has that name."""
    return _by_display_name().get(" ".join(display_name.casefold().split()))
