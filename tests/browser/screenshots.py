"""The dashboard's screenshots, saved by the browser tests: into a temporary directory on every test
run, and into docs/screenshots (the README's) only by ``make screenshots``, which rewrites a saved
screenshot only when its page looks materially different, so that refreshing them does not churn
images of pages that did not change.

What changes at every run without the page changing is shown as stable sample values before the
screenshot is taken: run ids, times of day (the e-mail's "01 Dec 2026 20:29 UTC" too), today's
date and the emulators' local ports (in the page, in the e-mail preview's frame and in the chart's
labels). The new screenshot then replaces the saved one only when more than ``MATERIAL_PIXELS``
pixels differ clearly (anti-aliasing and colour noise below ``PIXEL_TOLERANCE`` are not a difference).
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops

SAMPLE_DAY = "2026-12-01"
PIXEL_TOLERANCE = 48
"""How far apart (0-255, the largest of the three colour channels) two pixels may be and still count
as the same."""
MATERIAL_PIXELS = 24
"""More pixels than this differing: the page looks different (a changed word is already more)."""

STABLE_TEXT = """([today, day, humanDay]) => {
  const ids = new Map();
  const runId = /\\d{8}T\\d{6}Z-[0-9a-f]{8}/g;
  const stamp = /(\\d{4}-\\d{2}-\\d{2})([T ])(\\d{2}):(\\d{2})(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2})?/g;
  const port = /(127\\.0\\.0\\.1|localhost):\\d+/g;
  const human = /\\b\\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2} UTC/g;
  const sample = (id) => {
    const n = ids.size;
    if (!ids.has(id)) ids.set(id, `${day.replaceAll("-", "")}T0${n % 10}0000Z-5eed${String(n).padStart(4, "0")}`);
    return ids.get(id);
  };
  const stable = (text) => text
    .replace(runId, sample)
    .replace(stamp, (m, date, sep, h, min, sec, frac, zone) =>
      `${day}${sep}09:00${sec ? ":00" : ""}${frac ? "." + "0".repeat(frac.length - 1) : ""}${zone || ""}`)
    .replace(human, `${humanDay} 09:00 UTC`)
    .replaceAll(today, day)
    .replace(port, "$1:7071");
  const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const changed = stable(node.nodeValue);
    if (changed !== node.nodeValue) node.nodeValue = changed;
  }
  document.querySelectorAll("canvas[data-series]").forEach((canvas) => {
    if (!canvas.chart) return;
    canvas.chart.data.labels = canvas.chart.data.labels.map((label) => stable(String(label)));
    canvas.chart.update("none");
  });
}"""


def stabilise(page: Any) -> None:
    """Show run ids, times, today's date and local ports as stable sample values (every frame)."""
    today = datetime.now(UTC).date().isoformat()
    human_day = date.fromisoformat(SAMPLE_DAY).strftime("%d %b %Y")  # as the e-mail shows a time
    for frame in page.frames:
        frame.evaluate(STABLE_TEXT, [today, SAMPLE_DAY, human_day])


def differs(saved: bytes, taken: bytes) -> bool:
    """Whether two screenshots show materially different pages."""
    old = Image.open(io.BytesIO(saved)).convert("RGB")
    new = Image.open(io.BytesIO(taken)).convert("RGB")
    if old.size != new.size:
        return True
    gap = ImageChops.difference(old, new)
    largest = ImageChops.lighter(ImageChops.lighter(*gap.split()[:2]), gap.split()[2])
    clear = largest.point(lambda value: 255 if value > PIXEL_TOLERANCE else 0)
    return clear.histogram()[255] > MATERIAL_PIXELS


def save_screenshot(page: Any, target: Path) -> bool:
    """Take the page's screenshot with stable sample values; write it to ``target`` only when
    there is none yet or it differs materially. True when written."""
    stabilise(page)
    taken = page.screenshot()
    if target.exists() and not differs(target.read_bytes(), taken):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(taken)
    return True
