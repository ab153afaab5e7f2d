"""The ledger: per sync and source record, what the destination has confirmed.

``payload_hash`` is written only after the destination confirmed that payload; until then
the entry is pending (or failed) and is planned again on every run. ``plan_hash`` also
covers the gate's inputs (consent, region), so a record skipped for them is reconsidered
when they change.
"""

from __future__ import annotations

from django.db import models

from integrations.models.syncs import Sync


class LedgerStatus(models.TextChoices):
    PENDING = "pending", "Planned, not yet confirmed"
    INTENT_CREATE = "intent_create", "Create sent, not yet confirmed"
    SYNCED = "synced", "Confirmed by the destination"
    FAILED = "failed", "Failed; planned again next run"
    SKIPPED = "skipped", "Not sent (invalid, suppressed or blocked)"
    DEAD = "dead", "Dead-lettered"
    DELETED = "deleted", "Archived at the destination"


class LedgerEntry(models.Model):
    # No index of its own: the (sync, record_key) unique index serves lookups by sync, and a
    # lone sync_id index tempts the planner into filtering a whole sync's rows. No database
    # foreign key either: a first plan writes a million rows, and a per-row trigger check of
    # the same sync costs more than the rest of the write. Deleting a sync removes its ledger
    # (integrations.services.sync_delete), and Django cascades as usual.
    sync = models.ForeignKey(
        Sync, on_delete=models.CASCADE, related_name="ledger", db_index=False, db_constraint=False
    )
    record_key = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=LedgerStatus.choices)
    payload_hash = models.CharField(max_length=64, blank=True)
    sent_hash = models.CharField(
        max_length=64, blank=True, help_text="The payload sent and not yet confirmed."
    )
    plan_hash = models.CharField(max_length=64, blank=True)
    destination_id = models.CharField(max_length=100, blank=True)
    # As the destination compares it (Connector.match_key: e-mails lower-cased).
    match_value = models.CharField(max_length=255, blank=True)
    created_by_sync = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=64, blank=True)
    # When a write that may create this record was first sent. A later answer "updated" for a
    # record created after this moment (the vendor's own creation time) was created by us: its
    # first answer was lost (a crash), not the record pre-existing.
    intent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    # The consent decision that allowed the latest send (consent-gated syncs): the adapter it
    # came from, its evidence (the ConsentRecord id, or the consent service's version) and
    # when it was checked. Written with the send, kept when a later run does not send.
    consent_source = models.CharField(max_length=8, blank=True)
    consent_ref = models.CharField(
        "consent reference",
        max_length=100,
        blank=True,
        help_text="The consent record id (local table) or the consent service's version.",
    )
    consent_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(fields=["sync", "record_key"], name="ledger_unique_record"),
        ]
        indexes = [
            models.Index(fields=["sync", "status"], name="ledger_status_idx"),
            models.Index(fields=["sync", "match_value"], name="ledger_match_idx"),
        ]

    def __str__(self):
        return f"Record {self.record_key} of {self.sync.name}"


class DeadLetterStatus(models.TextChoices):
    OPEN = "open", "Open"
    REPLAYED = "replayed", "Replayed"
    DISCARDED = "discarded", "Discarded"


class DeadLetter(models.Model):
    """A record the destination refused for good (or that exhausted its attempts)."""

    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="dead_letters")
    entry = models.ForeignKey(LedgerEntry, on_delete=models.CASCADE, related_name="dead_letters")
    run = models.ForeignKey(
        "integrations.SyncRun", on_delete=models.SET_NULL, null=True, blank=True
    )
    record_key = models.CharField(max_length=100)
    payload = models.JSONField(
        default=dict, help_text="What was sent (personal data: admins only)."
    )
    error = models.TextField()
    error_code = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=16, choices=DeadLetterStatus.choices, default=DeadLetterStatus.OPEN
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        "mktintegration.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["sync", "status"], name="deadletter_status_idx")]

    def __str__(self):
        return f"Record {self.record_key} of {self.sync.name}"


class ConsentEvidence(LedgerEntry):
    """The ledger seen from the auditor's side: which consent decision allowed each record's
    latest send (source, reference, checked at), without the payload or the match value."""

    class Meta:
        proxy = True
        verbose_name = "consent evidence"
        verbose_name_plural = "consent evidence"
        permissions = [("download_consentevidence", "Can download consent evidence")]
