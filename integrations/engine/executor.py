"""Deliver and commit one batch.

The records are read from the source again and gated again (consent and region are checked
at send time, failing closed: the consent service is asked afresh, and a record it cannot
answer for is deferred, not sent), sent through the connector under the connection's shared rate
budget, and each record's result is committed to the ledger in one transaction, after the
destination answered. A record the destination did not confirm is never marked synced.

A batch that meets its account's spent daily quota (the rate budget refused the request, or
the vendor said so) is deferred: its records stay pending, counted ``deferred``, and go with
the run that starts when the quota's next window opens.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from integrations.connectors.base import JobTicket, Outcome, OutRecord, RecordResult
from integrations.engine.ledger_io import EntryRow, ledger_entries, rows_update
from integrations.engine.planner import DEFERRED, Decision, SyncContext
from integrations.engine.ratelimit import RateWaitTooLong
from integrations.engine.state import run_counters_add, sync_quota_resume
from integrations.events_out.outbox import outbox_deliveries
from integrations.models import (
    DeadLetter,
    LedgerEntry,
    LedgerStatus,
    SyncBatch,
    SyncRun,
)
from integrations.models.runs import BatchStatus
from integrations.selectors import connector_for
from mktintegration.errors import ConnectorError, ErrorKind, QuotaSpent

MAX_BACKOFF = 900.0
_DELIVERED = (Outcome.CREATED, Outcome.UPDATED)
# A request the vendor refuses as a whole is halved at most this often to find the record at
# fault (one request becomes at most 1 + 2 + 4 = 7); the rest of it is then dead-lettered.
MAX_SPLITS = 2
# The consent evidence of a send (see LedgerEntry), written with the send's other columns.
CONSENT_FIELDS = ("consent_source", "consent_ref", "consent_checked_at")


def job_poll_seconds() -> float:
    """How long a batch waits between two looks at its vendor job."""
    return settings.MKT_SYNC_JOB_POLL_SECONDS


# A batch whose records go to the vendor in one job (Connector.submit_job), not in requests of
# the object's max_batch.
JOB = "job"


class BatchTakenOver(Exception):
    """Another worker finished this batch first (the reaper handed it over while this one was
    only slow): this worker's commit is dropped whole."""


@dataclass
class BatchResult:
    """What happened to a batch, for the run's counters and for rescheduling."""

    counts: Counter = field(default_factory=Counter)
    retry_in: float | None = None  # requeue the same batch after this many seconds
    new_batches: list[int] = field(default_factory=list)  # split off (bisection)
    pause_reason: str = ""
    api_calls: int = 0
    rate_limited: int = 0
    waiting_job: bool = False
    poll_in: float | None = None  # poll the job again after this long (default: job_poll_seconds())
    run_complete: bool = False  # this batch was the run's last to finish


def idempotency_key(sync_id: int, key: str, payload_hash: str) -> str:
    return hashlib.sha256(f"{sync_id}:{key}:{payload_hash}".encode()).hexdigest()[:32]


def backoff_seconds(attempt: int) -> float:
    base = settings.MKT_SYNC_RETRY_BASE_SECONDS * (2 ** max(attempt - 1, 0))
    return min(base * random.uniform(0.5, 1.5), MAX_BACKOFF)  # noqa: S311 (jitter, not crypto)


def make_connector(ctx: SyncContext):
    return connector_for(ctx.sync.connection)


class BatchDelivery:
    def __init__(self, batch: SyncBatch):
        self.batch = batch
        self.run = batch.run
        self.sync = batch.run.sync
        self.ctx = SyncContext.cached(self.sync)
        self.result = BatchResult()
        self._reported = (0, 0)
        self.entries = {e.pk: e for e in ledger_entries(self.sync.pk, batch.record_keys)}

    def deliver(self) -> BatchResult:
        if self.sync.paused or not self.sync.enabled:
            self._leave_pending(f"sync paused: {self.sync.pause_reason or 'disabled'}")
            return self.result
        connector = self.connector = make_connector(self.ctx)
        try:
            if self.batch.kind == "delete":
                self._commit(self._delete(connector), {})
            elif self.batch.kind == JOB:
                self._submit_job(connector)
            else:
                self._upsert(connector)
        except QuotaSpent as exc:
            self._defer(exc)
        except RateWaitTooLong as exc:
            self.result.retry_in = exc.wait
        except ConnectorError as exc:
            self._handle_error(exc)
        finally:
            connector.http.close()
        return self.result

    def _collect_calls(self) -> None:
        """Vendor calls made since the last time they were added to the run."""
        connector = getattr(self, "connector", None)
        if connector is not None:
            calls, limited = connector.http.calls, connector.http.rate_limited
            self.result.api_calls = calls - self._reported[0]
            self.result.rate_limited = limited - self._reported[1]
            self._reported = (calls, limited)

    # --- upsert ------------------------------------------------------------------------------
    def _gated(self, connector) -> tuple[dict[int, tuple[str, str]], list]:
        """The batch's records read and gated again: (outcomes decided here, what to send)."""
        entries = list(self.entries.values())
        rows = self.ctx.reader.by_keys([e.record_key for e in entries], fresh_consent=True)
        local: dict[int, tuple[str, str]] = {}
        sending: list[tuple[EntryRow, Decision]] = []
        for entry in entries:
            row = rows.get(entry.record_key)
            if row is None:
                local[entry.pk] = ("invalid", "left the source before delivery")
                continue
            decision = self.ctx.decide(row, None, None, connector, known=bool(entry.payload_hash))
            if decision.bucket != "send":
                local[entry.pk] = (decision.bucket, decision.reason)
                continue
            sending.append((entry, decision))
        return local, sending

    def _upsert(self, connector) -> None:
        local, sending = self._gated(connector)
        self._record_intent(sending)
        decisions = {e.pk: d for e, d in sending}
        results: dict[str, RecordResult] = {}
        size = self.ctx.destination.max_batch
        # A task sends up to a few vendor requests; each carries at most the vendor's maximum.
        for start in range(0, len(sending), size):
            try:
                results.update(self._send(connector, sending[start : start + size]))
            except (ConnectorError, RateWaitTooLong):
                if start:
                    # Keep what the vendor confirmed; the error is about what is left. Attempts
                    # count per vendor request: this is the first failure of a new request.
                    self._commit_part(sending[:start], results, local, decisions)
                    self._narrow([entry for entry, _ in sending[start:]])
                    self.batch.attempt = 0
                raise
        self._after_results(results, sending, local, decisions)

    def _after_results(self, results, sending, local, decisions) -> None:
        """Commit what the vendor answered; records it queued in a job wait for the job."""
        job = next((r.job_ref for r in results.values() if r.outcome == Outcome.ACCEPTED), "")
        if not job:
            self._commit(results, local, decisions=decisions)
            return
        accepted = {key for key, r in results.items() if r.outcome == Outcome.ACCEPTED}
        queued = [(e, d) for e, d in sending if e.record_key in accepted]
        answered = [(e, d) for e, d in sending if e.record_key not in accepted]
        if answered or local:
            self._commit_part(answered, results, local, decisions)
            self._narrow([entry for entry, _ in queued])
        self._wait_for_job(job, queued)

    @staticmethod
    def _records(sending) -> list[OutRecord]:
        return [
            OutRecord(
                key=entry.record_key,
                match_value=decision.match_value if decision else entry.match_value,
                payload=decision.payload if decision else {},
                destination_id=entry.destination_id,
                known_at_destination=bool(entry.payload_hash),
            )
            for entry, decision in sending
        ]

    def _send(self, connector, chunk) -> dict[str, RecordResult]:
        records = self._records(chunk)
        batch_key = hashlib.sha256(
            ",".join(entry.idempotency_key for entry, _ in chunk).encode()
        ).hexdigest()[:32]
        return {
            outcome.key: outcome
            for outcome in connector.upsert(
                self.sync.destination_object,
                records,
                mode=self.sync.mode,
                match_field=self.sync.match_destination_field,
                destination_config=self.sync.destination_config,
                idempotency_key=batch_key,
            )
        }

    def _commit_part(self, sent, results, local, decisions) -> None:
        """Commit the records already answered (and the ones decided locally) without
        finishing the batch."""
        keep = self.entries
        self.entries = {entry.pk: entry for entry, _ in sent}
        self.entries.update({pk: keep[pk] for pk in local})
        self._commit(results, local, decisions=decisions, finish=False)
        self.entries = keep
        self.result.counts.clear()

    def _narrow(self, entries) -> None:
        """From now on this batch is only these records (a retry or split sends just them)."""
        self.entries = {entry.pk: entry for entry in entries}
        self.batch.record_keys = [entry.record_key for entry in entries]

    # --- vendor jobs (async bulk APIs) ---------------------------------------------------------
    def _ticket(self) -> JobTicket:
        """The batch's job submission as far as it got (kept in job_ref as "ref|stage" until
        the job is submitted), stored at each step before the next is taken. A job_ref with no
        stage is a submitted job (_wait_for_job): a worker lost while it polled the job leaves
        it loaded, to be polled again, never sent again."""
        ref, bar, stage = self.batch.job_ref.partition("|")
        if ref and not bar:
            stage = JobTicket.LOADED

        def save(ref: str, stage: str) -> None:
            self.batch.job_ref = f"{ref}|{stage}"[:200]
            SyncBatch.objects.filter(pk=self.batch.pk).update(
                job_ref=self.batch.job_ref, heartbeat_at=timezone.now()
            )

        return JobTicket(ref, stage if ref else "", save)

    def _submit_job(self, connector) -> None:
        """The batch's records in one vendor job (a run larger than the vendor's threshold).
        A worker before us that got the records into the job leaves only its close and poll:
        the records are not read, gated or sent again."""
        ticket = self._ticket()
        if ticket.stage == JobTicket.LOADED:
            local: dict[int, tuple[str, str]] = {}
            sending: list = [(entry, None) for entry in self.entries.values()]
        else:
            local, sending = self._gated(connector)
            self._record_intent(sending, persist_all=True)
        results = {
            outcome.key: outcome
            for outcome in connector.submit_job(
                self.sync.destination_object,
                self._records(sending),
                mode=self.sync.mode,
                match_field=self.sync.match_destination_field,
                destination_config=self.sync.destination_config,
                ticket=ticket,
            )
        }
        for entry, _ in sending:
            results.setdefault(
                entry.record_key,
                RecordResult(entry.record_key, Outcome.RETRY, "", "the vendor did not report it"),
            )
        self._after_results(results, sending, local, {e.pk: d for e, d in sending if d})

    def _wait_for_job(self, job_ref: str, sending) -> None:
        """The vendor queued the records in a job: keep what was sent, poll for the outcome."""
        for entry, decision in sending:
            if decision is not None:
                entry.plan_hash = decision.plan_hash
        with transaction.atomic():
            rows_update(
                LedgerEntry,
                [entry for entry, _ in sending],
                ["idempotency_key", "sent_hash", "status", "plan_hash", *CONSENT_FIELDS],
            )
            self.batch.status = BatchStatus.WAITING
            self.batch.job_ref = job_ref[:200]
            self.batch.pending_local = {}
            self.batch.not_before = timezone.now() + timedelta(seconds=job_poll_seconds())
            self.batch.save(
                update_fields=[
                    "status",
                    "job_ref",
                    "record_keys",
                    "pending_local",
                    "not_before",
                    "heartbeat_at",
                ]
            )
        self.result.waiting_job = True

    def poll(self) -> BatchResult:
        """Ask the vendor whether the batch's job finished; commit its results when it has."""
        connector = self.connector = make_connector(self.ctx)
        records = [
            OutRecord(e.record_key, e.match_value, {}, e.destination_id, bool(e.payload_hash))
            for e in self.entries.values()
        ]
        try:
            results = connector.poll(self.batch.job_ref, records)
        except ConnectorError as exc:
            results = None
            if exc.kind in (ErrorKind.AUTH, ErrorKind.CONFIG):
                self.result.pause_reason = f"{exc.kind.value}: {exc.message}"
            elif isinstance(exc, QuotaSpent):  # asked again when the quota's window opens
                self.result.poll_in = max(exc.retry_after or 0.0, job_poll_seconds())
            elif exc.kind == ErrorKind.RATE_LIMITED and exc.retry_after:
                self.result.poll_in = exc.retry_after  # the budget is held: ask after the wait
        finally:
            connector.http.close()
        if results is None:
            wait = self.result.poll_in or job_poll_seconds()
            SyncBatch.objects.filter(pk=self.batch.pk).update(
                status=BatchStatus.WAITING,
                not_before=timezone.now() + timedelta(seconds=wait),
            )
            self.result.waiting_job = True
            return self.result
        local = {int(pk): tuple(outcome) for pk, outcome in self.batch.pending_local.items()}
        self._commit({r.key: r for r in results}, local)
        return self.result

    def _record_intent(self, sending, *, persist_all: bool = False) -> None:
        """Note each write's idempotency key; before a write that may create a record, commit
        the intent and its time first. After a crash a create-only sync looks the record up
        instead of creating it again, and any sync can tell from the vendor's creation time
        that the record it finds was created by its own lost write (ADR 0003)."""
        first_writes = []
        now = timezone.now()
        for entry, decision in sending:
            entry.idempotency_key = idempotency_key(
                self.sync.pk, entry.record_key, decision.payload_hash
            )
            entry.sent_hash = decision.payload_hash
            if decision.consent is not None:  # the evidence of this send, committed with it
                entry.consent_source = decision.consent.source
                entry.consent_ref = decision.consent.reference
                entry.consent_checked_at = decision.consent.checked_at
            if not entry.payload_hash and entry.status != LedgerStatus.INTENT_CREATE:
                entry.status = LedgerStatus.INTENT_CREATE
                entry.intent_at = entry.intent_at or now
                first_writes.append(entry)
        # A job's records are all noted before it is submitted: a worker that takes over from
        # a loaded job commits what was sent, not what the source holds by then.
        written = [entry for entry, _ in sending] if persist_all else first_writes
        if written:
            rows_update(
                LedgerEntry, written, ["idempotency_key", "sent_hash", "status", "intent_at"]
            )

    # --- delete ------------------------------------------------------------------------------
    def _delete(self, connector) -> dict[str, RecordResult]:
        records = [
            OutRecord(e.record_key, e.match_value, {}, e.destination_id, True)
            for e in self.entries.values()
        ]
        return {
            r.key: r
            for r in connector.delete(
                self.sync.destination_object,
                records,
                destination_config=self.sync.destination_config,
            )
        }

    # --- errors ------------------------------------------------------------------------------
    def _handle_error(self, exc: ConnectorError) -> None:
        if exc.kind == ErrorKind.RATE_LIMITED:
            self.result.retry_in = exc.retry_after or 10.0  # a 429 costs no attempt
            return
        if exc.kind in (ErrorKind.AUTH, ErrorKind.CONFIG):
            self.result.pause_reason = f"{exc.kind.value}: {exc.message}"
            self._leave_pending(exc.message)
            return
        if exc.kind == ErrorKind.PERMANENT:
            self._isolate(exc)
            return
        # Transient: back off and retry the batch, up to the attempt limit.
        if self.batch.attempt + 1 < settings.MKT_SYNC_BATCH_ATTEMPTS:
            self.batch.attempt += 1
            self.batch.error = exc.message[:1000]
            self.result.retry_in = backoff_seconds(self.batch.attempt)
            return
        self._commit(
            {
                e.record_key: RecordResult(e.record_key, Outcome.RETRY, "", exc.message)
                for e in self.entries.values()
            },
            {},
            exhausted=True,
        )

    def _isolate(self, exc: ConnectorError) -> None:
        """One vendor request was refused as a whole (the vendor named no record). Its records
        are halved into new batches to find the one at fault, at most MAX_SPLITS times (so
        a refused request costs at most 2**(MAX_SPLITS+1) - 1 requests); past that, its records
        are dead-lettered with the vendor's message (replayable). Records of this batch that
        were not in the refused request go on in a batch of their own."""
        entries = list(self.entries.values())
        # A job is one request: all of it was refused. Its halves go in ordinary requests.
        size = len(entries) if self.batch.kind == JOB else self.ctx.destination.max_batch
        kind = "upsert" if self.batch.kind == JOB else self.batch.kind
        refused, rest = entries[:size], entries[size:]  # the failed request comes first
        split = len(refused) > 1 and self.batch.splits < MAX_SPLITS
        parts = [([e.record_key for e in rest], 0)] if rest else []
        if split:
            half = len(refused) // 2
            depth = self.batch.splits + 1
            parts += [
                ([e.record_key for e in part], depth) for part in (refused[:half], refused[half:])
            ]
        with transaction.atomic():
            new = SyncBatch.objects.bulk_create(
                [
                    SyncBatch(run=self.run, kind=kind, record_keys=keys, splits=depth)
                    for keys, depth in parts
                ]
            )
            self.result.new_batches = [b.pk for b in new]
            if split:
                self._finish_batch()
                return
            self._narrow(refused)
            reason = exc.message
            if len(refused) > 1:
                reason += f" (its request of {len(refused)} records was refused as a whole)"
            code = str(exc.status or "")
            self._commit(
                {
                    e.record_key: RecordResult(e.record_key, Outcome.REJECTED, "", reason, code)
                    for e in refused
                },
                {},
            )

    def _defer(self, exc: QuotaSpent) -> None:
        """The account's daily quota is spent: the records wait for its next window (pending,
        planned again by the run that starts then), never failed or dead-lettered."""
        with transaction.atomic():
            LedgerEntry.objects.filter(pk__in=list(self.entries)).update(
                last_error=f"deferred: {exc.message}"[:1000]
            )
            self.result.counts["deferred"] += len(self.entries)
            sync_quota_resume(sync_id=self.sync.pk, at=datetime.fromtimestamp(exc.resets_at, UTC))
            self._finish_batch()

    def _leave_pending(self, reason: str) -> None:
        """Records stay pending in the ledger (planned again next run); counted as failed now."""
        with transaction.atomic():
            LedgerEntry.objects.filter(pk__in=list(self.entries)).update(last_error=reason[:1000])
            self.result.counts["failed"] += len(self.entries)
            self._finish_batch()

    # --- commit ------------------------------------------------------------------------------
    def _commit(
        self,
        results: dict[str, RecordResult],
        local: dict[int, tuple[str, str]],
        decisions: dict | None = None,
        exhausted: bool = False,
        finish: bool = True,
    ) -> None:
        decisions = decisions or {}
        now = timezone.now()
        counts = self.result.counts
        dead_letters: list[DeadLetter] = []
        delivered: list[tuple[EntryRow, str]] = []  # for the events out, one insert per batch
        with transaction.atomic():
            # The batch row is the fence: whoever commits first under its lock finishes it.
            done = (
                SyncBatch.objects.select_for_update()
                .filter(pk=self.batch.pk, status=BatchStatus.DONE)
                .exists()
            )
            if done:
                raise BatchTakenOver(f"batch {self.batch.pk} was finished by another worker")
            for entry in self.entries.values():
                if entry.pk in local:
                    bucket, reason = local[entry.pk]
                    counts[bucket] += 1
                    entry.last_error = reason[:1000]
                    if bucket != DEFERRED:  # deferred: stays pending, planned next run
                        entry.status = LedgerStatus.SKIPPED
                    continue
                result = results.get(entry.record_key)
                decision = decisions.get(entry.pk)
                if result is None:
                    result = RecordResult(entry.record_key, Outcome.RETRY, "", "no result")
                self._apply(entry, result, decision, now, counts, dead_letters, exhausted)
                if result.outcome in _DELIVERED and entry.status == LedgerStatus.SYNCED:
                    delivered.append((entry, result.outcome.value))
            rows_update(
                LedgerEntry,
                list(self.entries.values()),
                [
                    "status",
                    "payload_hash",
                    "plan_hash",
                    "destination_id",
                    "created_by_sync",
                    "attempts",
                    "last_error",
                    "synced_at",
                    "updated_at",
                    "idempotency_key",
                    "sent_hash",
                    *CONSENT_FIELDS,
                ],
            )
            if dead_letters:
                DeadLetter.objects.bulk_create(dead_letters)
            outbox_deliveries(sync=self.sync, run_id=self.run.pk, delivered=delivered)
            if finish:
                self._finish_batch()
            else:
                self._collect_calls()
                run_counters_add(self.run.pk, self.result, finished=False)

    def _apply(self, entry, result, decision, now, counts, dead_letters, exhausted) -> None:
        outcome = result.outcome
        if outcome == Outcome.UPDATED and _created_by_lost_write(entry, result):
            outcome = Outcome.CREATED
        if outcome in (Outcome.CREATED, Outcome.UPDATED):
            counts[outcome.value] += 1
            entry.status = LedgerStatus.SYNCED
            entry.payload_hash = decision.payload_hash if decision else entry.sent_hash
            entry.plan_hash = decision.plan_hash if decision else entry.plan_hash
            entry.destination_id = result.destination_id or entry.destination_id
            entry.created_by_sync = entry.created_by_sync or outcome == Outcome.CREATED
            entry.attempts, entry.last_error, entry.synced_at = 0, "", now
        elif outcome == Outcome.UNCHANGED:
            counts["unchanged"] += 1
            entry.last_error = result.message[:1000]
            if result.destination_id:
                entry.status = LedgerStatus.SYNCED
                entry.destination_id = result.destination_id
                entry.payload_hash = decision.payload_hash if decision else entry.payload_hash
                entry.synced_at = now
            else:
                entry.status = LedgerStatus.SKIPPED
            if decision:
                entry.plan_hash = decision.plan_hash
        elif outcome == Outcome.DELETED:
            counts["deleted"] += 1
            entry.status, entry.synced_at, entry.last_error = LedgerStatus.DELETED, now, ""
        else:
            entry.attempts += 1
            entry.last_error = result.message[:1000]
            final = (
                outcome == Outcome.REJECTED or entry.attempts >= settings.MKT_SYNC_RECORD_ATTEMPTS
            )
            if final:
                counts["dead_lettered"] += 1
                entry.status = LedgerStatus.DEAD
                if decision:
                    entry.plan_hash = decision.plan_hash
                dead_letters.append(
                    DeadLetter(
                        sync=self.sync,
                        entry_id=entry.pk,
                        run=self.run,
                        record_key=entry.record_key,
                        payload=(decision.payload if decision else {}),
                        error=result.message or "rejected",
                        error_code=result.code[:100],
                        attempts=entry.attempts,
                    )
                )
            else:
                counts["failed" if exhausted else "rejected"] += 1
                entry.status = LedgerStatus.FAILED

    def _finish_batch(self) -> None:
        """Mark the batch done and add its counts to the run, in the caller's transaction."""
        self._collect_calls()
        self.batch.status = BatchStatus.DONE
        self.batch.heartbeat_at = timezone.now()
        self.batch.save(update_fields=["status", "heartbeat_at", "attempt", "error"])
        run_counters_add(self.run.pk, self.result)

    def requeue(self) -> None:
        """Back in the queue after ``result.retry_in`` seconds (the caller sends the task)."""
        self._collect_calls()
        with transaction.atomic():
            SyncBatch.objects.filter(pk=self.batch.pk).update(
                status=BatchStatus.QUEUED,
                record_keys=self.batch.record_keys,
                attempt=self.batch.attempt,
                error=self.batch.error,
                not_before=timezone.now() + timedelta(seconds=self.result.retry_in or 0),
            )
            SyncRun.objects.filter(pk=self.run.pk).update(
                api_calls=F("api_calls") + self.result.api_calls,
                rate_limited=F("rate_limited") + self.result.rate_limited,
                heartbeat_at=timezone.now(),
            )


def _created_by_lost_write(entry, result: RecordResult) -> bool:
    """An "updated" answer for a record this sync never had confirmed, which the vendor says
    it created after our first write to it was sent: that write created it and its answer was
    lost (a crash, a dropped connection). Without the vendor's creation time, or for a record
    older than our intent, it stays "updated": never claim, and later archive, what we cannot
    show we created. (No margin for clock skew: a vendor clock behind ours errs that way.)"""
    return bool(
        not entry.payload_hash
        and not entry.created_by_sync
        and entry.intent_at is not None
        and result.created_at is not None
        and result.created_at >= entry.intent_at
    )
