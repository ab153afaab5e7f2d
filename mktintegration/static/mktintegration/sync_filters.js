// The sync editor's "N records match": asks the admin's count view (integrations.sync_editor)
// as the filters change, a moment after the last change. A static file: the
// Content-Security-Policy forbids inline scripts.
(function () {
  "use strict";

  var WAIT_MS = 400;

  function init() {
    var output = document.querySelector("output[data-count-url]");
    if (!output) {
      return;
    }
    var form = output.closest("form");
    var timer = null;
    var asked = 0;

    function params() {
      var query = new URLSearchParams();
      query.set("dataset", output.dataset.dataset);
      if (output.dataset.sync) {
        query.set("sync", output.dataset.sync);
      }
      form.querySelectorAll("[name^='filter_']").forEach(function (input) {
        if ((input.type === "checkbox" || input.type === "radio") && !input.checked) {
          return;
        }
        if (input.value !== "") {
          query.append(input.name, input.value);
        }
      });
      return query;
    }

    function show(text, failed) {
      output.textContent = text;
      output.classList.toggle("mkt-filter-count-error", Boolean(failed));
    }

    function count() {
      var mine = ++asked;
      show("Counting…", false);
      fetch(output.dataset.countUrl + "?" + params().toString(), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          return response.json().then(function (body) {
            return { ok: response.ok, body: body };
          });
        })
        .then(function (answer) {
          if (mine === asked) {
            show(answer.ok ? answer.body.text : answer.body.error, !answer.ok);
          }
        })
        .catch(function () {
          if (mine === asked) {
            show("The matching records could not be counted.", true);
          }
        });
    }

    function changed(event) {
      var name = event.target && event.target.name;
      if (!name || name.indexOf("filter_") !== 0) {
        return;
      }
      window.clearTimeout(timer);
      timer = window.setTimeout(count, WAIT_MS);
    }

    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    var dataset = form.querySelector("select[name='dataset']");
    if (dataset) {
      dataset.addEventListener("change", function () {
        if (dataset.value === output.dataset.dataset) {
          count();
        } else {
          show(
            "Save and continue editing to see this dataset's filters (those shown are " +
              "the filters of " + output.dataset.datasetLabel + ").",
            false
          );
        }
      });
    }
    if (!output.dataset.counted) {
      count();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
