"""Claiming queued rows for one worker, and giving back the ones a lost worker held.

Work queued as rows (suppressions, outbox events) is taken by one atomic UPDATE from the
waiting status to the working one under a claim token: two workers never take the same row,
and the one that did finds its rows by the token. Nothing is held open while the work (a
vendor or sink request) runs; a worker that dies leaves its rows "working", and ``reap`` puts
them back once they are older than MKT_RUN_STALE_SECONDS.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone


def claim(
    due: QuerySet,
    *,
    status_field: str,
    waiting: str,
    working: str,
    limit: int,
    now: datetime | None = None,
) -> list:
    """Up to ``limit`` rows of ``due`` (already filtered to what may be done now, ordered),
    moved from ``waiting`` to ``working`` for this caller alone; their fresh instances."""
    now = now or timezone.now()
    model = due.model
    ids = list(due.filter(**{status_field: waiting}).values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    token = secrets.token_hex(8)
    model.objects.filter(pk__in=ids, **{status_field: waiting}).update(
        **{status_field: working, "claim": token, "claimed_at": now}
    )
    return list(model.objects.filter(claim=token, **{status_field: working}).order_by("pk"))


def reap(model, *, status_field: str, waiting: str, working: str) -> int:
    """Rows ``working`` longer than MKT_RUN_STALE_SECONDS (their worker was lost): waiting
    again, to be done once more (at-least-once)."""
    stale = timezone.now() - timedelta(seconds=settings.MKT_RUN_STALE_SECONDS)
    return model.objects.filter(
        Q(claimed_at__lt=stale) | Q(claimed_at__isnull=True), **{status_field: working}
    ).update(**{status_field: waiting, "claim": ""})
