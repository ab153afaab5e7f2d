"""Fixtures for sync tests: real vendor emulators on loopback, connections and syncs."""

import time

import pytest
from django.db.models import F
from django.utils import timezone

from integrations.models import Connection, FieldMapping, Sync, SyncBatch
from integrations.models.runs import BatchStatus


@pytest.fixture(autouse=True)
def _quick_backoff(settings):
    """Back-off starts at 50 ms instead of 5 s (it still doubles, and is still waited out), and
    a batch in a vendor job looks at it every 0.2 s instead of 5 s (the job takes its time)."""
    settings.MKT_SYNC_RETRY_BASE_SECONDS = 0.05
    settings.MKT_SYNC_JOB_POLL_SECONDS = 0.2


def make_connection(vendor, server, **kwargs):
    """A saved connection to ``server`` (an emulator from tests/fakes): the connector's first
    auth kind, with the emulator's credential as that kind's first secret (``auth_kind=`` and
    ``credentials=`` say otherwise), at the emulator's API root."""
    from integrations.connectors import connector_class

    cls = connector_class(vendor)
    auth_kind = kwargs.pop("auth_kind", cls.auth_kinds[0])
    credentials = kwargs.pop("credentials", None) or {
        cls.secret_fields[auth_kind][0]: server.credential
    }
    connection = Connection(
        name=kwargs.pop("name", f"{vendor} test"),
        vendor=vendor,
        auth_kind=auth_kind,
        base_url=kwargs.pop("base_url", getattr(server, "base_url", server.url)),
        rate_limit_requests=kwargs.pop("rate_limit_requests", 10_000),
        rate_limit_seconds=kwargs.pop("rate_limit_seconds", 1),
        **kwargs,
    )
    connection.set_credentials(credentials)
    connection.save()
    return connection


def make_marketo_connection(server, **kwargs):
    """A connection to the Marketo emulator by client credentials, saved through the one
    credentials write path (its grant is then connected)."""
    from integrations.credentials import connection_credentials_save
    from tests.fakes.marketo import CLIENT_ID, MUNCHKIN_ID

    connection = Connection(
        name=kwargs.pop("name", "marketo test"),
        vendor="marketo",
        auth_kind="client_credentials",
        base_url=server.url,
        config=kwargs.pop("config", {"munchkin_id": MUNCHKIN_ID}),
        rate_limit_requests=kwargs.pop("rate_limit_requests", 10_000),
        rate_limit_seconds=kwargs.pop("rate_limit_seconds", 1),
        **kwargs,
    )
    connection.full_clean()
    return connection_credentials_save(
        connection=connection, values={"client_id": CLIENT_ID, "client_secret": server.credential}
    )


@pytest.fixture
def marketo_connection(db, marketo):
    return make_marketo_connection(marketo)


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


def drive(run, *, timeout: float = 60.0, clock=None):
    """Do synchronously what the worker does: plan, then deliver every queued batch when it is
    due, and poll every batch waiting for a vendor job when it is due. A batch backing off (or
    waiting out a 429) is waited for, as the worker's countdown waits, and is not delivered
    sooner: the engine's claim refuses an early batch. With a fake ``clock`` (the fixture) the
    wait moves the clock instead of taking real time."""
    from integrations.engine.runs import batch_execute, batch_poll, run_execute

    run_execute(run_id=run.pk)
    deadline = time.monotonic() + timeout
    while True:
        batch = (
            SyncBatch.objects.filter(run=run, status__in=(BatchStatus.QUEUED, BatchStatus.WAITING))
            .order_by(F("not_before").asc(nulls_first=True), "pk")
            .first()
        )
        if batch is None:
            break
        assert time.monotonic() < deadline, f"the run was not done in {timeout:.0f} s"
        if batch.not_before is not None:
            wait = (batch.not_before - timezone.now()).total_seconds()
            if clock is not None:
                clock.advance(max(wait, 0))
            else:
                assert time.monotonic() + wait < deadline, f"batch {batch.pk} due in {wait:.0f} s"
                time.sleep(max(wait, 0))
        if batch.status == BatchStatus.WAITING:
            batch_poll(batch_id=batch.pk)  # a vendor job: is it done?
        else:
            batch_execute(batch_id=batch.pk)
    run.refresh_from_db()
    return run


def start_and_drive(sync, **kwargs):
    from integrations.services import sync_run_start

    return drive(sync_run_start(sync=sync, trigger="manual", **kwargs))
