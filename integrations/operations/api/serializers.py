"""Response shapes of the operations APIs (they document the OpenAPI schema)."""

from __future__ import annotations

from rest_framework import serializers

from integrations.models.runs import BUCKETS
from integrations.operations.status import STATES
from mktintegration import bounds
from mktintegration.api_errors import ErrorItemSerializer

BucketCounts = type(
    "BucketCounts",
    (serializers.Serializer,),
    {name: serializers.IntegerField() for name in BUCKETS},
)


class SyncRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    trigger = serializers.CharField()
    queued_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)
    planned = serializers.IntegerField(help_text="Records planned (every one lands in a bucket).")
    batches_total = serializers.IntegerField()
    batches_done = serializers.IntegerField(help_text="Progress while delivering.")
    counts = BucketCounts(help_text="Records per bucket.")
    error = serializers.CharField(allow_blank=True)


class SyncRunDetailSerializer(SyncRunSerializer):
    sync_id = serializers.IntegerField()
    sync_name = serializers.CharField()
    url = serializers.CharField()


class ExportRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    trigger = serializers.CharField()
    queued_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)
    attempt = serializers.IntegerField()
    rows = serializers.IntegerField()
    bytes = serializers.IntegerField()
    file_name = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)


class ExportRunDetailSerializer(ExportRunSerializer):
    schedule_id = serializers.IntegerField()
    schedule_name = serializers.CharField()
    url = serializers.CharField()


class _StatusBase(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=STATES)
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Why not healthy.")
    last_success_at = serializers.DateTimeField(allow_null=True)
    seconds_since_success = serializers.IntegerField(allow_null=True)
    admin_url = serializers.CharField()


class ConnectionStatusSerializer(_StatusBase):
    vendor = serializers.CharField()
    uptime_24h = serializers.FloatField(allow_null=True, help_text="% of checks that succeeded.")
    uptime_7d = serializers.FloatField(allow_null=True)
    dead_letters = serializers.IntegerField(help_text="Open dead letters of its syncs.")


class SyncStatusSerializer(_StatusBase):
    vendor = serializers.CharField()
    connection_id = serializers.IntegerField()
    schedule = serializers.CharField()
    next_run_at = serializers.DateTimeField(allow_null=True)
    last_run = SyncRunSerializer(allow_null=True, help_text="The latest finished run.")
    active_run = SyncRunSerializer(allow_null=True, help_text="A run queued or in progress.")
    runs_24h = serializers.IntegerField()
    error_rate_24h = serializers.FloatField(allow_null=True, help_text="Share of runs with errors.")
    uptime_24h = serializers.FloatField(allow_null=True, help_text="Its connection's uptime, %.")
    uptime_7d = serializers.FloatField(allow_null=True)
    dead_letters = serializers.IntegerField()
    schedule_missed_at = serializers.DateTimeField(allow_null=True)


class ExportScheduleStatusSerializer(_StatusBase):
    schedule = serializers.CharField()
    next_run_at = serializers.DateTimeField(allow_null=True)
    last_run = ExportRunSerializer(allow_null=True)
    active_run = ExportRunSerializer(allow_null=True)
    runs_24h = serializers.IntegerField()
    error_rate_24h = serializers.FloatField(allow_null=True)
    schedule_missed_at = serializers.DateTimeField(allow_null=True)


class StatusSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    connections = ConnectionStatusSerializer(many=True)
    syncs = SyncStatusSerializer(many=True)
    export_schedules = ExportScheduleStatusSerializer(many=True)


class RefusalSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = ErrorItemSerializer(
        many=True,
        required=False,
        help_text="Each change refused, by path (absent when the token lacks the scope).",
    )


class DiffEntrySerializer(serializers.Serializer):
    op = serializers.ChoiceField(choices=["create", "update", "delete"])
    path = serializers.CharField()
    object = serializers.ChoiceField(choices=["connection", "sync", "field_mapping"])
    name = serializers.CharField()
    changes = serializers.DictField(required=False, help_text='{"field": {"from": .., "to": ..}}')


class ConfigureResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="False when the document changed nothing.")
    dry_run = serializers.BooleanField()
    diff = DiffEntrySerializer(many=True)
    config = serializers.DictField(help_text="The resulting configuration (no secrets).")
    version = serializers.DictField(
        help_text='{"revision": configure revision, "audit_log_id": latest change-history id}'
    )


class RunStartedSerializer(serializers.Serializer):
    run_id = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField(help_text="GET it for the run's status and counts.")


class RunConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.ChoiceField(choices=["busy", "paused", "too_soon"])
    running_run_id = serializers.IntegerField(allow_null=True)
    url = serializers.CharField(allow_null=True)


class ReplayRequestSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(**bounds.ID.serializer_kwargs()),
        required=False,
        allow_empty=False,
        max_length=bounds.LIST_ITEMS,
        help_text="The dead letters to replay (their ids); leave out for every open one.",
    )


class ReplayedSerializer(serializers.Serializer):
    replayed = serializers.IntegerField(help_text="Dead letters sent again.")
    run_id = serializers.IntegerField(allow_null=True, help_text="The run delivering them.")
    url = serializers.CharField(allow_null=True, help_text="GET it for the run's counts.")


class SyncRunRequestSerializer(serializers.Serializer):
    full = serializers.BooleanField(
        required=False, default=False, help_text="Plan every source row, not only changes."
    )
