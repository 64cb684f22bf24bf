// The report page's script: draws each chart from the figure JSON embedded in the page with
// the plotly.js written beside it (no network), when the chart comes near the screen;
// records any script error in #tb-errors, visible on the page; sorts the summary table by a
// clicked column (numbers as numbers: "14.2 ± 0.3", "72%", "17.4 MB" and "15,332 TPS" sort
// by their leading number, a cell's data-v attribute where it has one; "-" and "FAILED"
// last). Opened with #tb-selftest, it draws every chart, sorts by Gbps (or the table's
// data-selftest-sort column) both ways and writes what it saw as JSON into #tb-selftest,
// which `chromium --dump-dom` shows the browser test.
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
    // "15,332 TPS": thousands separators are not decimal points
    var num = parseFloat(text.replace(/^[^0-9.+-]+/, "").replace(/(\d),(?=\d{3}\b)/g, "$1"));
    return {text: text, num: /^[-+]?[0-9.]/.test(text) && !isNaN(num) ? num : null};
  }
  // Each row of the summary table is a <tbody> of its own (its warnings are a second line
  // in it), so sorting moves the tbodies.
  function sortTable(table, col, dir) {
    var groups = Array.prototype.slice.call(table.tBodies);
    var first = function (g) { return g.rows[0].cells[col]; };
    var numeric = groups.some(function (g) { return cellValue(first(g)).num !== null; });
    groups.sort(function (a, b) {
      var x = cellValue(first(a)), y = cellValue(first(b));
      if (numeric) {
        if (x.num === null && y.num === null) { return 0; }
        if (x.num === null) { return 1; }
        if (y.num === null) { return -1; }
        return dir * (x.num - y.num);
      }
      return dir * x.text.localeCompare(y.text);
    });
    groups.forEach(function (g) { table.appendChild(g); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.className = i === col ? (dir > 0 ? "asc" : "desc") : "";
    });
  }
  window.tbSort = function (name, dir) {
    var table = document.getElementById("results");
    var ths = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var col = ths.findIndex(function (th) { return th.textContent.trim() === name; });
    if (col < 0) { return null; }
    sortTable(table, col, dir);
    var vcol = ths.findIndex(function (th) { return th.textContent.trim().toLowerCase() === "variant"; });
    return Array.prototype.map.call(table.tBodies, function (g) {
      return g.rows[0].cells[vcol].textContent.trim();
    });
  };

  function selftest() {
    drawAll().then(function () {
      var out = {errors: errors, plotly: !!window.Plotly};
      out.plots = document.querySelectorAll(".tb-plot .main-svg").length;
      out.figures = document.querySelectorAll(".tb-plot").length;
      var by = document.getElementById("results").getAttribute("data-selftest-sort") || "Gbps";
      out.sorted_desc = window.tbSort(by, -1);
      out.sorted_asc = window.tbSort(by, 1);
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
    var hostSel = document.getElementById("tb-host");  // a table by host: show one host or all
    if (hostSel) {
      hostSel.addEventListener("change", function () {
        document.querySelectorAll("#results tbody[data-host], .host-charts").forEach(function (el) {
          el.style.display = !hostSel.value || el.dataset.host === hostSel.value ? "" : "none";
        });
      });
    }
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
    // Charts on screen first, then the rest one at a time in the background, so the first
    // paint does not wait for ~80 charts and a long page still ends up fully drawn (for
    // Ctrl-F, printing, screenshots).
    var queue = Array.prototype.slice.call(document.querySelectorAll(".tb-plot"));
    function fail(e) { report(e && e.message || e); }
    if ("IntersectionObserver" in window) {
      var seen = new IntersectionObserver(function (entries) {
        entries.forEach(function (en) {
          if (en.isIntersecting) { seen.unobserve(en.target); draw(en.target).catch(fail); }
        });
      }, {rootMargin: "400px"});
      queue.forEach(function (d) { seen.observe(d); });
    }
    function next() {
      var div = queue.shift();
      if (!div) { return; }
      draw(div).then(function () { setTimeout(next, 10); }, function (e) { fail(e); next(); });
    }
    setTimeout(next, 50);
  });
})();
