"""A real Celery worker killed with SIGKILL in the middle of a run (file broker, or Redis in CI)."""

import time

import pytest
from django.utils import timezone

from integrations.engine.runs import runs_reap
from integrations.models import LedgerEntry, RunStatus, SyncBatch, SyncRun
from integrations.models.runs import BUCKETS, BatchStatus
from integrations.services import sync_run_start
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync
from tests.worker import WorkerProcess, wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_run_loses_nothing_and_creates_nothing_twice(
    celery_worker, hubspot, settings
):
    settings.MKT_RUN_STALE_SECONDS = 2
    companies = CompanyFactory.create_batch(3000)  # six tasks of five requests
    sync = make_sync(make_connection("hubspot", hubspot))
    # Every write lands at HubSpot, then the answer is slow: a kill now hits a batch that was
    # applied at the destination and not yet committed in our ledger.
    hubspot.delay_next(1000, 0.4, apply_first=True)

    run = sync_run_start(sync=sync, trigger="manual")
    wait_for(
        lambda: SyncBatch.objects.filter(run=run, status=BatchStatus.DONE).count() >= 2,
        timeout=120,
        what="a few batches to be delivered",
    )
    celery_worker.kill()  # SIGKILL the worker and its pool: no cleanup, no acknowledgements
    assert SyncRun.objects.get(pk=run.pk).status == RunStatus.DELIVERING

    replacement = WorkerProcess(name="replacement").start()
    try:
        time.sleep(settings.MKT_RUN_STALE_SECONDS + 1)
        runs_reap()  # what beat does every minute: put back the dead worker's batches
        wait_for(
            lambda: SyncRun.objects.get(pk=run.pk).status not in ("delivering", "planning"),
            timeout=180,
            what="the interrupted run to finish",
        )
        follow_up = sync_run_start(sync=sync, trigger="manual")
        wait_for(
            lambda: SyncRun.objects.get(pk=follow_up.pk).status in ("succeeded", "partial"),
            timeout=120,
            what="the next run to finish",
        )
    finally:
        replacement.stop()

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.counts())
    assert sum(getattr(run, b) for b in BUCKETS) == run.planned == 3000
    stored = {o["properties"]["external_id"]: o for o in hubspot.objects("companies")}
    assert set(stored) == {c.external_id for c in companies}  # every record arrived
    assert max(o["created_count"] for o in stored.values()) == 1  # none created twice
    assert set(LedgerEntry.objects.filter(sync=sync).values_list("status", flat=True)) == {"synced"}
    assert hubspot.violations == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_mirror_sync_killed_mid_run_still_knows_what_it_created(celery_worker, hubspot, settings):
    settings.MKT_RUN_STALE_SECONDS = 2
    companies = CompanyFactory.create_batch(1_200, country="DE")  # three tasks
    sync = make_sync(
        make_connection("hubspot", hubspot),
        mode="mirror",
        mirror_max_delete_share=1,
        filters={"country": "DE"},
    )
    # Writes land at once and are answered late: the kill hits a write HubSpot applied.
    hubspot.delay_next(1_000, 0.4, apply_first=True)

    run = sync_run_start(sync=sync, trigger="manual")
    wait_for(
        lambda: SyncBatch.objects.filter(run=run, status=BatchStatus.DONE).count() >= 1,
        timeout=120,
        what="a quarter of the run to be delivered",
    )
    celery_worker.kill()
    replacement = WorkerProcess(name="replacement").start()
    try:
        time.sleep(settings.MKT_RUN_STALE_SECONDS + 1)
        runs_reap()
        wait_for(
            lambda: SyncRun.objects.get(pk=run.pk).status not in ("delivering", "planning"),
            timeout=180,
            what="the interrupted run to finish",
        )
        run.refresh_from_db()
        # Every record left the sync's filter: mirror archives all it created.
        CompanyFactory._meta.model.objects.filter(pk__in=[c.pk for c in companies]).update(
            country="FR", updated_at=timezone.now()
        )
        cleanup = sync_run_start(sync=sync, trigger="manual")
        wait_for(
            lambda: SyncRun.objects.get(pk=cleanup.pk).status in ("succeeded", "partial"),
            timeout=120,
            what="the mirror run to finish",
        )
    finally:
        replacement.stop()

    cleanup.refresh_from_db()
    assert hubspot.pending_faults < 1_000  # the kill did hit writes in flight
    assert (run.status, run.created, run.updated) == (RunStatus.SUCCEEDED, 1_200, 0), run.counts()
    assert cleanup.deleted == 1_200, cleanup.counts()
    stored = hubspot.objects("companies")
    assert len(stored) == 1_200 and all(o["archived"] for o in stored)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_absorbs_502s_per_request_and_sends_no_bad_value(celery_worker, hubspot):
    """One task of five vendor requests; each fails once with a 502 (five in all: as many as
    one request may have), and some records carry a stage HubSpot does not offer: the run
    succeeds, the bad values are invalid without a request, none is spent isolating them."""
    CompanyFactory.create_batch(500, lifecycle_stage="lead")
    CompanyFactory.create_batch(50, lifecycle_stage="churned")
    sync = make_sync(
        make_connection("hubspot", hubspot),
        mappings=[("name", "name"), ("lifecycle_stage", "lifecyclestage")],
    )
    requests = 5  # 500 good records: one task of five requests of 100
    hubspot.fail_next(1, status=502, path_contains="batch/upsert")
    for _ in range(requests - 1):
        hubspot.fail_next(1, status=502, path_contains="batch/upsert", after=1)

    run = sync_run_start(sync=sync, trigger="manual")
    wait_for(
        lambda: SyncRun.objects.get(pk=run.pk).status not in ("queued", "planning", "delivering"),
        timeout=180,
        what="the run to finish",
    )

    run.refresh_from_db()
    assert (run.status, run.created, run.invalid, run.failed) == (
        RunStatus.SUCCEEDED,
        500,
        50,
        0,
    ), run.counts()
    assert len(hubspot.calls("batch/upsert")) == 2 * requests  # each failed once, then landed
    assert hubspot.pending_faults == 0 and hubspot.violations == []
