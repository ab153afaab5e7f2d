"""When schedules fire: the next run, and the run that should already have started.

Beat entries (django-celery-beat) fire cron schedules in UTC with Celery's crontab rules: the
day-of-month, month and day-of-week fields must all match (not Vixie cron's "either day
field"). Interval schedules fire every N minutes counted from beat's last send.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from celery.schedules import crontab
from django_celery_beat.models import PeriodicTask

from mktintegration.scheduling import cron_parse

# The calendar repeats every 28 years: a cron expression that never fires in that span never
# fires at all (e.g. "0 0 31 2 *").
_SEARCH_DAYS = 28 * 366


def _spec(cron: str) -> crontab:
    return crontab(**cron_parse(cron))


def _runs_on(spec: crontab, day: date) -> bool:
    return (
        day.day in spec.day_of_month
        and day.month in spec.month_of_year
        and day.isoweekday() % 7 in spec.day_of_week  # crontab: 0 is Sunday
    )


def _times(spec: crontab) -> list[int]:
    return sorted(hour * 60 + minute for hour in spec.hour for minute in spec.minute)


def _at(day: date, minutes: int) -> datetime:
    return datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=UTC)


def cron_previous(cron: str, at: datetime) -> datetime | None:
    """The latest tick of ``cron`` at or before ``at`` (UTC); None if it never fires."""
    spec, at = _spec(cron), at.astimezone(UTC)
    times = _times(spec)
    now_minutes = at.hour * 60 + at.minute
    for offset in range(_SEARCH_DAYS):
        day = at.date() - timedelta(days=offset)
        if not _runs_on(spec, day):
            continue
        candidates = times if offset else [t for t in times if t <= now_minutes]
        if candidates:
            return _at(day, candidates[-1])
    return None


def cron_next(cron: str, after: datetime) -> datetime | None:
    """The first tick of ``cron`` strictly after ``after`` (UTC); None if it never fires."""
    spec, after = _spec(cron), after.astimezone(UTC)
    times = _times(spec)
    now_minutes = after.hour * 60 + after.minute
    for offset in range(_SEARCH_DAYS):
        day = after.date() + timedelta(days=offset)
        if not _runs_on(spec, day):
            continue
        candidates = times if offset else [t for t in times if t > now_minutes]
        if candidates:
            return _at(day, candidates[0])
    return None


def beat_entries(names: list[str]) -> dict[str, PeriodicTask]:
    """The beat entries with these names, by name (one query)."""
    return {
        task.name: task
        for task in PeriodicTask.objects.filter(name__in=names).select_related(
            "interval", "crontab"
        )
    }


def next_run_at(entry: PeriodicTask | None, *, now: datetime) -> datetime | None:
    """When beat sends this entry next: None when there is no enabled entry."""
    if entry is None or not entry.enabled:
        return None
    if entry.crontab is not None:
        c = entry.crontab
        cron = f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
        return cron_next(cron, now)
    if entry.interval is not None:
        last = entry.last_run_at or entry.date_changed or now
        try:
            due = last + timedelta(**{entry.interval.period: entry.interval.every})
        except OverflowError:  # an interval stored beyond the calendar: it never comes
            return None
        return max(due, now)
    return None


def schedule_text(*, cron: str, every_minutes: int | None) -> str:
    if cron:
        return f"cron {cron} (UTC)"
    if every_minutes:
        return f"every {every_minutes} min"
    return "manual"


def missed_tick(
    *,
    cron: str,
    every_minutes: int | None,
    since: datetime,
    now: datetime,
    grace: timedelta,
) -> datetime | None:
    """The tick by which a run should have started and may now be checked (None: none is due
    yet). ``since``: from when the schedule was in force (created, changed or resumed)."""
    horizon = now - grace
    if cron:
        tick = cron_previous(cron, horizon)
    elif every_minutes:
        try:
            tick = horizon - timedelta(minutes=every_minutes)
        except OverflowError:  # an interval stored beyond the calendar: nothing is due
            return None
    else:
        return None
    if tick is None or tick <= since:
        return None
    return tick
