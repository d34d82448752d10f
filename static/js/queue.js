// Keyboard work in the queue: j/k move, Enter opens, a approves, r rejects.
// Single-letter keys can be turned off (WCAG 2.1.4: speech input types
// letters); the choice is kept in this browser. They never act while focus
// is in something that takes typing, and Enter keeps its meaning on links
// and buttons.
// Approve and reject post the same form a button would (CSRF header from
// <body hx-headers>), and the row is replaced by the server's answer.
(function () {
  "use strict";
  function rows() {
    return Array.from(document.querySelectorAll("tr.task-row[data-url]"));
  }
  let chosen = ""; // the selected row's id, kept when live updates redraw the rows
  function current() {
    return document.querySelector("tr.task-row.selected");
  }
  function select(row) {
    const old = current();
    if (old) old.classList.remove("selected");
    chosen = row ? row.id : "";
    if (row) {
      row.classList.add("selected");
      row.scrollIntoView({ block: "nearest" });
    }
  }
  function move(step) {
    const all = rows();
    if (!all.length) return;
    const index = all.indexOf(current());
    const next = index < 0 ? 0 : Math.min(all.length - 1, Math.max(0, index + step));
    select(all[next]);
  }
  function decide(row, action, message) {
    const values = { action: action };
    if (message !== undefined) values.message = message;
    const id = row.id;
    // Out of reach of the live removal that this very decision triggers,
    // which may arrive before the answer that replaces the row.
    row.id = id + "-deciding";
    htmx.ajax("POST", row.dataset.quick, { target: row, swap: "outerHTML", values: values }).then(function () {
      // The answer replaced the row: keep the place, so j goes on from here.
      select(document.getElementById(id + "-done") || document.getElementById(id));
    });
  }
  document.addEventListener("htmx:afterSettle", function () {
    const row = chosen && document.getElementById(chosen);
    if (row && !row.classList.contains("selected")) row.classList.add("selected");
  });
  const STORE = "hitl.queue-shortcuts";
  function enabled() {
    try { return window.localStorage.getItem(STORE) !== "off"; } catch (e) { return true; }
  }
  document.addEventListener("DOMContentLoaded", function () {
    const box = document.getElementById("shortcuts");
    if (!box) return;
    box.checked = enabled();
    box.addEventListener("change", function () {
      try { window.localStorage.setItem(STORE, box.checked ? "on" : "off"); } catch (e) { /* private mode */ }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (!enabled() || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
    if (target.isContentEditable) return;
    if (event.key === "Enter" && target.closest && target.closest("a, button, summary")) return;
    const row = current();
    if (event.key === "j") move(1);
    else if (event.key === "k") move(-1);
    else if (event.key === "Enter" && row) window.location.href = row.dataset.url;
    else if (event.key === "a" && row) decide(row, "approve");
    else if (event.key === "r" && row) {
      const message = window.prompt("Message to the model (why this is rejected):");
      if (message !== null) decide(row, "reject", message);
    } else return;
    event.preventDefault();
  });
})();
