"""Syncs: a dataset pushed to one destination object, with field mappings and a schedule."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from integrations.models.connections import Connection
from mktintegration import bounds
from mktintegration.fields import BoundedJSONField


class SyncMode(models.TextChoices):
    UPSERT = "upsert", "Upsert (create or update)"
    UPDATE_ONLY = "update_only", "Update only (never create)"
    CREATE_ONLY = "create_only", "Create only (never update)"
    MIRROR = "mirror", "Mirror (upsert, and archive what left the source)"


class Sync(models.Model):
    name = models.CharField(max_length=100, unique=True)
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="syncs")
    dataset = models.CharField(max_length=32)
    filters = BoundedJSONField(
        default=dict,
        blank=True,
        help_text='Dataset filters, as in the export API: {"country": "DE,FR"}.',
    )
    destination_object = models.CharField(max_length=64)
    destination_config = BoundedJSONField(
        default=dict, blank=True, help_text='Object settings, e.g. {"list_id": "abc123"}.'
    )
    mode = models.CharField(max_length=16, choices=SyncMode.choices, default=SyncMode.UPSERT)
    match_source_field = models.CharField(max_length=64, help_text="The dataset field to match on.")
    match_destination_field = models.CharField(
        max_length=64, help_text="The destination's unique field it matches."
    )
    consent_purpose = models.CharField(
        max_length=32,
        blank=True,
        help_text="Send only records whose latest consent for this purpose is granted "
        "(datasets with personal data must set it).",
    )
    cron = models.CharField(max_length=100, blank=True, help_text="e.g. '*/15 * * * *' (UTC)")
    every_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=bounds.EVERY_MINUTES.validators()
    )
    realtime = models.BooleanField(
        "real-time",
        default=False,
        help_text="Also send each record within seconds of its change (the schedule still "
        "runs: it retries and catches what no change announced). docs/realtime.md",
    )
    # A scheduled run found the sync busy with real-time runs: the dispatcher starts it next.
    schedule_waiting = models.BooleanField(default=False, editable=False)
    enabled = models.BooleanField(default=True)
    paused = models.BooleanField(default=False)
    pause_reason = models.TextField(blank=True)
    mirror_max_delete_share = models.FloatField(
        default=0.1,
        validators=bounds.SHARE.validators(),
        help_text="Mirror: refuse (and alert) when one run would archive more than this share "
        "of the records this sync created.",
    )
    lookback_minutes = models.PositiveIntegerField(
        default=15,
        validators=bounds.LOOKBACK_MINUTES.validators(),
        help_text="Incremental plans also re-read rows changed this long before the watermark.",
    )
    config_version = models.PositiveIntegerField(default=1, editable=False)
    planned_config_version = models.PositiveIntegerField(default=0, editable=False)
    source_watermark = models.DateTimeField(null=True, blank=True, editable=False)
    # Records were deferred by the daily quota: a run starts when its next window opens.
    quota_resume_at = models.DateTimeField(
        "deferred records go at",
        null=True,
        blank=True,
        editable=False,
        help_text="The daily quota deferred records: a run starts when its next window opens.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [
            ("run_sync", "Can run a sync now"),
            ("preview_sync", "Can preview a sync"),
            ("pause_sync", "Can pause and resume a sync"),
            ("replay_deadletters", "Can replay a sync's dead letters"),
            ("override_guardrails", "Can loosen a sync's guardrails (mirror delete share)"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(mirror_max_delete_share__gte=0, mirror_max_delete_share__lte=1),
                name="sync_mirror_share_range",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def periodic_task_name(self) -> str:
        return f"sync-{self.pk}"


class Transform(models.TextChoices):
    NONE = "", "as is"
    TEXT = "text", "text"
    LOWER = "lower", "lower case"
    UPPER = "upper", "upper case"
    TRIM = "trim", "trim spaces"
    DATE = "date", "date (YYYY-MM-DD)"
    EPOCH_MS = "epoch_ms", "epoch milliseconds"
    BOOL_TEXT = "bool_text", "true/false"
    NUMBER = "number", "number"


class FieldMapping(models.Model):
    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="mappings")
    source_field = models.CharField(max_length=64, blank=True)
    template = models.CharField(
        max_length=300, blank=True, help_text="Instead of a field: e.g. '{first_name} {last_name}'."
    )
    destination_field = models.CharField(max_length=100)
    transform = models.CharField(max_length=16, choices=Transform.choices, blank=True)
    value_map = BoundedJSONField(
        default=dict,
        blank=True,
        help_text='Source value -> destination value, e.g. {"mql": "marketingqualifiedlead"}; '
        "values not listed pass unchanged (applied before the transform).",
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("position", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["sync", "destination_field"], name="mapping_unique_target"
            ),
            models.CheckConstraint(
                condition=~models.Q(source_field="", template=""),
                name="mapping_has_source",
            ),
        ]

    def __str__(self):
        return f"{self.source_field or self.template} -> {self.destination_field}"

    def clean(self):
        from integrations.mapping import MappingError, value_map_check

        try:
            value_map_check(self.value_map)
        except MappingError as exc:
            raise ValidationError({"value_map": str(exc)}) from None
