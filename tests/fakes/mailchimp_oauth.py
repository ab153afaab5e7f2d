"""Mailchimp's OAuth endpoints (login.mailchimp.com), as ``FakeMailchimp`` serves them.

Citations point to the Mailchimp source list in /work/shared/VENDORS.md (section 1):

- ``GET /oauth2/authorize`` with ``response_type=code``, ``client_id``, ``redirect_uri``
  (and ``state``) [M3][P3]; Mailchimp has no scopes [M3];
- ``POST /oauth2/token``, form-encoded ``grant_type=authorization_code``, ``client_id``,
  ``client_secret``, ``redirect_uri``, ``code`` [M3]; the token never expires and comes without
  a refresh token (``expires_in: 0``, ``scope: null``) [M3][M2];
- ``GET /oauth2/metadata`` with ``Authorization: OAuth <token>`` [P3], answering the account's
  ``dc``, ``accountname``, ``user_id``, ``login`` and ``api_endpoint`` [M3]; the emulator's
  ``api_endpoint`` is its own address;
- no refresh and no revoke endpoint [M3]: ``revoke_everything`` is the account's owner removing
  the app. Errors are RFC 6749's ``{error, error_description}`` (emulator choice).
"""

from __future__ import annotations

from tests.fakes.oauth_routes import consent, form_problems, standard_error
from tests.fakes.oauth_store import OAuthError, OAuthStore
from tests.fakes.wire import Request, Response

CLIENT_ID = "mc-client-id"
CLIENT_SECRET = "mc-client-secret"


class MailchimpOAuth:
    dc = "us14"
    accountname = "Acme Newsletters"
    user_id = 4242

    def __init__(self, fake, *, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET):
        self.fake = fake
        self.client_id, self.client_secret = client_id, client_secret
        self.reset()

    def reset(self) -> None:
        self.store = OAuthStore(
            client_id=self.client_id,
            client_secret=self.client_secret,
            prefix="mc",
            access_lifetime=None,
            issue_refresh_tokens=False,
        )

    def register(self) -> None:
        add = self.fake.add_route
        add(
            "GET",
            "/oauth2/authorize",
            self._authorize,
            query=frozenset({"response_type", "client_id", "redirect_uri", "state"}),
            public=True,
        )
        add("POST", "/oauth2/token", self._token, validate=self._check_token, public=True)
        add("GET", "/oauth2/metadata", self._metadata, public=True)

    def bearer_ok(self, token: str) -> bool:
        return self.store.valid(token)

    def _authorize(self, req: Request) -> Response:
        if req.query.get("response_type") != "code":
            self.fake.violate(req, "response_type must be code [M3]")
        return consent(self.store, req, scopes=[])

    def _check_token(self, req: Request) -> list[str]:
        problems = form_problems(
            req,
            required={"grant_type", "client_id", "client_secret", "redirect_uri", "code"},
            source="[M3]",
        )
        grant = req.body.get("grant_type") if isinstance(req.body, dict) else None
        if grant not in ("authorization_code", None):
            problems.append(f"grant_type {grant!r}: Mailchimp has only authorization_code [M3]")
        return problems

    def _token(self, req: Request) -> Response:
        try:
            answer = self.store.exchange_code(req.body)
        except OAuthError as exc:
            return standard_error(exc)
        return Response(
            200, {"access_token": answer["access_token"], "expires_in": 0, "scope": None}
        )

    def _metadata(self, req: Request) -> Response:
        scheme, _, token = (req.header("authorization") or "").partition(" ")
        if scheme != "OAuth":
            self.fake.violate(req, "the metadata call takes 'Authorization: OAuth <token>' [P3]")
        if not self.store.valid(token.strip()):
            return Response(401, {"error": "invalid_token", "error_description": "bad token"})
        return Response(
            200,
            {
                "dc": self.dc,
                "role": "owner",
                "accountname": self.accountname,
                "user_id": self.user_id,
                "login": {
                    "email": "ida@acme.example",
                    "avatar": None,
                    "login_id": 99,
                    "login_name": "ida",
                    "login_email": "ida@acme.example",
                },
                "login_url": "https://login.mailchimp.com",
                "api_endpoint": self.fake.url,
            },
        )
