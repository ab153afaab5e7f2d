"""The engine's state writes that others call too: pausing a sync, marking a connection
failed, ending a run and adding a batch's counts to its run. (Services call these; the engine
never calls back into the services.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connection
from django.utils import timezone

from integrations.models import ConnectionStatus, Sync, SyncRun

if TYPE_CHECKING:
    from integrations.engine.executor import BatchResult


def sync_pause(*, sync: Sync, reason: str) -> None:
    """Pause a sync with the reason (saved, so the change history records who and why)."""
    sync.paused, sync.pause_reason = True, reason[:2000]
    sync.save(update_fields=["paused", "pause_reason", "updated_at"])


def sync_quota_resume(*, sync_id: int, at) -> None:
    """Records of the sync were deferred by the daily quota: a run starts at ``at``, when
    its next window opens (``integrations.services.quota_runs_start``)."""
    Sync.objects.filter(pk=sync_id).update(quota_resume_at=at)


def run_end(run: SyncRun, status: str, *, error: str = "") -> None:
    SyncRun.objects.filter(pk=run.pk).update(status=status, finished_at=timezone.now(), error=error)


def connection_mark_failed(connection, *, auth: bool, message: str) -> None:
    type(connection).objects.filter(pk=connection.pk).update(
        status=ConnectionStatus.AUTH_FAILED if auth else ConnectionStatus.FAILING,
        last_error=message[:2000],
        last_checked_at=timezone.now(),
    )


def run_counters_add(run_id: int, result: BatchResult, *, finished: bool = True) -> None:
    """Add a batch's counts to its run (and, when it finished, count it as done); note
    whether it was the run's last."""
    increments = {name: count for name, count in result.counts.items() if count}
    increments.update(
        batches_done=1 if finished else 0,
        batches_total=len(result.new_batches),
        api_calls=result.api_calls,
        rate_limited=result.rate_limited,
    )
    table = SyncRun._meta.db_table
    assignments = ", ".join(f"{name} = {name} + %s" for name in increments)
    with connection.cursor() as cursor:
        cursor.execute(  # column names from BUCKETS and the model, values bound
            f"UPDATE {table} SET {assignments}, heartbeat_at = %s WHERE id = %s "  # noqa: S608
            "RETURNING batches_done, batches_total",
            [
                *increments.values(),
                connection.ops.adapt_datetimefield_value(timezone.now()),
                run_id,
            ],
        )
        done, total = cursor.fetchone()
    result.run_complete = done >= total
