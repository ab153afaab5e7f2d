"""POST /marketing/events: other services announce changes to real-time syncs; bad input is a
400 naming the field and its range, with nothing kept; and, with a real worker, an announced
change reaches the destination within seconds (docs/realtime.md)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from exports.backbone.changes import ChangeEvent
from exports.backbone.models import Company
from integrations.models import RunStatus, SyncRun
from mktintegration import roles
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync
from tests.worker import wait_for

URL = "/marketing/events"


@pytest.fixture
def announcer(api, api_token):
    _, raw = api_token(roles.API_CLIENT, ["events:write"])
    return api(token=raw)


@pytest.mark.django_db
def test_announced_changes_go_to_the_outbox(announcer):
    response = announcer.post(
        URL,
        {
            "events": [
                {"subject": "company", "id": 7},
                {"subject": "contact", "id": 9, "occurred_at": "2026-12-01T10:00:00Z"},
            ]
        },
        format="json",
    )

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 2}
    rows = list(ChangeEvent.objects.order_by("pk").values_list("subject", "subject_id", "source"))
    assert rows == [("company", 7, "api"), ("contact", 9, "api")]
    assert ChangeEvent.objects.get(subject="contact").occurred_at.isoformat() == (
        "2026-12-01T10:00:00+00:00"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "path", "says"),
    [
        ({"events": []}, "events", "Ensure this field has at least 1 elements."),
        ({"events": [{"subject": "deal", "id": 1}]}, "events[0].subject", '"deal" is not a valid'),
        ({"events": [{"subject": "company", "id": 0}]}, "events[0].id", "from 1 to"),
        ({"events": [{"subject": "company", "id": 2**63}]}, "events[0].id", "from 1 to"),
        ({"events": [{"subject": "company", "id": "x"}]}, "events[0].id", "Enter a whole number"),
        (
            {"events": [{"subject": "company", "id": 1, "occurred_at": "2999-12-31T00:00:00Z"}]},
            "events[0].occurred_at",
            "at most 300 seconds ahead",
        ),
        (
            {"events": [{"subject": "company", "id": 1, "occurred_at": "1066-10-14T00:00:00Z"}]},
            "events[0].occurred_at",
            "between 1900-01-01",
        ),
        ({"events": [{"subject": "company", "id": 1, "why": "x"}]}, "events[0].why", "unknown"),
        ({"events": [{"subject": "company", "id": 1}] * 1001}, "events", "no more than 1000"),
        ([1, 2], "document", "must be a JSON object"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_kept(announcer, body, path, says):
    response = announcer.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert any(e["path"] == path and says in e["message"] for e in errors), errors
    assert not ChangeEvent.objects.exists()


@pytest.mark.django_db
def test_a_token_without_the_scope_or_a_role_without_the_permission_is_refused(api, api_token):
    body = {"events": [{"subject": "company", "id": 1}]}
    _, export_only = api_token(roles.API_CLIENT, ["export:clients"])
    _, manager = api_token(roles.MARKETING_MANAGER, ["events:write"])

    assert api(token=export_only).post(URL, body, format="json").status_code == 403
    assert api(token=manager).post(URL, body, format="json").status_code == 403
    assert api().post(URL, body, format="json").status_code == 401
    assert not ChangeEvent.objects.exists()


@pytest.mark.django_db
def test_the_status_api_says_a_sync_is_real_time(api, api_token, hubspot):
    from integrations.services import sync_save

    sync = make_sync(make_connection("hubspot", hubspot), name="live")
    sync.realtime, sync.every_minutes = True, 60
    sync_save(sync=sync)
    _, raw = api_token(roles.INTEGRATION_ADMIN, ["integrations:read"])

    body = api(token=raw).get("/marketing/integrations/status").json()

    (item,) = body["syncs"]
    assert item["schedule"] == "every 60 min, and real-time"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_an_announced_change_within_seconds(
    monkeypatch, settings, hubspot, announcer
):
    from integrations.services import sync_save
    from tests.worker import WorkerProcess, clear_file_broker

    # No window: the ingest API's bell starts the run at once (there is no beat here).
    monkeypatch.setenv("MKT_REALTIME_WINDOW_SECONDS", "0.001")
    companies = CompanyFactory.create_batch(3)
    sync = make_sync(make_connection("hubspot", hubspot))
    sync.realtime, sync.every_minutes = True, 60
    sync_save(sync=sync)
    clear_file_broker()
    worker = WorkerProcess().start()
    try:
        from integrations.services import sync_run_start

        first = sync_run_start(sync=sync, trigger="manual")
        wait_for(
            lambda: SyncRun.objects.filter(pk=first.pk, status="succeeded").first(), timeout=120
        )
        # Another service changed the company and says so (and the backbone's trigger too).
        Company.objects.filter(pk=companies[1].pk).update(
            name="Announced Ltd", updated_at=timezone.now()
        )
        response = announcer.post(
            URL, {"events": [{"subject": "company", "id": companies[1].pk}]}, format="json"
        )
        assert response.status_code == 202

        run = wait_for(
            lambda: SyncRun.objects.filter(
                sync=sync, trigger="realtime", status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]
            ).first(),
            timeout=60,
        )
        assert run.status == RunStatus.SUCCEEDED, run.error + worker.output()
        assert list(run.targets) == [str(companies[1].pk)]
        names = {o["properties"]["name"] for o in hubspot.objects("companies")}
        assert "Announced Ltd" in names
        assert (run.finished_at - run.queued_at).total_seconds() < 30
    finally:
        worker.stop()
