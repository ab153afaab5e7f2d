"""Structured logs: every line says which request, trace, run and sync it is about.

- A request takes its id from ``X-Request-ID`` when the caller (a proxy) sent a well-formed
  one (1-64 of ``A-Z a-z 0-9 . _ -``), else a new one, and answers with it in ``X-Request-ID``;
  its trace id is the W3C ``traceparent`` header's when there is a valid one, else a new one.
- A Celery task published while a request (or another task) runs carries both ids in its
  message headers; the task's lines carry them too, so "Run now" and the run it queued share
  one trace id. The engine adds the run and sync ids once it knows them.
- ``MKT_LOG_FORMAT=json`` writes one JSON object per line (``time``, ``level``, ``logger``,
  ``message``, the ids known, ``exception``); the default ``plain`` format ends each line with
  the ids known. Workers then log through the same configuration (Celery's own lines too).
- With traces on (mktintegration.tracing), the trace id of a line is its current span's, and
  the run and sync ids go on that span too.

docs/observability.md says what is where.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from django.core.signals import request_finished

from mktintegration import tracing

FIELDS = ("request_id", "trace_id", "run_id", "sync_id")
HEADER = "mkt_log_context"  # the Celery message header that carries the ids
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
# Never changed in place: each change sets a new mapping.
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "mkt_log", default=MappingProxyType({})
)


def current() -> dict[str, Any]:
    return dict(_context.get())


def log_context_set(**values: Any) -> None:
    """Add ids to the current context until it ends (the request, the task)."""
    merged = {**_context.get(), **{k: v for k, v in values.items() if v is not None}}
    _context.set(MappingProxyType(merged))
    tracing.annotate(values)  # and on the current span, when traces are on


def request_id_from(header: str | None) -> str:
    text = (header or "").strip()
    return text if _REQUEST_ID.match(text) else secrets.token_hex(16)


def _trace(value: Any) -> str | None:
    """A W3C trace id: 32 lower-case hex digits, not all zero."""
    if isinstance(value, str) and _TRACE_ID.match(value) and set(value) != {"0"}:
        return value
    return None


def trace_id_from(traceparent: str | None) -> str:
    """The trace id of a valid W3C ``traceparent`` (not version ff), else a new one."""
    text = (traceparent or "").strip().lower()
    match = _TRACEPARENT.match(text)
    found = _trace(match[1]) if match and not text.startswith("ff") else None
    return found or secrets.token_hex(16)


class RequestContextMiddleware:
    """The request's ids for every line logged while it is handled, X-Request-ID answered.

    The ids stay until the response is closed (``request_finished``), not only while the
    middleware runs: Django logs a 4xx or 5xx response after the middleware chain returned."""

    def __init__(self, get_response):
        self.get_response = get_response
        request_finished.connect(_request_done, weak=False, dispatch_uid="mkt-log-context")

    def __call__(self, request):
        request_id = request_id_from(request.headers.get("X-Request-ID"))
        trace_id = tracing.current_trace_id() or trace_id_from(request.headers.get("traceparent"))
        _context.set(MappingProxyType({"request_id": request_id, "trace_id": trace_id}))
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


def _request_done(**_) -> None:
    _context.set(MappingProxyType({}))


# --- Celery ----------------------------------------------------------------------------------
def task_published(headers: dict | None = None, **_) -> None:
    """before_task_publish: the ids of whoever queues the task travel with it."""
    carried = {k: v for k, v in _context.get().items() if k in ("request_id", "trace_id")}
    if headers is not None and carried:
        headers[HEADER] = carried


def task_started(task=None, **_) -> None:
    """task_prerun: the task's lines carry the ids it was queued with (else a new trace)."""
    request = getattr(task, "request", None)
    carried = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(
        HEADER
    )
    carried = carried if isinstance(carried, dict) else {}
    request_id = str(carried.get("request_id") or "")
    ids = {
        "request_id": request_id if _REQUEST_ID.match(request_id) else None,
        "trace_id": _trace(carried.get("trace_id")) or secrets.token_hex(16),
    }
    token = _context.set(MappingProxyType({k: v for k, v in ids.items() if v}))
    if request is not None:
        request.mkt_log_token = token


def task_ended(task=None, **_) -> None:
    """task_postrun: the context before the task again (an eager task inside a request), and
    nothing of this task's for the next one."""
    token = getattr(getattr(task, "request", None), "mkt_log_token", None)
    try:
        if token is None:
            raise ValueError
        _context.reset(token)
    except ValueError:  # set in another context, or never
        _context.set(MappingProxyType({}))


# --- formatting ------------------------------------------------------------------------------
class ContextFilter(logging.Filter):
    """Puts the context's ids on the record (as attributes a format can name)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        for name in FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, context.get(name))
        traced = tracing.current_trace_id()  # traces on: the line joins its span's trace
        if traced is not None:
            record.trace_id = traced
        return True


class PlainFormatter(logging.Formatter):
    """``time level logger message`` and, at the end, the ids known (``run_id=12``)."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [f"{n}={getattr(record, n)}" for n in FIELDS if getattr(record, n, None) is not None]
        return f"{line} [{' '.join(ids)}]" if ids else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)
