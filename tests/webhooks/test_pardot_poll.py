"""Account Engagement sends no webhooks: its opted-out prospects are read by a standing poll
of every connection, stored and processed like webhook events (consent withdrawn, opt-outs at
every other destination)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exports.backbone.models import ConsentRecord
from integrations.webhooks.models import FeedbackPoll, Via, WebhookEvent
from integrations.webhooks.polls import polls_due, polls_standing_ensure
from tests.integrations.contract.profiles.pardot import PardotProfile
from tests.webhooks.conftest import SECOND_LIST, consented, drain, poll_now

pytestmark = pytest.mark.django_db


def test_a_prospect_who_opts_out_is_withdrawn_here_and_at_every_mailchimp_audience(loop, pardot):
    ann, bob = consented(2)
    loop.sync_all()
    connection = PardotProfile().connection(pardot)
    for person in (ann, bob):
        pardot.add_prospect(person.email)
    assert polls_standing_ensure() == 1
    poll = FeedbackPoll.objects.get(connection=connection)
    assert poll.key == "opted-out" and poll.pk in polls_due()
    assert poll_now(poll)["stored"] == 0  # nobody opted out since the poll began

    pardot.opt_out(ann.email)
    poll.refresh_from_db()
    FeedbackPoll.objects.filter(pk=poll.pk).update(
        cursor={"since": (timezone.now() - timedelta(seconds=5)).isoformat()}
    )
    read = poll_now(poll)
    again = poll_now(poll)  # the overlap reads it twice: stored once
    drain()

    assert (read["stored"], again["stored"]) == (1, 0)
    event = WebhookEvent.objects.get()
    assert (event.via, event.kind, event.contact_id) == (Via.POLL, "unsubscribe", ann.pk)
    withdrawn = ConsentRecord.objects.filter(contact=ann, status="withdrawn")
    assert set(withdrawn.values_list("purpose", flat=True)) == {
        "email_marketing",
        "newsletter",
        "product_updates",
    }
    assert loop.member_status(ann) == loop.member_status(ann, SECOND_LIST) == "unsubscribed"
    assert loop.member_status(bob) == "subscribed"
    assert pardot.violations == []


def test_a_second_ensure_keeps_the_poll_and_its_cursor(pardot, db):
    connection = PardotProfile().connection(pardot)
    polls_standing_ensure()
    FeedbackPoll.objects.filter(connection=connection).update(cursor={"since": "2026-01-01"})

    assert polls_standing_ensure() == 0
    assert FeedbackPoll.objects.get(connection=connection).cursor == {"since": "2026-01-01"}
