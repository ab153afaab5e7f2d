"""Export configuration and history: per-dataset permissions, destinations, schedules, runs.

A destination holds where files go (and its credentials, only as ciphertext); a schedule
says what file to make, how often, and where to send it; every run (and every retry of it)
is one ExportRun row. Validation lives in ``clean()`` so bad config is a form error naming
the field; the work lives in ``exports.services`` and ``exports.runs``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from mktintegration import bounds
from mktintegration.fields import BoundedJSONField


class DatasetAccess(models.Model):
    """Holds the per-dataset export permissions (no table)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("export_clients", "Can export the clients dataset"),
            ("export_metrics", "Can export the metrics dataset"),
            ("export_contacts", "Can export the contacts dataset (personal data)"),
            ("override_export_limits", "Can export more rows than the role's limit"),
        ]

    def __str__(self):
        return "dataset access"


class DestinationKind(models.TextChoices):
    LOCAL = "local", "Local folder"
    SFTP = "sftp", "SFTP"
    HTTPS = "https", "HTTPS POST"


class ExportDestination(models.Model):
    """Where scheduled files go. Credentials live only in ``secret_ciphertext`` (encrypted)."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=8, choices=DestinationKind.choices)
    # local
    subdirectory = models.CharField(
        max_length=200,
        blank=True,
        help_text="Local folder: a folder under MKT_EXPORT_DIR, e.g. 'marketing/weekly'.",
    )
    retention_days = models.PositiveIntegerField(
        default=30,
        validators=bounds.RETENTION_DAYS.validators(),
        help_text="Local folder: files of a schedule older than this are deleted.",
    )
    # sftp
    host = models.CharField(max_length=255, blank=True, help_text="SFTP: host name.")
    port = models.PositiveIntegerField(
        default=22, validators=bounds.PORT.validators(), help_text="SFTP: port."
    )
    username = models.CharField(max_length=100, blank=True, help_text="SFTP: user name.")
    remote_dir = models.CharField(
        max_length=500, blank=True, help_text="SFTP: the folder files are put in ('' = home)."
    )
    host_key_fingerprint = models.CharField(
        max_length=100,
        blank=True,
        help_text="SFTP: the server's host key, 'SHA256:...' as printed by "
        "`ssh-keyscan -t ed25519 HOST | ssh-keygen -lf -`.",
    )
    # https
    url = models.URLField(
        max_length=500, blank=True, help_text="HTTPS: the URL files are POSTed to."
    )
    signature_header = models.CharField(
        max_length=100,
        default="X-Mkt-Signature",
        help_text="HTTPS: the header carrying 'sha256=<hex HMAC-SHA256 of the body>' "
        "when an HMAC secret is set.",
    )
    allowed_regions = BoundedJSONField(
        default=list,
        blank=True,
        help_text="Data-residency regions whose records may be written to this destination, "
        'e.g. ["eu"]; empty allows all (the schedule owner\'s own restriction applies too).',
    )
    # {"password": ..., "private_key": ..., "hmac_secret": ...} encrypted (mktintegration.crypto)
    secret_ciphertext = models.TextField(editable=False, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=DestinationKind.values), name="exportdest_kind_known"
            ),
            models.CheckConstraint(
                condition=models.Q(port__gte=1, port__lte=65535), name="exportdest_port_range"
            ),
            models.CheckConstraint(
                condition=models.Q(retention_days__gte=1), name="exportdest_retention_positive"
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        from exports.backbone.models import regions_validate
        from exports.destinations import destination_type

        regions_validate(self.allowed_regions or [], field="allowed_regions")
        if self.kind in DestinationKind.values:
            destination_type(self.kind).clean(self)


def _default_min_interval() -> int:
    return settings.MKT_EXPORT_MIN_INTERVAL_MINUTES


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    NDJSON = "ndjson", "NDJSON"


class ExportSchedule(models.Model):
    """A recurring file of a dataset: what (dataset, fields, filters), how often, and where."""

    name = models.CharField(max_length=100, unique=True)
    dataset = models.CharField(max_length=32)  # a key of exports.datasets.DATASETS
    fields = BoundedJSONField(
        default=list, blank=True, help_text="Empty: the dataset's default fields."
    )
    filters = BoundedJSONField(
        default=dict,
        blank=True,
        help_text='The export API\'s filters, e.g. {"country": "DE,FR", "lifecycle_stage": '
        '"customer"}.',
    )
    format = models.CharField(max_length=8, choices=ExportFormat.choices, default="csv")
    destination = models.ForeignKey(
        ExportDestination, on_delete=models.PROTECT, related_name="schedules"
    )
    cron = models.CharField(
        max_length=100,
        blank=True,
        help_text="'minute hour day-of-month month day-of-week' in UTC, e.g. '0 6 * * 1-5'.",
    )
    every_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=bounds.EVERY_MINUTES.validators(),
        help_text="Or run every this many minutes.",
    )
    incremental = models.BooleanField(
        default=False,
        help_text="Each file carries only the rows changed since the last successful run began.",
    )
    max_rows = models.PositiveIntegerField(
        default=100_000,
        validators=bounds.EXPORT_ROWS.validators(),
        help_text="A run whose result has more rows fails (nothing is truncated).",
    )
    min_interval_minutes = models.PositiveIntegerField(
        default=_default_min_interval,
        validators=bounds.EVERY_MINUTES.validators(),
        help_text="Runs of this schedule start at least this many minutes apart.",
    )
    enabled = models.BooleanField(default=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="export_schedules"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        permissions = [("run_exportschedule", "Can run an export schedule now")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(format__in=ExportFormat.values), name="exportsched_format_known"
            ),
            models.CheckConstraint(
                condition=models.Q(max_rows__gte=1), name="exportsched_max_rows_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(min_interval_minutes__gte=1),
                name="exportsched_min_interval_positive",
            ),
            models.CheckConstraint(
                condition=~(models.Q(every_minutes__isnull=False) & ~models.Q(cron="")),
                name="exportsched_cron_or_interval",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def beat_name(self) -> str:
        return f"export-schedule-{self.pk}"

    def clean(self):
        from exports.schedules import schedule_clean

        schedule_clean(self)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Run now"


class ExportRun(models.Model):
    """One run of a schedule; retries of a transient failure reuse the row (``attempt``)."""

    schedule = models.ForeignKey(ExportSchedule, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default="queued")
    trigger = models.CharField(max_length=10, choices=RunTrigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    queued_at = models.DateTimeField(default=timezone.now)
    # When a queued run should start: now, or after a retry's backoff. The reaper sends the
    # task again for a queued run long past due (a lost broker message).
    due_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True, help_text="Of the latest attempt.")
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    # What the file holds: the fields and the filters applied (with the incremental
    # updated_since), as JSON-safe values.
    fields = models.JSONField(default=list, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    rows = models.BigIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    duration_ms = models.IntegerField(default=0)
    file_name = models.CharField(max_length=255, blank=True)
    destination_result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ("-queued_at", "-id")
        indexes = [
            models.Index(fields=["schedule", "-queued_at"], name="exportrun_schedule_idx"),
            models.Index(fields=["status", "heartbeat_at"], name="exportrun_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RunStatus.values), name="exportrun_status_known"
            ),
            models.CheckConstraint(
                condition=models.Q(trigger__in=RunTrigger.values), name="exportrun_trigger_known"
            ),
        ]

    def __str__(self):
        return f"Run {self.pk} of {self.schedule.name}"
