// Live updates. The dot in the top bar says whether the websocket is open
// (in words beside the colour: "live" or "offline"). Fragments that come
// over the socket are kept only when this page has their target: the server
// sends one set of fragments to every page, and htmx reports a fragment
// without a target as an error. A script file rather than hx-on attributes,
// which htmx runs through eval and the Content-Security-Policy forbids.
(function () {
  "use strict";
  function show(open) {
    const dot = document.getElementById("live-state");
    if (!dot) return;
    dot.classList.toggle("on", open);
    dot.title = open ? "live updates on" : "live updates off: reload to catch up";
    const words = dot.querySelector(".live-words");
    if (words) words.textContent = open ? "live" : "offline";
  }
  // Each time the socket opens (the first time too), the page's live parts
  // ask again: what happened before it opened was sent to no one.
  document.addEventListener("htmx:wsOpen", function () {
    show(true);
    htmx.trigger(document.body, "live-opened");
    htmx.trigger(document.body, "thread-changed");
  });
  document.addEventListener("htmx:wsClose", function () { show(false); });

  // A fragment names its target by its id, or after the swap style
  // (hx-swap-oob="outerHTML:#task-7": a queue row replaced by its turn's
  // next call).
  function hasTarget(element) {
    const swap = element.getAttribute("hx-swap-oob") || "";
    const colon = swap.indexOf(":");
    if (colon > 0) return document.querySelector(swap.slice(colon + 1)) !== null;
    return Boolean(element.id) && document.getElementById(element.id) !== null;
  }
  htmx.defineExtension("page-targets", {
    transformResponse: function (text) {
      const holder = document.createElement("template");
      holder.innerHTML = text;
      Array.from(holder.content.children).forEach(function (element) {
        if (!hasTarget(element)) element.remove();
      });
      return holder.innerHTML;
    },
  });
  // (Before the message is filtered: a new run's status has no element yet.)
  // A run of a thread this page shows moved on: the parts of the page that
  // show the thread ask again (hx-trigger="thread-changed from:body").
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    const message = event.detail && event.detail.message;
    if (typeof message === "string" && /class="run-status|id="thread-steps"/.test(message)) {
      htmx.trigger(document.body, "thread-changed");
    }
  });
})();
