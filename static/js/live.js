// The dot in the top bar: lit while the live-updates websocket is open.
// A script file rather than hx-on attributes, which htmx runs through eval
// and the Content-Security-Policy forbids.
(function () {
  "use strict";
  function show(open) {
    const dot = document.getElementById("live-state");
    if (dot) dot.classList.toggle("on", open);
  }
  document.addEventListener("htmx:wsOpen", function () { show(true); });
  document.addEventListener("htmx:wsClose", function () { show(false); });
})();
