"""Scheduled export runs to a local folder: the file, guardrails, the access log, and the
run lifecycle (task sent on commit, atomic claim, frequency cap, reaper, heartbeat)."""

import hashlib
import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AccessLog
from exports.heartbeat import Heartbeat
from exports.models import ExportRun, RunStatus, RunTrigger
from exports.runs import export_run_claim, export_run_execute, retry_delay
from exports.services import export_run_start, export_runs_reap
from exports.tasks import export_run_task, run_schedule
from tests.exports.helpers import age_runs, csv_rows
from tests.factories import CompanyFactory


def _folder(settings):
    return settings.MKT_EXPORT_DIR / "marketing" / "weekly"


@pytest.mark.django_db
def test_local_folder_run_writes_the_file_with_its_rows_and_sha256(
    settings, companies, make_schedule, run_schedule
):
    schedule = make_schedule(name="Weekly clients")

    run = run_schedule(schedule)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert re.fullmatch(r"weekly-clients-\d{8}T\d{6}Z\.csv", run.file_name)
    data = (_folder(settings) / run.file_name).read_bytes()
    assert csv_rows(data) == [
        ["id", "name", "country"],
        *[[str(c.pk), c.name, c.country] for c in companies],
    ]
    assert (run.rows, run.bytes, run.sha256) == (3, len(data), hashlib.sha256(data).hexdigest())
    assert run.attempt == 1 and run.finished_at and run.error == ""
    assert run.destination_result["path"] == f"marketing/weekly/{run.file_name}"
    assert run.fields == ["id", "name", "country"]
    assert [p.name for p in _folder(settings).iterdir()] == [run.file_name]  # no temp left
    assert list((settings.DATA_DIR / "tmp").glob(f"export-run-{run.pk}-*")) == []


@pytest.mark.django_db
def test_local_folder_run_prunes_only_this_schedules_expired_files(
    settings, companies, make_schedule, run_schedule
):
    schedule = make_schedule(name="Weekly clients")
    folder = _folder(settings)
    folder.mkdir(parents=True)
    old = (timezone.now() - timedelta(days=31)).strftime("%Y%m%dT%H%M%SZ")
    recent = (timezone.now() - timedelta(days=29)).strftime("%Y%m%dT%H%M%SZ")
    for name in (
        f"weekly-clients-{old}.csv",
        f".weekly-clients-{old}.ndjson.part",
        f"weekly-clients-{recent}.csv",
        f"weekly-clients-extra-{old}.csv",  # another schedule's file
        "notes.txt",
    ):
        (folder / name).write_text("x")

    run = run_schedule(schedule)

    assert sorted(run.destination_result["pruned"]) == [
        f".weekly-clients-{old}.ndjson.part",
        f"weekly-clients-{old}.csv",
    ]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "notes.txt",
            f"weekly-clients-extra-{old}.csv",
            f"weekly-clients-{recent}.csv",
            run.file_name,
        ]
    )


@pytest.mark.django_db
def test_incremental_runs_carry_only_the_rows_changed_since_the_last_successful_run(
    settings, make_schedule, run_schedule
):
    long_ago = timezone.now() - timedelta(days=2)
    unchanged = CompanyFactory(name="Unchanged", updated_at=long_ago)
    changed = CompanyFactory(name="Changed", updated_at=long_ago)
    schedule = make_schedule(incremental=True, fields=["id", "name"])

    first = run_schedule(schedule)
    age_runs(schedule, minutes=60)
    first.refresh_from_db()
    changed.name = "Changed again"
    changed.updated_at = timezone.now()
    changed.save()
    second = run_schedule(schedule)

    assert first.rows == 2 and "updated_since" not in first.filters
    assert second.status == RunStatus.SUCCEEDED and second.rows == 1
    assert second.filters["updated_since"] == first.started_at.isoformat()
    data = (_folder(settings) / second.file_name).read_bytes()
    assert csv_rows(data) == [["id", "name"], [str(changed.pk), "Changed again"]]
    assert unchanged.pk not in [row[0] for row in csv_rows(data)]


@pytest.mark.django_db
def test_max_rows_exceeded_fails_with_a_message_saying_how_to_narrow(
    settings, companies, make_schedule, run_schedule
):
    schedule = make_schedule(max_rows=2)

    run = run_schedule(schedule)

    assert run.status == RunStatus.FAILED and run.attempt == 1
    assert "more than 2 rows" in run.error and "nothing was sent" in run.error
    assert "updated_since" in run.error and "incremental" in run.error
    assert not _folder(settings).exists()
    log = AccessLog.objects.latest("id")
    assert (log.channel, log.outcome, log.rows) == ("file", "limited", 0)


@pytest.mark.django_db
def test_a_file_larger_than_the_byte_limit_fails_and_leaves_nothing(
    settings, companies, make_schedule, run_schedule
):
    settings.MKT_EXPORT_MAX_FILE_BYTES = 10
    schedule = make_schedule()

    run = run_schedule(schedule)

    assert run.status == RunStatus.FAILED
    assert run.error.startswith("file larger than MKT_EXPORT_MAX_FILE_BYTES (10 bytes)")
    assert not _folder(settings).exists()
    assert list((settings.DATA_DIR / "tmp").glob(f"export-run-{run.pk}-*")) == []


@pytest.mark.django_db
def test_every_file_run_writes_one_access_log_row(companies, make_schedule, run_schedule):
    schedule = make_schedule(name="Weekly clients", filters={"country": "DE,FR"})

    run = run_schedule(schedule)

    log = AccessLog.objects.get()
    assert log.channel == "file" and log.outcome == "ok"
    assert log.actor == "schedule:Weekly clients (owner mona)"
    assert log.user_id == schedule.owner_id and log.dataset == "clients" and log.format == "csv"
    assert (log.rows, log.bytes) == (2, run.bytes)
    assert log.fields == ["id", "name", "country"] and log.filters == {"country": ["DE", "FR"]}
    assert f"run {run.pk}: {run.file_name} delivered" in log.detail


@pytest.mark.django_db
def test_starting_a_run_sends_its_task_only_when_the_transaction_commits(
    django_capture_on_commit_callbacks, sent_tasks, make_schedule, manager
):
    schedule = make_schedule()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = export_run_start(schedule=schedule, trigger=RunTrigger.MANUAL, user=manager)
        assert sent_tasks == []  # not before the commit

    assert len(callbacks) == 1 and sent_tasks == [run.pk]
    assert (run.status, run.trigger, run.triggered_by, run.attempt) == (
        "queued",
        "manual",
        manager,
        0,
    )


@pytest.mark.django_db
def test_the_claim_is_atomic_so_a_second_task_for_the_run_does_nothing(
    companies, make_schedule, manager, sent_tasks
):
    run = export_run_start(schedule=make_schedule(), trigger=RunTrigger.MANUAL, user=manager)

    assert export_run_claim(run_id=run.pk) is True
    assert export_run_claim(run_id=run.pk) is False
    ExportRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, attempt=0)
    export_run_task(run_id=run.pk)
    finished = ExportRun.objects.get(pk=run.pk)

    export_run_task(run_id=run.pk)  # a duplicate delivery of the same message

    assert finished.status == RunStatus.SUCCEEDED
    assert ExportRun.objects.get(pk=run.pk).finished_at == finished.finished_at
    assert AccessLog.objects.count() == 1


@pytest.mark.django_db
def test_a_run_starting_before_the_frequency_cap_is_skipped_with_the_reason(
    django_capture_on_commit_callbacks, companies, make_schedule, run_schedule, sent_tasks, manager
):
    schedule = make_schedule()
    first = run_schedule(schedule)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = export_run_start(schedule=schedule, trigger=RunTrigger.MANUAL, user=manager)

    assert first.status == RunStatus.SUCCEEDED
    assert second.status == RunStatus.SKIPPED and second.finished_at is not None
    assert "too soon" in second.error and "at least 15 minutes apart" in second.error
    assert callbacks == [] and sent_tasks == []  # a skipped run sends no task
    assert AccessLog.objects.latest("id").outcome == "limited"
    age_runs(schedule, minutes=15)
    assert run_schedule(schedule).status == RunStatus.SUCCEEDED


@pytest.mark.django_db
def test_run_now_by_a_user_who_may_override_limits_bypasses_the_frequency_cap(
    companies, make_schedule, run_schedule, integration_admin
):
    schedule = make_schedule()
    run_schedule(schedule)

    again = run_schedule(schedule, user=integration_admin)

    assert again.status == RunStatus.SUCCEEDED


@pytest.mark.django_db
def test_a_schedule_makes_one_file_at_a_time(make_schedule, integration_admin):
    schedule = make_schedule()
    queued = export_run_start(schedule=schedule, trigger=RunTrigger.SCHEDULE)

    second = export_run_start(schedule=schedule, trigger=RunTrigger.MANUAL, user=integration_admin)

    assert second.status == RunStatus.SKIPPED
    assert f"run {queued.pk} of this schedule is still queued" in second.error


@pytest.mark.django_db
def test_beat_task_starts_a_scheduled_run_and_skips_a_disabled_schedule(
    django_capture_on_commit_callbacks, make_schedule, sent_tasks
):
    schedule = make_schedule()

    with django_capture_on_commit_callbacks(execute=True):
        run_schedule(schedule_id=schedule.pk)
    first = schedule.runs.get()
    ExportRun.objects.filter(pk=first.pk).update(status=RunStatus.FAILED)
    schedule.enabled = False
    schedule.save()
    run_schedule(schedule_id=schedule.pk)
    run_schedule(schedule_id=123456)  # a stale beat entry: nothing happens

    second = schedule.runs.exclude(pk=first.pk).get()
    assert (first.trigger, first.status, first.triggered_by) == ("schedule", "queued", None)
    assert sent_tasks == [first.pk]
    assert second.status == RunStatus.SKIPPED and second.error == "the schedule is disabled"


@pytest.mark.django_db
def test_the_reaper_requeues_a_run_whose_worker_stopped(
    django_capture_on_commit_callbacks, make_schedule, sent_tasks, settings
):
    run = export_run_start(schedule=make_schedule(), trigger=RunTrigger.SCHEDULE)
    export_run_claim(run_id=run.pk)
    silent_since = timezone.now() - timedelta(seconds=settings.MKT_RUN_STALE_SECONDS + 1)
    ExportRun.objects.filter(pk=run.pk).update(heartbeat_at=silent_since)
    sent_tasks.clear()

    with django_capture_on_commit_callbacks(execute=True):
        counts = export_runs_reap()

    run.refresh_from_db()
    assert counts == {"requeued": 1, "failed": 0, "resent": 0}
    assert run.status == RunStatus.QUEUED and run.attempt == 1
    assert "attempt 1: the worker stopped responding" in run.error
    assert sent_tasks == [run.pk]
    assert export_run_claim(run_id=run.pk) is True  # the next attempt can take it


@pytest.mark.django_db
def test_the_reaper_leaves_fresh_runs_alone_and_fails_one_out_of_attempts(
    make_schedule, sent_tasks, settings
):
    settings.MKT_EXPORT_MAX_ATTEMPTS = 2
    stale = timezone.now() - timedelta(seconds=settings.MKT_RUN_STALE_SECONDS + 1)
    fresh = export_run_start(schedule=make_schedule(), trigger=RunTrigger.SCHEDULE)
    export_run_claim(run_id=fresh.pk)
    worn = export_run_start(schedule=make_schedule(), trigger=RunTrigger.SCHEDULE)
    ExportRun.objects.filter(pk=worn.pk).update(status="running", attempt=2, heartbeat_at=stale)

    counts = export_runs_reap()

    assert counts == {"requeued": 0, "failed": 1, "resent": 0}
    assert ExportRun.objects.get(pk=fresh.pk).status == RunStatus.RUNNING
    worn.refresh_from_db()
    assert worn.status == RunStatus.FAILED and "gave up after 2 attempts" in worn.error
    assert AccessLog.objects.latest("id").outcome == "error"


@pytest.mark.django_db
def test_the_reaper_sends_again_the_task_of_a_queued_run_long_past_due(
    django_capture_on_commit_callbacks, make_schedule, sent_tasks, settings
):
    run = export_run_start(schedule=make_schedule(), trigger=RunTrigger.SCHEDULE)
    overdue = timezone.now() - timedelta(seconds=settings.MKT_RUN_STALE_SECONDS + 1)
    ExportRun.objects.filter(pk=run.pk).update(due_at=overdue)
    sent_tasks.clear()

    with django_capture_on_commit_callbacks(execute=True):
        first = export_runs_reap()
        second = export_runs_reap()

    assert first["resent"] == 1 and second["resent"] == 0  # at most once per stale period
    assert sent_tasks == [run.pk]


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_keeps_a_running_run_fresh_and_notices_a_takeover(make_schedule):
    run = ExportRun.objects.create(
        schedule=make_schedule(), trigger="manual", status="running", attempt=1
    )
    before = timezone.now()

    with Heartbeat(run_id=run.pk, attempt=1, every=0.1) as heartbeat:
        time.sleep(0.35)
        assert ExportRun.objects.get(pk=run.pk).heartbeat_at > before
        ExportRun.objects.filter(pk=run.pk).update(status="queued")  # the reaper took it
        time.sleep(0.35)

    assert heartbeat.lost


def test_retry_delay_grows_exponentially_with_jitter():
    delays = [retry_delay(attempt=n, base=30) for n in (1, 2, 3, 4)]

    for n, delay in enumerate(delays, start=1):
        assert 15 * 2 ** (n - 1) <= delay <= 30 * 2 ** (n - 1)
    assert retry_delay(attempt=1, base=30, retry_after=120) == 120
    assert retry_delay(attempt=30, base=30) <= 3600


@pytest.mark.django_db
def test_a_run_of_a_deleted_schedule_is_not_run(make_schedule, sent_tasks):
    run = export_run_start(schedule=make_schedule(), trigger=RunTrigger.SCHEDULE)
    run.schedule.delete()

    assert export_run_execute(run_id=run.pk) is None
