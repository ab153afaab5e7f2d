"""Delivering the outbox to the sink: at least once, in id order, each event under its stable id.

A worker claims a batch of due events (``integrations.claims``), sends it with no transaction
open, and marks it delivered when the sink took it. A refused or failed batch waits
MKT_EVENTS_RETRY_BASE_SECONDS doubling with each attempt (at most 15 minutes, or the sink's
Retry-After) and is sent again; events are never dropped. A worker lost mid-send leaves its
batch "sending"; the reaper puts it back and it is sent again (the sink de-duplicates by id).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from integrations.claims import claim, reap
from integrations.events_out.models import OutboxEvent, OutboxState
from integrations.events_out.outbox import cloudevent
from integrations.events_out.sinks import SinkError, sink_get

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 900.0
# One task delivers for at most this long, then hands on to a new one.
TASK_BUDGET_SECONDS = 20.0


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    delay = settings.MKT_EVENTS_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return min(max(delay, retry_after or 0.0), MAX_BACKOFF_SECONDS)


def outbox_deliver(*, budget: float = TASK_BUDGET_SECONDS) -> dict[str, int | bool]:
    """Send due events in batches until none is due, the sink fails or the budget is spent.
    ``more``: events are still due (the caller sends another task)."""
    counts: dict[str, int | bool] = {"delivered": 0, "failed": 0, "more": False}
    sink = sink_get()
    if sink is None:
        return counts
    deadline = time.monotonic() + budget
    while True:
        now = timezone.now()
        batch = claim(
            OutboxEvent.objects.filter(next_attempt_at__lte=now).order_by("pk"),
            status_field="state",
            waiting=OutboxState.PENDING,
            working=OutboxState.SENDING,
            limit=settings.MKT_EVENTS_BATCH,
            now=now,
        )
        if not batch:
            return counts
        ids = [row.pk for row in batch]
        try:
            sink.deliver([cloudevent(row) for row in batch])
        except SinkError as exc:
            attempts = max(row.attempts for row in batch) + 1
            delay = retry_delay(attempts, exc.retry_after)
            OutboxEvent.objects.filter(pk__in=ids, state=OutboxState.SENDING).update(
                state=OutboxState.PENDING,
                claim="",
                attempts=F("attempts") + 1,
                next_attempt_at=timezone.now() + timedelta(seconds=delay),
                last_error=exc.message[:500],
            )
            log.warning(
                "events out: %d events not delivered (%s); again in %.0f s", len(ids), exc, delay
            )
            counts["failed"] = int(counts["failed"]) + len(ids)
            return counts
        OutboxEvent.objects.filter(pk__in=ids, state=OutboxState.SENDING).update(
            state=OutboxState.DELIVERED, claim="", delivered_at=timezone.now(), last_error=""
        )
        counts["delivered"] = int(counts["delivered"]) + len(ids)
        if time.monotonic() > deadline:
            counts["more"] = True
            return counts


def outbox_maintain() -> dict[str, int]:
    """Beat: put back batches of lost workers, drop delivered events past their retention,
    and say whether events are due (the caller then sends a delivery task)."""
    reaped = reap(
        OutboxEvent, status_field="state", waiting=OutboxState.PENDING, working=OutboxState.SENDING
    )
    cutoff = timezone.now() - timedelta(days=settings.MKT_EVENTS_RETENTION_DAYS)
    pruned, _ = OutboxEvent.objects.filter(
        state=OutboxState.DELIVERED, delivered_at__lt=cutoff
    ).delete()
    due = OutboxEvent.objects.filter(
        state=OutboxState.PENDING, next_attempt_at__lte=timezone.now()
    ).exists()
    return {"reaped": reaped, "pruned": pruned, "due": int(due)}
