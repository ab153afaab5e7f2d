"""The outbox in the admin: read-only, for who may see integration runs."""

from django.contrib import admin

from integrations.events_out.models import OutboxEvent
from mktintegration.admin_base import EstimatedCountPaginator, ReadOnlyAdmin


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "subject", "time", "state", "attempts", "last_error")
    list_filter = ("state", "type")
    search_fields = ("=event_id", "=subject")
    ordering = ("-id",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
