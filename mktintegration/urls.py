from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from mktintegration import health
from mktintegration.api_errors import api_not_found
from mktintegration.home import home

urlpatterns = [
    path("", home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("exports.urls")),
    path("", include("integrations.operations.urls")),
    path("", include("integrations.webhooks.urls")),
    # Staff SSO (OpenID Connect): /sso/login/oidc/ and /sso/complete/oidc/ (docs/security.md)
    path("sso/", include("social_django.urls", namespace="social")),
    path("admin/", admin.site.urls),
    # Unmatched API paths answer a JSON 404 (after every API route above).
    re_path(r"^marketing/", api_not_found),
]
