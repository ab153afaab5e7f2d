"""What a connector declares about its tokens: ``token_flows = {auth kind: flow}``.

Two flows share one lifecycle (``integrations.oauth.tokens``):

- ``AuthorizationCode``: a person connects the connection in the admin (Connect, the vendor's
  consent page, our callback). The app's client id and secret are ours, from settings
  (``MKT_OAUTH_CLIENTS``). Access tokens that expire are refreshed with the refresh token.
- ``ClientCredentials``: the connection itself holds a client id and secret (typed in like any
  secret); the access token is fetched from the token endpoint whenever it is due.

Either way a token that is due is renewed before use, and a token the vendor refuses (401) is
renewed once and the request sent once more (``Connector.send``).

The endpoints are the backend's (social-core's, or ours of the same shape). They follow the
connection's ``base_url`` override when it names an emulator (a host allowed by
``MKT_HTTP_ALLOW_PRIVATE_HOSTS``) or one of the flow's ``sandbox_hosts``; an override that is
the vendor's own API host (a Mailchimp data centre) leaves them as declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from mktintegration import netguard

AUTHORIZATION_CODE = "authorization_code"
CLIENT_CREDENTIALS = "client_credentials"


@dataclass(frozen=True)
class AuthorizationCode:
    """OAuth 2.0 authorization code (RFC 6749 §4.1), with PKCE when ``pkce``."""

    backend: type  # an integrations.oauth.backends.ConnectBackend subclass
    client: str  # the key of settings.MKT_OAUTH_CLIENTS holding the app's id and secret
    scopes: tuple[str, ...] = ()  # asked for, and all of them required in the grant
    pkce: bool = False
    # Whether access tokens expire and come with a refresh token (HubSpot), or never expire
    # and come alone (Mailchimp).
    refreshes: bool = True
    # Whether a refresh answer's new refresh token makes the old one invalid. A new refresh
    # token is always stored before the old one could be used again; a rotating one is also
    # never renewed inside a transaction that might roll the new one back.
    rotates_refresh_tokens: bool = False
    # What the configure API may give instead of a Connect (infrastructure as code).
    seed_secrets: tuple[str, ...] = ("refresh_token",)
    sandbox_hosts: tuple[str, ...] = ()
    renew_margin_seconds: ClassVar[float | None] = None
    kind: ClassVar[str] = AUTHORIZATION_CODE
    secret_fields: ClassVar[tuple[str, ...]] = ()  # nothing is typed in: tokens come by Connect

    @property
    def renewable(self) -> bool:
        return self.refreshes

    @property
    def revokes(self) -> bool:
        return bool(self.backend.REVOKE_TOKEN_URL)

    def client_id_and_secret(self) -> tuple[str, str]:
        client = settings.MKT_OAUTH_CLIENTS.get(self.client) or {}
        return client.get("client_id", ""), client.get("client_secret", "")

    def configured(self) -> bool:
        return all(self.client_id_and_secret())

    def setting_names(self) -> str:
        prefix = f"MKT_{self.client.upper()}"
        return f"{prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET"


@dataclass(frozen=True)
class ClientCredentials:
    """OAuth 2.0 client credentials (RFC 6749 §4.4): two-legged, no person involved."""

    backend: type  # an integrations.oauth.backends.ClientCredentialsBackend subclass
    secret_fields: tuple[str, ...] = ("client_id", "client_secret")
    sandbox_hosts: tuple[str, ...] = ()
    # Seconds before its expiry a token is renewed (None: MKT_OAUTH_REFRESH_MARGIN_SECONDS).
    # 0 for vendors that answer a token request with the same token until it expires
    # (Marketo [K2]): it is used to its end, and a refusal then buys the next one.
    renew_margin_seconds: float | None = None
    kind: ClassVar[str] = CLIENT_CREDENTIALS
    seed_secrets: ClassVar[tuple[str, ...]] = ()
    scopes: ClassVar[tuple[str, ...]] = ()
    pkce: ClassVar[bool] = False
    rotates_refresh_tokens: ClassVar[bool] = False
    revokes: ClassVar[bool] = False

    @property
    def renewable(self) -> bool:
        return True


TokenFlow = AuthorizationCode | ClientCredentials


def flow_for(connection) -> TokenFlow | None:
    """The token flow of the connection's auth kind, or None (a static secret)."""
    from integrations.connectors import REGISTRY

    connector = REGISTRY.get(connection.vendor)
    return connector.token_flows.get(connection.auth_kind) if connector else None


def endpoint(url: str, *, connection, flow: TokenFlow) -> str:
    """``url`` moved to the origin of the connection's base_url override when the override is
    an emulator or a sandbox of the flow, else ``url`` as declared."""
    if not url or not connection.base_url:
        return url
    override = urlsplit(connection.base_url)
    host = (override.hostname or "").lower()
    if not (netguard.host_is_allow_listed(host) or host in flow.sandbox_hosts):
        return url
    parts = urlsplit(url)
    return urlunsplit((override.scheme, override.netloc, parts.path, parts.query, ""))


def endpoint_hosts(*urls: str) -> tuple[str, ...]:
    """The hosts of these URLs (the HTTP client's allow-list for the flow's requests)."""
    return tuple(sorted({(urlsplit(url).hostname or "").lower() for url in urls if url}))
