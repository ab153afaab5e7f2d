"""Real-time syncs: the records waiting for a micro-run, and how long each one took."""

from __future__ import annotations

from django.db import models

from integrations.models.runs import SyncRun
from integrations.models.syncs import Sync


class RealtimePending(models.Model):
    """A record of a real-time sync that changed and waits for its run. One row per record:
    later changes of a waiting record are coalesced into it (the earliest time is kept)."""

    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="+", db_index=False)
    record_key = models.CharField(max_length=64)
    event_at = models.DateTimeField(help_text="When its earliest waiting change happened.")
    id = models.BigAutoField(primary_key=True)

    class Meta:
        # POST /marketing/events: telling real-time syncs that backbone records changed.
        permissions = [("announce_changes", "Can announce backbone changes to real-time syncs")]
        constraints = [
            models.UniqueConstraint(fields=["sync", "record_key"], name="realtime_pending_unique")
        ]
        indexes = [models.Index(fields=["sync", "event_at"], name="realtime_pending_age_idx")]

    def __str__(self):
        return f"record {self.record_key} of sync {self.sync_id}, changed {self.event_at}"


class RealtimeLag(models.Model):
    """A record a real-time run delivered: from its change to the destination's answer."""

    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="+", db_index=False)
    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="+", db_index=False)
    record_key = models.CharField(max_length=64)
    event_at = models.DateTimeField()
    confirmed_at = models.DateTimeField()
    seconds = models.FloatField()
    id = models.BigAutoField(primary_key=True)

    class Meta:
        indexes = [models.Index(fields=["sync", "confirmed_at"], name="realtime_lag_time_idx")]

    def __str__(self):
        return f"record {self.record_key}: {self.seconds:.1f} s"
