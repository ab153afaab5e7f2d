"""Traces (mktintegration/tracing.py): "Run now" in the admin, the run a real worker plans and
delivers, and the vendor request it makes are one OpenTelemetry trace, with the run and sync
ids on the spans; off unless OTEL_TRACES_EXPORTER asks."""

from __future__ import annotations

import contextvars
import json
import logging

import pytest
from django.db import connection
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integrations.models import SyncRun
from mktintegration import roles, tracing
from mktintegration.logcontext import ContextFilter, JsonFormatter, log_context_set
from tests.factories import CompanyFactory
from tests.fakes.otlp import FakeCollector
from tests.integrations.conftest import make_connection, make_sync, start_and_drive
from tests.worker import WorkerProcess, clear_file_broker, wait_for

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def spans():
    """Traces on in this process, as configure() turns them on, the spans kept in memory."""
    provider = TracerProvider(resource=Resource.create({"service.name": "mktintegration-test"}))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.instrument(provider)
    try:
        yield exporter
    finally:
        tracing.uninstrument()
        provider.shutdown()


def _hex(number: int, digits: int) -> str:
    return format(number, f"0{digits}x")


def _url(attributes) -> str:
    """The URL of an HTTP client span (the semantic conventions' old or stable name)."""
    return str(attributes.get("url.full") or attributes.get("http.url") or "")


def test_traces_are_off_unless_an_exporter_is_named():
    assert tracing.exporters_from({}) == []
    assert tracing.exporters_from({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert tracing.exporters_from({"OTEL_TRACES_EXPORTER": "otlp,console"}) == ["otlp", "console"]
    on_but_disabled = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}
    assert tracing.exporters_from(on_but_disabled) == []
    assert not tracing.active()  # the test settings trace nothing


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER takes otlp, console or none"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "The OTLP exporter speaks http/protobuf, not 'grpc'",
        ),
    ],
)
def test_an_exporter_we_do_not_have_is_refused_at_start(tmp_path, variables, message):
    from tests.mktintegration.test_settings import _manage, _production_env

    result = _manage(_production_env(tmp_path, **variables), "check")

    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert message in result.stderr


def test_a_request_continues_the_callers_trace_and_its_log_lines_name_it(db, client, spans, caplog):
    caplog.set_level(logging.WARNING, logger="django.request")
    response = client.get("/marketing/export/clients", HTTP_TRACEPARENT=TRACEPARENT)

    assert response.status_code in (401, 403)
    (server,) = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert _hex(server.context.trace_id, 32) == TRACE
    assert server.attributes["http.route"].startswith("marketing/export/clients")
    record = next(r for r in caplog.records if r.name == "django.request")
    ContextFilter().filter(record)
    assert json.loads(JsonFormatter().format(record))["trace_id"] == TRACE


def test_a_vendor_call_made_for_a_run_names_the_run_and_sync(db, spans, hubspot):
    CompanyFactory.create_batch(3)
    sync = make_sync(make_connection("hubspot", hubspot))
    run = start_and_drive(sync)

    vendor_calls = [
        s
        for s in spans.get_finished_spans()
        if s.kind.name == "CLIENT" and _url(s.attributes).startswith(hubspot.url)
    ]
    assert run.status == "succeeded" and vendor_calls
    upserts = [s for s in vendor_calls if "batch/upsert" in _url(s.attributes)]
    assert upserts and all(
        (s.attributes["mkt.run_id"], s.attributes["mkt.sync_id"]) == (run.pk, sync.pk)
        for s in upserts
    )


def _values(span) -> str:
    return " ".join(str(v) for v in span.attributes.values())


def test_spans_keep_no_query_string_and_no_address_in_a_path(db, client, spans, hubspot):
    from mktintegration.http import HttpClient

    client.post("/marketing/integrations/webhooks/mailchimp/999?secret=s3cret-in-the-url")
    HttpClient(vendor="hubspot").request(
        "GET", f"{hubspot.url}/contacts/v1/contact/email/ann@example.com/profile?hapikey=k3y"
    )

    server, vendor = (
        next(s for s in spans.get_finished_spans() if s.kind.name == kind)
        for kind in ("SERVER", "CLIENT")
    )
    assert "/marketing/integrations/webhooks/mailchimp/999" in _values(server)
    assert "/contacts/v1/contact/email/{redacted}/profile" in _values(vendor)
    for secret in ("s3cret-in-the-url", "ann@example.com", "k3y", "?"):
        assert secret not in _values(server) + _values(vendor)


def test_ids_go_on_the_current_span_only_while_traces_are_on(spans):
    from opentelemetry import trace

    tracer = trace.get_tracer("test", tracer_provider=tracing._state["provider"])
    with tracer.start_as_current_span("work"):
        # in a copy of the context, so the log context of later tests stays empty
        contextvars.copy_context().run(log_context_set, run_id=5, sync_id=None)
    (work,) = spans.get_finished_spans()
    assert dict(work.attributes) == {"mkt.run_id": 5}


@pytest.mark.worker
def test_run_now_to_the_vendor_request_is_one_trace(
    transactional_db, monkeypatch, hubspot, client_for, spans
):
    """The admin's Run now (this process, in-memory exporter) queues the run; a real worker
    process plans it, delivers it and calls the vendor, exporting its spans over OTLP/HTTP
    to a collector: all of it is one trace, and the engine's spans name the run and sync."""
    clear_file_broker()
    with FakeCollector() as collector:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # ms: export soon
        monkeypatch.setenv("OTEL_SERVICE_NAME", "mktintegration-worker")
        worker = WorkerProcess(name="traced-worker").start()
        try:
            CompanyFactory.create_batch(3)
            sync = make_sync(make_connection("hubspot", hubspot))
            client = client_for(roles.INTEGRATION_ADMIN)
            client.post(
                "/admin/integrations/sync/",
                {"action": "run_now", "_selected_action": [sync.pk]},
                HTTP_TRACEPARENT=TRACEPARENT,
            )
            run = SyncRun.objects.get(sync=sync)

            def vendor_upserts():
                found = [
                    s
                    for s in collector.trace(TRACE)
                    if s.kind == "client" and "batch/upsert" in _url(s.attributes)
                ]
                return found or None

            try:
                upserts = wait_for(vendor_upserts, timeout=90, what="the vendor call's span")
            except TimeoutError:
                pytest.fail(f"no vendor span; refused {collector.refused}; {worker.output()}")
            run.refresh_from_db()
        finally:
            worker.stop()

    assert collector.refused == []
    here = spans.get_finished_spans()
    (admin,) = [s for s in here if s.kind.name == "SERVER"]
    queued = [s for s in here if s.kind.name == "PRODUCER"]
    assert _hex(admin.context.trace_id, 32) == TRACE and queued
    assert all(_hex(s.context.trace_id, 32) == TRACE for s in queued)

    there = collector.trace(TRACE)
    by_id = {s.span_id: s for s in there}
    tasks = [s for s in there if s.kind == "consumer"]
    assert tasks and {s.service for s in there} == {"mktintegration-worker"}
    # Every task of the run names it, and each task hangs from a span of this trace: Run now's
    # publication in this process, or a task of the worker's that queued it.
    published_here = {_hex(s.context.span_id, 16) for s in queued}
    for task in tasks:
        assert (task.attributes.get("mkt.run_id"), task.attributes.get("mkt.sync_id")) == (
            run.pk,
            sync.pk,
        ), task.name
        assert task.parent_id in published_here or task.parent_id in by_id, task.name
    # The vendor request: made inside a delivery task, with the run and sync on it too.
    for upsert in upserts:
        assert (upsert.attributes["mkt.run_id"], upsert.attributes["mkt.sync_id"]) == (
            run.pk,
            sync.pk,
        )
        ancestor = by_id.get(upsert.parent_id)
        while ancestor is not None and ancestor.kind != "consumer":
            ancestor = by_id.get(ancestor.parent_id)
        assert ancestor is not None and "deliver" in ancestor.name
    if connection.vendor == "postgresql":  # the worker's queries are spans of the trace too
        assert any(s.attributes.get("db.system") == "postgresql" for s in there)
