"""Constant Contact sends no contact webhooks: the contacts unsubscribed there are read by a
standing poll of every connection and processed like webhook events (consent withdrawn,
opt-outs at every other destination)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exports.backbone.models import ConsentRecord
from integrations.webhooks.models import FeedbackPoll, Via, WebhookEvent
from integrations.webhooks.polls import polls_standing_ensure
from tests.integrations.contract.profiles.constantcontact import ConstantContactProfile
from tests.webhooks.conftest import consented, drain, poll_now

pytestmark = pytest.mark.django_db


def test_a_contact_who_unsubscribes_there_is_withdrawn_here_and_elsewhere(loop, constantcontact):
    ann, bob = consented(2)
    loop.sync_all()
    connection = ConstantContactProfile().connection(constantcontact)
    constantcontact.add_contact(bob.email)  # on the account, and subscribed
    assert polls_standing_ensure() == 1
    poll = FeedbackPoll.objects.get(connection=connection)
    assert poll.key == "opted-out"
    assert poll_now(poll)["stored"] == 0  # nobody unsubscribed since the poll began

    FeedbackPoll.objects.filter(pk=poll.pk).update(
        cursor={"since": (timezone.now() - timedelta(seconds=5)).isoformat()}
    )
    constantcontact.add_contact(ann.email, permission="unsubscribed")
    read = poll_now(poll)
    again = poll_now(poll)  # the overlap reads it twice: stored once
    drain()

    assert (read["stored"], again["stored"]) == (1, 0)
    event = WebhookEvent.objects.get()
    assert (event.via, event.kind, event.contact_id) == (Via.POLL, "unsubscribe", ann.pk)
    assert ConsentRecord.objects.filter(contact=ann, status="withdrawn").exists()
    assert not ConsentRecord.objects.filter(contact=bob, status="withdrawn").exists()
    assert loop.member_status(ann) == "unsubscribed"
    assert loop.member_status(bob) == "subscribed"
    assert constantcontact.violations == []
