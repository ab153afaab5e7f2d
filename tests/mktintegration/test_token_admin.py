"""The API tokens admin page: create (shown once), list, filter, revoke; never edited."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from mktintegration import roles
from mktintegration.models import ApiToken
from mktintegration.scopes import SCOPES
from mktintegration.tokens import token_create

TOKENS = "/admin/mktintegration/apitoken/"


@pytest.fixture
def service_account(user_with_role):
    return user_with_role(roles.API_CLIENT, username="bi-tool", is_service_account=True)


@pytest.fixture
def ida(client, user_with_role):
    user = user_with_role(roles.INTEGRATION_ADMIN, username="ida")
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.django_db
def test_the_add_form_offers_every_scope_and_only_service_accounts_or_yourself(
    ida, service_account, user_with_role
):
    person = user_with_role(roles.MARKETING_MANAGER, username="mona")

    form = ida.get(f"{TOKENS}add/").context["adminform"].form

    assert [value for value, _ in form.fields["scopes"].choices] == list(SCOPES)
    users = {user.username for user in form.fields["user"].queryset}
    assert users == {"bi-tool", "ida"}
    response = ida.post(
        f"{TOKENS}add/", {"user": person.pk, "name": "as mona", "scopes": ["export:clients"]}
    )
    assert "user" in response.context["adminform"].form.errors
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_a_created_token_is_shown_once_and_only_its_hash_is_stored(ida, client, service_account):
    response = ida.post(
        f"{TOKENS}add/",
        {
            "user": service_account.pk,
            "name": "BI nightly",
            "scopes": ["export:clients", "export:metrics"],
            "expires_days": "30",
        },
        follow=True,
    )

    token = ApiToken.objects.get()
    shown = [m for m in _messages(response) if "mkt_" in m]
    assert len(shown) == 1
    raw = next(word for word in shown[0].split() if word.startswith(f"mkt_{token.public_id}_"))
    secret = raw.split("_", 2)[2]
    assert raw in response.content.decode()  # on the page right after saving
    assert token.scopes == ["export:clients", "export:metrics"]
    assert token.created_by.username == "ida" and token.user == service_account
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert secret not in token.secret_hash
    for url in (TOKENS, f"{TOKENS}{token.pk}/change/", f"{TOKENS}{token.pk}/history/", TOKENS):
        page = ida.get(url).content.decode()
        assert secret not in page, url
    assert "export:clients, export:metrics" in ida.get(TOKENS).content.decode()
    api = client.get("/marketing/export/clients", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.status_code == 200


@pytest.mark.django_db
def test_revoke_stops_the_token_at_once(ida, client, service_account):
    token, raw = token_create(user=service_account, name="old", scopes=["export:clients"])

    response = ida.post(TOKENS, {"action": "revoke", "_selected_action": [token.pk]}, follow=True)

    assert "1 token(s) revoked" in " ".join(_messages(response))
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.logout()
    api = client.get("/marketing/export/clients", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.status_code == 401


@pytest.mark.django_db
def test_state_filter_and_no_edit(ida, service_account):
    active, _ = token_create(user=service_account, name="active", scopes=["export:clients"])
    expired, _ = token_create(user=service_account, name="expired", scopes=["export:clients"])
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    revoked, _ = token_create(user=service_account, name="revoked", scopes=["export:clients"])
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())

    for state, name in (("active", "active"), ("expired", "expired"), ("revoked", "revoked")):
        rows = ida.get(TOKENS, {"state": state}).context["cl"].result_list
        assert [token.name for token in rows] == [name]
    page = ida.get(f"{TOKENS}{active.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    response = ida.post(f"{TOKENS}{active.pk}/change/", {"name": "renamed", "scopes": ["x"]})
    assert response.status_code == 403
    assert ida.post(f"{TOKENS}{active.pk}/delete/", {"post": "yes"}).status_code == 403
    active.refresh_from_db()
    assert active.name == "active"


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(set(roles.ROLES) - {roles.INTEGRATION_ADMIN}))
def test_only_integration_admins_manage_tokens(client_for, role):
    client = client_for(role)

    assert client.get(TOKENS).status_code == 403
    assert client.get(f"{TOKENS}add/").status_code == 403
