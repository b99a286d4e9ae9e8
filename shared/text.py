"""Plain-text tables and shortened cells: the one printer of the run report and the CLI's
listings, so every table SeatSync prints lines up the same way."""

from __future__ import annotations

from collections.abc import Sequence


def short(text: str | None, width: int = 70) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "", rule: bool = False) -> list[str]:
    """Columns padded to their widest cell, two spaces apart, no trailing spaces; ``rule`` adds a
    line of dashes under the headers."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return (indent + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))).rstrip()

    lines = [line(headers)]
    if rule:
        lines.append(indent + "  ".join("-" * w for w in widths))
    lines.extend(line(row) for row in rows)
    return lines
