// Keyboard shortcuts for the review pages. Plain forms do the work; this only presses them.
// a accept · x reject (type the reason, Enter) · o note (Enter) · e edit summary (Ctrl+Enter saves) ·
// j next pending item ·
// q queue · 1-9 pick a dimension, then s strong, w weak, n none.
// On the evidence matrix: arrows move, Enter opens the cell's queue, s/w/n/u set its verdict,
// c confirms the proposal, o a note.
(function () {
  "use strict";
  let dimension = null;

  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable);
  }

  function pick(key) {
    const row = document.querySelector('tr.dimension[data-key="' + key + '"]');
    if (!row) return;
    document.querySelectorAll("tr.dimension.picked").forEach(function (r) { r.classList.remove("picked"); });
    row.classList.add("picked");
    dimension = row;
  }

  function relabel(label) {
    if (!dimension) return;
    const button = dimension.querySelector('form.relabel button[value="' + label + '"]');
    if (button && !button.disabled) button.click();
  }

  // The evidence matrix: arrow keys move between cells, Enter opens the cell's queue,
  // s/w/n/u set the focused cell's verdict, c confirms its proposal, o types a note for it first.
  function cellAt(row, col) {
    return document.getElementById("cell-" + row + "-" + col);
  }

  function focusedCell() {
    const active = document.activeElement;
    return active && active.classList && active.classList.contains("cell") ? active : null;
  }

  function matrixKey(event) {
    const cell = focusedCell();
    if (!cell) return;
    const row = Number(cell.dataset.row), col = Number(cell.dataset.col);
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const labels = { s: "strong", w: "weak", n: "none", u: "unassessed" };
    if (moves[event.key]) {
      const next = cellAt(row + moves[event.key][0], col + moves[event.key][1]);
      event.preventDefault();
      if (next) next.focus();
    } else if (event.key === "Enter") {
      const open = cell.querySelector("a.open");
      if (open) { event.preventDefault(); open.click(); }
    } else if (labels[event.key]) {
      const button = cell.querySelector('form.verdict-form button[value="' + labels[event.key] + '"]');
      if (button) { event.preventDefault(); button.click(); }
    } else if (event.key === "c") {
      const confirm = cell.querySelector("form.verdict-form button.confirm");
      if (confirm) { event.preventDefault(); confirm.click(); }
    } else if (event.key === "o") {
      const note = cell.querySelector("input.note");
      if (note) { event.preventDefault(); note.focus(); }
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const table = document.getElementById("matrix");
    if (!table) return;
    const start = cellAt(table.dataset.focusRow, table.dataset.focusCol) || cellAt(0, 0);
    if (start) start.focus();
  });

  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && event.target.tagName === "TEXTAREA") {
      event.preventDefault();
      if (event.target.form) event.target.form.requestSubmit();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) {
      if (event.key === "Escape" && event.target.blur) {
        const cell = event.target.closest && event.target.closest("td.cell");
        event.target.blur();
        if (cell) cell.focus();  // back to the matrix cell whose note this was
      }
      return;
    }
    if (document.body.dataset.page === "matrix") { matrixKey(event); return; }
    if (document.body.dataset.page !== "item") return;
    const key = event.key;
    const click = function (id) { const el = document.getElementById(id); if (el) { event.preventDefault(); el.click(); } };
    const focus = function (id) { const el = document.getElementById(id); if (el) { event.preventDefault(); el.focus(); } };
    if (key === "a") click("accept");
    else if (key === "x") focus("reason");
    else if (key === "o") focus("note");
    else if (key === "e") focus("edit-summary");
    else if (key === "j") click("next-item");
    else if (key === "q") click("to-queue");
    else if (/^[1-9]$/.test(key)) { event.preventDefault(); pick(key); }
    else if (key === "s") relabel("strong");
    else if (key === "w") relabel("weak");
    else if (key === "n") relabel("none");
  });
})();
