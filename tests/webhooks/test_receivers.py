"""The receivers over HTTP (Django's test client): what is taken, what is refused, and that a
refusal stores nothing but a count and an access-log row."""

from __future__ import annotations

import time

import pytest

from audit.models import AccessLog
from integrations.webhooks.endpoints import receiver_path
from integrations.webhooks.models import WebhookEvent, WebhookRefusal
from tests.fakes.hubspot import FakeHubSpot
from tests.webhooks.conftest import mailchimp_url, post_hubspot, post_mailchimp

pytestmark = pytest.mark.django_db


def _optout(object_id=1001, event_id=7001):
    return FakeHubSpot.webhook_event(object_id, "hs_email_optout", "true", event_id=event_id)


def _refusals() -> dict[str, int]:
    return dict(WebhookRefusal.objects.values_list("reason", "count"))


def _webhook_log() -> list[AccessLog]:
    return list(AccessLog.objects.filter(dataset__startswith="webhooks:").order_by("id"))


def test_signed_hubspot_request_is_stored_and_acknowledged(client, loop, app_secret):
    connection = loop.hubspot_sync.connection
    events = [_optout(event_id=1), _optout(event_id=2), _optout(event_id=3)]

    response = post_hubspot(client, connection, events)

    assert response.status_code == 200, response.content
    assert response.json() == {"received": 3}
    stored = WebhookEvent.objects.filter(connection=connection)
    assert sorted(stored.values_list("event_id", flat=True)) == ["1", "2", "3"]
    assert set(stored.values_list("kind", "state")) == {("unsubscribe", "received")}


def test_bad_signature_is_refused_with_nothing_stored(client, loop, app_secret):
    connection = loop.hubspot_sync.connection

    forged = post_hubspot(client, connection, [_optout()], secret="not-the-app-secret")

    assert forged.status_code == 401
    assert "signature" in forged.json()["detail"]
    assert not WebhookEvent.objects.exists()
    assert _refusals() == {"bad_signature": 1}
    [row] = _webhook_log()
    assert (row.dataset, row.outcome, row.status_code) == ("webhooks:hubspot", "denied", 401)
    assert "bad_signature" in row.detail and row.client_address == "127.0.0.1"


def test_replayed_request_is_refused_with_nothing_more_stored(client, loop, app_secret):
    connection = loop.hubspot_sync.connection
    first = post_hubspot(client, connection, [_optout(event_id=42)])

    again = post_hubspot(client, connection, [_optout(event_id=42)])

    assert (first.status_code, again.status_code) == (200, 409)
    assert WebhookEvent.objects.count() == 1
    assert _refusals() == {"replayed": 1}


def test_a_request_with_new_and_known_events_stores_only_the_new(client, loop, app_secret):
    connection = loop.hubspot_sync.connection
    post_hubspot(client, connection, [_optout(event_id=1)])

    response = post_hubspot(client, connection, [_optout(event_id=1), _optout(event_id=2)])

    assert response.status_code == 200 and response.json() == {"received": 2}
    assert sorted(WebhookEvent.objects.values_list("event_id", flat=True)) == ["1", "2"]


def test_stale_timestamp_is_refused(client, loop, app_secret):
    six_minutes_ago = int((time.time() - 360) * 1000)

    response = post_hubspot(
        client, loop.hubspot_sync.connection, [_optout()], timestamp_ms=six_minutes_ago
    )

    assert response.status_code == 401
    assert "5 minutes" in response.json()["detail"]
    assert not WebhookEvent.objects.exists() and _refusals() == {"stale_timestamp": 1}


def test_a_signature_over_another_url_is_refused(client, loop, app_secret):
    """The URI is signed: a request captured for one connection replayed to another fails."""
    other = loop.members_sync.connection  # any other id
    url = f"http://127.0.0.1:8000/marketing/integrations/webhooks/hubspot/{other.pk}"

    response = post_hubspot(client, loop.hubspot_sync.connection, [_optout()], url=url)

    assert response.status_code == 401 and _refusals() == {"bad_signature": 1}


def test_unknown_connection_is_refused(client, loop, app_secret):
    mailchimp_connection = loop.members_sync.connection
    path = receiver_path(loop.hubspot_sync.connection).rsplit("/", 1)[0]

    missing = client.post(f"{path}/999999", b"[]", content_type="application/json")
    wrong_vendor = client.post(
        f"{path}/{mailchimp_connection.pk}", b"[]", content_type="application/json"
    )
    no_such_vendor = client.post(
        f"/marketing/integrations/webhooks/nosuchvendor/{mailchimp_connection.pk}",
        b"",
        content_type="application/json",
    )
    huge_id = client.post(f"{path}/{10**30}", b"[]", content_type="application/json")

    assert [r.status_code for r in (missing, wrong_vendor, no_such_vendor, huge_id)] == [404] * 4
    assert not WebhookEvent.objects.exists()
    assert dict(WebhookRefusal.objects.values_list("vendor", "count")) == {
        "hubspot": 3,
        "unknown": 1,
    }


def test_oversized_body_is_refused_before_it_is_read(client, loop, app_secret, settings):
    settings.MKT_WEBHOOK_MAX_BYTES = 2000
    events = [_optout(event_id=i) for i in range(40)]  # about 9 kB

    response = post_hubspot(client, loop.hubspot_sync.connection, events)

    assert response.status_code == 413
    assert "2,000 bytes" in response.json()["detail"]
    assert not WebhookEvent.objects.exists() and _refusals() == {"too_large": 1}
    assert _webhook_log()[0].outcome == "invalid"


def test_a_body_nested_deeper_than_hubspot_sends_is_a_400(client, loop, app_secret):
    deep = [{"eventId": 1, "objectId": [[[[1]]]]}]

    response = post_hubspot(client, loop.hubspot_sync.connection, deep)

    assert response.status_code == 400 and "nested" in response.json()["detail"]
    assert _refusals() == {"bad_body": 1}


def test_a_signed_body_that_is_not_json_is_a_400_not_a_500(client, loop, app_secret):
    for body in (b"\xff\xfe not json", b'{"not": "an array"}', b"[1, 2]", b"NaN"):
        response = post_hubspot(client, loop.hubspot_sync.connection, [], raw_body=body)

        assert response.status_code == 400, (body, response.content)
    assert not WebhookEvent.objects.exists() and _refusals() == {"bad_body": 4}


def test_hubspot_webhooks_are_refused_until_the_app_secret_is_set(client, loop, settings):
    settings.MKT_HUBSPOT_WEBHOOK_SECRET = ""

    response = post_hubspot(client, loop.hubspot_sync.connection, [_optout()])

    assert response.status_code == 503 and response["Retry-After"] == "300"
    assert "MKT_HUBSPOT_WEBHOOK_SECRET" in response.json()["detail"]
    assert not WebhookEvent.objects.exists() and _refusals() == {"not_configured": 1}


def test_events_beyond_the_connections_rate_are_refused_with_retry_after(
    client, loop, app_secret, settings
):
    settings.MKT_WEBHOOK_EVENTS_PER_MINUTE = 5
    connection = loop.hubspot_sync.connection

    first = post_hubspot(client, connection, [_optout(event_id=i) for i in range(4)])
    over = post_hubspot(client, connection, [_optout(event_id=i) for i in range(4, 8)])

    assert (first.status_code, over.status_code) == (200, 429)
    assert 1 <= int(over["Retry-After"]) <= 60
    assert WebhookEvent.objects.count() == 4 and _refusals() == {"rate_limited": 1}
    assert _webhook_log()[0].outcome == "limited"


def test_a_flood_of_refusals_is_counted_but_logged_at_most_ten_times_a_minute(
    client, loop, app_secret
):
    for _ in range(15):
        post_hubspot(client, loop.hubspot_sync.connection, [_optout()], secret="wrong")

    assert _refusals() == {"bad_signature": 15}
    rows = _webhook_log()
    assert len(rows) == 10
    assert "counted, not logged" in rows[-1].detail


def test_mailchimp_checks_the_url_with_a_get_answered_only_with_the_secret(client, loop):
    path = mailchimp_url(loop.members_sync.connection)

    good = client.get(path)
    wrong = client.get(path.replace("secret=", "secret=x"))
    none = client.get(path.split("?")[0])

    assert (good.status_code, wrong.status_code, none.status_code) == (200, 401, 401)
    assert _refusals() == {"bad_secret": 2}


def test_mailchimp_empty_validation_post_is_answered_and_nothing_kept(client, loop):
    path = mailchimp_url(loop.members_sync.connection)

    response = client.post(path, b"", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200 and not WebhookEvent.objects.exists()


def test_mailchimp_event_with_the_secret_is_stored_and_without_it_refused(client, loop):
    connection = loop.members_sync.connection
    path = mailchimp_url(connection)
    data = {"email": "ann@example.com", "list_id": "list0001", "action": "unsub"}

    taken = post_mailchimp(client, path, "unsubscribe", data)
    forged = post_mailchimp(client, path.split("?")[0] + "?secret=guess", "unsubscribe", data)

    assert (taken.status_code, forged.status_code) == (200, 401)
    [event] = WebhookEvent.objects.all()
    assert (event.kind, event.email, event.scope) == (
        "unsubscribe",
        "ann@example.com",
        {"list_id": "list0001"},
    )


def test_a_rotated_mailchimp_secret_stops_the_old_url(client, loop):
    connection = loop.members_sync.connection
    old = mailchimp_url(connection)
    new = mailchimp_url(connection)

    assert client.get(old).status_code == 401
    assert client.get(new).status_code == 200


def test_a_mailchimp_connection_without_a_secret_refuses_everything(client, loop):
    path = receiver_path(loop.members_sync.connection)

    response = client.get(path + "?secret=")

    assert response.status_code == 401 and _refusals() == {"not_configured": 1}


def test_hubspot_receiver_takes_no_get(client, loop, app_secret):
    response = client.get(receiver_path(loop.hubspot_sync.connection))

    assert response.status_code == 405
