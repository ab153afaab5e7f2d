"""Admin for scheduled exports: destinations, schedules (granted per object) and runs."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from exports.datasets import DATASETS
from exports.destinations import destination_type
from exports.forms import SECRET_FIELDS, ExportDestinationForm, ExportScheduleForm
from exports.guardrails import OVERRIDE_PERMISSION
from exports.models import ExportDestination, ExportRun, ExportSchedule, RunStatus, RunTrigger
from exports.selectors import (
    RUN_SCHEDULE,
    run_local_file,
    runs_visible_to,
    schedules_runnable_by,
    user_may_run,
)
from exports.services import (
    destination_secret_names,
    export_destination_save,
    export_run_start,
    export_schedule_delete,
    export_schedule_save,
    run_download_log,
)
from mktintegration.admin_base import (
    HiddenIs404Mixin,
    ObjectPermissionAdmin,
    ReadOnlyAdmin,
    secrets_status,
)
from mktintegration.api_auth import client_address


@admin.register(ExportDestination)
class ExportDestinationAdmin(admin.ModelAdmin):
    """Integration Admins change destinations (they hold credentials); others may view them.

    Secrets are write-only form fields: never rendered, listed or searchable.
    """

    form = ExportDestinationForm
    list_display = ("name", "kind", "target", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    readonly_fields = ("stored_secrets", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "kind", "allowed_regions")}),
        (
            "Local folder",
            {"fields": ("subdirectory", "retention_days"), "description": "For kind Local folder."},
        ),
        (
            "SFTP",
            {
                "fields": (
                    "host",
                    "port",
                    "username",
                    "remote_dir",
                    "host_key_fingerprint",
                    "password",
                    "private_key",
                ),
                "description": "For kind SFTP. The host key is pinned: a server offering another "
                "key gets nothing.",
            },
        ),
        (
            "HTTPS",
            {
                "fields": ("url", "signature_header", "hmac_secret"),
                "description": "For kind HTTPS.",
            },
        ),
        ("Secrets", {"fields": ("stored_secrets", "clear_secrets")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_fieldsets(self, request, obj=None):
        if self.has_change_permission(request, obj) or obj is None:
            return self.fieldsets
        hidden = {*SECRET_FIELDS, "clear_secrets"}
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in hidden]})
            for name, options in self.fieldsets
        ]

    @admin.display(description="target")
    def target(self, obj):
        return destination_type(obj.kind).describe(obj)

    @admin.display(description="stored secrets")
    def stored_secrets(self, obj):
        if obj is None or obj.pk is None:
            return "none"
        labels = ExportDestinationForm.base_fields
        return secrets_status(
            declared=[(n, labels[n].label) for n in destination_type(obj.kind).secret_fields],
            stored=lambda: destination_secret_names(obj),
        )

    def save_model(self, request, obj, form, change):
        export_destination_save(
            destination=obj,
            secrets=form.new_secrets(),
            clear=bool(form.cleaned_data.get("clear_secrets")),
        )


@admin.register(ExportSchedule)
class ExportScheduleAdmin(ObjectPermissionAdmin):
    form = ExportScheduleForm
    change_form_template = "admin/exports/exportschedule/change_form.html"
    list_display = ("name", "dataset", "format", "destination", "when", "enabled", "owner")
    list_filter = ("enabled", "format")
    list_select_related = ("destination", "owner")
    search_fields = ("name",)
    actions = ["run_now"]
    readonly_fields = ("owner", "recent_runs", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "enabled", "owner")}),
        ("What", {"fields": ("dataset", "fields", "filters", "format", "incremental", "max_rows")}),
        ("Where", {"fields": ("destination",)}),
        ("When (UTC)", {"fields": ("cron", "every_minutes", "min_interval_minutes")}),
        ("Runs", {"fields": ("recent_runs",)}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.has_perm(OVERRIDE_PERMISSION):
            fields.append("min_interval_minutes")  # the frequency cap is the admins' to lower
        return fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.user = request.user  # a class made for this request
        return form

    @admin.display(description="when")
    def when(self, obj):
        if obj.cron:
            return f"cron {obj.cron}"
        if obj.every_minutes:
            return f"every {obj.every_minutes} min"
        return "only when run by hand"

    @admin.display(description="recent runs")
    def recent_runs(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        runs = obj.runs.order_by("-queued_at", "-id")[:10]
        rows = format_html_join(
            "",
            "<tr><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td></tr>",
            (
                (
                    reverse("admin:exports_exportrun_change", args=[run.pk]),
                    run.pk,
                    run.get_status_display(),
                    f"{run.queued_at:%Y-%m-%d %H:%M:%S}",
                    run.rows,
                    run.file_name,
                    Truncator(run.error).chars(120),
                )
                for run in runs
            ),
        )
        changelist = reverse("admin:exports_exportrun_changelist")
        return format_html(
            "<table><tr><th>run</th><th>status</th><th>queued (UTC)</th><th>rows</th>"
            "<th>file</th><th>error</th></tr>{}</table><p><a href='{}?schedule__id__exact={}'>"
            "All runs of this schedule</a></p>",
            rows or mark_safe("<tr><td colspan='6'>no runs yet</td></tr>"),
            changelist,
            obj.pk,
        )

    def save_model(self, request, obj, form, change):
        export_schedule_save(schedule=obj, creator=None if change else request.user)

    def delete_model(self, request, obj):
        export_schedule_delete(schedule=obj)

    def delete_queryset(self, request, queryset):
        for schedule in queryset:
            export_schedule_delete(schedule=schedule)

    # -- Run now -------------------------------------------------------------------------------

    def has_run_permission(self, request, obj=None) -> bool:
        if obj is not None:
            return user_may_run(request.user, obj)
        user = request.user
        return user.has_perm(RUN_SCHEDULE) or schedules_runnable_by(user).exists()

    @admin.action(description="Run now", permissions=["run"])
    def run_now(self, request, queryset):
        for schedule in queryset:
            self._run(request, schedule)

    def _run(self, request, schedule: ExportSchedule) -> None:
        if not user_may_run(request.user, schedule):
            self.message_user(
                request, f"You may not run {schedule.name}: nothing was started.", messages.ERROR
            )
            return
        run = export_run_start(schedule=schedule, trigger=RunTrigger.MANUAL, user=request.user)
        if run.status == RunStatus.SKIPPED:
            self.message_user(request, f"{schedule.name}: skipped, {run.error}", messages.WARNING)
        else:
            self.message_user(request, f"{schedule.name}: run {run.pk} queued.", messages.SUCCESS)

    def get_urls(self):
        run_url = path(
            "<path:object_id>/run/",
            self.admin_site.admin_view(self.run_view),
            name="exports_exportschedule_run",
        )
        return [run_url, *super().get_urls()]

    def run_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        schedule = self.get_object(request, object_id)
        if schedule is None:
            raise Http404(f"No export schedule with id {object_id} is visible to you.")
        if not user_may_run(request.user, schedule):
            raise PermissionDenied(f"You may not run {schedule.name}.")
        self._run(request, schedule)
        return HttpResponseRedirect(
            reverse("admin:exports_exportschedule_change", args=[schedule.pk])
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        schedule = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "can_run": schedule is not None and user_may_run(request.user, schedule),
        }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(ExportRun)
class ExportRunAdmin(HiddenIs404Mixin, ReadOnlyAdmin):
    """Runs of the schedules the user may see; local-folder files can be downloaded."""

    list_display = (
        "id",
        "schedule",
        "status",
        "trigger",
        "queued_at",
        "finished_at",
        "attempt",
        "rows",
        "bytes",
        "file_name",
        "download",
    )
    list_filter = ("status", "trigger")
    list_select_related = ("schedule__destination",)
    search_fields = ("schedule__name", "file_name")
    fields = (
        "schedule",
        "status",
        "trigger",
        "triggered_by",
        "queued_at",
        "due_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "attempt",
        "fields",
        "filters",
        "rows",
        "bytes",
        "sha256",
        "duration_ms",
        "file_name",
        "download",
        "destination_result",
        "error",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return runs_visible_to(request.user, queryset=super().get_queryset(request))

    @admin.display(description="file")
    def download(self, obj):
        if run_local_file(obj) is None:
            return "-"
        url = reverse("admin:exports_exportrun_download", args=[obj.pk])
        return format_html("<a href='{}'>Download</a>", url)

    def get_urls(self):
        download = path(
            "<path:object_id>/download/",
            self.admin_site.admin_view(self.download_view),
            name="exports_exportrun_download",
        )
        return [download, *super().get_urls()]

    def download_view(self, request, object_id):
        run = self.get_object(request, object_id)
        if run is None or not self.has_view_permission(request, run):
            raise Http404(f"No export run with id {object_id} is visible to you.")
        dataset = DATASETS.get(run.schedule.dataset)
        address = client_address(request)
        if dataset is None or not request.user.has_perm(dataset.permission):
            run_download_log(run=run, user=request.user, ok=False, size=0, address=address)
            raise PermissionDenied(f"You may not export the {run.schedule.dataset} dataset.")
        path_ = run_local_file(run)
        if path_ is None:
            raise Http404("This run's file is not in the export folder (any more).")
        run_download_log(
            run=run, user=request.user, ok=True, size=path_.stat().st_size, address=address
        )
        return FileResponse(path_.open("rb"), as_attachment=True, filename=run.file_name)
