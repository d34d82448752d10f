// Draw the graph's Mermaid diagram, again whenever htmx swaps a new point in.
(function () {
  "use strict";
  function draw() {
    if (!window.mermaid) return;
    window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
    window.mermaid.run({ querySelector: "pre.mermaid:not([data-processed])" });
  }
  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", draw);
})();
