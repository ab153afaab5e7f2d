"""The change history (django-auditlog): every config model, with the right actor and address
for admin, API and task-driven changes, and never a secret."""

import pytest
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from celery import shared_task
from django.apps import apps
from django.contrib.auth.models import Group
from django.db.models.signals import pre_save
from guardian.shortcuts import assign_perm

from exports.models import ExportDestination
from integrations.models import Connection
from mktintegration import roles
from mktintegration.models import ApiToken
from mktintegration.system_actor import SYSTEM_USERNAME
from mktintegration.tokens import token_create
from tests.fakes.sftp import fingerprint_sha256, generate_ed25519_key

SFTP_PASSWORD = "pw-HISTORY-secret-0815"
HUBSPOT_TOKEN = "pat-na1-HISTORY-secret-4242"

CONFIG_MODELS = [
    "integrations.Connection",
    "integrations.Sync",
    "integrations.FieldMapping",
    "exports.ExportSchedule",
    "exports.ExportDestination",
    "django_celery_beat.PeriodicTask",
    "django_celery_beat.CrontabSchedule",
    "django_celery_beat.IntervalSchedule",
    "auth.Group",
    "mktintegration.User",
    "mktintegration.ApiToken",
    "guardian.UserObjectPermission",
    "guardian.GroupObjectPermission",
]
EXCLUDED = {
    "integrations.Connection": "credentials_ciphertext",
    "exports.ExportDestination": "secret_ciphertext",
    "mktintegration.ApiToken": "secret_hash",
    "mktintegration.User": "password",
}


def _connection(name="HubSpot prod") -> Connection:
    connection = Connection(name=name, vendor="hubspot", auth_kind="private_app_token")
    connection.set_credentials({"token": HUBSPOT_TOKEN})
    connection.save()
    return connection


def _entries_for(obj):
    return LogEntry.objects.get_for_object(obj).order_by("timestamp", "id")


def test_every_config_model_is_registered_and_secrets_are_excluded_not_masked():
    registered = {model._meta.label for model in auditlog.get_models()}
    assert set(CONFIG_MODELS) <= registered

    for label, field in EXCLUDED.items():
        options = auditlog.get_model_fields(apps.get_model(label))
        assert field in options["exclude_fields"], label
        assert field not in options["mask_fields"], label
    assert "groups" in auditlog._registry[apps.get_model("mktintegration.User")]["m2m_fields"]
    assert "permissions" in auditlog._registry[Group]["m2m_fields"]


@pytest.mark.django_db
def test_an_admin_change_records_the_user_and_the_address(client, user_with_role):
    admin_user = user_with_role(roles.INTEGRATION_ADMIN, username="ida")
    client.force_login(admin_user)

    response = client.post(
        "/admin/exports/exportdestination/add/",
        {
            "name": "Agency SFTP",
            "kind": "sftp",
            "retention_days": "30",
            "host": "sftp.agency.example",
            "port": "22",
            "username": "exporter",
            "remote_dir": "in",
            "host_key_fingerprint": fingerprint_sha256(generate_ed25519_key()),
            "signature_header": "X-Mkt-Signature",
            "password": SFTP_PASSWORD,
        },
        REMOTE_ADDR="10.20.30.40",
    )

    assert response.status_code == 302
    entry = _entries_for(ExportDestination.objects.get()).get()
    assert entry.action == LogEntry.Action.CREATE
    assert entry.actor == admin_user
    assert entry.remote_addr == "10.20.30.40"
    assert entry.changes_dict["host"] == ["None", "sftp.agency.example"]
    assert "secret_ciphertext" not in entry.changes_dict
    assert SFTP_PASSWORD not in str(entry.changes)


@pytest.mark.django_db
@pytest.mark.urls("tests.granted_api_urls")
def test_an_api_change_records_the_token_user_and_leaks_no_receiver(client, api_token):
    connection = _connection()
    user, raw = api_token(roles.INTEGRATION_ADMIN, ["integrations:configure"])
    receivers_before = len(pre_save.receivers)

    for name in ("HubSpot EU", "HubSpot EU 2"):
        response = client.patch(
            f"/test-api/connection/{connection.pk}",
            {"name": name},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
            REMOTE_ADDR="192.0.2.7",
        )
        assert response.status_code == 200, response.content

    updates = _entries_for(connection).filter(action=LogEntry.Action.UPDATE)
    assert [e.changes_dict["name"][1] for e in updates] == ["HubSpot EU", "HubSpot EU 2"]
    assert {(e.actor, e.remote_addr) for e in updates} == {(user, "192.0.2.7")}
    # auditlog's set_actor nested in its middleware would leave a receiver behind per request.
    assert len(pre_save.receivers) == receivers_before


@pytest.mark.django_db
def test_a_service_call_under_audit_actor_records_that_user(user_with_role):
    from audit.context import audit_actor

    user = user_with_role(roles.INTEGRATION_ADMIN)
    connection = _connection()

    with audit_actor(user, remote_addr="198.51.100.1"):
        connection.name = "renamed by a service"
        connection.save()
    connection.name = "renamed outside"
    connection.save()

    first, second = _entries_for(connection).filter(action=LogEntry.Action.UPDATE)
    assert (first.actor, first.remote_addr) == (user, "198.51.100.1")
    assert (second.actor, second.remote_addr) == (None, None)


@shared_task(name="tests.rename_connection")
def rename_connection(*, connection_id: int, name: str) -> None:
    connection = Connection.objects.get(pk=connection_id)
    connection.name = name
    connection.save()


@pytest.mark.django_db
def test_a_change_inside_a_task_is_recorded_as_the_system_actor():
    connection = _connection()

    # apply() runs the task through Celery's tracer, as a worker does (signals included).
    rename_connection.apply(kwargs={"connection_id": connection.pk, "name": "renamed by a task"})
    connection.name = "renamed after the task"
    connection.save()

    by_task, after = _entries_for(connection).filter(action=LogEntry.Action.UPDATE)
    assert by_task.actor.username == SYSTEM_USERNAME
    assert by_task.changes_dict["name"][1] == "renamed by a task"
    assert after.actor is None
    system = by_task.actor
    assert not system.is_active and not system.has_usable_password()
    assert system.is_service_account


@pytest.mark.django_db
def test_group_membership_grants_and_tokens_are_recorded_without_secrets(user_with_role):
    user = user_with_role(None, username="newcomer")
    connection = _connection()

    user.groups.add(Group.objects.get(name=roles.MARKETING_MANAGER))
    assign_perm("integrations.view_connection", user, connection)
    token, raw = token_create(user=user, name="BI", scopes=["export:clients"])
    user.set_password("another correct horse")
    user.save()
    connection.set_credentials({"token": "pat-na1-ROTATED-secret"})
    connection.save()

    membership = _entries_for(user).filter(changes__has_key="groups").last()
    assert membership.changes["groups"] == {
        "type": "m2m",
        "operation": "add",
        "objects": [roles.MARKETING_MANAGER],
    }
    grant = LogEntry.objects.filter(content_type__app_label="guardian").get()
    assert grant.action == LogEntry.Action.CREATE
    assert grant.changes_dict["object_pk"][1] == str(connection.pk)
    assert grant.object_repr == "HubSpot prod (hubspot) | newcomer | view_connection"
    token_entry = _entries_for(ApiToken.objects.get(pk=token.pk)).get()
    assert token_entry.changes_dict["scopes"][1] == '["export:clients"]'
    everything = " ".join(
        f"{e.changes} {e.changes_text} {e.object_repr} {e.serialized_data}"
        for e in LogEntry.objects.all()
    )
    for secret in (
        raw,
        raw.split("_", 2)[2],  # the secret part (mkt_<hex id>_<secret>; it may hold "_")
        token.secret_hash,
        user.password,
        HUBSPOT_TOKEN,
        "ROTATED-secret",
        connection.credentials_ciphertext,
    ):
        assert secret not in everything


@pytest.mark.django_db
def test_a_credentials_change_is_recorded_by_name_only_and_a_resave_is_not(user_with_role):
    from audit.context import audit_actor

    admin_user = user_with_role(roles.INTEGRATION_ADMIN)
    connection = _connection()

    with audit_actor(admin_user, remote_addr="10.0.0.9"):
        connection.set_credentials({"token": HUBSPOT_TOKEN})  # same secret, new ciphertext
        connection.save()
        connection.set_credentials({"token": "pat-na1-NEW-secret-9999"})
        connection.save()
        connection.set_credentials({})
        connection.save()

    recorded = [
        (entry.changes_dict["credentials"], entry.actor, entry.remote_addr)
        for entry in _entries_for(connection).filter(changes__has_key="credentials")
    ]
    assert recorded == [
        (["(not recorded)", "token replaced"], admin_user, "10.0.0.9"),
        (["(not recorded)", "token removed"], admin_user, "10.0.0.9"),
    ]
    assert "NEW-secret" not in str(list(LogEntry.objects.values_list("changes", flat=True)))
