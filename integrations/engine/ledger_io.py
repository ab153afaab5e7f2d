"""Bulk writes of planner results to the ledger, without an ORM object per row.

A first plan of a million records writes a million ledger rows; through the ORM that costs
minutes (model instances, per-value preparation). Here PostgreSQL gets ``COPY`` (and an
``UPDATE ... FROM`` a temporary table for changed rows) and SQLite ``executemany``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.utils import timezone

from integrations.models import LedgerEntry

TABLE = LedgerEntry._meta.db_table


@dataclass(frozen=True)
class PlannedRow:
    record_key: str
    status: str
    plan_hash: str
    match_value: str
    last_error: str


_NEW_COLUMNS = (
    "sync_id",
    "record_key",
    "status",
    "plan_hash",
    "match_value",
    "last_error",
    "payload_hash",
    "sent_hash",
    "destination_id",
    "created_by_sync",
    "attempts",
    "idempotency_key",
    "consent_source",
    "consent_ref",
    "updated_at",
)


def _any(cursor_vendor: str, column: str, values: list) -> tuple[str, list]:
    """``column`` matches any of ``values``: one array parameter on PostgreSQL."""
    if cursor_vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


class EntryRow:
    """A ledger entry as the executor reads and writes it: plain attributes, no model instance
    (building 500 model instances per task cost a seventh of a delivery worker's time)."""

    __slots__ = tuple(f.attname for f in LedgerEntry._meta.concrete_fields)
    if TYPE_CHECKING:  # the columns the engine reads and writes (all of them are slots)
        id: int
        sync_id: int
        record_key: str
        status: str
        payload_hash: str
        sent_hash: str
        plan_hash: str
        destination_id: str
        match_value: str
        created_by_sync: bool
        attempts: int
        last_error: str
        idempotency_key: str
        intent_at: datetime | None
        updated_at: datetime
        synced_at: datetime | None
        consent_source: str
        consent_ref: str
        consent_checked_at: datetime | None

    def __init__(self, values):
        for name, value in zip(self.__slots__, values, strict=True):
            setattr(self, name, value)

    @property
    def pk(self):
        return self.id


def ledger_entries(sync_id: int, keys: list[str]) -> list[EntryRow]:
    """The ledger entries of these record keys."""
    if connection.vendor != "postgresql":
        return [
            EntryRow([getattr(e, name) for name in EntryRow.__slots__])
            for e in LedgerEntry.objects.filter(sync_id=sync_id, record_key__in=keys)
        ]
    # One array parameter and no per-value lookup preparation: a task reads 500 at a time.
    columns = ", ".join(f.column for f in LedgerEntry._meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {TABLE} WHERE sync_id = %s AND record_key = ANY(%s)",
            [sync_id, list(keys)],
        )
        return [EntryRow(row) for row in cursor.fetchall()]


def ledger_states(sync_id: int, keys: list[str]) -> list[tuple]:
    """(record_key, status, payload_hash, plan_hash, last_error, match_value) of these keys."""
    if not keys:
        return []
    condition, params = _any(connection.vendor, "record_key", keys)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT record_key, status, payload_hash, plan_hash, last_error, match_value "
            f"FROM {TABLE} WHERE sync_id = %s AND {condition}",
            [sync_id, *params],
        )
        return cursor.fetchall()


def ledger_match_owners(
    sync_id: int, values: set[str], exclude_keys: list[str], *, status: str = "synced"
) -> dict[str, str]:
    """Match values already confirmed at the destination (``status``) for a record not in
    ``exclude_keys``: value -> that record's key."""
    condition, params = _any(connection.vendor, "match_value", sorted(values))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT match_value, record_key FROM {TABLE} WHERE sync_id = %s AND status = %s "
            f"AND {condition}",
            [sync_id, status, *params],
        )
        excluded = set(exclude_keys)
        return {value: key for value, key in cursor.fetchall() if key not in excluded}


def ledger_analyze() -> None:
    """Refresh PostgreSQL's statistics of the ledger after a bulk load, so lookups by
    (sync, record key) keep using their index."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {TABLE}")


def ledger_insert(sync_id: int, rows: list[PlannedRow]) -> None:
    if not rows:
        return
    now = timezone.now()
    values = [
        (
            sync_id,
            r.record_key,
            r.status,
            r.plan_hash,
            r.match_value[:255],
            r.last_error[:1000],
            "",
            "",
            "",
            False,
            0,
            "",
            "",
            "",
            now,
        )
        for r in rows
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {TABLE} ({', '.join(_NEW_COLUMNS)}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
        else:
            placeholders = ", ".join(["%s"] * len(_NEW_COLUMNS))
            cursor.executemany(
                f"INSERT INTO {TABLE} ({', '.join(_NEW_COLUMNS)}) VALUES ({placeholders})",
                [(*v[:-1], connection.ops.adapt_datetimefield_value(now)) for v in values],
            )


def ledger_update(sync_id: int, rows: list[PlannedRow]) -> None:
    """Set status, plan hash, match value and reason of existing entries (by record key)."""
    if not rows:
        return
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS ledger_plan (record_key text, status text, "
                "plan_hash text, match_value text, last_error text) ON COMMIT DELETE ROWS"
            )
            with cursor.cursor.copy(
                "COPY ledger_plan (record_key, status, plan_hash, match_value, last_error) "
                "FROM STDIN"
            ) as copy:
                for r in rows:
                    copy.write_row(
                        (
                            r.record_key,
                            r.status,
                            r.plan_hash,
                            r.match_value[:255],
                            r.last_error[:1000],
                        )
                    )
            cursor.execute(
                f"UPDATE {TABLE} AS l SET status = p.status, plan_hash = p.plan_hash, "
                "match_value = CASE WHEN p.match_value = '' THEN l.match_value "
                "ELSE p.match_value END, "
                "last_error = p.last_error, updated_at = %s "
                "FROM ledger_plan p WHERE l.sync_id = %s AND l.record_key = p.record_key",
                [now, sync_id],
            )
            # ON COMMIT empties it only at the outermost commit: inside a transaction a later
            # call would join these rows too, and PostgreSQL picks either for a key.
            cursor.execute("DELETE FROM ledger_plan")
        else:
            cursor.executemany(
                f"UPDATE {TABLE} SET status = %s, plan_hash = %s, "
                "match_value = CASE WHEN %s = '' THEN match_value ELSE %s END, "
                "last_error = %s, updated_at = %s WHERE sync_id = %s AND record_key = %s",
                [
                    (
                        r.status,
                        r.plan_hash,
                        r.match_value[:255],
                        r.match_value[:255],
                        r.last_error[:1000],
                        connection.ops.adapt_datetimefield_value(now),
                        sync_id,
                        r.record_key,
                    )
                    for r in rows
                ],
            )


def rows_update(model, objs: list, fields: list[str]) -> None:
    """Write ``fields`` of these model instances by primary key, in bulk (PostgreSQL: COPY into
    a session temporary table, then one UPDATE ... FROM it; SQLite: executemany). Django's
    bulk_update builds one CASE per field and row, which costs more than the delivery it
    records; a VALUES list of a thousand parameters costs the client more to bind than COPY."""
    if not objs:
        return
    meta = model._meta
    concrete = [meta.get_field(name) for name in fields]
    if any(f.name == "updated_at" for f in meta.concrete_fields) and "updated_at" not in fields:
        concrete.append(meta.get_field("updated_at"))
        now = timezone.now()
        for obj in objs:
            obj.updated_at = now
    pk = meta.pk
    table = meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            columns = [pk, *concrete]
            names = ", ".join(c.column for c in columns)
            # One staging table per column set, kept for the session, emptied at commit.
            staging = f"_upd_{table}_{zlib.crc32(names.encode()):08x}"
            definition = ", ".join(f"{c.column} {c.db_type(connection)}" for c in columns)
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ({definition}) "
                "ON COMMIT DELETE ROWS"
            )
            with cursor.cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
                for obj in objs:
                    copy.write_row([getattr(obj, c.attname) for c in columns])
            assignments = ", ".join(f"{c.column} = s.{c.column}" for c in concrete)
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} FROM {staging} s "
                f"WHERE t.{pk.column} = s.{pk.column}"
            )
            cursor.execute(
                f"DELETE FROM {staging}"
            )  # a later call in this transaction starts empty
        else:
            assignments = ", ".join(f"{c.column} = %s" for c in concrete)
            cursor.executemany(
                f"UPDATE {table} SET {assignments} WHERE {pk.column} = %s",
                [
                    [c.get_db_prep_save(getattr(obj, c.attname), connection) for c in concrete]
                    + [getattr(obj, pk.attname)]
                    for obj in objs
                ],
            )
