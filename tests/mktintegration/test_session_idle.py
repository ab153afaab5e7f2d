"""Admin sessions end after MKT_SESSION_IDLE_MINUTES without a request, and SESSION_COOKIE_AGE
after sign-in however active (OWASP ASVS V3.3). Time moves by patching the clocks."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session

from mktintegration import roles
from tests.conftest import PASSWORD

HOME = "/admin/"
LOGIN_PAGE = "/admin/login/?next=/admin/"


@pytest.fixture
def signed_in(client, user_with_role, settings, clock):
    settings.MKT_SESSION_IDLE_MINUTES = 30
    settings.SESSION_COOKIE_AGE = 8 * 3600
    user_with_role(roles.AUDITOR, username="audrey")
    response = client.post(LOGIN_PAGE, {"username": "audrey", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(HOME).status_code == 200
    return client


def _stored_session(client) -> str:
    return Session.objects.get(session_key=client.session.session_key).session_data


@pytest.mark.django_db
def test_a_session_idle_longer_than_the_setting_is_signed_out(signed_in, clock):
    clock.advance(31 * 60)

    response = signed_in.get(HOME)

    assert response.status_code == 302 and response["Location"] == LOGIN_PAGE
    page = signed_in.get(LOGIN_PAGE).content.decode()
    assert "You were signed out after 30 minutes without activity" in page
    assert signed_in.get(HOME).status_code == 302  # signed out for good, not just this once


@pytest.mark.django_db
def test_requests_within_the_idle_timeout_keep_the_session(signed_in, clock):
    for _ in range(6):  # two hours, a request every 20 minutes
        clock.advance(20 * 60)
        assert signed_in.get(HOME).status_code == 200


@pytest.mark.django_db
def test_activity_does_not_extend_the_absolute_session_age(signed_in, clock):
    for _ in range(23):  # 7 h 40 min of requests every 20 minutes
        clock.advance(20 * 60)
        assert signed_in.get(HOME).status_code == 200

    clock.advance(21 * 60)  # 8 h 1 min after sign-in, 21 minutes after the last request

    assert signed_in.get(HOME).status_code == 302


@pytest.mark.django_db
def test_the_session_is_written_at_most_once_a_minute(signed_in, clock):
    stored = _stored_session(signed_in)
    for _ in range(5):
        clock.advance(10)
        assert signed_in.get(HOME).status_code == 200
    assert _stored_session(signed_in) == stored  # 50 s of requests: no write

    clock.advance(15)
    signed_in.get(HOME)

    assert _stored_session(signed_in) != stored


@pytest.mark.django_db
def test_api_token_requests_are_not_signed_out_by_the_idle_timeout(client, api_token, clock):
    _, token = api_token(roles.API_CLIENT, ["export:clients"])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.get("/marketing/export/clients", **headers).status_code == 200

    clock.advance(timedelta(hours=2).total_seconds())

    assert client.get("/marketing/export/clients", **headers).status_code == 200
