"""Connect for Salesforce signs in where the connection says: production, a sandbox or the
org's My Domain (the connection's ``login_host``)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from integrations.credentials import connection_credentials_save
from integrations.models import Connection
from tests.integrations.oauth.conftest import query_of, start

pytestmark = pytest.mark.django_db


def salesforce_connection(**config) -> Connection:
    connection = Connection(
        name="salesforce sandbox", vendor="salesforce", auth_kind="oauth2", config=config
    )
    connection.full_clean()
    return connection_credentials_save(connection=connection, values={})


@pytest.mark.parametrize(
    "login_host",
    ["login.salesforce.com", "test.salesforce.com", "acme--uat.sandbox.my.salesforce.com"],
)
def test_connect_signs_in_at_the_connections_login_host(ira, login_host):
    connection = salesforce_connection(login_host=login_host)

    location = start(ira, connection)["Location"]

    assert location.startswith(f"https://{login_host}/services/oauth2/authorize?")
    query = query_of(location)
    assert query["scope"].split() == ["api", "refresh_token"]
    assert query["code_challenge_method"] == "S256"


def test_a_login_host_that_is_not_salesforces_is_refused_naming_the_allowed_ones():
    with pytest.raises(ValidationError, match=r"test\.salesforce\.com \(sandboxes\)"):
        salesforce_connection(login_host="login.evil.example")
