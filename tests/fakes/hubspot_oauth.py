"""HubSpot's OAuth endpoints, as ``FakeHubSpot`` serves them next to the CRM API.

Citations point to the HubSpot source list in /work/shared/VENDORS.md (section 3):

- ``GET /oauth/authorize`` (app.hubspot.com) with ``client_id``, ``scope``, ``redirect_uri``,
  ``state`` and optionally ``optional_scopes`` [H6]; PKCE's ``code_challenge`` since the v3
  token endpoint takes ``code_verifier`` [H7];
- ``POST /oauth/v3/token``, every parameter in the form body [H6][H7]; the answer carries
  ``hub_id`` and ``scopes`` besides the tokens (HubSpot's changelog of 2025-08-18), access
  tokens last 30 minutes [H8] and the refresh token stays the same [H10];
- ``POST /oauth/v3/token/introspect`` and ``/oauth/v3/token/revoke`` [H7]; the introspection
  answers the v1 metadata's fields (hub_domain, user, ...) with ``active``; revoking a refresh
  token leaves issued access tokens working [H10];
- errors: 400 ``{status: BAD_AUTH_CODE | BAD_REFRESH_TOKEN | BAD_CLIENT_ID | BAD_GRANT_TYPE,
  message, correlationId}``, v1's documented shape [H10]; v3's is unconfirmed (emulator
  choice). Revoke answers 204 (emulator choice).
"""

from __future__ import annotations

import uuid

from tests.fakes.oauth_routes import consent, form_problems
from tests.fakes.oauth_store import OAuthError, OAuthStore
from tests.fakes.wire import Request, Response

CLIENT_ID = "hs-client-id"
CLIENT_SECRET = "hs-client-secret"
_AUTHORIZE_QUERY = frozenset(
    {
        "client_id",
        "redirect_uri",
        "scope",
        "optional_scopes",
        "state",
        "response_type",  # not HubSpot's, harmless: social-core sends it (emulator choice)
        "code_challenge",
        "code_challenge_method",
    }
)
_STATUS = {"invalid_client": "BAD_CLIENT_ID", "unsupported_grant_type": "BAD_GRANT_TYPE"}


class HubSpotOAuth:
    """The OAuth side of one FakeHubSpot; ``store`` is its authorization server."""

    hub_id = 62515
    hub_domain = "acme-dev.hubspot.com"
    user = "ida@acme.example"

    def __init__(self, fake, *, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET):
        self.fake = fake
        self.client_id, self.client_secret = client_id, client_secret
        self.reset()

    def reset(self) -> None:
        self.store = OAuthStore(
            client_id=self.client_id, client_secret=self.client_secret, prefix="hs"
        )

    def register(self) -> None:
        add = self.fake.add_route
        add("GET", "/oauth/authorize", self._authorize, query=_AUTHORIZE_QUERY, public=True)
        add("POST", "/oauth/v3/token", self._token, validate=self._check_token, public=True)
        add(
            "POST",
            "/oauth/v3/token/introspect",
            self._introspect,
            validate=self._check_token_form,
            public=True,
        )
        add(
            "POST",
            "/oauth/v3/token/revoke",
            self._revoke,
            validate=self._check_token_form,
            public=True,
        )

    # -- checks ---------------------------------------------------------------------------
    def _check_token(self, req: Request) -> list[str]:
        grant = req.body.get("grant_type") if isinstance(req.body, dict) else None
        required = {"grant_type", "client_id", "client_secret"}
        if grant == "authorization_code":
            required |= {"code", "redirect_uri"}
        elif grant == "refresh_token":
            required |= {"refresh_token"}
        problems = form_problems(
            req,
            required=required,
            optional={"code_verifier", "scope", "redirect_uri"},
            source="[H6][H7]",
        )
        if grant not in ("authorization_code", "refresh_token", None):
            problems.append(f"grant_type {grant!r} is not authorization_code or refresh_token")
        return problems

    def _check_token_form(self, req: Request) -> list[str]:
        return form_problems(
            req,
            required={"client_id", "client_secret", "token"},
            optional={"token_type_hint"},
            source="[H7]",
        )

    # -- handlers -------------------------------------------------------------------------
    def _authorize(self, req: Request) -> Response:
        if req.query.get("code_challenge") and req.query.get("code_challenge_method") != "S256":
            self.fake.violate(req, "code_challenge_method must be S256")
        if "scope" not in req.query:
            self.fake.violate(req, "missing scope [H6]")
        return consent(self.store, req, scopes=req.query.get("scope", "").split())

    def _error(self, exc: OAuthError, grant: str) -> Response:
        status = _STATUS.get(exc.code, "BAD_REQUEST")
        if exc.code == "invalid_grant":
            status = "BAD_REFRESH_TOKEN" if grant == "refresh_token" else "BAD_AUTH_CODE"
        body = {"status": status, "message": exc.description, "correlationId": str(uuid.uuid4())}
        return Response(400, body)

    def _token(self, req: Request) -> Response:
        form, grant = req.body, req.body.get("grant_type", "")
        try:
            if grant == "authorization_code":
                answer = self.store.exchange_code(form)
            elif grant == "refresh_token":
                answer = self.store.refresh_grant(form)
            else:
                raise OAuthError("unsupported_grant_type", f"unknown grant_type {grant!r}")
        except OAuthError as exc:
            return self._error(exc, grant)
        answer.update(hub_id=self.hub_id, scopes=self.store.scopes_of(answer["access_token"]))
        return Response(200, answer)

    def _client_refused(self, form: dict) -> Response | None:
        if (form.get("client_id"), form.get("client_secret")) == (
            self.client_id,
            self.client_secret,
        ):
            return None
        return self._error(OAuthError("invalid_client", "client_id or secret is wrong"), "")

    def _introspect(self, req: Request) -> Response:
        form = req.body
        refused = self._client_refused(form)
        if refused is not None:
            return refused
        token = form.get("token", "")
        if not self.store.valid(token):
            return Response(200, {"active": False})
        access = self.store.access[token]
        return Response(
            200,
            {
                "active": True,
                "token": token,
                "token_use": "access_token",
                "token_type": "access",
                "client_id": self.client_id,
                "app_id": 4711,
                "hub_id": self.hub_id,
                "hub_domain": self.hub_domain,
                "user": self.user,
                "user_id": 1234,
                "scopes": list(access.scopes),
                "expires_in": 1800,
                "is_private_distribution": False,
            },
        )

    def _revoke(self, req: Request) -> Response:
        refused = self._client_refused(req.body)
        if refused is not None:
            return refused
        self.store.revoke(req.body.get("token", ""))
        return Response(204)
