"""Writing the outbox: CloudEvents describing deliveries and vendor feedback, written in the
transaction of what they describe, so an event exists if and only if its fact was committed.

Nothing is written while no sink is configured (MKT_EVENTS_SINK_URL). Event data carries ids
only (the record key is the source's id, the destination id the vendor's); MKT_EVENTS_PERSONAL_DATA
adds the match value (an e-mail address for people) and the feedback's e-mail address.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.events_out.models import OutboxEvent

SPEC_VERSION = "1.0"
TYPE_PREFIX = "com.mktintegration."
# Ids are UUIDv5 of what the event is about in this namespace: the same fact, the same id.
_NAMESPACE = uuid.UUID("6f1d3c2e-64a5-4b0e-9a57-8f0e1c6a5d21")


def events_out_enabled() -> bool:
    return bool(settings.MKT_EVENTS_SINK_URL)


def stable_id(*parts: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, ":".join(str(p) for p in parts)))


@dataclass(frozen=True)
class OutEvent:
    """An event to write: its CloudEvents attributes (``type`` without the prefix)."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    data: dict[str, Any] = field(default_factory=dict)


def outbox_write(events: Iterable[OutEvent]) -> int:
    """One bulk insert, in the caller's transaction; an event already written (the same
    fact committed again by a retried step) is not written twice. Sends the delivery task
    when the transaction commits."""
    if not events_out_enabled():
        return 0
    rows = [
        OutboxEvent(
            event_id=e.id,
            type=TYPE_PREFIX + e.type,
            source=e.source[:200],
            subject=e.subject[:200],
            time=e.time,
            data=e.data,
        )
        for e in events
    ]
    if not rows:
        return 0
    OutboxEvent.objects.bulk_create(rows, ignore_conflicts=True)
    from integrations.events_out.tasks import deliver_events_task

    transaction.on_commit(deliver_events_task.delay)
    return len(rows)


def outbox_deliveries(*, sync, run_id: int, delivered: list[tuple[Any, str]]) -> int:
    """The records a destination confirmed in one ledger commit (``record.delivered``): called
    by the executor inside that commit's transaction, once per batch."""
    if not delivered or not events_out_enabled():
        return 0
    connection = sync.connection
    personal = settings.MKT_EVENTS_PERSONAL_DATA
    now = timezone.now()
    common = {
        "sync_id": sync.pk,
        "run_id": run_id,
        "connection_id": connection.pk,
        "vendor": connection.vendor,
        "destination_object": sync.destination_object,
        "dataset": sync.dataset,
    }
    return outbox_write(
        OutEvent(
            id=stable_id("delivered", run_id, sync.pk, entry.record_key, entry.payload_hash),
            type="record.delivered",
            source=f"/mktintegration/syncs/{sync.pk}",
            subject=entry.record_key,
            time=entry.synced_at or now,
            data={
                **common,
                "record_key": entry.record_key,
                "destination_id": entry.destination_id,
                "outcome": outcome,
                **({"match_value": entry.match_value} if personal else {}),
            },
        )
        for entry, outcome in delivered
    )


def cloudevent(row: OutboxEvent) -> dict[str, Any]:
    """The row as a CloudEvents 1.0 JSON object (structured content mode)."""
    return {
        "specversion": SPEC_VERSION,
        "id": row.event_id,
        "source": row.source,
        "type": row.type,
        "subject": row.subject,
        "time": row.time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": row.data,
    }
