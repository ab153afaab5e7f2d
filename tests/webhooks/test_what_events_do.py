"""What the events do: consent withdrawn with evidence, opt-outs at every other destination
holding the person, never subscribed again; activity; the connection's state. The receivers
are called over HTTP; the worker's part is done by ``drain()`` (the tasks' own functions)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from exports.backbone.models import ActivityEvent, ConsentRecord
from integrations.models import LedgerEntry
from integrations.webhooks.models import (
    EventState,
    Suppression,
    SuppressionStatus,
    Via,
    WebhookEvent,
)
from integrations.webhooks.store import events_store
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.mailchimp import DEFAULT_LIST
from tests.integrations.conftest import start_and_drive
from tests.webhooks.conftest import (
    SECOND_LIST,
    consented,
    drain,
    mailchimp_url,
    post_hubspot,
    post_mailchimp,
)

pytestmark = pytest.mark.django_db


def _latest_consent(contact, purpose="email_marketing") -> ConsentRecord:
    return (
        ConsentRecord.objects.filter(contact=contact, purpose=purpose)
        .order_by("-recorded_at", "-id")
        .first()
    )


def test_hubspot_unsubscribe_withdraws_consent_and_opts_out_at_every_other_destination(
    client, loop, app_secret
):
    ann, bob = consented(2)
    loop.sync_all()
    event = FakeHubSpot.webhook_event(
        loop.hubspot_id(ann), "hs_email_optout", "true", event_id=9001
    )

    response = post_hubspot(client, loop.hubspot_sync.connection, [event])
    drain()

    assert response.status_code == 200
    assert loop.member_status(ann) == loop.member_status(ann, SECOND_LIST) == "unsubscribed"
    assert loop.member_status(bob) == "subscribed"
    # HubSpot itself already has the opt-out: nothing is sent back to it.
    assert not loop.hubspot.calls("/communication-preferences/")
    for purpose in ("email_marketing", "newsletter", "product_updates"):
        assert _latest_consent(ann, purpose).status == "withdrawn"  # all e-mail at HubSpot
    assert _latest_consent(bob).status == "granted"
    stored = WebhookEvent.objects.get()
    assert (stored.state, stored.contact_id) == (EventState.PROCESSED, ann.pk)
    assert "opt-out queued at 2 other destination(s)" in stored.outcome
    done = Suppression.objects.filter(event=stored)
    assert set(done.values_list("sync__name", "status")) == {
        ("Contacts to the newsletter audience", SuppressionStatus.DONE),
        ("Contacts to the events audience", SuppressionStatus.DONE),
    }
    assert all(done.values_list("confirmed_at", flat=True))
    assert loop.mailchimp.violations == [] and loop.hubspot.violations == []


def test_a_later_sync_never_subscribes_them_again(client, loop, app_secret):
    [ann] = consented()
    loop.sync_all()
    event = FakeHubSpot.webhook_event(loop.hubspot_id(ann), "hs_email_optout", "true", event_id=1)
    post_hubspot(client, loop.hubspot_sync.connection, [event])
    drain()
    ann.first_name, ann.updated_at = "Annie", timezone.now()  # a real change to send
    ann.save()

    runs = loop.sync_all()

    assert [r.suppressed for r in runs] == [1, 1, 1], [r.counts() for r in runs]
    assert loop.member_status(ann) == "unsubscribed"
    assert loop.mailchimp.member(DEFAULT_LIST, ann.email)["merge_fields"]["FNAME"] != "Annie"
    assert loop.mailchimp.violations == []


def test_mailchimp_cleaned_event_reaches_hubspot_and_the_consent_record(client, loop):
    [ann] = consented()
    loop.sync_all()
    path = mailchimp_url(loop.members_sync.connection)

    response = post_mailchimp(
        client, path, "cleaned", {"email": ann.email, "list_id": DEFAULT_LIST, "reason": "hard"}
    )
    drain()

    assert response.status_code == 200
    assert loop.hubspot.unsubscribed_from_all(ann.email)
    assert loop.member_status(ann, SECOND_LIST) == "unsubscribed"  # the other audience too
    assert loop.member_status(ann) == "subscribed"  # Mailchimp cleans it itself in real life
    consent = _latest_consent(ann)
    assert (consent.status, consent.channel, consent.source) == (
        "withdrawn",
        "email",
        "mailchimp hard_bounce",
    )
    event = WebhookEvent.objects.get()
    assert (event.kind, event.contact_id, event.all_email) == ("hard_bounce", ann.pk, True)
    hubspot_optout = Suppression.objects.get(sync=loop.hubspot_sync)
    assert (hubspot_optout.status, hubspot_optout.event_id) == (SuppressionStatus.DONE, event.pk)
    [call] = loop.hubspot.calls("/communication-preferences/v4/statuses/batch/unsubscribe-all")
    assert call.query == {"channel": "EMAIL", "verbose": "true"}
    assert call.body == {"inputs": [ann.email.lower()]}
    assert loop.hubspot.violations == []


def test_mailchimp_abuse_report_is_a_spam_complaint(client, loop):
    [ann] = consented()
    loop.sync_all()

    post_mailchimp(
        client,
        mailchimp_url(loop.members_sync.connection),
        "cleaned",
        {"email": ann.email, "list_id": DEFAULT_LIST, "reason": "abuse"},
    )
    drain()

    assert WebhookEvent.objects.get().kind == "spam_complaint"
    assert _latest_consent(ann, "newsletter").status == "withdrawn"
    assert loop.hubspot.unsubscribed_from_all(ann.email)


def test_an_audience_unsubscribe_withdraws_that_audiences_purpose_only(client, loop):
    loop.second_sync.consent_purpose = "newsletter"
    loop.second_sync.save()
    [ann] = consented()
    from tests.factories import ConsentRecordFactory

    ConsentRecordFactory(contact=ann, purpose="newsletter", status="granted")
    loop.sync_all()

    post_mailchimp(
        client,
        mailchimp_url(loop.second_sync.connection),
        "unsubscribe",
        {"email": ann.email, "list_id": SECOND_LIST, "action": "unsub"},
    )
    drain()

    assert _latest_consent(ann, "newsletter").status == "withdrawn"
    assert _latest_consent(ann, "email_marketing").status == "granted"
    # The syncs of other purposes keep the person; nothing to opt out there.
    assert not Suppression.objects.exists()
    assert loop.member_status(ann) == "subscribed"
    assert not loop.hubspot.unsubscribed_from_all(ann.email)


def test_the_vendors_echo_of_our_own_opt_out_sends_nothing_twice(client, loop, app_secret):
    [ann] = consented()
    loop.sync_all()
    post_mailchimp(
        client,
        mailchimp_url(loop.members_sync.connection),
        "unsubscribe",
        {"email": ann.email, "list_id": DEFAULT_LIST, "action": "unsub"},
    )
    drain()
    assert Suppression.objects.count() == 2  # HubSpot and the second audience

    # HubSpot reports the opt-out we just made, as a property change.
    echo = FakeHubSpot.webhook_event(loop.hubspot_id(ann), "hs_email_optout", "true", event_id=5)
    post_hubspot(client, loop.hubspot_sync.connection, [echo])
    drain()

    assert Suppression.objects.filter(sync=loop.second_sync).count() == 1
    assert len(loop.hubspot.calls("/unsubscribe-all")) == 1
    # Only the audience the person left on their own gets the (harmless) opt-out: it was the
    # source, so nothing had been sent there. The echo stops here.
    assert Suppression.objects.filter(sync=loop.members_sync).count() == 1
    assert loop.member_status(ann) == "unsubscribed"


def test_an_unsubscribe_of_someone_we_do_not_know_is_kept_and_does_nothing(client, loop):
    post_mailchimp(
        client,
        mailchimp_url(loop.members_sync.connection),
        "unsubscribe",
        {"email": "stranger@example.net", "list_id": DEFAULT_LIST},
    )
    drain()

    event = WebhookEvent.objects.get()
    assert event.state == EventState.IGNORED and "no contact of ours" in event.outcome
    assert not ConsentRecord.objects.filter(status="withdrawn").exists()


def test_other_vendor_events_are_kept_and_ignored(client, loop):
    post_mailchimp(
        client,
        mailchimp_url(loop.members_sync.connection),
        "profile",
        {"email": "x@example.com", "list_id": DEFAULT_LIST},
    )
    drain()

    event = WebhookEvent.objects.get()
    assert (event.kind, event.state) == ("other", EventState.IGNORED)


def test_an_opt_out_the_destination_cannot_take_now_is_retried_then_confirmed(
    client, loop, app_secret
):
    [ann] = consented()
    loop.sync_all()
    loop.mailchimp.fail_next(2, status=503, path_contains="/lists/")
    event = FakeHubSpot.webhook_event(loop.hubspot_id(ann), "hs_email_optout", "true", event_id=3)
    post_hubspot(client, loop.hubspot_sync.connection, [event])

    drain()
    waiting = Suppression.objects.filter(status=SuppressionStatus.PENDING)
    assert waiting.count() == 2 and "503" in waiting.first().error
    waiting.update(not_before=timezone.now() - timedelta(seconds=1))  # the back-off passed
    drain()

    assert set(Suppression.objects.values_list("status", flat=True)) == {SuppressionStatus.DONE}
    assert loop.member_status(ann) == loop.member_status(ann, SECOND_LIST) == "unsubscribed"


def test_a_person_hubspot_names_only_by_id_is_looked_up_and_retried_when_hubspot_fails(
    client, loop, app_secret
):
    [ann] = consented()
    loop.sync_all()
    loop.hubspot.fail_next(1, status=502, path_contains="/batch/read", writes_only=False)
    event = FakeHubSpot.webhook_event(loop.hubspot_id(ann), "hs_email_optout", "true", event_id=4)
    post_hubspot(client, loop.hubspot_sync.connection, [event])

    drain()
    failed = WebhookEvent.objects.get()
    assert failed.state == EventState.FAILED and "could not be looked up" in failed.error
    from integrations.webhooks.process import events_process

    events_process(event_ids=[failed.pk])
    drain()

    failed.refresh_from_db()
    assert (failed.state, failed.contact_id) == (EventState.PROCESSED, ann.pk)
    assert loop.member_status(ann) == "unsubscribed"


def test_processing_an_event_twice_changes_nothing_the_second_time(client, loop, app_secret):
    [ann] = consented()
    loop.sync_all()
    event = FakeHubSpot.webhook_event(loop.hubspot_id(ann), "hs_email_optout", "true", event_id=8)
    post_hubspot(client, loop.hubspot_sync.connection, [event])
    from integrations.webhooks.process import events_process

    ids = list(WebhookEvent.objects.values_list("pk", flat=True))
    events_process(event_ids=ids)
    events_process(event_ids=ids)  # a redelivered task

    assert ConsentRecord.objects.filter(contact=ann, status="withdrawn").count() == 3
    assert Suppression.objects.count() == 2


def test_a_vendor_error_notification_marks_the_connection_and_alerts(
    loop, integration_admin, django_capture_on_commit_callbacks
):
    """No vendor built today sends one (Constant Contact's account webhooks will): the event as
    a connector would hand it over."""
    from integrations.connectors.feedback import FeedbackEvent, FeedbackKind

    connection = loop.members_sync.connection
    events_store(
        connection=connection,
        events=[
            FeedbackEvent(
                kind=FeedbackKind.ACCOUNT_STATUS,
                occurred_at=timezone.now(),
                vendor_event="account.disabled",
                raw={"event_type": "account.disabled"},
                detail="the account was disabled",
            )
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        drain()

    connection.refresh_from_db()
    assert connection.status == "failing"
    assert "Mailchimp reports: the account was disabled" in connection.last_error
    [alert] = mail.outbox
    assert "the vendor reports a problem" in alert.subject


def test_polled_events_are_stored_once_and_processed_like_webhooks(loop):
    from integrations.connectors.feedback import FeedbackEvent, FeedbackKind

    [ann] = consented()
    event = FeedbackEvent(
        kind=FeedbackKind.CLICK,
        occurred_at=timezone.now(),
        vendor_event="report:click",
        raw={"campaign_id": "c1", "url": "https://example.com/x"},
        email=ann.email,
        campaign_id="c1",
    )
    connection = loop.members_sync.connection

    first = events_store(connection=connection, events=[event], via=Via.POLL)
    again = events_store(connection=connection, events=[event], via=Via.POLL)
    drain()

    assert len(first) == 1 and again == []
    [activity] = ActivityEvent.objects.filter(contact=ann)
    assert activity.type == "email_click"
    assert LedgerEntry.objects.count() == 0  # nothing was synced: activity needs no sync


def test_a_withdrawal_leaves_the_ledger_to_the_consent_gate(client, loop, app_secret):
    """The ledger keeps what the destination has; the next plan moves it to suppressed."""
    [ann] = consented()
    loop.sync_all()
    event = FakeHubSpot.webhook_event(loop.hubspot_id(ann), "hs_email_optout", "true", event_id=2)
    post_hubspot(client, loop.hubspot_sync.connection, [event])
    drain()

    run = start_and_drive(loop.members_sync, full=True)

    assert run.suppressed == 1
    entry = LedgerEntry.objects.get(sync=loop.members_sync)
    assert entry.status == "skipped" and entry.payload_hash  # still held, never re-sent


def test_the_beat_task_resends_events_a_lost_task_left_and_prunes_old_ones(loop, settings):
    from integrations.webhooks.tasks import maintain_task

    settings.MKT_WEBHOOK_RETENTION_DAYS = 30
    post = {"connection": loop.members_sync.connection}
    from integrations.connectors.feedback import FeedbackEvent, FeedbackKind

    def event(n):
        return FeedbackEvent(
            kind=FeedbackKind.OTHER, occurred_at=timezone.now(), vendor_event="x", raw={"n": n}
        )

    [stale, old, fresh] = [events_store(events=[event(n)], **post)[0] for n in range(3)]
    now = timezone.now()
    WebhookEvent.objects.filter(pk=stale).update(received_at=now - timedelta(minutes=5))
    WebhookEvent.objects.filter(pk=old).update(received_at=now - timedelta(days=31))

    counts = maintain_task()

    assert counts["pruned"] == 1 and counts["events"] == 1  # the stale one; fresh has time
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {stale, fresh}


def test_a_destination_whose_answer_was_lost_is_opted_out_too(client, loop, app_secret):
    """The first write to the second audience landed and its answer never came: the ledger
    does not know it holds the person, but it may; the opt-out goes there as well."""
    [ann] = consented()
    start_and_drive(loop.hubspot_sync)
    start_and_drive(loop.members_sync)
    loop.mailchimp.drop_next(5, apply_first=True, path_contains=f"/lists/{SECOND_LIST}")
    start_and_drive(loop.second_sync)
    entry = LedgerEntry.objects.get(sync=loop.second_sync)
    assert entry.payload_hash == "" and entry.sent_hash  # sent, never confirmed
    assert loop.member_status(ann, SECOND_LIST) == "subscribed"  # it did land
    event = FakeHubSpot.webhook_event(loop.hubspot_id(ann), "hs_email_optout", "true", event_id=6)

    post_hubspot(client, loop.hubspot_sync.connection, [event])
    drain()

    assert loop.member_status(ann, SECOND_LIST) == "unsubscribed"


def test_with_a_consent_service_the_withdrawal_is_recorded_there_and_waits_while_it_is_down(
    client, loop, app_secret, consent_service
):
    [ann] = consented()
    for purpose in ("email_marketing", "newsletter", "product_updates"):
        consent_service.set_consent(ann.pk, purpose, "granted")
    loop.sync_all()
    consent_service.set_down()
    event = FakeHubSpot.webhook_event(loop.hubspot_id(ann), "hs_email_optout", "true", event_id=77)
    post_hubspot(client, loop.hubspot_sync.connection, [event])

    drain()
    waiting = WebhookEvent.objects.get()
    assert waiting.state == EventState.FAILED
    assert "consent service could not record it" in waiting.error
    assert loop.member_status(ann) == "subscribed"  # nothing propagated on an unrecorded withdrawal
    consent_service.set_down(False)
    from integrations.webhooks.process import events_process

    events_process(event_ids=[waiting.pk])
    drain()

    waiting.refresh_from_db()
    assert waiting.state == EventState.PROCESSED
    assert consent_service.consent(ann.pk, "email_marketing")[0] == "withdrawn"
    [recorded, *_] = consent_service.events
    assert recorded["evidence"]["vendor"] == "hubspot"
    assert recorded["evidence"]["event_id"] == "77"
    assert loop.member_status(ann) == loop.member_status(ann, SECOND_LIST) == "unsubscribed"
