"""Fixtures for the feedback loop: a contact synced to HubSpot and to two Mailchimp audiences,
the vendors' signed / secret-bearing requests to our receivers, and a way to do what the worker
does (process the events, then the opt-outs) synchronously."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.utils import timezone

from integrations.models import Sync
from integrations.webhooks.endpoints import endpoint_secret_rotate, receiver_path, receiver_url
from integrations.webhooks.models import (
    EventState,
    FeedbackPoll,
    Suppression,
    SuppressionStatus,
    WebhookEvent,
)
from integrations.webhooks.polls import poll_run
from tests.factories import ConsentRecordFactory, ContactFactory
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.mailchimp import DEFAULT_LIST, FakeMailchimp
from tests.integrations.conftest import (  # noqa: F401 - _quick_backoff is a fixture
    _quick_backoff,
    make_connection,
    make_sync,
    start_and_drive,
)
from tests.operations.conftest import integration_admin  # noqa: F401 - a fixture

APP_SECRET = "hubspot-app-client-secret-for-tests"
SECOND_LIST = "list0002"


@pytest.fixture
def app_secret(settings):
    settings.MKT_HUBSPOT_WEBHOOK_SECRET = APP_SECRET
    return APP_SECRET


@dataclass
class Loop:
    """Two vendors, three destinations (HubSpot contacts, two Mailchimp audiences)."""

    hubspot: FakeHubSpot
    mailchimp: FakeMailchimp
    hubspot_sync: Sync
    members_sync: Sync
    second_sync: Sync

    @property
    def syncs(self) -> list[Sync]:
        return [self.hubspot_sync, self.members_sync, self.second_sync]

    def sync_all(self):
        return [start_and_drive(sync) for sync in self.syncs]

    def hubspot_id(self, contact) -> str:
        return self.hubspot.find("contacts", "email", contact.email)["id"]

    def member_status(self, contact, list_id: str = DEFAULT_LIST) -> str:
        return self.mailchimp.member(list_id, contact.email)["status"]


def consented(n: int = 1, **attrs) -> list:
    contacts = ContactFactory.create_batch(n, **attrs)
    for contact in contacts:
        ConsentRecordFactory(contact=contact, status="granted")
    return contacts


@pytest.fixture
def loop(db, hubspot, mailchimp) -> Loop:
    mailchimp.add_list(SECOND_LIST)
    hubspot_connection = make_connection("hubspot", hubspot, name="HubSpot")
    mailchimp_connection = make_connection("mailchimp", mailchimp, name="Mailchimp")
    people = dict(dataset="contacts", consent_purpose="email_marketing")
    return Loop(
        hubspot,
        mailchimp,
        make_sync(
            hubspot_connection,
            name="Contacts to HubSpot",
            obj="contacts",
            match=("email", "email"),
            mappings=[("first_name", "firstname"), ("last_name", "lastname")],
            **people,
        ),
        make_sync(
            mailchimp_connection,
            name="Contacts to the newsletter audience",
            obj="members",
            match=("email", "email_address"),
            mappings=[("first_name", "FNAME")],
            destination_config={"list_id": DEFAULT_LIST},
            **people,
        ),
        make_sync(
            mailchimp_connection,
            name="Contacts to the events audience",
            obj="members",
            match=("email", "email_address"),
            mappings=[("first_name", "FNAME")],
            destination_config={"list_id": SECOND_LIST},
            **people,
        ),
    )


def post_hubspot(
    client, connection, events, *, secret=APP_SECRET, timestamp_ms=None, url=None, raw_body=None
):
    """HubSpot's request to the connection's receiver, signed as HubSpot signs it."""
    from django.conf import settings

    url = url or settings.MKT_BASE_URL + receiver_path(connection)
    body, headers = FakeHubSpot.signed_webhook(
        url, events, secret=secret, timestamp_ms=timestamp_ms, raw_body=raw_body
    )
    return client.post(
        receiver_path(connection),
        body,
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "Content-Type"},
    )


def mailchimp_url(connection) -> str:
    """A new secret for the connection's receiver; the path and query to call."""
    url = endpoint_secret_rotate(connection=connection)
    return url.removeprefix(receiver_url(connection).removesuffix(receiver_path(connection)))


def post_mailchimp(client, path: str, kind: str, data: dict, **kwargs):
    return client.post(
        path,
        FakeMailchimp.webhook_form(kind, data, **kwargs),
        content_type="application/x-www-form-urlencoded",
    )


def drain() -> None:
    """What the worker does, synchronously: process every stored event, then send every opt-out
    (the tasks' own functions, called directly)."""
    from integrations.webhooks.process import events_process
    from integrations.webhooks.suppress import suppressions_run

    ids = list(WebhookEvent.objects.filter(state=EventState.RECEIVED).values_list("pk", flat=True))
    if ids:
        events_process(event_ids=ids)
    for connection_id in set(
        Suppression.objects.filter(status=SuppressionStatus.PENDING).values_list(
            "connection_id", flat=True
        )
    ):
        suppressions_run(connection_id=connection_id)


def poll_now(poll) -> dict:
    """Run a feedback poll now (as beat would once it is due): what ``poll_run`` reports."""
    FeedbackPoll.objects.filter(pk=poll.pk).update(next_poll_at=timezone.now())
    return poll_run(poll_id=poll.pk)
