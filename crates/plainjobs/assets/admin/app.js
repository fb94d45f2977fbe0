// plainjobs dashboard: progressive behaviour only. Pages work without it; with it, live parts
// refresh in place, bulk buttons follow the selection, destructive actions ask first, and the
// outcome of an action is shown once.
(function () {
  "use strict";

  var every = parseInt(document.body.getAttribute("data-refresh"), 10) || 2000;
  var liveState = document.getElementById("live-state");

  // Live parts: each element with data-live is replaced by its URL's fragment, every
  // interval, while the tab is visible and nothing in it is selected or focused.
  function busy(el) {
    if (el.querySelector("input[type=checkbox]:checked")) return true;
    return el.contains(document.activeElement) && document.activeElement !== document.body;
  }

  function refresh(el) {
    if (document.hidden || busy(el)) return;
    var url = el.getAttribute("data-live");
    url += (url.indexOf("?") < 0 ? "?" : "&") + "fragment=1";
    if (url.indexOf("/live/") >= 0) url = el.getAttribute("data-live");
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.text();
      })
      .then(function (html) {
        if (busy(el)) return;
        el.innerHTML = html;
        wire(el);
        if (liveState) { liveState.textContent = "live"; liveState.className = "live-state"; }
      })
      .catch(function () {
        if (liveState) { liveState.textContent = "offline"; liveState.className = "live-state off"; }
      });
  }

  // Bulk forms: select all, count, enable the buttons.
  function wire(root) {
    root.querySelectorAll("form[data-selection]").forEach(function (form) {
      var boxes = function () { return form.querySelectorAll("input[name=uuid]"); };
      var all = form.querySelector("[data-select-all]");
      var count = form.querySelector("[data-selected-count]");
      var update = function () {
        var n = form.querySelectorAll("input[name=uuid]:checked").length;
        form.querySelectorAll("[data-needs-selection]").forEach(function (b) { b.disabled = n === 0; });
        if (count) count.textContent = n === 0 ? "Select rows to act on them" : n + " selected";
        if (all) all.checked = n > 0 && n === boxes().length;
      };
      if (all) all.addEventListener("change", function () {
        boxes().forEach(function (b) { b.checked = all.checked; });
        update();
      });
      boxes().forEach(function (b) { b.addEventListener("change", update); });
      update();
    });
  }

  // Destructive buttons ask first.
  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-confirm]") : null;
    if (button && !window.confirm(button.getAttribute("data-confirm"))) e.preventDefault();
  });

  // The outcome of an action, passed as ?done=…, shown as text and dropped from the URL.
  var params = new URLSearchParams(window.location.search);
  var done = params.get("done");
  var notice = document.getElementById("notice");
  if (done && notice) {
    notice.textContent = done;
    notice.hidden = false;
    params.delete("done");
    var rest = params.toString();
    history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
  }

  wire(document);
  var live = document.querySelectorAll("[data-live]");
  if (live.length) {
    setInterval(function () { live.forEach(refresh); }, every);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) live.forEach(refresh);
    });
  }
})();
