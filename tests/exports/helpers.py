"""Helpers for the scheduled-export tests."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from exports.models import ExportRun

SFTP_PASSWORD = "s3cret-pass"  # the test SFTP server's (tests/exports/conftest.py)


def age_runs(schedule, *, minutes: int) -> None:
    """Pretend the schedule's runs happened ``minutes`` earlier (past the frequency cap)."""
    shift = timedelta(minutes=minutes)
    for run in schedule.runs.all():
        ExportRun.objects.filter(pk=run.pk).update(
            queued_at=run.queued_at - shift,
            due_at=run.due_at - shift,
            started_at=(run.started_at - shift) if run.started_at else None,
        )


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
