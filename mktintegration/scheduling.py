"""Keeping django-celery-beat in step with our own schedule fields (the one place that does).

Our models (ExportSchedule, Sync) own their schedule as plain fields: a cron string or an
interval in minutes. ``periodic_task_sync`` creates, updates or disables the matching
PeriodicTask, and tells beat that the schedule changed.
"""

from __future__ import annotations

import json

from celery.schedules import crontab
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
