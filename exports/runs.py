"""Running one attempt of an export: claim the run, write the file, deliver it, record it.

The database is the source of truth (docs/adr/0001): a task only carries the run's id, claims
the row with one atomic UPDATE, and every later write is conditional on still holding that
claim (status ``running`` and the same ``attempt``), so a duplicate or late task changes
nothing. A background thread keeps ``heartbeat_at`` fresh; the reaper takes back runs whose
heartbeat stopped.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import F
from django.utils import timezone

from audit.models import Channel, Outcome
from audit.services import access_log_write
from exports.backbone.router import backbone_alias
from exports.datasets import DATASETS
from exports.destinations import ExportFile, destination_type
from exports.guardrails import export_regions, export_row_limit
from exports.heartbeat import ClaimLost, Heartbeat, heartbeat_interval
from exports.models import ExportRun, RunStatus
from exports.query import ExportInputError, ExportQuery, count_select
from exports.schedules import schedule_query, schedule_slug
from exports.selectors import withheld_count
from exports.streaming import ExportStream
from mktintegration.crypto import SecretsUnreadable, decrypt_secrets
from mktintegration.errors import ConnectorError, ErrorKind

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600
RETRYABLE = frozenset({ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED})
NARROW_HINT = (
    "Narrow it with filters (for example updated_since, country, region, lifecycle_stage), "
    "turn on incremental files, or raise max_rows."
)


@dataclass(frozen=True)
class RunOutcome:
    """How an attempt ended; ``retry_in`` (seconds) when the task should try again."""

    status: str
    retry_in: float | None = None


class RunFailed(Exception):
    """The run cannot succeed as configured (retrying will not help)."""

    def __init__(self, message: str, *, outcome: str = Outcome.ERROR):
        super().__init__(message)
        self.message = message
        self.outcome = outcome


def export_run_claim(*, run_id: int) -> bool:
    """Take a queued run for this attempt; False if it is not queued (a duplicate task)."""
    now = timezone.now()
    claimed = ExportRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, attempt=F("attempt") + 1
    )
    return claimed == 1


def export_run_execute(*, run_id: int) -> RunOutcome | None:
    """Claim and run one attempt of the run; None when there was nothing to claim."""
    if not export_run_claim(run_id=run_id):
        log.info("export run %s is not queued; nothing to do", run_id)
        return None
    run = (
        ExportRun.objects.select_related("schedule__destination", "schedule__owner")
        .filter(pk=run_id)
        .first()
    )
    if run is None:  # its schedule was deleted meanwhile
        return None
    return _Attempt(run).execute()


def retry_delay(*, attempt: int, base: float, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter: between half and all of base * 2^(attempt-1)."""
    ceiling = min(base * 2 ** max(attempt - 1, 0), MAX_BACKOFF_SECONDS)
    return max(ceiling / 2 + random.uniform(0, ceiling / 2), retry_after or 0.0)  # noqa: S311


def run_file_name(run: ExportRun) -> str:
    """'<schedule-slug>-<UTC time the run was queued>.<ext>': the same for every attempt, so a
    retry replaces rather than duplicates a file at the destination."""
    stamp = run.queued_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{schedule_slug(run.schedule.name)}-{stamp}.{run.schedule.format}"


def run_access_log(
    run: ExportRun,
    *,
    outcome: str,
    detail: str,
    rows: int = 0,
    size: int = 0,
    duration_ms: int = 0,
    status_code: int | None = None,
    query: ExportQuery | None = None,
    withheld: int = 0,
) -> None:
    """One AccessLog row for an attempt of a run (channel "file")."""
    schedule = run.schedule
    owner = schedule.owner
    access_log_write(
        channel=Channel.FILE,
        actor=f"schedule:{schedule.name} (owner {owner.get_username()})"[:200],
        user_id=owner.pk,
        dataset=schedule.dataset,
        format=schedule.format,
        filters=query.describe_filters() if query else schedule.filters,
        fields=query.fields if query else schedule.fields,
        rows=rows,
        bytes=size,
        duration_ms=duration_ms,
        outcome=outcome,
        status_code=status_code,
        detail=f"run {run.pk}: {detail}"[:1000],
        withheld=withheld,
    )


def scrub(text: str, secrets: dict[str, str]) -> str:
    """``text`` with every secret value (and every line of a private key) blanked out."""
    for value in secrets.values():
        for part in (value, *value.splitlines()):
            if len(part.strip()) >= 4:
                text = text.replace(part.strip(), "[secret]")
    return text


class _Attempt:
    def __init__(self, run: ExportRun):
        self.run = run
        self.schedule = run.schedule
        self.destination = run.schedule.destination
        self.started = time.monotonic()
        self.query: ExportQuery | None = None
        self.secrets: dict[str, str] = {}
        self.rows = self.bytes = self.withheld = 0
        self.sha256 = ""
        self.temp: Path | None = None

    # -- the attempt ---------------------------------------------------------------------------

    def execute(self) -> RunOutcome:
        heartbeat = Heartbeat(
            run_id=self.run.pk, attempt=self.run.attempt, every=heartbeat_interval()
        )
        try:
            with heartbeat:
                result = self._work(heartbeat)
        except ClaimLost:
            return self._abandon()
        except RunFailed as exc:
            return self._fail(exc.message, outcome=exc.outcome)
        except ConnectorError as exc:
            return self._delivery_failed(exc)
        except Exception as exc:
            log.exception("export run %s failed unexpectedly", self.run.pk)
            return self._fail(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            if self.temp is not None:
                self.temp.unlink(missing_ok=True)
        return self._succeed(result)

    def _work(self, heartbeat: Heartbeat) -> dict[str, Any]:
        cap = self._row_cap()
        self.query = self._build_query()
        self._check_count(cap)
        self._write_file(heartbeat, cap)
        self.withheld = withheld_count(self.query, alias=backbone_alias(), rows=self.rows)
        try:
            self.secrets = decrypt_secrets(self.destination.secret_ciphertext)
        except SecretsUnreadable as exc:
            raise RunFailed(f"the destination's secrets cannot be read: {exc}") from None
        file = ExportFile(
            path=self.temp,
            name=run_file_name(self.run),
            size=self.bytes,
            rows=self.rows,
            sha256=self.sha256,
            format=self.schedule.format,
            run_id=self.run.pk,
            schedule_slug=schedule_slug(self.schedule.name),
        )
        result = destination_type(self.destination.kind).deliver(
            self.destination, file, self.secrets
        )
        heartbeat.check()
        return result

    def _row_cap(self) -> int:
        owner, dataset = self.schedule.owner, DATASETS.get(self.schedule.dataset)
        if dataset is None:
            raise RunFailed(f"unknown dataset {self.schedule.dataset!r}", outcome=Outcome.INVALID)
        if not owner.is_active or not owner.has_perm(dataset.permission):
            raise RunFailed(
                f"the schedule's owner {owner.get_username()} may no longer export the "
                f"{dataset.name} dataset; give the schedule to someone who may",
                outcome=Outcome.DENIED,
            )
        limit = export_row_limit(owner)
        return self.schedule.max_rows if limit is None else min(self.schedule.max_rows, limit)

    def _build_query(self) -> ExportQuery:
        since = None
        if self.schedule.incremental:
            since = (
                ExportRun.objects.filter(schedule=self.schedule, status=RunStatus.SUCCEEDED)
                .order_by("-started_at")
                .values_list("started_at", flat=True)
                .first()
            )
        try:
            query = schedule_query(self.schedule, since=since)
        except ExportInputError as exc:
            raise RunFailed(
                f"the schedule's {exc.param} is not valid any more: {exc.message}",
                outcome=Outcome.INVALID,
            ) from None
        # Residency: the owner's regions and the destination's, both.
        query.regions = export_regions(user=self.schedule.owner, destination=self.destination)
        return query

    def _too_many_rows(self, cap: int) -> RunFailed:
        whose = f"max_rows is {self.schedule.max_rows:,}"
        if cap < self.schedule.max_rows:
            whose = f"{self.schedule.owner.get_username()}'s role may export {cap:,} at once"
        return RunFailed(
            f"the result has more than {cap:,} rows ({whose}); nothing was sent. {NARROW_HINT}",
            outcome=Outcome.LIMITED,
        )

    def _check_count(self, cap: int) -> None:
        connection = connections[backbone_alias()]
        sql, params = count_select(self.query, connection.vendor, cap=cap + 1)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            count = cursor.fetchone()[0]
        if count > cap:
            raise self._too_many_rows(cap)

    def _write_file(self, heartbeat: Heartbeat, cap: int) -> None:
        folder = Path(settings.DATA_DIR) / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix=f"export-run-{self.run.pk}-", suffix=f".{self.schedule.format}", dir=folder
        )
        self.temp = Path(name)
        limit = settings.MKT_EXPORT_MAX_FILE_BYTES
        stream = ExportStream(self.query, self.schedule.format, alias=backbone_alias(), digest=True)
        chunks = iter(stream)
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    if stream.bytes > limit:
                        raise RunFailed(
                            f"file larger than MKT_EXPORT_MAX_FILE_BYTES ({limit:,} bytes); "
                            f"nothing was sent. {NARROW_HINT}",
                            outcome=Outcome.LIMITED,
                        )
                    heartbeat.check()
        finally:
            chunks.close()
            self.rows, self.bytes, self.sha256 = stream.rows, stream.bytes, stream.sha256
        if stream.rows > cap:  # rows arrived between the count and the file
            raise self._too_many_rows(cap)

    # -- recording how it ended ----------------------------------------------------------------

    def _elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def _finish(self, **fields) -> bool:
        """Write the attempt's end, if the run is still this attempt's."""
        values = {
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "duration_ms": self._elapsed_ms(),
            **fields,
        }
        if self.query is not None:
            values.update(fields=self.query.fields, filters=self.query.describe_filters())
        return bool(
            ExportRun.objects.filter(
                pk=self.run.pk, status=RunStatus.RUNNING, attempt=self.run.attempt
            ).update(**values)
        )

    def _log(self, outcome: str, detail: str, status_code: int | None = None) -> None:
        run_access_log(
            self.run,
            outcome=outcome,
            detail=detail,
            rows=self.rows,
            size=self.bytes,
            duration_ms=self._elapsed_ms(),
            status_code=status_code,
            query=self.query,
            withheld=self.withheld,
        )

    def _succeed(self, result: dict[str, Any]) -> RunOutcome:
        name = run_file_name(self.run)
        if not self._finish(
            status=RunStatus.SUCCEEDED,
            finished_at=timezone.now(),
            file_name=name,
            destination_result=result,
            error="",
        ):
            return self._abandon()
        where = destination_type(self.destination.kind).describe(self.destination)
        self._log(Outcome.OK, f"{name} delivered to {where}", status_code=result.get("status"))
        return RunOutcome(RunStatus.SUCCEEDED)

    def _fail(self, message: str, *, outcome: str = Outcome.ERROR, status: int | None = None):
        message = scrub(message, self.secrets)
        if not self._finish(status=RunStatus.FAILED, finished_at=timezone.now(), error=message):
            return self._abandon()
        self._log(outcome, f"attempt {self.run.attempt} failed: {message}", status_code=status)
        return RunOutcome(RunStatus.FAILED)

    def _delivery_failed(self, exc: ConnectorError) -> RunOutcome:
        attempt, most = self.run.attempt, settings.MKT_EXPORT_MAX_ATTEMPTS
        if exc.kind not in RETRYABLE:
            return self._fail(exc.message, status=exc.status)
        if attempt >= most:
            return self._fail(f"gave up after {attempt} attempts: {exc.message}", status=exc.status)
        delay = retry_delay(
            attempt=attempt,
            base=settings.MKT_EXPORT_RETRY_BASE_SECONDS,
            retry_after=exc.retry_after,
        )
        message = scrub(
            f"attempt {attempt} of {most} failed, retrying in {delay:.0f} s: {exc.message}",
            self.secrets,
        )
        now = timezone.now()
        if not self._finish(
            status=RunStatus.QUEUED,
            due_at=now + timedelta(seconds=delay),
            heartbeat_at=now,
            error=message,
        ):
            return self._abandon()
        self._log(Outcome.ERROR, message, status_code=exc.status)
        return RunOutcome(RunStatus.QUEUED, retry_in=delay)

    def _abandon(self) -> RunOutcome:
        log.warning("export run %s attempt %s lost its claim", self.run.pk, self.run.attempt)
        self._log(
            Outcome.ABORTED,
            f"attempt {self.run.attempt} abandoned: the run was taken over by another attempt",
        )
        return RunOutcome("abandoned")
