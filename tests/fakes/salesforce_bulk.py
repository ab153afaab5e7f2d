"""Bulk API 2.0 ingest jobs for ``FakeSalesforce`` [S12][S13][S14][S15].

A job is created ``Open``, takes one CSV upload (a second one makes the close fail, as
Salesforce answers "make sure you only do 'PUT' once on a given Job"), is closed with
``UploadComplete``, runs for ``job_seconds`` (``InProgress``) and is then processed row by row
through the org's one write path: ``JobComplete`` with successful, failed and unprocessed
results as CSV (``sf__Id``, ``sf__Created`` / ``sf__Error``, then the uploaded columns). A job
may be made to fail (``Failed``, every row unprocessed). No lock of its own.
"""

from __future__ import annotations

import csv
import io
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.salesforce_store import Org, RecordError, iso_now

MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # 150 MB after base64 [S14]; simple-salesforce: 100 MB [S15]
OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")


@dataclass
class Job:
    id: str
    object: str
    operation: str
    external_id: str
    created: str = field(default_factory=iso_now)
    state: str = "Open"
    uploads: int = 0
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    closed_at: float | None = None
    fail_message: str = ""
    successful: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    processed_rows: int = 0

    def info(self, api_version: str) -> dict[str, Any]:
        body = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": "005000000000001AAA",
            "createdDate": self.created,
            "systemModstamp": iso_now(),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(api_version.lstrip("v")),
            "jobType": "V2Ingest",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
            "numberRecordsProcessed": self.processed_rows,
            "numberRecordsFailed": len(self.failed),
            "retries": 0,
            "totalProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "apexProcessingTime": 0,
        }
        if self.external_id:
            body["externalIdFieldName"] = self.external_id
        if self.state == "Open":
            body["contentUrl"] = f"services/data/{api_version}/jobs/ingest/{self.id}/batches"
        if self.state == "Failed":
            body["errorMessage"] = self.fail_message
        return body


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    """Results as Salesforce writes them: every value quoted, LF line endings."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


class Jobs:
    def __init__(self, org: Org) -> None:
        self.org = org
        self.jobs: dict[str, Job] = {}
        self.ids = itertools.count(1)
        self.job_seconds = 0.0  # how long a closed job runs before it completes
        self.fail_next_jobs: list[str] = []  # messages: the next jobs to close fail with them
        self.uploaded_rows = 0  # every CSV row ever uploaded (to tell a second upload)

    def create(self, body: dict[str, Any]) -> Job:
        job = Job(
            id=f"750{next(self.ids):012d}AAA",
            object=body["object"],
            operation=body["operation"],
            external_id=body.get("externalIdFieldName", ""),
        )
        self.jobs[job.id] = job
        return job

    def header_problems(self, job: Job, header: list[str]) -> list[str]:
        """Columns the object does not have, or that may not be written [S12]."""
        store = self.org.objects[job.object]
        problems = []
        for name in header:
            if "." in name:
                relationship, ext_field = name.split(".", 1)
                spec = next(
                    (f for f in store.fields.values() if f.relationship == relationship), None
                )
                target = self.org.objects.get(spec.reference_to[0]) if spec else None
                ext = target.fields.get(ext_field) if target else None
                if ext is None or not ext.external_id:
                    problems.append(
                        f"column {name}: not a relationship to an external id field of {store.name}"
                    )
            elif name not in store.fields:
                problems.append(f"column {name}: No such column on {store.name}")
        if job.operation == "upsert" and job.external_id not in header:
            problems.append(f"the external id field {job.external_id} is not a column")
        if len(set(header)) != len(header):
            problems.append("a column appears twice")
        return problems

    def upload(self, job: Job, text: str) -> list[str]:
        """Store the CSV of an Open job; the problems with its shape (violations)."""
        job.uploads += 1
        if job.uploads > 1:
            return ["a second upload to one job [S12] (Bulk API 2.0 takes one PUT per job)"]
        if "\r\n" in text:
            return ["lineEnding is LF, but the CSV has CRLF line endings"]
        if len(text.encode()) > MAX_UPLOAD_BYTES:
            return [f"the upload is over {MAX_UPLOAD_BYTES} bytes [S14]"]
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, [])
        problems = self.header_problems(job, header)
        rows = list(reader)
        problems += [
            f"row {i + 2}: {len(row)} values for {len(header)} columns"
            for i, row in enumerate(rows)
            if len(row) != len(header)
        ][:5]
        if job.operation == "upsert" and job.external_id in header:
            at = header.index(job.external_id)
            seen: set[str] = set()
            for row in rows:
                value = row[at].lower() if at < len(row) else ""
                if value in seen:  # emulator choice: the planner never sends one record twice
                    problems.append(f"external id {row[at]!r} appears twice in one job")
                seen.add(value)
        job.header, job.rows = header, rows
        self.uploaded_rows += len(rows)
        return problems

    def close(self, job: Job) -> None:
        job.state = "UploadComplete"
        job.closed_at = time.monotonic()
        if self.fail_next_jobs:
            job.fail_message = self.fail_next_jobs.pop(0)

    def advance(self, job: Job) -> None:
        """UploadComplete -> InProgress -> JobComplete (or Failed) as time passes."""
        if job.state not in ("UploadComplete", "InProgress") or job.closed_at is None:
            return
        if time.monotonic() - job.closed_at < self.job_seconds:
            job.state = "InProgress"
            return
        if job.fail_message:
            job.state = "Failed"
            job.unprocessed = job.rows
            return
        self.process(job)
        job.state = "JobComplete"

    def process(self, job: Job) -> None:
        store = self.org.objects[job.object]
        header = job.header
        for row in job.rows:
            data = dict(zip(header, row, strict=True))
            job.processed_rows += 1
            try:
                if job.operation == "upsert":
                    record, created = self.org.upsert(store, job.external_id, data, csv=True)
                elif job.operation == "update":
                    record = store.records.get(data.pop("Id", ""))
                    if record is None or record["IsDeleted"]:
                        raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
                    self.org.update(
                        store, record, self.org.values(store, data, csv=True, create=False)
                    )
                    created = False
                else:
                    raise RecordError("INVALID_OPERATION", f"{job.operation} is not emulated")
            except RecordError as exc:
                fields = ":".join(exc.fields)
                job.failed.append(["", f"{exc.code}:{exc.message}:{fields} --", *row])
                continue
            job.successful.append([record["Id"], "true" if created else "false", *row])

    def results(self, job: Job, kind: str) -> str:
        if kind == "successfulResults":
            return csv_text(["sf__Id", "sf__Created", *job.header], job.successful)
        if kind == "failedResults":
            return csv_text(["sf__Id", "sf__Error", *job.header], job.failed)
        return csv_text(job.header, job.unprocessed)
