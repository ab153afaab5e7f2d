"""End to end: a real Celery worker process runs a scheduled export sent through the broker."""

import pytest

from audit.models import AccessLog
from exports.models import ExportRun, RunStatus, RunTrigger
from exports.services import export_run_start
from tests.exports.helpers import csv_rows
from tests.factories import CompanyFactory
from tests.worker import wait_for


@pytest.fixture
def worker_export_dir(tmp_path, monkeypatch, settings):
    """MKT_EXPORT_DIR for the worker process (set before it starts) and for this process."""
    folder = tmp_path / "worker-exports"
    monkeypatch.setenv("MKT_EXPORT_DIR", str(folder))
    settings.MKT_EXPORT_DIR = folder
    return folder


@pytest.mark.worker
def test_a_real_worker_writes_a_local_folder_export_sent_through_the_broker(
    worker_export_dir, celery_worker, make_schedule, manager
):
    companies = CompanyFactory.create_batch(5)
    schedule = make_schedule(name="Worker drop", fields=["id", "name"])

    run = export_run_start(schedule=schedule, trigger=RunTrigger.MANUAL, user=manager)

    try:
        wait_for(
            lambda: ExportRun.objects.filter(
                pk=run.pk, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]
            ).exists(),
            timeout=90,
            what="the worker to finish the export run",
        )
    except TimeoutError:
        pytest.fail("the worker did not finish the run; its log:\n" + celery_worker.output())
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error + "\n" + celery_worker.output()
    data = (worker_export_dir / run.destination_result["path"]).read_bytes()
    assert csv_rows(data) == [["id", "name"], *[[str(c.pk), c.name] for c in companies]]
    assert run.rows == 5 and run.attempt == 1
    log = AccessLog.objects.get(channel="file")
    assert log.outcome == "ok" and log.rows == 5
