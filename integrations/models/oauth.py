"""The OAuth side of a connection: which vendor account it is connected to, what was granted
and when its token expires. The tokens themselves are credentials: they live encrypted in
``Connection.credentials_ciphertext`` (written by ``integrations.credentials`` only).

One row per connection whose auth kind is token-managed (``integrations.oauth.flows``). Its
``version`` goes up at every write of the tokens, and its lease fields are the database's
refresh lock when Redis is not configured (``integrations.oauth.lock``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from mktintegration.fields import BoundedJSONField


class GrantState(models.TextChoices):
    NOT_CONNECTED = "not_connected", "Not connected yet"
    CONNECTED = "connected", "Connected"
    RECONNECT = "reconnect", "Reconnect needed"


class OAuthGrant(models.Model):
    connection = models.OneToOneField(
        "integrations.Connection",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="oauth_grant",
    )
    state = models.CharField(
        max_length=16, choices=GrantState.choices, default=GrantState.NOT_CONNECTED
    )
    reason = models.CharField(
        max_length=500, blank=True, help_text="Why the connection must be reconnected."
    )
    account_id = models.CharField(max_length=100, blank=True, help_text="HubSpot portal id, ...")
    account_name = models.CharField(
        max_length=255, blank=True, help_text="HubSpot hub domain, Mailchimp account name, ..."
    )
    region = models.CharField(max_length=32, blank=True, help_text="Mailchimp data centre, ...")
    api_endpoint = models.URLField(
        blank=True, help_text="The account's API address, when the vendor names one."
    )
    scopes = BoundedJSONField(default=list, blank=True)
    token_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="When the access token expires (refreshed before then)."
    )
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the connection stops working unless someone reconnects it (empty: "
        "no known end).",
    )
    connected_at = models.DateTimeField(null=True, blank=True)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    refreshed_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveBigIntegerField(default=0)
    lease_owner = models.CharField(max_length=32, blank=True)
    lease_until = models.FloatField(default=0, help_text="epoch seconds")

    class Meta:
        verbose_name = "OAuth grant"

    def __str__(self):
        return f"OAuth grant of connection {self.connection_id} ({self.state})"
