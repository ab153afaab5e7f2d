"""Who may Connect, Reconnect and Disconnect: Integration Admins, and anyone granted the
permission on that one connection; everyone else gets a page saying why (or a 404 for a
connection they may not see at all)."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm, remove_perm

from integrations.models import Connection, GrantState, OAuthGrant
from mktintegration import roles
from tests.integrations.oauth.conftest import back, connect, consent, oauth_connection, start, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def mona(client_for):
    return client_for(roles.MARKETING_MANAGER, username="mona")


def _user(client):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=client.session["_auth_user_id"])


def test_a_connection_one_may_not_see_answers_404(mona, hubspot):
    connection = oauth_connection("hubspot", hubspot)

    assert mona.get(f"/admin/integrations/connection/{connection.pk}/connect/").status_code == 404
    assert mona.post(f"/admin/integrations/connection/{connection.pk}/connect/").status_code == 404


def test_seeing_a_connection_is_not_enough_to_connect_it(mona, client_for, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    assign_perm("integrations.view_connection", _user(mona), connection)

    page = mona.get(f"/admin/integrations/connection/{connection.pk}/change/")
    refused = mona.post(f"/admin/integrations/connection/{connection.pk}/connect/")

    assert page.status_code == 200 and "Connect with HubSpot" not in text(page)
    assert refused.status_code == 403
    assert "You may not connect connection “hubspot oauth”" in text(refused)
    auditor = client_for(roles.AUDITOR)
    assert (
        auditor.post(f"/admin/integrations/connection/{connection.pk}/connect/").status_code == 403
    )


def test_a_manager_granted_connect_on_one_connection_connects_it(mona, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    for perm in ("view_connection", "connect_connection"):
        assign_perm(f"integrations.{perm}", _user(mona), connection)

    before = mona.get(f"/admin/integrations/connection/{connection.pk}/change/")
    page = connect(mona, connection)

    assert "Connect with HubSpot" in text(before) and "Disconnect" not in text(before)
    assert "connected to acme-dev.hubspot.com" in text(page)
    grant = OAuthGrant.objects.get(pk=connection.pk)
    assert grant.state == GrantState.CONNECTED and grant.connected_by.username == "mona"
    assert "Reconnect" in text(page) and "Disconnect" not in text(page)
    assert (
        mona.post(f"/admin/integrations/connection/{connection.pk}/disconnect/").status_code == 403
    )
    assert Connection.objects.get().get_credentials()  # still connected


def test_a_grant_taken_away_during_the_connect_stops_it_at_the_callback(mona, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    for perm in ("view_connection", "connect_connection"):
        assign_perm(f"integrations.{perm}", _user(mona), connection)
    location = consent(start(mona, connection))
    remove_perm("integrations.connect_connection", _user(mona), connection)

    refused = back(mona, location)

    assert refused.status_code == 400
    assert Connection.objects.get().get_credentials() == {}


def test_integration_admins_may_connect_and_disconnect_every_connection():
    admin = roles.ROLES[roles.INTEGRATION_ADMIN].permissions
    others = [r.permissions for name, r in roles.ROLES.items() if name != roles.INTEGRATION_ADMIN]
    for perm in ("integrations.connect_connection", "integrations.disconnect_connection"):
        assert perm in admin
        assert not any(perm in held for held in others)


def test_who_creates_a_connection_may_connect_and_disconnect_it(ira):
    response = ira.post(
        "/admin/integrations/connection/add/",
        {
            "name": "HubSpot by OAuth",
            "vendor": "hubspot",
            "auth_kind": "oauth2",
            "config": "{}",
            "base_url": "",
            "allowed_regions": "[]",
            "rate_limit_requests": "",
            "rate_limit_seconds": "",
        },
    )

    assert response.status_code == 302, text(response)[:2000]
    connection = Connection.objects.get()
    creator = _user(ira)
    assert creator.has_perm("integrations.connect_connection", connection)
    from guardian.shortcuts import get_perms

    assert {"connect_connection", "disconnect_connection", "test_connection"} <= set(
        get_perms(creator, connection)
    )
    assert OAuthGrant.objects.get(pk=connection.pk).state == GrantState.NOT_CONNECTED
