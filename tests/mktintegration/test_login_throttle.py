"""Failed password sign-ins are throttled per user name and per client address."""

import pytest

from mktintegration import roles
from tests.conftest import PASSWORD

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.MKT_LOGIN_MAX_FAILURES = 3
    settings.MKT_LOGIN_FAILURE_WINDOW_MINUTES = 15


def _login(client, username, password, address="203.0.113.5"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def _refused_for_throttle(response) -> bool:
    return response.status_code == 200 and "Too many failed sign-in attempts" in (
        response.content.decode()
    )


@pytest.mark.django_db
def test_after_n_failures_the_right_password_is_refused_too(client, user_with_role):
    user = user_with_role(roles.AUDITOR, username="audrey")
    for _ in range(3):
        response = _login(client, "audrey", "wrong password")
        assert response.status_code == 200 and not _refused_for_throttle(response)

    response = _login(client, "audrey", PASSWORD)

    assert _refused_for_throttle(response)
    assert "15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address does not lift the per-user-name limit (any spelling of the name).
    assert _refused_for_throttle(_login(client, "AUDREY", PASSWORD, address="198.51.100.9"))
    assert user.is_active


@pytest.mark.django_db
def test_failures_from_one_address_block_that_address_for_every_name(client, user_with_role):
    user_with_role(roles.AUDITOR, username="victim")
    for name in ("alice", "bob", "carol"):
        _login(client, name, "guess", address="203.0.113.66")

    assert _refused_for_throttle(_login(client, "victim", PASSWORD, address="203.0.113.66"))
    response = _login(client, "victim", PASSWORD, address="192.0.2.1")
    assert response.status_code == 302 and response["Location"] == "/admin/"


@pytest.mark.django_db
def test_a_successful_sign_in_resets_the_count(client, user_with_role):
    user_with_role(roles.AUDITOR, username="audrey")
    for _ in range(2):
        _login(client, "audrey", "typo")
    assert _login(client, "audrey", PASSWORD).status_code == 302
    client.logout()

    for _ in range(2):
        _login(client, "audrey", "typo")

    assert _login(client, "audrey", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_the_login_page_opens_for_an_anonymous_visitor(client):
    # The page lists apps for the visitor; object-granted admins must not ask guardian about
    # an anonymous user (there is no anonymous user row): that was a 500.
    page = client.get(LOGIN)

    assert page.status_code == 200 and 'name="password"' in page.content.decode()
