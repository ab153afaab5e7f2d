"""Object grants, both ways: a Marketing Manager granted one Connection, Sync or
ExportSchedule gets 200 for it and 404 (never 403) for its neighbour, in the admin and in the
API (GrantedObjectsAPIView; session and token)."""

import pytest
from guardian.shortcuts import assign_perm

from exports.models import ExportDestination
from exports.services import export_destination_save
from mktintegration import roles
from mktintegration.tokens import token_create
from tests.factories import UserFactory
from tests.security.conftest import make_connection, make_schedule, make_sync

ADMIN_PATHS = {
    "connection": "/admin/integrations/connection/",
    "sync": "/admin/integrations/sync/",
    "exportschedule": "/admin/exports/exportschedule/",
}


@pytest.fixture
def pair(db, settings, tmp_path):
    """``pair(kind)`` -> (granted, neighbour): two objects of that kind, owned by someone else."""
    settings.MKT_EXPORT_DIR = tmp_path

    def make(kind: str):
        if kind == "connection":
            return make_connection("HubSpot A"), make_connection("HubSpot B")
        if kind == "sync":
            connection = make_connection("HubSpot")
            return make_sync(connection, "Sync A"), make_sync(connection, "Sync B")
        owner = UserFactory(username="owner", role=roles.INTEGRATION_ADMIN)
        destination = export_destination_save(
            destination=ExportDestination(name="Local", kind="local", subdirectory="x")
        )
        return (
            make_schedule(destination, "Schedule A", owner),
            make_schedule(destination, "Schedule B", owner),
        )

    return make


def _grant(user, obj, *actions: str) -> None:
    opts = obj._meta
    for action in actions:
        assign_perm(f"{opts.app_label}.{action}_{opts.model_name}", user, obj)


@pytest.fixture
def mona(user_with_role):
    return user_with_role(roles.MARKETING_MANAGER, username="mona")


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(ADMIN_PATHS))
def test_admin_answers_200_for_the_granted_object_and_404_for_its_neighbour(
    client, pair, mona, kind
):
    granted, neighbour = pair(kind)
    _grant(mona, granted, "view", "change")
    client.force_login(mona)
    base = ADMIN_PATHS[kind]

    assert client.get(f"{base}{granted.pk}/change/").status_code == 200
    assert client.get(f"{base}{neighbour.pk}/change/").status_code == 404
    assert client.post(f"{base}{neighbour.pk}/change/", {"name": "x"}).status_code == 404
    assert client.get(f"{base}{neighbour.pk}/history/").status_code == 404
    listed = {obj.pk for obj in client.get(base).context["cl"].result_list}
    assert listed == {granted.pk}


@pytest.mark.django_db
@pytest.mark.urls("tests.granted_api_urls")
@pytest.mark.parametrize("kind", sorted(ADMIN_PATHS))
def test_api_answers_200_for_the_granted_object_and_404_for_its_neighbour(client, pair, mona, kind):
    granted, neighbour = pair(kind)
    _grant(mona, granted, "view")
    _, token = token_create(user=mona, name="t", scopes=["integrations:read"])
    client.force_login(mona)

    assert client.get(f"/test-api/{kind}/{granted.pk}").status_code == 200
    assert client.get(f"/test-api/{kind}/{neighbour.pk}").status_code == 404
    assert client.get(f"/test-api/{kind}/{neighbour.pk + 1000}").status_code == 404
    client.logout()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.get(f"/test-api/{kind}/{granted.pk}", **bearer).status_code == 200
    assert client.get(f"/test-api/{kind}/{neighbour.pk}", **bearer).status_code == 404


@pytest.mark.django_db
@pytest.mark.urls("tests.granted_api_urls")
@pytest.mark.parametrize("kind", sorted(ADMIN_PATHS))
def test_api_changes_need_the_change_grant_on_that_object(client, pair, mona, kind):
    granted, neighbour = pair(kind)
    _grant(mona, granted, "view")
    client.force_login(mona)
    url = f"/test-api/{kind}/{granted.pk}"

    seen_only = client.patch(url, {"name": "renamed"}, content_type="application/json")
    assert seen_only.status_code == 403  # may see it, may not change it
    _grant(mona, granted, "change")
    assert (
        client.patch(url, {"name": "renamed"}, content_type="application/json").status_code == 200
    )
    granted.refresh_from_db()
    assert granted.name == "renamed"
    other = client.patch(
        f"/test-api/{kind}/{neighbour.pk}", {"name": "x"}, content_type="application/json"
    )
    assert other.status_code == 404


@pytest.mark.django_db
def test_run_now_apis_follow_the_run_grant_both_ways(client, pair, mona, settings):
    syncs, schedules = pair("sync"), pair("exportschedule")
    for obj, run_perm in ((syncs[0], "run_sync"), (schedules[0], "run_exportschedule")):
        _grant(mona, obj, "view")
        assign_perm(f"{obj._meta.app_label}.{run_perm}", mona, obj)
    client.force_login(mona)

    assert client.post(f"/marketing/integrations/syncs/{syncs[0].pk}/run").status_code == 202
    assert client.post(f"/marketing/integrations/syncs/{syncs[1].pk}/run").status_code == 404
    assert client.post(f"/marketing/integrations/exports/{schedules[0].pk}/run").status_code == 202
    assert client.post(f"/marketing/integrations/exports/{schedules[1].pk}/run").status_code == 404


@pytest.mark.django_db
def test_a_manager_sees_the_runs_of_granted_syncs_only(client, pair, mona):
    from integrations.models import SyncRun

    granted, neighbour = pair("sync")
    _grant(mona, granted, "view")
    mine = SyncRun.objects.create(sync=granted, status="succeeded", planned=3, created=3)
    theirs = SyncRun.objects.create(sync=neighbour, status="succeeded", planned=5, created=5)
    client.force_login(mona)

    changelist = client.get("/admin/integrations/syncrun/").context["cl"]
    assert {run.pk for run in changelist.result_list} == {mine.pk}
    assert client.get(f"/admin/integrations/syncrun/{mine.pk}/change/").status_code == 200
    assert client.get(f"/admin/integrations/syncrun/{theirs.pk}/change/").status_code == 404


@pytest.mark.django_db
def test_a_manager_reads_the_dead_letters_of_granted_syncs_payload_as_the_dataset_allows(
    client, pair, mona
):
    """The reason a record failed, to fix the mapping; the values only where the manager may
    export the sync's dataset (clients yes, contacts no)."""
    from integrations.models import DeadLetter, LedgerEntry

    def letter(sync, key, payload, error):
        entry = LedgerEntry.objects.create(sync=sync, record_key=key, status="dead")
        return DeadLetter.objects.create(
            sync=sync, entry_id=entry.pk, record_key=key, payload=payload, error=error
        )

    granted, neighbour = pair("sync")
    people = make_sync(granted.connection, "Contacts")
    people.dataset = "contacts"
    people.save(update_fields=["dataset"])
    for sync in (granted, people):
        _grant(mona, sync, "view")
    error = "numberofemployees: 'Berlin' is not a number"
    mine = letter(granted, "7", {"numberofemployees": "Berlin"}, error)
    personal = letter(people, "8", {"email": "ann@example.com"}, "refused")
    theirs = letter(neighbour, "9", {}, "x")
    client.force_login(mona)

    changelist = client.get("/admin/integrations/deadletter/").context["cl"]
    page = client.get(f"/admin/integrations/deadletter/{mine.pk}/change/").content.decode()
    hidden = client.get(f"/admin/integrations/deadletter/{personal.pk}/change/").content.decode()

    assert {letter.pk for letter in changelist.result_list} == {mine.pk, personal.pk}
    assert "is not a number" in page and "Berlin" in page.split(error)[-1]
    assert "ann@example.com" not in hidden
    assert "hidden: the contacts dataset" in hidden and "exports.export_contacts" in hidden
    assert client.get(f"/admin/integrations/deadletter/{theirs.pk}/change/").status_code == 404
