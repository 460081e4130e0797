// Keyboard shortcuts for the review pages. Plain forms do the work; this only presses them.
// a accept · x reject (type the reason, Enter) · o note (Enter) · e edit summary (Ctrl+Enter saves) ·
// j next pending item ·
// q queue · 1-9 pick a dimension, then s strong, w weak, n none.
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

  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && event.target.tagName === "TEXTAREA") {
      event.preventDefault();
      if (event.target.form) event.target.form.requestSubmit();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) {
      if (event.key === "Escape" && event.target.blur) event.target.blur();
      return;
    }
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
