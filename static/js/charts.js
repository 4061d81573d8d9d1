// Apache ECharts glue (ECharts itself comes from npm: static 'vendor/echarts/echarts.min.js').
//
// Every <div class="chart" data-chart="NAME" data-chart-data="ID"> is drawn by the builder registered as NAME,
// from the JSON in <script id="ID" type="application/json"> (Django's json_script). Labels arrive translated
// in that JSON, so this file holds no user-visible text. Charts swapped in by htmx are drawn too.
// Later pages add builders with window.scrmCharts.register(name, function (data, el) { return option; }).
(function () {
  "use strict";
  var ACCENT = "#198754";
  var PALETTE = ["#198754", "#0d6efd", "#fd7e14", "#6f42c1", "#20c997", "#d63384", "#6c757d", "#ffc107"];
  var builders = {};

  function register(name, build) {
    builders[name] = build;
  }

  function readData(id) {
    var el = id && document.getElementById(id);
    if (!el) return null;
    try {
      return JSON.parse(el.textContent);
    } catch (e) {
      return null;
    }
  }

  function init(root) {
    if (!window.echarts) return;
    (root || document).querySelectorAll(".chart[data-chart]").forEach(function (el) {
      if (echarts.getInstanceByDom(el)) return;
      var build = builders[el.dataset.chart];
      var data = readData(el.dataset.chartData);
      if (!build || !data) return;
      var chart = echarts.init(el);
      chart.setOption(build(data, el, chart));
    });
  }

  function resizeAll() {
    document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      var chart = window.echarts && echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  }

  function emptyGraphic(text) {
    return {
      type: "text",
      left: "center",
      top: "middle",
      style: { text: text, fill: "#6c757d", fontSize: 14 },
    };
  }

  // New contacts per week: data.weekly = {series, weekOf, soFar, weeks: [{start, label, long, count}]}.
  // The last week is the current one, still running: drawn lighter and marked "so far" in the tooltip.
  register("weekly_new", function (data) {
    var weekly = data.weekly;
    var last = weekly.weeks.length - 1;
    return {
      color: [ACCENT],
      grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
      tooltip: {
        trigger: "axis",
        axisPointer: { type: "shadow" },
        formatter: function (params) {
          var p = params[0];
          var week = weekly.weeks[p.dataIndex];
          var title = weekly.weekOf + " " + week.long + (p.dataIndex === last ? " (" + weekly.soFar + ")" : "");
          return title + "<br>" + p.marker + weekly.series + ": <b>" + p.value + "</b>";
        },
      },
      xAxis: {
        type: "category",
        data: weekly.weeks.map(function (w) { return w.label; }),
        axisTick: { alignWithLabel: true },
        axisLabel: { color: "#6c757d", hideOverlap: true },
        axisLine: { lineStyle: { color: "#dee2e6" } },
      },
      yAxis: {
        type: "value",
        minInterval: 1,
        axisLabel: { color: "#6c757d" },
        splitLine: { lineStyle: { color: "#f1f3f5" } },
      },
      series: [
        {
          name: weekly.series,
          type: "bar",
          barMaxWidth: 36,
          itemStyle: { borderRadius: [4, 4, 0, 0] },
          emphasis: { itemStyle: { color: "#146c43" } },
          data: weekly.weeks.map(function (w, i) {
            return i === last ? { value: w.count, itemStyle: { opacity: 0.5 } } : w.count;
          }),
        },
      ],
    };
  });

  // Contacts by source channel: data.sources = {series, empty, items: [{code, label, count, url}]}
  register("sources", function (data, el, chart) {
    var sources = data.sources;
    if (!sources.items.length) {
      return { graphic: [emptyGraphic(sources.empty)] };
    }
    chart.on("click", function (params) {
      var item = sources.items[params.dataIndex];
      if (item && item.url) window.location.href = item.url;
    });
    return {
      color: PALETTE,
      tooltip: { trigger: "item", formatter: "{b}<br><b>{c}</b> ({d}%)" },
      legend: {
        type: "plain",
        orient: "horizontal",
        bottom: 0,
        left: "center",
        itemGap: 12,
        icon: "circle",
        itemWidth: 10,
        itemHeight: 10,
        textStyle: { color: "#495057" },
      },
      series: [
        {
          name: sources.series,
          type: "pie",
          radius: ["40%", "62%"],
          center: ["50%", "38%"],
          avoidLabelOverlap: true,
          cursor: "pointer",
          itemStyle: { borderColor: "#fff", borderWidth: 2 },
          label: { show: false },
          labelLine: { show: false },
          emphasis: { scaleSize: 6 },
          data: sources.items.map(function (s) { return { name: s.label, value: s.count }; }),
        },
      ],
    };
  });

  // A segment's size per day: data = {days: ["2026-09-01", …], sizes: [n or null, …], series, empty}.
  register("segment_size", function (data) {
    var known = data.sizes.filter(function (v) { return v !== null; });
    return {
      color: [ACCENT],
      grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis" },
      graphic: known.length ? [] : [emptyGraphic(data.empty)],
      xAxis: { type: "category", data: data.days, axisLabel: { color: "#6c757d", hideOverlap: true } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { color: "#6c757d" } },
      series: [
        {
          name: data.series,
          type: "line",
          step: "end",
          showSymbol: known.length < 15, // a young segment's few days stay visible as dots
          connectNulls: false,
          areaStyle: { opacity: 0.12 },
          data: data.sizes,
        },
      ],
    };
  });

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resizeAll, 150);
  });
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.body.addEventListener("htmx:afterSettle", function (evt) { init(evt.target); });
  if (document.readyState !== "loading") init(document);

  window.scrmCharts = { register: register, init: init };
})();
