"""Fixtures for the operations tests: vendor emulators, a real SMTP server, users and tokens."""

from __future__ import annotations

import pytest

from mktintegration import roles
from tests.fakes.smtp import FakeSMTP
from tests.integrations.conftest import (  # noqa: F401 - a fixture shared with the engine tests
    hubspot_connection,
)


@pytest.fixture
def smtp(settings):
    """A real SMTP server on 127.0.0.1, and Django's SMTP backend pointed at it."""
    with FakeSMTP() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = server.host
        settings.EMAIL_PORT = server.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.MKT_BASE_URL = "https://mkt.example.com"
        yield server


@pytest.fixture
def integration_admin(user_with_role):
    return user_with_role(roles.INTEGRATION_ADMIN, username="ida", email="ida@ourcompany.example")


@pytest.fixture
def manager(user_with_role):
    return user_with_role(roles.MARKETING_MANAGER, username="mona", email="mona@ourcompany.example")
