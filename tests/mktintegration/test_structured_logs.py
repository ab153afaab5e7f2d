"""Structured logs (mktintegration/logcontext.py): every line names its request, trace, run and
sync; "Run now" and the run a real worker plans share one trace id."""

from __future__ import annotations

import io
import json
import logging

import pytest

from integrations.models import SyncRun
from mktintegration import roles
from mktintegration.logcontext import ContextFilter, JsonFormatter, PlainFormatter
from tests.integrations.conftest import make_connection, make_sync
from tests.worker import WorkerProcess, clear_file_broker, wait_for

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def json_lines():
    """The lines the root logger writes through the configured JSON pieces, parsed."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


@pytest.mark.django_db
def test_a_requests_lines_carry_its_request_id_and_the_callers_trace(client, json_lines):
    response = client.get("/nowhere", HTTP_X_REQUEST_ID="edge-42.a_b", HTTP_TRACEPARENT=TRACEPARENT)

    assert response["X-Request-ID"] == "edge-42.a_b"
    line = next(line for line in json_lines() if line["logger"] == "django.request")
    assert line["level"] == "WARNING" and "/nowhere" in line["message"]
    assert (line["request_id"], line["trace_id"]) == ("edge-42.a_b", TRACE)
    assert "run_id" not in line


@pytest.mark.django_db
@pytest.mark.parametrize(
    "request_id, traceparent",
    [
        ("x" * 65, "00-" + "0" * 32 + "-00f067aa0ba902b7-01"),  # too long; all-zero trace id
        ("a b\nforged=1", "ff-" + TRACE + "-00f067aa0ba902b7-01"),  # bad characters; version ff
        ("", "not a traceparent"),
    ],
)
def test_malformed_ids_are_replaced_not_logged(client, json_lines, request_id, traceparent):
    response = client.get("/nowhere", HTTP_X_REQUEST_ID=request_id, HTTP_TRACEPARENT=traceparent)

    line = next(line for line in json_lines() if line["logger"] == "django.request")
    assert line["request_id"] == response["X-Request-ID"] != request_id
    assert len(line["request_id"]) == 32 and len(line["trace_id"]) == 32
    assert line["trace_id"] != TRACE and set(line["trace_id"]) != {"0"}


def test_the_plain_format_ends_a_line_with_the_ids_known():
    record = logging.LogRecord("mkt", logging.INFO, __file__, 1, "planned %s", (3,), None)
    record.run_id, record.sync_id = 12, 4

    assert PlainFormatter().format(record).endswith("INFO mkt planned 3 [run_id=12 sync_id=4]")


@pytest.mark.worker
def test_run_now_and_the_run_a_worker_plans_share_one_trace(
    transactional_db, monkeypatch, hubspot, client_for
):
    monkeypatch.setenv("MKT_LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    clear_file_broker()
    worker = WorkerProcess(name="json-log-worker").start()
    try:
        sync = make_sync(make_connection("hubspot", hubspot))
        client = client_for(roles.INTEGRATION_ADMIN)
        client.post(
            "/admin/integrations/sync/",
            {"action": "run_now", "_selected_action": [sync.pk]},
            HTTP_X_REQUEST_ID="run-now-1",
            HTTP_TRACEPARENT=TRACEPARENT,
        )
        run = SyncRun.objects.get(sync=sync)

        def planned():
            for raw in worker.output().splitlines():
                if raw.startswith("{") and f"run {run.pk} of sync" in raw:
                    return json.loads(raw)
            return None

        try:
            line = wait_for(planned, timeout=90, what="the worker's JSON line of the plan")
        except TimeoutError:
            pytest.fail("no JSON plan line; the worker's log:\n" + worker.output())
    finally:
        worker.stop()

    assert line["logger"] == "integrations.engine.runs" and line["level"] == "INFO"
    assert (line["run_id"], line["sync_id"]) == (run.pk, sync.pk)
    assert (line["trace_id"], line["request_id"]) == (TRACE, "run-now-1")
    # Celery's own lines are JSON too.
    assert any(
        raw.startswith("{") and json.loads(raw)["logger"].startswith("celery")
        for raw in worker.output().splitlines()
    )


def test_a_task_run_inside_a_request_gives_the_request_its_ids_back():
    from types import SimpleNamespace

    from mktintegration import logcontext

    logcontext.log_context_set(request_id="outer", trace_id=TRACE)
    headers: dict = {}
    logcontext.task_published(headers=headers)
    task = SimpleNamespace(request=SimpleNamespace(**headers))

    logcontext.task_started(task=task)
    inside = logcontext.current()
    logcontext.log_context_set(run_id=7)
    logcontext.task_ended(task=task)

    assert inside == {"request_id": "outer", "trace_id": TRACE}
    assert logcontext.current() == {"request_id": "outer", "trace_id": TRACE}
    logcontext.task_ended(task=SimpleNamespace(request=SimpleNamespace()))  # never started
    assert logcontext.current() == {}
