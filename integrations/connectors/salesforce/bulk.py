"""Bulk API 2.0 ingest jobs: a large run's records upserted by external id in jobs of
MKT_SALESFORCE_BULK_JOB_RECORDS, their per-record results read back from the result files.

Facts from ../shared/VENDORS.md §4 [S12][S13][S14][S15]: ``POST .../jobs/ingest`` (object,
``upsert``, ``externalIdFieldName``, CSV, LF, COMMA); one ``PUT .../batches`` of CSV per job;
``PATCH`` ``UploadComplete`` (without it the job never starts); poll the job until
``JobComplete`` or ``Failed``; then ``successfulResults`` (``sf__Id``, ``sf__Created``, our
columns), ``failedResults`` (``sf__Id``, ``sf__Error``, our columns) and
``unprocessedrecords`` (our columns); at most 150 MB per upload.

The CSV is written while it is sent and the result files are read while they arrive (never a
whole file in memory). The job's id is stored (``JobTicket``) before its data is sent, and
again once the data is in it: a worker that takes over a job with data closes and polls it and
never uploads it again; one without data is aborted and done again (it never ran).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from typing import BinaryIO, cast

from integrations.connectors.base import (
    DestinationField,
    JobTicket,
    Outcome,
    OutRecord,
    RecordResult,
)
from integrations.connectors.salesforce.api import API, SalesforceApi
from integrations.connectors.salesforce.fields import csv_cell
from mktintegration.errors import ConnectorError, ErrorKind

log = logging.getLogger(__name__)
CHUNK_BYTES = 64 * 1024
RUNNING = ("Open", "UploadComplete", "InProgress")
# Per-record errors that pass: the record is sent again, never dead-lettered for them.
RETRY_CODES = {"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE"}


class CsvBody:
    """The job's CSV, produced while it is sent (iterable again: a resend after a renewed
    token writes it once more)."""

    def __init__(self, columns: list[str], records: list[OutRecord], fields: dict):
        self.columns, self.records, self.fields = columns, records, fields

    def __iter__(self) -> Iterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        specs = [self.fields.get(column) for column in self.columns]
        for record in self.records:
            payload = record.payload
            writer.writerow(
                [
                    csv_cell(spec, column, payload.get(column))
                    for spec, column in zip(specs, self.columns, strict=True)
                ]
            )
            if buffer.tell() >= CHUNK_BYTES:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()


def columns_of(records: list[OutRecord], match_field: str) -> list[str]:
    """The external id first, then every field any record carries (an opt-out carries two)."""
    seen = dict.fromkeys([match_field])
    for record in records:
        seen.update(dict.fromkeys(record.payload))
    return list(seen)


def record_outcome(key: str, error: str, destination_id: str = "") -> RecordResult:
    """A refused record, from Salesforce's ``statusCode`` and message."""
    code, _, message = error.partition(":")
    message = message.rstrip(" -").rstrip(":") or error
    if code in RETRY_CODES:
        return RecordResult(key, Outcome.RETRY, destination_id, f"{code}: {message}", code)
    if code == "DUPLICATE_EXTERNAL_ID":
        message = f"several Salesforce records have this external id; merge them ({message})"
    return RecordResult(key, Outcome.REJECTED, destination_id, f"{code}: {message}"[:500], code)


class BulkJobs:
    def __init__(self, api: SalesforceApi):
        self.api = api

    def _path(self, job_id: str = "", tail: str = "") -> str:
        path = f"{API}/jobs/ingest"
        return f"{path}/{job_id}{tail}" if job_id else path

    def info(self, job_id: str) -> dict:
        return self.api.call("GET", self._path(job_id), what="Bulk job status").json()

    def submit(
        self,
        sobject: str,
        records: list[OutRecord],
        *,
        match_field: str,
        fields: dict[str, DestinationField],
        ticket: JobTicket,
    ) -> str:
        """The records in a job that is closed (processing), its id."""
        if ticket.stage == JobTicket.LOADED:
            if self.info(ticket.ref)["state"] == "Open":
                self._close(ticket.ref)
            return ticket.ref
        if ticket.ref:
            self._abort(ticket.ref)  # a worker before us died before its data was in it
        job = self.api.call(
            "POST",
            self._path(),
            what="Bulk job create",
            json={
                "object": sobject,
                "operation": "upsert",
                "externalIdFieldName": match_field,
                "contentType": "CSV",
                "lineEnding": "LF",
                "columnDelimiter": "COMMA",
            },
        ).json()
        ticket.advance(job["id"], JobTicket.CREATED)
        self.api.call(
            "PUT",
            self._path(job["id"], "/batches"),
            what="Bulk job upload",
            records=len(records),
            data=CsvBody(columns_of(records, match_field), records, fields),
            headers={"Content-Type": "text/csv"},
        )
        ticket.advance(job["id"], JobTicket.LOADED)
        self._close(job["id"])
        return job["id"]

    def _close(self, job_id: str) -> None:
        self.api.call(
            "PATCH",
            self._path(job_id),
            what="Bulk job close",
            json={"state": "UploadComplete"},
        )

    def _abort(self, job_id: str) -> None:
        try:
            self.api.call(
                "PATCH", self._path(job_id), what="Bulk job abort", json={"state": "Aborted"}
            )
        except ConnectorError as exc:
            if exc.kind not in (ErrorKind.PERMANENT, ErrorKind.CONFIG):
                raise
            log.warning("Bulk job %s not aborted: %s", job_id, exc)

    def poll(self, job_id: str, records: list[OutRecord]):
        """The records' results once the job ended, else None."""
        info = self.info(job_id)
        state = info.get("state", "")
        if state in RUNNING:
            return None
        match_field = str(info.get("externalIdFieldName") or "")
        by_value = {record.match_value.lower(): record.key for record in records}
        results: dict[str, RecordResult] = {}
        why = info.get("errorMessage") or f"the job ended {state}"
        if state in ("JobComplete", "Failed"):
            for row in self._rows(job_id, "/successfulResults/", match_field, by_value):
                key, sf_id, created = row
                outcome = Outcome.CREATED if created.lower() == "true" else Outcome.UPDATED
                results[key] = RecordResult(key, outcome, sf_id)
            for key, sf_id, error in self._rows(job_id, "/failedResults/", match_field, by_value):
                results[key] = record_outcome(key, error, sf_id)
            for key, _, _ in self._rows(job_id, "/unprocessedrecords/", match_field, by_value):
                results[key] = RecordResult(
                    key, Outcome.RETRY, "", f"Salesforce did not process it ({why})"
                )
        for record in records:
            results.setdefault(
                record.key,
                RecordResult(record.key, Outcome.RETRY, "", f"Salesforce did not report it: {why}"),
            )
        return [results[record.key] for record in records]

    def _rows(self, job_id: str, tail: str, match_field: str, by_value: dict[str, str]):
        """(record key, sf__Id, sf__Created or sf__Error) of each row of a result file, read
        while it arrives."""
        response = self.api.call(
            "GET", self._path(job_id, tail), what="Bulk job results", stream=True
        )
        try:
            response.raw.decode_content = True
            response.raw.auto_close = False  # read through a TextIOWrapper to its end
            raw = cast(BinaryIO, response.raw)
            reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
            header = next(reader, None) or []
            if match_field not in header:
                return
            at = header.index(match_field)
            has_id = bool(header) and header[0] == "sf__Id"
            for row in reader:
                key = by_value.get(row[at].lower()) if at < len(row) else None
                if key is not None:
                    yield key, row[0] if has_id else "", row[1] if has_id else ""
        finally:
            response.close()
