"""One write path for credentials (integrations.credentials): the admin form, the configure
API and Connect keep the same rules, and each person's change is one change-history entry
naming the secrets; token renewals write none."""

from __future__ import annotations

from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.utils import timezone

from integrations.models import Connection, GrantState, OAuthGrant
from integrations.services import connection_test
from tests.integrations.oauth.conftest import connect, oauth_connection, text

pytestmark = pytest.mark.django_db


def _form(connection, **overrides):
    data = {
        "name": connection.name,
        "vendor": connection.vendor,
        "auth_kind": connection.auth_kind,
        "config": "{}",
        "base_url": connection.base_url,
        "allowed_regions": "[]",
        "rate_limit_requests": "10000",
        "rate_limit_seconds": "1",
    }
    data.update(overrides)
    return data


def _secret_changes(connection) -> list[str]:
    entries = LogEntry.objects.get_for_object(connection).order_by("pk")
    return [e.changes_dict["credentials"][1] for e in entries if "credentials" in e.changes_dict]


def test_editing_an_oauth_connection_in_the_admin_keeps_its_tokens(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    connect(ira, connection)
    tokens = Connection.objects.get().get_credentials()

    saved = ira.post(
        f"/admin/integrations/connection/{connection.pk}/change/",
        _form(connection, name="HubSpot EU"),
    )

    assert saved.status_code == 302, text(saved)[:2000]
    assert Connection.objects.get().get_credentials() == tokens
    assert OAuthGrant.objects.get(pk=connection.pk).state == GrantState.CONNECTED


def test_clearing_the_credentials_in_the_admin_leaves_it_not_connected(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    connect(ira, connection)

    ira.post(
        f"/admin/integrations/connection/{connection.pk}/change/",
        _form(connection, clear_credentials="on"),
    )

    assert Connection.objects.get().get_credentials() == {}
    grant = OAuthGrant.objects.get(pk=connection.pk)
    assert grant.state == GrantState.NOT_CONNECTED and grant.account_id == ""
    assert connection_test(connection=Connection.objects.get()) == (
        False,
        "not connected yet: use Connect on the connection's page",
    )


def test_changing_the_auth_kind_keeps_only_the_new_kinds_secrets(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    connect(ira, connection)

    needs_token = ira.post(
        f"/admin/integrations/connection/{connection.pk}/change/",
        _form(connection, auth_kind="private_app_token"),
    )
    saved = ira.post(
        f"/admin/integrations/connection/{connection.pk}/change/",
        _form(connection, auth_kind="private_app_token", token=hubspot.credential),
    )

    assert "HubSpot needs &#x27;token&#x27; for auth kind private_app_token" in (
        needs_token.content.decode()
    )
    assert saved.status_code == 302
    assert Connection.objects.get().get_credentials() == {"token": hubspot.credential}
    assert not OAuthGrant.objects.filter(pk=connection.pk).exists()


def test_connect_and_disconnect_are_in_the_change_history_and_renewals_are_not(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    connect(ira, connection)
    OAuthGrant.objects.filter(pk=connection.pk).update(
        token_expires_at=timezone.now() + timedelta(seconds=10)
    )
    assert connection_test(connection=Connection.objects.get())[0]  # renewed the token
    ira.post(f"/admin/integrations/connection/{connection.pk}/disconnect/")

    assert _secret_changes(connection) == [
        "access_token set; refresh_token set",
        "access_token removed; refresh_token removed",
    ]
    states = [
        e.changes_dict["state"][1]
        for e in LogEntry.objects.get_for_object(OAuthGrant.objects.get(pk=connection.pk)).order_by(
            "pk"
        )
        if "state" in e.changes_dict
    ]
    assert states == ["not_connected", "connected", "not_connected"]
