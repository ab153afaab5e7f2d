"""Fixtures for the OAuth tests: the emulators' OAuth apps configured, OAuth connections, and
a browser's trip through the vendor's consent page and back."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.credentials import connection_credentials_save
from integrations.models import Connection
from mktintegration import roles
from tests.fakes.constantcontact_oauth import CLIENT_ID as CC_ID
from tests.fakes.constantcontact_oauth import CLIENT_SECRET as CC_SECRET
from tests.fakes.hubspot_oauth import CLIENT_ID as HS_ID
from tests.fakes.hubspot_oauth import CLIENT_SECRET as HS_SECRET
from tests.fakes.mailchimp_oauth import CLIENT_ID as MC_ID
from tests.fakes.mailchimp_oauth import CLIENT_SECRET as MC_SECRET
from tests.fakes.salesforce_oauth import CLIENT_ID as SF_ID
from tests.fakes.salesforce_oauth import CLIENT_SECRET as SF_SECRET
from tests.integrations.oauth.tiny import tiny  # noqa: F401 - a fixture
from tests.operations.conftest import integration_admin, smtp  # noqa: F401 - fixtures
from tests.page_text import page_text


@pytest.fixture(autouse=True)
def oauth_apps(settings):
    """This installation's OAuth apps at the emulators, and our address for the redirect."""
    settings.MKT_OAUTH_CLIENTS = {
        "hubspot": {"client_id": HS_ID, "client_secret": HS_SECRET},
        "mailchimp": {"client_id": MC_ID, "client_secret": MC_SECRET},
        "salesforce": {"client_id": SF_ID, "client_secret": SF_SECRET},
        "constantcontact": {"client_id": CC_ID, "client_secret": CC_SECRET},
    }
    settings.MKT_BASE_URL = "http://testserver"


def oauth_connection(
    vendor: str, server, *, name: str | None = None, config: dict | None = None
) -> Connection:
    """A connection by OAuth, not connected yet, whose OAuth endpoints are the emulator's."""
    connection = Connection(
        name=name or f"{vendor} oauth",
        vendor=vendor,
        auth_kind="oauth2",
        config=dict(config or {}),
        base_url=getattr(server, "base_url", server.url),
        rate_limit_requests=10_000,
        rate_limit_seconds=1,
    )
    connection.full_clean()
    return connection_credentials_save(connection=connection, values={})


@pytest.fixture
def ira(client_for):
    """A test client signed in as an Integration Admin."""
    return client_for(roles.INTEGRATION_ADMIN, username="ira")


def start(client, connection):
    """Press Connect (or Reconnect) on the connection's page: the redirect to the vendor."""
    response = client.post(f"/admin/integrations/connection/{connection.pk}/connect/")
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


def consent(response) -> str:
    """The browser at the vendor's consent page (a real request to the emulator): where the
    vendor sends it back to (our callback, with code and state, or an error)."""
    answer = requests.get(response["Location"], allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def back(client, location: str):
    """The vendor's redirect back, followed by the test client (our pages)."""
    parts = urlsplit(location)
    return client.get(f"{parts.path}?{parts.query}", follow=True)


def connect(client, connection):
    """Connect end to end: our page, the vendor's consent page, our callback."""
    return back(client, consent(start(client, connection)))


def query_of(url: str) -> dict[str, str]:
    return {name: values[-1] for name, values in parse_qs(urlsplit(url).query).items()}


def text(response) -> str:
    """What a person reads on the page."""
    return page_text(response.content.decode())


def token_calls(fake, grant_type: str | None = None) -> list:
    """The requests to the vendor's token endpoint itself (not introspect or revoke)."""
    path = getattr(fake, "token_path", None) or (
        "/oauth/v3/token" if fake.name == "hubspot" else "/oauth2/token"
    )
    return [
        call
        for call in fake.calls(path, method="POST")
        if call.path == path and (grant_type is None or call.body.get("grant_type") == grant_type)
    ]
