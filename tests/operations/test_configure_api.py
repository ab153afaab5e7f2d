"""POST /marketing/integrations/configure: one document, validated whole, applied once."""

from __future__ import annotations

import copy

import pytest
from auditlog.models import LogEntry
from django_celery_beat.models import PeriodicTask
from guardian.shortcuts import assign_perm

from integrations.models import Connection, FieldMapping, Sync
from integrations.operations.models import AlertRecipients
from mktintegration import roles
from mktintegration.tokens import token_create

URL = "/marketing/integrations/configure"


def document(server, **overrides):
    doc = {
        "connection": {
            "name": "HubSpot prod",
            "vendor": "hubspot",
            "auth_kind": "private_app_token",
            "credentials": {"token": server.credential},
            "base_url": server.url,
            "rate_limit_requests": 100,
            "rate_limit_seconds": 1,
            "alert_emails": ["crm-team@ourcompany.example"],
        },
        "syncs": [
            {
                "name": "Companies to HubSpot",
                "dataset": "clients",
                "destination_object": "companies",
                "match_source_field": "external_id",
                "match_destination_field": "external_id",
                "cron": "*/15 * * * *",
                "mappings": [
                    {"source_field": "name", "destination_field": "name"},
                    {"source_field": "domain", "destination_field": "domain"},
                    {
                        "source_field": "country",
                        "destination_field": "country",
                        "transform": "upper",
                    },
                ],
                "alert_emails": ["mona@ourcompany.example"],
            }
        ],
    }
    doc.update(overrides)
    return doc


def _snapshot():
    return (
        list(Connection.objects.values_list("name", "base_url", "credentials_ciphertext")),
        list(Sync.objects.values_list("name", "cron", "config_version")),
        list(FieldMapping.objects.values_list("sync__name", "source_field", "destination_field")),
        list(PeriodicTask.objects.filter(name__startswith="sync-").values_list("name", "enabled")),
        list(AlertRecipients.objects.values_list("emails", flat=True)),
    )


@pytest.mark.django_db
def test_document_creates_connection_sync_mappings_and_schedule(api, integration_admin, hubspot):
    response = api(integration_admin).post(URL, document(hubspot), format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["changed"] is True
    assert [(e["op"], e["object"], e["path"]) for e in body["diff"]][:2] == [
        ("create", "connection", "connection"),
        ("create", "sync", "syncs[0]"),
    ]
    connection = Connection.objects.get(name="HubSpot prod")
    assert connection.get_credentials() == {"token": hubspot.credential}
    sync = Sync.objects.get(name="Companies to HubSpot")
    assert sync.connection == connection and sync.cron == "*/15 * * * *"
    assert [(m.source_field, m.destination_field, m.transform) for m in sync.mappings.all()] == [
        ("name", "name", ""),
        ("domain", "domain", ""),
        ("country", "country", "upper"),
    ]
    task = PeriodicTask.objects.get(name=sync.periodic_task_name)
    assert task.enabled and task.crontab.minute == "*/15"
    # The creator is granted what they created, as in the admin.
    assert integration_admin.has_perm("integrations.run_sync", sync)
    assert AlertRecipients.objects.get(sync=sync).emails == ["mona@ourcompany.example"]
    assert AlertRecipients.objects.get(connection=connection).emails == [
        "crm-team@ourcompany.example"
    ]
    # The answer is the resulting config and its version; the secret is never echoed.
    assert hubspot.credential not in response.content.decode()
    assert body["config"]["connection"]["credentials_set"] == ["token"]
    assert body["config"]["syncs"][0]["id"] == sync.pk
    assert body["version"]["revision"] == 1
    latest = LogEntry.objects.order_by("-id").first()
    assert body["version"]["audit_log_id"] is not None
    assert body["version"]["audit_log_id"] <= latest.pk


@pytest.mark.django_db
def test_the_same_document_twice_changes_nothing_the_second_time(api, integration_admin, hubspot):
    client = api(integration_admin)
    first = client.post(URL, document(hubspot), format="json").json()
    before = _snapshot()
    entries = LogEntry.objects.count()

    second = client.post(URL, document(hubspot), format="json")

    assert second.status_code == 200
    body = second.json()
    assert body["changed"] is False and body["diff"] == []
    assert body["version"] == first["version"]
    assert _snapshot() == before
    assert LogEntry.objects.count() == entries


@pytest.mark.django_db
def test_a_changed_document_updates_in_place_and_reports_the_diff(api, integration_admin, hubspot):
    client = api(integration_admin)
    client.post(URL, document(hubspot), format="json")
    sync = Sync.objects.get()
    doc = document(hubspot)
    doc["syncs"][0]["cron"] = "0 * * * *"
    doc["syncs"][0]["mappings"] = [
        {"source_field": "name", "destination_field": "name", "transform": "trim"},
        {"source_field": "industry", "destination_field": "industry"},
    ]

    body = client.post(URL, doc, format="json").json()

    assert body["changed"] is True
    ops = {(e["op"], e["object"], e.get("name")) for e in body["diff"]}
    assert ("update", "sync", "Companies to HubSpot") in ops
    assert ("update", "field_mapping", "name") in ops
    assert ("create", "field_mapping", "industry") in ops
    assert ("delete", "field_mapping", "domain") in ops
    assert ("delete", "field_mapping", "country") in ops
    update = next(e for e in body["diff"] if e["object"] == "sync")
    assert update["changes"]["cron"] == {"from": "*/15 * * * *", "to": "0 * * * *"}
    sync.refresh_from_db()
    assert Sync.objects.get().pk == sync.pk
    assert sync.cron == "0 * * * *" and sync.config_version == 2
    assert list(sync.mappings.values_list("destination_field", "transform")) == [
        ("name", "trim"),
        ("industry", ""),
    ]
    assert PeriodicTask.objects.get(name=sync.periodic_task_name).crontab.minute == "0"
    assert body["version"]["revision"] == 2


@pytest.mark.django_db
def test_dry_run_answers_the_diff_and_changes_nothing(api, integration_admin, hubspot):
    client = api(integration_admin)
    doc = document(hubspot, dry_run=True)

    response = client.post(URL, doc, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["dry_run"] is True and body["changed"] is True
    assert {e["op"] for e in body["diff"]} == {"create"}
    assert body["config"]["connection"]["id"] is None
    assert not Connection.objects.exists() and not Sync.objects.exists()
    assert not PeriodicTask.objects.filter(name__startswith="sync-").exists()


@pytest.mark.django_db
def test_bad_document_lists_every_error_by_path_and_changes_nothing(
    api, integration_admin, hubspot
):
    client = api(integration_admin)
    client.post(URL, document(hubspot), format="json")
    before = _snapshot()
    doc = document(hubspot)
    doc["syncs"][0]["cron"] = "every tuesday"
    doc["syncs"][0]["colour"] = "blue"
    doc["syncs"][0]["mappings"].append({"source_field": "nmae", "destination_field": "name2"})
    doc["syncs"][0]["mappings"].append(
        {"source_field": "city", "destination_field": "no_such_property"}
    )

    response = client.post(URL, doc, format="json")

    assert response.status_code == 400
    errors = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) >= {
        "syncs[0].colour",
        "syncs[0].cron",
        "syncs[0].mappings[3].source_field",
        "syncs[0].mappings[3].destination_field",
        "syncs[0].mappings[4].destination_field",
    }, errors
    assert "nmae is not a field of clients" in errors["syncs[0].mappings[3].source_field"]
    assert (
        "'no_such_property' does not exist at HubSpot"
        in errors["syncs[0].mappings[4].destination_field"]
    )
    assert "5 fields" in errors["syncs[0].cron"]
    assert _snapshot() == before


@pytest.mark.django_db
def test_unknown_vendor_is_reported_with_the_known_ones(api, integration_admin, hubspot):
    doc = document(hubspot)
    doc["connection"]["vendor"] = "myspace"
    doc["syncs"][0]["dataset"] = "clientz"

    response = api(integration_admin).post(URL, doc, format="json")

    assert response.status_code == 400
    errors = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert "hubspot, mailchimp" in errors["connection.vendor"]
    assert "Unknown dataset 'clientz'" in errors["syncs[0].dataset"]
    assert not Connection.objects.exists()


@pytest.mark.django_db
def test_a_mapping_to_a_field_the_destination_lacks_is_a_400_naming_it(
    api, integration_admin, hubspot
):
    doc = document(hubspot)
    doc["syncs"][0]["mappings"][1]["destination_field"] = "web_domain"

    response = api(integration_admin).post(URL, doc, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "syncs[0].mappings[1].destination_field"
    assert not Connection.objects.exists()  # the new connection saved for the check is rolled back


@pytest.mark.django_db
def test_structural_errors_carry_paths(api, integration_admin, hubspot):
    doc = document(hubspot)
    doc["syncs"][0]["every_minutes"] = "soon"
    del doc["syncs"][0]["mappings"][0]["destination_field"]
    doc["connection"]["alert_emails"] = ["not-an-address"]

    response = api(integration_admin).post(URL, doc, format="json")

    assert response.status_code == 400
    paths = {e["path"] for e in response.json()["errors"]}
    assert paths == {
        "syncs[0].every_minutes",
        "syncs[0].mappings[0].destination_field",
        "connection.alert_emails[0]",
    }


@pytest.mark.django_db
def test_credentials_are_write_only_and_a_left_out_secret_is_kept(api, integration_admin, hubspot):
    client = api(integration_admin)
    client.post(URL, document(hubspot), format="json")
    doc = document(hubspot)
    del doc["connection"]["credentials"]

    body = client.post(URL, doc, format="json").json()

    assert body["changed"] is False
    assert Connection.objects.get().get_credentials() == {"token": hubspot.credential}
    assert "credentials" not in body["config"]["connection"]


@pytest.mark.django_db
def test_manager_may_configure_syncs_on_a_granted_connection_but_not_its_credentials(
    api, integration_admin, manager, hubspot
):
    api(integration_admin).post(URL, document(hubspot, syncs=[]), format="json")
    connection = Connection.objects.get()
    assign_perm("integrations.view_connection", manager, connection)
    client = api(manager)

    created = client.post(URL, document(hubspot), format="json")
    assert created.status_code == 200, created.json()
    sync = Sync.objects.get()
    assert manager.has_perm("integrations.change_sync", sync)

    doc = document(hubspot)
    doc["connection"]["credentials"] = {"token": "stolen-or-new"}
    refused = client.post(URL, doc, format="json")
    assert refused.status_code == 403
    paths = {e["path"] for e in refused.json()["errors"]}
    assert paths == {"connection", "connection.credentials"}
    assert Connection.objects.get().get_credentials() == {"token": hubspot.credential}


@pytest.mark.django_db
def test_manager_may_not_create_connections(api, manager, hubspot):
    response = api(manager).post(URL, document(hubspot), format="json")

    assert response.status_code == 403
    assert not Connection.objects.exists()


@pytest.mark.django_db
def test_a_connection_not_granted_answers_404(api, integration_admin, manager, hubspot):
    api(integration_admin).post(URL, document(hubspot), format="json")

    response = api(manager).post(URL, document(hubspot), format="json")

    assert response.status_code == 404


@pytest.mark.django_db
def test_token_needs_the_configure_scope(api, integration_admin, hubspot):
    _, read_only = token_create(user=integration_admin, name="ro", scopes=["integrations:read"])
    _, configure = token_create(
        user=integration_admin, name="cfg", scopes=["integrations:configure"]
    )

    assert api(token=read_only).post(URL, document(hubspot), format="json").status_code == 403
    assert api(token=configure).post(URL, document(hubspot), format="json").status_code == 200


@pytest.mark.django_db
def test_prune_deletes_unlisted_syncs_only_when_asked(api, integration_admin, hubspot):
    client = api(integration_admin)
    doc = document(hubspot)
    second = copy.deepcopy(doc["syncs"][0])
    second["name"] = "Companies, second"
    doc["syncs"].append(second)
    client.post(URL, doc, format="json")

    kept = client.post(URL, document(hubspot), format="json").json()
    assert kept["config"]["unlisted_syncs"] == ["Companies, second"]
    assert Sync.objects.count() == 2

    pruned = client.post(URL, document(hubspot, prune_syncs=True), format="json").json()
    assert pruned["changed"] is True
    assert {"op": "delete", "path": "syncs", "object": "sync", "name": "Companies, second"} in (
        pruned["diff"]
    )
    assert list(Sync.objects.values_list("name", flat=True)) == ["Companies to HubSpot"]


@pytest.mark.django_db
def test_configure_is_in_the_openapi_schema(client_for):
    client = client_for(roles.INTEGRATION_ADMIN)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    operation = schema["paths"]["/marketing/integrations/configure"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ConfigureDocument")
    assert "credentials" in schema["components"]["schemas"]["ConnectionDocument"]["properties"]
    for path in (
        "/marketing/integrations/status",
        "/marketing/integrations/syncs/{id}/run",
        "/marketing/integrations/exports/{id}/run",
        "/marketing/integrations/runs/{id}",
        "/marketing/integrations/export-runs/{id}",
    ):
        assert path in schema["paths"], path


@pytest.mark.django_db
def test_configure_requests_leak_no_receiver_and_record_the_client_address(
    client, integration_admin, hubspot
):
    from django.db.models.signals import pre_save

    _, raw = token_create(user=integration_admin, name="iac", scopes=["integrations:configure"])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}", "REMOTE_ADDR": "192.0.2.44"}
    receivers = len(pre_save.receivers)
    before = LogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0

    for _ in range(20):
        dry = client.post(
            URL, document(hubspot, dry_run=True), content_type="application/json", **headers
        )
        assert dry.status_code == 200, dry.content
    applied = client.post(URL, document(hubspot), content_type="application/json", **headers)

    assert applied.status_code == 200, applied.content
    assert len(pre_save.receivers) == receivers
    created = LogEntry.objects.filter(id__gt=before, action=LogEntry.Action.CREATE)
    assert {e.content_type.model for e in created} >= {"connection", "sync", "fieldmapping"}
    assert {(e.actor, e.remote_addr) for e in created} == {(integration_admin, "192.0.2.44")}


@pytest.mark.django_db
def test_a_document_makes_a_sync_real_time_and_needs_its_schedule(api, integration_admin, hubspot):
    from exports.backbone.changes import ChangeSubscription

    client = api(integration_admin)
    unscheduled = document(hubspot)
    unscheduled["syncs"][0].update(realtime=True, cron="")

    refused = client.post(URL, unscheduled, format="json")

    assert refused.status_code == 400
    assert any(
        e["path"] == "syncs[0].realtime" and "needs a schedule" in e["message"]
        for e in refused.json()["errors"]
    ), refused.json()
    assert not Sync.objects.exists()

    live = document(hubspot)
    live["syncs"][0]["realtime"] = True
    assert client.post(URL, live, format="json").status_code == 200
    assert Sync.objects.get().realtime
    # The backbone now announces company changes.
    assert list(ChangeSubscription.objects.values_list("subject", flat=True)) == ["company"]
