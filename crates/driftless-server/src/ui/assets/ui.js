// driftless web UI: keeps the page's live region current from the server's
// event stream, and applies the list's filters as they change. Pages work
// without this script; it only saves reloads.
(function () {
  "use strict";
  var body = document.body;
  var stream = body.getAttribute("data-live");
  var inFlight = false;
  var again = false;
  var timer = 0;

  // Fetches the live region of `url` and puts it in place.
  function refresh(url) {
    if (inFlight) { again = true; return; }
    inFlight = true;
    fetch(url || location.href, {
      credentials: "same-origin",
      headers: { "X-Driftless-Fragment": "1" }
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text();
    }).then(function (html) {
      var live = document.getElementById("live");
      if (live) {
        var focused = document.activeElement && document.activeElement.id;
        live.innerHTML = html;
        if (focused) {
          var el = document.getElementById(focused);
          if (el) { el.focus(); }
        }
        var note = document.getElementById("updated");
        if (note) { note.textContent = "Updated " + new Date().toLocaleTimeString(); }
      }
    }).catch(function (err) {
      var note = document.getElementById("updated");
      if (note) { note.textContent = "Live update failed (" + err.message + "); reload the page"; }
    }).then(function () {
      inFlight = false;
      if (again) { again = false; refresh(); }
    });
  }

  // Many changes in a burst make one refresh.
  function soon() {
    if (timer) { return; }
    timer = setTimeout(function () { timer = 0; refresh(); }, 150);
  }

  var source = null;
  var opened = false;
  function follow() {
    source = new EventSource(stream);
    source.addEventListener("change", soon);
    source.addEventListener("open", function () {
      // After a reconnect, changes made while disconnected were not announced.
      if (opened) { soon(); }
      opened = true;
      body.setAttribute("data-stream", "open");
    });
    source.addEventListener("error", function () { body.setAttribute("data-stream", "retrying"); });
  }
  if (stream && window.EventSource) {
    follow();
    // A page left open in the back/forward cache must not hold a connection:
    // browsers allow only a few per server.
    window.addEventListener("pagehide", function () {
      if (source) { source.close(); source = null; }
    });
    window.addEventListener("pageshow", function (event) {
      if (!source) { follow(); }
      if (event.persisted) { soon(); }
    });
  }

  // The list follows its filters as they change, without a page load: a change
  // fetches at once, and changes made while a fetch runs make one more fetch,
  // of the latest filters, after it. The label selector applies on Apply only,
  // as a half-typed selector is not one yet.
  var filters = document.getElementById("filters");
  if (filters && window.URLSearchParams) {
    var apply = function () {
      var params = new URLSearchParams();
      new FormData(filters).forEach(function (value, key) {
        if (value !== "") { params.append(key, value); }
      });
      var query = params.toString();
      var url = location.pathname + (query ? "?" + query : "");
      history.replaceState(null, "", url);
      refresh(url);
    };
    var text = document.getElementById("q");
    if (text) { text.addEventListener("input", apply); }
    Array.prototype.forEach.call(filters.querySelectorAll("select"), function (select) {
      select.addEventListener("change", apply);
    });
  }
})();
