"""Fixtures for the security tests: one of each granted object, owned by someone else, and
clients signed in as each principal (anonymous, a staff user with no role, each role)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from exports.models import ExportDestination, ExportRun, ExportSchedule
from exports.services import export_destination_save, export_schedule_save
from integrations.models import Connection, FieldMapping, Sync, SyncRun
from mktintegration import roles
from tests.factories import UserFactory
from tests.operations.conftest import integration_admin  # noqa: F401 - a fixture

ANONYMOUS = "anonymous"
NO_ROLE = "staff, no role"
PRINCIPALS = (ANONYMOUS, NO_ROLE, *roles.ROLES)

HUBSPOT_TOKEN = "pat-na1-RBAC-0000-secret"


@dataclass
class Objects:
    connection: Connection
    sync: Sync
    sync_run: SyncRun
    destination: ExportDestination
    schedule: ExportSchedule
    export_run: ExportRun

    def path_values(self) -> dict[str, int]:
        return {
            "connection": self.connection.pk,
            "sync": self.sync.pk,
            "sync_run": self.sync_run.pk,
            "schedule": self.schedule.pk,
            "export_run": self.export_run.pk,
        }


def make_connection(name: str, token: str = HUBSPOT_TOKEN) -> Connection:
    connection = Connection(name=name, vendor="hubspot", auth_kind="private_app_token")
    connection.set_credentials({"token": token})
    connection.save()
    return connection


def make_sync(connection: Connection, name: str) -> Sync:
    sync = Sync.objects.create(
        name=name,
        connection=connection,
        dataset="clients",
        destination_object="companies",
        match_source_field="external_id",
        match_destination_field="external_id",
    )
    FieldMapping.objects.create(sync=sync, source_field="name", destination_field="name")
    return sync


def make_schedule(destination: ExportDestination, name: str, owner) -> ExportSchedule:
    schedule = ExportSchedule(
        name=name, dataset="clients", fields=["id", "name"], format="csv", destination=destination
    )
    return export_schedule_save(schedule=schedule, creator=owner)


@pytest.fixture
def objects(db, settings, tmp_path) -> Objects:
    settings.MKT_EXPORT_DIR = tmp_path / "exports"
    owner = UserFactory(username="owner", role=roles.INTEGRATION_ADMIN)
    connection = make_connection("HubSpot prod")
    sync = make_sync(connection, "Companies to HubSpot")
    destination = export_destination_save(
        destination=ExportDestination(name="Local folder", kind="local", subdirectory="weekly")
    )
    schedule = make_schedule(destination, "Weekly clients", owner)
    return Objects(
        connection=connection,
        sync=sync,
        sync_run=SyncRun.objects.create(sync=sync, trigger="manual", status="succeeded"),
        destination=destination,
        schedule=schedule,
        export_run=ExportRun.objects.create(
            schedule=schedule, status="succeeded", trigger="manual"
        ),
    )


@pytest.fixture
def client_as(db):
    """``client_as(principal)``: a client signed in as a new user of that principal."""

    def make(principal: str) -> Client:
        client = Client()
        if principal != ANONYMOUS:
            role = None if principal == NO_ROLE else principal
            client.force_login(UserFactory(role=role))
        return client

    return make
