"""The expiry alert fires from the stored end of a grant: when nothing can renew the access
token, or when the refresh token itself has a stated end; tokens renewed automatically never
warn."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import Connection, OAuthGrant
from integrations.operations.evaluate import credentials_expire_at, evaluate_all
from integrations.operations.models import Alert, AlertKind, AlertStatus
from integrations.selectors import connector_for
from tests.integrations.oauth.conftest import connect, oauth_connection

pytestmark = pytest.mark.django_db


def test_a_token_nothing_can_renew_warns_before_it_expires(ira, hubspot, smtp):
    hubspot.oauth.store.issue_refresh_tokens = False  # an app without offline access
    connection = oauth_connection("hubspot", hubspot, name="OAuth")
    connect(ira, connection)
    grant = OAuthGrant.objects.get(pk=connection.pk)
    assert grant.expires_at == grant.token_expires_at  # 30 minutes from now

    evaluate_all()
    evaluate_all()

    (alert,) = Alert.objects.filter(kind=AlertKind.AUTH_EXPIRING)
    assert alert.status == AlertStatus.SENT
    (message,) = smtp.wait_for(1)
    assert message["Subject"].startswith("[mktintegration] Connection 'OAuth': credentials expire")
    assert f"/admin/integrations/connection/{connection.pk}/connect/" in alert.body


@pytest.mark.django_db(transaction=True)  # Tiny's refresh tokens rotate: renewed outside one
def test_a_refresh_token_with_a_stated_end_warns_before_it_ends(ira, tiny, smtp):
    tiny.store.refresh_lifetime = 3 * 86400
    connection = Connection(name="tiny", vendor="tiny", auth_kind="oauth2", base_url=tiny.url)
    connection.full_clean()
    connection.save()
    connect(ira, connection)
    ends = credentials_expire_at(connection)
    assert timedelta(days=2, hours=23) < ends - timezone.now() <= timedelta(days=3)
    # A renewal that does not restate the refresh token's lifetime keeps its end.
    OAuthGrant.objects.filter(pk=connection.pk).update(token_expires_at=timezone.now())
    connector_for(Connection.objects.get()).test_connection()
    assert OAuthGrant.objects.get(pk=connection.pk).refreshed_at is not None
    assert credentials_expire_at(connection) == ends

    evaluate_all()

    assert Alert.objects.get(kind=AlertKind.AUTH_EXPIRING).status == AlertStatus.SENT


def test_tokens_renewed_automatically_never_warn(ira, hubspot, smtp):
    connection = oauth_connection("hubspot", hubspot)
    connect(ira, connection)  # the access token expires in 30 minutes; the refresh token never

    evaluate_all()

    assert credentials_expire_at(connection) is None
    assert not Alert.objects.filter(kind=AlertKind.AUTH_EXPIRING).exists()
