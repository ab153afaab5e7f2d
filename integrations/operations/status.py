"""Selectors: the state of every connection, sync and export schedule a user may see.

The state rule (docs/operations.md#states), first match wins:

- sync: **paused** when paused or disabled; **failing** when its connection's credentials are
  rejected or its latest finished run failed; **degraded** when its latest finished run left
  records undelivered, a run in the last 24 h failed or left records undelivered, dead letters
  are open, its connection's latest check failed, or a scheduled run did not start; else
  **healthy**.
- export schedule: **paused** when disabled; **failing** when its latest finished run failed;
  **degraded** when a run in the last 24 h failed, a run is waiting to retry, or a scheduled
  run did not start; else **healthy**.
- connection: **failing** when its latest check failed; **paused** when it has syncs and all
  are paused or disabled; **degraded** when fewer than MKT_STATUS_UPTIME_TARGET percent of its
  checks in the last 24 h succeeded; else **healthy**.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone

from exports.models import ExportRun
from exports.models import RunStatus as ExportRunStatus
from integrations.models import (
    ConnectionCheck,
    ConnectionStatus,
    DeadLetter,
    DeadLetterStatus,
    RunStatus,
    Sync,
    SyncRun,
)
from integrations.models.runs import ACTIVE_RUN_STATUSES
from integrations.operations.missed import active_since, schedule_missed
from integrations.operations.summaries import export_run_summary, sync_run_summary
from integrations.operations.timing import beat_entries, next_run_at, schedule_text
from mktintegration import bounds

HEALTHY, DEGRADED, FAILING, PAUSED = "healthy", "degraded", "failing", "paused"
STATES = (HEALTHY, DEGRADED, FAILING, PAUSED)

SYNC_FINISHED = (
    RunStatus.SUCCEEDED,
    RunStatus.PARTIAL,
    RunStatus.DEFERRED,
    RunStatus.FAILED,
    RunStatus.PAUSED,
)
SYNC_ERRORS = (RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.DEFERRED)
EXPORT_FINISHED = (ExportRunStatus.SUCCEEDED, ExportRunStatus.FAILED)
EXPORT_ACTIVE = (ExportRunStatus.QUEUED, ExportRunStatus.RUNNING)


@dataclass
class ObjectStatus:
    kind: str  # connection | sync | export_schedule
    id: int
    name: str
    state: str = HEALTHY
    reasons: list[str] = field(default_factory=list)
    vendor: str = ""
    connection_id: int | None = None
    schedule: str = ""
    last_run: dict[str, Any] | None = None
    active_run: dict[str, Any] | None = None
    next_run_at: datetime | None = None
    last_success_at: datetime | None = None
    seconds_since_success: int | None = None
    runs_24h: int = 0
    error_rate_24h: float | None = None
    uptime_24h: float | None = None
    uptime_7d: float | None = None
    dead_letters: int = 0
    schedule_missed_at: datetime | None = None
    admin_path: str = ""


def _rate(errors: int, total: int) -> float | None:
    return round(errors / total, 4) if total else None


def _since(moment: datetime | None, now: datetime) -> int | None:
    return int((now - moment).total_seconds()) if moment else None


@dataclass
class _RunStats:
    """The runs of many owners (syncs or export schedules), read in five queries."""

    latest: dict[int, Any]  # owner id -> latest finished run
    active: dict[int, Any]  # owner id -> run queued or running
    success: dict[int, datetime]  # owner id -> when a run last succeeded
    day: dict[int, dict]  # owner id -> {"total", "errors"} finished in the last 24 h

    def apply(self, status: ObjectStatus, owner_id: int, summary, now: datetime):
        """Fill the run fields of ``status``; return the latest finished run (or None)."""
        run = self.latest.get(owner_id)
        status.last_run = summary(run) if run else None
        if owner_id in self.active:
            status.active_run = summary(self.active[owner_id])
        status.last_success_at = self.success.get(owner_id)
        status.seconds_since_success = _since(status.last_success_at, now)
        stats = self.day.get(owner_id)
        status.runs_24h = stats["total"] if stats else 0
        status.error_rate_24h = _rate(stats["errors"], stats["total"]) if stats else None
        return run


def _run_stats(
    runs, owner: str, ids, *, finished, active, succeeded, errors: Q, now: datetime
) -> _RunStats:
    """``runs``: the run model's queryset; ``owner``: its owner id column (``sync_id``)."""
    mine = runs.filter(**{f"{owner}__in": ids})
    latest_ids = (
        mine.filter(status__in=finished)
        .values(owner)
        .annotate(latest=Max("id"))
        .values_list("latest", flat=True)
    )
    return _RunStats(
        latest={getattr(r, owner): r for r in runs.filter(pk__in=list(latest_ids))},
        active={getattr(r, owner): r for r in mine.filter(status__in=active)},
        success=dict(
            mine.filter(status=succeeded)
            .values(owner)
            .annotate(at=Max("finished_at"))
            .values_list(owner, "at")
        ),
        day={
            row[owner]: row
            for row in mine.filter(status__in=finished, finished_at__gte=now - timedelta(hours=24))
            .values(owner)
            .annotate(total=Count("id"), errors=Count("id", filter=errors))
        },
    )


def uptime_by_connection(ids, *, now: datetime) -> dict[int, dict[str, float | None]]:
    """Per connection: the share (percent) of checks that succeeded in the last 24 h and 7 d."""
    result: dict[int, dict[str, float | None]] = {i: {"24h": None, "7d": None} for i in ids}
    for label, window in (("24h", timedelta(hours=24)), ("7d", timedelta(days=7))):
        rows = (
            ConnectionCheck.objects.filter(connection_id__in=ids, checked_at__gte=now - window)
            .values("connection_id")
            .annotate(total=Count("id"), ok=Count("id", filter=Q(ok=True)))
        )
        for row in rows:
            result[row["connection_id"]][label] = round(100 * row["ok"] / row["total"], 2)
    return result


# --- syncs ---------------------------------------------------------------------------------


def sync_statuses(syncs, *, now: datetime | None = None) -> list[ObjectStatus]:
    now = now or timezone.now()
    syncs = list(syncs.select_related("connection").order_by("name"))
    ids = [s.pk for s in syncs]
    runs = _run_stats(
        SyncRun.objects,
        "sync_id",
        ids,
        finished=SYNC_FINISHED,
        active=ACTIVE_RUN_STATUSES,
        succeeded=RunStatus.SUCCEEDED,
        errors=Q(status__in=SYNC_ERRORS),
        now=now,
    )
    letters = dict(
        DeadLetter.objects.filter(sync_id__in=ids, status=DeadLetterStatus.OPEN)
        .values("sync_id")
        .annotate(n=Count("id"))
        .values_list("sync_id", "n")
    )
    uptime = uptime_by_connection({s.connection_id for s in syncs}, now=now)
    entries = beat_entries([s.periodic_task_name for s in syncs])
    result = []
    for sync in syncs:
        status = ObjectStatus(
            kind="sync",
            id=sync.pk,
            name=sync.name,
            vendor=sync.connection.vendor,
            connection_id=sync.connection_id,
            schedule=schedule_text(cron=sync.cron, every_minutes=sync.every_minutes)
            + (", and real-time" if sync.realtime else ""),
            admin_path=f"/admin/integrations/sync/{sync.pk}/change/",
        )
        run = runs.apply(status, sync.pk, sync_run_summary, now)
        status.uptime_24h = uptime[sync.connection_id]["24h"]
        status.uptime_7d = uptime[sync.connection_id]["7d"]
        status.dead_letters = letters.get(sync.pk, 0)
        if _misconfigured(status, sync):
            result.append(status)
            continue
        runnable = sync.enabled and not sync.paused
        status.next_run_at = (
            next_run_at(entries.get(sync.periodic_task_name), now=now) if runnable else None
        )
        if runnable:
            status.schedule_missed_at = schedule_missed(
                runs=SyncRun.objects.filter(sync=sync),
                cron=sync.cron,
                every_minutes=sync.every_minutes,
                since=active_since("sync", sync, now),
                now=now,
            )
        _sync_state(status, sync, run)
        result.append(status)
    return result


def _misconfigured(status: ObjectStatus, obj) -> bool:
    """A stored setting outside its bounds fails the object, by name, instead of the page."""
    problems = bounds.stored_problems(obj)
    if problems:
        status.state = FAILING
        status.reasons = [f"its settings need fixing in the admin: {p}"[:300] for p in problems]
    return bool(problems)


def _sync_state(status: ObjectStatus, sync: Sync, run: SyncRun | None) -> None:
    if sync.paused or not sync.enabled:
        status.state = PAUSED
        status.reasons.append((sync.pause_reason or "paused") if sync.paused else "disabled")
        return
    failing = []
    if sync.connection.status == ConnectionStatus.AUTH_FAILED:
        failing.append("the connection's credentials were rejected")
    if run is not None and run.status == RunStatus.FAILED:
        failing.append(f"the latest run failed: {run.error}"[:300])
    if run is not None and run.status == RunStatus.DEFERRED:
        failing.append(f"the latest run sent nothing: {run.error}"[:300])
    if failing:
        status.state, status.reasons = FAILING, failing
        return
    degraded = []
    if run is not None and run.status == RunStatus.PARTIAL:
        degraded.append("the latest run left records undelivered")
    if status.error_rate_24h:
        degraded.append(f"{status.error_rate_24h:.0%} of the runs in the last 24 h had errors")
    if status.dead_letters:
        degraded.append(f"{status.dead_letters} dead letters are open")
    if sync.connection.status == ConnectionStatus.FAILING:
        degraded.append("the connection's latest check failed")
    if status.schedule_missed_at:
        degraded.append(
            f"the run due at {status.schedule_missed_at:%Y-%m-%d %H:%M} UTC never started"
        )
    if degraded:
        status.state, status.reasons = DEGRADED, degraded


# --- export schedules ----------------------------------------------------------------------


def export_statuses(schedules, *, now: datetime | None = None) -> list[ObjectStatus]:
    now = now or timezone.now()
    schedules = list(schedules.select_related("destination").order_by("name"))
    ids = [s.pk for s in schedules]
    runs = _run_stats(
        ExportRun.objects,
        "schedule_id",
        ids,
        finished=EXPORT_FINISHED,
        active=EXPORT_ACTIVE,
        succeeded=ExportRunStatus.SUCCEEDED,
        errors=Q(status=ExportRunStatus.FAILED),
        now=now,
    )
    entries = beat_entries([s.beat_name for s in schedules])
    result = []
    for schedule in schedules:
        status = ObjectStatus(
            kind="export_schedule",
            id=schedule.pk,
            name=schedule.name,
            schedule=schedule_text(cron=schedule.cron, every_minutes=schedule.every_minutes),
            admin_path=f"/admin/exports/exportschedule/{schedule.pk}/change/",
        )
        run = runs.apply(status, schedule.pk, export_run_summary, now)
        if _misconfigured(status, schedule):
            result.append(status)
            continue
        if schedule.enabled:
            status.next_run_at = next_run_at(entries.get(schedule.beat_name), now=now)
            status.schedule_missed_at = schedule_missed(
                runs=ExportRun.objects.filter(schedule=schedule),
                cron=schedule.cron,
                every_minutes=schedule.every_minutes,
                since=active_since("export", schedule, now),
                now=now,
            )
        _export_state(status, schedule, run, runs.active.get(schedule.pk))
        result.append(status)
    return result


def _export_state(status, schedule, run, active) -> None:
    if not schedule.enabled:
        status.state, status.reasons = PAUSED, ["disabled"]
        return
    if run is not None and run.status == ExportRunStatus.FAILED:
        status.state, status.reasons = FAILING, [f"the latest run failed: {run.error}"[:300]]
        return
    degraded = []
    if status.error_rate_24h:
        degraded.append(f"{status.error_rate_24h:.0%} of the runs in the last 24 h failed")
    if active is not None and active.status == ExportRunStatus.QUEUED and active.error:
        degraded.append(f"run {active.pk} is waiting to retry: {active.error}"[:300])
    if status.schedule_missed_at:
        degraded.append(
            f"the run due at {status.schedule_missed_at:%Y-%m-%d %H:%M} UTC never started"
        )
    if degraded:
        status.state, status.reasons = DEGRADED, degraded


# --- connections ---------------------------------------------------------------------------


def connection_statuses(connections, *, now: datetime | None = None) -> list[ObjectStatus]:
    now = now or timezone.now()
    connections = list(connections.order_by("name"))
    ids = [c.pk for c in connections]
    uptime = uptime_by_connection(ids, now=now)
    sync_flags: dict[int, list[bool]] = defaultdict(list)
    for connection_id, enabled, paused in Sync.objects.filter(connection_id__in=ids).values_list(
        "connection_id", "enabled", "paused"
    ):
        sync_flags[connection_id].append(enabled and not paused)
    letters = dict(
        DeadLetter.objects.filter(sync__connection_id__in=ids, status=DeadLetterStatus.OPEN)
        .values("sync__connection_id")
        .annotate(n=Count("id"))
        .values_list("sync__connection_id", "n")
    )
    last_ok = dict(
        ConnectionCheck.objects.filter(connection_id__in=ids, ok=True)
        .values("connection_id")
        .annotate(at=Max("checked_at"))
        .values_list("connection_id", "at")
    )
    result = []
    for connection in connections:
        status = ObjectStatus(
            kind="connection",
            id=connection.pk,
            name=connection.name,
            vendor=connection.vendor,
            admin_path=f"/admin/integrations/connection/{connection.pk}/change/",
            uptime_24h=uptime[connection.pk]["24h"],
            uptime_7d=uptime[connection.pk]["7d"],
            dead_letters=letters.get(connection.pk, 0),
            last_success_at=last_ok.get(connection.pk),
        )
        status.seconds_since_success = _since(status.last_success_at, now)
        if connection.status in (ConnectionStatus.AUTH_FAILED, ConnectionStatus.FAILING):
            what = "credentials rejected" if connection.status == "auth_failed" else "check failed"
            status.state = FAILING
            status.reasons = [f"latest {what}: {connection.last_error}"[:300]]
        elif sync_flags[connection.pk] and not any(sync_flags[connection.pk]):
            status.state, status.reasons = PAUSED, ["every sync on it is paused or disabled"]
        elif (
            status.uptime_24h is not None and status.uptime_24h < settings.MKT_STATUS_UPTIME_TARGET
        ):
            status.state = DEGRADED
            status.reasons = [f"{status.uptime_24h}% of the checks in the last 24 h succeeded"]
        result.append(status)
    return result
