"""HubSpot's daily API limit (per account, shared by every app on it): HubSpot's own count in
the ``X-HubSpot-RateLimit-Daily`` headers corrects ours before a run is planned to fit, and a
``DAILY`` 429 defers the records to the next day, never fails them."""

from __future__ import annotations

import pytest

from integrations.models import DeadLetter, LedgerEntry, RunStatus, Sync
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync, start_and_drive

pytestmark = pytest.mark.django_db


def test_hubspots_own_count_corrects_ours_and_the_run_fits_what_is_left(hubspot):
    # Ten a day, eight spent by other apps of the account: a read of the properties and one
    # batch of 100 are left.
    hubspot.set_daily_limit(10, used=8)
    CompanyFactory.create_batch(300)
    sync = make_sync(make_connection("hubspot", hubspot))

    run = start_and_drive(sync)

    assert (run.status, run.created, run.deferred, run.failed) == (
        RunStatus.SUCCEEDED,
        100,
        200,
        0,
    ), run.counts()
    assert hubspot.daily_refused == 0  # never a request over HubSpot's limit
    assert Sync.objects.get(pk=sync.pk).quota_resume_at is not None
    assert not DeadLetter.objects.exists()
    assert hubspot.violations == []


def test_a_daily_429_defers_the_records_to_the_next_day_and_fails_none(hubspot):
    # The connection was told a larger allowance than HubSpot gives: HubSpot refuses the
    # fourth request of the day with policyName DAILY.
    hubspot.set_daily_limit(3)
    companies = CompanyFactory.create_batch(300)
    sync = make_sync(make_connection("hubspot", hubspot, daily_quota_requests=1_000))

    run = start_and_drive(sync)

    assert (run.created, run.deferred, run.failed, run.dead_lettered) == (200, 100, 0, 0), (
        run.counts()
    )
    assert hubspot.daily_refused == 1
    assert Sync.objects.get(pk=sync.pk).quota_resume_at is not None
    pending = LedgerEntry.objects.filter(sync=sync).exclude(status="synced")
    assert pending.count() == 100 and len(companies) == 300
    assert hubspot.violations == []
