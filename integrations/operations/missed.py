"""Scheduled runs that should have started and did not (docs/operations.md#missed-scheduled-runs).

Judged from our own rows, not from beat: a schedule whose beat entry is missing or disabled,
a beat that stopped, or a queue no worker consumes all look the same here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from integrations.operations.timing import missed_tick


def schedule_missed(
    *, runs, cron: str, every_minutes: int | None, since: datetime, now: datetime
) -> datetime | None:
    """The tick whose run did not start (None: on time). ``runs``: the object's run queryset.

    On time means a run the scheduler started (skipped ones included) was queued since the
    tick, or some run was going during the window (beat's tick then had nothing to do).
    """
    grace = timedelta(minutes=settings.MKT_ALERT_MISSED_GRACE_MINUTES)
    tick = missed_tick(cron=cron, every_minutes=every_minutes, since=since, now=now, grace=grace)
    if tick is None:
        return None
    window_start = tick - timedelta(minutes=1) if cron else tick
    started = runs.filter(trigger="schedule", queued_at__gte=window_start).exists()
    overlapping = runs.filter(queued_at__lte=now - grace).filter(
        Q(finished_at__isnull=True) | Q(finished_at__gte=window_start)
    )
    if started or overlapping.exists():
        return None
    return tick


def active_since(kind: str, obj, now: datetime) -> datetime:
    """From when the object's schedule was in force: its last change, or when the alert
    evaluation first saw it runnable (a resume does not touch updated_at)."""
    from integrations.operations.models import AlertState

    state = AlertState.objects.filter(key=f"{kind}:{obj.pk}:schedule").first()
    seen = state.changed_at if state is not None and state.state != "inactive" else now
    return max(obj.updated_at, seen)
