"""Connect for Constant Contact: the authorization code flow with PKCE, the app's client id and
secret as HTTP Basic (never in the form), the scopes that give a refresh token, and the account
named on the connection (VENDORS.md §2 [C5][C7])."""

from __future__ import annotations

import pytest

from integrations.models import OAuthGrant
from tests.fakes.constantcontact import ACCOUNT_ID
from tests.integrations.oauth.conftest import (
    back,
    consent,
    oauth_connection,
    query_of,
    start,
    token_calls,
)

# Rotating refresh tokens are stored outside transactions (ADR 0011).
pytestmark = pytest.mark.django_db(transaction=True)


def test_connect_is_pkce_with_the_client_as_basic_and_names_the_account(constantcontact, ira):
    connection = oauth_connection("constantcontact", constantcontact)

    redirect = start(ira, connection)
    query = query_of(redirect["Location"])
    page = back(ira, consent(redirect))

    assert redirect["Location"].startswith(f"{constantcontact.url}/oauth2/default/v1/authorize?")
    assert query["scope"].split() == ["account_read", "contact_data", "offline_access"]
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    [exchange] = token_calls(constantcontact, "authorization_code")
    assert exchange.body["code_verifier"] and "client_secret" not in exchange.body
    grant = OAuthGrant.objects.get(connection=connection)
    assert (grant.account_id, grant.account_name) == (ACCOUNT_ID, "Acme Demo")
    assert page.status_code == 200 and "Acme Demo" in page.content.decode()
    connection.refresh_from_db()
    assert connection.get_credentials()["refresh_token"]
    assert constantcontact.violations == []
