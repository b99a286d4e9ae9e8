// SeatSync dashboard: the little behaviour the pages need beyond htmx.
// - "select all" checkboxes (data-select-all="<name of the row checkboxes>")
// - licence history charts (Chart.js, from the JSON in #history-data)
"use strict";

function wireSelectAll(root) {
  root.querySelectorAll("input[data-select-all]").forEach((box) => {
    box.addEventListener("change", () => {
      const form = box.closest("form") || document;
      form.querySelectorAll(`input[type=checkbox][name="${box.dataset.selectAll}"]`).forEach((row) => {
        row.checked = box.checked;
      });
    });
  });
}

function drawCharts() {
  const data = document.getElementById("history-data");
  if (!data || typeof Chart === "undefined") return;
  const series = JSON.parse(data.textContent);
  document.querySelectorAll("canvas[data-series]").forEach((canvas) => {
    const one = series[Number(canvas.dataset.series)];
    const labels = one.points.map((p) => (p.collectedAt || p.runId).slice(0, 10));
    const line = (label, key, color, dash) => ({
      label, data: one.points.map((p) => p[key]), borderColor: color, backgroundColor: color,
      borderDash: dash, stepped: true, spanGaps: false, pointRadius: 2,
    });
    canvas.chart = new Chart(canvas, {
      type: "line",
      data: { labels, datasets: [
        line("Assigned", "assigned", "#0b5cad", []),
        line("Purchased", "purchased", "#8250df", [6, 3]),
        line("Billed", "toBill", "#116329", [2, 2]),
      ] },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } } },
    });
    canvas.dataset.drawn = "true";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireSelectAll(document);
  drawCharts();
});
document.addEventListener("htmx:afterSwap", (event) => wireSelectAll(event.target));
