"""Reads for scheduled exports: what a user may see and run, and where a run's file is."""

from __future__ import annotations

from pathlib import Path

from django.db import connections
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from exports.datasets import FilterKind
from exports.destinations.local import file_path
from exports.models import ExportRun, ExportSchedule, RunStatus
from exports.query import ExportQuery, present_values_select, withheld_select

VIEW_SCHEDULE = ("exports.view_exportschedule", "exports.change_exportschedule")
RUN_SCHEDULE = "exports.run_exportschedule"


def schedules_visible_to(user) -> QuerySet[ExportSchedule]:
    """Every schedule for holders of the model permission, else the ones granted to them."""
    return get_objects_for_user(
        user, list(VIEW_SCHEDULE), klass=ExportSchedule, any_perm=True, accept_global_perms=True
    )


def runs_visible_to(user, *, queryset: QuerySet[ExportRun] | None = None) -> QuerySet[ExportRun]:
    """The runs of the schedules ``user`` may see (of ``queryset`` if given)."""
    runs = ExportRun.objects.all() if queryset is None else queryset
    if user.is_superuser:
        return runs
    return runs.filter(schedule__in=schedules_visible_to(user).values("pk"))


def schedules_runnable_by(user) -> QuerySet[ExportSchedule]:
    return get_objects_for_user(user, RUN_SCHEDULE, klass=ExportSchedule, accept_global_perms=True)


def user_may_run(user, schedule: ExportSchedule) -> bool:
    """The model-level run permission, or a grant on this schedule."""
    return user.has_perm(RUN_SCHEDULE) or user.has_perm(RUN_SCHEDULE, schedule)


def run_local_file(run: ExportRun) -> Path | None:
    """The file a successful local-folder run wrote, if retention has not removed it."""
    relative = (run.destination_result or {}).get("path")
    if run.status != RunStatus.SUCCEEDED or not isinstance(relative, str):
        return None
    return file_path(relative)


def filter_values_unmatched(query: ExportQuery, *, alias: str) -> list[str]:
    """Warnings for list-filter values no record has (``country: "Germany"`` where countries
    are codes): a filter that can never match is allowed, but the user should hear of it.
    One indexed lookup per free-text list filter; filters with declared choices are
    checked when parsed."""
    warnings = []
    connection = connections[alias]
    for name, values in query.filters.items():
        spec = query.dataset.filter(name)
        if spec.kind != FilterKind.IN or spec.choices:
            continue
        with connection.cursor() as cursor:
            cursor.execute(*present_values_select(query, name))
            found = {row[0] for row in cursor.fetchall()}
        missing = [value for value in values if value not in found]
        if missing:
            shown = ", ".join(repr(v) for v in missing[:5])
            warnings.append(
                f"{name}: no record has {shown} ({spec.description}); the filter matches "
                + ("nothing" if len(missing) == len(values) else "only the other values")
            )
    return warnings


def withheld_count(query: ExportQuery, *, alias: str, rows: int) -> int:
    """How many rows a region-restricted read matched but did not return (0 when the read
    was not restricted); ``rows``: how many it returned."""
    if query.regions is None:
        return 0
    connection = connections[alias]
    reached_end = query.limit is None or rows < query.limit
    with connection.cursor() as cursor:
        cursor.execute(*withheld_select(query, connection.vendor, reached_end=reached_end))
        return cursor.fetchone()[0]
