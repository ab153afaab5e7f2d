"""Keeping django-celery-beat in step with our own schedule fields (the one place that does).

Our models (ExportSchedule, Sync) own their schedule as plain fields: a cron string or an
interval in minutes. ``periodic_task_sync`` creates, updates or disables the matching
PeriodicTask, and tells beat that the schedule changed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from celery.schedules import crontab
from cron_descriptor import ExpressionDescriptor, Options
from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import (
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
)


def cron_parse(expression: str) -> dict[str, str]:
    """'m h dom mon dow' -> CrontabSchedule fields; ValidationError saying what is wrong."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValidationError(
            f"{expression!r} is not a cron expression: it needs 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '30 6 * * 1-5'"
        )
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    try:
        crontab(minute, hour, day_of_week, day_of_month, month_of_year)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{expression!r} is not a valid cron expression: {exc}") from None
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def schedule_words(*, cron: str, every_minutes: int | None) -> str:
    """The schedule as a person says it: "Every 15 minutes, UTC", "At 06:30, Monday through
    Friday, UTC", "every 90 minutes", "manual runs only"."""
    if cron:
        try:
            cron_parse(cron)
        except ValidationError:
            return f"{cron} (not a valid cron expression)"
        options = Options()
        options.use_24hour_time_format = True
        options.verbose = False
        return f"{ExpressionDescriptor(cron, options).get_description()}, UTC"
    if every_minutes:
        hours, minutes = divmod(every_minutes, 60)
        if hours and not minutes:
            return "every hour" if hours == 1 else f"every {hours} hours"
        return "every minute" if every_minutes == 1 else f"every {every_minutes} minutes"
    return "manual runs only"


def cron_next(cron: str, *, after: datetime, count: int = 3) -> list[datetime]:
    """The next ``count`` times (UTC) the cron expression fires after ``after``, as beat runs
    it (celery's crontab: minute, hour and every day field must all match); [] for an invalid
    expression or one that fires on no day in the next five years (30 February)."""
    try:
        fields = cron_parse(cron)
    except ValidationError:
        return []
    schedule = crontab(
        fields["minute"],
        fields["hour"],
        fields["day_of_week"],
        fields["day_of_month"],
        fields["month_of_year"],
    )
    after = after.astimezone(UTC)
    times: list[datetime] = []
    day = after.date()
    for _ in range(5 * 366):
        if (
            day.month in schedule.month_of_year
            and day.day in schedule.day_of_month
            and day.isoweekday() % 7 in schedule.day_of_week  # celery: 0 is Sunday
        ):
            for hour in sorted(schedule.hour):
                for minute in sorted(schedule.minute):
                    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if moment > after:
                        times.append(moment)
                        if len(times) == count:
                            return times
        day += timedelta(days=1)
    return times


def schedule_validate(*, cron: str, every_minutes: int | None) -> None:
    """A schedule is a cron expression, an interval, or neither (manual runs only)."""
    errors = {}
    if cron and every_minutes:
        errors["every_minutes"] = "Give a cron expression or an interval, not both."
    if cron:
        try:
            cron_parse(cron)
        except ValidationError as exc:
            errors["cron"] = exc.messages
    if every_minutes is not None and every_minutes < 1:
        errors["every_minutes"] = "The interval must be at least 1 minute."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def periodic_task_sync(
    *,
    name: str,
    task: str,
    kwargs: dict,
    cron: str = "",
    every_minutes: int | None = None,
    enabled: bool = True,
    description: str = "",
) -> PeriodicTask | None:
    """Make the PeriodicTask called ``name`` match the schedule; None when there is none."""
    existing = PeriodicTask.objects.filter(name=name).first()
    if not cron and not every_minutes:
        if existing:
            existing.delete()
            PeriodicTasks.update_changed()
        return None
    schedule_fields: dict = {"interval": None, "crontab": None}
    if cron:
        schedule_fields["crontab"], _ = CrontabSchedule.objects.get_or_create(
            **cron_parse(cron), timezone="UTC"
        )
    else:
        schedule_fields["interval"], _ = IntervalSchedule.objects.get_or_create(
            every=every_minutes, period=IntervalSchedule.MINUTES
        )
    task_obj = existing or PeriodicTask(name=name)
    task_obj.task = task
    task_obj.kwargs = json.dumps(kwargs)
    task_obj.enabled = enabled
    task_obj.description = description
    for field, value in schedule_fields.items():
        setattr(task_obj, field, value)
    task_obj.save()  # PeriodicTask.save() marks the schedule changed for beat
    return task_obj


def periodic_task_remove(*, name: str) -> None:
    deleted, _ = PeriodicTask.objects.filter(name=name).delete()
    if deleted:
        PeriodicTasks.update_changed()
