// The dashboard's charts: Apache ECharts (static/vendor/echarts.min.js), drawn from the tables the
// server rendered into #dashboard-data. Chart kinds: line (per day), stack (per day, stacked bars
// by series), bar (per name, this period beside the previous one).
(function () {
  "use strict";
  var LABELS = { current: "本期", previous: "上期" };
  function draw(el, table) {
    var chart = table.chart, rows = table.rows;
    var labelOf = {};
    table.columns.forEach(function (c) { labelOf[c.key] = c.label; });
    var x = rows.map(function (r) { return r[chart.x]; });
    var kind = chart.type === "line" ? "line" : "bar";
    var percent = chart.series.length === 1 && /rate$/.test(chart.series[0]);
    var series = chart.series.map(function (key) {
      return {
        name: LABELS[key] || labelOf[key] || key, type: kind,
        stack: chart.type === "stack" ? "all" : undefined,
        data: rows.map(function (r) { var v = r[key]; return v === null ? null : (percent ? Math.round(v * 1000) / 10 : v); })
      };
    });
    var instance = echarts.init(el, null, { renderer: "canvas" });
    instance.setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { type: "scroll", top: 0 },
      grid: { left: 48, right: 16, top: 36, bottom: 56 },
      xAxis: { type: "category", data: x, axisLabel: { hideOverlap: true } },
      yAxis: { type: "value", minInterval: percent ? 0 : 1, axisLabel: percent ? { formatter: "{value}%" } : {} },
      dataZoom: x.length > 40 ? [{ type: "inside" }, { type: "slider", height: 16, bottom: 8 }] : [],
      series: series
    });
    window.addEventListener("resize", function () { instance.resize(); });
  }
  function start() {
    var source = document.getElementById("dashboard-data");
    if (!source || typeof echarts === "undefined") { return; }
    var tables = JSON.parse(source.textContent);
    document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      var table = tables[el.getAttribute("data-chart")];
      if (!table) { return; }
      if (!table.rows.length) {  // empty axes read as a broken chart
        el.classList.add("chart-empty");
        el.textContent = "这段时间没有数据。";
        return;
      }
      draw(el, table);
    });
    document.body.setAttribute("data-charts", "1");
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
