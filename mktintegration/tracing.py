"""OpenTelemetry traces: a request, the tasks it queues and the vendor calls they make, as one
trace. Off unless the environment asks for it.

``OTEL_TRACES_EXPORTER`` turns tracing on: ``otlp`` (OTLP over HTTP/protobuf, configured by
the standard ``OTEL_EXPORTER_OTLP_*`` variables), ``console``, or both (``otlp,console``).
Unset or ``none``: off, with nothing instrumented (the SDK's own default would be ``otlp``;
ours is off, so a deployment without a collector sends nothing anywhere). ``OTEL_SDK_DISABLED=
true`` wins over everything. The web process (``mktintegration.wsgi``) and each Celery worker
process (``worker_process_init``: a span processor's thread does not survive a fork) call
``configure()``; Django, Celery, requests and psycopg are then instrumented, the engine's
tasks carry ``mkt.run_id`` and ``mkt.sync_id``, and so does every vendor call made for them.
Log lines name the current span's trace id (mktintegration.logcontext), so logs and traces
join. docs/observability.md says what is where.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

EXPORTERS = ("otlp", "console")
_state: dict[str, Any] = {"provider": None}


def exporters_from(environ: Mapping[str, str] | None = None) -> list[str]:
    """The span exporters the environment asks for (none: tracing is off). ValueError for a
    value we do not support, naming the ones we do. The OTel SDK reads its own ``OTEL_*``
    variables from the process environment, so this does too (no ``_FILE`` forms)."""
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [n for n in names if n and n != "none"]
    for name in names:
        if name not in EXPORTERS:
            raise ValueError(
                f"OTEL_TRACES_EXPORTER takes {', '.join(EXPORTERS)} or none, not {name[:20]!r}."
            )
    if "otlp" in names:
        protocol = (
            environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip()
        if protocol != "http/protobuf":
            raise ValueError(
                f"The OTLP exporter speaks http/protobuf, not {protocol[:20]!r} "
                "(OTEL_EXPORTER_OTLP_PROTOCOL)."
            )
    return list(dict.fromkeys(names))


def configure() -> bool:
    """Trace this process if the environment asks for it (once per process). True if on."""
    if _state["provider"] is not None:
        return True
    names = exporters_from()
    if not names:
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=_resource())
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)
    instrument(provider)
    log.info("traces on: exported by %s", ", ".join(names))
    return True


def _exporter(name: str):
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*


def _resource():
    from opentelemetry.sdk.resources import Resource

    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    return Resource.create({} if named else {"service.name": "mktintegration"})


def instrument(provider) -> None:
    """Instrument Django, Celery, requests and psycopg, their spans going to ``provider``."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    DjangoInstrumentor().instrument(tracer_provider=provider, request_hook=_request_received)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    RequestsInstrumentor().instrument(tracer_provider=provider, request_hook=_vendor_call)
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    _state["provider"] = provider


def uninstrument() -> None:
    """Undo ``instrument`` (tests)."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    for instrumentor in (
        DjangoInstrumentor(),
        CeleryInstrumentor(),
        RequestsInstrumentor(),
        PsycopgInstrumentor(),
    ):
        instrumentor.uninstrument()
    _state["provider"] = None


def active() -> bool:
    return _state["provider"] is not None


def annotate(values: Mapping[str, Any]) -> None:
    """Put ids on the current span (``mkt.run_id``...), when one is being recorded."""
    if not active():
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording():
        for name, value in values.items():
            if value is not None:
                span.set_attribute(f"mkt.{name}", value)


def current_trace_id() -> str | None:
    """The current span's trace id (32 hex digits), if tracing is on and a span is current."""
    if not active():
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


# What an instrumentation records of a URL. A query string may hold a secret (a Mailchimp
# receiver's ``?secret=``, an OAuth callback's ``code``) or personal data (an export filter):
# spans keep no query, and a path segment that looks like an address is redacted, as in the
# outbound call log (mktintegration.http.redact_path).
_URLS = ("http.url", "url.full", "http.target")
_QUERIES = ("url.query",)


def _scrub(span) -> None:
    from mktintegration.http import redact_path

    attributes = getattr(span, "attributes", None) or {}
    for name in _URLS:
        value = attributes.get(name)
        if isinstance(value, str):
            span.set_attribute(name, redact_path(value.split("?", 1)[0]))
    for name in _QUERIES:
        if name in attributes:
            span.set_attribute(name, "{redacted}")


def _request_received(span, request) -> None:
    """Django's hook: the request's span keeps no query string."""
    if span is not None and span.is_recording():
        _scrub(span)


def _vendor_call(span, request) -> None:
    """requests' hook: a vendor call names the run and sync it is made for, and keeps no
    query string."""
    from mktintegration.logcontext import current

    if span is not None and span.is_recording():
        _scrub(span)
        ids = current()
        for name in ("run_id", "sync_id"):
            if ids.get(name) is not None:
                span.set_attribute(f"mkt.{name}", ids[name])
