"""Runs as the APIs, the dashboard and the alerts show them."""

from __future__ import annotations

from typing import Any

from exports.models import ExportRun
from integrations.models import SyncRun


def _duration(start, end) -> float | None:
    if start and end:
        return round((end - start).total_seconds(), 3)
    return None


def sync_run_summary(run: SyncRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "status": run.status,
        "trigger": run.trigger,
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_seconds": _duration(run.started_at, run.finished_at),
        "planned": run.planned,
        "batches_total": run.batches_total,
        "batches_done": run.batches_done,
        "counts": run.counts(),
        "error": run.error,
    }


def export_run_summary(run: ExportRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "status": run.status,
        "trigger": run.trigger,
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_seconds": round(run.duration_ms / 1000, 3) if run.finished_at else None,
        "attempt": run.attempt,
        "rows": run.rows,
        "bytes": run.bytes,
        "file_name": run.file_name,
        "error": run.error,
    }
