"""An Account Engagement (Pardot) connection names its business unit, checked in one place
(the config's validation): the configure API answers 400 naming business_unit_id, the admin
shows it as a form error. A refresh token in a configure document connects it, its OAuth
endpoints following base_url; Connect asks Salesforce for the pardot_api scope."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from integrations.models import Connection, GrantState, OAuthGrant, Sync
from mktintegration import roles
from tests.fakes.pardot import BUSINESS_UNIT_ID
from tests.integrations.contract.profiles.pardot import PROSPECT_MAPPINGS
from tests.integrations.oauth.conftest import oauth_connection, query_of, start, token_calls
from tests.operations.test_configure_api import URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(user_with_role):
    return user_with_role(roles.INTEGRATION_ADMIN, username="ida")


def _document(server, refresh_token: str, **config) -> dict:
    return {
        "connection": {
            "name": "Pardot prod",
            "vendor": "pardot",
            "auth_kind": "oauth2",
            "credentials": {"refresh_token": refresh_token},
            "config": config,
            "base_url": server.url,
            "rate_limit_requests": 5,
            "rate_limit_seconds": 1,
        },
        "syncs": [
            {
                "name": "Contacts to Pardot",
                "dataset": "contacts",
                "destination_object": "prospects",
                "match_source_field": "email",
                "match_destination_field": "email",
                "consent_purpose": "email_marketing",
                "cron": "*/15 * * * *",
                "mappings": [
                    {"source_field": source, "destination_field": target}
                    for source, target in PROSPECT_MAPPINGS
                ],
            }
        ],
    }


def _errors(response) -> dict[str, str]:
    return {e["path"]: e["message"] for e in response.json()["errors"]}


def test_a_refresh_token_and_business_unit_configure_a_connected_pardot_connection(
    api, admin, pardot
):
    seeded = pardot.oauth.store.issue_grant(["pardot_api", "refresh_token"])

    response = api(admin).post(
        URL,
        _document(pardot, seeded["refresh_token"], business_unit_id=BUSINESS_UNIT_ID),
        format="json",
    )

    assert response.status_code == 200, response.json()
    connection = Connection.objects.get()
    assert connection.config == {"business_unit_id": BUSINESS_UNIT_ID}
    # The sync was checked against Pardot's fields: the refresh token bought an access token
    # at the emulator (base_url), and the fields read named the business unit.
    assert len(token_calls(pardot, "refresh_token")) == 1
    fields_read = pardot.calls("/custom-fields")
    assert [c.header("Pardot-Business-Unit-Id") for c in fields_read] == [BUSINESS_UNIT_ID]
    assert Sync.objects.count() == 1
    assert OAuthGrant.objects.get(pk=connection.pk).state == GrantState.CONNECTED


@pytest.mark.parametrize(
    ("config", "shown"),
    [
        ({}, "it is missing"),
        ({"business_unit_id": "0Uv00000000001"}, "'0Uv00000000001' is not"),
        ({"business_unit_id": "001000000000001AAA"}, "'001000000000001AAA' is not"),
    ],
)
def test_a_missing_or_malformed_business_unit_is_a_400_naming_the_field(
    api, admin, pardot, config, shown
):
    seeded = pardot.oauth.store.issue_grant(["pardot_api", "refresh_token"])

    response = api(admin).post(
        URL, _document(pardot, seeded["refresh_token"], **config), format="json"
    )

    assert response.status_code == 400
    message = _errors(response)["connection.config"]
    assert f"business_unit_id: {shown}" in message and "0Uv" in message
    assert not Connection.objects.exists()
    assert pardot.requests == []  # refused before anything was asked of Pardot


def test_the_admin_shows_a_bad_business_unit_as_a_form_error(client_for, pardot):
    response = client_for(roles.INTEGRATION_ADMIN).post(
        "/admin/integrations/connection/add/",
        {
            "name": "Pardot prod",
            "vendor": "pardot",
            "auth_kind": "oauth2",
            "config": '{"business_unit_id": "0Uv-not-an-id"}',
            "base_url": pardot.url,
            "allowed_regions": "[]",
            "rate_limit_requests": "",
            "rate_limit_seconds": "",
        },
    )

    form = response.context["adminform"].form
    [error] = form.errors["config"]
    assert "business_unit_id: '0Uv-not-an-id' is not a Business Unit Id" in error
    assert not Connection.objects.exists()


def test_a_model_clean_refuses_a_connection_without_a_business_unit(pardot):
    with pytest.raises(ValidationError, match="business_unit_id: it is missing"):
        oauth_connection("pardot", pardot)


def test_connect_asks_salesforce_for_the_pardot_api_scope(client_for, pardot, settings):
    from tests.fakes.salesforce_oauth import CLIENT_ID, CLIENT_SECRET

    settings.MKT_OAUTH_CLIENTS = {
        "salesforce": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    }
    settings.MKT_BASE_URL = "http://testserver"
    connection = oauth_connection("pardot", pardot, config={"business_unit_id": BUSINESS_UNIT_ID})

    redirect = start(client_for(roles.INTEGRATION_ADMIN), connection)

    location = redirect["Location"]
    assert location.startswith(f"{pardot.url}/services/oauth2/authorize")
    assert set(query_of(location)["scope"].split()) == {"pardot_api", "refresh_token"}
