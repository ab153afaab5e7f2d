"""Constant Contact's OAuth endpoints (authz.constantcontact.com/oauth2/default/v1), as
``FakeConstantContact`` serves them beside its V3 API.

Citations point to the Constant Contact source list in /work/shared/VENDORS.md (section 2):

- ``GET /oauth2/default/v1/authorize``: the authorization code flow with PKCE [C5]; a
  request without an S256 ``code_challenge`` is a violation and is refused (emulator choice:
  CC offers flows without PKCE, our connector must not use them);
- ``POST /oauth2/default/v1/token``, a form body, the client authenticated by HTTP Basic
  ``base64(client_id:client_secret)`` [C5]. Exactly one shape is accepted: the client
  credentials in the form body as well (or instead) are a violation (emulator choice, so that
  the connector is held to one clear way);
- grants ``authorization_code`` (code, redirect_uri, code_verifier) and ``refresh_token``;
  the answer has ``access_token, refresh_token, token_type, expires_in, scope``; the access
  token lives 24 h [C9]; a refresh token comes only with ``offline_access`` [C7]; refresh
  tokens rotate: each refresh answers a new one and the used one stops working [C9];
- ``POST /oauth2/default/v1/revoke`` (RFC 7009), form ``token`` and ``token_type_hint``,
  Basic client authentication as for the token endpoint (emulator choice, as Okta does).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from tests.fakes.oauth_routes import consent, form_problems, standard_error
from tests.fakes.oauth_store import OAuthError, OAuthStore, _Refresh
from tests.fakes.wire import Request, Response

if TYPE_CHECKING:
    from tests.fakes.base import FakeVendor

CLIENT_ID = "cc-client-id"
CLIENT_SECRET = "cc-client-secret"
OAUTH_ROOT = "/oauth2/default/v1"
AUTHORIZE_PATH = f"{OAUTH_ROOT}/authorize"
TOKEN_PATH = f"{OAUTH_ROOT}/token"
REVOKE_PATH = f"{OAUTH_ROOT}/revoke"
ACCESS_SECONDS = 86_400  # a fixed 24 h [C9]
SCOPES = frozenset({"account_read", "account_update", "contact_data", "campaign_data"}) | {
    "offline_access"
}  # [C7]
#: A refresh token the demo's connection starts with (``credential``).
DEMO_REFRESH_TOKEN = "cc-demo-refresh-token"
_AUTHORIZE_QUERY = frozenset(
    {"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge"}
    | {"code_challenge_method"}
)
_GRANTS = {
    "authorization_code": {"code", "redirect_uri", "code_verifier"},
    "refresh_token": {"refresh_token"},
}
_BASIC_HINT = "authenticate the client by HTTP Basic base64(client_id:client_secret) [C5]"


def basic_credentials(req: Request) -> tuple[str, str] | None:
    """The client id and secret of an ``Authorization: Basic`` header, or None."""
    scheme, _, encoded = (req.header("authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (client_id, secret) if colon else None


class ConstantContactOAuth:
    """The OAuth side of ``FakeConstantContact``; ``store`` is its authorization server."""

    def __init__(self, fake: FakeVendor, *, client_id: str, client_secret: str) -> None:
        self.fake = fake
        self.client_id, self.client_secret = client_id, client_secret
        self.reset()

    def reset(self) -> None:
        self.store = OAuthStore(
            client_id=self.client_id,
            client_secret=self.client_secret,
            access_lifetime=ACCESS_SECONDS,
            rotate_refresh_tokens=True,
            prefix="cc",
        )
        self.store.refresh[DEMO_REFRESH_TOKEN] = _Refresh(sorted(SCOPES - {"campaign_data"}))

    def register(self) -> None:
        add = self.fake.add_route
        add(
            "GET",
            AUTHORIZE_PATH,
            self._authorize,
            validate=self._check_authorize,
            query=_AUTHORIZE_QUERY,
            public=True,
        )
        add("POST", TOKEN_PATH, self._token, validate=self._check_token, public=True)
        add("POST", REVOKE_PATH, self._revoke, validate=self._check_revoke, public=True)

    # -- checks (violations) --------------------------------------------------------------
    def _check_authorize(self, req: Request) -> list[str]:
        query = req.query
        problems = [
            f"missing query parameter {name!r} [C5]"
            for name in ("client_id", "redirect_uri", "scope", "state", "code_challenge")
            if not query.get(name)
        ]
        if query.get("response_type") != "code":
            problems.append("response_type must be code (the authorization code flow [C5])")
        if query.get("code_challenge") and query.get("code_challenge_method") != "S256":
            problems.append("code_challenge_method must be S256 (PKCE [C5])")
        unknown = sorted(set(query.get("scope", "").split()) - SCOPES)
        if unknown:
            problems.append(
                f"unknown scopes {unknown} (Constant Contact's are {sorted(SCOPES)} [C7])"
            )
        return problems

    def _check_client(self, req: Request) -> list[str]:
        header = req.header("authorization")
        if header is None:
            return [f"no Authorization header: {_BASIC_HINT}"]
        if basic_credentials(req) is None:
            return [f"malformed Authorization header: {_BASIC_HINT}"]
        return []

    def _check_token(self, req: Request) -> list[str]:
        grant = req.body.get("grant_type") if isinstance(req.body, dict) else None
        required = {"grant_type", *_GRANTS.get(grant or "", set())}
        problems = form_problems(req, required=required, source="[C5]")
        if grant is not None and grant not in _GRANTS:
            problems.append(f"grant_type {grant!r} is not authorization_code or refresh_token")
        return problems + self._check_client(req)

    def _check_revoke(self, req: Request) -> list[str]:
        problems = form_problems(
            req, required={"token"}, optional={"token_type_hint"}, source="(RFC 7009)"
        )
        return problems + self._check_client(req)

    # -- handlers -------------------------------------------------------------------------
    def _authorize(self, req: Request) -> Response:
        return consent(self.store, req, scopes=req.query.get("scope", "").split())

    def _form(self, req: Request) -> dict[str, str]:
        """The form with the Basic credentials, as ``OAuthStore`` takes them."""
        client_id, secret = basic_credentials(req) or ("", "")
        return {**req.body, "client_id": client_id, "client_secret": secret}

    def _token(self, req: Request) -> Response:
        form = self._form(req)
        try:
            if form["grant_type"] == "authorization_code":
                answer = self.store.exchange_code(form)
            else:
                answer = self.store.refresh_grant(form)
        except OAuthError as exc:
            return standard_error(exc)
        token = answer["access_token"]
        scopes = self.store.scopes_of(token)
        body = {
            "token_type": "Bearer",
            "expires_in": ACCESS_SECONDS,
            "access_token": token,
            "scope": " ".join(scopes),
        }
        if "offline_access" in scopes:  # no refresh token without it [C7]
            body["refresh_token"] = answer["refresh_token"]
        else:
            self.store.refresh.pop(answer.get("refresh_token", ""), None)
        return Response(200, body)

    def _revoke(self, req: Request) -> Response:
        try:
            self.store._client(self._form(req))
        except OAuthError as exc:
            return standard_error(exc)
        self.store.revoke(req.body["token"])
        return Response(200, None)
