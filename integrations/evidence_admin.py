"""Consent evidence in the admin: for each record a consent-gated sync sent, the consent
decision that allowed its latest send, browsable and downloadable as CSV by auditors
(the download is itself access-logged). No payload, match value or vendor message is shown."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from audit.downloads import CsvDownloadAdminMixin
from integrations.models.ledger import ConsentEvidence
from mktintegration.admin_base import ReadOnlyAdmin

_SOURCES = {"local": "the backbone's consent table", "http": "the consent service"}


def consent_decision_html(entry) -> str:
    """What allowed the latest send, in words; the local consent record linked."""
    if not entry.consent_source:
        return "—"
    where = _SOURCES.get(entry.consent_source, entry.consent_source)
    if entry.consent_source == "local" and entry.consent_ref.isdigit():
        url = reverse("admin:backbone_consentrecord_change", args=[entry.consent_ref])
        reference = format_html('<a href="{}">consent record {}</a>', url, entry.consent_ref)
    else:
        reference = format_html("version {}", entry.consent_ref or "?")
    return format_html(
        "{} — {}, checked {} UTC",
        where,
        reference,
        f"{entry.consent_checked_at:%Y-%m-%d %H:%M:%S}" if entry.consent_checked_at else "?",
    )


@admin.register(ConsentEvidence)
class ConsentEvidenceAdmin(CsvDownloadAdminMixin, ReadOnlyAdmin):
    download_permission = "integrations.download_consentevidence"
    list_display = (
        "sync",
        "record_key",
        "status",
        "consent_source",
        "consent_ref",
        "consent_checked_at",
        "synced_at",
    )
    list_filter = ("consent_source", "status", "sync")
    search_fields = ("=record_key", "=consent_ref")
    list_select_related = ("sync",)
    ordering = ("-consent_checked_at",)
    date_hierarchy = "consent_checked_at"
    fields = readonly_fields = (
        "sync",
        "record_key",
        "status",
        "decision",
        "consent_source",
        "consent_ref",
        "consent_checked_at",
        "synced_at",
    )
    csv_columns = (
        ("sync_id", lambda e: e.sync_id),
        ("sync", lambda e: e.sync.name),
        ("record_key", lambda e: e.record_key),
        ("status", lambda e: e.status),
        ("synced_at", lambda e: e.synced_at),
        ("consent_source", lambda e: e.consent_source),
        ("consent_reference", lambda e: e.consent_ref),
        ("consent_checked_at", lambda e: e.consent_checked_at),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(consent_source="")

    @admin.display(description="consent decision")
    def decision(self, obj):
        return consent_decision_html(obj)
