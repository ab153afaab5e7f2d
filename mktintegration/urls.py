from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from mktintegration import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("exports.urls")),
    path("", include("integrations.operations.urls")),
    # Staff SSO (OpenID Connect): /sso/login/oidc/ and /sso/complete/oidc/ (docs/security.md)
    path("sso/", include("social_django.urls", namespace="social")),
    path("admin/", admin.site.urls),
]
