/* posterm HQ console: draws the report pages' charts with ECharts (echarts.min.js beside it).
   A chart is <div class="chart" data-chart="ID"> and its figures a <script type="application/json"
   id="ID"> the server wrote (no inline script: the CSP allows none). The spec:
   {kind: "bars" | "pie" | "heatmap", x: [...], y: [...] (heatmap), percent: bool,
    series: [{name, data, type: "bar" | "line", axis: 0 | 1, stack}]}.
   Each chart drawn sets data-rendered="1" (the browser tests wait on it). */
(function () {
  "use strict";
  var PALETTE = ["#c8102e", "#1f6feb", "#1a7f37", "#b7791f", "#6f42c1", "#0e7490", "#6b7785"];

  function axisValue(percent) {
    return { type: "value", axisLabel: { formatter: percent ? function (v) {
      return Math.round(v * 1000) / 10 + "%"; } : null } };
  }

  function bars(spec) {
    var twoAxes = spec.series.some(function (s) { return s.axis === 1; });
    return {
      color: PALETTE,
      tooltip: { trigger: "axis", renderMode: "richText" },
      legend: { top: 0 },
      grid: { left: 56, right: twoAxes ? 64 : 24, top: 36, bottom: 28 },
      xAxis: { type: "category", data: spec.x },
      yAxis: twoAxes ? [axisValue(spec.percent), axisValue(false)] : axisValue(spec.percent),
      series: spec.series.map(function (s) {
        return { name: s.name, type: s.type || "bar", data: s.data, stack: s.stack || null,
                 yAxisIndex: s.axis || 0, barMaxWidth: 28 };
      })
    };
  }

  function pie(spec) {
    return {
      color: PALETTE,
      tooltip: { trigger: "item", renderMode: "richText" },
      legend: { top: 0 },
      series: [{ type: "pie", radius: ["40%", "68%"], top: 24,
                 data: spec.x.map(function (name, i) {
                   return { name: name, value: spec.series[0].data[i] }; }),
                 label: { formatter: "{b}: {c}" } }]
    };
  }

  function heatmap(spec) {
    var values = spec.series[0].data.map(function (cell) { return cell[2]; });
    return {
      tooltip: { position: "top", renderMode: "richText" },
      grid: { left: 80, right: 110, top: 32, bottom: 48 },
      xAxis: { type: "category", data: spec.x, name: spec.xName, nameLocation: "middle",
               nameGap: 28, splitArea: { show: true } },
      yAxis: { type: "category", data: spec.y, name: spec.yName, splitArea: { show: true } },
      visualMap: { min: Math.min.apply(null, values.concat([0])),
                   max: Math.max.apply(null, values.concat([1])), calculable: true,
                   orient: "vertical", right: 0, top: "middle", itemHeight: 120,
                   inRange: { color: ["#f4f6f9", "#c8102e"] } },
      series: [{ name: spec.series[0].name, type: "heatmap", data: spec.series[0].data,
                 label: { show: true } }]
    };
  }

  var KINDS = { bars: bars, pie: pie, heatmap: heatmap };

  function draw(root) {
    var locale = document.documentElement.lang === "en" ? "EN" : "ZH";
    root.querySelectorAll("div.chart[data-chart]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-chart"));
      if (!source) { return; }
      var spec = JSON.parse(source.textContent);
      var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { locale: locale });
      chart.setOption(KINDS[spec.kind](spec), true);
      el.setAttribute("data-rendered", "1");
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (e) { draw(e.target); });
  window.addEventListener("resize", function () {
    document.querySelectorAll("div.chart[data-rendered]").forEach(function (el) {
      var chart = echarts.getInstanceByDom(el);
      if (chart) { chart.resize(); }
    });
  });
}());
