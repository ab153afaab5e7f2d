"""The outbox: events for the analytics pipeline, written in the transaction of what they
describe (a ledger commit, the processing of vendor feedback) and delivered afterwards, at least
once, each under a stable id the sink can de-duplicate on."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"


class OutboxEvent(models.Model):
    """One CloudEvent (its attributes as columns, ``data`` as JSON) and its delivery."""

    event_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=100)
    source = models.CharField(max_length=200)
    subject = models.CharField(max_length=200, blank=True)
    time = models.DateTimeField()
    data = models.JSONField(default=dict)
    state = models.CharField(
        max_length=16, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claim = models.CharField(max_length=32, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "outbox event"
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outbox_due_idx"),
            models.Index(fields=["delivered_at"], name="outbox_delivered_idx"),
        ]

    def __str__(self):
        return f"{self.type} {self.event_id}"
