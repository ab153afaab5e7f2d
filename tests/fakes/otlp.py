"""``FakeCollector``: an OpenTelemetry collector's OTLP/HTTP trace endpoint on 127.0.0.1.

It takes what a real collector takes, as the OTLP specification (1.x, "OTLP/HTTP") gives it:
``POST /v1/traces`` with ``Content-Type: application/x-protobuf`` and a binary
``ExportTraceServiceRequest`` (gzip when ``Content-Encoding: gzip``), answered 200 with an
``ExportTraceServiceResponse``. Anything else is refused (404 another path, 405 another method,
415 another media type, 400 a body that does not decode) and kept in ``refused``. The spans it
took are in ``spans``, flattened with their resource's ``service.name``.

    with FakeCollector() as collector:
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = collector.url  # .../v1/traces
        ...
        assert {s.name for s in collector.trace(trace_id)} >= {...}
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from typing import Any, Self

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.fakes.vendor_http import HttpServerThread
from tests.fakes.wire import Request, Response

PATH = "/v1/traces"
MEDIA_TYPE = "application/x-protobuf"
KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class Span:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_id: str  # "" for a root span
    name: str
    kind: str
    service: str
    attributes: dict[str, Any] = field(default_factory=dict)


def _value(any_value) -> Any:
    which = any_value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, which) if which else None


def _attributes(pairs) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


class FakeCollector:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.refused: list[tuple[int, str]] = []  # (status, why)
        self._lock = threading.Lock()
        self._http = HttpServerThread(self._serve, name="fake-otlp")

    def start(self) -> Self:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The traces endpoint (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)."""
        return self._http.url + PATH

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def _refuse(self, status: int, why: str) -> Response:
        with self._lock:
            self.refused.append((status, why))
        return Response(status, {"message": why})

    def _serve(self, request: Request) -> Response:
        if request.path != PATH:
            return self._refuse(404, f"no such path: {request.path}")
        if request.method != "POST":
            return self._refuse(405, f"{request.method} is not POST")
        if request.content_type != MEDIA_TYPE:
            return self._refuse(415, f"Content-Type {request.content_type!r} is not {MEDIA_TYPE}")
        body = request.raw_body
        encoding = (request.header("content-encoding") or "").lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding not in ("", "identity"):
                return self._refuse(415, f"Content-Encoding {encoding!r}")
            message = ExportTraceServiceRequest.FromString(body)
        except (OSError, DecodeError) as exc:
            return self._refuse(400, f"the body is not an ExportTraceServiceRequest: {exc}")
        taken = []
        for resource_spans in message.resource_spans:
            service = _attributes(resource_spans.resource.attributes).get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    taken.append(
                        Span(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=KINDS.get(span.kind, str(span.kind)),
                            service=str(service),
                            attributes=_attributes(span.attributes),
                        )
                    )
        with self._lock:
            self.spans.extend(taken)
        return Response(
            200, ExportTraceServiceResponse().SerializeToString(), content_type=MEDIA_TYPE
        )
