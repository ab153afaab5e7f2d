"""Celery tasks for scheduled exports. Thin: they take ids and call services."""

from __future__ import annotations

import logging

from celery import shared_task

from exports.models import ExportSchedule, RunTrigger
from exports.runs import export_run_execute
from exports.services import export_run_start, export_runs_reap

log = logging.getLogger(__name__)


@shared_task(name="exports.run_schedule", ignore_result=True)
def run_schedule(*, schedule_id: int) -> None:
    """Beat's entry for one schedule: start a run (it may be recorded as skipped)."""
    schedule = ExportSchedule.objects.filter(pk=schedule_id).first()
    if schedule is None:
        log.warning("export schedule %s no longer exists; its beat entry is stale", schedule_id)
        return
    export_run_start(schedule=schedule, trigger=RunTrigger.SCHEDULE)


@shared_task(bind=True, name="exports.run_export", ignore_result=True, max_retries=None)
def export_run_task(self, *, run_id: int) -> None:
    """One attempt of a run. A transient failure left the run queued; try again later.

    The attempt limit is MKT_EXPORT_MAX_ATTEMPTS, counted in the run row (not by Celery).
    """
    outcome = export_run_execute(run_id=run_id)
    if outcome is not None and outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(name="exports.reap_stale_runs", ignore_result=True)
def reap_stale_runs() -> dict[str, int]:
    """Every minute: take back runs whose worker died, resend lost tasks."""
    return export_runs_reap()
