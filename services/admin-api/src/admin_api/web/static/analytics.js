// Draws the analytics page's charts with Chart.js (vendored: static/chart.umd.js).
// The numbers come from the page's JSON block; each chart has the same numbers in a table.
(function () {
  "use strict";
  var source = document.getElementById("analytics-data");
  if (!source || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);

  // Calm, colour-blind-safe pair (Okabe-Ito blue and orange); dashes tell them apart too.
  var BLUE = "#0072B2";
  var ORANGE = "#D55E00";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#333";
  Chart.defaults.animation = false;

  function draw(id, type, datasets, yTitle, suggestedMax, whole) {
    var canvas = document.getElementById(id + "-chart");
    if (!canvas) return;
    new Chart(canvas, {
      type: type,
      data: { labels: data.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        spanGaps: true,
        plugins: { legend: { display: datasets.length > 1, position: "bottom" } },
        scales: {
          x: { title: { display: true, text: "Week of (Monday)" } },
          y: {
            beginAtZero: true,
            suggestedMax: suggestedMax,
            ticks: whole ? { precision: 0 } : {},
            title: { display: true, text: yTitle },
          },
        },
      },
    });
  }

  draw("confirmation", "bar", [
    { label: "Confirmed (%)", data: data.confirmation_rate, backgroundColor: BLUE },
  ], "% of reminded", 100);
  draw("reply", "line", [
    { label: "Median minutes to reply", data: data.reply_minutes, borderColor: BLUE,
      backgroundColor: BLUE, pointRadius: 4 },
  ], "minutes");
  draw("noshow", "bar", [
    { label: "Confirmed: no-show %", data: data.no_show_confirmed, backgroundColor: BLUE },
    { label: "Not confirmed: no-show %", data: data.no_show_unconfirmed,
      backgroundColor: ORANGE, borderColor: "#333", borderWidth: 1,
      borderDash: [4, 2] },
  ], "% no-shows", 100);
  draw("failures", "bar", [
    { label: "Send failures", data: data.send_failures, backgroundColor: ORANGE },
    { label: "Opt-outs", data: data.opt_outs, backgroundColor: BLUE },
  ], "count", undefined, true);
})();
