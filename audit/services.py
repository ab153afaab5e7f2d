"""Writing audit rows. The only way in: each row is chained to the one before it, and the
chain's signed head (ChainAnchor) moves with it, in the same transaction.

An append costs one read of the head, the INSERT and one UPSERT of the head (the outbound log
gets a row per vendor request, on the delivery hot path).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connections, router, transaction

from audit.chain import (
    ENTRY_FIELDS,
    GENESIS,
    entry_canonical,
    head_sign,
    head_signature_valid,
    sha256,
)
from audit.models import AccessLog, ChainAnchor, ChainedLog, ChangeHistoryLink, OutboundLog

# One advisory-lock key per chain (PostgreSQL); SQLite's single writer serialises by itself.
_LOCK_KEYS = {AccessLog: 7_340_001, OutboundLog: 7_340_002, ChangeHistoryLink: 7_340_003}


@dataclass(frozen=True)
class Head:
    """Where a chain ends: how many rows, the last one's id and its hash."""

    length: int
    last_id: int
    last_hash: str


def _locked(model: type[ChainedLog]):
    """(atomic block, connection) for appending to ``model``'s chain, its lock taken."""
    alias = router.db_for_write(model)
    return transaction.atomic(using=alias), connections[alias]


def _lock(cursor, connection, model: type[ChainedLog]) -> None:
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEYS[model]])


def _tail(cursor, model: type[ChainedLog]) -> tuple[int, str] | None:
    table = model._meta.db_table  # one of our log tables
    cursor.execute(f"SELECT id, row_hash FROM {table} ORDER BY id DESC LIMIT 1")  # noqa: S608
    return cursor.fetchone()


def _head(cursor, model: type[ChainedLog]) -> tuple[Head, bool]:
    """The head to chain onto, and whether the new head may be signed.

    Normally the signed anchor. A missing anchor on an empty chain is a new chain. A missing
    or invalid anchor on a chain that has rows means someone changed the anchor table: the
    row is still written (chained onto the table's last row: the log does not stop), but the
    anchor is left as found, so ``verify_audit`` keeps reporting it until an operator has
    looked and re-anchored (``verify_audit --reanchor``). Re-signing it here would launder a
    forged head.
    """
    cursor.execute(
        "SELECT length, last_id, last_hash, signature FROM audit_chainanchor WHERE chain = %s",
        [model.chain],
    )
    anchor = cursor.fetchone()
    if anchor is not None:
        length, last_id, last_hash, signature = anchor
        if head_signature_valid(
            keys=settings.MKT_AUDIT_KEYS,
            chain=model.chain,
            length=length,
            last_id=last_id,
            last_hash=last_hash,
            signature=signature,
        ):
            return Head(length, last_id, last_hash), True
    tail = _tail(cursor, model)
    if tail is None:
        return Head(0, 0, GENESIS), anchor is None
    return Head(0, tail[0], tail[1]), False


def _anchor_write(cursor, connection, chain: str, head: Head) -> None:
    """One UPSERT (PostgreSQL and SQLite share the syntax)."""
    columns = ("chain", "length", "last_id", "last_hash", "signature")
    quoted = [connection.ops.quote_name(c) for c in columns]
    updates = ", ".join(f"{c} = excluded.{c}" for c in quoted[1:])
    signature = head_sign(
        keys=settings.MKT_AUDIT_KEYS,
        chain=chain,
        length=head.length,
        last_id=head.last_id,
        last_hash=head.last_hash,
    )
    cursor.execute(
        f"INSERT INTO audit_chainanchor ({', '.join(quoted)}) VALUES (%s, %s, %s, %s, %s) "  # noqa: S608
        f"ON CONFLICT ({quoted[0]}) DO UPDATE SET {updates}",
        [chain, head.length, head.last_id, head.last_hash, signature],
    )


def _append(model: type[ChainedLog], fields: dict) -> ChainedLog:
    atomic, connection = _locked(model)
    with atomic, connection.cursor() as cursor:
        _lock(cursor, connection, model)
        head, may_sign = _head(cursor, model)
        row = model(**fields, prev_hash=head.last_hash)
        row.row_hash = row.compute_hash()
        _insert(row, cursor, connection)
        if may_sign:
            _anchor_write(
                cursor, connection, model.chain, Head(head.length + 1, row.pk, row.row_hash)
            )
    return row


def _insert(row: ChainedLog, cursor, connection) -> None:
    """One INSERT ... RETURNING id, without the ORM's per-call query compilation."""
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


def change_history_link(*, entry) -> ChangeHistoryLink:
    """Chain one django-auditlog entry, just written (audit.apps connects this to its
    post_save). The hash covers the entry as the database holds it, read back here."""
    values = type(entry).objects.filter(pk=entry.pk).values(*ENTRY_FIELDS, "actor_id").get()
    actor = entry.actor.get_username() if values["actor_id"] else ""
    return _append(
        ChangeHistoryLink,
        {
            "at": values["timestamp"],
            "entry_id": entry.pk,
            "entry_hash": sha256(entry_canonical(values)),
            "actor_id": values["actor_id"],
            "actor": actor,
        },
    )


def chain_reanchor(*, model: type[ChainedLog]) -> tuple[Head, ChainAnchor | None]:
    """Sign the chain's head as it is now; returns it and the anchor it replaces.

    For an operator who investigated what ``verify_audit`` reported about an anchor (a key
    lost, an anchor removed or altered): from here on, truncation is measured from this head.
    """
    atomic, connection = _locked(model)
    with atomic, connection.cursor() as cursor:
        _lock(cursor, connection, model)
        old = ChainAnchor.objects.using(connection.alias).filter(chain=model.chain).first()
        tail = _tail(cursor, model)
        head = Head(
            model.objects.using(connection.alias).count(),
            tail[0] if tail else 0,
            tail[1] if tail else GENESIS,
        )
        _anchor_write(cursor, connection, model.chain, head)
    return head, old
