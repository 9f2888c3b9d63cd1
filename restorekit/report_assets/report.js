// restorekit results report: the before/after sliders, the truth toggles and the sortable
// table. No library and nothing fetched: the page works from file:// and offline. Without
// JavaScript the images still show (split at the middle) and the table keeps its order.
(function () {
  "use strict";

  function setPosition(figure, value) {
    var pos = Math.max(0, Math.min(100, Number(value)));
    figure.style.setProperty("--pos", pos + "%");
  }

  function initCompare(figure) {
    var range = figure.querySelector("input[type=range]");
    if (range) {
      setPosition(figure, range.value);
      range.addEventListener("input", function () { setPosition(figure, range.value); });
    }
    var toggle = figure.querySelector("button.truth-toggle");
    if (toggle) {
      toggle.addEventListener("click", function () {
        var on = figure.classList.toggle("show-truth");
        toggle.setAttribute("aria-pressed", on ? "true" : "false");
        toggle.textContent = on ? "compare with the input" : "compare with the truth";
      });
    }
  }

  function cellValue(row, key, type) {
    var raw = row.dataset[key];
    if (type === "number") {
      var number = parseFloat(raw);
      return isNaN(number) ? -Infinity : number;  // a missing score sorts as the lowest
    }
    return (raw || "").toLowerCase();
  }

  function sortTable(table, header) {
    var key = header.dataset.key, type = header.dataset.type || "text";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, key, type), y = cellValue(b, key, type);
      var order = x < y ? -1 : x > y ? 1 : Number(a.dataset.index) - Number(b.dataset.index);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    table.querySelectorAll("th[data-key]").forEach(function (th) { th.setAttribute("aria-sort", "none"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  function initTable(table) {
    table.querySelectorAll("th[data-key]").forEach(function (header) {
      var button = header.querySelector("button");
      (button || header).addEventListener("click", function () { sortTable(table, header); });
    });
  }

  document.querySelectorAll("figure.compare").forEach(initCompare);
  document.querySelectorAll("table.sortable").forEach(initTable);
})();
