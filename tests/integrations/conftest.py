"""Fixtures for sync tests: real vendor emulators on loopback, connections and syncs."""

import pytest

from integrations.models import Connection, FieldMapping, Sync, SyncBatch
from integrations.models.runs import BatchStatus


def make_connection(vendor, server, **kwargs):
    connection = Connection(
        name=kwargs.pop("name", f"{vendor} test"),
        vendor=vendor,
        auth_kind={"hubspot": "private_app_token", "mailchimp": "api_key"}[vendor],
        base_url=server.url + ("/3.0" if vendor == "mailchimp" else ""),
        rate_limit_requests=kwargs.pop("rate_limit_requests", 10_000),
        rate_limit_seconds=kwargs.pop("rate_limit_seconds", 1),
        **kwargs,
    )
    secret = {"hubspot": {"token": server.credential}, "mailchimp": {"api_key": server.credential}}
    connection.set_credentials(secret[vendor])
    connection.save()
    return connection


@pytest.fixture
def hubspot_connection(db, hubspot):
    return make_connection("hubspot", hubspot)


@pytest.fixture
def mailchimp_connection(db, mailchimp):
    return make_connection("mailchimp", mailchimp)


COMPANY_MAPPINGS = [
    ("name", "name"),
    ("domain", "domain"),
    ("industry", "industry"),
    ("employees", "numberofemployees"),
    ("country", "country"),
]


def make_sync(
    connection,
    *,
    dataset="clients",
    obj="companies",
    mappings=COMPANY_MAPPINGS,
    match=("external_id", "external_id"),
    **kwargs,
):
    sync = Sync.objects.create(
        name=kwargs.pop("name", f"sync {Sync.objects.count() + 1}"),
        connection=connection,
        dataset=dataset,
        destination_object=obj,
        match_source_field=match[0],
        match_destination_field=match[1],
        **kwargs,
    )
    for position, (source, target) in enumerate(mappings):
        FieldMapping.objects.create(
            sync=sync, source_field=source, destination_field=target, position=position
        )
    return sync


@pytest.fixture
def company_sync(hubspot_connection):
    return make_sync(hubspot_connection)


def drive(run):
    """Do synchronously what the worker does: plan, then deliver every queued batch."""
    from integrations.engine.runs import batch_execute, run_execute

    run_execute(run_id=run.pk)
    for _ in range(10_000):
        batch = SyncBatch.objects.filter(run=run, status=BatchStatus.QUEUED).order_by("pk").first()
        if batch is None:
            break
        SyncBatch.objects.filter(pk=batch.pk).update(not_before=None)  # skip back-off waits
        batch_execute(batch_id=batch.pk)
    run.refresh_from_db()
    return run


def start_and_drive(sync, **kwargs):
    from integrations.services import sync_run_start

    return drive(sync_run_start(sync=sync, trigger="manual", **kwargs))
