"""A run's life: claim, plan, dispatch batches, count, finish; and the reaper.

Every step is a database transition guarded by one atomic UPDATE on the current status, so a
task delivered twice (Redis redelivery, the reaper) does nothing the second time. The broker
only rings the bell; the rows say what is to be done (docs/adr/0001).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.models import Outcome
from exports.query import ExportInputError
from integrations.engine.access import plan_access_log
from integrations.engine.dispatch import dispatch_batches, dispatch_polls, dispatch_run
from integrations.engine.executor import JOB, BatchDelivery, BatchTakenOver, job_poll_seconds
from integrations.engine.planner import CONSENT_UNAVAILABLE, Planner
from integrations.engine.realtime import realtime_lag_record, realtime_targets_return
from integrations.engine.state import connection_mark_failed, run_end, sync_pause
from integrations.mapping import MappingError
from integrations.models import LedgerEntry, LedgerStatus, RunStatus, Sync, SyncBatch, SyncRun
from integrations.models.runs import BatchStatus
from mktintegration.logcontext import log_context_set

log = logging.getLogger(__name__)
MAX_RUN_ATTEMPTS = 3


def run_claim(run_id: int) -> SyncRun | None:
    now = timezone.now()
    claimed = SyncRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.PLANNING, started_at=now, heartbeat_at=now
    )
    return SyncRun.objects.select_related("sync__connection").get(pk=run_id) if claimed else None


def run_execute(*, run_id: int) -> None:
    """Plan a queued run and send its batches (the run task)."""
    run = run_claim(run_id)
    if run is None:
        return
    log_context_set(run_id=run.pk, sync_id=run.sync_id)
    sync = run.sync
    if sync.paused or not sync.enabled:
        run_end(run, RunStatus.SKIPPED, error=f"sync is paused: {sync.pause_reason or 'disabled'}")
        return

    def heartbeat():
        SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())

    try:
        planner = Planner(run, heartbeat=heartbeat)
    except (MappingError, ExportInputError, KeyError) as exc:
        _run_config_error(run, exc)
        return
    max_batch = planner.ctx.destination.max_batch
    connector_cls = planner.ctx.connector_cls
    per_task = max_batch * connector_cls.requests_per_task
    # Vendor jobs (Salesforce Bulk API 2.0): a run with more than the threshold to send goes in
    # batches of a job each. Whether it has is known once that many are planned (or the plan
    # ends), so the first flush waits for them.
    job_size = connector_cls.job_size(
        sync.destination_object, mode=sync.mode, destination_config=sync.destination_config or {}
    )
    threshold = connector_cls.job_threshold(sync.destination_object) if job_size else 0
    in_jobs = False

    def deliver(keys: list[str], kind: str) -> None:
        """Hand planned records to delivery tasks at once (the plan goes on meanwhile)."""
        nonlocal in_jobs
        size = per_task if kind == "upsert" else max_batch
        if kind == "upsert" and job_size and (in_jobs or len(keys) > threshold):
            in_jobs, kind, size = True, JOB, job_size
        with transaction.atomic():
            batches = SyncBatch.objects.bulk_create(
                SyncBatch(run=run, kind=kind, record_keys=keys[i : i + size])
                for i in range(0, len(keys), size)
            )
            SyncRun.objects.filter(pk=run.pk).update(
                batches_total=F("batches_total") + len(batches), heartbeat_at=timezone.now()
            )
            dispatch_batches([b.pk for b in batches])

    planner.on_keys = deliver
    planner.flush_size = max(threshold + 1, job_size) if job_size else per_task
    started, outcome = time.monotonic(), Outcome.ERROR
    try:
        result = planner.plan()
        outcome = Outcome.OK
    except (MappingError, ExportInputError, KeyError) as exc:
        _run_config_error(run, exc)
        return
    finally:
        plan_access_log(planner=planner, outcome=outcome, started=started)
    with transaction.atomic():
        # Batches may have counted records already: add the plan's own buckets to theirs.
        SyncRun.objects.filter(pk=run.pk).update(
            status=RunStatus.DELIVERING,
            planned=result.planned,
            plan_path=result.path[:200],
            heartbeat_at=timezone.now(),
            error=run.error,
            **{bucket: F(bucket) + count for bucket, count in result.counts.items()},
        )
        if result.watermark is not None:  # None: a real-time run of its targets only
            Sync.objects.filter(pk=sync.pk).update(
                source_watermark=result.watermark, planned_config_version=run.config_version
            )
    log.info(
        "run %s of sync %s planned %s records (%s) in %.1f s",
        run.pk,
        sync.pk,
        result.planned,
        result.path or "python",
        time.monotonic() - started,
    )
    if planner.mirror_guard_tripped:
        log.warning("sync %s: %s", sync.pk, run.error)
        from integrations.alerts import alert_mirror_guard

        alert_mirror_guard(sync=sync, run=run)
    run_finish_if_done(run.pk)  # every batch may be done already, or there were none


def _run_config_error(run: SyncRun, exc: Exception) -> None:
    reason = f"configuration error: {exc}"
    sync_pause(sync=run.sync, reason=reason)
    run_end(run, RunStatus.FAILED, error=reason)


def batch_claim(batch_id: int) -> SyncBatch | None:
    now = timezone.now()
    claimed = (
        SyncBatch.objects.filter(pk=batch_id, status=BatchStatus.QUEUED)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now + timedelta(seconds=1)))
        .update(status=BatchStatus.RUNNING, heartbeat_at=now)
    )
    if not claimed:
        return None
    return SyncBatch.objects.select_related("run__sync__connection").get(pk=batch_id)


def batch_execute(*, batch_id: int) -> None:
    """Deliver one batch (the batch task)."""
    batch = batch_claim(batch_id)
    if batch is not None:
        _work(batch, BatchDelivery.deliver)


def batch_poll(*, batch_id: int) -> None:
    """Check on a batch waiting for a vendor job (the poll task)."""
    now = timezone.now()
    claimed = SyncBatch.objects.filter(
        pk=batch_id, status=BatchStatus.WAITING, not_before__lte=now + timedelta(seconds=1)
    ).update(status=BatchStatus.RUNNING, heartbeat_at=now)
    if not claimed:
        return
    batch = SyncBatch.objects.select_related("run__sync__connection").get(pk=batch_id)
    _work(batch, BatchDelivery.poll)


def _work(batch: SyncBatch, step) -> None:
    """Deliver or poll a claimed batch (``step``), then schedule what follows. A batch another
    worker finished meanwhile drops this worker's results (BatchTakenOver)."""
    log_context_set(run_id=batch.run_id, sync_id=batch.run.sync_id)
    delivery = BatchDelivery(batch)
    try:
        result = step(delivery)
    except BatchTakenOver as exc:
        log.warning("%s; this worker's results were dropped", exc)
        return
    _after_batch(batch, delivery, result)


def _after_batch(batch, delivery, result) -> None:
    if result.pause_reason:
        sync = batch.run.sync
        sync_pause(sync=sync, reason=result.pause_reason)
        connection_mark_failed(
            sync.connection,
            auth=result.pause_reason.startswith("auth"),
            message=result.pause_reason,
        )
    if result.waiting_job:
        dispatch_polls([batch.pk], result.poll_in or job_poll_seconds())
        return
    if result.retry_in is not None:
        delivery.requeue()
        dispatch_batches([batch.pk], countdown=result.retry_in)
        return
    if result.new_batches:
        dispatch_batches(result.new_batches)
    if result.run_complete:
        run_finish_if_done(batch.run_id)


def run_finish_if_done(run_id: int) -> None:
    run = SyncRun.objects.select_related("sync").get(pk=run_id)
    if run.status != RunStatus.DELIVERING or run.batches_done < run.batches_total:
        return
    sent = run.created or run.updated or run.deleted
    # Deferred for a consent answer is a problem to see (fail closed); deferred by a daily quota
    # is the plan working: those records go with the run the quota's next window starts.
    consent_example = _consent_deferred_example(run) if run.deferred else None
    waits_for_consent = consent_example is not None
    if run.sync.paused:
        status = RunStatus.PAUSED
    elif waits_for_consent and not (sent or run.failed or run.rejected or run.dead_lettered):
        status = RunStatus.DEFERRED  # everything that was to be sent waits for consent
    elif run.failed or run.rejected or run.dead_lettered or waits_for_consent:
        status = RunStatus.PARTIAL
    else:
        status = RunStatus.SUCCEEDED
    error = run.error
    if consent_example is not None:
        error = "\n".join(filter(None, [error, _consent_deferred_reason(run, consent_example)]))
    elif run.deferred:
        error = "\n".join(filter(None, [error, _quota_deferred_reason(run)]))
    finished = SyncRun.objects.filter(pk=run_id, status=RunStatus.DELIVERING).update(
        status=status, finished_at=timezone.now(), error=error
    )
    if finished and run.targets:
        realtime_lag_record(run)


def _consent_deferred_example(run: SyncRun) -> str | None:
    """The reason of one record deferred for want of a consent answer (None: there is none)."""
    examples = LedgerEntry.objects.filter(
        sync_id=run.sync_id,
        status__in=(LedgerStatus.PENDING, LedgerStatus.INTENT_CREATE),
        last_error__startswith=CONSENT_UNAVAILABLE,
    ).values_list("last_error", flat=True)[:1]  # any one: no ordering to pay for
    return next(iter(examples), None)


def _consent_deferred_reason(run: SyncRun, example: str) -> str:
    why = example.removeprefix(CONSENT_UNAVAILABLE)
    return (
        f"{run.deferred} records deferred: the consent service did not answer ({why}). Nothing "
        "was sent for them; they are planned again on the next run."
    )


def _quota_deferred_reason(run: SyncRun) -> str:
    resume = run.sync.quota_resume_at
    when = f" at {resume:%Y-%m-%d %H:%M} UTC" if resume else ""
    return (
        f"{run.deferred} records wait for the daily quota's next window{when}: a run starts "
        "then and sends them."
    )


def runs_reap() -> dict[str, int]:
    """Put back work whose worker died or whose message was lost (beat: every minute)."""
    stale = timezone.now() - timedelta(seconds=settings.MKT_RUN_STALE_SECONDS)
    counts = {"runs": 0, "batches": 0, "failed": 0}
    for run in SyncRun.objects.filter(status=RunStatus.PLANNING, heartbeat_at__lt=stale):
        # Its batches may already be delivering: a second plan of the same run would count
        # them twice. The run ends here and a new run plans what is left.
        if not SyncRun.objects.filter(
            pk=run.pk, status=RunStatus.PLANNING, heartbeat_at__lt=stale
        ).update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error="planning stopped responding (its worker was lost); a new run plans again",
        ):
            continue
        counts["failed"] += 1
        if run.attempt + 1 < MAX_RUN_ATTEMPTS:
            try:
                with transaction.atomic():
                    again = SyncRun.objects.create(
                        sync_id=run.sync_id,
                        trigger=run.trigger,
                        triggered_by_id=run.triggered_by_id,
                        config_version=run.config_version,
                        attempt=run.attempt + 1,
                        targets=run.targets,
                    )
                    dispatch_run(again.pk)
                counts["runs"] += 1
            except IntegrityError:  # another run of the sync started meanwhile: it plans
                realtime_targets_return(run)
        else:
            realtime_targets_return(run)  # real-time records wait for the next run
    lost_runs = SyncRun.objects.filter(status=RunStatus.QUEUED, queued_at__lt=stale).values_list(
        "pk", flat=True
    )
    for run_id in lost_runs:
        counts["runs"] += 1
        dispatch_run(run_id)
    running = SyncBatch.objects.filter(status=BatchStatus.RUNNING, heartbeat_at__lt=stale)
    # A batch whose records are in a vendor job already (a job_ref without a submission stage)
    # was being polled: it goes back to waiting for its job, never to be sent again.
    polling = running.exclude(job_ref="").exclude(job_ref__contains="|")
    repolled = list(polling.values_list("pk", flat=True))
    polling.update(status=BatchStatus.WAITING, not_before=timezone.now())
    requeued = list(running.values_list("pk", flat=True))
    running.update(status=BatchStatus.QUEUED, not_before=None)
    waiting = SyncBatch.objects.filter(status=BatchStatus.QUEUED).filter(
        Q(not_before__lt=stale)
        | Q(not_before__isnull=True, heartbeat_at__lt=stale)
        | Q(not_before__isnull=True, heartbeat_at__isnull=True, run__started_at__lt=stale)
    )
    ids = sorted(set(requeued) | set(waiting.values_list("pk", flat=True)))
    counts["batches"] = len(ids)
    if ids:
        dispatch_batches(ids)
    jobs = list(
        SyncBatch.objects.filter(status=BatchStatus.WAITING, not_before__lt=stale).values_list(
            "pk", flat=True
        )
    )
    jobs = sorted(set(jobs) | set(repolled))
    counts["batches"] += len(repolled)
    if jobs:
        dispatch_polls(jobs, 0)
    return counts
