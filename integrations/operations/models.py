"""Alert recipients, alert state and history, configure-API revisions, the dashboard entry."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from mktintegration.fields import BoundedJSONField


class AlertRecipients(models.Model):
    """Who, besides the role defaults, gets the alerts of one connection, sync or schedule.

    A connection's list also gets the alerts of every sync on that connection.
    """

    connection = models.OneToOneField(
        "integrations.Connection",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alert_recipients",
    )
    sync = models.OneToOneField(
        "integrations.Sync",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alert_recipients",
    )
    export_schedule = models.OneToOneField(
        "exports.ExportSchedule",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alert_recipients",
    )
    emails = BoundedJSONField(default=list, blank=True, help_text="E-mail addresses.")

    class Meta:
        verbose_name = "alert recipients"
        verbose_name_plural = "alert recipients"
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(
                        connection__isnull=False, sync__isnull=True, export_schedule__isnull=True
                    )
                    | models.Q(
                        connection__isnull=True, sync__isnull=False, export_schedule__isnull=True
                    )
                    | models.Q(
                        connection__isnull=True, sync__isnull=True, export_schedule__isnull=False
                    )
                ),
                name="alertrecipients_one_object",
            ),
        ]

    def __str__(self):
        target = self.connection or self.sync or self.export_schedule
        return f"alert recipients of {target}"


class AlertState(models.Model):
    """The last observed state behind one alert key (``sync:12:health``). E-mails go out when
    it changes, never because it is observed again."""

    key = models.CharField(max_length=100, unique=True)
    state = models.CharField(max_length=32)
    changed_at = models.DateTimeField()
    # An alert about a bad state went out and no "recovered" one since.
    alerting = models.BooleanField(default=False)
    detail = models.CharField(max_length=500, blank=True)

    def __str__(self):
        return f"{self.key}: {self.state}"


class AlertKind(models.TextChoices):
    SYNC_FAILING = "sync_failing", "Sync failing"
    SYNC_RECOVERED = "sync_recovered", "Sync recovered"
    EXPORT_FAILING = "export_failing", "Export schedule failing"
    EXPORT_RECOVERED = "export_recovered", "Export schedule recovered"
    AUTH_FAILING = "auth_failing", "Connection credentials rejected"
    AUTH_RECOVERED = "auth_recovered", "Connection credentials accepted again"
    AUTH_EXPIRING = "auth_expiring", "Connection credentials expire soon"
    DEAD_LETTERS = "dead_letters", "Dead letters above the threshold"
    SCHEDULE_MISSED = "schedule_missed", "Scheduled run did not start"
    MIRROR_GUARD = "mirror_guard", "Mirror delete guard tripped"
    SYNC_PAUSED = "sync_paused", "Sync paused"
    VENDOR_NOTICE = "vendor_notice", "Vendor reported a problem"
    SUPPRESSION_FAILED = "suppression_failed", "Opt-out not confirmed by a destination"
    QUOTA_HIGH = "quota_high", "Daily quota mostly used"


class AlertStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Sending failed"
    SUPPRESSED = "suppressed", "Suppressed (rate limit)"
    NO_RECIPIENTS = "no_recipients", "No recipients"


class Alert(models.Model):
    """One alert: what happened, to whom it went, and whether the mail server took it."""

    key = models.CharField(max_length=100, db_index=True)
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    url = models.CharField(max_length=500, blank=True)
    recipients = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=AlertStatus.choices, default=AlertStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["key", "kind", "sent_at"], name="alert_ratelimit_idx")]

    def __str__(self):
        return f"{self.subject} ({self.status})"


class ConfigRevision(models.Model):
    """How often the configure API changed a connection's configuration (its version)."""

    connection = models.OneToOneField(
        "integrations.Connection", on_delete=models.CASCADE, related_name="config_revision"
    )
    revision = models.PositiveIntegerField(default=0)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self):
        return f"revision {self.revision} of connection {self.connection_id}"


class Dashboard(models.Model):
    """No table: the admin index entry of the operations dashboard and its permission."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_dashboard", "Can view the integrations dashboard")]
        verbose_name = "integrations dashboard"
        verbose_name_plural = "integrations dashboard"

    def __str__(self):
        return "integrations dashboard"
