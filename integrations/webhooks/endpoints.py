"""A connection's receiver: its URL (to paste into the vendor) and, for vendors that prove
themselves with a secret in the URL (Mailchimp), that secret, generated here, kept only as a
hash, shown once inside the URL and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from integrations.connectors import REGISTRY
from integrations.models import Connection
from integrations.webhooks.models import WebhookEndpoint

SECRET_PARAMETER = "secret"  # noqa: S105 - the query parameter's name
SECRET_HEADER = "X-Mkt-Webhook-Secret"  # noqa: S105 - or a header's, where the vendor sends one


def _hash(secret: str) -> str:
    return hmac.new(
        b"mktintegration-webhook-secret-v1", secret.encode(), hashlib.sha256
    ).hexdigest()


def receiver_path(connection: Connection) -> str:
    return reverse(
        "webhooks:receive", kwargs={"vendor": connection.vendor, "connection_id": connection.pk}
    )


def receiver_url(connection: Connection, *, secret: str = "") -> str:
    """The address the vendor is given (MKT_BASE_URL, the path, and the secret if any)."""
    url = settings.MKT_BASE_URL + receiver_path(connection)
    return f"{url}?{urlencode({SECRET_PARAMETER: secret})}" if secret else url


def receives_webhooks(connection: Connection) -> bool:
    cls = REGISTRY.get(connection.vendor)
    return bool(cls and cls.webhook_auth)


def needs_url_secret(connection: Connection) -> bool:
    cls = REGISTRY.get(connection.vendor)
    return bool(cls and cls.webhook_auth == "url_secret")


@transaction.atomic
def endpoint_secret_rotate(*, connection: Connection, user=None) -> str:
    """A new secret for the connection's receiver (the old one stops working); returns the
    receiver URL with it, which is never available again."""
    if not needs_url_secret(connection):
        raise ValueError(f"{connection.vendor} webhooks carry no secret in the URL")
    secret = secrets.token_urlsafe(32)
    WebhookEndpoint.objects.update_or_create(
        connection=connection,
        defaults={"secret_hash": _hash(secret), "rotated_at": timezone.now(), "rotated_by": user},
    )
    return receiver_url(connection, secret=secret)


def endpoint_secret_matches(endpoint: WebhookEndpoint | None, presented: str) -> bool:
    """Whether ``presented`` is the receiver's secret (constant time, even without one)."""
    expected = endpoint.secret_hash if endpoint is not None else _hash(secrets.token_hex(16))
    return hmac.compare_digest(expected, _hash(presented)) and endpoint is not None
