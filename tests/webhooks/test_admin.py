"""The feedback loop in the admin: the receiver URL on each connection's page (a Mailchimp
secret shown once), the events received per connection with their state, outcome and errors,
and failed opt-outs queued again."""

from __future__ import annotations

import re

import pytest

from audit.models import AccessLog
from integrations.webhooks.models import SuppressionStatus, WebhookEndpoint, WebhookEvent
from mktintegration import roles
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.mailchimp import DEFAULT_LIST
from tests.page_text import page_text
from tests.webhooks.conftest import consented, drain, post_hubspot, post_mailchimp

pytestmark = pytest.mark.django_db


@pytest.fixture
def ida(client_for):
    return client_for(roles.INTEGRATION_ADMIN)


def _connection_page(client, connection) -> str:
    response = client.get(f"/admin/integrations/connection/{connection.pk}/change/")
    assert response.status_code == 200
    return page_text(response.content.decode())


def test_a_hubspot_connection_page_shows_the_url_to_paste_and_whether_the_secret_is_set(
    ida, loop, settings
):
    connection = loop.hubspot_sync.connection
    settings.MKT_BASE_URL = "https://mkt.example.com"

    unset = _connection_page(ida, connection)
    settings.MKT_HUBSPOT_WEBHOOK_SECRET = "app-secret"
    configured = _connection_page(ida, connection)

    url = f"https://mkt.example.com/marketing/integrations/webhooks/hubspot/{connection.pk}"
    assert url in unset and "NOT SET, requests are refused" in unset
    assert "Signature secret (MKT_HUBSPOT_WEBHOOK_SECRET): set." in configured
    assert "app-secret" not in configured


def test_a_mailchimp_receiver_url_is_generated_shown_once_and_works(client, ida, loop):
    connection = loop.members_sync.connection
    assert "No secret yet: generate the receiver URL" in _connection_page(ida, connection)

    response = ida.post(
        "/admin/webhooks/webhookendpoint/add/", {"connection": connection.pk}, follow=True
    )

    text = page_text(response.content.decode())
    [url] = re.findall(r"Receiver URL of Mailchimp: (\S+) —", text)
    assert "shown only this once" in text
    secret = url.split("secret=")[1]
    path = url.removeprefix("http://127.0.0.1:8000")
    assert client.get(path).status_code == 200  # Mailchimp's validation GET
    later = _connection_page(ida, connection)
    assert secret not in later and "?secret=…" in later and "rotate it" in later
    assert WebhookEndpoint.objects.get().secret_hash != secret


def test_rotating_the_secret_shows_a_new_url_once_and_the_old_one_stops(client, ida, loop):
    connection = loop.members_sync.connection
    first = ida.post(
        "/admin/webhooks/webhookendpoint/add/", {"connection": connection.pk}, follow=True
    )
    [old] = re.findall(r"Receiver URL of Mailchimp: (\S+) —", page_text(first.content.decode()))
    endpoint = WebhookEndpoint.objects.get()

    rotated = ida.post(
        "/admin/webhooks/webhookendpoint/",
        {"action": "rotate", "_selected_action": [endpoint.pk]},
        follow=True,
    )

    [new] = re.findall(r"Receiver URL of Mailchimp: (\S+) —", page_text(rotated.content.decode()))
    assert new != old
    assert client.get(old.removeprefix("http://127.0.0.1:8000")).status_code == 401
    assert client.get(new.removeprefix("http://127.0.0.1:8000")).status_code == 200


def test_events_received_are_listed_per_connection_with_state_outcome_and_error(
    client, ida, loop, app_secret
):
    [ann] = consented()
    loop.sync_all()
    optout = FakeHubSpot.webhook_event(loop.hubspot_id(ann), "hs_email_optout", "true", event_id=1)
    other = FakeHubSpot.webhook_event(loop.hubspot_id(ann), "firstname", "Ann", event_id=2)
    post_hubspot(client, loop.hubspot_sync.connection, [optout, other])
    loop.mailchimp.fail_next(5, status=400, path_contains="/lists/")
    drain()

    page = ida.get(
        f"/admin/webhooks/webhookevent/?connection__id__exact={loop.hubspot_sync.connection.pk}"
    )

    text = page_text(page.content.decode())
    assert "contact.propertyChange:hs_email_optout" in text and "Processed" in text
    assert "opt-out queued at 2 other destination(s)" in text
    assert "kept; nothing to do for this kind of event" in text and ann.email not in text
    opt_outs = page_text(
        ida.get("/admin/webhooks/suppression/?status__exact=failed").content.decode()
    )
    assert "Contacts to the newsletter audience" in opt_outs and "HTTP 400" in opt_outs


def test_an_events_page_shows_the_payload_and_is_access_logged(client, ida, loop):
    from tests.webhooks.conftest import mailchimp_url

    post_mailchimp(
        client,
        mailchimp_url(loop.members_sync.connection),
        "unsubscribe",
        {"email": "ann@example.com", "list_id": DEFAULT_LIST},
    )
    event = WebhookEvent.objects.get()

    page = ida.get(f"/admin/webhooks/webhookevent/{event.pk}/change/")

    assert "ann@example.com" in page.content.decode()
    row = AccessLog.objects.get(dataset="webhooks:event")
    assert f"ids: {event.pk}" in row.detail


def test_failed_opt_outs_are_queued_again_by_the_retry_action(client, ida, loop, app_secret):
    [ann] = consented()
    loop.sync_all()
    optout = FakeHubSpot.webhook_event(loop.hubspot_id(ann), "hs_email_optout", "true", event_id=1)
    post_hubspot(client, loop.hubspot_sync.connection, [optout])
    loop.mailchimp.fail_next(2, status=400, path_contains="/lists/")  # refused for good
    drain()
    from integrations.webhooks.models import Suppression

    failed = list(Suppression.objects.filter(status=SuppressionStatus.FAILED))
    assert len(failed) == 2

    ida.post(
        "/admin/webhooks/suppression/",
        {"action": "retry", "_selected_action": [s.pk for s in failed]},
    )
    drain()

    assert set(Suppression.objects.values_list("status", flat=True)) == {SuppressionStatus.DONE}
    assert loop.member_status(ann) == "unsubscribed"
