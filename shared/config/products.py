"""Microsoft's licence catalogue as shipped with SeatSync, and licence names in the configuration.

The table is Microsoft's "Product names and service plan identifiers for licensing"
(``shared/data/sku-names.csv``: ``skuId``, ``skuPartNumber``, product name). The configuration
may name a licence by its ``skuId`` (a GUID), its ``skuPartNumber`` (``SPB``) or its product name
(``Microsoft 365 Business Premium``); a name is resolved to the GUID when the document is
validated, so what is stored and compared is always the GUID. A name that fits several licences
is refused with the candidates, never guessed.
"""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CANDIDATES_SHOWN = 6


@dataclass(frozen=True)
class Licence:
    sku_id: str
    part_number: str
    name: str

    def describe(self) -> str:
        return f"{self.name} ({self.part_number}, {self.sku_id})"


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


@cache
def catalogue() -> tuple[Licence, ...]:
    """Every licence of the shipped table."""
    text = resources.files("shared").joinpath("data/sku-names.csv").read_text(encoding="utf-8")
    return tuple(Licence(row["skuId"].lower(), row["skuPartNumber"], row["displayName"])
                 for row in csv.DictReader(text.splitlines()))


@cache
def by_sku_id() -> dict[str, Licence]:
    return {licence.sku_id: licence for licence in catalogue()}


@cache
def _by_name() -> dict[str, tuple[Licence, ...]]:
    found: dict[str, list[Licence]] = {}
    for licence in catalogue():
        for key in {_key(licence.part_number), _key(licence.name)}:
            found.setdefault(key, []).append(licence)
    return {key: tuple(dict.fromkeys(licences)) for key, licences in found.items()}


def matches(name: str) -> tuple[Licence, ...]:
    """The licences whose part number or product name is ``name`` (case and spacing ignored)."""
    return _by_name().get(_key(name), ())


def resolve_licence(value: str) -> str:
    """A licence reference as the configuration gives it -> its ``skuId``. A GUID is kept (it may
    be a licence newer than the table); a part number or product name must name exactly one
    licence of the table. Raises ``ValueError`` saying why, with the candidates."""
    text = value.strip()
    if _GUID.match(text):
        return text.lower()
    found = matches(text)
    if len(found) == 1:
        return found[0].sku_id
    if found:
        listed = "; ".join(licence.describe() for licence in found[:_CANDIDATES_SHOWN])
        raise ValueError(f"{value!r} names {len(found)} licences: {listed}; give the skuId (or the part number "
                         "if it is unique)")
    wanted = _key(text)
    near = [licence for licence in catalogue() if wanted in _key(licence.name) or wanted == _key(licence.part_number)]
    if not near:
        names = {_key(licence.name): licence for licence in catalogue()}
        near = [names[key] for key in difflib.get_close_matches(wanted, list(names), n=_CANDIDATES_SHOWN, cutoff=0.75)]
    hint = ("; did you mean: " + "; ".join(licence.describe() for licence in near[:_CANDIDATES_SHOWN])
            if near else "")
    raise ValueError(f"{value!r} is not a licence SeatSync knows (a skuId GUID, a skuPartNumber like SPB, or a "
                     f"product name like Microsoft 365 Business Premium){hint}")
