/* dendrobench leaderboard: sortable tables, row filters, the smoke toggle and fold-out details.
   Inline, no dependencies, works from file://. Sorting uses each cell's data-sort value (numbers sort
   numerically; empty values always go last). On the index a row is a "main" row followed by its
   "details" row; they move together. */
(function () {
  "use strict";
  function value(cell) {
    var v = cell ? cell.getAttribute("data-sort") : null;
    if (v === null || v === "") { return null; }
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function units(body) {
    /* [row, its details row or null] in document order */
    var out = [], rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (r) {
      if (r.classList.contains("details")) {
        if (out.length) { out[out.length - 1][1] = r; }
      } else {
        out.push([r, null]);
      }
    });
    return out;
  }
  function sortBy(table, th) {
    var ths = Array.prototype.slice.call(th.parentNode.children);
    var col = ths.indexOf(th);
    var asc = th.getAttribute("aria-sort") !== "ascending";
    ths.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var body = table.tBodies[0];
    var list = units(body);
    list.sort(function (a, b) {
      var x = value(a[0].cells[col]), y = value(b[0].cells[col]);
      if (x === null && y === null) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      var r = x < y ? -1 : x > y ? 1 : 0;
      return asc ? r : -r;
    });
    list.forEach(function (u) { body.appendChild(u[0]); if (u[1]) { body.appendChild(u[1]); } });
  }
  function initSort(table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      if (th.classList.contains("nosort")) { return; }
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th); }
      });
    });
  }
  function initIndex(table) {
    var selects = document.querySelectorAll("select[data-filter]");
    var smoke = document.getElementById("show-smoke");
    var counter = document.getElementById("row-count");
    function apply() {
      var showSmoke = !!(smoke && smoke.checked);
      document.body.classList.toggle("show-smoke", showSmoke);
      var shown = 0, total = 0;
      units(table.tBodies[0]).forEach(function (u) {
        var row = u[0];
        var isSmoke = row.classList.contains("smoke");
        if (!isSmoke || showSmoke) { total += 1; }
        var ok = (!isSmoke || showSmoke) && Array.prototype.every.call(selects, function (s) {
          return !s.value || row.getAttribute("data-" + s.getAttribute("data-filter")) === s.value;
        });
        row.hidden = !ok;
        if (u[1]) {
          var btn = row.querySelector(".more-btn");
          u[1].hidden = !ok || !btn || btn.getAttribute("aria-expanded") !== "true";
        }
        if (ok) { shown += 1; }
      });
      if (counter) { counter.textContent = shown + " of " + total + " rows"; }
    }
    Array.prototype.forEach.call(selects, function (s) { s.addEventListener("change", apply); });
    if (smoke) { smoke.addEventListener("change", apply); }
    Array.prototype.forEach.call(table.querySelectorAll(".more-btn"), function (btn) {
      btn.addEventListener("click", function () {
        var open = btn.getAttribute("aria-expanded") !== "true";
        btn.setAttribute("aria-expanded", open ? "true" : "false");
        btn.textContent = open ? "less" : "more";
        var det = document.getElementById(btn.getAttribute("aria-controls"));
        if (det) { det.hidden = !open; }
      });
    });
    /* a link to a row (#row-...) shows it, smoke or not, with its details open */
    var target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (target && target.classList.contains("smoke") && smoke) { smoke.checked = true; }
    apply();
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), initSort);
    var main = document.getElementById("leaderboard");
    if (main) { initIndex(main); }
  });
})();
