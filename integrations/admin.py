"""Connections, syncs, runs and dead letters in the admin.

Connections and syncs are granted object by object (ObjectPermissionAdmin). Every action checks
its permission on each selected object; the work is done by integrations.services.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django_celery_beat.models import PeriodicTask
from guardian.shortcuts import get_objects_for_user

from audit.context import client_address
from audit.pages import AccessLoggedAdminMixin
from integrations import (
    record_history,
    record_test,
    run_progress,
    services,
    sync_editor,
    sync_list,
)
from integrations.engine.access import preview_refused_log
from integrations.evidence_admin import consent_decision_html
from integrations.forms import ConnectionForm, FieldMappingForm, MappingFormSet, SyncForm
from integrations.models import (
    Connection,
    DeadLetter,
    DeadLetterStatus,
    FieldMapping,
    LedgerEntry,
    Sync,
    SyncRun,
)
from integrations.models.runs import BUCKETS
from integrations.oauth import views as oauth_views
from integrations.oauth.flows import flow_for
from integrations.run_reasons import run_reasons
from mktintegration.admin_base import HiddenIs404Mixin, ObjectPermissionAdmin, ReadOnlyAdmin
from mktintegration.grants import creator_grant
from mktintegration.scheduling import cron_next, schedule_words
from mktintegration.templatetags.mkt_units import duration as human_duration


def _may(request, perm: str, obj) -> bool:
    return request.user.has_perm(perm) or request.user.has_perm(perm, obj)


def _allowed(request, queryset, perm: str, what: str):
    allowed = [obj for obj in queryset if _may(request, perm, obj)]
    refused = len(queryset) - len(allowed)
    if refused:
        messages.error(request, f"You may not {what} {refused} of the selected objects; skipped.")
    return allowed


@admin.register(Connection)
class ConnectionAdmin(ObjectPermissionAdmin):
    form = ConnectionForm
    change_form_template = "admin/integrations/connection/change_form.html"
    list_display = ("name", "vendor", "auth_kind", "status", "last_checked_at", "regions")
    list_filter = ("vendor", "status")
    search_fields = ("name",)
    readonly_fields = (
        "status",
        "last_error",
        "last_checked_at",
        "oauth",
        "created_at",
        "updated_at",
        "webhook_receiver",
    )
    actions = ["test_connections"]

    def get_urls(self):
        def view(function, route, name):
            wrapped = self.admin_site.admin_view(partial(function, model_admin=self))
            return path(route, wrapped, name=f"integrations_connection_{name}")

        return [
            view(oauth_views.callback, "oauth/<str:vendor>/callback/", "oauth_callback"),
            view(oauth_views.connect, "<path:object_id>/connect/", "connect"),
            view(oauth_views.disconnect, "<path:object_id>/disconnect/", "disconnect"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is None:
            return super().render_change_form(request, context, add, change, form_url, obj)
        context.update(oauth_views.change_form_context(request, obj))
        response = super().render_change_form(request, context, add, change, form_url, obj)
        if context.get("may_connect"):  # its Connect button posts to the vendor's consent page
            response = oauth_views.allow_consent_redirect(request, obj, response)
        return response

    @admin.display(description="OAuth")
    def oauth(self, obj):
        return oauth_views.grant_summary(obj)

    @staticmethod
    def may_edit_credentials(request) -> bool:
        # Credentials are for Integration Admins (the model-level change permission).
        return request.user.has_perm("integrations.change_connection")

    @admin.display(description="regions")
    def regions(self, obj):
        return ", ".join(obj.allowed_regions or []) or "all"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        may_edit_credentials = self.may_edit_credentials(request)

        class Form(form):
            def __init__(self, *args, **inner):
                super().__init__(*args, can_edit_credentials=may_edit_credentials, **inner)

        return Form

    def get_fields(self, request, obj=None):
        # Who may edit credentials gets the write-only inputs; anyone else sees only whether
        # each secret of the connection's auth kind is stored.
        if self.may_edit_credentials(request):
            secrets = [*self._secret_fields(), "clear_credentials"]
        else:
            secrets = ["credentials"]
        shown = [f for f in self.readonly_fields if f != "oauth" or (obj and flow_for(obj))]
        return [*ConnectionForm.Meta.fields, *secrets, *shown]

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "credentials")

    @admin.display(description="webhook receiver")
    def webhook_receiver(self, obj):
        from integrations.webhooks.admin import receiver_html

        return receiver_html(obj)

    @admin.display(description="credentials")
    def credentials(self, obj):
        from integrations.forms import credentials_status

        return credentials_status(obj)

    @staticmethod
    def _secret_fields():
        from integrations.forms import _secret_names

        return _secret_names()

    def save_model(self, request, obj, form, change):
        # Saved through the credentials service (integrations.credentials), not obj.save().
        if not change:
            obj.owner = request.user
        form.save_credentials(obj, user=request.user)
        if not change:
            creator_grant(obj=obj, user=request.user)

    def has_test_permission(self, request) -> bool:
        return self.has_granted_permission(request, "test_connection")

    @admin.action(description="Test connection", permissions=["test"])
    def test_connections(self, request, queryset):
        for connection in _allowed(request, queryset, "integrations.test_connection", "test"):
            ok, message = services.connection_test(connection=connection)
            level = messages.SUCCESS if ok else messages.ERROR
            self.message_user(request, f"{connection.name}: {message}", level)


class FieldMappingInline(admin.TabularInline):
    model = FieldMapping
    form = FieldMappingForm
    formset = MappingFormSet
    extra = 1

    class Media:
        js = ("mktintegration/mapping_editor.js",)

    def get_formset(self, request, obj=None, **kwargs):
        """The rows pick from the mapping editor's lists as this user may see them (examples
        of the dataset's values: integrations.mapping_widgets)."""
        formset = super().get_formset(request, obj, **kwargs)
        sync_admin = self.admin_site._registry[Sync]
        may_change = (
            sync_admin.has_change_permission(request, obj)
            if obj is not None
            else sync_admin.has_add_permission(request)
        )
        attrs = {"editor_request": request, "editor_may_change": may_change}
        return type(formset.__name__, (formset,), attrs)


@admin.register(Sync)
class SyncAdmin(ObjectPermissionAdmin):
    form = SyncForm
    inlines = [FieldMappingInline]
    # What a manager scans for, in a width that fits 1366 px (the mode is on the sync's page).
    list_display = (
        "name",
        "connection",
        "sends",
        "schedule",
        "state",
        "last_run",
        "next_run",
        "failures",
    )
    list_filter = ("mode", "enabled", "paused", "dataset", "connection__vendor")
    search_fields = ("name",)
    readonly_fields = (
        "schedule_summary",
        "paused",
        "pause_reason",
        "config_version",
        "source_watermark",
        "quota_resume_at",
        "created_at",
        "updated_at",
    )
    actions = ["preview", "run_now", "pause", "resume", "replay_dead_letters"]
    change_form_template = "admin/integrations/sync/change_form.html"

    def get_queryset(self, request):
        return sync_list.sync_list_annotate(super().get_queryset(request)).select_related(
            "connection"
        )

    def get_changelist(self, request, **kwargs):
        return sync_list.SyncChangeList

    def get_urls(self):
        # Record history: any user who may see a sync (managers lack view_ledgerentry).
        view = partial(record_history.record_history_view, model_admin=self)
        history = path(
            "record-history/",
            self.admin_site.admin_view(view),
            name="integrations_sync_record_history",
        )
        # Test on one record: who may preview the sync (integrations.record_test).
        test_record = path(
            "<path:object_id>/test-record/",
            self.admin_site.admin_view(partial(record_test.record_test_view, model_admin=self)),
            name="integrations_sync_test_record",
        )
        # The sync editor's count of matching records (integrations.sync_editor).
        count = path(
            "filter-count/",
            self.admin_site.admin_view(partial(sync_editor.filter_count_view, model_admin=self)),
            name="integrations_sync_filter_count",
        )
        return [history, test_record, count, *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["may_preview"] = _may(request, "integrations.preview_sync", obj)
            context["may_run"] = _may(request, "integrations.run_sync", obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        editable = (
            self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        )
        if editable and "form" not in kwargs:  # filters and destination settings as fields
            kwargs["form"] = sync_editor.editor_form(
                self.form, request=request, sync=obj, admin_site=self.admin_site
            )
        form = super().get_form(request, obj, change, **kwargs)
        perm = "integrations.override_guardrails"
        may_loosen = request.user.has_perm(perm) or (obj and request.user.has_perm(perm, obj))
        if not may_loosen and "mirror_max_delete_share" in form.base_fields:
            field = form.base_fields["mirror_max_delete_share"]
            field.disabled = True
            field.help_text += " Changing it needs the override-guardrails permission."
        return form

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "connection" and not request.user.has_perm(
            "integrations.view_connection"
        ):
            # Only connections the user holds a grant on may be picked.
            kwargs["queryset"] = get_objects_for_user(
                request.user,
                ["integrations.view_connection", "integrations.change_connection"],
                klass=Connection,
                any_perm=True,
                accept_global_perms=False,
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="schedule")
    def schedule(self, obj):
        return schedule_words(cron=obj.cron, every_minutes=obj.every_minutes)

    def get_fields(self, request, obj=None):
        """The schedule in words right under the cron and the interval it reads."""
        fields = [f for f in super().get_fields(request, obj) if f != "schedule_summary"]
        at = fields.index("every_minutes") + 1 if "every_minutes" in fields else len(fields)
        return [*fields[:at], "schedule_summary", *fields[at:]]

    @admin.display(description="schedule in words")
    def schedule_summary(self, obj):
        """What the cron or interval means, and when the next runs are."""
        if obj is None or not obj.pk:
            return "-"
        words = schedule_words(cron=obj.cron, every_minutes=obj.every_minutes)
        if not obj.enabled or obj.paused:
            return f"{words} (not running: the sync is {'paused' if obj.paused else 'disabled'})"
        now = timezone.now()
        if obj.cron:
            times = cron_next(obj.cron, after=now)
        elif obj.every_minutes:
            task = PeriodicTask.objects.filter(name=obj.periodic_task_name).first()
            start = task.last_run_at if task and task.last_run_at else now
            try:  # a stored interval out of range says so elsewhere; here only the words
                step = timedelta(minutes=obj.every_minutes)
                behind = max(now - start, timedelta(0)) // step + 1  # intervals since start
                times = [start + step * (behind + i) for i in range(3)]
            except (OverflowError, ValueError):
                return words
        else:
            return words
        if not times:
            return f"{words}; it never fires"
        shown = ", ".join(f"{t:%a %Y-%m-%d %H:%M}" for t in times)
        return f"{words}. Next runs: {shown} UTC"

    @admin.display(description="sends", ordering="dataset")
    def sends(self, obj):
        return f"{obj.dataset} → {obj.destination_object}"

    @admin.display(description="state")
    def state(self, obj):
        return sync_list.state_text(obj)

    @admin.display(description="last run", ordering="-last_run_at")
    def last_run(self, obj):
        return sync_list.last_run_html(obj, now=timezone.now())

    @admin.display(description="next run")
    def next_run(self, obj):
        return sync_list.next_run_text(obj, now=timezone.now())

    @admin.display(description="failures", ordering="-open_letters")
    def failures(self, obj):
        """Open dead letters, linked to them for who may view dead letters."""
        return sync_list.failures_html(obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.owner = request.user
        super().save_model(request, obj, form, change)  # a new sync is granted to its creator

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        sync = form.instance
        if change:
            Sync.objects.filter(pk=sync.pk).update(config_version=sync.config_version + 1)
        services.sync_schedule_apply(sync=sync)
        for warning in services.sync_filter_warnings(sync=sync):
            self.message_user(request, f"{sync.name}: {warning}", messages.WARNING)

    def delete_model(self, request, obj):
        services.sync_delete(sync=obj)

    def delete_queryset(self, request, queryset):
        for sync in queryset:
            services.sync_delete(sync=sync)

    def get_deleted_objects(self, objs, request):
        # Counts instead of Django's list of every related row (a ledger may hold millions).
        syncs = list(objs)
        allowed = all(self.has_delete_permission(request, sync) for sync in syncs)
        summary = services.sync_delete_summary(syncs)
        return [str(sync) for sync in syncs], summary, set() if allowed else {"sync"}, []

    # --- actions -----------------------------------------------------------------------------
    # Each action is offered to holders of its permission (model level or on some sync).
    def has_preview_permission(self, request) -> bool:
        return self.has_granted_permission(request, "preview_sync")

    def has_run_permission(self, request) -> bool:
        return self.has_granted_permission(request, "run_sync")

    def has_pause_permission(self, request) -> bool:
        return self.has_granted_permission(request, "pause_sync")

    def has_replay_permission(self, request) -> bool:
        return self.has_granted_permission(request, "replay_deadletters")

    @admin.action(description="Preview (plan only, nothing sent)", permissions=["preview"])
    def preview(self, request, queryset):
        syncs = _allowed(request, queryset, "integrations.preview_sync", "preview")
        address = client_address(request)
        for sync in set(queryset) - set(syncs):
            preview_refused_log(sync=sync, user=request.user, client_address=address)
        previews = []
        for sync in syncs:
            try:
                previews.append(
                    services.sync_preview(sync=sync, user=request.user, client_address=address)
                )
            except (ValidationError, KeyError, ValueError) as exc:
                self.message_user(request, f"{sync.name}: cannot plan: {exc}", messages.ERROR)
                continue
            for warning in services.sync_filter_warnings(sync=sync):
                self.message_user(request, f"{sync.name}: {warning}", messages.WARNING)
        if not previews:
            return None
        return TemplateResponse(
            request,
            "admin/integrations/sync/preview.html",
            {
                **self.admin_site.each_context(request),
                "title": "Sync preview",
                "opts": self.model._meta,
                "previews": [
                    (p, [(b, getattr(p, b)) for b in BUCKETS if getattr(p, b)]) for p in previews
                ],
            },
        )

    @admin.action(description="Run now", permissions=["run"])
    def run_now(self, request, queryset):
        for sync in _allowed(request, queryset, "integrations.run_sync", "run"):
            try:
                run = services.sync_run_start(sync=sync, trigger="manual", user=request.user)
                url = reverse("admin:integrations_syncrun_change", args=[run.pk])
                self.message_user(
                    request,
                    format_html('{}: <a href="{}">run {}</a> queued.', sync.name, url, run.pk),
                )
            except services.SyncBusy as busy:
                self.message_user(request, f"{sync.name}: {busy}", messages.WARNING)

    @admin.action(description="Pause", permissions=["pause"])
    def pause(self, request, queryset):
        for sync in _allowed(request, queryset, "integrations.pause_sync", "pause"):
            services.sync_set_paused(sync=sync, paused=True, reason=f"paused by {request.user}")
            self.message_user(request, f"{sync.name}: paused.")

    @admin.action(description="Resume", permissions=["pause"])
    def resume(self, request, queryset):
        for sync in _allowed(request, queryset, "integrations.pause_sync", "resume"):
            services.sync_set_paused(sync=sync, paused=False)
            self.message_user(request, f"{sync.name}: resumed.")

    @admin.action(description="Replay dead letters", permissions=["replay"])
    def replay_dead_letters(self, request, queryset):
        for sync in _allowed(request, queryset, "integrations.replay_deadletters", "replay"):
            count, run = services.deadletters_replay(sync=sync, user=request.user)
            if run is None:
                self.message_user(
                    request, f"{sync.name}: {count} dead letters replayed (next run)."
                )
                continue
            url = reverse("admin:integrations_syncrun_change", args=[run.pk])
            self.message_user(
                request,
                format_html(
                    '{}: {} dead letters replayed in <a href="{}">run {}</a>.',
                    sync.name,
                    count,
                    url,
                    run.pk,
                ),
            )


def _visible_syncs(request):
    return get_objects_for_user(
        request.user,
        ["integrations.view_sync", "integrations.change_sync"],
        klass=Sync,
        any_perm=True,
        accept_global_perms=True,
    )


class GrantedSyncRowsMixin:
    """Rows of a sync (runs, dead letters): all of them for who may view every sync, else
    those of the syncs granted to the user."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.has_perm("integrations.view_sync"):
            return queryset
        return queryset.filter(sync__in=_visible_syncs(request))


@admin.register(SyncRun)
class SyncRunAdmin(GrantedSyncRowsMixin, HiddenIs404Mixin, ReadOnlyAdmin):
    # What a manager scans for, in a width that fits 1366 px; every bucket is on the run's page.
    list_display = (
        "id",
        "sync",
        "status",
        "trigger",
        "queued_at",
        "duration",
        "progress",
        "planned",
        "sent",
        "problems",
    )
    list_filter = ("status", "trigger")
    search_fields = ("sync__name",)
    ordering = ("-queued_at",)
    list_select_related = ("sync",)
    exclude = ("preview",)
    readonly_fields = ("reasons",)
    change_form_template = "admin/integrations/syncrun/change_form.html"

    def get_urls(self):
        replay = path(
            "<path:object_id>/replay/",
            self.admin_site.admin_view(self.replay_view),
            name="integrations_syncrun_replay",
        )
        return [replay, *super().get_urls()]

    def _open_letters(self, obj):
        return DeadLetter.objects.filter(run=obj, status=DeadLetterStatus.OPEN)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["run_summary"] = run_progress.summary(obj, now=timezone.now())
            may = _may(request, "integrations.replay_deadletters", obj.sync)
            context["replayable"] = self._open_letters(obj).count() if may else 0
        return super().render_change_form(request, context, add, change, form_url, obj)

    def replay_view(self, request, object_id):
        """POST: this run's open dead letters sent again in a new run (the dead letters'
        replay, with its permission on the run's sync)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = self.get_object(request, unquote(object_id))
        if run is None or not self.has_view_permission(request, run):
            raise Http404("No sync run with that id is visible to you.")
        if not _may(request, "integrations.replay_deadletters", run.sync):
            raise PermissionDenied
        ids = list(self._open_letters(run).values_list("pk", flat=True))
        count, replay = services.deadletters_replay(sync=run.sync, user=request.user, ids=ids)
        name = run.sync.name
        if not count:
            self.message_user(request, f"{name}: no open dead letters left to replay.")
        elif replay is None:  # a run is active: its successor plans them
            self.message_user(request, f"{name}: {count} dead letters replayed (next run).")
        else:
            self.message_user(request, f"{name}: {count} dead letters replayed.")
        return redirect("admin:integrations_syncrun_change", (replay or run).pk)

    def get_fields(self, request, obj=None):
        """Why records were not sent, first: what a manager opens a run page for."""
        fields = [f for f in super().get_fields(request, obj) if f != "reasons"]
        return ["reasons", *fields]

    @admin.display(description="why records were not sent")
    def reasons(self, obj):
        found = run_reasons(obj)
        if not found:
            return "-"
        sync_url = reverse("admin:integrations_sync_change", args=[obj.sync_id])
        items = []
        for reason in found:
            fix = ""
            if reason.field:
                fix = format_html(
                    ' — <a href="{}#mappings-group">mapping {} → {}</a>',
                    sync_url,
                    reason.source,
                    reason.field,
                )
            count = f"{reason.count:,}"
            items.append(format_html("<li>{} &times; {}{}</li>", count, reason.example, fix))
        return format_html("<ul>{}</ul>", format_html_join("", "{}", ((i,) for i in items)))

    @admin.display(description="duration")
    def duration(self, obj):
        if obj.started_at is None:
            return "-"
        end = obj.finished_at or timezone.now()
        return human_duration((end - obj.started_at).total_seconds())

    @admin.display(description="progress")
    def progress(self, obj):
        if not obj.batches_total:
            return "-"
        return f"{obj.batches_done} of {obj.batches_total} batches"

    @admin.display(description="sent")
    def sent(self, obj):
        """Records the destination confirmed: created, updated, archived."""
        return obj.created + obj.updated + obj.deleted

    @admin.display(description="problems")
    def problems(self, obj):
        parts = [
            f"{count:,} {label}"
            for count, label in (
                (obj.dead_lettered, "dead-lettered"),
                (obj.failed, "failed"),
                (obj.rejected, "rejected"),
                (obj.invalid, "invalid"),
                (obj.blocked, "blocked"),
                (obj.deferred, "deferred"),
            )
            if count
        ]
        return ", ".join(parts) or "-"


@admin.register(DeadLetter)
class DeadLetterAdmin(
    GrantedSyncRowsMixin, HiddenIs404Mixin, AccessLoggedAdminMixin, ReadOnlyAdmin
):
    # A dead letter's page shows its payload (personal data): each view is access-logged, and
    # the payload only to who may export the sync's dataset. Managers see the letters of the
    # syncs granted to them (the reason, to fix the mapping), an id outside them is a 404.
    access_log_dataset = "integrations:deadletter"
    access_log_changelist = False
    list_display = ("id", "sync", "record_key", "error", "attempts", "status", "created_at")
    list_filter = ("status", "sync")
    search_fields = ("=record_key", "error")
    ordering = ("-created_at",)
    list_select_related = ("sync",)
    actions = ["replay"]

    def get_fields(self, request, obj=None):
        """The payload to who may export the sync's dataset; to anyone else, a line saying
        why it is not shown (worked out per request: the admin is shared by every request)."""
        fields = [f for f in super().get_fields(request, obj) if f != "payload_hidden"]
        if obj is not None and not self._may_see_payload(request.user, obj):
            fields = [f if f != "payload" else "payload_hidden" for f in fields]
        return fields

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "payload_hidden"]

    @staticmethod
    def _payload_permission(obj) -> str:
        from exports.datasets import DATASETS

        dataset = DATASETS.get(obj.sync.dataset)
        return dataset.permission if dataset else "integrations.view_sync"

    def _may_see_payload(self, user, obj) -> bool:
        return user.has_perm(self._payload_permission(obj))

    @admin.display(description="payload")
    def payload_hidden(self, obj):
        return (
            f"hidden: the {obj.sync.dataset} dataset's values are shown to who may export it "
            f"({self._payload_permission(obj)})"
        )

    def has_replay_permission(self, request) -> bool:
        user = request.user
        return user.has_perm("integrations.replay_deadletters") or (
            get_objects_for_user(
                user, "integrations.replay_deadletters", klass=Sync, accept_global_perms=False
            ).exists()
        )

    def access_log_object(self, request, obj):
        shown = isinstance(obj.payload, dict) and self._may_see_payload(request.user, obj)
        return {
            "fields": sorted(obj.payload) if shown else [],
            "detail": f"ids: {obj.pk}; sync {obj.sync_id} ({obj.sync.dataset}), record "
            f"{obj.record_key}",
        }

    @admin.action(description="Replay selected dead letters", permissions=["replay"])
    def replay(self, request, queryset):
        open_letters = queryset.filter(status=DeadLetterStatus.OPEN).select_related("sync")
        by_sync: dict[Sync, list[int]] = {}
        for letter in open_letters:
            by_sync.setdefault(letter.sync, []).append(letter.pk)
        for sync, ids in by_sync.items():
            if not _may(request, "integrations.replay_deadletters", sync):
                self.message_user(request, f"{sync.name}: you may not replay.", messages.ERROR)
                continue
            count, _ = services.deadletters_replay(sync=sync, user=request.user, ids=ids)
            self.message_user(request, f"{sync.name}: {count} replayed.")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(GrantedSyncRowsMixin, ReadOnlyAdmin):
    list_display = (
        "sync",
        "record_key",
        "status",
        "destination_id",
        "created_by_sync",
        "attempts",
        "last_error",
        "synced_at",
    )
    list_filter = ("status", "created_by_sync", "consent_source")
    search_fields = ("=record_key", "=destination_id", "=match_value")
    list_select_related = ("sync",)
    ordering = ("sync", "record_key")
    readonly_fields = ("consent_decision",)
    fieldsets = (
        (
            None,
            {
                "fields": [
                    f.name
                    for f in LedgerEntry._meta.fields
                    if f.name != "id" and not f.name.startswith("consent_")
                ]
            },
        ),
        (
            "Consent evidence of the latest send",
            {
                "fields": (
                    "consent_decision",
                    "consent_source",
                    "consent_ref",
                    "consent_checked_at",
                )
            },
        ),
    )

    @admin.display(description="consent decision")
    def consent_decision(self, obj):
        return consent_decision_html(obj)
