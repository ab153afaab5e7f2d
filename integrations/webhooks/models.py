"""Feedback from the vendors: what they sent us (WebhookEvent, by webhook or poll), the
suppressions it caused elsewhere, the receivers' secrets and refusals, and the polls.

A WebhookEvent row is written before the vendor is answered (durable before acknowledged) and
is the evidence a consent withdrawal points to. Nothing is stored for a refused request but a
count (WebhookRefusal) and an access-log row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from integrations.connectors.feedback import FeedbackKind, RefusalReason
from integrations.models import Connection, Sync


class WebhookEndpoint(models.Model):
    """The receiver of a connection whose vendor proves itself with a secret in the URL
    (Mailchimp). Only a hash of the secret is kept; the URL with it is shown once."""

    connection = models.OneToOneField(
        Connection, on_delete=models.CASCADE, related_name="webhook_endpoint"
    )
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(default=timezone.now)
    rotated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = "webhook receiver secret"

    def __str__(self):
        return f"Receiver secret of {self.connection.name}"


class Via(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    POLL = "poll", "Poll"


class EventState(models.TextChoices):
    RECEIVED = "received", "Received, not processed yet"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Kept; nothing to do"
    FAILED = "failed", "Failed (retried)"


class WebhookEvent(models.Model):
    """One event a vendor reported, stored as received (the vendor's own words in ``payload``)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    vendor = models.CharField(max_length=32)
    via = models.CharField(max_length=8, choices=Via.choices, default=Via.WEBHOOK)
    # The vendor's event id ("id:...") or a hash of the event ("sha256:..."): one row per event.
    dedupe_key = models.CharField(max_length=128)
    event_id = models.CharField(max_length=128, blank=True, help_text="The vendor's event id.")
    vendor_event = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=32, choices=[(k.value, k.value) for k in FeedbackKind])
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    # The person: personal data, shown on the event's own (access-logged) page only.
    email = models.CharField(max_length=254, blank=True)
    subject_id = models.CharField(max_length=100, blank=True)
    contact_id = models.BigIntegerField(null=True, blank=True)
    scope = models.JSONField(default=dict, blank=True)
    all_email = models.BooleanField(default=False)
    campaign_id = models.CharField(max_length=100, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=EventState.choices, default=EventState.RECEIVED)
    outcome = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "dedupe_key"], name="webhookevent_once_per_connection"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "received_at"], name="webhookevent_state_idx"),
            models.Index(fields=["connection", "received_at"], name="webhookevent_conn_idx"),
        ]

    def __str__(self):
        return f"{self.vendor} {self.vendor_event or self.kind} ({self.pk})"


class SuppressionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DONE = "done", "Confirmed by the destination"
    FAILED = "failed", "Failed"


class Suppression(models.Model):
    """One destination that holds a person whose consent was withdrawn, opted out there: its
    own audited work (the vendor request is in the outbound log; this row says why and when the
    destination confirmed)."""

    event = models.ForeignKey(
        WebhookEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="suppressions"
    )
    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="+")
    # The destination's connection (the sync's), so one task opts out a vendor account's batch.
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    record_key = models.CharField(max_length=100, help_text="The person's record key (contact id).")
    kind = models.CharField(max_length=32, help_text="Why: the withdrawal that caused it.")
    status = models.CharField(
        max_length=16, choices=SuppressionStatus.choices, default=SuppressionStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["connection", "status"], name="suppression_due_idx"),
            models.Index(fields=["sync", "record_key"], name="suppression_record_idx"),
        ]

    def __str__(self):
        return f"Opt-out of record {self.record_key} at {self.sync.name}"


class WebhookRefusal(models.Model):
    """How many requests were refused, per vendor and reason (for /metrics); nothing else of a
    refused request is kept."""

    vendor = models.CharField(max_length=32)
    reason = models.CharField(max_length=32, choices=[(r.value, r.value) for r in RefusalReason])
    count = models.BigIntegerField(default=0)
    last_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["vendor", "reason"], name="webhookrefusal_unique"),
        ]

    def __str__(self):
        return f"{self.vendor} {self.reason}: {self.count}"


class FeedbackPoll(models.Model):
    """Feedback read from the vendor's API on a schedule (a campaign's report; later the
    contacts of vendors without webhooks): where the last read ended (``cursor``)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200, help_text='What is read, e.g. "campaign:abc123".')
    cursor = models.JSONField(default=dict, blank=True)
    poll_until = models.DateTimeField()
    next_poll_at = models.DateTimeField(db_index=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    events = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "key"], name="feedbackpoll_unique"),
        ]

    def __str__(self):
        return f"{self.key} of {self.connection.name}"
