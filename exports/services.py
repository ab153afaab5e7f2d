"""Writes for scheduled exports: destinations (and their secrets), schedules (kept in step
with beat), starting runs, and taking runs back from workers that died."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission

from audit.models import Channel, Outcome
from audit.services import access_log_write
from exports.destinations import destination_type
from exports.destinations.sftp import load_private_key
from exports.guardrails import OVERRIDE_PERMISSION
from exports.models import (
    DestinationKind,
    ExportDestination,
    ExportRun,
    ExportSchedule,
    RunStatus,
    RunTrigger,
)
from exports.runs import run_access_log
from mktintegration.crypto import decrypt_secrets, encrypt_secrets
from mktintegration.grants import creator_grant
from mktintegration.scheduling import periodic_task_remove, periodic_task_sync

BEAT_TASK = "exports.run_schedule"
# Beat fires a little early or late; a run this close to the frequency cap still counts as on
# time (so an every-15-minutes schedule is never skipped for being 0.3 s early).
CAP_GRACE = timedelta(seconds=30)


# --- destinations ---------------------------------------------------------------------------


def destination_secrets_check(
    *, kind: str, stored: Mapping[str, str], new: Mapping[str, str], clear: bool
) -> dict[str, str]:
    """Errors (by form field) in the secrets a destination would end up with."""
    errors = {}
    if new.get("private_key"):
        try:
            load_private_key(new["private_key"])
        except ValueError as exc:
            errors["private_key"] = str(exc)
    if kind == DestinationKind.SFTP:
        kept = {} if clear else dict(stored)
        kept.update({name: value for name, value in new.items() if value})
        if not kept.get("password") and not kept.get("private_key"):
            message = "an SFTP destination needs a password or a private key"
            errors["password"] = message
    return errors


@transaction.atomic
def export_destination_save(
    *,
    destination: ExportDestination,
    secrets: Mapping[str, str] | None = None,
    clear: bool = False,
) -> ExportDestination:
    """Validate and save a destination. ``secrets`` replaces the named secrets (blank values
    keep the stored ones); ``clear`` drops every stored secret first. Only the secrets the
    destination's kind uses are kept, encrypted."""
    secrets = dict(secrets or {})
    stored = {} if clear else decrypt_secrets(destination.secret_ciphertext)
    errors = destination_secrets_check(
        kind=destination.kind, stored=stored, new=secrets, clear=clear
    )
    if errors:
        raise ValidationError(errors)
    stored.update({name: value for name, value in secrets.items() if value})
    kind = destination_type(destination.kind)
    destination.secret_ciphertext = encrypt_secrets(
        {name: stored[name] for name in kind.secret_fields if stored.get(name)}
    )
    destination.full_clean()
    destination.save()
    return destination


def destination_secret_names(destination: ExportDestination) -> list[str]:
    """Which secrets are stored (names only)."""
    return sorted(decrypt_secrets(destination.secret_ciphertext))


# --- schedules ------------------------------------------------------------------------------


@transaction.atomic
def export_schedule_save(*, schedule: ExportSchedule, creator=None) -> ExportSchedule:
    """Validate and save a schedule and make its beat entry match it.

    A new schedule belongs to ``creator`` (unless an owner is set), who is granted it
    (``mktintegration.grants``).
    """
    created = schedule.pk is None
    if creator is not None and schedule.owner_id is None:
        schedule.owner = creator
    schedule.full_clean()
    schedule.save()
    periodic_task_sync(
        name=schedule.beat_name,
        task=BEAT_TASK,
        kwargs={"schedule_id": schedule.pk},
        cron=schedule.cron,
        every_minutes=schedule.every_minutes,
        enabled=schedule.enabled,
        description=f"Export schedule {schedule.name!r}",
    )
    if created and creator is not None:
        creator_grant(obj=schedule, user=creator)
    return schedule


@transaction.atomic
def export_schedule_delete(*, schedule: ExportSchedule) -> None:
    """Delete a schedule, its runs, its beat entry and the grants on it."""
    periodic_task_remove(name=schedule.beat_name)
    content_type = ContentType.objects.get_for_model(ExportSchedule)
    for model in (UserObjectPermission, GroupObjectPermission):
        model.objects.filter(content_type=content_type, object_pk=str(schedule.pk)).delete()
    schedule.delete()


# --- runs -----------------------------------------------------------------------------------


def run_skip_reason(*, schedule: ExportSchedule, trigger: str, user, now: datetime) -> str:
    """Why a run starting now would be skipped; empty when it may run."""
    if trigger == RunTrigger.SCHEDULE and not schedule.enabled:
        return "the schedule is disabled"
    busy = (
        schedule.runs.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .order_by("queued_at")
        .first()
    )
    if busy is not None:
        return (
            f"run {busy.pk} of this schedule is still {busy.status}; a schedule makes one "
            "file at a time"
        )
    if trigger == RunTrigger.MANUAL and user is not None and user.has_perm(OVERRIDE_PERMISSION):
        return ""
    previous = schedule.runs.exclude(started_at=None).order_by("-started_at").first()
    cap = timedelta(minutes=schedule.min_interval_minutes)
    if previous is not None and now - previous.started_at < cap - CAP_GRACE:
        started = previous.started_at.astimezone(UTC)
        return (
            f"too soon: the previous run started at {started:%Y-%m-%d %H:%M:%S} UTC and runs "
            f"of this schedule start at least {schedule.min_interval_minutes} minutes apart; "
            f"the next may start after {started + cap - CAP_GRACE:%H:%M:%S} UTC"
        )
    return ""


def export_run_start(*, schedule: ExportSchedule, trigger: str, user=None) -> ExportRun:
    """Record a run and send its task once the transaction commits; or record it as skipped
    (with the reason) when it may not run now."""
    from exports.tasks import export_run_task  # the tasks module imports this one

    now = timezone.now()
    with transaction.atomic():
        # One start at a time per schedule (PostgreSQL locks the row; SQLite's single writer
        # serialises anyway).
        schedule = (
            ExportSchedule.objects.select_for_update(of=("self",))
            .select_related("owner")
            .get(pk=schedule.pk)
        )
        reason = run_skip_reason(schedule=schedule, trigger=trigger, user=user, now=now)
        run = ExportRun.objects.create(
            schedule=schedule,
            trigger=trigger,
            triggered_by=user,
            queued_at=now,
            due_at=now,
            status=RunStatus.SKIPPED if reason else RunStatus.QUEUED,
            finished_at=now if reason else None,
            error=reason,
        )
        if reason:
            run_access_log(run, outcome=Outcome.LIMITED, detail=f"skipped: {reason}")
        else:
            # robust: a broker that is down must not undo the committed run; the reaper
            # sends the task again later.
            transaction.on_commit(lambda: export_run_task.delay(run_id=run.pk), robust=True)
    return run


def export_runs_reap(*, now: datetime | None = None) -> dict[str, int]:
    """Take back runs whose worker stopped (heartbeat older than MKT_RUN_STALE_SECONDS): queue
    them again, or fail them after the last attempt. Send the task again for queued runs long
    past due (a lost broker message). Duplicate tasks are harmless: the claim is atomic."""
    from exports.tasks import export_run_task

    now = now or timezone.now()
    stale = settings.MKT_RUN_STALE_SECONDS
    cutoff = now - timedelta(seconds=stale)
    counts = {"requeued": 0, "failed": 0, "resent": 0}

    def send(run_id: int) -> None:
        transaction.on_commit(lambda: export_run_task.delay(run_id=run_id), robust=True)

    with transaction.atomic():
        stuck = ExportRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff)
        for run in stuck.select_related("schedule__owner"):
            still_stuck = ExportRun.objects.filter(
                pk=run.pk, status=RunStatus.RUNNING, attempt=run.attempt, heartbeat_at__lt=cutoff
            )
            silence = (
                f"attempt {run.attempt}: the worker stopped responding (no heartbeat for {stale} s)"
            )
            if run.attempt >= settings.MKT_EXPORT_MAX_ATTEMPTS:
                message = f"{silence}; gave up after {run.attempt} attempts"
                if still_stuck.update(status=RunStatus.FAILED, finished_at=now, error=message):
                    counts["failed"] += 1
                    run_access_log(run, outcome=Outcome.ERROR, detail=message)
            elif still_stuck.update(
                status=RunStatus.QUEUED, due_at=now, error=f"{silence}; queued again"
            ):
                counts["requeued"] += 1
                send(run.pk)
        overdue = ExportRun.objects.filter(status=RunStatus.QUEUED, due_at__lt=cutoff)
        for run_id in overdue.values_list("pk", flat=True):
            if ExportRun.objects.filter(
                pk=run_id, status=RunStatus.QUEUED, due_at__lt=cutoff
            ).update(due_at=now):
                counts["resent"] += 1
                send(run_id)
    return counts


def run_download_log(*, run: ExportRun, user, ok: bool, size: int, address: str | None) -> None:
    """One AccessLog row (channel "admin") for a download of a run's file, or its refusal."""
    access_log_write(
        channel=Channel.ADMIN,
        actor=f"user:{user.get_username()}",
        user_id=user.pk,
        dataset=run.schedule.dataset,
        format=run.file_name.rpartition(".")[2] if ok else run.schedule.format,
        filters=run.filters,
        fields=run.fields,
        rows=run.rows if ok else 0,
        bytes=size,
        outcome=Outcome.OK if ok else Outcome.DENIED,
        status_code=200 if ok else 403,
        client_address=address,
        detail=f"download of run {run.pk}'s file {run.file_name}"[:1000],
    )
