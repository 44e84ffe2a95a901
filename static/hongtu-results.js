// Keeps a page's analysis results honest (templates/_results_notice.html): shows the
// 待刷新 notice once the ledger changed after the run, starts a run for roles that may, shows
// its progress, and switches the page to the new run once it is stored.
(function () {
  "use strict";
  var box = document.getElementById("ht-results");
  if (!box || !box.dataset.status) return;
  var shownRun = box.dataset.run, progress = box.querySelector(".ht-stale-progress");
  var button = box.querySelector(".ht-stale-run"), timer = null;
  // Slow while nothing happens; quick while a run is going.
  var IDLE_MS = 60000, BUSY_MS = 2000;

  function ask() {
    fetch(box.dataset.status, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) show(s); })
      .catch(function () { schedule(IDLE_MS); });
  }
  function schedule(ms) { clearTimeout(timer); timer = setTimeout(ask, ms); }

  function show(s) {
    var job = s.job, busy = job && (job.state === "queued" || job.state === "running");
    if (s.run_id && String(s.run_id) !== shownRun) {
      shownRun = String(s.run_id);
      // The map redraws its layers from the new run; other pages are read anew.
      if (!document.dispatchEvent(new CustomEvent("hongtu:newrun", { detail: s, cancelable: true }))) {
        progress.textContent = box.dataset.done;
      } else {
        window.location.reload();
        return;
      }
    }
    box.hidden = !(s.stale || busy || (job && job.state === "failed" && s.stale));
    if (busy) progress.textContent = box.dataset.running + (job.step ? " " + job.step + "/" + job.steps : "");
    else if (job && job.state === "failed" && s.stale) progress.textContent = box.dataset.failed + (job.error ? ": " + job.error : "");
    else if (!s.stale) progress.textContent = "";
    if (button) button.disabled = !!busy;
    schedule(busy ? BUSY_MS : IDLE_MS);
  }

  if (button) {
    button.addEventListener("click", function () {
      button.disabled = true;
      fetch(box.dataset.start, {
        method: "POST",
        headers: { "X-CSRF-Token": box.dataset.csrf, Accept: "application/json" }
      })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (answer) {
          if (!answer.ok) progress.textContent = answer.body.description || box.dataset.failed;
          schedule(answer.ok ? 0 : BUSY_MS);
        });
    });
  }
  schedule(box.hidden ? IDLE_MS : BUSY_MS);
})();
