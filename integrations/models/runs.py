"""Runs, their delivery batches, and the shared rate budget rows (embedded mode)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from integrations.models.syncs import Sync

BUCKETS = (
    "created",
    "updated",
    "unchanged",
    "deleted",
    "invalid",
    "suppressed",
    "blocked",
    "deferred",
    "rejected",
    "dead_lettered",
    "failed",
)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PLANNING = "planning", "Planning"
    DELIVERING = "delivering", "Delivering"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Finished with records not delivered"
    # Nothing was sent and every record that was to be is waiting for a consent answer.
    DEFERRED = "deferred", "Deferred: consent unavailable, planned again next run"
    FAILED = "failed", "Failed"
    PAUSED = "paused", "Stopped: sync paused"
    SKIPPED = "skipped", "Skipped"
    PREVIEW = "preview", "Preview (nothing sent)"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.PLANNING, RunStatus.DELIVERING)


class Trigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Run now"
    API = "api", "API"
    REPLAY = "replay", "Dead-letter replay"
    PREVIEW = "preview", "Preview"
    QUOTA = "quota", "Daily quota's next window"
    REALTIME = "realtime", "Real-time changes"


class SyncRun(models.Model):
    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    config_version = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    full_plan = models.BooleanField(default=False)
    # Real-time: the records this run was started for, with the time of each one's earliest
    # change event (record key -> ISO time). A run with targets and no full plan plans only
    # them (integrations.engine.realtime).
    targets = models.JSONField(default=dict, blank=True)
    planned = models.PositiveIntegerField(default=0)
    plan_path = models.CharField(
        max_length=200,
        blank=True,
        help_text="Where the plan gated the records: in the database (first plans) or Python.",
    )
    batches_total = models.PositiveIntegerField(default=0)
    batches_done = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)
    rate_limited = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    preview = models.JSONField(default=list, blank=True, help_text="Preview: the first payloads.")
    # One count per bucket (BUCKETS); every planned record lands in exactly one.
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    suppressed = models.PositiveIntegerField(default=0)
    blocked = models.PositiveIntegerField(default=0)
    # Not sent now, planned again on the next run: the consent service could not answer, or
    # the daily quota's next window.
    deferred = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    dead_lettered = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["sync", "queued_at"], name="syncrun_sync_time_idx")]
        constraints = [
            # Two runs of one sync never overlap: at most one is queued, planning or delivering.
            models.UniqueConstraint(
                fields=["sync"],
                condition=models.Q(status__in=["queued", "planning", "delivering"]),
                name="syncrun_one_active_per_sync",
            ),
        ]

    def __str__(self):
        # The page title, breadcrumbs and history of a run: "Run 8 of Customers to HubSpot".
        return f"Run {self.pk} of {self.sync.name}"

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in BUCKETS}


class BatchStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for a vendor job"
    DONE = "done", "Done"


class SyncBatch(models.Model):
    """Up to one task's worth of ledger entries (a few vendor requests), delivered by one task."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="batches")
    kind = models.CharField(max_length=8, default="upsert")  # upsert | delete | job
    record_keys = models.JSONField(help_text="The ledger's record keys this batch delivers.")
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.QUEUED
    )
    attempt = models.PositiveIntegerField(default=0)
    # How many times the request these records came from was refused as a whole and halved.
    splits = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True, help_text="retry or rate-limit wait")
    job_ref = models.CharField(max_length=200, blank=True)
    # Outcomes decided before a vendor job was submitted, committed with the job's results.
    pending_local = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["run", "status"], name="syncbatch_run_status_idx")]

    def __str__(self):
        return f"batch {self.pk} of run {self.run_id} ({self.status})"


class RateBucket(models.Model):
    """The shared token bucket of one connection when Redis is not configured."""

    connection = models.OneToOneField(
        "integrations.Connection", on_delete=models.CASCADE, primary_key=True
    )
    tokens = models.FloatField(default=0)
    refilled_at = models.FloatField(default=0, help_text="epoch seconds")
    blocked_until = models.FloatField(default=0, help_text="epoch seconds (Retry-After)")

    def __str__(self):
        return f"rate bucket of {self.connection_id}"


class DailyQuotaCount(models.Model):
    """The requests counted against one vendor account's daily quota when Redis is not
    configured (integrations.engine.quota): per counting slot (the day, or an hour of a
    rolling day), what the vendor last reported as the allowance, and until when the vendor
    said it is spent."""

    account = models.CharField(max_length=200, primary_key=True, help_text="<vendor>:<account>")
    slots = models.JSONField(default=dict, help_text="slot start (epoch seconds) -> requests")
    reported_limit = models.PositiveIntegerField(null=True, blank=True)
    spent_until = models.FloatField(default=0, help_text="epoch seconds")
    reported_at = models.FloatField(
        default=0, help_text="a reported quota: when the vendor's count was last read (epoch s)"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"daily quota count of {self.account}"
