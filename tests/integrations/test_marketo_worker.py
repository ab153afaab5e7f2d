"""Marketo under a real Celery worker killed with SIGKILL mid-run: every company arrives once,
the ledger says synced, and what the kill cut short is sent again without a duplicate."""

import pytest

from integrations.models import LedgerEntry, RunStatus, SyncBatch, SyncRun
from integrations.models.runs import BUCKETS, BatchStatus
from integrations.services import sync_run_start
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_marketo_connection, make_sync
from tests.worker import WorkerProcess, clear_file_broker, finish_after_kill, wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_to_marketo_loses_nothing_and_creates_nothing_twice(
    transactional_db, marketo, settings
):
    settings.MKT_RUN_STALE_SECONDS = 2
    clear_file_broker()
    companies = CompanyFactory.create_batch(3000)  # two tasks of five Sync Companies calls
    sync = make_sync(
        make_marketo_connection(marketo),
        obj="companies",
        mappings=[("name", "company"), ("employees", "numberOfEmployees")],
        match=("external_id", "externalCompanyId"),
    )
    # Each write lands at Marketo, then the answer is slow: the kill hits a call Marketo
    # applied and our ledger has not committed.
    marketo.delay_next(1000, 0.4, apply_first=True, path_contains="/rest/v1/companies.json")

    # One process: the second task is under way when the first is done (two processes would
    # deliver both at once, and the run could end before the kill).
    celery_worker = WorkerProcess(name="killed", concurrency=1).start()
    try:
        run = sync_run_start(sync=sync, trigger="manual")
        wait_for(
            lambda: SyncBatch.objects.filter(run=run, status=BatchStatus.DONE).count() >= 1,
            timeout=120,
            what="a first task to be delivered",
        )
        celery_worker.kill()
    finally:
        celery_worker.stop()  # (after the kill: nothing to stop)
    assert SyncRun.objects.get(pk=run.pk).status == RunStatus.DELIVERING

    finish_after_kill(run, timeout=180)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.counts())
    assert sum(getattr(run, b) for b in BUCKETS) == run.planned == 3000
    ids = [c.external_id for c in companies]
    assert all(marketo.find("company", "externalCompanyId", v) for v in ids)  # all arrived
    assert {marketo.create_count("company", "externalCompanyId", v) for v in ids} == {1}
    assert set(LedgerEntry.objects.filter(sync=sync).values_list("status", flat=True)) == {"synced"}
    assert marketo.violations == []
