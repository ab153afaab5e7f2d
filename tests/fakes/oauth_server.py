"""``FakeOAuthServer``: a plain RFC 6749 authorization server with one protected endpoint.

For the parts of the token lifecycle no emulated vendor has yet: client credentials (what
Marketo will use: ``POST /oauth/token`` with ``grant_type=client_credentials``; VENDORS.md §5
[K2]), rotating refresh tokens and refresh tokens with a stated lifetime (Constant Contact,
Salesforce; §2, §4). Endpoints: ``GET /oauth/authorize``, ``POST /oauth/token`` (form body,
RFC 6749 §4.1.3, §6, §4.4), ``POST /oauth/revoke`` (RFC 7009) and ``GET /api/ping`` (a bearer
token, RFC 6750), answering 401 for a token that is expired or unknown.
"""

from __future__ import annotations

from tests.fakes.base import FakeVendor
from tests.fakes.oauth_routes import consent, form_problems, standard_error
from tests.fakes.oauth_store import OAuthError, OAuthStore
from tests.fakes.routing import Auth
from tests.fakes.wire import Request, Response

_GRANTS = {
    "authorization_code": ({"code", "redirect_uri"}, {"code_verifier"}),
    "refresh_token": ({"refresh_token"}, {"scope"}),
    "client_credentials": (set(), {"scope"}),
}


class FakeOAuthServer(FakeVendor):
    name = "oauth"
    auth_hint = "expected 'Authorization: Bearer <access token>' (RFC 6750)"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **store):
        self._store_options = store
        super().__init__(host=host, port=port)

    @property
    def credential(self) -> str:
        return self.store.client_secret

    def reset_store(self) -> None:
        self.store = OAuthStore(prefix="gen", **self._store_options)

    def register_routes(self) -> None:
        self.add_route(
            "GET",
            "/oauth/authorize",
            self._authorize,
            query=frozenset(
                {"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge"}
                | {"code_challenge_method"}
            ),
            public=True,
        )
        self.add_route("POST", "/oauth/token", self._token, validate=self._check, public=True)
        self.add_route("POST", "/oauth/revoke", self._revoke, public=True)
        self.add_route("GET", "/api/ping", lambda req: Response(200, {"ok": True}))

    def authenticate(self, req: Request) -> Auth:
        scheme, _, token = (req.header("authorization") or "").partition(" ")
        if not scheme:
            return Auth.MISSING
        if scheme.lower() != "bearer":
            return Auth.MALFORMED
        return Auth.OK if self.store.valid(token.strip()) else Auth.WRONG

    def unauthorized_response(self, req: Request, auth: Auth) -> Response:
        return Response(401, {"error": "invalid_token"}, headers={"WWW-Authenticate": "Bearer"})

    def not_found_response(self, req: Request, method_not_allowed: bool) -> Response:
        return Response(405 if method_not_allowed else 404, {"error": "not_found"})

    def invalid_response(self, req: Request, problems: list[str]) -> Response:
        return Response(400, {"error": "invalid_request", "error_description": "; ".join(problems)})

    def rate_limited_response(self, req: Request, rate, concurrency: bool) -> Response:
        return Response(429, {"error": "slow_down"}, headers={"Retry-After": "1"})

    def fault_response(self, status: int) -> Response:
        return Response(status, {"error": "server_error"})

    def _check(self, req: Request) -> list[str]:
        grant = req.body.get("grant_type") if isinstance(req.body, dict) else None
        required, optional = _GRANTS.get(grant, (set(), set()))
        problems = form_problems(
            req,
            required={"grant_type", "client_id", "client_secret", *required},
            optional=optional,
            source="(RFC 6749)",
        )
        if grant is not None and grant not in _GRANTS:
            problems.append(f"unknown grant_type {grant!r}")
        return problems

    def _authorize(self, req: Request) -> Response:
        return consent(self.store, req, scopes=req.query.get("scope", "").split())

    def _token(self, req: Request) -> Response:
        form = req.body
        try:
            grant = form.get("grant_type")
            if grant == "authorization_code":
                answer = self.store.exchange_code(form)
            elif grant == "refresh_token":
                answer = self.store.refresh_grant(form)
            else:
                answer = self.store.client_credentials(form)
        except OAuthError as exc:
            return standard_error(exc)
        return Response(200, answer)

    def _revoke(self, req: Request) -> Response:
        self.store.revoke((req.body or {}).get("token", ""))
        return Response(200, None)
