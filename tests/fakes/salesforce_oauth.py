"""Salesforce's OAuth endpoints (login.salesforce.com), as ``FakeSalesforce`` and ``FakePardot``
serve them (Pardot authenticates with Salesforce's OAuth, VENDORS.md §6 [A2]).

Citations point to the Salesforce source list in /work/shared/VENDORS.md (section 4):

- ``GET /services/oauth2/authorize`` with ``response_type=code``, ``client_id``,
  ``redirect_uri``, ``scope``, ``state``, and optionally PKCE's ``code_challenge`` [S3][S4];
- ``POST /services/oauth2/token``, form-encoded (authorization code or refresh token) [S3]; the
  answer has ``access_token, refresh_token, instance_url, id, issued_at, signature,
  token_type, scope`` [S2] and no ``expires_in``: the token lasts the session timeout (2 h by
  default [S6]) without saying so; a refresh answers no new refresh token unless rotation is
  on, and then the used one stops working [S6];
- ``POST /services/oauth2/revoke`` [S3]; the identity URL (``id``) answers the user and org;
- errors: RFC 6749's ``{error, error_description}``; an unknown client is
  ``invalid_client_id`` (emulator choice, as Salesforce names it).
"""

from __future__ import annotations

import hashlib
import time

from tests.fakes.oauth_routes import consent, form_problems, standard_error
from tests.fakes.oauth_store import OAuthError, OAuthStore
from tests.fakes.wire import Request, Response

CLIENT_ID = "sf-client-id"
CLIENT_SECRET = "sf-client-secret"
ORG_ID = "00D000000000001AAA"
USER_ID = "005000000000001AAA"
TOKEN_PATH = "/services/oauth2/token"
_AUTHORIZE_QUERY = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "prompt",
        "login_hint",
    }
)


class SalesforceOAuth:
    """The OAuth side of one emulator; ``store`` is its authorization server."""

    username = "ida@acme.example"

    def __init__(
        self,
        fake,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        session_seconds: int = 7200,
        rotate: bool = False,
    ):
        self.fake = fake
        self.client_id, self.client_secret = client_id, client_secret
        self.session_seconds, self.rotate = session_seconds, rotate
        self.reset()

    def reset(self) -> None:
        self.store = OAuthStore(
            client_id=self.client_id,
            client_secret=self.client_secret,
            access_lifetime=self.session_seconds,
            rotate_refresh_tokens=self.rotate,
            prefix="00D!sf",
        )

    def register(self) -> None:
        add = self.fake.add_route
        add("GET", "/services/oauth2/authorize", self._authorize, query=_AUTHORIZE_QUERY,
            public=True)  # fmt: skip
        add("POST", TOKEN_PATH, self._token, validate=self._check_token, public=True)
        add("POST", "/services/oauth2/revoke", self._revoke, validate=self._check_revoke,
            public=True)  # fmt: skip
        add("GET", r"/id/(?P<org>\w+)/(?P<user>\w+)", self._identity)

    # -- checks ---------------------------------------------------------------------------
    def _check_token(self, req: Request) -> list[str]:
        grant = req.body.get("grant_type") if isinstance(req.body, dict) else None
        required = {"grant_type", "client_id", "client_secret"}
        if grant == "authorization_code":
            required |= {"code", "redirect_uri"}
        elif grant == "refresh_token":
            required |= {"refresh_token"}
        problems = form_problems(
            req, required=required, optional={"code_verifier", "format"}, source="[S3]"
        )
        if grant not in ("authorization_code", "refresh_token", None):
            problems.append(f"grant_type {grant!r} is not authorization_code or refresh_token")
        return problems

    def _check_revoke(self, req: Request) -> list[str]:
        return form_problems(req, required={"token"}, source="[S3]")

    # -- handlers -------------------------------------------------------------------------
    def _authorize(self, req: Request) -> Response:
        if req.query.get("response_type") != "code":
            self.fake.violate(req, "response_type must be code (the web server flow [S3])")
        if req.query.get("code_challenge") and req.query.get("code_challenge_method") != "S256":
            self.fake.violate(req, "code_challenge_method must be S256")
        return consent(self.store, req, scopes=req.query.get("scope", "").split())

    def answer(self, answer: dict) -> dict:
        """A token answer in Salesforce's shape [S2]: no ``expires_in``."""
        token = answer["access_token"]
        body = {
            "access_token": token,
            "signature": hashlib.sha256(token.encode()).hexdigest()[:44],
            "scope": " ".join(self.store.scopes_of(token)),
            "instance_url": self.fake.url,
            "id": f"{self.fake.url}/id/{ORG_ID}/{USER_ID}",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
        }
        if answer.get("refresh_token"):
            body["refresh_token"] = answer["refresh_token"]
        return body

    def _token(self, req: Request) -> Response:
        form, grant = req.body, req.body.get("grant_type", "")
        try:
            if grant == "authorization_code":
                answer = self.store.exchange_code(form)
            elif grant == "refresh_token":
                answer = self.store.refresh_grant(form)
                if not self.rotate:
                    answer.pop("refresh_token", None)  # the same one stays in use [S6]
            else:
                raise OAuthError("unsupported_grant_type", f"grant type {grant} not supported")
        except OAuthError as exc:
            if exc.code == "invalid_client":
                exc = OAuthError("invalid_client_id", "client identifier invalid", 400)
            elif exc.code == "invalid_grant":
                exc = OAuthError("invalid_grant", "expired access/refresh token", 400)
            return standard_error(exc)
        return Response(200, self.answer(answer))

    def _revoke(self, req: Request) -> Response:
        self.store.revoke(req.body.get("token", ""))
        return Response(200, None)

    def _identity(self, req: Request) -> Response:
        return Response(
            200,
            {
                "id": f"{self.fake.url}/id/{ORG_ID}/{USER_ID}",
                "organization_id": ORG_ID,
                "user_id": USER_ID,
                "username": self.username,
                "display_name": "Ida Admin",
                "email": self.username,
                "active": True,
            },
        )

    def valid(self, token: str) -> bool:
        return self.store.valid(token)
