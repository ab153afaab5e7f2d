"""The operations dashboard in the admin index, alert recipients, and the alert history."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.template.response import TemplateResponse
from django.urls import path

from integrations.operations.dashboard import dashboard_context
from integrations.operations.models import Alert, AlertRecipients, AlertState, Dashboard
from mktintegration import bounds
from mktintegration.admin_base import ReadOnlyAdmin


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    """No table behind it: its change list is the dashboard page."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("operations.view_dashboard")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.dashboard_view), name=name)]

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Integrations dashboard",
            "opts": self.opts,
            **dashboard_context(request.user),
        }
        return TemplateResponse(request, "operations/dashboard.html", context)


class AlertRecipientsForm(forms.ModelForm):
    class Meta:
        model = AlertRecipients
        fields = ["connection", "sync", "export_schedule", "emails"]

    def clean_emails(self):
        emails = self.cleaned_data["emails"]
        if not isinstance(emails, list):
            raise ValidationError('a JSON list of addresses, e.g. ["ops@example.com"]')
        if len(emails) > bounds.ALERT_EMAILS:
            raise ValidationError(f"at most {bounds.ALERT_EMAILS} addresses (got {len(emails)})")
        for email in emails:
            try:
                validate_email(email)
            except ValidationError:
                raise ValidationError(f"{email!r} is not an e-mail address") from None
        return emails

    def clean(self):
        cleaned = super().clean()
        chosen = [n for n in ("connection", "sync", "export_schedule") if cleaned.get(n)]
        if len(chosen) != 1:
            raise ValidationError("choose exactly one connection, sync or export schedule")
        return cleaned


@admin.register(AlertRecipients)
class AlertRecipientsAdmin(admin.ModelAdmin):
    form = AlertRecipientsForm
    list_display = ("__str__", "emails")
    raw_id_fields = ("connection", "sync", "export_schedule")


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "subject", "status", "attempts", "sent_at")
    list_filter = ("kind", "status")
    search_fields = ("subject", "key")
    ordering = ("-created_at",)


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin):
    list_display = ("key", "state", "alerting", "changed_at", "detail")
    search_fields = ("key",)
    ordering = ("key",)
