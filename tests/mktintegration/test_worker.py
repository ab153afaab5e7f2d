"""A real Celery worker consumes what the app sends (file broker, or Redis in CI)."""

import uuid

import pytest

from mktintegration.models import WorkerHeartbeat
from mktintegration.tasks import heartbeat
from tests.worker import wait_for


@pytest.mark.worker
def test_a_real_worker_runs_a_task_sent_through_the_broker(celery_worker):
    marker = f"probe-{uuid.uuid4().hex[:8]}"

    heartbeat.delay(hostname=marker)

    try:
        row = wait_for(
            lambda: WorkerHeartbeat.objects.filter(hostname=marker).first(),
            timeout=90,
            what="the worker to run the heartbeat task",
        )
    except TimeoutError:
        pytest.fail("worker did not run the task; its log:\n" + celery_worker.output())
    assert row.seen_at is not None
