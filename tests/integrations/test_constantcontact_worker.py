"""A real Celery worker killed with SIGKILL while it reads back what a finished Constant
Contact import created, the other imports of the run still running there: a replacement worker
polls every activity to its end and commits it, and no contact is imported twice."""

from __future__ import annotations

import time

import pytest

from integrations.models import LedgerEntry, RunStatus, SyncBatch, SyncRun
from integrations.services import sync_run_start
from tests.fakes.constantcontact import CLIENT_ID, CLIENT_SECRET, IMPORT_PATH
from tests.integrations.test_constantcontact_sync import _people, contacts_sync, imported_rows
from tests.worker import WorkerProcess, clear_file_broker, finish_after_kill, wait_for

ACTIVITIES = "/v3/activities/"
READ_BACK = "/v3/contacts"  # the contacts an import created (not /v3/contact_lists)


@pytest.fixture
def worker_env(monkeypatch, settings):
    """What the worker processes read from the environment: an activity looked at every
    0.3 s, a run stale after 2 s, the emulator's OAuth app."""
    env = {
        "MKT_SYNC_JOB_POLL_SECONDS": "0.3",
        "MKT_RUN_STALE_SECONDS": "2",
        "MKT_CONSTANTCONTACT_CLIENT_ID": CLIENT_ID,
        "MKT_CONSTANTCONTACT_CLIENT_SECRET": CLIENT_SECRET,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.MKT_RUN_STALE_SECONDS = 2  # this process runs the reaper


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_import_leaves_the_imports_to_another_worker_sent_once(
    constantcontact, worker_env, settings
):
    people = _people(3_000)  # three imports of 1,000
    sync = contacts_sync(constantcontact)
    constantcontact.account.job_seconds = 3  # the imports run a while at Constant Contact
    # The first read-back of a finished import hangs: the kill lands while the contacts are at
    # Constant Contact and our ledger has not committed them.
    constantcontact.delay_next(1, 60, path_contains=READ_BACK, writes_only=False)
    clear_file_broker()
    first = WorkerProcess(name="first").start()
    try:
        run = sync_run_start(sync=sync, trigger="manual")
        wait_for(
            lambda: (
                SyncBatch.objects.filter(run=run).exclude(job_ref="").count() == 3
                and constantcontact.calls(ACTIVITIES)
            ),
            timeout=120,
            what="every batch to wait for its import, and a look at one",
        )
        first.kill()  # SIGKILL the worker and its pool: no cleanup, no acknowledgements
    finally:
        first.stop()
    killed_at = time.time()
    assert len(constantcontact.imports()) == 3
    assert SyncRun.objects.get(pk=run.pk).status == RunStatus.DELIVERING

    finish_after_kill(run)

    run.refresh_from_db()
    assert (run.status, run.created, run.failed) == (RunStatus.SUCCEEDED, 3_000, 0), run.counts()
    assert len(constantcontact.calls(IMPORT_PATH)) == 3  # no import sent again
    assert sorted(row["email"] for row in imported_rows(constantcontact)) == sorted(
        p.email for p in people
    )
    assert [c for c in constantcontact.calls(ACTIVITIES) if c.timestamp > killed_at]
    assert {constantcontact.create_count(p.email) for p in people} == {1}
    statuses = set(LedgerEntry.objects.filter(sync=sync).values_list("status", flat=True))
    assert statuses == {"synced"}
    assert constantcontact.violations == []
