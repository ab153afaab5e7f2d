"""The Salesforce part of ``bench/sync_bench.py --vendor salesforce``: contacts through Bulk API
2.0 against the emulator, end to end from plan to ledger commit, by a real Celery worker.

The backbone gets one bench company (``SF-BENCH-<records>``) with exactly ``--records``
consented contacts (inserted once, reused by later runs of the same size); the sync sends them
to Salesforce Contacts by external id with their Account linked. The emulator runs jobs at once
(no artificial job delay). The worker's memory is sampled while it delivers: the largest
process of the worker (the pool child doing the work) is what must stay small and flat.

Imported by sync_bench.py after django.setup().
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from django.db import connections
from django.utils import timezone

from exports.backbone import models as bb
from exports.backbone.router import backbone_alias
from integrations.models import Connection, FieldMapping, LedgerEntry, Sync
from integrations.services import sync_delete, sync_run_start
from tests.fakes.salesforce import FakeSalesforce
from tests.fakes.salesforce_oauth import CLIENT_ID, CLIENT_SECRET
from tests.integrations.contract.profiles.salesforce import connected

NAME = "bench salesforce"
MAPPINGS = [
    ("first_name", "FirstName"),
    ("last_name", "LastName"),
    ("email", "Email"),
    ("title", "Title"),
    ("company_external_id", "Account.External_Id__c"),
]
CHUNK = 20_000


def bench_company(records: int) -> bb.Company:
    """The bench company with exactly ``records`` contacts, each with e-mail consent."""
    external_id = f"SF-BENCH-{records}"
    db = backbone_alias()
    company = bb.Company.objects.using(db).filter(external_id=external_id).first()
    if company is not None and company.contacts.count() == records:
        return company
    if company is not None:
        company.delete()
    now = timezone.now()
    company = bb.Company.objects.using(db).create(
        external_id=external_id,
        name=f"Salesforce bench {records}",
        domain=f"sf-bench-{records}.example",
        country="DE",
        residency_region="eu",
        lifecycle_stage="customer",
        created_at=now,
        updated_at=now,
    )
    started = time.monotonic()
    for start in range(0, records, CHUNK):
        contacts = bb.Contact.objects.using(db).bulk_create(
            bb.Contact(
                company=company,
                email=f"sf{records}-{i}@bench.example",
                first_name="Bench",
                last_name=f"Person {i}",
                title="Buyer",
                country="DE",
                region="eu",
                created_at=now,
                updated_at=now,
            )
            for i in range(start, min(start + CHUNK, records))
        )
        bb.ConsentRecord.objects.using(db).bulk_create(
            bb.ConsentRecord(
                contact=c,
                purpose="email_marketing",
                channel="email",
                status="granted",
                recorded_at=now,
            )
            for c in contacts
        )
    with connections[db].cursor() as cursor:
        cursor.execute("ANALYZE backbone_contact")
        cursor.execute("ANALYZE backbone_consentrecord")
    print(f"  inserted {records:,} bench contacts in {time.monotonic() - started:.0f} s")
    return company


def make_sync(server: FakeSalesforce, company: bb.Company) -> Sync:
    old = Sync.objects.filter(name=NAME).first()
    if old is not None:
        sync_delete(sync=old)
        with connections["default"].cursor() as cursor:
            for table in ("integrations_ledgerentry", "integrations_syncbatch"):
                cursor.execute(f"VACUUM ANALYZE {table}")
    Connection.objects.filter(name=NAME).delete()
    sync = Sync.objects.create(
        name=NAME,
        connection=connected("salesforce", server, name=NAME, rate_limit_requests=1_000_000),
        dataset="contacts",
        filters={"company_external_id": company.external_id},
        destination_object="Contact",
        match_source_field="email",
        match_destination_field="External_Id__c",
        consent_purpose="email_marketing",
    )
    for position, (source, target) in enumerate(MAPPINGS):
        FieldMapping.objects.create(
            sync=sync, source_field=source, destination_field=target, position=position
        )
    return sync


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _tree(pid: int) -> list[int]:
    """The worker and its pool children."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            pids += [int(p) for p in task.read_text().split()]
    return pids


class RssSampler(threading.Thread):
    """Every 0.5 s: the largest RSS of any worker process; and when the plan ended."""

    def __init__(self, pid: int, run_id: int):
        super().__init__(daemon=True)
        self.pid, self.run_id = pid, run_id
        self.samples: list[tuple[float, float]] = []  # (seconds since the start, MB)
        self.planned_after: float | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        from integrations.models import SyncRun

        started = time.monotonic()
        while not self.stopping.wait(0.5):
            largest = max((_rss_mb(p) for p in _tree(self.pid)), default=0.0)
            self.samples.append((time.monotonic() - started, largest))
            status = SyncRun.objects.filter(pk=self.run_id).values_list("status", flat=True)
            if self.planned_after is None and status.first() not in ("queued", "planning"):
                self.planned_after = time.monotonic() - started
        connections.close_all()

    def peak(self, lo: float, hi: float) -> float:
        """The peak between these shares of the run's duration."""
        end = self.samples[-1][0] if self.samples else 0.0
        return max((mb for at, mb in self.samples if lo * end <= at <= hi * end), default=0.0)


def measure(*, records: int, concurrency: int, job_records: int, poll_seconds: float) -> list:
    from tests.worker import WorkerProcess

    company = bench_company(records)
    os.environ.update(
        MKT_SALESFORCE_BULK_JOB_RECORDS=str(job_records),
        MKT_SYNC_JOB_POLL_SECONDS=str(poll_seconds),
        MKT_SALESFORCE_CLIENT_ID=CLIENT_ID,
        MKT_SALESFORCE_CLIENT_SECRET=CLIENT_SECRET,
    )
    with FakeSalesforce() as server:
        server.bulk.job_seconds = 0.0
        server.add_record("Account", {"Name": company.name, "External_Id__c": company.external_id})
        sync = make_sync(server, company)
        worker = WorkerProcess(concurrency=concurrency, name="bench-salesforce").start()
        time.sleep(3)  # the worker's start is not measured
        try:
            started = time.monotonic()
            run = sync_run_start(sync=sync, trigger="manual", full=True)
            sampler = RssSampler(worker.process.pid, run.pk)
            sampler.start()
            while True:
                run.refresh_from_db()
                if run.status not in ("queued", "planning", "delivering"):
                    break
                if time.monotonic() - started > 3600:
                    raise TimeoutError("the run did not finish in an hour")
                time.sleep(0.5)
            seconds = time.monotonic() - started
            sampler.stopping.set()
            sampler.join()
        finally:
            worker.stop()
        stored = [r for r in server.records("Contact") if r["External_Id__c"]]
        linked = sum(1 for r in stored if r["AccountId"])
        jobs = len(server.bulk.jobs)
        uploaded = server.bulk.uploaded_rows
        collections = len(server.calls("/composite/sobjects"))
        violations = list(server.violations)
    synced = LedgerEntry.objects.filter(sync=sync, status="synced").count()
    rate = run.created / seconds
    peak = max((mb for _, mb in sampler.samples), default=0.0)
    first_half, second_half = sampler.peak(0, 0.5), sampler.peak(0.5, 1)
    print(
        f"  {run.status}: {run.created:,} created, {synced:,} synced in the ledger, "
        f"{len(stored):,} at Salesforce ({linked:,} linked to the Account) in {seconds:.1f} s "
        f"(planned in {sampler.planned_after or 0:.1f} s); "
        f"{jobs} jobs, {uploaded:,} rows uploaded, {collections} Collections requests; "
        f"worker RSS peak {peak:.0f} MB (first half {first_half:.0f}, second {second_half:.0f})",
        flush=True,
    )
    for problem in violations[:5]:
        print(f"  emulator: {problem[:300]}")
    lost = records - synced
    twice = uploaded - records
    return [
        (
            "salesforce bulk records/s",
            f"{rate:,.0f}",
            ">= 20,000",
            "salesforce_bulk_records_per_s",
            f"{rate:.0f}",
        ),
        (
            "worker RSS peak, MB",
            f"{peak:.0f}",
            "< 300",
            "salesforce_worker_rss_mb",
            f"{peak:.0f}",
        ),
        (
            "worker RSS 2nd half - 1st, MB",
            f"{second_half - first_half:+.0f}",
            "flat",
            "salesforce_worker_rss_growth_mb",
            f"{second_half - first_half:.0f}",
        ),
        ("records not committed", str(lost), "0", "salesforce_records_lost", str(lost)),
        ("rows uploaded twice", str(twice), "0", "salesforce_rows_uploaded_twice", str(twice)),
    ]
