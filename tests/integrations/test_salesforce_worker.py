"""A real Celery worker killed with SIGKILL while it reads a Salesforce Bulk API 2.0 job's
results, the other jobs of the run still running at Salesforce: a replacement worker polls
every job to its end and commits it, and no record is uploaded twice."""

from __future__ import annotations

import time

import pytest

from integrations.models import LedgerEntry, RunStatus, SyncRun
from integrations.services import sync_run_start
from tests.factories import CompanyFactory
from tests.fakes.salesforce_oauth import CLIENT_ID, CLIENT_SECRET
from tests.integrations.conftest import make_sync
from tests.integrations.contract.profiles.salesforce import connected
from tests.worker import WorkerProcess, clear_file_broker, finish_after_kill, wait_for

RESULTS = "/successfulResults"


@pytest.fixture
def bulk_worker_env(monkeypatch, settings):
    """What the worker processes read from the environment: runs of more than 100 records in
    jobs of 200, a job looked at every 0.3 s, the emulator's OAuth app."""
    env = {
        "MKT_SALESFORCE_BULK_THRESHOLD": "100",
        "MKT_SALESFORCE_BULK_JOB_RECORDS": "200",
        "MKT_SYNC_JOB_POLL_SECONDS": "0.3",
        "MKT_RUN_STALE_SECONDS": "2",
        "MKT_SALESFORCE_CLIENT_ID": CLIENT_ID,
        "MKT_SALESFORCE_CLIENT_SECRET": CLIENT_SECRET,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.MKT_RUN_STALE_SECONDS = 2  # this process runs the reaper


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_bulk_job_leaves_the_jobs_to_another_worker_uploaded_once(
    salesforce, bulk_worker_env, settings
):
    companies = CompanyFactory.create_batch(600)  # three jobs of 200
    sync = make_sync(
        connected("salesforce", salesforce),
        obj="Account",
        mappings=[("name", "Name"), ("employees", "NumberOfEmployees")],
        match=("external_id", "External_Id__c"),
    )
    salesforce.bulk.job_seconds = 3  # the jobs run a while at Salesforce
    # The first look at a finished job's results hangs: the kill lands in the middle of it.
    salesforce.delay_next(1, 60, path_contains=RESULTS, writes_only=False)
    clear_file_broker()
    first = WorkerProcess(name="first").start()
    try:
        run = sync_run_start(sync=sync, trigger="manual")
        wait_for(lambda: salesforce.calls(RESULTS), timeout=120, what="a job's results to be read")
        first.kill()  # SIGKILL the worker and its pool: no cleanup, no acknowledgements
    finally:
        first.stop()
    killed_at = time.time()
    cut = salesforce.calls(RESULTS)[0].path.split("/jobs/ingest/")[1].split("/")[0]
    assert salesforce.bulk.uploaded_rows == 600  # every job had its data before the kill
    assert SyncRun.objects.get(pk=run.pk).status == RunStatus.DELIVERING

    finish_after_kill(run)

    run.refresh_from_db()
    assert (run.status, run.created, run.failed) == (RunStatus.SUCCEEDED, 600, 0), run.counts()
    assert len(salesforce.bulk.jobs) == 3  # no job started again
    assert {job.state for job in salesforce.bulk.jobs.values()} == {"JobComplete"}
    assert salesforce.bulk.uploaded_rows == 600  # nothing uploaded twice
    looked_at_after = [
        c for c in salesforce.calls(f"/jobs/ingest/{cut}", "GET") if c.timestamp > killed_at
    ]
    assert looked_at_after  # the job whose results were cut off: the replacement polled it
    assert all(
        salesforce.create_count("Account", "External_Id__c", c.external_id) == 1 for c in companies
    )
    statuses = set(LedgerEntry.objects.filter(sync=sync).values_list("status", flat=True))
    assert statuses == {"synced"}
    assert salesforce.violations == []
