// The imports page's progress bar: polls GET /api/imports/<id> while the import runs and
// reloads the page (report, problems, result) as soon as it is no longer running.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box) { return; }
  var bar = document.getElementById("progress-bar");
  var text = document.getElementById("progress-text");
  var template = box.getAttribute("data-text");
  var status = box.getAttribute("data-status");
  var RUNNING = ["checking", "importing"];

  function show(state) {
    var importing = state.status === "importing";
    var done = importing ? state.done_rows : state.checked_rows;
    var errors = importing ? state.error_count : state.invalid_rows;
    bar.max = Math.max(state.total_rows, 1);
    bar.value = done;
    text.textContent = template
      .replace("{done}", done).replace("{total}", state.total_rows).replace("{errors}", errors);
  }

  function poll() {
    fetch(box.getAttribute("data-url"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (state === null) { return setTimeout(poll, 3000); }
        show(state);
        if (state.status !== status || RUNNING.indexOf(state.status) < 0) {
          if (RUNNING.indexOf(state.status) < 0) { return window.location.reload(); }
          status = state.status;
        }
        setTimeout(poll, 700);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 300);
})();
