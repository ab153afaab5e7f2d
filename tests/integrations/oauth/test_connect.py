"""Connect, Reconnect and Disconnect through the real admin pages, the vendor emulators'
consent pages and our callback."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from integrations.models import Connection, ConnectionStatus, GrantState, OAuthGrant
from tests.integrations.conftest import make_sync
from tests.integrations.oauth.conftest import (
    back,
    connect,
    consent,
    oauth_connection,
    query_of,
    start,
    text,
    token_calls,
)

pytestmark = pytest.mark.django_db


def test_connect_hubspot_shows_the_portal_scopes_and_token_expiry(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)

    page = connect(ira, connection)

    assert page.redirect_chain[-1][0] == f"/admin/integrations/connection/{connection.pk}/change/"
    shown = text(page)
    assert "connected to acme-dev.hubspot.com" in shown
    assert "Account: 62515 (acme-dev.hubspot.com)" in shown
    assert "Scopes granted: oauth, crm.objects.companies.read" in shown
    assert "Access token expires:" in shown and "renewed automatically" in shown
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.HEALTHY  # its test ran, with the new token
    assert hubspot.calls("/crm/v3/properties/companies")
    assert set(connection.get_credentials()) == {"access_token", "refresh_token"}
    assert hubspot.violations == []


def test_connect_mailchimp_stores_the_account_data_centre_and_api_endpoint(ira, mailchimp):
    connection = oauth_connection("mailchimp", mailchimp)

    page = connect(ira, connection)

    shown = text(page)
    assert "Account: 4242 (Acme Newsletters)" in shown
    assert "Data centre: us14" in shown
    assert f"API address: {mailchimp.url}" in shown
    assert "does not expire" in shown
    (metadata,) = mailchimp.calls("/oauth2/metadata")
    assert metadata.status == 200  # with "Authorization: OAuth <token>", or a violation
    assert mailchimp.calls("/3.0/ping")[-1].status == 200  # the test, with the bearer token
    assert mailchimp.violations == []


def test_mailchimp_by_oauth_sends_to_the_api_endpoint_the_metadata_named(ira, mailchimp):
    from integrations import services

    connection = oauth_connection("mailchimp", mailchimp)
    connect(ira, connection)
    Connection.objects.filter(pk=connection.pk).update(base_url="")  # no override any more
    pings = len(mailchimp.calls("/3.0/ping"))

    ok, message = services.connection_test(connection=Connection.objects.get())

    assert ok, message
    assert len(mailchimp.calls("/3.0/ping")) == pings + 1  # at api_endpoint + /3.0


def test_hubspot_connect_uses_v3_endpoints_with_pkce_and_every_parameter_in_the_body(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)

    redirect = start(ira, connection)
    asked = query_of(redirect["Location"])
    back(ira, consent(redirect))

    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
    assert (
        asked["redirect_uri"]
        == "http://testserver/admin/integrations/connection/oauth/hubspot/callback/"
    )
    (exchange,) = token_calls(hubspot)
    assert exchange.query == {}
    assert exchange.body["grant_type"] == "authorization_code"
    assert exchange.body["code_verifier"]  # the emulator checked it against the challenge
    assert not hubspot.calls("/oauth/v1/")
    assert hubspot.violations == []


def test_a_reused_state_is_refused_and_changes_nothing(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    location = consent(start(ira, connection))
    back(ira, location)
    first_tokens = Connection.objects.get().get_credentials()

    again = back(ira, location)

    assert again.status_code == 400
    assert "was used already. Nothing was changed" in text(again)
    assert Connection.objects.get().get_credentials() == first_tokens
    assert len(token_calls(hubspot)) == 1  # the code was not even tried again


def test_a_state_from_another_user_is_refused(ira, client_for, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    location = consent(start(ira, connection))

    from mktintegration import roles

    other = client_for(roles.INTEGRATION_ADMIN, username="otto")
    refused = back(other, location)

    assert refused.status_code == 400
    assert "does not belong to a Connect started here by you" in text(refused)
    assert OAuthGrant.objects.get(pk=connection.pk).state == GrantState.NOT_CONNECTED


def test_a_wrong_state_is_refused(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    location = consent(start(ira, connection))

    refused = back(ira, location.replace("state=", "state=x"))

    assert refused.status_code == 400
    assert "Nothing was changed" in text(refused)
    assert Connection.objects.get().get_credentials() == {}


def test_an_expired_state_is_refused(ira, hubspot, monkeypatch, settings):
    settings.MKT_OAUTH_STATE_MINUTES = 1
    connection = oauth_connection("hubspot", hubspot)
    location = consent(start(ira, connection))
    import time

    later = time.time() + 61
    monkeypatch.setattr("integrations.oauth.connect.time.time", lambda: later)
    monkeypatch.setattr("social_core.backends.oauth._time", lambda: later)

    refused = back(ira, location)

    assert refused.status_code == 400
    assert "in the last 1 minutes" in text(refused)
    assert Connection.objects.get().get_credentials() == {}
    assert not token_calls(hubspot)


def test_access_denied_at_the_vendor_is_a_readable_page_and_changes_nothing(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    hubspot.oauth.store.deny_next = "access_denied"

    page = connect(ira, connection)

    assert page.status_code == 400
    assert "HubSpot did not grant access (The user did not grant access)" in text(page)
    assert "is unchanged" in text(page)
    assert Connection.objects.get().get_credentials() == {}
    assert OAuthGrant.objects.get(pk=connection.pk).state == GrantState.NOT_CONNECTED


def test_missing_scopes_are_refused_and_nothing_is_stored(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    hubspot.oauth.store.grant_only = ["oauth", "crm.objects.companies.read"]

    page = connect(ira, connection)

    assert page.status_code == 400
    assert "needs crm.objects.companies.write, crm.objects.contacts.read" in text(page)
    assert Connection.objects.get().get_credentials() == {}


def test_a_token_endpoint_that_does_not_answer_is_a_readable_page(ira, hubspot, monkeypatch):
    monkeypatch.setattr("integrations.oauth.backends.TOKEN_TIMEOUT", (1.0, 0.3))
    connection = oauth_connection("hubspot", hubspot)
    location = consent(start(ira, connection))
    hubspot.delay_next(1, 2.0, path_contains="/oauth/v3/token", writes_only=False)

    page = back(ira, location)

    assert page.status_code == 400
    assert "could not be reached to complete the connection" in text(page)
    assert Connection.objects.get().get_credentials() == {}


def test_oauth_not_set_up_says_which_settings(ira, hubspot, settings):
    settings.MKT_OAUTH_CLIENTS = {}
    connection = oauth_connection("hubspot", hubspot)

    page = ira.post(f"/admin/integrations/connection/{connection.pk}/connect/")

    assert page.status_code == 400
    assert "an administrator sets MKT_HUBSPOT_CLIENT_ID and MKT_HUBSPOT_CLIENT_SECRET" in text(page)


def test_reconnect_replaces_the_tokens_and_resumes_what_the_lost_grant_paused(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    connect(ira, connection)
    old = Connection.objects.get().get_credentials()
    sync = make_sync(connection, paused=True, pause_reason="reconnect: HubSpot no longer ...")
    mine = make_sync(connection, paused=True, pause_reason="paused by ira")
    OAuthGrant.objects.filter(pk=connection.pk).update(state=GrantState.RECONNECT, reason="x")

    page = connect(ira, connection)

    assert "Resumed, as the connection works again: " + sync.name in text(page)
    new = Connection.objects.get().get_credentials()
    assert new["refresh_token"] != old["refresh_token"]
    assert OAuthGrant.objects.get(pk=connection.pk).state == GrantState.CONNECTED
    sync.refresh_from_db()
    mine.refresh_from_db()
    assert not sync.paused and mine.paused


def test_disconnect_revokes_at_hubspot_and_forgets_the_tokens(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    connect(ira, connection)
    refresh_token = Connection.objects.get().get_credentials()["refresh_token"]
    sync = make_sync(connection)

    confirm = ira.get(f"/admin/integrations/connection/{connection.pk}/disconnect/")
    done = ira.post(f"/admin/integrations/connection/{connection.pk}/disconnect/", follow=True)

    assert "is asked to revoke the authorization" in text(confirm)
    assert "HubSpot revoked the authorization" in text(done)
    (revoke,) = hubspot.calls("/oauth/v3/token/revoke")
    assert revoke.body["token"] == refresh_token
    assert revoke.body["token_type_hint"] == "refresh_token" and revoke.query == {}
    assert Connection.objects.get().get_credentials() == {}
    assert OAuthGrant.objects.get(pk=connection.pk).state == GrantState.NOT_CONNECTED
    sync.refresh_from_db()
    assert sync.paused and sync.pause_reason.startswith("paused by ira")
    assert hubspot.violations == []


def test_disconnect_mailchimp_says_it_has_no_revoke_endpoint(ira, mailchimp):
    connection = oauth_connection("mailchimp", mailchimp)
    connect(ira, connection)

    done = ira.post(f"/admin/integrations/connection/{connection.pk}/disconnect/", follow=True)

    assert "Mailchimp has no endpoint to revoke a token" in text(done)
    assert Connection.objects.get().get_credentials() == {}


def _form_action(response) -> list[str]:
    policy = response.headers["Content-Security-Policy"]
    [directive] = [d.strip() for d in policy.split(";") if d.strip().startswith("form-action")]
    return directive.split()[1:]


def test_the_pages_that_post_connect_let_the_browser_follow_it_to_the_consent_page(ira, hubspot):
    """A browser checks every redirect after a form's submission against the page's CSP
    form-action: the vendor's consent page is allowed there, on those pages only."""
    connection = oauth_connection("hubspot", hubspot)
    parts = urlsplit(hubspot.url)
    consent_origin = f"{parts.scheme}://{parts.netloc}"
    connect_page = ira.get(f"/admin/integrations/connection/{connection.pk}/connect/")
    change_page = ira.get(f"/admin/integrations/connection/{connection.pk}/change/")
    other_page = ira.get("/admin/integrations/connection/")

    assert _form_action(connect_page) == ["'self'", consent_origin]
    assert _form_action(change_page) == ["'self'", consent_origin]
    assert _form_action(other_page) == ["'self'"]
    assert start(ira, connection)["Location"].startswith(consent_origin + "/")
