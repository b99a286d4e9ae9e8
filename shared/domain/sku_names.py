"""Friendly licence names, from Microsoft's "Product names and service plan identifiers for
licensing" table (``shared.config.products``, shipped as shared/data/sku-names.csv, one row per
SKU). Unknown SKUs fall back to their part number."""

from __future__ import annotations

from shared.config.products import by_sku_id, matches


def sku_display_name(sku_id: str, sku_part_number: str | None = None) -> str:
    known = by_sku_id().get(sku_id.lower())
    if known:
        return known.name
    return sku_part_number or sku_id


def sku_part_number(sku_id: str) -> str | None:
    known = by_sku_id().get(sku_id.lower())
    return known.part_number if known else None


def sku_id_for_name(display_name: str) -> str | None:
    """The ``skuId`` of the licence Microsoft names ``display_name`` (case and spacing ignored);
    None when no licence, or more than one, has that name."""
    found = [licence for licence in matches(display_name)
             if " ".join(licence.name.casefold().split()) == " ".join(display_name.casefold().split())]
    return found[0].sku_id if len(found) == 1 else None
