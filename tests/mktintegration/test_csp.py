"""Content-Security-Policy: on every response, and pages that need nothing it forbids (no
inline script, event handler or style; assets from our own origin only)."""

from __future__ import annotations

from contextlib import suppress
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import NoReverseMatch, reverse

from integrations.operations.alerts import DASHBOARD_PATH
from mktintegration import roles
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: sources for name, *sources in directives}


class _Inline(HTMLParser):
    """Collects what a strict policy would block: inline scripts and styles, style and event
    handler attributes, javascript: URLs, and assets from another origin."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self.assets: list[str] = []
        self._inline_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action") and (value or "").startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")
        if tag == "style":
            self.found.append("<style> element")
        if tag == "script":
            executable = attributes.get("type") in (None, "", "text/javascript", "module")
            self._inline_script = executable and not attributes.get("src")
            if attributes.get("src"):
                self.assets.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.assets.append(attributes["href"])
        if tag == "img" and attributes.get("src"):
            self.assets.append(attributes["src"])

    def handle_data(self, data):
        if self._inline_script and data.strip():
            self.found.append(f"inline <script>: {data.strip()[:60]!r}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._inline_script = False


def _inline(html: str) -> _Inline:
    parser = _Inline()
    parser.feed(html)
    return parser


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "x" * 16)
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_admin_docs_api_and_health_responses_carry_the_policy(
    client, client_for, api_token, settings
):
    CompanyFactory()
    _, raw = api_token(roles.INTEGRATION_ADMIN, ["export:clients"])
    anonymous = [client.get("/admin/login/"), client.get("/healthz")]
    missing = client.get("/nowhere")
    if settings.DEBUG:
        # The demo's 404 is Django's technical page (inline styles): django-csp leaves it
        # without a policy, in DEBUG only.
        assert missing.status_code == 404 and "Content-Security-Policy" not in missing
    else:
        anonymous.append(missing)
    staff = client_for(roles.INTEGRATION_ADMIN)
    signed_in = [staff.get("/admin/"), staff.get("/api/docs/"), staff.get("/api/schema/")]
    api = [client.get("/marketing/export/clients", HTTP_AUTHORIZATION=f"Bearer {raw}")]

    for response in anonymous + signed_in + api:
        policy = _policy(response)
        assert policy["default-src"] == ["'self'"], response
        assert policy["script-src"] == ["'self'"], response
        assert policy["style-src"] == ["'self'"], response
        assert policy["frame-ancestors"] == ["'none'"], response
    assert [r.status_code for r in signed_in + api] == [200, 200, 200, 200]


@pytest.mark.django_db
def test_admin_pages_have_no_inline_script_or_style(superuser_client, client_for):
    CompanyFactory()
    vendor = SimpleNamespace(url="http://127.0.0.1:9", credential="not-used")  # never called
    sync = make_sync(make_connection("hubspot", vendor))
    login = Client().get("/admin/login/")
    assert login.status_code == 200
    assert _inline(login.content.decode()).found == []
    pages = [
        "/admin/",
        DASHBOARD_PATH,
        reverse("admin:integrations_sync_change", args=[sync.pk]),
        reverse("admin:integrations_sync_history", args=[sync.pk]),
        # django-guardian's object permissions page
        reverse("admin:integrations_connection_permissions", args=[sync.connection_id]),
    ]
    for model in admin.site._registry:
        opts = model._meta
        for view in ("changelist", "add"):
            with suppress(NoReverseMatch):  # the dashboard has a change list only
                pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}"))

    for page in pages:
        response = superuser_client.get(page)
        assert response.status_code in (200, 403), page  # 403: an add form nobody may use
        if response.status_code == 200:
            assert _inline(response.content.decode()).found == [], page
    # Without the delete permission a change list has no actions (Django's own inline style).
    auditor = client_for(roles.AUDITOR)
    html = auditor.get(reverse("admin:backbone_company_changelist")).content.decode()
    assert "action-checkbox" not in html
    assert _inline(html).found == []


@pytest.mark.django_db
def test_api_docs_page_uses_only_same_origin_assets_and_no_inline_code(client_for):
    client = client_for(roles.INTEGRATION_ADMIN)

    page = client.get("/api/docs/")

    assert page.status_code == 200
    parsed = _inline(page.content.decode())
    assert parsed.found == []
    assert any("swagger-ui-bundle.js" in asset for asset in parsed.assets)
    for asset in parsed.assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
    script = next(a for a in parsed.assets if "script" in a and "api/docs" in a)
    start_up = client.get(script)
    assert start_up.status_code == 200
    assert start_up["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in start_up.content.decode()
