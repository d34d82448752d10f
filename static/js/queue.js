// Keyboard work in the queue: j/k move, Enter opens, a approves, r rejects.
// Approve and reject post the same form a button would (CSRF header from
// <body hx-headers>), and the row is replaced by the server's answer.
(function () {
  "use strict";
  function rows() {
    return Array.from(document.querySelectorAll("tr.task-row[data-url]"));
  }
  function current() {
    return document.querySelector("tr.task-row.selected");
  }
  function select(row) {
    const old = current();
    if (old) old.classList.remove("selected");
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
  document.addEventListener("keydown", function (event) {
    const tag = (event.target.tagName || "").toLowerCase();
    if (["input", "textarea", "select"].includes(tag) || event.ctrlKey || event.metaKey || event.altKey) return;
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
