"""DRF authentication and permission classes shared by every API."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from mktintegration.tokens import TokenError, token_authenticate


def client_address(request) -> str | None:
    # Behind the proxy, REMOTE_ADDR is the proxy; the proxy must overwrite X-Forwarded-For.
    return request.META.get("REMOTE_ADDR")


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer mkt_...`` (``Token`` is accepted too)."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        keyword, _, raw = header.partition(" ")
        if keyword.lower() not in self.keywords or not raw.strip():
            return None
        try:
            token = token_authenticate(raw.strip(), address=client_address(request))
        except TokenError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="mktintegration"'


class HasScope(permissions.BasePermission):
    """Token requests need the view's scope; session requests are governed by permissions."""

    message = "This API token does not have the scope this endpoint needs."

    def has_permission(self, request, view):
        token = request.auth
        if token is None or not hasattr(token, "scopes"):
            return True
        scope = view.required_scope(request)
        if scope not in token.scopes:
            self.message = f"This API token lacks the scope {scope!r}."
            return False
        return True


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes API tokens in the OpenAPI schema."""

    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "mkt_<id>_<secret>"}
