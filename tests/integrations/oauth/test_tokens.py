"""The token lifecycle: renewed before expiry and once after a 401, one renewal at a time
across workers, rotating refresh tokens kept, a lost grant pausing the syncs with a link to
Reconnect, and a token endpoint that is down costing no record anything."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.db import connection as db_connection
from django.utils import timezone

from integrations.credentials import connection_credentials_save
from integrations.models import (
    Connection,
    ConnectionStatus,
    GrantState,
    LedgerEntry,
    OAuthGrant,
    RunStatus,
    Sync,
    SyncBatch,
)
from integrations.models.runs import BatchStatus
from integrations.operations.models import Alert, AlertKind
from integrations.selectors import connector_for
from integrations.services import connection_test
from mktintegration.errors import ConnectorError, ErrorKind
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_sync, start_and_drive
from tests.integrations.oauth.conftest import connect, oauth_connection, token_calls

UNCONFIRMED = {"pending", "intent_create"}  # not synced, and not failed either
RECONNECT_LINK = "Reconnect it at http://testserver/admin/integrations/connection/{}/connect/"


def _due(connection) -> None:
    """Our stored access token is about to expire (and has, at the vendor)."""
    OAuthGrant.objects.filter(pk=connection.pk).update(
        token_expires_at=timezone.now() + timedelta(seconds=30)
    )


@pytest.fixture
def hubspot_oauth(db, ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    connect(ira, connection)
    return Connection.objects.get(pk=connection.pk)


def test_a_token_due_is_refreshed_before_it_is_sent(hubspot_oauth, hubspot):
    hubspot.oauth.store.expire_access_tokens()
    _due(hubspot_oauth)
    before = hubspot_oauth.get_credentials()

    ok, message = connection_test(connection=hubspot_oauth)

    assert ok, message
    (refresh,) = token_calls(hubspot, "refresh_token")
    assert refresh.body["refresh_token"] == before["refresh_token"] and refresh.query == {}
    after = Connection.objects.get().get_credentials()
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] == before["refresh_token"]  # HubSpot keeps it [H10]
    grant = OAuthGrant.objects.get(pk=hubspot_oauth.pk)
    assert grant.token_expires_at > timezone.now() + timedelta(minutes=29)
    assert grant.refreshed_at is not None
    assert hubspot.calls("/crm/v3/properties/companies")[-1].status == 200


def test_a_token_not_yet_due_is_not_refreshed(hubspot_oauth, hubspot):
    ok, _ = connection_test(connection=hubspot_oauth)

    assert ok and token_calls(hubspot, "refresh_token") == []


def test_a_401_renews_the_token_once_and_sends_the_request_once_more(hubspot_oauth, hubspot):
    hubspot.oauth.store.expire_access_tokens()  # HubSpot ended it early; we think it is good
    seen = len(hubspot.calls("/crm/v3/properties"))

    ok, message = connection_test(connection=hubspot_oauth)

    assert ok, message
    assert len(token_calls(hubspot, "refresh_token")) == 1
    assert [c.status for c in hubspot.calls("/crm/v3/properties")[seen:]] == [401, 200]


def test_a_sync_meeting_a_401_renews_and_delivers_everything(hubspot_oauth, hubspot):
    sync = make_sync(hubspot_oauth)
    CompanyFactory.create_batch(3)
    hubspot.oauth.store.expire_access_tokens()

    run = start_and_drive(sync)

    assert (run.status, run.created, run.failed) == (RunStatus.SUCCEEDED, 3, 0)
    assert len(token_calls(hubspot, "refresh_token")) == 1


def test_a_401_the_renewed_token_gets_too_is_not_retried_again(hubspot_oauth, hubspot):
    connector = connector_for(hubspot_oauth)
    hubspot.fail_next(2, status=401, path_contains="/crm/v3/properties", writes_only=False)
    seen = len(hubspot.calls("/crm/v3/properties"))

    with pytest.raises(ConnectorError) as refused:
        connector.test_connection()

    assert refused.value.kind == ErrorKind.AUTH
    assert RECONNECT_LINK.format(hubspot_oauth.pk) in refused.value.message
    assert len(hubspot.calls("/crm/v3/properties")) == seen + 2  # the request and one retry
    assert len(token_calls(hubspot, "refresh_token")) == 1


def _renew_in_threads(connection, count: int) -> list[str]:
    tokens, errors = [], []
    barrier = threading.Barrier(count)

    def worker():
        try:
            connector = connector_for(Connection.objects.get(pk=connection.pk))
            barrier.wait(timeout=10)
            tokens.append(connector.tokens.access_token())
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return tokens


@pytest.mark.django_db(transaction=True)
def test_workers_renewing_at_once_refresh_once_and_share_the_token(ira, hubspot):
    connection = oauth_connection("hubspot", hubspot)
    connect(ira, connection)
    _due(connection)
    hubspot.delay_next(1, 0.5, path_contains="/oauth/v3/token", writes_only=False)

    tokens = _renew_in_threads(connection, 6)

    assert len(token_calls(hubspot, "refresh_token")) == 1
    assert len(set(tokens)) == 1
    assert tokens[0] == Connection.objects.get().get_credentials()["access_token"]
    assert OAuthGrant.objects.get(pk=connection.pk).lease_owner == ""  # released


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_workers_renewing_at_once_refresh_once_with_the_lock_in_redis(
    ira, hubspot, redis_url, settings
):
    import redis

    settings.REDIS_URL = redis_url
    connection = oauth_connection("hubspot", hubspot)
    connect(ira, connection)
    _due(connection)
    hubspot.delay_next(1, 0.5, path_contains="/oauth/v3/token", writes_only=False)

    tokens = _renew_in_threads(connection, 6)

    assert len(token_calls(hubspot, "refresh_token")) == 1 and len(set(tokens)) == 1
    assert not redis.Redis.from_url(redis_url).exists(f"mkt:oauth:renew:{connection.pk}")
    assert OAuthGrant.objects.get(pk=connection.pk).lease_owner == ""  # Redis held it


def test_a_worker_waiting_for_anothers_renewal_retries_later_without_refreshing(
    hubspot_oauth, hubspot, monkeypatch
):
    from integrations.oauth.lock import RenewalLock

    monkeypatch.setattr("integrations.oauth.tokens.WAIT_SECONDS", 0.2)
    _due(hubspot_oauth)
    other = RenewalLock(hubspot_oauth.pk)
    assert other.try_acquire()

    with pytest.raises(ConnectorError) as waiting:
        connector_for(hubspot_oauth).tokens.access_token()

    assert waiting.value.kind == ErrorKind.RATE_LIMITED and waiting.value.retry_after
    assert token_calls(hubspot, "refresh_token") == []
    other.release()


@pytest.mark.django_db(transaction=True)
def test_a_rotated_refresh_token_is_stored_before_the_old_one_is_used_again(tiny):
    tiny.store.rotate_refresh_tokens = True
    connection = Connection(name="tiny", vendor="tiny", auth_kind="oauth2", base_url=tiny.url)
    first = tiny.store.issue_grant()
    connection_credentials_save(
        connection=connection, values={"refresh_token": first["refresh_token"]}
    )

    for _ in range(3):  # three workers one after another, each finding the token due
        _due(connection)
        assert connector_for(Connection.objects.get()).test_connection() == "pong"

    refreshes = [
        c for c in tiny.calls("/oauth/token") if c.body.get("grant_type") == "refresh_token"
    ]
    used = [c.body["refresh_token"] for c in refreshes]
    answered = [c.response_body["refresh_token"] for c in refreshes]
    assert used[0] == first["refresh_token"]
    assert used[1:] == answered[:-1]  # each renewal used the one the previous renewal stored
    assert [c.status for c in refreshes] == [200, 200, 200]
    assert Connection.objects.get().get_credentials()["refresh_token"] == answered[-1]


def test_a_rotating_refresh_token_is_not_renewed_inside_a_transaction(db, tiny):
    from django.db import transaction

    tiny.store.rotate_refresh_tokens = True
    connection = Connection(name="tiny", vendor="tiny", auth_kind="oauth2", base_url=tiny.url)
    grant = tiny.store.issue_grant()
    connection_credentials_save(
        connection=connection, values={"refresh_token": grant["refresh_token"]}
    )
    _due(connection)

    with transaction.atomic(), pytest.raises(ConnectorError) as waiting:
        connector_for(Connection.objects.get()).test_connection()

    assert waiting.value.kind == ErrorKind.RATE_LIMITED
    assert not tiny.calls("/oauth/token")


def test_a_lost_grant_pauses_every_sync_with_a_reconnect_link_and_alerts(hubspot_oauth, hubspot):
    first, second = make_sync(hubspot_oauth), make_sync(hubspot_oauth)
    CompanyFactory.create_batch(2)
    hubspot.oauth.store.revoke_everything()  # the portal's owner uninstalled the app
    _due(hubspot_oauth)

    run = start_and_drive(first)

    link = RECONNECT_LINK.format(hubspot_oauth.pk)
    for sync in Sync.objects.all():
        assert sync.paused, sync.name
        assert "no longer accepts this connection's authorization" in sync.pause_reason
        assert link in sync.pause_reason
    assert run.status == RunStatus.PAUSED
    assert set(LedgerEntry.objects.values_list("status", flat=True)) <= UNCONFIRMED
    grant = OAuthGrant.objects.get(pk=hubspot_oauth.pk)
    assert grant.state == GrantState.RECONNECT
    history = LogEntry.objects.get_for_object(grant).order_by("pk").last()
    assert history.changes_dict["state"] == ["connected", "reconnect"]
    assert Connection.objects.get().status == ConnectionStatus.AUTH_FAILED
    alert = Alert.objects.get(kind=AlertKind.AUTH_FAILING)
    assert (
        "Reconnect it (Reconnect on its page" in alert.body and link.split(" at ")[1] in alert.body
    )
    assert len(token_calls(hubspot, "refresh_token")) == 1
    # Nothing asks HubSpot again until someone reconnects: the next test is refused here.
    assert connection_test(connection=Connection.objects.get())[0] is False
    assert len(token_calls(hubspot, "refresh_token")) == 1
    assert second.pk in set(Sync.objects.filter(paused=True).values_list("pk", flat=True))


def test_a_token_endpoint_that_times_out_makes_the_batch_wait_and_fails_no_record(
    hubspot_oauth, hubspot, monkeypatch
):
    monkeypatch.setattr("integrations.oauth.backends.TOKEN_TIMEOUT", (1.0, 0.3))
    monkeypatch.setattr("integrations.oauth.tokens.RETRY_SECONDS", 0.5)
    sync = make_sync(hubspot_oauth)
    CompanyFactory.create_batch(3)
    hubspot.oauth.store.expire_access_tokens()
    _due(hubspot_oauth)
    hubspot.delay_next(2, 1.0, path_contains="/oauth/v3/token", writes_only=False)

    run = start_and_drive(sync)

    assert (run.status, run.created, run.failed) == (RunStatus.SUCCEEDED, 3, 0)
    refreshes = token_calls(hubspot, "refresh_token")
    assert len(refreshes) == 3  # late while planning, late at delivery, then in time
    assert SyncBatch.objects.get().attempt == 0  # waiting for a token spent no attempt
    assert not Sync.objects.get().paused


def test_a_token_endpoint_that_fails_leaves_the_records_pending_in_the_batch(
    hubspot_oauth, hubspot, monkeypatch
):
    from integrations.engine.runs import batch_execute, run_execute
    from integrations.services import sync_run_start

    monkeypatch.setattr("integrations.oauth.tokens.RETRY_SECONDS", 60)
    sync = make_sync(hubspot_oauth)
    CompanyFactory.create_batch(2)
    _due(hubspot_oauth)
    hubspot.fail_next(9, status=503, path_contains="/oauth/v3/token", writes_only=False)
    run = sync_run_start(sync=sync, trigger="manual")
    run_execute(run_id=run.pk)

    batch_execute(batch_id=SyncBatch.objects.get().pk)

    batch = SyncBatch.objects.get()
    assert batch.status == BatchStatus.QUEUED and batch.attempt == 0
    assert (batch.not_before - timezone.now()).total_seconds() > 50
    assert set(LedgerEntry.objects.values_list("status", flat=True)) <= UNCONFIRMED
    assert not hubspot.calls("/batch/upsert")


def test_a_revoked_mailchimp_token_pauses_the_sync_with_a_reconnect_link(ira, mailchimp):
    from tests.factories import ConsentRecordFactory, ContactFactory
    from tests.integrations.test_mailchimp_sync import make_member_sync

    connection = oauth_connection("mailchimp", mailchimp)
    connect(ira, connection)
    sync = make_member_sync(connection)
    ConsentRecordFactory(contact=ContactFactory(), status="granted")
    mailchimp.oauth.store.revoke_everything()  # the account's owner removed the app

    run = start_and_drive(sync)

    sync.refresh_from_db()
    assert run.status == RunStatus.PAUSED
    assert sync.paused and sync.pause_reason.startswith("auth: Mailchimp")
    assert RECONNECT_LINK.format(connection.pk) in sync.pause_reason
    assert set(LedgerEntry.objects.values_list("status", flat=True)) <= UNCONFIRMED
    assert mailchimp.calls("/3.0/lists/list0001")[-1].status == 401
    assert not mailchimp.calls("/oauth2/token")[1:]  # nothing to renew with: no retry
