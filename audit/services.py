"""Writing audit rows. The only way in: each row is chained to the one before it."""

from __future__ import annotations

from django.db import connections, router, transaction

from audit.models import GENESIS, AccessLog, ChainedLog, OutboundLog

# One advisory-lock key per chain (PostgreSQL); SQLite's single writer serialises by itself.
_LOCK_KEYS = {AccessLog: 7_340_001, OutboundLog: 7_340_002}


def _append(model: type[ChainedLog], fields: dict) -> ChainedLog:
    alias = router.db_for_write(model)
    connection = connections[alias]
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEYS[model]])
        table = model._meta.db_table  # one of our two log tables
        cursor.execute(f"SELECT row_hash FROM {table} ORDER BY id DESC LIMIT 1")  # noqa: S608
        previous = cursor.fetchone()
        row = model(**fields, prev_hash=previous[0] if previous else GENESIS)
        row.row_hash = row.compute_hash()
        row.save(using=alias)
    return row


def access_log_write(**fields) -> AccessLog:
    """Record one read of exported data (see AccessLog for the fields)."""
    return _append(AccessLog, fields)


def outbound_log_write(**fields) -> OutboundLog:
    """Record one vendor request (see OutboundLog; never pass personal data)."""
    return _append(OutboundLog, fields)
