"""``Tiny``: the smallest connector declaring both token flows, registered for these tests
only, against ``tests.fakes.oauth_server``. It is what Marketo (client credentials) and
Constant Contact or Salesforce (rotating refresh tokens) will declare: a flow and a backend of
social-core's shape, nothing else."""

from __future__ import annotations

import pytest

from integrations.connectors.base import Connector, RateSpec
from integrations.oauth.backends import ClientCredentialsBackend, ConnectBackend
from integrations.oauth.flows import AuthorizationCode, ClientCredentials


class TinyConnect(ConnectBackend):
    name = "connect-tiny"
    title = "Tiny"
    AUTHORIZATION_URL = "https://login.tiny.example/oauth/authorize"
    ACCESS_TOKEN_URL = "https://login.tiny.example/oauth/token"
    REVOKE_TOKEN_URL = "https://login.tiny.example/oauth/revoke"


class TinyClientCredentials(ClientCredentialsBackend):
    name = "tiny-client-credentials"
    ACCESS_TOKEN_URL = "https://api.tiny.example/oauth/token"


class Tiny(Connector):
    slug = "tiny"
    label = "Tiny"
    auth_kinds = ("oauth2", "client_credentials")
    secret_fields = {"oauth2": (), "client_credentials": ("client_id", "client_secret")}
    token_flows = {
        "oauth2": AuthorizationCode(
            backend=TinyConnect, client="tiny", rotates_refresh_tokens=True
        ),
        "client_credentials": ClientCredentials(backend=TinyClientCredentials),
    }
    objects = {}
    default_rate = RateSpec(1000, 1)
    allowed_hosts = ("api.tiny.example",)

    def base_url(self) -> str:
        return "https://api.tiny.example"

    def test_connection(self) -> str:
        response = self.send("GET", self.url("/api/ping"))
        self.raise_for_status(response, "test")
        return "pong"


@pytest.fixture
def tiny(monkeypatch, settings):
    """Tiny in the connector registry, with this installation's app at its emulator."""
    from integrations.connectors import REGISTRY
    from integrations.forms import ConnectionForm, _secret_field
    from tests.fakes.oauth_server import FakeOAuthServer

    monkeypatch.setitem(REGISTRY, "tiny", Tiny)
    # The admin form declares one write-only field per secret of the registered connectors
    # when it is imported; Tiny comes later.
    for name in Tiny.secret_fields["client_credentials"]:
        monkeypatch.setitem(ConnectionForm.declared_fields, name, _secret_field())
        monkeypatch.setitem(ConnectionForm.base_fields, name, _secret_field())
    with FakeOAuthServer() as server:
        settings.MKT_OAUTH_CLIENTS = {
            **settings.MKT_OAUTH_CLIENTS,
            "tiny": {"client_id": server.store.client_id, "client_secret": server.credential},
        }
        yield server
