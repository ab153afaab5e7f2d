// The periodic task form: the crontab's help says the chosen schedule in words
// (django-celery-beat's inline script, as a file: templates/admin/djcelery/change_periodictask_form.html).
"use strict";
(function ($) {
    const readableCrontabs = JSON.parse(document.getElementById("readable-crontabs").textContent);
    const originalCrontabHelp = JSON.parse(document.getElementById("crontab-help-text").textContent);
    const updateCrontabHelp = function (additional) {
        $(".field-crontab .help").text(originalCrontabHelp).append("<br>", document.createTextNode(
            "Translation: " + additional));
    };
    $(".field-crontab_translation").hide();
    $(".field-crontab").change(function () {
        updateCrontabHelp(readableCrontabs[$("#id_crontab").val()]);
    });
})(django.jQuery);
