// Pages that update while work is under way (a run's page): reload every N seconds, with a
// button to pause and resume (WCAG 2.2.1: a user can stop a timed reload). The element
// [data-refresh-seconds] holds the interval; without JavaScript the page just does not reload.
(function () {
  "use strict";
  function start() {
    var box = document.querySelector("[data-refresh-seconds]");
    if (!box) { return; }
    var seconds = parseInt(box.getAttribute("data-refresh-seconds"), 10) || 10;
    var button = box.querySelector("button");
    var status = box.querySelector(".mkt-refresh-status");
    var timer = null;
    function run() {
      timer = window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
      button.textContent = "Pause updates";
      status.textContent = "This page reloads every " + seconds + " s.";
    }
    function pause() {
      window.clearTimeout(timer);
      timer = null;
      button.textContent = "Resume updates";
      status.textContent = "Updates paused.";
    }
    button.hidden = false;
    button.addEventListener("click", function () { if (timer) { pause(); } else { run(); } });
    run();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
