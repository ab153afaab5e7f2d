"""social-core's OAuth2 backends, glued to one connection.

A connector's backend is social-core's backend for its vendor (``HubSpotOAuth2``,
``MailChimpOAuth2``, ...) under ``ConnectBackend``, which changes four things and nothing else:

1. its settings come from the connector's flow and from ``MKT_OAUTH_CLIENTS``, never from the
   ``SOCIAL_AUTH_*`` settings (those belong to staff SSO);
2. its endpoints follow the connection's base_url override (``flows.endpoint``);
3. its requests go through the one HTTP client (address guard, host allow-list, an outbound
   log row without query string or body);
4. a completed flow returns the token answer and the account's data instead of signing
   anybody in.

The ``state`` (bound to the session, single use, expiring after MKT_OAUTH_STATE_MINUTES) and
PKCE are social-core's own (``BaseOAuth2`` and ``BaseOAuth2PKCE``), through social_django's
``DjangoStrategy`` and its ``Nonce`` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from social_core.backends.oauth import BaseOAuth2PKCE
from social_core.utils import http_error
from social_django.models import DjangoStorage
from social_django.strategy import DjangoStrategy

from integrations.oauth.flows import endpoint, endpoint_hosts
from mktintegration.http import HttpClient, HTTPError

URL_ATTRIBUTES = (
    "AUTHORIZATION_URL",
    "ACCESS_TOKEN_URL",
    "REVOKE_TOKEN_URL",
    "METADATA_URL",
    "INTROSPECT_URL",
)
TOKEN_TIMEOUT = (5.0, 20.0)  # connect, read: a token endpoint answers quickly or not at all
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


@dataclass(frozen=True)
class TokenAnswer:
    """What a token endpoint said, with what the vendor told about the account."""

    access_token: str
    refresh_token: str = ""
    expires_in: float | None = None  # seconds; None: the token does not expire
    refresh_expires_in: float | None = None  # seconds the refresh token lasts, when stated
    scopes: tuple[str, ...] | None = None  # None: the answer did not say
    account_id: str = ""
    account_name: str = ""
    region: str = ""
    api_endpoint: str = ""


def connect_strategy(request=None) -> DjangoStrategy:
    """social_django's strategy: the session (state, PKCE verifier) and the Nonce table."""
    return DjangoStrategy(DjangoStorage, request)


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


class ConnectBackend(BaseOAuth2PKCE):
    """The glue; a vendor's backend is ``class X(ConnectBackend, <social-core backend>)``."""

    name = "connect"
    REDIRECT_STATE = False  # the redirect URI is registered at the vendor exactly as sent

    def __init__(self, strategy, redirect_uri=None, *, connection, flow, secrets=None):
        self.connection = connection
        self.flow = flow
        self.secrets = dict(secrets or {})
        for attribute in URL_ATTRIBUTES:
            declared = self.declared_url(attribute)
            if declared:
                setattr(self, attribute, endpoint(declared, connection=connection, flow=flow))
        self.http = HttpClient(
            vendor=connection.vendor,
            connection_id=connection.pk,
            allowed_hosts=endpoint_hosts(*(getattr(self, a, "") or "" for a in URL_ATTRIBUTES)),
            timeout=TOKEN_TIMEOUT,
        )
        super().__init__(strategy, redirect_uri)

    def declared_url(self, attribute: str) -> str:
        """The vendor's endpoint ``attribute`` names (``ACCESS_TOKEN_URL``...): the class's,
        or one built from the connection (``self.connection`` is set): a Salesforce login host
        (sandboxes), Marketo's Munchkin host."""
        return getattr(type(self), attribute, "") or ""

    # --- 1. settings ---------------------------------------------------------------------
    def setting(self, name: str, default=None):
        key, secret = self.client_id_and_secret()
        own = {
            "KEY": key,
            "SECRET": secret,
            "SCOPE": list(self.flow.scopes),
            "IGNORE_DEFAULT_SCOPE": True,
            "USE_PKCE": self.flow.pkce,
            "STATE_LIFETIME": settings.MKT_OAUTH_STATE_MINUTES * 60,
        }
        return own.get(name, default)

    def client_id_and_secret(self) -> tuple[str, str]:
        return self.flow.client_id_and_secret()

    # --- 3. requests ---------------------------------------------------------------------
    def request(
        self,
        url,
        *,
        method="GET",
        headers=None,
        data=None,
        json=None,
        auth=None,
        params=None,
        timeout=None,
        stage="user_info",
    ):
        """Through the one HTTP client. A transport failure is its ConnectorError; an error
        answer is social-core's exception for it (``invalid_grant``: AuthCredentialError)."""
        response = self.http.request(
            method, url, headers=dict(headers or {}), data=data, json=json, auth=auth, params=params
        )
        if response.status_code >= 400:
            raise http_error(self, HTTPError(response=response), stage=stage)
        return response

    # --- 4. no sign-in -------------------------------------------------------------------
    def do_auth(self, access_token, *args, **kwargs):
        response = kwargs.get("response") or {}
        response.update(self.user_data(access_token, *args, **kwargs) or {})
        response.setdefault("access_token", access_token)
        return response

    # --- what the lifecycle asks -----------------------------------------------------------
    def token_answer(self, response: dict) -> TokenAnswer:
        """The standard fields of a token answer (RFC 6749 §5.1); vendors add the account's."""
        scopes = response.get("scopes", response.get("scope"))
        if isinstance(scopes, str):
            scopes = tuple(scopes.split())
        elif isinstance(scopes, list):
            scopes = tuple(str(scope) for scope in scopes)
        else:
            scopes = None
        return TokenAnswer(
            access_token=str(response["access_token"]),
            refresh_token=str(response.get("refresh_token") or ""),
            expires_in=_seconds(response.get("expires_in")),
            refresh_expires_in=_seconds(response.get("refresh_token_expires_in")),
            scopes=scopes,
        )

    def refresh(self, refresh_token: str) -> TokenAnswer:
        """A new access token for the refresh token (social-core's refresh request)."""
        return self.token_answer(self.refresh_token(refresh_token))

    def client_auth(self) -> tuple[str, str] | None:
        """How the app authenticates on the refresh and the revoke: None (the vendor's form
        parameters say who it is), or the (client id, secret) pair sent as HTTP Basic."""
        return None

    def refresh_token_auth(self):
        return self.client_auth()

    def revoke(self, token: str) -> None:
        """Revoke the token at the vendor, every parameter in the form body (RFC 7009)."""
        self.request(
            self.REVOKE_TOKEN_URL,
            method="POST",
            data=self.revoke_token_params(token, None),
            headers=FORM_HEADERS,
            auth=self.client_auth(),
            stage="disconnect",
        )


class ClientCredentialsBackend(ConnectBackend):
    """Client credentials: the connection's own client id and secret buy the token."""

    name = "client-credentials"

    def client_id_and_secret(self) -> tuple[str, str]:
        return self.secrets.get("client_id", ""), self.secrets.get("client_secret", "")

    def fetch(self) -> TokenAnswer:
        key, secret = self.client_id_and_secret()
        response = self.request_access_token(
            self.access_token_url(),
            method="POST",
            headers=FORM_HEADERS,
            data={"grant_type": "client_credentials", "client_id": key, "client_secret": secret},
            stage="token_exchange",
        )
        self.get_access_token(response)
        return self.token_answer(response)
