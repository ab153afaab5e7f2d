"""Rules for export schedules: validation (as field-named form errors), the query a schedule
asks for, and how often a schedule may run."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from celery.schedules import crontab
from django.core.exceptions import ValidationError
from django.utils.text import slugify

from exports.datasets import DATASETS
from exports.guardrails import export_row_limit
from exports.query import RESERVED_PARAMS, ExportInputError, ExportQuery, export_query_parse
from mktintegration.scheduling import cron_parse, schedule_validate

if TYPE_CHECKING:
    from exports.models import ExportSchedule

_NOT_A_FILTER = {
    "format": "the file's format is the schedule's format field",
    "fields": "choose fields in the schedule's fields field",
    "limit": "files are capped by max_rows instead",
    "cursor": "files are not paged",
}
# The Gregorian calendar repeats every 28 years between 1901 and 2099: every day-of-month,
# month and weekday combination a cron expression can name occurs in this span.
_CALENDAR_START = date(2000, 1, 1)
_CALENDAR_DAYS = (date(2028, 1, 1) - _CALENDAR_START).days


def schedule_slug(name: str) -> str:
    """The schedule's name as it starts its files' names."""
    return slugify(name)


def filters_normalise(raw: Any) -> dict[str, str]:
    """The filters as raw query-parameter strings ({"country": "DE,FR"}).

    Lists become comma-separated, numbers and booleans their URL spelling; anything else is an
    ExportInputError naming the filter.
    """
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise ExportInputError(
            "filters", 'filters must be a JSON object such as {"country": "DE,FR"}'
        )
    normalised = {}
    for name, value in raw.items():
        if name in RESERVED_PARAMS:
            raise ExportInputError(name, f"{name} is not a filter: {_NOT_A_FILTER[name]}")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        elif isinstance(value, list) and all(isinstance(v, str | int) for v in value):
            value = ",".join(str(v) for v in value)
        elif not isinstance(value, str):
            raise ExportInputError(name, f'{name}: give the value as text, e.g. "DE,FR"')
        normalised[name] = value
    return normalised


def schedule_query(schedule: ExportSchedule, *, since: datetime | None = None) -> ExportQuery:
    """The export the schedule asks for; ``since`` (incremental runs) narrows updated_since.

    Raises ExportInputError naming the field or filter at fault.
    """
    dataset = DATASETS[schedule.dataset]
    if not isinstance(schedule.fields, list) or not all(
        isinstance(name, str) for name in schedule.fields
    ):
        raise ExportInputError("fields", "fields must be a list of field names")
    params = filters_normalise(schedule.filters)
    if schedule.fields:
        params["fields"] = ",".join(schedule.fields)
    query = export_query_parse(dataset, params, allow_cursor=False)
    if since is not None:
        floor = query.filters.get("updated_since")
        query.filters["updated_since"] = max(since, floor) if floor else since
    return query


def min_gap_minutes(*, cron: str, every_minutes: int | None) -> int | None:
    """The shortest time between two runs of the schedule, in minutes (UTC).

    None when it never runs twice in a 28-year calendar cycle, or runs only when asked.
    Day fields combine as Celery's crontab combines them (all must match).
    """
    if every_minutes:
        return every_minutes
    if not cron:
        return None
    spec = crontab(**cron_parse(cron))
    times = sorted(hour * 60 + minute for hour in spec.hour for minute in spec.minute)
    gaps = [later - earlier for earlier, later in pairwise(times)]
    days = [
        offset
        for offset in range(_CALENDAR_DAYS)
        if _runs_on(spec, _CALENDAR_START + timedelta(days=offset))
    ]
    day_gaps = [later - earlier for earlier, later in pairwise(days)]
    if day_gaps:
        gaps.append(min(day_gaps) * 1440 + times[0] - times[-1])
    return min(gaps) if gaps else None


def _runs_on(spec: crontab, day: date) -> bool:
    return (
        day.day in spec.day_of_month
        and day.month in spec.month_of_year
        and day.isoweekday() % 7 in spec.day_of_week  # crontab: 0 is Sunday
    )


def schedule_clean(schedule: ExportSchedule) -> None:
    """Validate (and normalise) a schedule; ValidationError keyed by the faulty fields."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    _check_name(schedule, add)
    dataset = DATASETS.get(schedule.dataset)
    if dataset is None:
        add(
            "dataset",
            f"unknown dataset {schedule.dataset!r}; known datasets: {', '.join(sorted(DATASETS))}",
        )
    else:
        try:
            schedule.filters = filters_normalise(schedule.filters)
            schedule_query(schedule)
        except ExportInputError as exc:
            add("fields" if exc.param == "fields" else "filters", exc.message)
        if schedule.incremental and "updated_since" not in dataset.filter_names:
            add("incremental", f"the {dataset.name} dataset has no updated_since filter")
        owner = schedule.owner if schedule.owner_id else None
        if owner is not None:
            _check_owner(schedule, owner, dataset, add)

    try:
        schedule_validate(cron=schedule.cron.strip(), every_minutes=schedule.every_minutes)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            for message in messages:
                add(field, message)
    else:
        schedule.cron = " ".join(schedule.cron.split())
        _check_frequency(schedule, add)
    if errors:
        raise ValidationError(errors)


def _check_name(schedule: ExportSchedule, add) -> None:
    from exports.models import ExportSchedule

    slug = schedule_slug(schedule.name or "")
    if not slug:
        add("name", "the name needs letters or digits (files are named after it)")
        return
    others = ExportSchedule.objects.exclude(pk=schedule.pk).values_list("name", flat=True)
    clash = next((name for name in others if schedule_slug(name) == slug), None)
    if clash is not None and clash != schedule.name:
        add(
            "name", f"files of schedule {clash!r} are already named {slug}-...; choose another name"
        )


def _check_owner(schedule: ExportSchedule, owner, dataset, add) -> None:
    if not owner.has_perm(dataset.permission):
        add(
            "dataset",
            f"{owner.get_username()} may not export the {dataset.name} dataset "
            f"(it needs the {dataset.permission} permission)",
        )
        return
    limit = export_row_limit(owner)
    if limit is not None and schedule.max_rows > limit:
        add(
            "max_rows",
            f"at most {limit:,}: the most rows {owner.get_username()}'s role may export at once",
        )


def _check_frequency(schedule: ExportSchedule, add) -> None:
    gap = min_gap_minutes(cron=schedule.cron, every_minutes=schedule.every_minutes)
    cap = schedule.min_interval_minutes
    if gap is not None and cap and gap < cap:
        field = "cron" if schedule.cron else "every_minutes"
        add(
            field,
            f"this schedule would run every {gap} minute{'s' if gap != 1 else ''} at times; "
            f"export schedules may run at most every {cap} minutes",
        )
