"""Staff SSO with OpenID Connect: a real round trip against a small IdP on loopback, role
mapping from IdP groups, refusal without a role, and the login page's SSO link."""

from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from social_core.backends import utils as backend_utils
from social_django.models import UserSocialAuth

from mktintegration import roles
from mktintegration.sso import BACKEND_PATH, role_map_parse, roles_for_groups, user_roles_replace
from tests.conftest import PASSWORD
from tests.mktintegration.oidc_idp import CLIENT_ID, CLIENT_SECRET, FakeOidcProvider

ROLE_MAP = {
    "mkt-managers": (roles.MARKETING_MANAGER,),
    "mkt-auditors": (roles.AUDITOR,),
    "mkt-admins": (roles.INTEGRATION_ADMIN, roles.AUDITOR),
}


def test_role_map_parse_and_group_mapping():
    parsed = role_map_parse(
        "mkt-managers=Marketing Manager, mkt-admins=Integration Admin,mkt-admins=Auditor,"
    )

    assert parsed == {
        "mkt-managers": ("Marketing Manager",),
        "mkt-admins": ("Integration Admin", "Auditor"),
    }
    assert roles_for_groups(["mkt-admins", "unrelated"], parsed) == {"Integration Admin", "Auditor"}
    assert roles_for_groups([], parsed) == set()
    with pytest.raises(ValueError, match="'mkt-managers' is not"):
        role_map_parse("mkt-managers")


@pytest.mark.django_db
def test_replacing_roles_keeps_other_groups_and_makes_staff(user_with_role):
    user = user_with_role(roles.MARKETING_ANALYST, is_staff=False)
    newsletter = Group.objects.create(name="Newsletter editors")
    user.groups.add(newsletter)

    user_roles_replace(user=user, roles=[roles.AUDITOR])

    assert set(user.groups.values_list("name", flat=True)) == {roles.AUDITOR, newsletter.name}
    user.refresh_from_db()
    assert user.is_staff


@pytest.fixture
def idp(settings, monkeypatch):
    with FakeOidcProvider() as provider:
        settings.MKT_OIDC_ENABLED = True
        settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, BACKEND_PATH]
        settings.SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = provider.url
        settings.SOCIAL_AUTH_OIDC_KEY = CLIENT_ID
        settings.SOCIAL_AUTH_OIDC_SECRET = CLIENT_SECRET
        settings.MKT_OIDC_ROLE_MAP = ROLE_MAP
        monkeypatch.setattr(backend_utils, "BACKENDSCACHE", {})  # backends as configured now
        yield provider


def _sign_in(client, idp, *, sub: str, groups: list[str], username: str = "mona.sso"):
    start = client.post("/sso/login/oidc/", {"next": "/admin/"})
    assert start.status_code == 302, start.content[:500]
    location = urlparse(start["Location"])
    assert f"{location.scheme}://{location.netloc}" == idp.url
    params = {key: values[0] for key, values in parse_qs(location.query).items()}
    code = idp.authorize(
        params,
        sub=sub,
        claims={
            "preferred_username": username,
            "email": f"{username}@ourcompany.example",
            "name": "Mona Sso",
            "groups": groups,
        },
    )
    return client.get("/sso/complete/oidc/", {"state": params["state"], "code": code})


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.django_db
def test_sso_round_trip_signs_in_with_the_mapped_role(client, idp):
    response = _sign_in(client, idp, sub="idp-user-1", groups=["mkt-managers", "everyone"])

    assert response.status_code == 302 and response["Location"] == "/admin/"
    user = get_user_model().objects.get(username="mona.sso")
    assert list(user.groups.values_list("name", flat=True)) == [roles.MARKETING_MANAGER]
    assert user.is_staff and not user.has_usable_password()
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/exports/exportschedule/").status_code == 200  # a manager's page
    assert client.get("/admin/audit/accesslog/").status_code == 403
    # PKCE was used, and no IdP token is kept in the database.
    assert idp.token_requests[0]["code_verifier"]
    extra = UserSocialAuth.objects.get(user=user).extra_data
    assert not {"access_token", "id_token", "refresh_token"} & set(extra)


@pytest.mark.django_db
def test_the_next_sso_sign_in_replaces_the_role_groups_only(client, idp):
    _sign_in(client, idp, sub="idp-user-1", groups=["mkt-managers"])
    user = get_user_model().objects.get(username="mona.sso")
    user.groups.add(Group.objects.create(name="Newsletter editors"))
    client.logout()

    _sign_in(client, idp, sub="idp-user-1", groups=["mkt-admins"])

    names = set(user.groups.values_list("name", flat=True))
    assert names == {roles.INTEGRATION_ADMIN, roles.AUDITOR, "Newsletter editors"}


@pytest.mark.django_db
def test_a_user_without_a_mapped_role_is_refused_and_loses_old_roles(client, idp):
    response = _sign_in(client, idp, sub="idp-user-2", groups=["sales"], username="sam")

    assert response.status_code == 302 and response["Location"] == "/admin/login/"
    assert "none of your groups" in " ".join(_messages(response))
    assert not get_user_model().objects.filter(username="sam").exists()
    assert client.get("/admin/").status_code == 302  # not signed in

    _sign_in(client, idp, sub="idp-user-1", groups=["mkt-managers"])
    client.logout()
    refused = _sign_in(client, idp, sub="idp-user-1", groups=["former-staff"])
    assert refused["Location"] == "/admin/login/"
    user = get_user_model().objects.get(username="mona.sso")
    assert not user.groups.filter(name__in=roles.ROLES).exists()


@pytest.mark.django_db
def test_local_password_login_keeps_working_with_sso_on(client, idp, user_with_role):
    user = user_with_role(roles.AUDITOR, username="local-audrey")

    response = client.post(
        "/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD}
    )

    assert response.status_code == 302 and response["Location"] == "/admin/"


@pytest.mark.django_db
def test_the_sso_link_is_on_the_login_page_only_when_sso_is_configured(client, settings):
    settings.MKT_OIDC_ENABLED = False
    assert "Sign in with SSO" not in client.get("/admin/login/").content.decode()

    settings.MKT_OIDC_ENABLED = True
    page = client.get("/admin/login/", {"next": "/admin/audit/"}).content.decode()
    assert "Sign in with SSO" in page
    assert '<form action="/sso/login/oidc/" method="post"' in page
    assert '<input type="hidden" name="next" value="/admin/audit/">' in page


@pytest.mark.django_db
def test_sso_endpoints_answer_404_when_sso_is_not_configured(client, monkeypatch):
    monkeypatch.setattr(backend_utils, "BACKENDSCACHE", {})

    assert client.post("/sso/login/oidc/").status_code == 404
