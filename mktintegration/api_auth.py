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


class ClientCertificateAuthentication(authentication.BaseAuthentication):
    """A client certificate the web server verified (mutual TLS, docs/mtls.md), whose
    subject is registered for a service account. Only ``mktintegration.mtls.MTLSWorker``
    puts a certificate into the request; without it this does nothing."""

    def authenticate(self, request):
        from mktintegration.mtls import FINGERPRINT, SUBJECT
        from mktintegration.service_certs import service_certificate_authenticate

        subject = request.META.get(SUBJECT)
        if not subject:
            return None
        try:
            registration = service_certificate_authenticate(
                subject=subject,
                fingerprint=request.META.get(FINGERPRINT, ""),
                address=client_address(request),
            )
        except TokenError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return registration.user, registration


class HasScope(permissions.BasePermission):
    """Token and certificate requests need the view's scope; session requests are governed by
    permissions."""

    message = "This API token does not have the scope this endpoint needs."

    def has_permission(self, request, view):
        token = request.auth
        if token is None or not hasattr(token, "scopes"):
            return True
        scope = view.required_scope(request)
        if scope not in token.scopes:
            self.message = f"This {_credential_kind(token)} lacks the scope {scope!r}."
            return False
        return True


def _credential_kind(credential) -> str:
    return "client certificate" if hasattr(credential, "subject") else "API token"


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes API tokens in the OpenAPI schema."""

    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "mkt_<id>_<secret>"}
