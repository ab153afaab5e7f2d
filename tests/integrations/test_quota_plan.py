"""A run planned to fit its destination's daily quota: what fits goes (the oldest changes
first), the rest is deferred with the time it goes, and goes when the next window opens.
(The vendor here is an in-memory one; tests/integrations/test_marketo_quota.py drives the
same through the Marketo emulator and its own daily limit.)"""

from datetime import UTC, datetime, timedelta

import pytest

from integrations.connectors import REGISTRY
from integrations.connectors.base import (
    Connector,
    DailyQuota,
    DestinationField,
    DestinationObject,
    Outcome,
    RateSpec,
    RecordResult,
)
from integrations.engine.runs import batch_execute, run_execute
from integrations.models import LedgerEntry, RunStatus, Sync, SyncBatch, SyncRun, Trigger
from integrations.selectors import connector_for
from integrations.services import quota_runs_start, sync_preview, sync_run_start
from tests.factories import CompanyFactory
from tests.integrations.conftest import drive, make_sync, start_and_drive

MIDNIGHT = datetime(2026, 3, 12, tzinfo=UTC)


class QuotaVendor(Connector):
    """Three requests a day, two records a request; every write spends one request of the
    shared budget, as an HTTP request would."""

    slug = "quotavendor"
    label = "Quota vendor"
    auth_kinds = ("api_key",)
    secret_fields = {"api_key": ("api_key",)}
    objects = {"accounts": DestinationObject("accounts", "Accounts", 2)}
    default_rate = RateSpec(1000, 1)
    daily_quota = DailyQuota(3)
    allowed_hosts = ("quota.example",)
    requests_per_task = 1
    writes: list = []

    def list_fields(self, object_name, destination_config):
        return [
            DestinationField("ExternalId", "External id", unique=True),
            DestinationField("Name", "Name"),
        ]

    def upsert(
        self, object_name, records, *, mode, match_field, destination_config, idempotency_key
    ):
        self.http.throttle.acquire()
        QuotaVendor.writes.append([r.match_value for r in records])
        return [RecordResult(r.key, Outcome.CREATED, f"acc-{r.key}") for r in records]


@pytest.fixture
def quota_sync(db, clock):
    from integrations.models import Connection

    clock.now = (MIDNIGHT - timedelta(hours=2)).timestamp()
    REGISTRY[QuotaVendor.slug] = QuotaVendor
    QuotaVendor.writes = []
    connection = Connection(name="quota", vendor="quotavendor", auth_kind="api_key")
    connection.set_credentials({"api_key": "k"})
    connection.save()
    yield make_sync(
        connection,
        obj="accounts",
        mappings=[("name", "Name")],
        match=("external_id", "ExternalId"),
    )
    REGISTRY.pop(QuotaVendor.slug)


def _companies(n):
    """``n`` companies whose keys run opposite to their changes: the last made changed first."""
    return [
        CompanyFactory(updated_at=datetime(2026, 3, 1, tzinfo=UTC) - timedelta(hours=i))
        for i in range(n)
    ]


def test_records_that_do_not_fit_the_daily_quota_are_deferred_oldest_change_last(quota_sync, clock):
    companies = _companies(8)

    run = start_and_drive(quota_sync)

    assert (run.status, run.created, run.deferred, run.failed) == (RunStatus.SUCCEEDED, 6, 2, 0)
    oldest_first = [c.external_id for c in reversed(companies)]
    # Request by request in the order of their changes, not of their keys.
    assert [set(write) for write in QuotaVendor.writes] == [
        set(oldest_first[0:2]),
        set(oldest_first[2:4]),
        set(oldest_first[4:6]),
    ]
    waiting = LedgerEntry.objects.filter(sync=quota_sync, status="pending")
    assert {e.record_key for e in waiting} == {str(c.pk) for c in companies[:2]}
    assert all(
        "goes when the next window opens, at 2026-03-12 00:00 UTC" in e.last_error for e in waiting
    )
    quota_sync.refresh_from_db()
    assert quota_sync.quota_resume_at == MIDNIGHT


def test_the_deferred_records_go_when_the_next_window_opens(quota_sync, clock):
    companies = _companies(8)
    start_and_drive(quota_sync)
    assert quota_runs_start() == 0  # the window is still closed

    clock.now = MIDNIGHT.timestamp()
    assert quota_runs_start() == 1
    run = drive(SyncRun.objects.get(sync=quota_sync, trigger=Trigger.QUOTA))

    assert (run.status, run.created, run.deferred) == (RunStatus.SUCCEEDED, 2, 0)
    assert len(QuotaVendor.writes) == 4  # three yesterday, one today
    sent = [value for write in QuotaVendor.writes for value in write]
    assert sorted(sent) == sorted(c.external_id for c in companies)  # each once
    assert not LedgerEntry.objects.filter(sync=quota_sync).exclude(status="synced").exists()
    assert Sync.objects.get(pk=quota_sync.pk).quota_resume_at is None
    assert quota_runs_start() == 0


def test_a_run_that_fits_is_not_held_back(quota_sync):
    _companies(6)

    run = start_and_drive(quota_sync)

    assert (run.created, run.deferred) == (6, 0)
    assert Sync.objects.get(pk=quota_sync.pk).quota_resume_at is None


def test_a_quota_spent_by_another_sync_meanwhile_defers_a_batch_and_fails_nothing(quota_sync):
    _companies(4)  # two requests: they fit in the three left when the run is planned
    run = sync_run_start(sync=quota_sync, trigger="manual")
    run_execute(run_id=run.pk)
    budget = connector_for(quota_sync.connection).http.throttle
    budget.acquire()
    budget.acquire()  # another sync on the account spends two of them meanwhile

    for batch in SyncBatch.objects.filter(run=run).order_by("pk"):
        batch_execute(batch_id=batch.pk)

    run.refresh_from_db()
    assert (run.status, run.created, run.deferred, run.failed, run.dead_lettered) == (
        RunStatus.SUCCEEDED,
        2,
        2,
        0,
        0,
    )
    assert len(QuotaVendor.writes) == 1  # the request over the quota was never sent
    # Planned again by the next run (their first write's intent stays noted).
    waiting = LedgerEntry.objects.filter(sync=quota_sync, status__in=["pending", "intent_create"])
    assert waiting.count() == 2
    assert all("daily quota for this account is spent (3 of 3" in e.last_error for e in waiting)
    assert Sync.objects.get(pk=quota_sync.pk).quota_resume_at == MIDNIGHT


def test_the_preview_says_what_the_quota_would_defer(quota_sync):
    _companies(8)

    preview = sync_preview(sync=quota_sync)

    assert (preview.preview["would_send"], preview.deferred) == (6, 2)
    assert QuotaVendor.writes == []
