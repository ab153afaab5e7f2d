"""Storing reported events: one WebhookEvent row per event, never two for one event (the
vendor's event id, else a hash of its content), and their processing task sent on commit."""

from __future__ import annotations

from django.db import IntegrityError, transaction
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


def events_store(
    *, connection: Connection, events: list[FeedbackEvent], via: str = Via.WEBHOOK
) -> list[int]:
    """Store the events not stored before; their ids ([] when every one was known already).
    Commits before returning (the caller answers the vendor only then); the processing task
    is sent once the rows are committed."""
    now = timezone.now()
    unique: dict[str, FeedbackEvent] = {}
    for event in events:
        unique.setdefault(event.dedupe_key, event)
    known = set(
        WebhookEvent.objects.filter(connection=connection, dedupe_key__in=list(unique)).values_list(
            "dedupe_key", flat=True
        )
    )
    rows = [_row(connection, e, via, now) for key, e in unique.items() if key not in known]
    if not rows:
        return []
    with transaction.atomic():
        try:
            with transaction.atomic():
                created = WebhookEvent.objects.bulk_create(rows)
            ids = [row.pk for row in created]
        except IntegrityError:
            # The same event arrived twice at once: keep whichever came first.
            WebhookEvent.objects.bulk_create(rows, ignore_conflicts=True)
            ids = list(
                WebhookEvent.objects.filter(
                    connection=connection,
                    dedupe_key__in=[r.dedupe_key for r in rows],
                    received_at=now,
                ).values_list("pk", flat=True)
            )
        if ids:
            from integrations.webhooks.tasks import process_events_task

            transaction.on_commit(lambda: process_events_task.delay(event_ids=ids))
    return ids
