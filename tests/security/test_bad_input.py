"""Bad input is refused: forged or missing CSRF, a tampered session, tokens with the wrong
scope or past their expiry, an Auditor posting to change views, a Manager probing ids."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.test import Client
from django.utils import timezone

from integrations.models import Connection
from mktintegration import roles
from mktintegration.models import ApiToken
from mktintegration.tokens import token_create, token_revoke
from tests.factories import UserFactory
from tests.security.conftest import make_connection

EXPORT = "/marketing/export/clients"


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ida", role=roles.INTEGRATION_ADMIN)


@pytest.mark.django_db
def test_an_admin_post_without_or_with_a_forged_csrf_token_is_refused(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    group_count = admin_user.groups.count()
    form = {"name": "Forged", "vendor": "hubspot", "auth_kind": "private_app_token"}

    missing = client.post("/admin/integrations/connection/add/", form)
    client.get("/admin/integrations/connection/add/")  # sets the real CSRF cookie
    forged = client.post(
        "/admin/integrations/connection/add/",
        {**form, "csrfmiddlewaretoken": "x" * 64},
    )
    token_from_elsewhere = client.post(
        "/admin/integrations/connection/add/",
        form,
        HTTP_X_CSRFTOKEN="A" * 32,
    )

    assert (missing.status_code, forged.status_code, token_from_elsewhere.status_code) == (
        403,
        403,
        403,
    )
    assert b"CSRF" in forged.content
    assert not Connection.objects.exists() and admin_user.groups.count() == group_count


@pytest.mark.django_db
def test_a_tampered_session_cookie_is_an_anonymous_visitor(admin_user):
    client = Client()
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200
    name = django_settings.SESSION_COOKIE_NAME
    key = client.cookies[name].value
    client.cookies[name] = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")

    page = client.get("/admin/integrations/connection/")
    api = client.get(EXPORT)

    assert page.status_code == 302 and page["Location"].startswith("/admin/login/")
    assert api.status_code == 401


@pytest.mark.django_db
def test_a_token_without_the_scope_is_403_and_an_expired_one_401(client, user_with_role):
    analyst = user_with_role(roles.MARKETING_ANALYST)
    _, clients_only = token_create(user=analyst, name="clients", scopes=["export:clients"])
    expired, expired_raw = token_create(
        user=analyst, name="old", scopes=["export:contacts"], expires_days=1
    )
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked, revoked_raw = token_create(user=analyst, name="gone", scopes=["export:contacts"])
    token_revoke(token=revoked)

    def get(path, raw):
        return client.get(path, HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert get(EXPORT, clients_only).status_code == 200
    wrong_scope = get("/marketing/export/contacts", clients_only)
    assert wrong_scope.status_code == 403
    assert "export:contacts" in wrong_scope.json()["detail"]
    too_late = get("/marketing/export/contacts", expired_raw)
    assert too_late.status_code == 401 and "expired" in too_late.json()["detail"]
    assert too_late["WWW-Authenticate"].startswith("Bearer")
    assert get("/marketing/export/contacts", revoked_raw).status_code == 401
    assert get(EXPORT, clients_only[:-2] + "zz").status_code == 401  # a changed secret
    assert get(EXPORT, "mkt_nothing").status_code == 401


def _change_urls() -> list[tuple[str, str]]:
    """(model, url) for the add, change and delete view of every registered model."""
    urls = []
    for model, _model_admin in admin.site._registry.items():
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        obj = model._default_manager.order_by("pk").first() if opts.managed else None
        pk = obj.pk if obj is not None else 1
        urls += [
            (opts.label, f"{base}add/"),
            (opts.label, f"{base}{pk}/change/"),
            (opts.label, f"{base}{pk}/delete/"),
        ]
    return urls


@pytest.mark.django_db
def test_an_auditor_posting_to_any_change_view_gets_403(client, objects):
    client.force_login(UserFactory(username="audrey", role=roles.AUDITOR))
    before = Connection.objects.get(pk=objects.connection.pk).name

    refused = {}
    for _label, url in _change_urls():
        status = client.post(url, {"name": "changed by the auditor", "post": "yes"}).status_code
        refused[url] = status
    not_403 = {url: status for url, status in refused.items() if status != 403}

    # The dashboard has no add, change or delete pages at all.
    assert not {u: s for u, s in not_403.items() if "/operations/dashboard/" not in u}
    assert set(not_403.values()) <= {404}
    custom_posts = [
        f"/admin/exports/exportschedule/{objects.schedule.pk}/run/",
    ]
    for url in custom_posts:
        assert client.post(url).status_code == 403, url
    assert Connection.objects.get(pk=objects.connection.pk).name == before


@pytest.mark.django_db
@pytest.mark.urls("tests.granted_api_urls")
def test_a_manager_opening_a_connection_not_granted_by_id_gets_404(client, objects):
    mona = UserFactory(username="mona", role=roles.MARKETING_MANAGER)
    _, token = token_create(user=mona, name="t", scopes=["integrations:read"])
    connection = make_connection("Someone else's")
    client.force_login(mona)

    assert client.get(f"/admin/integrations/connection/{connection.pk}/change/").status_code == 404
    assert client.get(f"/test-api/connection/{connection.pk}").status_code == 404
    client.logout()
    response = client.get(
        f"/test-api/connection/{connection.pk}", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 404
    assert "Someone else" not in response.content.decode()
