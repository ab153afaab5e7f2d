"""Fixtures: the sync tests' connections, and the feedback loop's (a contact synced to three
destinations, the vendors' requests)."""

from tests.integrations.conftest import (  # noqa: F401 - fixtures
    _quick_backoff,
    hubspot_connection,
    mailchimp_connection,
)
from tests.webhooks.conftest import app_secret, loop  # noqa: F401 - fixtures
