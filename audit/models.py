"""Append-only, hash-chained logs: every data read (AccessLog), every vendor request
(OutboundLog) and every change-history entry (ChangeHistoryLink, one per django-auditlog entry).

Rows are only ever inserted. The ORM refuses update and delete (queryset and instance), and on
PostgreSQL a trigger refuses them too (migrations 0002 and 0006). Each row stores the hash of
the row before it and its own hash over its content, and each chain's head (length, last row,
its hash) is kept apart from the rows in ChainAnchor, signed with a key the database does not
hold; so ``python manage.py verify_audit`` finds the first row that was altered or removed
behind the application's back, and rows removed from the end.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from audit.chain import row_canonical, sha256


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit row."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: update refused")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: delete refused")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: update refused")

    _raw_delete = delete


class ChainedLog(models.Model):
    """Base for the hash-chained logs. Subclasses list the fields the hash covers."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    row_hash = models.CharField(max_length=64, editable=False)

    hashed_fields: tuple[str, ...] = ()
    # Fields added after rows were written: hashed only when they differ from their default,
    # so the rows written before them still verify (and changing one is still detected).
    later_hashed_fields: tuple[str, ...] = ()
    # The chain's name in ChainAnchor and in verify_audit's report.
    chain: str = ""
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ("-id",)

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only: update refused")
        if not self.row_hash:
            raise AppendOnlyError(
                "audit rows are written through audit.services, which chains them"
            )
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only: delete refused")

    def canonical(self) -> str:
        """The row's content as canonical JSON: what the hash covers."""
        later = (
            (name, getattr(self, name))
            for name in self.later_hashed_fields
            if getattr(self, name) != self._meta.get_field(name).get_default()
        )
        return row_canonical(
            at=self.at,
            prev_hash=self.prev_hash,
            values=(*((name, getattr(self, name)) for name in self.hashed_fields), *later),
        )

    def compute_hash(self) -> str:
        return sha256(self.canonical())


class Channel(models.TextChoices):
    API = "api", "API"
    FILE = "file", "Scheduled file"
    ADMIN = "admin", "Admin page or download"
    PREVIEW = "preview", "Sync preview"
    SYNC = "sync", "Sync"


class Outcome(models.TextChoices):
    OK = "ok", "OK"
    DENIED = "denied", "Denied"
    INVALID = "invalid", "Invalid request"
    LIMITED = "limited", "Over a guardrail"
    ERROR = "error", "Error"
    ABORTED = "aborted", "Aborted by the client"


class AccessLog(ChainedLog):
    """One read of exported data: who, what, how much, and how it ended."""

    channel = models.CharField(max_length=16, choices=Channel.choices)
    actor = models.CharField(max_length=200, help_text="user:<name>, token:<id> (<user>) or system")
    user_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    token_id = models.CharField(max_length=40, blank=True)
    dataset = models.CharField(max_length=64, db_index=True)
    format = models.CharField(max_length=16, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    fields = models.JSONField(default=list, blank=True)
    rows = models.BigIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    duration_ms = models.IntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    status_code = models.IntegerField(null=True, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.TextField(blank=True)
    withheld = models.BigIntegerField(
        default=0,
        db_default=0,  # rows inserted by older code (or by hand) have withheld nothing
        help_text="Rows the read matched but the reader's regions did not allow.",
    )

    later_hashed_fields = ("withheld",)
    hashed_fields = (
        "channel",
        "actor",
        "user_id",
        "token_id",
        "dataset",
        "format",
        "filters",
        "fields",
        "rows",
        "bytes",
        "duration_ms",
        "outcome",
        "status_code",
        "client_address",
        "detail",
    )

    chain = "access"

    class Meta(ChainedLog.Meta):
        permissions = [("download_accesslog", "Can download the access log as CSV")]
        indexes = [models.Index(fields=["actor"], name="accesslog_actor_idx")]

    def __str__(self):
        return f"{self.actor} read {self.dataset} ({self.outcome}, {self.rows} rows)"


class OutboundLog(ChainedLog):
    """One request to a vendor API. Never holds personal data: no bodies, no query strings."""

    connection_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    vendor = models.CharField(max_length=32, db_index=True)
    method = models.CharField(max_length=8)
    host = models.CharField(max_length=255)
    path = models.CharField(max_length=500)
    status = models.IntegerField(null=True, blank=True)
    duration_ms = models.IntegerField(default=0)
    records = models.IntegerField(default=0)
    idempotency_key = models.CharField(max_length=128, blank=True)
    error = models.CharField(max_length=500, blank=True)

    hashed_fields = (
        "connection_id",
        "vendor",
        "method",
        "host",
        "path",
        "status",
        "duration_ms",
        "records",
        "idempotency_key",
        "error",
    )

    chain = "outbound"

    class Meta(ChainedLog.Meta):
        permissions = [("download_outboundlog", "Can download the outbound log as CSV")]

    def __str__(self):
        return f"{self.method} {self.host}{self.path} -> {self.status}"


class ChangeHistoryLink(ChainedLog):
    """The chain over django-auditlog's change history: one link per LogEntry, written in the
    same transaction as the entry when there is one (audit.services.change_history_link).

    ``entry_hash`` is the SHA-256 of the entry's content (audit.chain.ENTRY_FIELDS), so editing
    an entry no longer matches its link, and removing one leaves a link without its entry.
    ``actor_id`` and ``actor`` are the actor as recorded (deleting a user empties the entry's
    actor; the link still names them).
    """

    entry_id = models.BigIntegerField(unique=True)
    entry_hash = models.CharField(max_length=64)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True)

    hashed_fields = ("entry_id", "entry_hash", "actor_id", "actor")
    chain = "change history"

    class Meta(ChainedLog.Meta):
        default_permissions = ()

    def __str__(self):
        return f"change history entry {self.entry_id}"


class ChainAnchor(models.Model):
    """The signed head of one chain, kept apart from its rows: how many rows the chain has,
    the last one's id and hash, and an HMAC over them under ``settings.MKT_AUDIT_KEYS``.

    Updated in the same transaction as every append (one UPSERT). Rows removed from the end
    leave the chain shorter than its anchor; someone who can write the database but does not
    hold the key cannot sign a new head (see docs/security.md, "What the chains prove").
    """

    chain = models.CharField(max_length=32, primary_key=True)
    length = models.BigIntegerField()
    last_id = models.BigIntegerField()
    last_hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=64)

    class Meta:
        default_permissions = ()

    def __str__(self):
        return f"{self.chain}: {self.length} rows up to row {self.last_id}"


class ChangeHistory(models.Model):
    """Holds the permission to download django-auditlog's change history (no table)."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name_plural = "change history"
        permissions = [("download_changehistory", "Can download the change history as CSV")]

    def __str__(self):
        return "change history"
