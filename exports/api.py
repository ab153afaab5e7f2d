"""``GET /marketing/export/<dataset>``: JSON pages, or CSV / NDJSON streams.

Every request, answered or refused, writes one AccessLog row.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.db import connections
from django.http import HttpResponse, StreamingHttpResponse
from rest_framework import exceptions, permissions, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from audit.models import Channel, Outcome
from audit.services import access_log_write
from exports.backbone.router import backbone_alias
from exports.datasets import DATASETS, Dataset
from exports.guardrails import export_regions, export_row_limit
from exports.openapi import export_schema
from exports.query import ExportInputError, ExportQuery, count_select, export_query_parse
from exports.selectors import withheld_count
from exports.streaming import CONTENT_TYPES, ExportStream, json_page
from mktintegration.api_auth import HasScope, client_address
from mktintegration.api_base import AuditActorMixin

MAX_PAGE = 10_000
DEFAULT_PAGE = 1_000
_ACCEPT = {"text/csv": "csv", "application/x-ndjson": "ndjson", "application/json": "json"}


class JsonErrorsNegotiation(BaseContentNegotiation):
    """The export picks its own format; DRF renders only errors, always as JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


class ExportThrottle(SimpleRateThrottle):
    """Requests per token (or per user for sessions); 429 with Retry-After beyond it."""

    scope = "export"

    def get_cache_key(self, request, view):
        credential = getattr(request.auth, "credential_id", None)
        ident = f"token:{credential}" if credential else None
        if ident is None and request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident or self.get_ident(request)}


class CanExportDataset(permissions.BasePermission):
    def has_permission(self, request, view):
        allowed = request.user.has_perm(view.dataset.permission)
        if not allowed:
            self.message = f"You may not export the {view.dataset.name} dataset."
        return allowed


def _format(request) -> str:
    given = request.query_params.getlist("format")
    if len(given) > 1:
        raise ExportInputError("format", "format: give it once (json, csv or ndjson)")
    raw = given[0] if given else ""
    if raw:
        if raw not in CONTENT_TYPES:
            raise ExportInputError(
                "format", f"format must be one of json, csv, ndjson (not {raw[:20]!r})"
            )
        return raw
    for media in request.META.get("HTTP_ACCEPT", "").split(","):
        fmt = _ACCEPT.get(media.split(";")[0].strip())
        if fmt:
            return fmt
    return "json"


def _params(request) -> dict[str, str]:
    # A repeated filter counts as a comma-separated list (?country=DE&country=FR); the
    # reserved parameters other than fields take one value.
    params = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        if len(values) > 1 and key in ("format", "limit", "cursor"):
            raise ExportInputError(key, f"{key}: give it once")
        params[key] = ",".join(values)
    return params


class DatasetExportView(AuditActorMixin, APIView):
    dataset: Dataset = None  # set by as_view(dataset=...)
    permission_classes = [permissions.IsAuthenticated, HasScope, CanExportDataset]
    throttle_classes = [ExportThrottle]
    content_negotiation_class = JsonErrorsNegotiation

    def required_scope(self, request) -> str:
        return self.dataset.scope

    def initial(self, request, *args, **kwargs):
        self._started = time.monotonic()
        self._query: ExportQuery | None = None
        self._format = ""
        super().initial(request, *args, **kwargs)

    def get(self, request):
        self._format = _format(request)
        params = {k: v for k, v in _params(request).items() if k != "format"}
        query = export_query_parse(
            self.dataset, params, max_limit=MAX_PAGE if self._format == "json" else None
        )
        query.regions = export_regions(user=request.user)
        self._query = query
        if self._format == "json":
            query.limit = query.limit or DEFAULT_PAGE
            return self._json(request, query)
        self._check_row_limit(request, query)
        return self._stream(request, query)

    def _json(self, request, query: ExportQuery) -> HttpResponse:
        def next_url(cursor: str) -> str:
            params = {**_params(request), "cursor": cursor, "limit": str(query.limit)}
            return request.build_absolute_uri(request.path) + "?" + urlencode(params)

        body, rows = json_page(query, alias=backbone_alias(), next_url=next_url)
        withheld = withheld_count(query, alias=backbone_alias(), rows=rows)
        self._log(request, Outcome.OK, 200, rows=rows, size=len(body), withheld=withheld)
        return HttpResponse(body, content_type=CONTENT_TYPES["json"])

    def _check_row_limit(self, request, query: ExportQuery) -> None:
        limit = export_row_limit(request.user)
        if limit is None:
            return
        if query.limit is not None and query.limit > limit:
            raise RowLimitExceeded(limit, asked=query.limit)
        connection = connections[backbone_alias()]
        sql, params = count_select(query, connection.vendor, cap=limit + 1)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.fetchone()[0] > limit:
                raise RowLimitExceeded(limit)

    def _stream(self, request, query: ExportQuery) -> StreamingHttpResponse:
        stream = ExportStream(query, self._format, alias=backbone_alias())
        view = self

        def body():
            outcome, status_code, detail = Outcome.ABORTED, 499, "the client went away"
            withheld = 0
            try:
                yield from stream
                outcome, status_code, detail = Outcome.OK, 200, ""
                withheld = withheld_count(query, alias=stream.alias, rows=stream.rows)
            except Exception as exc:
                # The 200 and the first rows are already sent: the log says what happened.
                outcome, status_code = Outcome.ERROR, 500
                detail = f"{type(exc).__name__} after {stream.rows:,} rows; the body is cut short"
                raise
            finally:
                view._log(
                    request,
                    outcome,
                    status_code,
                    rows=stream.rows,
                    size=stream.bytes,
                    detail=detail,
                    withheld=withheld,
                )

        response = StreamingHttpResponse(body(), content_type=CONTENT_TYPES[self._format])
        extension = "csv" if self._format == "csv" else "ndjson"
        response["Content-Disposition"] = f'attachment; filename="{self.dataset.name}.{extension}"'
        response["Cache-Control"] = "no-store"
        return response

    def handle_exception(self, exc):
        if isinstance(exc, ExportInputError):
            exc = exceptions.ValidationError({exc.param: [exc.message]})
            outcome = Outcome.INVALID
        elif isinstance(exc, RowLimitExceeded | exceptions.Throttled):
            outcome = Outcome.LIMITED
        elif isinstance(
            exc,
            exceptions.NotAuthenticated
            | exceptions.AuthenticationFailed
            | exceptions.PermissionDenied,
        ):
            outcome = Outcome.DENIED
        elif isinstance(exc, exceptions.APIException):
            outcome = Outcome.INVALID
        else:
            outcome = Outcome.ERROR
        try:
            response = super().handle_exception(exc)
        except Exception:
            # Not an API error: Django answers 500 (and reports it); the read is logged first.
            self._log(self.request, Outcome.ERROR, 500, detail=type(exc).__name__)
            raise
        self._log(
            self.request,
            outcome,
            response.status_code,
            detail=str(getattr(exc, "detail", "")) or type(exc).__name__,
        )
        return response

    def _log(self, request, outcome, status_code, *, rows=0, size=0, detail="", withheld=0):
        user = getattr(request, "user", None)
        credential = getattr(getattr(request, "auth", None), "credential_id", "")
        authenticated = bool(user and user.is_authenticated)
        if credential:
            actor = f"token:{credential} ({user.username})"
        elif authenticated:
            actor = f"user:{user.username}"
        else:
            actor = "anonymous"
        query = self._query
        access_log_write(
            channel=Channel.API,
            actor=actor,
            user_id=user.pk if authenticated else None,
            token_id=credential,
            dataset=self.dataset.name,
            format=self._format,
            filters=query.describe_filters() if query else {},
            fields=query.fields if query else [],
            rows=rows,
            bytes=size,
            duration_ms=int((time.monotonic() - self._started) * 1000),
            outcome=outcome,
            status_code=status_code,
            client_address=client_address(request),
            detail=detail[:1000],
            withheld=withheld,
        )


class RowLimitExceeded(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "row_limit"

    def __init__(self, limit: int, *, asked: int | None = None):
        if asked is not None:
            message = (
                f"limit must be from 1 to {limit:,} rows, the most your role may export in one "
                f"request (asked for {asked:,})."
            )
        else:
            message = (
                f"This export has more than {limit:,} rows, the most your role may export in "
                "one request. Narrow it with filters (for example updated_since, country, "
                f"region, lifecycle_stage) or ask for limit={limit} and continue from the "
                "last id with updated_since or the JSON cursor."
            )
        super().__init__({"limit": [message]})


def export_view(name: str):
    dataset = DATASETS[name]
    view_class = type(f"{name.title()}ExportView", (DatasetExportView,), {"dataset": dataset})
    schema = export_schema(dataset, max_page=MAX_PAGE, default_page=DEFAULT_PAGE)
    return schema(view_class).as_view()
