"""The configure API creates an OAuth connection from a refresh token (infrastructure as
code, staging); its OAuth endpoints follow the base_url override, so emulators work."""

from __future__ import annotations

import pytest

from integrations.models import Connection, GrantState, OAuthGrant, Sync
from tests.integrations.oauth.conftest import connect, oauth_connection, token_calls
from tests.operations.test_configure_api import URL, document

pytestmark = pytest.mark.django_db


def _oauth_document(server, refresh_token: str, **connection):
    doc = document(server)
    doc["connection"].update(
        {"auth_kind": "oauth2", "credentials": {"refresh_token": refresh_token}, **connection}
    )
    return doc


def test_a_refresh_token_creates_a_connected_oauth_connection(api, integration_admin, hubspot):
    seeded = hubspot.oauth.store.issue_grant(["oauth", "crm.objects.companies.read"])

    response = api(integration_admin).post(
        URL, _oauth_document(hubspot, seeded["refresh_token"]), format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert "refresh_token" in body["config"]["connection"]["credentials_set"]
    assert seeded["refresh_token"] not in response.content.decode()
    connection = Connection.objects.get()
    credentials = connection.get_credentials()
    assert credentials["refresh_token"] == seeded["refresh_token"]
    # The sync was checked against HubSpot's fields: the refresh token bought an access token
    # at the emulator (base_url), which was stored.
    assert len(token_calls(hubspot, "refresh_token")) == 1
    assert Sync.objects.count() == 1
    grant = OAuthGrant.objects.get(pk=connection.pk)
    assert grant.state == GrantState.CONNECTED and grant.account_id == "62515"
    assert grant.connected_by == integration_admin


def test_a_bad_refresh_token_in_a_document_pauses_nothing_and_says_so(
    api, integration_admin, hubspot
):
    response = api(integration_admin).post(
        URL, _oauth_document(hubspot, "hs-refresh-made-up"), format="json"
    )

    assert response.status_code == 400
    errors = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert (
        "no longer accepts this connection's authorization" in errors["syncs[0].destination_object"]
    )
    assert not Connection.objects.exists()  # the whole document was rolled back


def test_an_unknown_secret_for_oauth2_names_the_ones_it_takes(api, integration_admin, hubspot):
    doc = document(hubspot)
    doc["connection"].update({"auth_kind": "oauth2", "credentials": {"token": "x" * 20}})

    response = api(integration_admin).post(URL, doc, format="json")

    assert response.status_code == 400
    errors = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert "its secrets: refresh_token" in errors["connection.credentials.token"]


def test_a_document_that_leaves_credentials_out_keeps_the_connected_tokens(
    api, integration_admin, ira, hubspot
):
    connection = oauth_connection("hubspot", hubspot, name="HubSpot prod")
    connect(ira, connection)
    tokens = Connection.objects.get().get_credentials()
    doc = document(hubspot)
    doc["connection"].update({"auth_kind": "oauth2", "credentials": {}})
    doc["connection"]["rate_limit_requests"] = 50

    response = api(integration_admin).post(URL, doc, format="json")

    assert response.status_code == 200, response.json()
    assert Connection.objects.get().get_credentials() == tokens
    assert OAuthGrant.objects.get(pk=connection.pk).state == GrantState.CONNECTED


def test_a_mailchimp_access_token_with_its_data_centre_creates_a_working_connection(
    api, integration_admin, mailchimp
):
    seeded = mailchimp.oauth.store.issue_grant()
    doc = {
        "connection": {
            "name": "Mailchimp by configure",
            "vendor": "mailchimp",
            "auth_kind": "oauth2",
            "base_url": mailchimp.url,  # the data centre: the API address is learnt at Connect
            "credentials": {"access_token": seeded["access_token"]},
        },
        "syncs": [
            {
                "name": "Contacts to Mailchimp",
                "dataset": "contacts",
                "destination_object": "members",
                "destination_config": {"list_id": "list0001"},
                "match_source_field": "email",
                "match_destination_field": "email_address",
                "consent_purpose": "email_marketing",
                "mappings": [{"source_field": "first_name", "destination_field": "FNAME"}],
            }
        ],
    }

    response = api(integration_admin).post(URL, doc, format="json")

    assert response.status_code == 200, response.json()
    merge_fields = mailchimp.calls("/merge-fields")
    assert merge_fields and merge_fields[-1].status == 200  # read with the bearer token
    assert Connection.objects.get().get_credentials() == {"access_token": seeded["access_token"]}
