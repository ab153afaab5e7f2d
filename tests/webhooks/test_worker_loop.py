"""The loop end to end with a real Celery worker (file broker, or Redis in CI): a signed HubSpot
unsubscribe arrives over HTTP and the contact is opted out everywhere else it was synced by the
tasks the receiver and the processing send, without waiting for any beat task."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from integrations.models import RunStatus, SyncRun
from integrations.services import sync_run_start
from integrations.webhooks.models import EventState, Suppression, SuppressionStatus, WebhookEvent
from tests.fakes.hubspot import FakeHubSpot
from tests.webhooks.conftest import SECOND_LIST, consented, post_hubspot
from tests.worker import wait_for

# One worker cycle: the processing task, then the opt-out task of each destination connection.
ONE_CYCLE_SECONDS = 15


def _run_on_worker(sync):
    run = sync_run_start(sync=sync, trigger="manual")
    wait_for(
        lambda: SyncRun.objects.get(pk=run.pk).status not in ("queued", "planning", "delivering"),
        timeout=120,
        what=f"{sync.name} to finish",
    )
    run.refresh_from_db()
    return run


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_signed_hubspot_unsubscribe_suppresses_the_contact_everywhere_it_was_synced_within_one_worker_cycle(  # noqa: E501
    celery_worker, client, loop, app_secret
):
    ann, bob = consented(2)
    for sync in loop.syncs:
        assert _run_on_worker(sync).status == RunStatus.SUCCEEDED
    assert loop.member_status(ann) == loop.member_status(ann, SECOND_LIST) == "subscribed"
    event = FakeHubSpot.webhook_event(loop.hubspot_id(ann), "hs_email_optout", "true", event_id=1)

    started = time.monotonic()
    response = post_hubspot(client, loop.hubspot_sync.connection, [event])
    wait_for(
        lambda: Suppression.objects.filter(status=SuppressionStatus.DONE).count() == 2,
        timeout=ONE_CYCLE_SECONDS,
        what="both Mailchimp audiences to confirm the opt-out",
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert loop.member_status(ann) == loop.member_status(ann, SECOND_LIST) == "unsubscribed"
    assert loop.member_status(bob) == "subscribed"
    assert WebhookEvent.objects.get().state == EventState.PROCESSED
    assert elapsed < ONE_CYCLE_SECONDS
    # A later run with a change to send still leaves them out.
    ann.first_name, ann.updated_at = "Annie", timezone.now()
    ann.save()
    again = _run_on_worker(loop.members_sync)
    assert (again.suppressed, again.updated) == (1, 0), again.counts()
    assert loop.member_status(ann) == "unsubscribed"
    assert loop.mailchimp.violations == [] and loop.hubspot.violations == []
