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
        _insert(row, cursor, connection)
    return row


def _insert(row: ChainedLog, cursor, connection) -> None:
    """One INSERT ... RETURNING id, without the ORM's per-call query compilation (the
    outbound log gets a row per vendor request, on the delivery hot path)."""
    fields = [f for f in row._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    cursor.execute(
        f"INSERT INTO {row._meta.db_table} ({columns}) VALUES ({placeholders}) RETURNING id",  # noqa: S608
        [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields],
    )
    row.pk = cursor.fetchone()[0]
    row._state.adding = False
    row._state.db = connection.alias


def access_log_write(**fields) -> AccessLog:
    """Record one read of exported data (see AccessLog for the fields)."""
    return _append(AccessLog, fields)


def outbound_log_write(**fields) -> OutboundLog:
    """Record one vendor request (see OutboundLog; never pass personal data)."""
    return _append(OutboundLog, fields)
