"""The backbone in the admin: browse, search and filter; never edit.

Pages of personal data (contacts, their activity and consent records) are access-logged: one
row per list or object page viewed (audit.pages).
"""

from django.contrib import admin
from django.db.models import Count, Q

from audit.pages import AccessLoggedAdminMixin
from exports.backbone.models import (
    ActivityEvent,
    Company,
    CompanyMetrics,
    ConsentRecord,
    Contact,
    MetricsRefresh,
    Segment,
)
from mktintegration.admin_base import CachedValuesListFilter, ReadOnlyAdmin


@admin.register(Company)
class CompanyAdmin(ReadOnlyAdmin):
    list_display = (
        "external_id",
        "name",
        "domain",
        "industry",
        "country",
        "residency_region",
        "lifecycle_stage",
        "is_customer",
        "updated_at",
    )
    list_filter = (
        "lifecycle_stage",
        "is_customer",
        "residency_region",
        ("industry", CachedValuesListFilter),
        ("country", CachedValuesListFilter),
    )
    search_fields = ("=external_id", "name", "domain")
    ordering = ("id",)
    date_hierarchy = None


@admin.register(Contact)
class ContactAdmin(AccessLoggedAdminMixin, ReadOnlyAdmin):
    access_log_dataset = "backbone:contact"
    list_display = ("email", "first_name", "last_name", "title", "company", "region", "updated_at")
    list_filter = ("region", ("country", CachedValuesListFilter))
    search_fields = ("=email", "last_name", "company__name")
    list_select_related = ("company",)
    raw_id_fields = ("company",)
    ordering = ("id",)


@admin.register(ActivityEvent)
class ActivityEventAdmin(AccessLoggedAdminMixin, ReadOnlyAdmin):
    access_log_dataset = "backbone:activityevent"
    list_display = ("occurred_at", "type", "company", "contact")
    list_filter = ("type",)
    search_fields = ("=company__external_id", "=contact__email")
    list_select_related = ("company", "contact")
    raw_id_fields = ("company", "contact")
    ordering = ("-occurred_at",)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(AccessLoggedAdminMixin, ReadOnlyAdmin):
    access_log_dataset = "backbone:consentrecord"
    list_display = ("recorded_at", "contact", "purpose", "channel", "status", "source")
    list_filter = ("purpose", "channel", "status", ("source", CachedValuesListFilter))
    search_fields = ("=contact__email",)
    list_select_related = ("contact",)
    raw_id_fields = ("contact",)
    ordering = ("-recorded_at",)


@admin.register(CompanyMetrics)
class CompanyMetricsAdmin(ReadOnlyAdmin):
    list_display = (
        "company",
        "health_score",
        "lead_grade",
        "lead_fit_score",
        "lead_engagement_score",
        "activity_7d",
        "activity_30d",
        "activity_90d",
        "last_activity_at",
        "updated_at",
    )
    list_filter = ("lead_grade",)
    search_fields = ("=company__external_id", "company__name")
    list_select_related = ("company",)
    raw_id_fields = ("company",)
    ordering = ("company_id",)


@admin.register(MetricsRefresh)
class MetricsRefreshAdmin(ReadOnlyAdmin):
    list_display = ("finished_at", "as_of", "companies", "changed")
    ordering = ("-finished_at",)


@admin.register(Segment)
class SegmentAdmin(ReadOnlyAdmin):
    """Segments as the segmentation engine defined them (manage.py segment_load); syncs and
    exports filter on them by key (docs/segments.md)."""

    list_display = ("key", "name", "subject", "current_members", "version", "updated_at")
    list_filter = ("subject",)
    search_fields = ("=key", "name")
    ordering = ("key",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(current=Count("members", filter=Q(members__left_at__isnull=True)))
        )

    @admin.display(description="members", ordering="current")
    def current_members(self, obj):
        return f"{obj.current:,}"
