"""A real Celery worker killed with SIGKILL during a real-time burst: the interrupted run is
taken back with its records, and every change reaches HubSpot, none created twice
(docs/realtime.md; issue 14's chaos list)."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from exports.backbone.models import Company
from integrations.engine.realtime import realtime_dispatch
from integrations.engine.runs import runs_reap
from integrations.models import LedgerEntry, RealtimePending, RunStatus, SyncRun
from integrations.models.runs import ACTIVE_RUN_STATUSES
from integrations.services import sync_run_start, sync_save
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync
from tests.worker import WorkerProcess, wait_for


def _dispatching(condition, *, timeout: float, what: str):
    """Wait for ``condition`` while doing what beat does every second: a dispatcher tick."""

    def tick_and_check():
        realtime_dispatch()
        return condition()

    return wait_for(tick_and_check, timeout=timeout, what=what)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_during_a_burst_loses_no_change_and_creates_nothing_twice(
    celery_worker, hubspot, settings
):
    settings.MKT_RUN_STALE_SECONDS = 2
    settings.MKT_REALTIME_WINDOW_SECONDS = 0.2
    settings.MKT_REALTIME_RUN_RECORDS = 200  # the burst is several runs, one after the other
    CompanyFactory.create_batch(300)
    sync = make_sync(make_connection("hubspot", hubspot))
    sync.realtime, sync.every_minutes = True, 60
    sync_save(sync=sync)
    first = sync_run_start(sync=sync, trigger="manual")
    wait_for(
        lambda: SyncRun.objects.get(pk=first.pk).status == RunStatus.SUCCEEDED,
        timeout=120,
        what="the first plan",
    )

    # The burst: 300 renames and 200 new companies, each its own write (its own event).
    # HubSpot applies every write at once and answers late: a kill hits writes it applied.
    hubspot.delay_next(1_000, 0.4, apply_first=True)
    for company in Company.objects.order_by("pk"):
        Company.objects.filter(pk=company.pk).update(
            name=f"Burst {company.pk}", updated_at=timezone.now()
        )
    CompanyFactory.create_batch(200)

    sent_before = len(hubspot.calls("batch/upsert"))
    busy = _dispatching(
        lambda: (
            len(hubspot.calls("batch/upsert")) >= sent_before + 3
            and SyncRun.objects.filter(trigger="realtime", status=RunStatus.DELIVERING).first()
        ),
        timeout=120,
        what="a real-time run with writes at HubSpot",
    )
    celery_worker.kill()  # no cleanup, no acknowledgements
    assert SyncRun.objects.get(pk=busy.pk).status == RunStatus.DELIVERING

    replacement = WorkerProcess(name="replacement").start()
    try:
        time.sleep(settings.MKT_RUN_STALE_SECONDS + 1)
        runs_reap()  # what beat does every minute
        _dispatching(
            lambda: (
                not RealtimePending.objects.exists()
                and not SyncRun.objects.filter(sync=sync, status__in=ACTIVE_RUN_STATUSES).exists()
            ),
            timeout=180,
            what="every waiting change to be sent",
        )
    finally:
        replacement.stop()

    runs = SyncRun.objects.filter(sync=sync, trigger="realtime")
    assert runs.count() >= 3  # the burst was batched into runs of at most 200
    assert set(runs.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
    stored = {o["properties"]["external_id"]: o for o in hubspot.objects("companies")}
    companies = {c.external_id: c.name for c in Company.objects.all()}
    assert len(companies) == 500
    assert {k: o["properties"]["name"] for k, o in stored.items()} == companies  # none lost
    assert max(o["created_count"] for o in stored.values()) == 1  # none created twice
    assert set(LedgerEntry.objects.filter(sync=sync).values_list("status", flat=True)) == {"synced"}
    assert hubspot.pending_faults < 1_000  # the kill did hit writes in flight
    assert hubspot.violations == []
