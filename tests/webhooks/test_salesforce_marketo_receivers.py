"""Salesforce Outbound Messages and Marketo webhooks into their receivers, over HTTP: the
secret (URL or header), the organisation check, the SOAP Ack, and what the events do (consent
withdrawn, the opt-out at every other destination, here the Mailchimp audiences)."""

from __future__ import annotations

import json

import pytest

from exports.backbone.models import ConsentRecord
from integrations.webhooks.endpoints import SECRET_HEADER, receiver_path
from integrations.webhooks.models import EventState, WebhookEvent, WebhookRefusal
from tests.fakes.salesforce_outbound import outbound_message
from tests.integrations.conftest import make_marketo_connection
from tests.integrations.contract.profiles.salesforce import connected
from tests.webhooks.conftest import SECOND_LIST, consented, drain, mailchimp_url

pytestmark = pytest.mark.django_db


def _withdrawn(contact) -> set[str]:
    return set(
        ConsentRecord.objects.filter(contact=contact, status="withdrawn").values_list(
            "purpose", flat=True
        )
    )


def _post_xml(client, path, body):
    return client.post(path, body, content_type="text/xml; charset=utf-8")


def test_a_salesforce_opt_out_is_acked_and_reaches_every_mailchimp_audience(
    client, loop, salesforce
):
    ann, bob = consented(2)
    loop.sync_all()
    path = mailchimp_url(connected("salesforce", salesforce))
    body = outbound_message(
        [{"Id": "0035g00000AAAAAAAA", "Email": ann.email, "HasOptedOutOfEmail": "true"}]
    )

    response = _post_xml(client, path, body)
    drain()

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert b"<Ack>true</Ack>" in response.content
    stored = WebhookEvent.objects.get()
    assert (stored.state, stored.contact_id, stored.kind) == (
        EventState.PROCESSED,
        ann.pk,
        "unsubscribe",
    )
    assert _withdrawn(ann) == {"email_marketing", "newsletter", "product_updates"}
    assert loop.member_status(ann) == loop.member_status(ann, SECOND_LIST) == "unsubscribed"
    assert loop.member_status(bob) == "subscribed"


def test_a_salesforce_bounce_withdraws_consent(client, loop, salesforce):
    [ann] = consented()
    loop.sync_all()
    path = mailchimp_url(connected("salesforce", salesforce))
    body = outbound_message(
        [
            {
                "Id": "00Q5g00000BBBBBBBB",
                "Email": ann.email,
                "EmailBouncedReason": "550 no such user",
            }
        ],
        sobject="Lead",
    )

    assert _post_xml(client, path, body).status_code == 200
    drain()

    assert WebhookEvent.objects.get().kind == "hard_bounce"
    assert "email_marketing" in _withdrawn(ann)
    assert loop.member_status(ann) == "unsubscribed"


def test_a_message_of_another_organisation_is_refused_and_nothing_is_stored(
    client, loop, salesforce
):
    [ann] = consented()
    path = mailchimp_url(connected("salesforce", salesforce))
    body = outbound_message(
        [{"Id": "003x", "Email": ann.email, "HasOptedOutOfEmail": "true"}],
        org_id="00D000000000OTHER",
    )

    response = _post_xml(client, path, body)

    assert response.status_code == 403
    assert b"not this connection's" in response.content
    assert not WebhookEvent.objects.exists() and not _withdrawn(ann)


def test_a_message_without_the_secret_is_refused_and_nothing_is_stored(client, salesforce):
    connection = connected("salesforce", salesforce)
    mailchimp_url(connection)  # a secret exists; the request does not carry it
    body = outbound_message(
        [{"Id": "003y", "Email": "x@example.com", "HasOptedOutOfEmail": "true"}]
    )

    response = _post_xml(client, receiver_path(connection), body)

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()
    assert dict(WebhookRefusal.objects.values_list("reason", "count")) == {"bad_secret": 1}


@pytest.mark.parametrize(
    "body",
    [
        b"<not-soap/>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
        b"\x00\x01 not xml",
    ],
    ids=["not-soap", "dtd", "binary"],
)
def test_a_body_that_is_not_an_outbound_message_is_a_400(client, salesforce, body):
    path = mailchimp_url(connected("salesforce", salesforce))

    response = _post_xml(client, path, body)

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_notification_sent_twice_is_stored_once(client, salesforce):
    path = mailchimp_url(connected("salesforce", salesforce))
    body = outbound_message(
        [{"Id": "003z", "Email": "z@example.com", "HasOptedOutOfEmail": "true"}],
        ids=["04l000000000042AAA"],
    )

    first, again = _post_xml(client, path, body), _post_xml(client, path, body)

    assert first.status_code == 200 and again.status_code == 409
    assert WebhookEvent.objects.count() == 1


def _marketo_event(**values) -> bytes:
    return json.dumps({"at": "2026-12-01T10:00:00Z", **values}).encode()


def test_a_marketo_unsubscribe_with_the_secret_in_a_header_reaches_mailchimp(client, loop, marketo):
    [ann] = consented()
    loop.sync_all()
    connection = make_marketo_connection(marketo)
    secret = mailchimp_url(connection).partition("secret=")[2]

    response = client.post(
        receiver_path(connection),
        _marketo_event(event="unsubscribe", email=ann.email, leadId="318581"),
        content_type="application/json",
        headers={SECRET_HEADER: secret},
    )
    drain()

    assert response.status_code == 200
    assert _withdrawn(ann) == {"email_marketing", "newsletter", "product_updates"}
    assert loop.member_status(ann) == loop.member_status(ann, SECOND_LIST) == "unsubscribed"


def test_a_marketo_call_with_a_wrong_secret_or_body_stores_nothing(client, marketo):
    connection = make_marketo_connection(marketo)
    path = mailchimp_url(connection)

    wrong = client.post(
        receiver_path(connection),
        _marketo_event(event="unsubscribe", email="a@example.com"),
        content_type="application/json",
        headers={SECRET_HEADER: "not-the-secret"},
    )
    not_an_object = client.post(path, b"[1, 2]", content_type="application/json")
    nobody = client.post(path, _marketo_event(event="unsubscribe"), content_type="application/json")

    assert (wrong.status_code, not_an_object.status_code, nobody.status_code) == (401, 400, 400)
    assert b"email or leadId" in nobody.content
    assert not WebhookEvent.objects.exists()


def test_a_marketo_open_becomes_activity_and_other_events_are_kept(client, loop, marketo):
    [ann] = consented()
    path = mailchimp_url(make_marketo_connection(marketo))

    for event in ("open", "Filled Out Form"):
        response = client.post(
            path, _marketo_event(event=event, email=ann.email), content_type="application/json"
        )
        assert response.status_code == 200
    drain()

    states = dict(WebhookEvent.objects.values_list("kind", "state"))
    assert states == {"open": EventState.PROCESSED, "other": EventState.IGNORED}
    assert ann.events.filter(type="email_open").exists()
