"""Feedback from vendors in the admin: received events per connection (state, outcome, errors),
the opt-outs they caused elsewhere, receiver secrets (shown once), polls and refusal counts; and
the receiver URL a connection's page shows (``receiver_html``)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from audit.pages import AccessLoggedAdminMixin
from integrations.connectors import REGISTRY
from integrations.models import Connection
from integrations.webhooks.endpoints import (
    endpoint_secret_rotate,
    needs_url_secret,
    receiver_url,
)
from integrations.webhooks.models import (
    FeedbackPoll,
    Suppression,
    SuppressionStatus,
    WebhookEndpoint,
    WebhookEvent,
    WebhookRefusal,
)
from integrations.webhooks.suppress import suppressions_retry
from mktintegration.admin_base import ReadOnlyAdmin

DOCS = "docs/webhooks.md"


def receiver_html(connection: Connection | None) -> str:
    """What a connection's page says about its receiver: the URL to paste into the vendor."""
    if connection is None or connection.pk is None:
        return "Save the connection first: its receiver URL names it."
    cls = REGISTRY.get(connection.vendor)
    if cls is None or not cls.webhook_auth:
        label = cls.label if cls else connection.vendor
        return f"{label} sends no webhooks ({DOCS})."
    events = (
        reverse("admin:webhooks_webhookevent_changelist")
        + f"?connection__id__exact={connection.pk}"
    )
    seen = format_html(' <a href="{}">Events received</a>.', events)
    if not needs_url_secret(connection):
        configured = bool(getattr(settings, f"MKT_{connection.vendor.upper()}_WEBHOOK_SECRET", ""))
        return format_html(
            "<code>{}</code><br>Paste it into {} as the webhook target URL "
            "(docs/connectors/{}.md#webhooks). Signature secret (MKT_{}_WEBHOOK_SECRET): {}.{}",
            receiver_url(connection),
            cls.label,
            connection.vendor,
            connection.vendor.upper(),
            "set" if configured else "NOT SET, requests are refused",
            seen,
        )
    endpoint = WebhookEndpoint.objects.filter(connection=connection).first()
    if endpoint is None:
        add = reverse("admin:webhooks_webhookendpoint_add") + f"?connection={connection.pk}"
        return format_html(
            '<code>{}?secret=…</code><br>No secret yet: <a href="{}">generate the receiver '
            "URL</a> (shown once), then paste it into {} (docs/connectors/{}.md#webhooks).",
            receiver_url(connection),
            add,
            cls.label,
            connection.vendor,
        )
    change = reverse("admin:webhooks_webhookendpoint_changelist")
    return format_html(
        "<code>{}?secret=…</code><br>The secret was shown once, on {} UTC; "
        '<a href="{}">rotate it</a> for a new URL (docs/connectors/{}.md#webhooks).{}',
        receiver_url(connection),
        f"{endpoint.rotated_at:%Y-%m-%d %H:%M}",
        change,
        connection.vendor,
        seen,
    )


class EndpointForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ("connection",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        vendors = [slug for slug, cls in REGISTRY.items() if cls.webhook_auth == "url_secret"]
        self.fields["connection"].queryset = Connection.objects.filter(
            vendor__in=vendors, webhook_endpoint__isnull=True
        )
        self.fields["connection"].help_text = (
            "Connections whose vendor proves itself with a secret in the URL (Mailchimp) and "
            "that have no receiver secret yet. Saving generates the secret and shows the URL "
            "once."
        )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Receiver secrets: generated here, shown once inside the receiver URL, rotated by an
    action; only a hash is stored, so no page shows one again."""

    form = EndpointForm
    list_display = ("connection", "rotated_at", "rotated_by", "created_at")
    list_select_related = ("connection", "rotated_by")
    actions = ["rotate"]

    def has_change_permission(self, request, obj=None):
        # Rotating (a list action) needs the change permission; no field is edited.
        return obj is None and super().has_change_permission(request)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("connection", "rotated_at", "rotated_by", "created_at")

    def save_model(self, request, obj, form, change):
        url = endpoint_secret_rotate(connection=form.cleaned_data["connection"], user=request.user)
        saved = WebhookEndpoint.objects.get(connection=form.cleaned_data["connection"])
        for field in saved._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding, obj._state.db = False, saved._state.db
        self._shown_once(request, obj.connection, url)

    def response_add(self, request, obj, post_url_continue=None):
        return self.response_post_save_add(request, obj)

    def _shown_once(self, request, connection, url: str) -> None:
        self.message_user(
            request,
            f"Receiver URL of {connection.name}: {url} — paste it into the vendor now. It is "
            "shown only this once: only a hash of the secret is kept.",
            messages.SUCCESS,
        )

    @admin.action(description="Rotate the secret (a new receiver URL)", permissions=["change"])
    def rotate(self, request, queryset):
        for endpoint in queryset.select_related("connection"):
            url = endpoint_secret_rotate(connection=endpoint.connection, user=request.user)
            self._shown_once(request, endpoint.connection, url)


@admin.register(WebhookEvent)
class WebhookEventAdmin(AccessLoggedAdminMixin, ReadOnlyAdmin):
    # An event's page shows its payload (an e-mail address): each view is access-logged.
    access_log_dataset = "webhooks:event"
    access_log_changelist = False
    list_display = (
        "id",
        "connection",
        "via",
        "vendor_event",
        "kind",
        "state",
        "outcome",
        "short_error",
        "received_at",
    )
    list_filter = ("state", "kind", "via", "vendor", "connection")
    search_fields = ("=event_id", "=contact_id", "=campaign_id")
    list_select_related = ("connection",)
    ordering = ("-id",)
    exclude = ("email", "payload")
    readonly_fields = ("person", "raw")

    @admin.display(description="error")
    def short_error(self, obj):
        return (obj.error[:120] + "…") if len(obj.error) > 120 else obj.error

    @admin.display(description="e-mail address")
    def person(self, obj):
        return obj.email or "-"

    @admin.display(description="payload, as the vendor sent it")
    def raw(self, obj):
        import json

        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

    def access_log_object(self, request, obj):
        return {
            "fields": ["email", "payload"],
            "detail": f"ids: {obj.pk}; connection {obj.connection_id}, contact {obj.contact_id}",
        }


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "sync",
        "record_key",
        "kind",
        "status",
        "attempts",
        "error",
        "created_at",
        "confirmed_at",
        "event_link",
    )
    list_filter = ("status", "kind", "connection")
    search_fields = ("=record_key",)
    list_select_related = ("sync",)
    ordering = ("-id",)
    actions = ["retry"]

    @admin.display(description="because of")
    def event_link(self, obj):
        if obj.event_id is None:
            return "-"
        url = reverse("admin:webhooks_webhookevent_change", args=[obj.event_id])
        return format_html('<a href="{}">event {}</a>', url, obj.event_id)

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.change_suppression")

    @admin.action(description="Retry the failed opt-outs", permissions=["retry"])
    def retry(self, request, queryset):
        ids = list(queryset.filter(status=SuppressionStatus.FAILED).values_list("pk", flat=True))
        self.message_user(request, f"{suppressions_retry(ids=ids)} opt-out(s) queued again.")


@admin.register(FeedbackPoll)
class FeedbackPollAdmin(ReadOnlyAdmin):
    list_display = ("key", "connection", "last_polled_at", "next_poll_at", "poll_until", "events")
    list_filter = ("connection",)
    list_select_related = ("connection",)


@admin.register(WebhookRefusal)
class WebhookRefusalAdmin(ReadOnlyAdmin):
    list_display = ("vendor", "reason", "count", "last_at")
    list_filter = ("vendor", "reason")
