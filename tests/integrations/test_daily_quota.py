"""A vendor account's daily quota, counted by every worker's rate budget (database, or Redis
when configured): a request over it is never sent, and it comes back when the vendor's day
(or rolling 24 hours) moves on."""

import os
from datetime import UTC, datetime

import pytest

from integrations.connectors.base import DailyQuota, QuotaUsage, RateSpec
from integrations.engine.quota import REPORTED_MAX, QuotaPlan, redis_key
from integrations.engine.ratelimit import RateBudget
from integrations.models import DailyQuotaCount
from mktintegration.errors import ErrorKind, QuotaSpent
from mktintegration.redis_client import redis_client

BACKENDS = [
    "database",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(
            not os.environ.get("REDIS_URL"), reason="needs a Redis server: set REDIS_URL (CI does)"
        ),
    ),
]
FAST = RateSpec(requests=100_000, per_seconds=1)
# 23:00 on 2026-03-10 in Marketo's day (CST, UTC-6), i.e. 05:00 UTC on the 11th.
LATE_EVENING_CST = datetime(2026, 3, 11, 5, 0, tzinfo=UTC).timestamp()


@pytest.fixture(params=BACKENDS)
def backend(request, settings, hubspot_connection):
    settings.REDIS_URL = os.environ.get("REDIS_URL") if request.param == "redis" else None
    if settings.REDIS_URL:
        client = redis_client()
        client.delete(f"mkt:rate:{hubspot_connection.pk}")
        for account in ("acme", "other"):
            client.delete(redis_key(_plan(1, account=account)))
    return hubspot_connection


def _plan(requests, *, account="acme", rolling=False, tz="-06:00", override=None, reported=False):
    return QuotaPlan(
        account=f"test:{account}",
        quota=DailyQuota(requests, timezone=tz, rolling=rolling, reported=reported),
        override=override,
        label="Acme",
        recheck=600.0,
    )


def _budget(connection, plan):
    return RateBudget(connection_id=connection.pk, spec=FAST, quota=plan)


def _spend(budget, n):
    for _ in range(n):
        budget.acquire()


@pytest.mark.django_db
def test_no_worker_sends_a_request_over_the_daily_quota(backend, clock):
    clock.now = LATE_EVENING_CST
    first, second = _budget(backend, _plan(5)), _budget(backend, _plan(5))
    _spend(first, 3)
    _spend(second, 2)

    with pytest.raises(QuotaSpent) as spent:
        first.acquire()

    assert spent.value.kind == ErrorKind.RATE_LIMITED
    # The next window opens at Marketo's midnight: 06:00 UTC, an hour later.
    assert spent.value.resets_at == datetime(2026, 3, 11, 6, 0, tzinfo=UTC).timestamp()
    assert 3599 <= spent.value.retry_after <= 3600
    assert "daily quota for this account is spent (5 of 5 requests)" in str(spent.value)
    assert "2026-03-11 06:00 UTC" in str(spent.value)
    status = second.quota_status()
    assert (status.used, status.left, status.limit) == (5, 0, 5)


@pytest.mark.django_db
def test_the_quota_comes_back_at_the_vendors_midnight_not_before(backend, clock):
    clock.now = LATE_EVENING_CST
    budget = _budget(backend, _plan(2))
    _spend(budget, 2)
    clock.advance(3599)  # 23:59:59 CST
    with pytest.raises(QuotaSpent):
        budget.acquire()

    clock.advance(1)  # midnight CST

    _spend(budget, 2)
    assert budget.quota_status().used == 2


@pytest.mark.django_db
def test_a_rolling_quota_frees_an_hour_once_it_is_24_hours_old(backend, clock):
    clock.now = datetime(2026, 3, 11, 10, 30, tzinfo=UTC).timestamp()
    budget = _budget(backend, _plan(3, rolling=True))
    _spend(budget, 2)  # 10:30
    clock.advance(3600)
    _spend(budget, 1)  # 11:30
    with pytest.raises(QuotaSpent) as spent:
        budget.acquire()
    # The 10:00 hour is counted until 11:00 the next day (never less than the vendor counts).
    assert spent.value.resets_at == datetime(2026, 3, 12, 11, 0, tzinfo=UTC).timestamp()

    clock.now = spent.value.resets_at - 1
    with pytest.raises(QuotaSpent):
        budget.acquire()
    clock.now = spent.value.resets_at
    _spend(budget, 2)  # the two of 10:30 left the window, the one of 11:30 did not
    with pytest.raises(QuotaSpent):
        budget.acquire()


@pytest.mark.django_db
def test_connections_to_one_account_share_its_quota_and_others_do_not(backend, clock):
    clock.now = LATE_EVENING_CST
    _spend(_budget(backend, _plan(3)), 3)

    with pytest.raises(QuotaSpent):
        _budget(backend, _plan(3)).acquire()  # another connection, the same account
    _spend(_budget(backend, _plan(3, account="other")), 3)


@pytest.mark.django_db
def test_what_the_vendor_reports_raises_the_count_and_sets_the_allowance(backend, clock):
    clock.now = LATE_EVENING_CST
    budget = _budget(backend, _plan(1000))
    _spend(budget, 2)

    budget.quota_observe(QuotaUsage(used=40, limit=50))  # other integrations spent 38
    budget.quota_observe(QuotaUsage(used=10))  # an older answer: the count never falls

    status = budget.quota_status()
    assert (status.used, status.limit, status.left) == (40, 50, 10)
    _spend(budget, 10)
    with pytest.raises(QuotaSpent):
        budget.acquire()


@pytest.mark.django_db
def test_a_reported_count_replaces_ours_so_a_rolling_window_frees_as_the_vendor_says(
    backend, clock
):
    clock.now = datetime(2026, 3, 11, 10, 30, tzinfo=UTC).timestamp()
    budget = _budget(backend, _plan(1000, rolling=True, reported=True))
    budget.quota_observe(QuotaUsage(used=990, limit=1000))  # Salesforce: 990 in 24 hours
    _spend(budget, 10)
    with pytest.raises(QuotaSpent):
        budget.acquire()

    clock.advance(3600)  # an hour on: Salesforce's window lost 300 of them
    budget.quota_observe(QuotaUsage(used=700, limit=1000))

    assert budget.quota_status().used == 700  # not 1,000 held for 25 hours
    _spend(budget, 300)
    assert budget.quota_status().used == 1000


@pytest.mark.django_db
def test_a_spent_reported_quota_lets_one_request_look_again_after_the_wait(backend, clock):
    clock.now = datetime(2026, 3, 11, 10, 30, tzinfo=UTC).timestamp()
    first = _budget(backend, _plan(1000, rolling=True, reported=True))
    second = _budget(backend, _plan(1000, rolling=True, reported=True))
    first.quota_observe(QuotaUsage(used=1000, limit=1000))

    with pytest.raises(QuotaSpent) as spent:
        second.acquire()
    assert spent.value.resets_at == clock.now + 600  # the next look, not 25 hours on
    clock.advance(599)
    with pytest.raises(QuotaSpent):
        first.acquire()
    assert not first.quota_status().stale

    clock.advance(1)
    assert first.quota_status().stale
    first.acquire()  # one request reads the vendor's count again
    with pytest.raises(QuotaSpent):
        second.acquire()  # and only one: the next look is another wait away

    first.quota_observe(QuotaUsage(used=400, limit=1000))  # its answer: the count fell
    _spend(second, 600)
    with pytest.raises(QuotaSpent):
        second.acquire()


@pytest.mark.django_db
def test_the_connections_own_allowance_wins_over_the_vendors(backend, clock):
    clock.now = LATE_EVENING_CST
    budget = _budget(backend, _plan(1000, override=2))
    budget.quota_observe(QuotaUsage(used=0, limit=5000))

    _spend(budget, 2)

    with pytest.raises(QuotaSpent):
        budget.acquire()
    assert budget.quota_status().limit == 2


@pytest.mark.django_db
def test_the_vendor_saying_spent_holds_the_account_until_its_window_ends(backend, clock):
    clock.now = LATE_EVENING_CST
    budget = _budget(backend, _plan(1000))
    budget.acquire()

    error = budget.quota_exhausted("Marketo: 607 Daily quota reached")

    assert "607 Daily quota reached; the records wait for the quota's next window, at " in (
        str(error)
    )
    assert error.resets_at == datetime(2026, 3, 11, 6, 0, tzinfo=UTC).timestamp()
    with pytest.raises(QuotaSpent):
        _budget(backend, _plan(1000)).acquire()
    assert budget.quota_status().left == 0
    clock.now = error.resets_at
    budget.acquire()


@pytest.mark.django_db
def test_the_database_keeps_only_the_counted_slots(settings, hubspot_connection, clock):
    settings.REDIS_URL = None
    clock.now = datetime(2026, 3, 11, 10, 30, tzinfo=UTC).timestamp()
    budget = _budget(hubspot_connection, _plan(100, rolling=True))
    for _ in range(30):
        budget.acquire()
        clock.advance(3600)

    assert len(DailyQuotaCount.objects.get().slots) == 25


@pytest.mark.django_db
def test_an_absurd_count_in_a_vendors_header_is_bounded_not_a_crash(backend, clock):
    clock.now = LATE_EVENING_CST
    budget = _budget(backend, _plan(1000, reported=True))

    budget.quota_observe(QuotaUsage(used=10**12, limit=10**15))

    status = budget.quota_status()
    assert (status.used, status.limit) == (REPORTED_MAX, REPORTED_MAX)
    with pytest.raises(QuotaSpent):
        budget.acquire()
