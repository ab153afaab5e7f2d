"""Salesforce OAuth (the web server flow), for Salesforce and for Account Engagement (Pardot),
which authenticates with the same endpoints and an app holding the ``pardot_api`` scope.

Facts from ../shared/VENDORS.md §0, §4 and §6: social-core's ``SalesforceOAuth2`` [P2] with
its endpoints on ``login.salesforce.com`` (``test.salesforce.com`` for sandboxes, or the
org's My Domain) [S3]; the token answer has ``instance_url`` and ``id`` (the identity URL,
``/id/{org id}/{user id}``) but no ``expires_in``: an access token lasts the session timeout
(2 h by default) without saying so, so it is renewed after the 401 ``INVALID_SESSION_ID`` it
ends with [S2][S6]; refresh-token rotation may be on for the app (the new refresh token is
then stored before the old could be used again) [S6].
"""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

from social_core.backends.salesforce import SalesforceOAuth2
from social_core.exceptions import SocialAuthBaseException

from integrations.oauth.backends import ConnectBackend
from integrations.oauth.flows import AuthorizationCode, endpoint
from mktintegration.errors import ConnectorError

PRODUCTION_LOGIN = "login.salesforce.com"
SANDBOX_LOGIN = "test.salesforce.com"
_MY_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.sandbox)?\.my\.salesforce\.com$")
_IDENTITY = re.compile(r"/id/(?P<org>\w+)/(?P<user>\w+)/?$")


def login_host_problem(host: str) -> str | None:
    """Why ``host`` cannot be a Salesforce login host, or None."""
    if host in (PRODUCTION_LOGIN, SANDBOX_LOGIN) or _MY_DOMAIN.match(host or ""):
        return None
    return (
        f"login_host {host!r} is not {PRODUCTION_LOGIN} (production), {SANDBOX_LOGIN} "
        "(sandboxes) or a My Domain host (<name>.my.salesforce.com, "
        "<name>--<sandbox>.sandbox.my.salesforce.com)"
    )


class SalesforceConnect(ConnectBackend, SalesforceOAuth2):
    """social-core's Salesforce backend, at the connection's login host."""

    name = "connect-salesforce"

    def declared_url(self, attribute: str) -> str:
        url = super().declared_url(attribute)
        host = str((self.connection.config or {}).get("login_host") or PRODUCTION_LOGIN)
        if not url or login_host_problem(host):
            return url
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))

    def user_data(self, access_token, *args, **kwargs):
        """The user and org from the identity URL, with the token as a bearer header (not in
        the query string as social-core sends it). Only a courtesy: a failure leaves the
        account named by the org id alone."""
        url = (kwargs.get("response") or {}).get("id") or ""
        if not url:
            return {}
        url = endpoint(url, connection=self.connection, flow=self.flow)
        try:
            return self.get_json(url, headers={"Authorization": f"Bearer {access_token}"})
        except (ConnectorError, SocialAuthBaseException, ValueError):
            return {}

    def revoke_token_params(self, token, uid):
        return {"token": token}

    def get_provider_error(self, data, **kwargs):
        if isinstance(data, dict) and data.get("error") == "invalid_client_id":
            data = {**data, "error": "invalid_client"}
        return super().get_provider_error(data, **kwargs)

    def token_answer(self, response):
        """The org (from the identity URL), the user, and the instance the API is at."""
        answer = super().token_answer(response)
        identity = _IDENTITY.search(urlsplit(str(response.get("id") or "")).path)
        return replace(
            answer,
            account_id=identity["org"] if identity else "",
            account_name=str(response.get("username") or ""),
            api_endpoint=str(response.get("instance_url") or "").rstrip("/"),
        )


def salesforce_flow(scopes: tuple[str, ...]) -> AuthorizationCode:
    """The Connect flow for a Salesforce org: this installation's External Client App
    (MKT_SALESFORCE_CLIENT_ID/_SECRET), PKCE, rotating refresh tokens allowed for."""
    return AuthorizationCode(
        backend=SalesforceConnect,
        client="salesforce",
        scopes=scopes,
        pkce=True,
        rotates_refresh_tokens=False,
    )
