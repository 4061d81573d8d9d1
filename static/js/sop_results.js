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
        // Labels beside the bars, in the page's text colour: inside a narrow bar they were unreadable.
        left: "5%", right: "38%", top: 10, bottom: 10,
        min: 0, max: top,
        minSize: "4%",
        gap: 3,
        label: { show: true, position: "right", color: "#212529", formatter: "{b}: {c}" },
        labelLine: { show: true, length: 12 },
        data: data.funnel,
      }],
    };
  });
})();
