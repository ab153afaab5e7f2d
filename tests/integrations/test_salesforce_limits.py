"""Salesforce sessions that end mid-run, and the org's daily API allowance running out mid-run:
the records wait for the org's count to fall (deferred, then sent by the run the next look
starts), and no record fails, is lost or is written twice."""

from __future__ import annotations

import pytest

from integrations.engine.runs import batch_execute, batch_poll, run_execute
from integrations.models import (
    DeadLetter,
    LedgerEntry,
    RunStatus,
    Sync,
    SyncBatch,
    SyncRun,
    Trigger,
)
from integrations.models.runs import BatchStatus
from integrations.selectors import connection_quota
from integrations.services import quota_runs_start, sync_run_start
from tests.factories import CompanyFactory
from tests.fakes.salesforce import FakeSalesforce
from tests.integrations.conftest import drive, make_sync, start_and_drive
from tests.integrations.contract.profiles.salesforce import connected
from tests.integrations.oauth.conftest import token_calls

pytestmark = pytest.mark.django_db


def account_sync(server):
    return make_sync(
        connected("salesforce", server),
        obj="Account",
        mappings=[("name", "Name"), ("employees", "NumberOfEmployees")],
        match=("external_id", "External_Id__c"),
    )


def created_once(server, companies) -> bool:
    return all(
        server.create_count("Account", "External_Id__c", c.external_id) == 1 for c in companies
    )


@pytest.fixture
def rotating(salesforce_app):
    """An org whose app rotates refresh tokens: each refresh answers a new one."""
    with FakeSalesforce(rotate=True) as server:
        yield server


def test_a_session_that_ends_mid_run_is_renewed_once_and_the_run_goes_on(rotating):
    companies = CompanyFactory.create_batch(1_200)  # two tasks of five requests of 200
    sync = account_sync(rotating)
    old_refresh = sync.connection.get_credentials()["refresh_token"]
    run = sync_run_start(sync=sync, trigger="manual")
    run_execute(run_id=run.pk)
    first, _ = SyncBatch.objects.filter(run=run).order_by("pk")
    batch_execute(batch_id=first.pk)

    rotating.oauth.store.expire_access_tokens()  # the session timeout passed at Salesforce
    run = drive(run)

    assert (run.status, run.created, run.failed) == (RunStatus.SUCCEEDED, 1_200, 0), run.counts()
    assert len(token_calls(rotating, "refresh_token")) == 1
    assert [c.status for c in rotating.calls("/composite/sobjects/")].count(401) == 1
    assert created_once(rotating, companies)
    sync.connection.refresh_from_db()
    stored = sync.connection.get_credentials()["refresh_token"]
    assert stored != old_refresh  # the rotated refresh token was stored
    assert rotating.oauth.store.refresh[old_refresh].revoked  # and the old one is spent
    assert rotating.violations == []


def test_a_session_that_ends_while_a_bulk_job_runs_is_renewed_when_it_is_polled(
    salesforce, settings
):
    settings.MKT_SALESFORCE_BULK_THRESHOLD = 100
    companies = CompanyFactory.create_batch(300)
    salesforce.bulk.job_seconds = 0.5
    sync = account_sync(salesforce)
    run = sync_run_start(sync=sync, trigger="manual")
    run_execute(run_id=run.pk)
    [batch] = SyncBatch.objects.filter(run=run)
    batch_execute(batch_id=batch.pk)
    assert SyncBatch.objects.get(pk=batch.pk).status == BatchStatus.WAITING

    salesforce.oauth.store.expire_access_tokens()
    run = drive(run)

    assert (run.status, run.created) == (RunStatus.SUCCEEDED, 300), run.counts()
    assert len(token_calls(salesforce, "refresh_token")) == 1
    assert salesforce.bulk.uploaded_rows == 300 and created_once(salesforce, companies)


@pytest.fixture
def limits(settings):
    """Salesforce's wait after its limit is longer than a worker waits for the budget: the
    records are deferred to the next look at the org's count."""
    settings.MKT_SALESFORCE_LIMIT_WAIT_SECONDS = 3
    settings.MKT_RATE_MAX_WAIT_SECONDS = 0.5


def _pending_not_failed(sync) -> set[str]:
    return set(LedgerEntry.objects.filter(sync=sync).values_list("status", flat=True))


def _resume_run(sync, clock):
    """The run the org's next look starts (not a second before it), driven to its end."""
    resume = Sync.objects.get(pk=sync.pk).quota_resume_at
    assert resume is not None
    clock.now = resume.timestamp() - 1
    assert quota_runs_start() == 0
    clock.now = resume.timestamp()
    assert quota_runs_start() == 1
    return drive(
        SyncRun.objects.get(sync=sync, trigger=Trigger.QUOTA, status="queued"), clock=clock
    )


def test_refused_for_the_orgs_daily_limit_the_records_wait_and_none_fails(
    salesforce, settings, limits, clock
):
    settings.MKT_SALESFORCE_DAILY_API_SHARE = 1.0
    companies = CompanyFactory.create_batch(1_500)  # a task of 1,000 and one of 500
    sync = account_sync(salesforce)
    run = sync_run_start(sync=sync, trigger="manual")
    run_execute(run_id=run.pk)
    first, second = SyncBatch.objects.filter(run=run).order_by("pk")
    # The org's other integrations spent the allowance: Salesforce refuses the fourth write.
    salesforce.fail_next(1, status=403, path_contains="/composite/sobjects/", after=3)

    batch_execute(batch_id=first.pk)  # three requests of 200 land, the fourth is refused
    batch_execute(batch_id=second.pk)  # the org's quota is held: it sends nothing

    run.refresh_from_db()
    refused = [c for c in salesforce.calls("/composite/sobjects/") if c.status == 403]
    assert [c.response_body[0]["errorCode"] for c in refused] == ["REQUEST_LIMIT_EXCEEDED"]
    assert len(salesforce.calls("/composite/sobjects/")) == 4
    assert (run.status, run.created, run.deferred, run.failed) == (
        RunStatus.SUCCEEDED,
        600,
        900,
        0,
    ), run.counts()
    assert _pending_not_failed(sync) == {"synced", "intent_create"}
    assert not DeadLetter.objects.exists()
    waited = Sync.objects.get(pk=sync.pk).quota_resume_at.timestamp() - clock.now
    assert 2.5 <= waited <= 3  # the next look at the org's count

    again = _resume_run(sync, clock)  # Salesforce has room again

    assert (again.status, again.created, again.failed) == (RunStatus.SUCCEEDED, 900, 0), (
        again.counts()
    )
    assert created_once(salesforce, companies)


def test_a_run_stops_at_its_share_of_the_daily_allowance_and_resumes_without_loss(
    salesforce, settings, limits, clock
):
    settings.MKT_SALESFORCE_DAILY_API_SHARE = 0.5
    companies = CompanyFactory.create_batch(1_500)
    sync = account_sync(salesforce)
    run = sync_run_start(sync=sync, trigger="manual")
    run_execute(run_id=run.pk)
    first, second = SyncBatch.objects.filter(run=run).order_by("pk")
    salesforce.set_daily_limit(2 * (salesforce.usage + 2))  # half of it is two requests away

    batch_execute(batch_id=first.pk)
    batch_execute(batch_id=second.pk)

    run.refresh_from_db()
    assert salesforce.limit_refusals == 0  # never pushed to Salesforce's own refusal
    assert len(salesforce.calls("/composite/sobjects/")) == 2
    assert (run.status, run.created, run.deferred, run.failed) == (
        RunStatus.SUCCEEDED,
        400,
        1_100,
        0,
    ), run.counts()
    assert _pending_not_failed(sync) == {"synced", "intent_create"}

    # Each look finds the rolling 24 hours moved on (Salesforce's count fell to nothing): the
    # allowance is seven requests, so the rest goes over a few looks, each planned to fit.
    resumed = []
    while LedgerEntry.objects.filter(sync=sync).exclude(status="synced").exists():
        assert len(resumed) < 5, [r.counts() for r in resumed]
        salesforce.new_day()
        resumed.append(_resume_run(sync, clock))

    assert all((r.status, r.failed) == (RunStatus.SUCCEEDED, 0) for r in resumed)
    assert sum(r.created for r in resumed) == 1_100 and len(resumed) > 1
    assert salesforce.limit_refusals == 0
    assert created_once(salesforce, companies)


def test_a_run_is_planned_to_fit_what_salesforce_says_is_left(salesforce, settings, limits):
    # 1,000 of 1,005 spent by the org's other integrations: what is left after the plan's
    # describe writes a few hundred records (a request per 200), the rest wait.
    settings.MKT_SALESFORCE_DAILY_API_SHARE = 1.0
    salesforce.set_daily_limit(1_005, used=1_000)
    CompanyFactory.create_batch(1_500)
    sync = account_sync(salesforce)

    run = start_and_drive(sync)

    assert salesforce.limit_refusals == 0
    assert run.failed == 0 and run.created + run.deferred == 1_500, run.counts()
    assert 0 < run.created < 1_500, run.counts()
    status = connection_quota(sync.connection)
    assert (status.limit, status.used) == (1_005, salesforce.usage)


def test_the_daily_limit_reached_while_a_bulk_job_runs_waits_to_poll_it(
    salesforce, settings, limits
):
    settings.MKT_SALESFORCE_DAILY_API_SHARE = 1.0
    settings.MKT_SALESFORCE_BULK_THRESHOLD = 100
    CompanyFactory.create_batch(300)
    sync = account_sync(salesforce)
    run = sync_run_start(sync=sync, trigger="manual")
    run_execute(run_id=run.pk)
    [batch] = SyncBatch.objects.filter(run=run)
    batch_execute(batch_id=batch.pk)
    salesforce.set_daily_limit(salesforce.usage)  # spent, just after the job was closed

    batch_poll(batch_id=batch.pk)  # due: a job is looked at every 0.2 s here

    batch.refresh_from_db()
    assert salesforce.limit_refusals == 1
    assert batch.status == BatchStatus.WAITING
    assert (batch.not_before - batch.heartbeat_at).total_seconds() >= 2.5  # after the wait
    salesforce.new_day()
    run = drive(run)
    assert (run.status, run.created, run.failed) == (RunStatus.SUCCEEDED, 300, 0), run.counts()
    assert salesforce.limit_refusals == 1  # one look after the wait, then the job's results
