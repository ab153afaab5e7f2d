"""CSV downloads of the audit lists in the admin: what the auditor filtered, formula-safe, and
itself access-logged (channel ``admin``, dataset ``audit:<log>``)."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path, reverse

from audit.models import Outcome
from audit.pages import admin_actor
from audit.services import access_log_write

# A cell starting with one of these would be run as a formula by a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ROWS_PER_CHUNK = 500


def csv_cell(value) -> str | int | float:
    """One CSV value: text is one line and never a formula ('=1+1' becomes "'=1+1"), JSON is
    compact, times are UTC ISO 8601, numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    text = " ".join(str(value).splitlines())
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return text


class _Line:
    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    """RFC 4180 (CRLF), in chunks of lines."""
    writer = csv.writer(_Line(), lineterminator="\r\n")
    chunk = [writer.writerow(header)]
    for row in rows:
        chunk.append(writer.writerow([csv_cell(value) for value in row]))
        if len(chunk) >= _ROWS_PER_CHUNK:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


class CsvDownloadAdminMixin:
    """Adds "Download CSV" to a read-only changelist: the rows the current filters, search and
    ordering select, for holders of ``download_permission``. Every download, refused or not,
    writes one AccessLog row."""

    download_permission: str = ""
    # (column header, function of the row object)
    csv_columns: tuple[tuple[str, Callable], ...] = ()
    change_list_template = "admin/audit/change_list_download.html"

    def has_download_permission(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm(self.download_permission)

    def _download_url_name(self) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_download"

    def get_urls(self):
        download = path(
            "download/",
            self.admin_site.admin_view(self.download_view),
            name=self._download_url_name(),
        )
        return [download, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        if self.has_download_permission(request):
            url = reverse(f"admin:{self._download_url_name()}")
            query = request.GET.urlencode()
            extra_context["download_csv_url"] = f"{url}?{query}" if query else url
        return super().changelist_view(request, extra_context)

    def download_view(self, request):
        started = time.monotonic()
        log = {
            **admin_actor(request),
            "dataset": f"audit:{self.opts.model_name}",
            "format": "csv",
            "filters": {key: ",".join(request.GET.getlist(key)) for key in request.GET},
            "fields": [header for header, _ in self.csv_columns],
        }
        if not self.has_download_permission(request):
            access_log_write(**log, outcome=Outcome.DENIED, status_code=403)
            raise PermissionDenied(f"You may not download the {self.opts.verbose_name} list.")
        try:
            queryset = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            access_log_write(**log, outcome=Outcome.INVALID, status_code=400)
            return HttpResponseBadRequest("These filters are not valid for this list.")
        counts = {"rows": 0, "bytes": 0}
        getters = [getter for _, getter in self.csv_columns]

        def rows():
            for obj in queryset.iterator(chunk_size=2000):
                counts["rows"] += 1
                yield [getter(obj) for getter in getters]

        def body():
            outcome = Outcome.ABORTED
            try:
                for text in csv_lines(log["fields"], rows()):
                    data = text.encode()
                    counts["bytes"] += len(data)
                    yield data
                outcome = Outcome.OK
            except Exception:
                outcome = Outcome.ERROR
                raise
            finally:
                access_log_write(
                    **log,
                    outcome=outcome,
                    status_code=200,
                    rows=counts["rows"],
                    bytes=counts["bytes"],
                    duration_ms=int((time.monotonic() - started) * 1000),
                )

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        response = StreamingHttpResponse(body(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{self.opts.model_name}-{stamp}.csv"'
        )
        response["Cache-Control"] = "no-store"
        return response
