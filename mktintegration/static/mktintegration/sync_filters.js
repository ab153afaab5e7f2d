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

  // An add page re-opens itself for the connection, dataset and object just chosen, so the
  // lists that depend on them (the match fields, the mappings' fields, the destination's
  // settings) are there without saving. What was entered in the form's other simple fields
  // goes along (the admin takes a field's initial value from the query string); once a
  // mapping row has something in it, the page is left alone and saving shows them instead.
  var CARRIED = [
    "name", "connection", "dataset", "destination_object", "mode", "match_source_field",
    "consent_purpose", "cron", "every_minutes",
  ];
  var CHOOSERS = ["connection", "dataset", "destination_object"];

  function reopenOnChoice() {
    if (!/\/add\/$/.test(window.location.pathname)) {
      return;
    }
    var form = document.querySelector("form#sync_form");
    if (!form) {
      return;
    }
    function mappingsTouched() {
      return Array.prototype.some.call(
        form.querySelectorAll("[name^='mappings-'][name$='_field'], [name$='-template']"),
        function (input) { return input.value !== ""; }
      );
    }
    CHOOSERS.forEach(function (name) {
      var select = form.querySelector("select[name='" + name + "']");
      if (!select) {
        return;
      }
      select.addEventListener("change", function () {
        if (mappingsTouched()) {
          return;
        }
        var query = new URLSearchParams();
        CARRIED.forEach(function (carried) {
          var input = form.querySelector("[name='" + carried + "']");
          if (input && input.value !== "") {
            query.set(carried, input.value);
          }
        });
        window.location.assign(window.location.pathname + "?" + query.toString());
      });
    });
  }

  function start() {
    init();
    reopenOnChoice();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
