// The console's only script (no inline script: the CSP forbids it). Draws the dashboard's
// charts with uPlot from each figure's data-chart, again after htmx swaps them in, and makes
// the copy buttons copy.
"use strict";

function drawCharts(root) {
  if (typeof uPlot === "undefined") return;
  root.querySelectorAll("figure.chart[data-chart]").forEach(function (figure) {
    var data = JSON.parse(figure.dataset.chart);
    var old = figure.querySelector(".uplot");
    if (old) old.remove();
    var xs = data.labels.map(function (_, i) { return i; });
    var width = Math.max(280, Math.min(figure.clientWidth || 520, 720));
    var plot = new uPlot({
      width: width,
      height: 180,
      legend: { show: true },
      scales: { x: { time: false } },
      axes: [
        { values: function (u, ticks) { return ticks.map(function (i) { var l = data.labels[i] || ""; return l.length > 10 ? l.slice(11) || l.slice(5, 10) : l.slice(5); }); } },
        {}
      ],
      series: [
        { label: figure.dataset.xLabel, value: function (u, i) { return i == null ? "--" : data.labels[i]; } },
        { label: figure.dataset.label, stroke: "#1f5fa8", width: 2, fill: "rgba(31,95,168,0.12)" },
        { label: figure.dataset.errorsLabel, stroke: "#b3261e", width: 1 }
      ]
    }, [xs, data.counts, data.errors], figure);
    figure.insertBefore(plot.root, figure.querySelector("details"));
  });
}

function copy(event) {
  var button = event.target.closest("button.copy");
  if (!button) return;
  var done = function () {
    var label = button.textContent;
    button.textContent = button.dataset.copied || "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(button.dataset.copy).then(done, done);
  } else {
    done();
  }
}

document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
document.addEventListener("click", copy);
document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.detail.elt.parentNode || document); });
