"""A vendor that accepts records into a job and reports later (Constant Contact imports,
Salesforce Bulk API 2.0) fits the engine as is: the batch waits and is polled."""

import itertools

import pytest
from django.utils import timezone

from integrations.connectors import REGISTRY
from integrations.connectors.base import (
    Connector,
    DestinationObject,
    Outcome,
    RateSpec,
    RecordResult,
)
from integrations.engine.runs import batch_execute, batch_poll, run_execute
from integrations.models import Connection, FieldMapping, LedgerEntry, RunStatus, Sync, SyncBatch
from integrations.models.runs import BatchStatus
from tests.factories import CompanyFactory


class JobVendor(Connector):
    """An in-memory bulk-job vendor: jobs finish on the second poll; 'BAD' names are refused."""

    slug = "jobvendor"
    label = "Job vendor"
    auth_kinds = ("api_key",)
    secret_fields = {"api_key": ("api_key",)}
    objects = {"accounts": DestinationObject("accounts", "Accounts", 50)}
    default_rate = RateSpec(1000, 1)
    allowed_hosts = ("jobs.example",)
    requests_per_task = 1
    jobs: dict = {}
    polls: dict = {}
    ids = itertools.count(1)

    def upsert(
        self, object_name, records, *, mode, match_field, destination_config, idempotency_key
    ):
        job = f"job-{next(self.ids)}"
        JobVendor.jobs[job] = records
        return [RecordResult(r.key, Outcome.ACCEPTED, job_ref=job) for r in records]

    def poll(self, job_ref, records):
        JobVendor.polls[job_ref] = JobVendor.polls.get(job_ref, 0) + 1
        if JobVendor.polls[job_ref] < 2:
            return None
        return [
            RecordResult(r.key, Outcome.REJECTED, message="name refused")
            if r.payload.get("Name") == "BAD"
            else RecordResult(r.key, Outcome.CREATED, f"acc-{r.key}")
            for r in JobVendor.jobs[job_ref]
        ]


@pytest.fixture
def job_sync(db):
    REGISTRY[JobVendor.slug] = JobVendor
    connection = Connection(name="jobs", vendor="jobvendor", auth_kind="api_key")
    connection.set_credentials({"api_key": "k"})
    connection.save()
    sync = Sync.objects.create(
        name="to jobs",
        connection=connection,
        dataset="clients",
        destination_object="accounts",
        match_source_field="external_id",
        match_destination_field="ExternalId",
    )
    FieldMapping.objects.create(sync=sync, source_field="name", destination_field="Name")
    yield sync
    REGISTRY.pop(JobVendor.slug)


@pytest.mark.django_db
def test_records_in_a_vendor_job_are_committed_when_the_job_reports(job_sync):
    good = CompanyFactory.create_batch(3)
    CompanyFactory(name="BAD")
    from integrations.services import sync_run_start

    run = sync_run_start(sync=job_sync, trigger="manual")
    run_execute(run_id=run.pk)
    batch = SyncBatch.objects.get(run=run)
    batch_execute(batch_id=batch.pk)

    batch.refresh_from_db()
    assert batch.status == BatchStatus.WAITING and batch.job_ref.startswith("job-")
    assert not LedgerEntry.objects.filter(status="synced").exists()  # nothing confirmed yet

    for _ in range(2):  # the job is still running at the first poll
        SyncBatch.objects.filter(pk=batch.pk).update(not_before=timezone.now())
        batch_poll(batch_id=batch.pk)

    run.refresh_from_db()
    assert (run.created, run.dead_lettered, run.status) == (3, 1, RunStatus.PARTIAL)
    synced = LedgerEntry.objects.filter(status="synced")
    assert {e.record_key for e in synced} == {str(c.pk) for c in good}
    assert all(e.payload_hash and e.payload_hash == e.sent_hash for e in synced)


@pytest.mark.django_db
def test_a_poll_handed_to_a_second_worker_is_committed_once(job_sync, settings):
    """The reaper hands a poll that stopped beating to another worker; if the first one was
    only slow, both read the job's results. The first to commit wins; the other's commit is
    dropped whole, so no record and no count is there twice."""
    from integrations.engine.runs import runs_reap
    from integrations.services import sync_run_start

    CompanyFactory.create_batch(3)
    run = sync_run_start(sync=job_sync, trigger="manual")
    run_execute(run_id=run.pk)
    batch = SyncBatch.objects.get(run=run)
    batch_execute(batch_id=batch.pk)
    JobVendor.polls[SyncBatch.objects.get(pk=batch.pk).job_ref] = 1  # done at the next poll
    real_poll = JobVendor.poll
    settings.MKT_RUN_STALE_SECONDS = 60

    def slow_poll(self, job_ref, records):
        JobVendor.poll = real_poll  # the second worker's poll is an ordinary one
        # Meanwhile: no heartbeat for longer than the stale time; the reaper hands the batch
        # back, and a second worker polls it to the end.
        SyncBatch.objects.filter(pk=batch.pk).update(
            heartbeat_at=timezone.now() - timezone.timedelta(seconds=120)
        )
        runs_reap()
        batch_poll(batch_id=batch.pk)
        JobVendor.polls[job_ref] = 1
        return real_poll(self, job_ref, records)

    JobVendor.poll = slow_poll
    SyncBatch.objects.filter(pk=batch.pk).update(not_before=timezone.now())
    try:
        batch_poll(batch_id=batch.pk)
    finally:
        JobVendor.poll = real_poll

    run.refresh_from_db()
    assert (run.created, run.batches_done, run.status) == (3, 1, RunStatus.SUCCEEDED)
    assert LedgerEntry.objects.filter(status="synced").count() == 3
