"""The admin dashboard's data: tiles and charts over the objects the user may see."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from exports.models import ExportRun, ExportSchedule
from exports.models import RunStatus as ExportRunStatus
from integrations.models import Connection, ConnectionCheck, RunStatus, Sync, SyncRun
from integrations.models.runs import BUCKETS
from integrations.operations import charts, slo
from integrations.operations.quotas import quota_rows
from integrations.operations.status import (
    connection_statuses,
    export_statuses,
    sync_statuses,
)
from mktintegration.api_base import objects_for

DAYS = 14
OUTCOMES = ("succeeded", "partial", "deferred", "failed", "paused", "skipped")
# "unchanged" dwarfs the rest on a steady sync; it is in the run pages, not the chart.
CHART_BUCKETS = tuple(b for b in BUCKETS if b != "unchanged")


def _days(now: datetime) -> list[date]:
    today = now.date()
    return [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _progress(run: dict | None) -> dict | None:
    """Done and planned of a run in progress (batches while delivering)."""
    if not run:
        return None
    total, done = run["batches_total"], run["batches_done"]
    percent = round(100 * done / total) if total else 0
    return {"done": done, "total": total, "percent": percent, "planned": run["planned"]}


REFRESH_SECONDS = 15  # how often the dashboard reloads itself while something runs


def dashboard_context(user, *, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    days = _days(now)
    since = datetime.combine(days[0], datetime.min.time(), tzinfo=now.tzinfo)
    connections = objects_for(user, Connection)
    syncs = objects_for(user, Sync)
    schedules = objects_for(user, ExportSchedule)
    sync_tiles = sync_statuses(syncs, now=now)
    export_tiles = export_statuses(schedules, now=now)
    resume = dict(syncs.exclude(quota_resume_at=None).values_list("pk", "quota_resume_at"))
    for tile in sync_tiles:
        tile.progress = _progress(tile.active_run)
        tile.quota_resume_at = resume.get(tile.id)
    runs = SyncRun.objects.filter(sync__in=syncs, queued_at__gte=since).exclude(
        status=RunStatus.PREVIEW
    )
    # Real-time flows are the syncs that run on a schedule: a hand-run sync of yesterday's
    # changes says nothing about how fast changes reach the tools.
    scheduled = syncs.filter(Q(every_minutes__isnull=False) | ~Q(cron=""))
    latency = slo.event_to_action(scheduled, now=now)
    sync_names = dict(syncs.values_list("pk", "name"))
    return {
        "now": now,
        "connection_tiles": connection_statuses(connections, now=now),
        "quota_rows": quota_rows(connections),
        "quota_alert_share": settings.MKT_ALERT_QUOTA_SHARE,
        "sync_tiles": sync_tiles,
        "export_tiles": export_tiles,
        "runs_chart": _runs_chart(runs, days),
        "records_chart": _records_chart(runs, days),
        "exports_chart": _exports_chart(schedules, since, days),
        "uptime_chart": _uptime_chart(connections, since, days),
        "slo": latency["overall"],
        "slo_by_sync": sorted(
            ((sync_names.get(k, k), v) for k, v in latency["by_sync"].items()),
            key=lambda item: -(item[1].p95_seconds or 0),
        ),
        "slo_target": settings.MKT_SLO_P95_SECONDS,
        # While a sync or an export runs, the page reloads itself (no script: CSP).
        "refresh_seconds": REFRESH_SECONDS
        if any(t.active_run for t in sync_tiles)
        or any(getattr(t, "active_run", None) for t in export_tiles)
        else None,
    }


def _runs_chart(runs, days):
    series = {name: [0] * len(days) for name in OUTCOMES}
    index = {day: i for i, day in enumerate(days)}
    for row in (
        runs.annotate(day=TruncDate("queued_at")).values("day", "status").annotate(n=Count("id"))
    ):
        i = index.get(_day(row["day"]))
        if i is not None and row["status"] in series:
            series[row["status"]][i] += row["n"]
    return charts.stacked_bars("Sync runs per day by outcome", days, series)


def _records_chart(runs, days):
    series = {name: [0] * len(days) for name in CHART_BUCKETS}
    index = {day: i for i, day in enumerate(days)}
    rows = (
        runs.annotate(day=TruncDate("queued_at"))
        .values("day")
        .annotate(**{f"n_{b}": Sum(b) for b in CHART_BUCKETS})
    )
    for row in rows:
        i = index.get(_day(row["day"]))
        if i is not None:
            for bucket in CHART_BUCKETS:
                series[bucket][i] += row[f"n_{bucket}"] or 0
    return charts.stacked_bars("Records per day by bucket", days, series)


def _exports_chart(schedules, since, days):
    series = {"rows": [0] * len(days)}
    index = {day: i for i, day in enumerate(days)}
    rows = (
        ExportRun.objects.filter(
            schedule__in=schedules, status=ExportRunStatus.SUCCEEDED, finished_at__gte=since
        )
        .annotate(day=TruncDate("finished_at"))
        .values("day")
        .annotate(rows=Sum("rows"), size=Sum("bytes"))
    )
    total_bytes = 0
    for row in rows:
        i = index.get(_day(row["day"]))
        if i is not None:
            series["rows"][i] += row["rows"] or 0
            total_bytes += row["size"] or 0
    chart = charts.stacked_bars("Scheduled export rows per day", days, series)
    return {"svg": chart, "bytes": total_bytes}


def _uptime_chart(connections, since, days):
    names = dict(connections.values_list("pk", "name"))
    index = {day: i for i, day in enumerate(days)}
    series: dict[str, list[float | None]] = {name: [None] * len(days) for name in names.values()}
    rows = (
        ConnectionCheck.objects.filter(connection_id__in=names, checked_at__gte=since)
        .annotate(day=TruncDate("checked_at"))
        .values("connection_id", "day")
        .annotate(total=Count("id"), ok=Count("id", filter=Q(ok=True)))
    )
    for row in rows:
        i = index.get(_day(row["day"]))
        if i is not None:
            series[names[row["connection_id"]]][i] = round(100 * row["ok"] / row["total"], 1)
    return charts.lines("Connection uptime per day (% of checks)", days, series, top=100)
