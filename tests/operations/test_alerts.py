"""E-mail alerts on state changes, delivered through a real SMTP server on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from integrations.alerts import alert_mirror_guard, alert_sync_paused
from integrations.models import DeadLetter, LedgerEntry, RunStatus, SyncRun
from integrations.operations.checks import connections_check_due
from integrations.operations.evaluate import evaluate_all
from integrations.operations.models import Alert, AlertRecipients, AlertStatus
from integrations.services import sync_schedule_apply
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync, start_and_drive


def _run(sync, status, *, at=None, trigger="schedule", error=""):
    at = at or timezone.now()
    run = SyncRun.objects.create(sync=sync, trigger=trigger, status=status, error=error)
    SyncRun.objects.filter(pk=run.pk).update(queued_at=at, started_at=at, finished_at=at)
    return run


@pytest.fixture
def sync(db, hubspot):
    connection = make_connection("hubspot", hubspot)
    sync = make_sync(connection, name="Companies to HubSpot")
    AlertRecipients.objects.create(sync=sync, emails=["crm-team@ourcompany.example"])
    return sync


@pytest.mark.django_db
def test_failing_sync_mails_once_and_recovery_mails_once(smtp, sync, integration_admin):
    _run(sync, RunStatus.FAILED, error="configuration error: list gone")

    evaluate_all()
    evaluate_all()  # still failing: no second mail

    messages = smtp.wait_for(2)
    assert sorted(smtp.recipients) == ["crm-team@ourcompany.example", "ida@ourcompany.example"]
    assert len(messages) == 2  # one message per recipient; nobody sees the others' address
    mail = messages[0]
    assert mail["Subject"] == "[mktintegration] Sync 'Companies to HubSpot' is failing"
    body = mail.get_content()
    assert "list gone" in body
    assert f"https://mkt.example.com/admin/integrations/sync/{sync.pk}/change/" in body
    assert "https://mkt.example.com/admin/operations/dashboard/" in body

    smtp.clear()
    _run(sync, RunStatus.SUCCEEDED)
    evaluate_all()
    evaluate_all()

    recovered = smtp.wait_for(2)
    assert [m["Subject"] for m in recovered] == [
        "[mktintegration] Sync 'Companies to HubSpot' recovered"
    ] * 2


@pytest.mark.django_db
def test_the_same_alert_is_rate_limited(smtp, sync, integration_admin, settings):
    settings.MKT_ALERT_REPEAT_MINUTES = 60
    for status in (RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.FAILED):
        _run(sync, status)
        evaluate_all()

    failing = Alert.objects.filter(kind="sync_failing").order_by("id")
    assert [a.status for a in failing] == [AlertStatus.SENT, AlertStatus.SUPPRESSED]
    subjects = [m["Subject"] for m in smtp.wait_for(4)]
    assert subjects.count("[mktintegration] Sync 'Companies to HubSpot' is failing") == 2


@pytest.mark.django_db
def test_a_mail_server_failure_is_retried_later(smtp, sync, integration_admin):
    smtp.refuse(5)
    _run(sync, RunStatus.FAILED)
    evaluate_all()
    alert = Alert.objects.get(kind="sync_failing")
    assert alert.status == AlertStatus.FAILED and "451" in alert.error

    smtp.refuse(0)
    evaluate_all()

    alert.refresh_from_db()
    assert alert.status == AlertStatus.SENT and alert.attempts == 2
    assert smtp.wait_for(1)[0]["Subject"].endswith("is failing")


@pytest.mark.django_db
def test_rejected_credentials_alert_from_the_uptime_check(smtp, hubspot, integration_admin):
    connection = make_connection("hubspot", hubspot, name="HubSpot prod")
    connection.set_credentials({"token": "expired"})
    connection.save()

    counts = connections_check_due()

    assert counts == {"ok": 0, "failed": 1}
    assert connection.checks.get().ok is False
    (mail,) = smtp.wait_for(1)
    assert mail["Subject"] == "[mktintegration] Connection 'HubSpot prod': credentials rejected"
    assert f"/admin/integrations/connection/{connection.pk}/change/" in mail.get_content()

    connections_check_due()  # not due again yet: nothing new
    assert connection.checks.count() == 1
    connection.set_credentials({"token": hubspot.credential})
    connection.save()
    connections_check_due(now=timezone.now() + timedelta(minutes=16))
    messages = smtp.wait_for(2)
    assert messages[1]["Subject"].endswith("credentials accepted again")


@pytest.mark.django_db
def test_dead_letters_above_the_threshold_alert_once(smtp, sync, integration_admin, settings):
    settings.MKT_ALERT_DEAD_LETTER_THRESHOLD = 2
    for key in ("1", "2", "3"):
        entry = LedgerEntry.objects.create(sync=sync, record_key=key, status="dead")
        DeadLetter.objects.create(sync=sync, entry=entry, record_key=key, error="bad e-mail")

    evaluate_all()
    evaluate_all()

    alerts = Alert.objects.filter(kind="dead_letters")
    assert alerts.count() == 1 and alerts.get().status == AlertStatus.SENT
    assert "3 open dead letters" in alerts.get().body


@pytest.mark.django_db
def test_a_scheduled_run_that_never_started_alerts_once_per_missed_window(
    smtp, sync, integration_admin, settings
):
    settings.MKT_ALERT_MISSED_GRACE_MINUTES = 10
    sync.cron = "0 * * * *"
    sync.save()
    sync_schedule_apply(sync=sync)
    start = datetime(2026, 11, 30, 8, 5, tzinfo=UTC)
    type(sync).objects.filter(pk=sync.pk).update(updated_at=start - timedelta(days=1))

    evaluate_all(now=start)  # first sight: the schedule is in force from now on
    _run(sync, RunStatus.SUCCEEDED, at=datetime(2026, 11, 30, 9, 0, 2, tzinfo=UTC))
    evaluate_all(now=datetime(2026, 11, 30, 9, 20, tzinfo=UTC))  # the 09:00 run started
    evaluate_all(now=datetime(2026, 11, 30, 10, 20, tzinfo=UTC))  # 10:00 never did
    evaluate_all(now=datetime(2026, 11, 30, 10, 40, tzinfo=UTC))  # the same outage

    missed = Alert.objects.filter(kind="schedule_missed")
    assert missed.count() == 1
    assert "2026-11-30 10:00 UTC" in missed.get().body
    assert smtp.wait_for(1)[0]["Subject"].endswith("a scheduled run did not start")

    _run(sync, RunStatus.SUCCEEDED, at=datetime(2026, 11, 30, 11, 0, 1, tzinfo=UTC))
    evaluate_all(now=datetime(2026, 11, 30, 11, 20, tzinfo=UTC))  # on time again
    evaluate_all(now=datetime(2026, 11, 30, 13, 20, tzinfo=UTC))  # 12:00 and 13:00 missed
    assert missed.count() == 2


@pytest.mark.django_db
def test_a_tick_while_a_run_was_going_is_not_missed(sync, settings):
    settings.MKT_ALERT_MISSED_GRACE_MINUTES = 10
    sync.every_minutes = 30
    sync.save()
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    type(sync).objects.filter(pk=sync.pk).update(updated_at=start - timedelta(days=1))
    evaluate_all(now=start)
    long_run = SyncRun.objects.create(sync=sync, trigger="manual", status=RunStatus.DELIVERING)
    SyncRun.objects.filter(pk=long_run.pk).update(queued_at=start, started_at=start)

    evaluate_all(now=start + timedelta(hours=2))

    assert not Alert.objects.filter(kind="schedule_missed").exists()


@pytest.mark.django_db
def test_engine_alerts_keep_their_names_and_reach_the_mailbox(smtp, hubspot, integration_admin):
    connection = make_connection("hubspot", hubspot)
    sync = make_sync(connection, mode="mirror", mirror_max_delete_share=0.1, name="Mirror")
    companies = CompanyFactory.create_batch(5)
    start_and_drive(sync)
    for company in companies[:2]:
        company.delete()

    run = start_and_drive(sync)  # the engine calls alert_mirror_guard itself

    assert "Mirror delete guard" in run.error
    (mail,) = smtp.wait_for(1)
    assert mail["Subject"] == "[mktintegration] Sync 'Mirror': mirror delete guard tripped"
    assert f"/admin/integrations/syncrun/{run.pk}/change/" in mail.get_content()
    alert_mirror_guard(sync=sync, run=run)  # again within the window: recorded, not mailed
    assert (
        Alert.objects.filter(kind="mirror_guard").order_by("id").last().status
        == AlertStatus.SUPPRESSED
    )

    alert_sync_paused(sync=sync, reason="auth: HubSpot answered 401")
    messages = smtp.wait_for(2)
    assert messages[1]["Subject"] == "[mktintegration] Sync 'Mirror' was paused"
    assert "401" in messages[1].get_content()


@pytest.mark.django_db
def test_an_engine_pause_alerts_but_a_users_pause_does_not(smtp, sync, integration_admin):
    from integrations.engine.state import sync_pause
    from integrations.services import sync_set_paused

    evaluate_all()
    sync_set_paused(sync=sync, paused=True, reason="paused by ida")
    evaluate_all()
    assert not Alert.objects.filter(kind="sync_paused").exists()

    sync_set_paused(sync=sync, paused=False)
    evaluate_all()
    sync_pause(sync=sync, reason="configuration error: unknown field")
    evaluate_all()

    (alert,) = Alert.objects.filter(kind="sync_paused")
    assert "unknown field" in alert.body
    assert (
        smtp.wait_for(1)[0]["Subject"] == "[mktintegration] Sync 'Companies to HubSpot' was paused"
    )


@pytest.mark.django_db
def test_without_recipients_nothing_is_mailed_but_the_alert_is_kept(smtp, hubspot):
    sync = make_sync(make_connection("hubspot", hubspot))
    _run(sync, RunStatus.FAILED)

    evaluate_all()

    assert Alert.objects.get().status == AlertStatus.NO_RECIPIENTS
    assert smtp.messages == []


# Expiring credentials: tests/integrations/oauth/test_expiry_alert.py (from a real grant).


@pytest.mark.django_db
def test_failing_export_schedule_mails_its_recipients(smtp, integration_admin, tmp_path, settings):
    from exports.models import ExportDestination, ExportRun, ExportSchedule
    from exports.services import export_destination_save, export_schedule_save

    settings.MKT_EXPORT_DIR = tmp_path
    destination = export_destination_save(
        destination=ExportDestination(name="drive", kind="local", subdirectory="out")
    )
    schedule = export_schedule_save(
        schedule=ExportSchedule(name="Weekly clients", dataset="clients", destination=destination),
        creator=integration_admin,
    )
    AlertRecipients.objects.create(export_schedule=schedule, emails=["bi@ourcompany.example"])
    now = timezone.now()
    ExportRun.objects.create(
        schedule=schedule,
        trigger="schedule",
        status="failed",
        finished_at=now,
        error="SFTP host key mismatch",
    )

    evaluate_all()

    messages = smtp.wait_for(2)
    assert sorted(smtp.recipients) == ["bi@ourcompany.example", "ida@ourcompany.example"]
    assert messages[0]["Subject"] == "[mktintegration] Export schedule 'Weekly clients' is failing"
    body = messages[0].get_content()
    assert "SFTP host key mismatch" in body
    assert f"/admin/exports/exportschedule/{schedule.pk}/change/" in body


@pytest.mark.django_db
def test_uptime_checks_store_a_row_per_check_and_feed_the_status(hubspot, integration_admin):
    from integrations.operations.status import connection_statuses

    connection = make_connection("hubspot", hubspot)

    assert connections_check_due() == {"ok": 1, "failed": 0}
    assert connections_check_due() == {"ok": 0, "failed": 0}  # not due again yet
    later = timezone.now() + timedelta(minutes=16)
    hubspot.token = "rotated-by-someone"
    assert connections_check_due(now=later) == {"ok": 0, "failed": 1}

    assert [c.ok for c in connection.checks.order_by("checked_at")] == [True, False]
    (status,) = connection_statuses(type(connection).objects.all(), now=later)
    assert status.uptime_24h == 50.0 and status.state == "failing"


@pytest.mark.django_db
def test_a_run_deferred_for_want_of_consent_mails_that_the_sync_sends_nothing(
    smtp, sync, integration_admin
):
    _run(
        sync,
        RunStatus.DEFERRED,
        error="40 records deferred: the consent service did not answer (connection failed).",
    )

    evaluate_all()

    mail = smtp.wait_for(2)[0]
    assert mail["Subject"] == "[mktintegration] Sync 'Companies to HubSpot' is failing"
    assert "the latest run sent nothing: 40 records deferred" in mail.get_content()


@pytest.mark.django_db
def test_a_failing_sync_is_mailed_to_its_owners_too(smtp, hubspot, user_with_role):
    """The manager who created the sync, and one granted change on it, hear of it; a manager
    who may only view it, or who has nothing to do with it, does not."""
    from guardian.shortcuts import assign_perm

    from mktintegration import roles
    from mktintegration.grants import creator_grant

    sync = make_sync(make_connection("hubspot", hubspot), name="Leads to HubSpot")
    creator = user_with_role(roles.MARKETING_MANAGER, email="maya@ourcompany.example")
    editor = user_with_role(roles.MARKETING_MANAGER, email="eli@ourcompany.example")
    viewer = user_with_role(roles.MARKETING_MANAGER, email="vic@ourcompany.example")
    user_with_role(roles.MARKETING_MANAGER, email="other@ourcompany.example")
    creator_grant(obj=sync, user=creator)
    assign_perm("integrations.change_sync", editor, sync)
    assign_perm("integrations.view_sync", viewer, sync)
    _run(sync, RunStatus.FAILED, error="configuration error: property gone")

    evaluate_all()

    smtp.wait_for(2)
    assert sorted(smtp.recipients) == ["eli@ourcompany.example", "maya@ourcompany.example"]
