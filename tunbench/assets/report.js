// The report page's script: draws each chart from the figure JSON embedded in the page with
// the plotly.js written beside it (no network), when the chart comes near the screen;
// records any script error in #tb-errors, visible on the page; sorts the summary table by a
// clicked column (numbers as numbers: "14.2 ± 0.3", "72%" and "17.4 MB" sort by their
// leading number, "-" and "FAILED" last). Opened with #tb-selftest, it draws every chart,
// sorts by Gbps both ways and writes what it saw as JSON into #tb-selftest, which
// `chromium --dump-dom` shows the browser test.
(function () {
  "use strict";
  var errors = [];
  function report(msg) {
    errors.push(String(msg));
    var box = document.getElementById("tb-errors");
    if (box) { box.textContent = "Script errors on this page: " + errors.join(" | "); box.className = "shown"; }
  }
  window.addEventListener("error", function (e) { report(e.message || "error"); });
  window.addEventListener("unhandledrejection", function (e) { report("promise: " + (e.reason && e.reason.message || e.reason)); });
  window.tbErrors = errors;

  var FIGS = {}, TEMPLATE = {}, CONFIG = {displaylogo: false, responsive: true};
  var pending = [];
  function draw(div) {
    if (div.dataset.drawn) { return Promise.resolve(div); }
    div.dataset.drawn = "1";
    var fig = FIGS[div.id];
    if (!fig) { report("no figure for " + div.id); return Promise.resolve(div); }
    fig.layout.template = TEMPLATE;
    return Plotly.newPlot(div, fig.data, fig.layout, CONFIG);
  }
  function drawAll() {
    return Promise.all(Array.prototype.map.call(document.querySelectorAll(".tb-plot"), draw));
  }
  window.tbDrawAll = drawAll;

  function cellValue(td) {
    var text = td.getAttribute("data-v") || td.textContent.trim();
    var num = parseFloat(text.replace(/^[^0-9.+-]+/, ""));
    return {text: text, num: /^[-+]?[0-9.]/.test(text) && !isNaN(num) ? num : null};
  }
  function sortTable(table, col, dir) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var numeric = rows.some(function (r) { return cellValue(r.cells[col]).num !== null; });
    rows.sort(function (a, b) {
      var x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
      if (numeric) {
        if (x.num === null && y.num === null) { return 0; }
        if (x.num === null) { return 1; }
        if (y.num === null) { return -1; }
        return dir * (x.num - y.num);
      }
      return dir * x.text.localeCompare(y.text);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.className = i === col ? (dir > 0 ? "asc" : "desc") : "";
    });
  }
  window.tbSort = function (name, dir) {
    var table = document.getElementById("results");
    var ths = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var col = ths.findIndex(function (th) { return th.textContent.trim() === name; });
    sortTable(table, col, dir);
    var vcol = ths.findIndex(function (th) { return th.textContent.trim() === "Variant"; });
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[vcol].textContent.trim(); });
  };

  function selftest() {
    drawAll().then(function () {
      var out = {errors: errors, plotly: !!window.Plotly};
      out.plots = document.querySelectorAll(".tb-plot .main-svg").length;
      out.figures = document.querySelectorAll(".tb-plot").length;
      out.sorted_desc = window.tbSort("Gbps", -1);
      out.sorted_asc = window.tbSort("Gbps", 1);
      out.drill = Array.prototype.map.call(document.querySelectorAll("section.drill"), function (s) {
        return {id: s.id,
                charts: Array.prototype.map.call(s.querySelectorAll(".tb-plot"), function (p) {
                  return {id: p.id, traces: p.querySelectorAll(".scatterlayer .trace, .barlayer .trace, .iciclelayer path").length,
                          title: (p.querySelector(".gtitle") || {}).textContent || ""};
                })};
      });
      document.getElementById("tb-selftest").textContent = JSON.stringify(out);
    }, function (e) { report("selftest: " + e); document.getElementById("tb-selftest").textContent = JSON.stringify({errors: errors}); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.Plotly) { report("plotly.min.js did not load: it must sit next to this page"); return; }
    FIGS = JSON.parse(document.getElementById("tb-figures").textContent);
    TEMPLATE = JSON.parse(document.getElementById("tb-template").textContent);
    var table = document.getElementById("results");
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.title = "sort by " + th.textContent;
      th.addEventListener("click", function () { sortTable(table, i, th.className === "asc" ? -1 : 1); });
    });
    document.querySelectorAll(".flame-tools").forEach(function (tools) {
      var obj = document.getElementById(tools.getAttribute("data-for"));
      tools.addEventListener("click", function (e) {
        var f = parseFloat(e.target.getAttribute("data-zoom") || "0");
        if (!f) { return; }
        var w = f === 1 ? 100 : Math.max(100, parseFloat(obj.style.width || "100") * f);
        obj.style.width = w + "%";
      });
    });
    if (location.hash === "#tb-selftest") { selftest(); return; }
    if (!("IntersectionObserver" in window)) { drawAll(); return; }
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (en) {
        if (en.isIntersecting) { seen.unobserve(en.target); draw(en.target).catch(function (e) { report(e); }); }
      });
    }, {rootMargin: "800px"});
    document.querySelectorAll(".tb-plot").forEach(function (d) { seen.observe(d); });
  });
})();
