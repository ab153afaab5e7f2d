"""The status API and starting / reading runs, by role, grant and token scope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from exports.models import ExportDestination, ExportSchedule
from exports.services import export_destination_save, export_schedule_save
from integrations.models import ConnectionCheck, DeadLetter, LedgerEntry, RunStatus, SyncRun
from integrations.services import sync_schedule_apply, sync_set_paused
from mktintegration import roles
from mktintegration.tokens import token_create
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync, start_and_drive

STATUS = "/marketing/integrations/status"


def _finished_run(sync, status, *, minutes_ago=5, **counts):
    now = timezone.now()
    run = SyncRun.objects.create(sync=sync, trigger="schedule", status=status, **counts)
    SyncRun.objects.filter(pk=run.pk).update(
        queued_at=now - timedelta(minutes=minutes_ago + 1),
        started_at=now - timedelta(minutes=minutes_ago + 1),
        finished_at=now - timedelta(minutes=minutes_ago),
    )
    return run


@pytest.fixture
def schedule(manager, db, tmp_path, settings):
    settings.MKT_EXPORT_DIR = tmp_path
    destination = export_destination_save(
        destination=ExportDestination(name="drive", kind="local", subdirectory="out")
    )
    return export_schedule_save(
        schedule=ExportSchedule(
            name="Weekly clients", dataset="clients", destination=destination, cron="0 6 * * 1"
        ),
        creator=manager,
    )


@pytest.mark.django_db
def test_status_reports_each_state_with_its_reasons(api, integration_admin, hubspot):
    connection = make_connection("hubspot", hubspot)
    healthy = make_sync(connection, name="healthy", cron="*/15 * * * *")
    sync_schedule_apply(sync=healthy)  # its beat entry, as sync_save makes it
    failing = make_sync(connection, name="failing")
    degraded = make_sync(connection, name="degraded")
    paused = make_sync(connection, name="paused")
    CompanyFactory.create_batch(2)
    start_and_drive(healthy)
    _finished_run(failing, RunStatus.FAILED, error="configuration error: boom")
    _finished_run(degraded, RunStatus.PARTIAL, created=3, rejected=1, planned=4)
    sync_set_paused(sync=paused, paused=True, reason="paused by ida")
    now = timezone.now()
    ConnectionCheck.objects.bulk_create(
        [
            ConnectionCheck(connection=connection, checked_at=now - timedelta(hours=h), ok=h != 3)
            for h in range(4)
        ]
    )

    body = api(integration_admin).get(STATUS).json()

    syncs = {s["name"]: s for s in body["syncs"]}
    assert {n: s["state"] for n, s in syncs.items()} == {
        "healthy": "healthy",
        "failing": "failing",
        "degraded": "degraded",
        "paused": "paused",
    }
    assert "boom" in syncs["failing"]["reasons"][0]
    assert syncs["degraded"]["error_rate_24h"] == 1.0
    assert syncs["degraded"]["last_run"]["counts"]["rejected"] == 1
    assert syncs["paused"]["reasons"] == ["paused by ida"]
    run = syncs["healthy"]["last_run"]
    assert run["status"] == "succeeded" and run["counts"]["created"] == 2
    assert run["duration_seconds"] is not None
    assert syncs["healthy"]["next_run_at"] is not None
    assert syncs["healthy"]["seconds_since_success"] >= 0
    assert syncs["healthy"]["uptime_24h"] == 75.0
    (conn,) = body["connections"]
    assert conn["uptime_24h"] == 75.0 and conn["state"] == "degraded"
    assert conn["admin_url"].endswith(f"/admin/integrations/connection/{connection.pk}/change/")


@pytest.mark.django_db
def test_status_filters_by_vendor_and_state(api, integration_admin, hubspot, mailchimp):
    hub = make_connection("hubspot", hubspot)
    chimp = make_connection("mailchimp", mailchimp)
    make_sync(hub, name="hub")
    failing = make_sync(hub, name="hub failing")
    make_sync(
        chimp,
        name="chimp",
        obj="members",
        destination_config={"list_id": "x"},
        mappings=[],
        match=("email", "email_address"),
        dataset="contacts",
    )
    _finished_run(failing, RunStatus.FAILED)
    client = api(integration_admin)

    by_vendor = client.get(STATUS, {"vendor": "hubspot"}).json()
    assert {s["name"] for s in by_vendor["syncs"]} == {"hub", "hub failing"}
    assert by_vendor["export_schedules"] == []
    by_state = client.get(STATUS, {"state": "failing,paused"}).json()
    assert [s["name"] for s in by_state["syncs"]] == ["hub failing"]


@pytest.mark.django_db
def test_unknown_filter_values_are_a_400_listing_the_allowed_ones(api, integration_admin):
    client = api(integration_admin)

    vendor = client.get(STATUS, {"vendor": "myspace"})
    state = client.get(STATUS, {"state": "on-fire"})
    param = client.get(STATUS, {"colour": "red"})

    assert vendor.status_code == state.status_code == param.status_code == 400
    assert "allowed: constantcontact, hubspot, mailchimp" in vendor.json()["vendor"][0]
    assert "degraded, failing, healthy, paused" in state.json()["state"][0]
    assert "allowed: vendor, state" in param.json()["colour"][0]


@pytest.mark.django_db
def test_status_shows_only_granted_objects(api, manager, hubspot, schedule):
    connection = make_connection("hubspot", hubspot)
    mine, theirs = make_sync(connection, name="mine"), make_sync(connection, name="theirs")
    assign_perm("integrations.view_sync", manager, mine)

    body = api(manager).get(STATUS).json()

    assert [s["name"] for s in body["syncs"]] == ["mine"]
    assert body["connections"] == []
    assert [s["name"] for s in body["export_schedules"]] == ["Weekly clients"]
    assert theirs.name not in str(body)


@pytest.mark.django_db
def test_export_schedule_status_has_its_runs(api, manager, schedule, sent_export_tasks):
    from exports.runs import export_run_execute
    from exports.services import export_run_start

    CompanyFactory.create_batch(3)
    run = export_run_start(schedule=schedule, trigger="manual", user=manager)
    export_run_execute(run_id=run.pk)

    (item,) = api(manager).get(STATUS).json()["export_schedules"]

    assert item["state"] == "healthy"
    assert item["last_run"]["status"] == "succeeded" and item["last_run"]["rows"] == 3
    assert item["next_run_at"] is not None
    assert item["schedule"] == "cron 0 6 * * 1 (UTC)"


@pytest.fixture
def sent_export_tasks(monkeypatch):
    from exports.tasks import export_run_task

    sent = []
    monkeypatch.setattr(export_run_task, "delay", lambda *, run_id: sent.append(run_id))
    return sent


@pytest.fixture
def sent_sync_tasks(monkeypatch):
    from integrations.tasks import run_sync_task

    sent = []
    monkeypatch.setattr(run_sync_task, "delay", lambda *, run_id: sent.append(run_id))
    return sent


@pytest.mark.django_db
def test_run_now_starts_a_run_and_a_second_answers_409_with_the_first(
    api, integration_admin, hubspot, sent_sync_tasks, django_capture_on_commit_callbacks
):
    sync = make_sync(make_connection("hubspot", hubspot))
    client = api(integration_admin)

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/marketing/integrations/syncs/{sync.pk}/run")
    busy = client.post(f"/marketing/integrations/syncs/{sync.pk}/run")

    assert started.status_code == 202
    run_id = started.json()["run_id"]
    assert sent_sync_tasks == [run_id]
    assert started.json()["url"].endswith(f"/marketing/integrations/runs/{run_id}")
    assert SyncRun.objects.get(pk=run_id).trigger == "api"
    assert busy.status_code == 409
    assert busy.json()["code"] == "busy" and busy.json()["running_run_id"] == run_id


@pytest.mark.django_db
def test_run_state_and_counts_are_readable(api, integration_admin, hubspot):
    sync = make_sync(make_connection("hubspot", hubspot))
    CompanyFactory.create_batch(3)
    run = start_and_drive(sync)

    body = api(integration_admin).get(f"/marketing/integrations/runs/{run.pk}").json()

    assert body["status"] == "succeeded" and body["sync_id"] == sync.pk
    assert body["counts"]["created"] == 3 and body["planned"] == 3
    assert body["batches_done"] == body["batches_total"] == 1


@pytest.mark.django_db
def test_a_paused_sync_is_not_started(api, integration_admin, hubspot):
    sync = make_sync(make_connection("hubspot", hubspot))
    sync_set_paused(sync=sync, paused=True, reason="auth: 401")

    response = api(integration_admin).post(f"/marketing/integrations/syncs/{sync.pk}/run")

    assert response.status_code == 409 and response.json()["code"] == "paused"
    assert not SyncRun.objects.exists()


@pytest.mark.django_db
def test_run_endpoints_by_grant_role_and_scope(api, manager, user_with_role, hubspot):
    connection = make_connection("hubspot", hubspot)
    granted, neighbour = make_sync(connection, name="granted"), make_sync(connection, name="next")
    viewable = make_sync(connection, name="view only")
    assign_perm("integrations.view_sync", manager, granted)
    assign_perm("integrations.run_sync", manager, granted)
    assign_perm("integrations.view_sync", manager, viewable)
    run = _finished_run(neighbour, RunStatus.SUCCEEDED)
    auditor = user_with_role(roles.AUDITOR)
    _, run_token = token_create(user=manager, name="run", scopes=["integrations:run"])
    _, read_token = token_create(user=manager, name="read", scopes=["integrations:read"])

    def start(client, sync):
        return client.post(f"/marketing/integrations/syncs/{sync.pk}/run").status_code

    assert start(api(manager), neighbour) == 404  # not granted: its id does not leak
    assert start(api(manager), viewable) == 403  # visible, but no run grant
    assert start(api(token=read_token), granted) == 403  # token without the run scope
    assert start(api(token=run_token), granted) == 202
    assert start(api(auditor), granted) == 403  # sees every sync, runs none
    assert api(manager).get(f"/marketing/integrations/runs/{run.pk}").status_code == 404
    assert api(auditor).get(f"/marketing/integrations/runs/{run.pk}").status_code == 200
    assert api().get(STATUS).status_code in (401, 403)
    assert api(token=run_token).get(STATUS).status_code == 403
    assert api(token=read_token).get(STATUS).status_code == 200


@pytest.mark.django_db
def test_export_run_now_and_409_while_one_is_going(
    api, manager, schedule, sent_export_tasks, django_capture_on_commit_callbacks
):
    client = api(manager)

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/marketing/integrations/exports/{schedule.pk}/run")
    busy = client.post(f"/marketing/integrations/exports/{schedule.pk}/run")

    assert started.status_code == 202
    run_id = started.json()["run_id"]
    assert sent_export_tasks == [run_id]
    assert busy.status_code == 409
    assert busy.json()["running_run_id"] == run_id and busy.json()["code"] == "busy"
    detail = client.get(f"/marketing/integrations/export-runs/{run_id}")
    assert detail.status_code == 200 and detail.json()["status"] == "queued"


@pytest.mark.django_db
def test_export_run_of_a_schedule_not_granted_is_404(api, user_with_role, schedule):
    other = user_with_role(roles.MARKETING_MANAGER)

    response = api(other).post(f"/marketing/integrations/exports/{schedule.pk}/run")

    assert response.status_code == 404


@pytest.mark.django_db
def test_dead_letters_count_in_status(api, integration_admin, hubspot):
    sync = make_sync(make_connection("hubspot", hubspot))
    entry = LedgerEntry.objects.create(sync=sync, record_key="1", status="dead")
    DeadLetter.objects.create(sync=sync, entry=entry, record_key="1", error="bad email")

    body = api(integration_admin).get(STATUS).json()

    assert body["syncs"][0]["dead_letters"] == 1
    assert body["syncs"][0]["state"] == "degraded"
    assert body["connections"][0]["dead_letters"] == 1


@pytest.mark.django_db
def test_a_sync_whose_latest_run_was_deferred_for_consent_is_failing_with_the_reason(
    api, integration_admin, hubspot
):
    sync = make_sync(make_connection("hubspot", hubspot), name="contacts")
    _finished_run(
        sync,
        RunStatus.DEFERRED,
        planned=7,
        deferred=7,
        error="7 records deferred: the consent service did not answer (request timed out).",
    )

    body = api(integration_admin).get(STATUS).json()

    (status,) = body["syncs"]
    assert status["state"] == "failing"  # nothing goes out: "Sync ... is failing" is mailed
    assert status["reasons"] == [
        "the latest run sent nothing: 7 records deferred: the consent service did not answer "
        "(request timed out)."
    ]
    assert status["last_run"]["status"] == "deferred"
    assert status["last_run"]["counts"]["deferred"] == 7
    assert status["error_rate_24h"] == 1.0
