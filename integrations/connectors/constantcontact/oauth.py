"""Constant Contact's OAuth 2.0: the authorization code flow with PKCE and rotating refresh
tokens, on Constant Contact's own authorization server (social-core has no backend for it,
VENDORS.md §0 [P4]; this one has the shape of the others: ``ConnectBackend`` glue on
social-core's ``BaseOAuth2PKCE``).

Facts from ../shared/VENDORS.md §2: authorize and token at
``authz.constantcontact.com/oauth2/default/v1/`` [C5]; the app's client id and secret (the
developer portal's "API key" is the client id [C3][C4]) sent as HTTP Basic on the token
requests [C5]; scopes ``account_read``, ``contact_data`` and ``offline_access`` (without it no
refresh token) [C7]; access tokens last 24 h; refresh tokens rotate (each refresh answers a new
one and the used one stops working) when the app is set so, and expire after 180 days unused
[C9]. The account is named by ``GET /v3/account/summary`` [C1].
"""

from __future__ import annotations

from dataclasses import replace

from social_core.exceptions import SocialAuthBaseException

from integrations.oauth.backends import ConnectBackend
from mktintegration.errors import ConnectorError

AUTHZ = "https://authz.constantcontact.com/oauth2/default/v1"
API_ROOT = "https://api.cc.email/v3"
SCOPES = ("account_read", "contact_data", "offline_access")


class ConstantContactConnect(ConnectBackend):
    name = "connect-constantcontact"
    AUTHORIZATION_URL = f"{AUTHZ}/authorize"
    ACCESS_TOKEN_URL = f"{AUTHZ}/token"
    REVOKE_TOKEN_URL = f"{AUTHZ}/revoke"
    METADATA_URL = f"{API_ROOT}/account/summary"
    ACCESS_TOKEN_METHOD = "POST"  # noqa: S105 - an HTTP method
    REFRESH_TOKEN_METHOD = "POST"  # noqa: S105 - an HTTP method
    REVOKE_TOKEN_METHOD = "POST"  # noqa: S105 - an HTTP method
    SCOPE_SEPARATOR = " "
    USE_BASIC_AUTH = True  # the client id and secret as HTTP Basic, never in the form [C5]

    def refresh_token_params(self, token, *args, **kwargs):
        return {"grant_type": "refresh_token", "refresh_token": token}

    def client_auth(self):
        return self.client_id_and_secret()  # requests sends a (user, password) pair as Basic

    def revoke_token_params(self, token, uid):
        return {"token": token, "token_type_hint": "refresh_token"}

    def user_data(self, access_token, *args, **kwargs):
        """The account's id and name; only a courtesy (a failure leaves them unnamed)."""
        try:
            return self.get_json(
                self.METADATA_URL, headers={"Authorization": f"Bearer {access_token}"}
            )
        except (ConnectorError, SocialAuthBaseException, ValueError):
            return {}

    def token_answer(self, response):
        return replace(
            super().token_answer(response),
            account_id=str(response.get("encoded_account_id") or ""),
            account_name=str(response.get("organization_name") or ""),
        )
