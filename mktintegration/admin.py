from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from mktintegration.admin_base import ReadOnlyAdmin
from mktintegration.models import User, WorkerHeartbeat

admin.site.site_header = "mktintegration"
admin.site.site_title = "mktintegration"
admin.site.index_title = "Marketing integration hub"


@admin.register(User)
class MktUserAdmin(UserAdmin):
    fieldsets = (
        *UserAdmin.fieldsets,
        ("Service account", {"fields": ("is_service_account",)}),
    )
    list_display = (*UserAdmin.list_display, "is_service_account")
    list_filter = (*UserAdmin.list_filter, "is_service_account")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("hostname", "seen_at")
    ordering = ("-seen_at",)
