"""Connections and syncs in the admin: write-only secrets, form errors, actions, grants."""

import pytest
from guardian.shortcuts import assign_perm

from integrations.models import Connection, FieldMapping, Sync, SyncRun
from mktintegration import roles
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync


def _sync_post(connection, **overrides):
    data = {
        "name": "Companies to HubSpot",
        "connection": connection.pk,
        "dataset": "clients",
        "filters": "{}",
        "destination_object": "companies",
        "destination_config": "{}",
        "mode": "upsert",
        "match_source_field": "external_id",
        "match_destination_field": "external_id",
        "consent_purpose": "",
        "cron": "",
        "every_minutes": "",
        "enabled": "on",
        "mirror_max_delete_share": "0.1",
        "lookback_minutes": "15",
        "mappings-TOTAL_FORMS": "1",
        "mappings-INITIAL_FORMS": "0",
        "mappings-MIN_NUM_FORMS": "0",
        "mappings-MAX_NUM_FORMS": "1000",
        "mappings-0-source_field": "name",
        "mappings-0-template": "",
        "mappings-0-destination_field": "name",
        "mappings-0-transform": "",
        "mappings-0-position": "0",
    }
    data.update(overrides)
    return data


@pytest.fixture
def admin_user_client(client_for):
    return client_for(roles.INTEGRATION_ADMIN)


@pytest.mark.django_db
def test_credentials_are_write_only_and_encrypted(admin_user_client, hubspot):
    response = admin_user_client.post(
        "/admin/integrations/connection/add/",
        {
            "name": "HubSpot prod",
            "vendor": "hubspot",
            "auth_kind": "private_app_token",
            "config": "{}",
            "base_url": hubspot.url,
            "allowed_regions": "[]",
            "rate_limit_requests": "",
            "rate_limit_seconds": "",
            "token": "pat-na1-SECRET-VALUE",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    connection = Connection.objects.get()

    assert connection.get_credentials() == {"token": "pat-na1-SECRET-VALUE"}
    assert "SECRET-VALUE" not in connection.credentials_ciphertext
    page = admin_user_client.get(f"/admin/integrations/connection/{connection.pk}/change/")
    assert "SECRET-VALUE" not in page.content.decode()
    assert "Leave blank to keep it" in page.content.decode()
    listing = admin_user_client.get("/admin/integrations/connection/")
    assert "SECRET-VALUE" not in listing.content.decode()


@pytest.mark.django_db
def test_unknown_vendor_and_bad_base_url_are_form_errors(admin_user_client, settings):
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = []
    response = admin_user_client.post(
        "/admin/integrations/connection/add/",
        {
            "name": "x",
            "vendor": "myspace",
            "auth_kind": "api_key",
            "config": "{}",
            "base_url": "https://169.254.169.254/",
            "allowed_regions": "[]",
        },
    )

    form = response.context["adminform"].form
    assert "vendor" in form.errors
    assert not Connection.objects.exists()


@pytest.mark.django_db
def test_test_connection_action_says_why_it_failed(admin_user_client, hubspot):
    connection = make_connection("hubspot", hubspot)
    connection.set_credentials({"token": "wrong"})
    connection.save()

    response = admin_user_client.post(
        "/admin/integrations/connection/",
        {
            "action": "test_connections",
            "_selected_action": [connection.pk],
        },
        follow=True,
    )

    text = response.content.decode()
    assert "HTTP 401" in text and "Authentication credentials not found" in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        (
            {"mappings-0-destination_field": "no_such_property"},
            "destination_field",
            "does not exist at HubSpot",
        ),
        ({"match_destination_field": "name"}, "match_destination_field", "not unique"),
        ({"cron": "every day"}, "cron", "needs 5 fields"),
        ({"match_source_field": "nope"}, "match_source_field", "not a field of clients"),
        ({"filters": '{"country": "DE", "colour": "red"}'}, "filters", "unknown filter"),
    ],
)
def test_sync_form_errors_name_the_field(admin_user_client, hubspot, overrides, field, says):
    connection = make_connection("hubspot", hubspot)

    response = admin_user_client.post(
        "/admin/integrations/sync/add/", _sync_post(connection, **overrides)
    )

    assert response.status_code == 200
    errors = str(response.context["adminform"].form.errors) + str(
        [
            f.errors
            for formset in response.context["inline_admin_formsets"]
            for f in formset.formset.forms
        ]
    )
    assert says in errors, errors
    assert not Sync.objects.exists()


@pytest.mark.django_db
def test_saving_a_sync_with_a_schedule_creates_its_beat_entry(admin_user_client, hubspot):
    from django_celery_beat.models import PeriodicTask

    connection = make_connection("hubspot", hubspot)
    response = admin_user_client.post(
        "/admin/integrations/sync/add/", _sync_post(connection, cron="*/30 * * * *")
    )

    assert response.status_code == 302
    sync = Sync.objects.get()
    task = PeriodicTask.objects.get(name=f"sync-{sync.pk}")
    assert task.crontab.minute == "*/30" and task.task == "integrations.run_schedule"
    assert FieldMapping.objects.filter(sync=sync).count() == 1


@pytest.mark.django_db
def test_manager_sees_only_granted_syncs_and_gets_404_for_others(
    client_for, hubspot, user_with_role
):
    connection = make_connection("hubspot", hubspot)
    mine = make_sync(connection, name="mine")
    theirs = make_sync(connection, name="theirs")
    manager = user_with_role(roles.MARKETING_MANAGER)
    assign_perm("integrations.change_sync", manager, mine)
    from django.test import Client

    client = Client()
    client.force_login(manager)

    listing = client.get("/admin/integrations/sync/").content.decode()
    assert "mine" in listing and "theirs" not in listing
    assert client.get(f"/admin/integrations/sync/{mine.pk}/change/").status_code == 200
    assert client.get(f"/admin/integrations/sync/{theirs.pk}/change/").status_code == 404


@pytest.mark.django_db
def test_run_now_needs_the_run_permission(client_for, hubspot, user_with_role):
    connection = make_connection("hubspot", hubspot)
    sync = make_sync(connection)
    manager = user_with_role(roles.MARKETING_MANAGER)
    assign_perm("integrations.change_sync", manager, sync)
    from django.test import Client

    client = Client()
    client.force_login(manager)
    client.post("/admin/integrations/sync/", {"action": "run_now", "_selected_action": [sync.pk]})
    assert not SyncRun.objects.exists()

    assign_perm("integrations.run_sync", manager, sync)
    client.post("/admin/integrations/sync/", {"action": "run_now", "_selected_action": [sync.pk]})
    assert SyncRun.objects.filter(sync=sync, trigger="manual").count() == 1


@pytest.mark.django_db
def test_preview_action_shows_the_plan(admin_user_client, hubspot):
    sync = make_sync(make_connection("hubspot", hubspot))
    CompanyFactory.create_batch(2)

    response = admin_user_client.post(
        "/admin/integrations/sync/",
        {
            "action": "preview",
            "_selected_action": [sync.pk],
        },
    )

    text = response.content.decode()
    assert "<strong>2</strong> records would be sent" in text
    assert hubspot.calls("batch/upsert") == []


@pytest.mark.django_db
def test_deleting_a_sync_removes_its_ledger_and_shows_counts(admin_user_client, company_sync):
    from integrations.models import LedgerEntry
    from tests.integrations.conftest import start_and_drive

    CompanyFactory.create_batch(3)
    start_and_drive(company_sync)

    page = admin_user_client.get(f"/admin/integrations/sync/{company_sync.pk}/delete/")
    assert "Ledger entries: 3" in page.content.decode()
    admin_user_client.post(f"/admin/integrations/sync/{company_sync.pk}/delete/", {"post": "yes"})

    assert not Sync.objects.exists() and not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_a_manager_cannot_loosen_the_mirror_guard(client, hubspot, user_with_role):
    connection = make_connection("hubspot", hubspot)
    sync = make_sync(connection, name="guarded", mode="mirror", mappings=[("name", "name")])
    mapping = sync.mappings.get()
    manager = user_with_role(roles.MARKETING_MANAGER)
    for perm in ("view_sync", "change_sync"):
        assign_perm(f"integrations.{perm}", manager, sync)
    assign_perm("integrations.view_connection", manager, connection)
    client.force_login(manager)

    data = _sync_post(connection, name="guarded", mode="mirror", mirror_max_delete_share="0.9")
    data.update(
        {
            "mappings-INITIAL_FORMS": "1",
            "mappings-0-id": str(mapping.pk),
            "mappings-0-sync": str(sync.pk),
        }
    )
    response = client.post(f"/admin/integrations/sync/{sync.pk}/change/", data)

    assert response.status_code == 302
    sync.refresh_from_db()
    assert sync.mirror_max_delete_share == 0.1


@pytest.mark.django_db
def test_pausing_and_resuming_is_in_the_change_history(company_sync):
    from auditlog.models import LogEntry

    from integrations.services import sync_set_paused

    sync_set_paused(sync=company_sync, paused=True, reason="vendor maintenance")
    sync_set_paused(sync=company_sync, paused=False)

    changes = [
        entry.changes_dict.get("paused")
        for entry in LogEntry.objects.get_for_object(company_sync).order_by("pk")
        if "paused" in entry.changes_dict
    ]
    assert changes[-2:] == [["False", "True"], ["True", "False"]]  # after the creation


@pytest.mark.django_db
def test_a_filter_value_no_record_has_is_a_warning_on_save_and_in_preview(
    admin_user_client, hubspot
):
    connection = make_connection("hubspot", hubspot)
    CompanyFactory(country="DE")

    saved = admin_user_client.post(
        "/admin/integrations/sync/add/",
        _sync_post(connection, filters='{"country": "Germany,DE"}'),
        follow=True,
    )
    sync = Sync.objects.get()
    Sync.objects.filter(pk=sync.pk).update(filters={"country": "Germany"})
    preview = admin_user_client.post(
        "/admin/integrations/sync/", {"action": "preview", "_selected_action": [sync.pk]}
    )

    on_save = [str(m) for m in saved.context["messages"]]
    assert any("no record has 'Germany'" in m and "only the other values" in m for m in on_save)
    text = preview.content.decode()
    assert "no record has &#x27;Germany&#x27;" in text and "matches nothing" in text
