"""Celery tasks: ids in, services do the work. ``acks_late`` is global (settings)."""

from celery import shared_task

from integrations.engine import runs


@shared_task(name="integrations.run_sync", ignore_result=True)
def run_sync_task(*, run_id: int) -> None:
    runs.run_execute(run_id=run_id)


@shared_task(name="integrations.deliver_batch", ignore_result=True)
def deliver_batch_task(*, batch_id: int) -> None:
    runs.batch_execute(batch_id=batch_id)


@shared_task(name="integrations.poll_batch", ignore_result=True)
def poll_batch_task(*, batch_id: int) -> None:
    runs.batch_poll(batch_id=batch_id)


@shared_task(name="integrations.run_schedule", ignore_result=True)
def run_schedule_task(*, sync_id: int) -> None:
    """Beat's entry point for a sync's schedule."""
    from integrations.models import Sync, Trigger
    from integrations.services import SyncBusy, sync_run_start

    sync = Sync.objects.filter(pk=sync_id).first()
    if sync is None or not sync.enabled or sync.paused:
        return
    # A run still going means this tick has nothing to do; the next one tries again. A
    # real-time sync is busy with its real-time runs most of the time: the dispatcher starts
    # the scheduled run when the one going ends.
    try:
        sync_run_start(sync=sync, trigger=Trigger.SCHEDULE)
    except SyncBusy:
        if sync.realtime:
            Sync.objects.filter(pk=sync.pk).update(schedule_waiting=True)


@shared_task(name="integrations.quota_resume", ignore_result=True)
def quota_resume_task() -> int:
    """Beat's entry point: runs for the syncs whose quota-deferred records may go now."""
    from integrations.services import quota_runs_start

    return quota_runs_start()


@shared_task(name="integrations.reap", ignore_result=True)
def reap_task() -> dict:
    return runs.runs_reap()


@shared_task(name="integrations.realtime_dispatch", ignore_result=True)
def realtime_dispatch_task() -> dict:
    """Beat's entry point (every second) and the ingest API's bell: real-time changes to
    runs (integrations.engine.realtime)."""
    from integrations.engine.realtime import realtime_dispatch

    return realtime_dispatch()


@shared_task(name="integrations.realtime_lag_prune", ignore_result=True)
def realtime_lag_prune_task() -> int:
    """Beat's entry point (hourly): latency rows older than the dashboard reads."""
    from integrations.engine.realtime import realtime_lag_prune

    return realtime_lag_prune()
