// SOP results: the funnel of one template (enrolled, then customers reached at each step).
// data = {funnel: [{name, value}], series, empty}; labels arrive translated in the JSON.
(function () {
  "use strict";
  if (!window.scrmCharts) return;
  window.scrmCharts.register("sop_funnel", function (data) {
    var top = data.funnel.length ? data.funnel[0].value : 0;
    if (!top) {
      return { graphic: { type: "text", left: "center", top: "middle",
        style: { text: data.empty, fill: "#6c757d", fontSize: 14 } } };
    }
    return {
      color: ["#198754", "#20c997", "#0d6efd", "#6f42c1", "#fd7e14", "#d63384", "#6c757d", "#ffc107"],
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          return p.name + "<br>" + p.value + " (" + Math.round((100 * p.value) / top) + "%)";
        },
      },
      series: [{
        name: data.series,
        type: "funnel",
        sort: "none",
        left: "10%", right: "10%", top: 10, bottom: 10,
        min: 0, max: top,
        minSize: "8%",
        gap: 3,
        label: { show: true, position: "inside", formatter: "{b}: {c}" },
        data: data.funnel,
      }],
    };
  });
})();
