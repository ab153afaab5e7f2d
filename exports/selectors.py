"""Reads for scheduled exports: what a user may see and run, and where a run's file is."""

from __future__ import annotations

from pathlib import Path

from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from exports.destinations.local import file_path
from exports.models import ExportRun, ExportSchedule, RunStatus

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
