"""Client credentials (what Marketo will use) through the same lifecycle, against a tiny
RFC 6749 server: the connection's own client id and secret buy the token, which is reused
while it lives, bought again when due or refused, and never expires the connection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.credentials import connection_credentials_save
from integrations.models import Connection, GrantState, OAuthGrant
from integrations.operations.evaluate import credentials_expire_at
from integrations.selectors import connector_for
from mktintegration.errors import ConnectorError, ErrorKind

pytestmark = pytest.mark.django_db


def _tokens(server) -> list:
    return [
        c for c in server.calls("/oauth/token") if c.body.get("grant_type") == "client_credentials"
    ]


@pytest.fixture
def machine(tiny):
    connection = Connection(
        name="tiny machine", vendor="tiny", auth_kind="client_credentials", base_url=tiny.url
    )
    connection.full_clean()
    return connection_credentials_save(
        connection=connection,
        values={"client_id": tiny.store.client_id, "client_secret": tiny.credential},
    )


def test_the_client_credentials_buy_a_token_that_is_reused_while_it_lives(machine, tiny):
    for _ in range(3):
        assert connector_for(Connection.objects.get()).test_connection() == "pong"

    (bought,) = _tokens(tiny)
    assert bought.query == {} and bought.body["client_id"] == tiny.store.client_id
    assert {c.status for c in tiny.calls("/api/ping")} == {200}
    grant = OAuthGrant.objects.get(pk=machine.pk)
    assert grant.state == GrantState.CONNECTED
    assert grant.token_expires_at > timezone.now() + timedelta(minutes=29)
    assert credentials_expire_at(machine) is None  # renewable by itself: no expiry alert
    assert tiny.violations == []


def test_a_token_due_is_bought_again(machine, tiny):
    connector_for(Connection.objects.get()).test_connection()
    OAuthGrant.objects.filter(pk=machine.pk).update(token_expires_at=timezone.now())

    connector_for(Connection.objects.get()).test_connection()

    assert len(_tokens(tiny)) == 2


def test_a_401_buys_a_new_token_once_and_sends_again(machine, tiny):
    connector_for(Connection.objects.get()).test_connection()
    tiny.store.expire_access_tokens()

    assert connector_for(Connection.objects.get()).test_connection() == "pong"

    assert len(_tokens(tiny)) == 2
    assert [c.status for c in tiny.calls("/api/ping")] == [200, 401, 200]


def test_a_refused_client_secret_is_an_auth_error_saying_what_to_fix(machine, tiny):
    connection_credentials_save(
        connection=Connection.objects.get(),
        values={"client_id": tiny.store.client_id, "client_secret": "not-the-secret"},
    )

    with pytest.raises(ConnectorError) as refused:
        connector_for(Connection.objects.get()).test_connection()

    assert refused.value.kind == ErrorKind.AUTH
    assert "refused the connection's client id and secret (invalid_client)" in str(refused.value)
    assert not tiny.calls("/api/ping")
