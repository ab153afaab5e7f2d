"""Marketo's daily quota end to end, against an emulator whose quota is small: a run three
times the quota completes over three of Marketo's days (a fake clock), the oldest changes
first, nothing lost, nothing sent twice, and never a request over the quota; meanwhile the
deferred records are in the ledger (admin) with the time they go."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from exports.backbone.models import Company
from integrations.models import DeadLetter, LedgerEntry, RunStatus, Sync, SyncRun, Trigger
from integrations.services import quota_runs_start
from mktintegration import roles
from tests.factories import CompanyFactory
from tests.integrations.conftest import drive, make_marketo_connection, make_sync, start_and_drive

pytestmark = pytest.mark.django_db
QUOTA = 5  # requests a day: a describe and four Sync Companies of 300 each
PER_DAY = 4 * 300
NOON = datetime(2026, 3, 11, 18, tzinfo=UTC)  # 12:00 CST
MIDNIGHT_CST = datetime(2026, 3, 12, 6, tzinfo=UTC)


def _companies(n):
    """``n`` companies whose keys run opposite to their changes (the last made changed first)."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    Company.objects.bulk_create(
        CompanyFactory.build(external_id=f"Q-{i:05d}", updated_at=start - timedelta(minutes=i))
        for i in range(n)
    )
    return list(Company.objects.order_by("updated_at", "id"))  # oldest change first


def _marketo_day(timestamp: float) -> int:
    """Marketo's day (from midnight CST, 06:00 UTC) a request fell in."""
    return int((timestamp - 6 * 3600) // 86_400)


def test_a_run_three_times_the_daily_quota_completes_over_three_days(marketo, clock, client_for):
    clock.now = NOON.timestamp()
    marketo.set_daily_limit(QUOTA, utc_offset_hours=-6)
    connection = make_marketo_connection(marketo, daily_quota_requests=QUOTA)
    oldest_first = _companies(3 * PER_DAY)
    sync = make_sync(
        connection,
        obj="companies",
        mappings=[("name", "company"), ("employees", "numberOfEmployees")],
        match=("external_id", "externalCompanyId"),
    )

    runs = [start_and_drive(sync)]
    ledger = client_for(roles.INTEGRATION_ADMIN).get(
        "/admin/integrations/ledgerentry/", {"status": "pending"}
    )
    waiting = ledger.content.decode()
    assert "2400 ledger entries" in waiting  # every deferred record, pending in the ledger
    assert waiting.count("it goes when the next window opens, at 2026-03-12 06:00 UTC") == 50
    for day in (1, 2):
        resume = Sync.objects.get(pk=sync.pk).quota_resume_at
        assert resume == MIDNIGHT_CST + timedelta(days=day - 1)
        clock.now = resume.timestamp() - 60
        assert quota_runs_start() == 0  # a minute before Marketo's midnight: nothing yet
        clock.now = resume.timestamp()
        assert quota_runs_start() == 1
        runs.append(drive(SyncRun.objects.get(sync=sync, trigger=Trigger.QUOTA, status="queued")))

    # Day one: a describe and four calls; then four or five (when the field list is still
    # cached, the describe costs nothing): three of Marketo's days either way.
    assert [(r.status, r.failed) for r in runs] == [(RunStatus.SUCCEEDED, 0)] * 3
    assert (runs[0].created, runs[0].deferred) == (PER_DAY, 2 * PER_DAY)
    assert runs[1].created in (PER_DAY, PER_DAY + 300)
    assert runs[1].deferred == 3 * PER_DAY - runs[0].created - runs[1].created > 0
    assert (runs[2].created, runs[2].deferred) == (runs[1].deferred, 0)
    assert marketo.daily_refused == 0  # never a request over the quota (no 607)
    calls = [r for r in marketo.requests if r.path.startswith("/rest/")]
    per_day = Counter(_marketo_day(r.timestamp) for r in calls)
    assert len(per_day) == 3 and max(per_day.values()) <= QUOTA, per_day
    writes = marketo.calls("/rest/v1/companies.json", method="POST")
    sent = [record["externalCompanyId"] for w in writes for record in w.body["input"]]
    assert sorted(sent) == sorted(c.external_id for c in oldest_first)  # each exactly once
    first_day = {record["externalCompanyId"] for w in writes[:4] for record in w.body["input"]}
    assert first_day == {c.external_id for c in oldest_first[:PER_DAY]}  # oldest changes first
    assert all(marketo.create_count("company", "externalCompanyId", v) == 1 for v in sent[:50])
    assert LedgerEntry.objects.filter(sync=sync, status="synced").count() == 3 * PER_DAY
    assert not DeadLetter.objects.exists()
    assert Sync.objects.get(pk=sync.pk).quota_resume_at is None
