"""Storing reported events: one WebhookEvent row per event, never two for one event (the
vendor's event id, else a hash of its content), and their processing task sent on commit."""

from __future__ import annotations

from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from integrations.connectors.feedback import FeedbackEvent
from integrations.models import Connection
from integrations.webhooks.models import Via, WebhookEvent


def _row(connection: Connection, event: FeedbackEvent, via: str, now) -> WebhookEvent:
    return WebhookEvent(
        connection=connection,
        vendor=connection.vendor,
        via=via,
        dedupe_key=event.dedupe_key,
        event_id=event.event_id[:128],
        vendor_event=event.vendor_event[:200],
        kind=event.kind.value,
        occurred_at=min(event.occurred_at, now),  # a vendor clock ahead of ours is not trusted
        received_at=now,
        email=event.email[:254],
        subject_id=event.subject_id[:100],
        scope=event.scope,
        all_email=event.all_email,
        campaign_id=event.campaign_id[:100],
        detail=event.detail[:300],
        payload=event.raw,
    )


def _insert_new(rows: list[WebhookEvent]) -> list[int]:
    """One INSERT of the rows whose (connection, dedupe key) is not stored yet; the ids of
    those inserted. ``ON CONFLICT DO NOTHING RETURNING`` (PostgreSQL, SQLite 3.35+) settles
    duplicates in the database, where two copies arriving at once cannot both pass. On
    PostgreSQL the values go as one array per column (a short statement the driver parses once
    per process, not hundreds of placeholders per request)."""
    meta = WebhookEvent._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    quote = db.ops.quote_name
    # Names and types from the model's own metadata; every value is a bound parameter.
    columns = ", ".join(quote(f.column) for f in fields)
    head = f"INSERT INTO {quote(meta.db_table)} ({columns}) "
    tail = f" ON CONFLICT ({quote('connection_id')}, {quote('dedupe_key')}) DO NOTHING RETURNING id"
    if db.vendor == "postgresql":
        arrays = ", ".join(f"%s::{f.db_type(db)}[]" for f in fields)
        sql = head + f"SELECT * FROM unnest({arrays})" + tail  # noqa: S608
        params = [[f.get_db_prep_save(getattr(row, f.attname), db) for row in rows] for f in fields]
    else:
        one = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = head + f"VALUES {', '.join([one] * len(rows))}" + tail
        params = [f.get_db_prep_save(getattr(row, f.attname), db) for row in rows for f in fields]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def events_store(
    *, connection: Connection, events: list[FeedbackEvent], via: str = Via.WEBHOOK
) -> list[int]:
    """Store the events not stored before; their ids ([] when every one was known already).
    Committed when this returns (the caller answers the vendor only then); the processing task
    is sent once the rows are committed."""
    now = timezone.now()
    unique: dict[str, FeedbackEvent] = {}
    for event in events:
        unique.setdefault(event.dedupe_key, event)
    rows = [_row(connection, e, via, now) for e in unique.values()]
    if not rows:  # a poll that read nothing new
        return []
    # One statement: outside a transaction it is committed when it returns (and on_commit
    # runs at once); inside one, the task is sent when that commits.
    ids = _insert_new(rows)
    if ids:
        from integrations.webhooks.tasks import process_events_task

        transaction.on_commit(lambda: process_events_task.delay(event_ids=ids))
    return ids
