"""The auditor's views: the access log, the outbound log and the change history (auditlog).

Read-only for everyone (superusers included); filters by actor, dataset or vendor, outcome or
status, channel and date range; a CSV download of what the filters select, itself
access-logged. ``ReadOnlyAdmin`` comes from the project's shared admin bases
(mktintegration.admin_base); nothing else of ours is imported here.
"""

from __future__ import annotations

from auditlog.admin import LogEntryAdmin
from auditlog.filters import ResourceTypeFilter
from auditlog.models import LogEntry
from django.contrib import admin

from audit.downloads import CsvDownloadAdminMixin
from audit.models import AccessLog, OutboundLog
from mktintegration.admin_base import ReadOnlyAdmin

# Filter choices come from the newest rows only, so a list of millions stays quick to open.
RECENT_ROWS_FOR_CHOICES = 10_000


def recent_values_filter(field: str, title: str):
    """A list filter on ``field`` whose choices are the values of the newest rows (plus the
    chosen one); filtering itself covers the whole log."""

    class RecentValuesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            recent = model_admin.get_queryset(request).order_by("-id")[:RECENT_ROWS_FOR_CHOICES]
            values = {value for value in recent.values_list(field, flat=True) if value != ""}
            if self.value():
                values.add(self.value())
            return [(str(value), str(value)) for value in sorted(values, key=str)]

        def queryset(self, request, queryset):
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    RecentValuesFilter.title = title
    RecentValuesFilter.__name__ = f"Recent{field.title().replace('_', '')}Filter"
    return RecentValuesFilter


@admin.register(AccessLog)
class AccessLogAdmin(CsvDownloadAdminMixin, ReadOnlyAdmin):
    download_permission = "audit.download_accesslog"
    list_display = (
        "at",
        "actor",
        "channel",
        "dataset",
        "format",
        "rows",
        "bytes",
        "duration_ms",
        "outcome",
        "status_code",
        "client_address",
    )
    list_filter = (
        recent_values_filter("actor", "actor"),
        recent_values_filter("dataset", "dataset"),
        "outcome",
        "channel",
        ("at", admin.DateFieldListFilter),
    )
    date_hierarchy = "at"
    search_fields = ("actor", "=dataset", "=token_id", "=client_address", "detail")
    readonly_fields = [f.name for f in AccessLog._meta.fields]
    csv_columns = (
        ("id", lambda r: r.pk),
        ("at", lambda r: r.at),
        ("channel", lambda r: r.channel),
        ("actor", lambda r: r.actor),
        ("user_id", lambda r: r.user_id),
        ("token_id", lambda r: r.token_id),
        ("dataset", lambda r: r.dataset),
        ("format", lambda r: r.format),
        ("filters", lambda r: r.filters),
        ("fields", lambda r: r.fields),
        ("rows", lambda r: r.rows),
        ("bytes", lambda r: r.bytes),
        ("duration_ms", lambda r: r.duration_ms),
        ("outcome", lambda r: r.outcome),
        ("status_code", lambda r: r.status_code),
        ("client_address", lambda r: r.client_address),
        ("detail", lambda r: r.detail),
        ("row_hash", lambda r: r.row_hash),
    )


@admin.register(OutboundLog)
class OutboundLogAdmin(CsvDownloadAdminMixin, ReadOnlyAdmin):
    download_permission = "audit.download_outboundlog"
    list_display = (
        "at",
        "vendor",
        "connection_id",
        "method",
        "host",
        "path",
        "status",
        "duration_ms",
        "records",
        "error",
    )
    list_filter = (
        recent_values_filter("vendor", "vendor"),
        recent_values_filter("status", "status"),
        recent_values_filter("connection_id", "connection id"),
        ("at", admin.DateFieldListFilter),
    )
    date_hierarchy = "at"
    search_fields = ("=host", "path", "=idempotency_key", "error")
    readonly_fields = [f.name for f in OutboundLog._meta.fields]
    csv_columns = (
        ("id", lambda r: r.pk),
        ("at", lambda r: r.at),
        ("connection_id", lambda r: r.connection_id),
        ("vendor", lambda r: r.vendor),
        ("method", lambda r: r.method),
        ("host", lambda r: r.host),
        ("path", lambda r: r.path),
        ("status", lambda r: r.status),
        ("duration_ms", lambda r: r.duration_ms),
        ("records", lambda r: r.records),
        ("idempotency_key", lambda r: r.idempotency_key),
        ("error", lambda r: r.error),
        ("row_hash", lambda r: r.row_hash),
    )


if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class ChangeHistoryAdmin(CsvDownloadAdminMixin, LogEntryAdmin):
    """auditlog's change history: who changed which configuration object, when, from where,
    field by field. Each object's History page links here, filtered to that object
    (``?resource_type=<content type id>&object_pk=<pk>``)."""

    download_permission = "audit.download_changehistory"
    list_display = ("created", "resource_url", "action", "msg_short", "user_url", "remote_addr")
    list_filter = (
        ("actor", admin.RelatedOnlyFieldListFilter),
        ResourceTypeFilter,
        "action",
        ("timestamp", admin.DateFieldListFilter),
    )
    search_fields = ("object_repr", "=object_pk", "actor__username", "=remote_addr", "changes")
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["created", "user_url", "remote_addr", "resource_url", "cid"]}),
        ("Changes", {"fields": ["action", "msg"]}),
    ]
    readonly_fields = ["created", "resource_url", "action", "user_url", "msg", "remote_addr"]
    csv_columns = (
        ("id", lambda e: e.pk),
        ("timestamp", lambda e: e.timestamp),
        ("actor", lambda e: e.actor.get_username() if e.actor else ""),
        ("remote_addr", lambda e: e.remote_addr),
        ("action", lambda e: e.get_action_display()),
        ("object_type", lambda e: f"{e.content_type.app_label}.{e.content_type.model}"),
        ("object_pk", lambda e: e.object_pk),
        ("object_repr", lambda e: e.object_repr),
        ("changes", lambda e: e.changes_dict),
        ("correlation_id", lambda e: e.cid),
    )

    def has_delete_permission(self, request, obj=None):
        return False  # the history is never edited, not even by cascade from the admin

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request, obj=None):
        return False
