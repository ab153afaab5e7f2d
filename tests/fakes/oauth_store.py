"""``OAuthStore``: the authorization server behind the vendor emulators' OAuth endpoints.

RFC 6749 as the vendors use it: authorization codes (single use, bound to the client, the
redirect URI and, with PKCE (RFC 7636), the code challenge), access tokens that expire,
refresh tokens (optionally rotating: a used one stops working), client credentials, and
revocation (RFC 7009). No HTTP here: each emulator turns requests into calls and errors into
its vendor's error bodies. Errors are ``OAuthError`` with the RFC's codes.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit


class OAuthError(Exception):
    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(description)
        self.code, self.description, self.status = code, description, status


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scopes: list[str]
    challenge: str = ""
    method: str = ""
    used: bool = False


@dataclass
class _Refresh:
    scopes: list[str]
    expires_at: float | None = None
    revoked: bool = False


@dataclass
class _Access:
    scopes: list[str]
    expires_at: float | None
    refresh_token: str = ""


@dataclass
class OAuthStore:
    client_id: str = "test-client-id"
    client_secret: str = "test-client-secret"
    #: Seconds an access token lives (None: forever, as Mailchimp's).
    access_lifetime: int | None = 1800
    issue_refresh_tokens: bool = True
    #: A refresh answers a new refresh token and the used one stops working.
    rotate_refresh_tokens: bool = False
    #: Seconds a refresh token lives, stated as ``refresh_token_expires_in`` (None: unstated).
    refresh_lifetime: int | None = None
    prefix: str = "tok"
    codes: dict[str, _Code] = field(default_factory=dict)
    access: dict[str, _Access] = field(default_factory=dict)
    refresh: dict[str, _Refresh] = field(default_factory=dict)
    #: The next authorization is answered with this error (e.g. "access_denied").
    deny_next: str = ""
    #: Grant these scopes instead of the ones asked for (a user who unticked some).
    grant_only: list[str] | None = None
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def _token(self, kind: str) -> str:
        return f"{self.prefix}-{kind}-{next(self.counter):04d}-{secrets.token_hex(8)}"

    # --- the consent page ----------------------------------------------------------------
    def authorize(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        scopes: list[str],
        state: str,
        challenge: str = "",
        method: str = "",
    ) -> str:
        """Where the browser goes next: the redirect URI with a code, or with an error (the
        person said no). A wrong client or a redirect URI that is not a URL is OAuthError:
        the server shows its own page and sends nobody anywhere (RFC 6749 §4.1.2.1)."""
        if client_id != self.client_id:
            raise OAuthError("invalid_client", f"unknown client_id {client_id!r}")
        if urlsplit(redirect_uri).scheme not in ("http", "https"):
            raise OAuthError("invalid_request", f"redirect_uri {redirect_uri!r} is not a URL")
        if self.deny_next:
            code, self.deny_next = self.deny_next, ""
            params = {"error": code, "error_description": "The user did not grant access"}
        else:
            code_value = secrets.token_urlsafe(16)
            granted = list(self.grant_only) if self.grant_only is not None else list(scopes)
            self.codes[code_value] = _Code(client_id, redirect_uri, granted, challenge, method)
            params = {"code": code_value}
        if state:
            params["state"] = state
        joiner = "&" if "?" in redirect_uri else "?"
        return f"{redirect_uri}{joiner}{urlencode(params)}"

    # --- the token endpoint --------------------------------------------------------------
    def _client(self, form: dict) -> None:
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            raise OAuthError("invalid_client", "client_id or client_secret is wrong", 401)

    def exchange_code(self, form: dict) -> dict:
        self._client(form)
        code = self.codes.get(form.get("code", ""))
        if code is None or code.used:
            raise OAuthError("invalid_grant", "missing, unknown or used authorization code")
        code.used = True
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization's")
        if code.challenge:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            if code.method != "S256" or expected != code.challenge:
                raise OAuthError("invalid_grant", "code_verifier does not match the challenge")
        return self._issue(code.scopes, with_refresh=self.issue_refresh_tokens)

    def refresh_grant(self, form: dict) -> dict:
        self._client(form)
        token = form.get("refresh_token", "")
        refresh = self.refresh.get(token)
        now = time.time()
        if (
            refresh is None
            or refresh.revoked
            or (refresh.expires_at is not None and now >= refresh.expires_at)
        ):
            raise OAuthError("invalid_grant", "missing or invalid refresh token")
        if self.rotate_refresh_tokens:
            refresh.revoked = True
            return self._issue(refresh.scopes, with_refresh=True)
        answer = self._issue(refresh.scopes, with_refresh=False)
        answer["refresh_token"] = token
        self.access[answer["access_token"]].refresh_token = token
        return answer

    def issue_grant(self, scopes: list[str] | None = None) -> dict:
        """The token answer a finished Connect would have had (tests that start connected)."""
        return self._issue(list(scopes or ()), with_refresh=self.issue_refresh_tokens)

    def client_credentials(self, form: dict) -> dict:
        self._client(form)
        return self._issue([], with_refresh=False)

    def _issue(self, scopes: list[str], *, with_refresh: bool) -> dict:
        now = time.time()
        access = self._token("access")
        expires = now + self.access_lifetime if self.access_lifetime else None
        answer = {
            "token_type": "bearer",
            "access_token": access,
            "expires_in": self.access_lifetime or 0,
        }
        refresh = ""
        if with_refresh:
            refresh = self._token("refresh")
            lasts = self.refresh_lifetime
            self.refresh[refresh] = _Refresh(list(scopes), now + lasts if lasts else None)
            answer["refresh_token"] = refresh
            if lasts:
                answer["refresh_token_expires_in"] = lasts
        self.access[access] = _Access(list(scopes), expires, refresh)
        return answer

    # --- using and ending tokens ------------------------------------------------------------
    def valid(self, token: str) -> bool:
        access = self.access.get(token)
        return access is not None and (access.expires_at is None or time.time() < access.expires_at)

    def scopes_of(self, token: str) -> list[str]:
        access = self.access.get(token)
        return list(access.scopes) if access else []

    def revoke(self, token: str) -> None:
        """RFC 7009: the refresh token (or access token) stops working."""
        if token in self.refresh:
            self.refresh[token].revoked = True
        self.access.pop(token, None)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far has expired (time moved on at the vendor)."""
        for access in self.access.values():
            access.expires_at = time.time() - 1

    def revoke_everything(self) -> None:
        """The account's owner removed the app: no token works any more."""
        for refresh in self.refresh.values():
            refresh.revoked = True
        self.access.clear()
