// The sync's mapping editor (integrations/mapping_widgets.py): a filter box before each
// source and destination select, and the transform the two types suggest picked while the
// row's transform is empty. Without JavaScript the selects work as they are.
"use strict";
(function () {
    function filterBox(select) {
        if (select.dataset.mappingFilterReady || select.name.includes("__prefix__")) {
            return;
        }
        select.dataset.mappingFilterReady = "1";
        const options = Array.from(select.querySelectorAll("option"));
        const groups = Array.from(select.querySelectorAll("optgroup"));
        const box = document.createElement("input");
        box.type = "search";
        box.placeholder = "filter\u2026";
        box.className = "mapping-filter";
        box.setAttribute("aria-label", "Filter the choices of " + (select.id || select.name));
        box.addEventListener("input", function () {
            const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
            options.forEach(function (option) {
                const text = option.textContent.toLowerCase();
                const shown = option.selected || option.value === "" ||
                    words.every(function (word) { return text.includes(word); });
                option.hidden = !shown;
                option.disabled = !shown;
            });
            groups.forEach(function (group) {
                group.hidden = !Array.from(group.children).some(function (o) { return !o.hidden; });
            });
        });
        select.parentNode.insertBefore(box, select);
        select.parentNode.insertBefore(document.createElement("br"), select);
    }

    function rowField(row, name) {
        return row.querySelector("[name$='-" + name + "']");
    }

    function suggest(row) {
        const transform = rowField(row, "transform");
        const source = rowField(row, "source_field");
        const target = rowField(row, "destination_field");
        const template = rowField(row, "template");
        if (!transform || !source || !target || !transform.dataset.suggest) {
            return;
        }
        const table = JSON.parse(transform.dataset.suggest);
        const chosen = function (select) {
            const option = select.options ? select.options[select.selectedIndex] : null;
            return option ? option.dataset : {};
        };
        const type = template && template.value.trim() ? "text" : chosen(source).type;
        const suggestion = table[type + ":" + chosen(target).kind] || "";
        // Only an empty transform, or one this script picked, is changed.
        if (transform.value === "" || transform.value === transform.dataset.autoPicked) {
            transform.value = suggestion;
            transform.dataset.autoPicked = suggestion;
        }
    }

    function setUp(root) {
        root.querySelectorAll("select[data-mapping-filter]").forEach(filterBox);
        const rows = Array.from(root.querySelectorAll("tr.form-row, .inline-related"));
        if (root.matches && root.matches("tr.form-row, .inline-related")) {
            rows.push(root); // the row "add another" just made
        }
        rows.forEach(function (row) {
            if (row.classList.contains("empty-form") || !rowField(row, "transform") ||
                    row.dataset.mappingSuggestReady) {
                return;
            }
            row.dataset.mappingSuggestReady = "1";
            ["source_field", "destination_field", "template"].forEach(function (name) {
                const field = rowField(row, name);
                if (field) {
                    field.addEventListener("change", function () { suggest(row); });
                }
            });
        });
    }

    document.addEventListener("DOMContentLoaded", function () { setUp(document); });
    document.addEventListener("formset:added", function (event) { setUp(event.target); });
})();
