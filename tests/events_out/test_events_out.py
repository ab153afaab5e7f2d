"""Events out to the analytics pipeline: every record delivered and every piece of campaign
feedback, through the outbox, to a real HTTP sink (tests/fakes/sink.py), at least once, none
lost while the sink is down, ids only unless configured otherwise."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.events_out.deliver import outbox_deliver, outbox_maintain
from integrations.events_out.models import OutboxEvent, OutboxState
from integrations.webhooks.models import WebhookEvent
from tests.factories import CompanyFactory
from tests.fakes.mailchimp import DEFAULT_LIST
from tests.fakes.sink import FakeSink
from tests.integrations.conftest import make_sync, start_and_drive
from tests.webhooks.conftest import consented, drain, mailchimp_url, post_mailchimp

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(settings):
    with FakeSink() as server:
        settings.MKT_EVENTS_SINK_URL = server.url
        settings.MKT_EVENTS_SINK_SECRET = server.secret
        yield server
    assert server.violations == []


def test_every_record_delivered_is_sent_out_once_with_ids_only(sink, hubspot_connection):
    companies = CompanyFactory.create_batch(3)
    sync = make_sync(hubspot_connection)

    run = start_and_drive(sync)
    counts = outbox_deliver()

    assert counts["delivered"] == 3
    events = sorted(sink.events.values(), key=lambda e: int(e["subject"]))
    assert [e["type"] for e in events] == ["com.mktintegration.record.delivered"] * 3
    assert [e["subject"] for e in events] == [str(c.pk) for c in companies]
    data = events[0]["data"]
    assert data == {
        "sync_id": sync.pk,
        "run_id": run.pk,
        "connection_id": hubspot_connection.pk,
        "vendor": "hubspot",
        "destination_object": "companies",
        "dataset": "clients",
        "record_key": str(companies[0].pk),
        "destination_id": data["destination_id"],
        "outcome": "created",
    }
    assert data["destination_id"]  # HubSpot's id
    assert events[0]["source"] == f"/mktintegration/syncs/{sync.pk}"
    assert set(OutboxEvent.objects.values_list("state", flat=True)) == {OutboxState.DELIVERED}


def test_an_unchanged_record_sends_no_event_and_a_changed_one_sends_a_new_one(
    sink, hubspot_connection
):
    [company] = CompanyFactory.create_batch(1)
    sync = make_sync(hubspot_connection)
    start_and_drive(sync)
    start_and_drive(sync, full=True)  # nothing changed: nothing delivered
    company.name, company.updated_at = "Renamed", timezone.now()
    company.save()
    start_and_drive(sync)

    outbox_deliver()

    outcomes = [e["data"]["outcome"] for e in sink.events.values()]
    assert sorted(outcomes) == ["created", "updated"]


def test_people_go_out_without_their_address_unless_configured(
    sink, mailchimp_connection, settings
):
    [ann] = consented()
    sync = make_sync(
        mailchimp_connection,
        dataset="contacts",
        obj="members",
        mappings=[("first_name", "FNAME")],
        match=("email", "email_address"),
        destination_config={"list_id": DEFAULT_LIST},
        consent_purpose="email_marketing",
    )
    start_and_drive(sync)
    outbox_deliver()
    [plain] = sink.events.values()
    assert ann.email not in str(plain) and plain["subject"] == str(ann.pk)

    settings.MKT_EVENTS_PERSONAL_DATA = True
    ann.first_name, ann.updated_at = "Annie", timezone.now()
    ann.save()
    start_and_drive(sync)
    outbox_deliver()

    personal = [e for e in sink.events.values() if e["id"] != plain["id"]]
    assert personal[0]["data"]["match_value"] == ann.email.lower()


def test_the_sink_down_for_a_while_every_event_is_delivered_once_it_is_back_none_lost(
    sink, hubspot_connection, settings
):
    settings.MKT_EVENTS_RETRY_BASE_SECONDS = 1
    settings.MKT_EVENTS_BATCH = 100
    CompanyFactory.create_batch(250)
    sink.down()

    start_and_drive(make_sync(hubspot_connection))
    expected = set(OutboxEvent.objects.values_list("event_id", flat=True))
    refused = [outbox_deliver()["failed"]]
    for wait in (1.1, 2.1):  # the back-off doubles: 1 s, then 2 s
        assert outbox_deliver()["delivered"] == 0  # not due yet: nothing sent early
        time.sleep(wait)
        refused.append(outbox_deliver()["failed"])
    waiting = OutboxEvent.objects.filter(state=OutboxState.PENDING)
    assert refused == [100, 100, 100]  # one batch tried each time, the sink refused it
    assert waiting.count() == 250 and "HTTP 503" in waiting.filter(attempts=3).first().last_error
    sink.up()
    time.sleep(4.1)

    counts = outbox_deliver()

    assert counts["delivered"] == 250
    assert set(sink.events) == expected and len(expected) == 250
    assert all(n == 1 for n in sink.copies.values())
    assert not OutboxEvent.objects.exclude(state=OutboxState.DELIVERED).exists()


def test_a_batch_whose_worker_was_lost_is_sent_again_under_the_same_ids(
    sink, hubspot_connection, settings
):
    settings.MKT_RUN_STALE_SECONDS = 1
    CompanyFactory.create_batch(3)
    start_and_drive(make_sync(hubspot_connection))
    # A worker claimed the batch, sent it, and died before marking it delivered.
    OutboxEvent.objects.update(
        state=OutboxState.SENDING, claimed_at=timezone.now() - timedelta(seconds=5)
    )
    ids = set(OutboxEvent.objects.values_list("event_id", flat=True))

    assert outbox_deliver()["delivered"] == 0  # held by the lost worker
    assert outbox_maintain()["reaped"] == 3
    outbox_deliver()

    assert set(sink.events) == ids


def test_nothing_is_kept_without_a_sink(hubspot_connection, settings):
    settings.MKT_EVENTS_SINK_URL = ""
    CompanyFactory.create_batch(2)

    start_and_drive(make_sync(hubspot_connection))

    assert not OutboxEvent.objects.exists()


def test_a_campaigns_sends_opens_and_clicks_go_out_and_opens_and_clicks_become_activity(
    sink, client, loop
):
    """Mailchimp tells us a campaign went out (webhook); its report is then read (the poll)."""
    from exports.backbone.models import ActivityEvent
    from integrations.webhooks.models import FeedbackPoll
    from integrations.webhooks.polls import poll_run

    ann, bob = consented(2)
    loop.sync_all()
    outbox_deliver()
    delivered = set(sink.events)
    loop.mailchimp.add_campaign("camp1", DEFAULT_LIST, [ann.email, bob.email])
    loop.mailchimp.add_activity("camp1", ann.email, "open", "2026-11-30T10:00:00+00:00")
    loop.mailchimp.add_activity(
        "camp1", ann.email, "click", "2026-11-30T10:01:00+00:00", url="https://example.com/p"
    )

    post_mailchimp(
        client,
        mailchimp_url(loop.members_sync.connection),
        "campaign",
        {"id": "camp1", "subject": "November news", "status": "sent", "list_id": DEFAULT_LIST},
    )
    drain()
    poll = FeedbackPoll.objects.get()
    FeedbackPoll.objects.filter(pk=poll.pk).update(next_poll_at=timezone.now())
    poll_run(poll_id=poll.pk)
    drain()
    outbox_deliver()

    feedback = [e for i, e in sink.events.items() if i not in delivered]
    kinds = sorted((e["type"].removeprefix("com.mktintegration."), e["subject"]) for e in feedback)
    assert kinds == sorted(
        [
            ("campaign.sent", ""),
            ("email.sent", str(ann.pk)),
            ("email.sent", str(bob.pk)),
            ("email.opened", str(ann.pk)),
            ("email.clicked", str(ann.pk)),
        ]
    )
    assert all(ann.email not in str(e) for e in feedback)
    assert sorted(ActivityEvent.objects.values_list("contact_id", "type")) == [
        (ann.pk, "email_click"),
        (ann.pk, "email_open"),
    ]
    assert WebhookEvent.objects.filter(via="poll").count() == 4
    assert loop.mailchimp.violations == []
