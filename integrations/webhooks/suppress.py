"""Opt-outs at the other destinations of a person whose consent was withdrawn (docs/adr/0008).

Each (sync, person) to opt out is a ``Suppression`` row, written in the transaction that
withdrew the consent; a task per destination connection claims the due rows, sends them through
the connector's ``suppress`` in requests of the object's batch size under the connection's
shared rate budget, and records what the destination confirmed. Rate limits wait, passing
errors back off and retry, a refusal is a failed row with the vendor's reason and an alert.
It runs whether or not the sync is paused: an opt-out is not a sync.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.claims import claim, reap
from integrations.connectors import connector_class
from integrations.connectors.base import Outcome, OutRecord
from integrations.engine.ratelimit import RateWaitTooLong
from integrations.engine.state import connection_mark_failed
from integrations.models import Connection, LedgerEntry, Sync
from integrations.selectors import connector_for
from integrations.webhooks.models import Suppression, SuppressionStatus, WebhookEvent
from mktintegration.errors import ConnectorError, ErrorKind

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10
MAX_BACKOFF_SECONDS = 900.0
TASK_BUDGET_SECONDS = 20.0


def suppressions_dispatch(connection_ids, *, countdown: float = 0) -> None:
    from integrations.webhooks.tasks import suppress_task

    ids = sorted(set(connection_ids))

    def send():
        for connection_id in ids:
            suppress_task.apply_async(kwargs={"connection_id": connection_id}, countdown=countdown)

    transaction.on_commit(send)


def suppressions_plan(*, event: WebhookEvent, targets: list[tuple[Sync, str]]) -> list[Suppression]:
    """Queue an opt-out for each (sync, record key), in the caller's transaction; one already
    queued or confirmed there since the destination last received the person (a repeat, or the
    vendor echoing our own opt-out back) is not queued again."""
    if not targets:
        return []
    keys = {key for _, key in targets}
    sync_ids = {sync.pk for sync, _ in targets}
    done = {
        (sync_id, key): at
        for sync_id, key, at in Suppression.objects.filter(
            sync_id__in=sync_ids, record_key__in=keys
        )
        .exclude(status=SuppressionStatus.FAILED)
        .values_list("sync_id", "record_key", "created_at")
    }
    synced = {
        (sync_id, key): at
        for sync_id, key, at in LedgerEntry.objects.filter(
            sync_id__in=sync_ids, record_key__in=keys
        ).values_list("sync_id", "record_key", "synced_at")
    }
    rows = []
    for sync, key in targets:
        before = done.get((sync.pk, key))
        last_sent = synced.get((sync.pk, key))
        if before is not None and (last_sent is None or before >= last_sent):
            continue
        rows.append(
            Suppression(
                event=event,
                sync=sync,
                connection_id=sync.connection_id,
                record_key=key,
                kind=event.kind,
            )
        )
    Suppression.objects.bulk_create(rows)
    suppressions_dispatch(r.connection_id for r in rows)
    return rows


def _backoff(attempts: int, at_least: float = 0.0) -> timedelta:
    seconds = min(max(5.0 * 2 ** max(attempts - 1, 0), at_least), MAX_BACKOFF_SECONDS)
    return timedelta(seconds=seconds)


def suppressions_run(*, connection_id: int, budget: float = TASK_BUDGET_SECONDS) -> dict:
    """Send the connection's due opt-outs; ``retry_in``: seconds until more are due, if any
    could not be sent now (the caller sends the task again then)."""
    counts: dict = defaultdict(int)
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return dict(counts)
    connector = connector_for(connection)
    deadline = time.monotonic() + budget
    try:
        while time.monotonic() < deadline:
            now = timezone.now()
            rows = claim(
                Suppression.objects.filter(connection_id=connection_id)
                .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
                .order_by("pk"),
                status_field="status",
                waiting=SuppressionStatus.PENDING,
                working=SuppressionStatus.SENDING,
                limit=500,
                now=now,
            )
            if not rows:
                break
            by_sync: dict[int, list[Suppression]] = defaultdict(list)
            for row in rows:
                by_sync[row.sync_id].append(row)
            stop = None
            for sync_id, group in by_sync.items():
                if stop is not None:
                    _release(group, stop)
                    continue
                stop = _send(connector, Sync.objects.get(pk=sync_id), group, counts)
            if stop is not None:
                counts["retry_in"] = stop
                break
    finally:
        connector.http.close()
    return dict(counts)


def _release(rows: list[Suppression], wait: float) -> None:
    """Back to pending, due after ``wait`` seconds, costing no attempt (a rate limit)."""
    Suppression.objects.filter(pk__in=[r.pk for r in rows]).update(
        status=SuppressionStatus.PENDING,
        claim="",
        not_before=timezone.now() + timedelta(seconds=wait),
    )


def _send(connector, sync: Sync, rows: list[Suppression], counts) -> float | None:
    """Opt these rows out at the sync's destination; seconds to wait when the rate budget or
    the vendor said to stop for now, else None."""
    entries = {
        e.record_key: e
        for e in LedgerEntry.objects.filter(sync=sync, record_key__in=[r.record_key for r in rows])
    }
    size = connector_class(sync.connection.vendor).objects[sync.destination_object].max_batch
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        records = [
            OutRecord(
                r.record_key,
                entries[r.record_key].match_value,
                {},
                entries[r.record_key].destination_id,
                True,
            )
            for r in chunk
            if r.record_key in entries
        ]
        gone = [r for r in chunk if r.record_key not in entries]
        if gone:  # the sync's ledger no longer has them (the sync was emptied)
            _finish(gone, SuppressionStatus.FAILED, "the destination's ledger entry is gone")
            counts["failed"] += len(gone)
        if not records:
            continue
        try:
            results = connector.suppress(
                sync.destination_object, records, destination_config=sync.destination_config or {}
            )
        except RateWaitTooLong as exc:
            _release(rows[start:], exc.wait)
            return exc.wait
        except ConnectorError as exc:
            if exc.kind == ErrorKind.RATE_LIMITED:
                wait = exc.retry_after or 10.0
                _release(rows[start:], wait)
                return wait
            if exc.kind == ErrorKind.PERMANENT:  # the request was refused as a whole
                _finish(chunk, SuppressionStatus.FAILED, exc.message)
                counts["failed"] += len(chunk)
                _alert(sync, exc.message, len(chunk))
                continue
            if exc.kind in (ErrorKind.AUTH, ErrorKind.CONFIG):
                connection_mark_failed(
                    sync.connection, auth=exc.kind == ErrorKind.AUTH, message=exc.message
                )
            _retry(chunk, exc.message, counts, sync)  # until fixed (credentials) or it passes
            continue
        outcomes = {r.key: r for r in results}
        confirmed, refused, again = [], [], []
        for row in chunk:
            result = outcomes.get(row.record_key)
            if row.record_key not in entries:
                continue
            if result is not None and result.outcome == Outcome.UPDATED:
                confirmed.append(row)
            elif result is not None and result.outcome == Outcome.REJECTED:
                refused.append(row)
                _finish([row], SuppressionStatus.FAILED, result.message or "refused")
            else:
                again.append(row)
        _finish(confirmed, SuppressionStatus.DONE, "")
        counts["done"] += len(confirmed)
        if refused:
            counts["failed"] += len(refused)
            _alert(sync, outcomes[refused[0].record_key].message or "refused", len(refused))
        if again:
            _retry(again, "the destination did not confirm the opt-out", counts, sync)
    return None


def _finish(rows: list[Suppression], status: str, error: str) -> None:
    if not rows:
        return
    now = timezone.now()
    Suppression.objects.filter(pk__in=[r.pk for r in rows]).update(
        status=status,
        claim="",
        error=error[:2000],
        attempts=F("attempts") + 1,
        confirmed_at=now if status == SuppressionStatus.DONE else None,
    )


def _retry(rows: list[Suppression], error: str, counts, sync: Sync) -> None:
    """Back off and try again; after MAX_ATTEMPTS the opt-out fails and alerts."""
    final = [r for r in rows if r.attempts + 1 >= MAX_ATTEMPTS]
    later = [r for r in rows if r.attempts + 1 < MAX_ATTEMPTS]
    for row in later:
        Suppression.objects.filter(pk=row.pk).update(
            status=SuppressionStatus.PENDING,
            claim="",
            error=error[:2000],
            attempts=F("attempts") + 1,
            not_before=timezone.now() + _backoff(row.attempts + 1),
        )
    counts["retried"] += len(later)
    if final:
        _finish(final, SuppressionStatus.FAILED, error)
        counts["failed"] += len(final)
        _alert(sync, error, len(final))


def _alert(sync: Sync, error: str, n: int) -> None:
    def send():
        from integrations.operations.alerts import suppression_failed

        try:
            suppression_failed(sync=sync, error=error, count=n)
        except Exception:
            log.exception("alert of failed opt-outs at sync %s could not be sent", sync.pk)

    transaction.on_commit(send)


def suppressions_due() -> list[int]:
    """Connections with opt-outs due now (the beat sends their tasks; lost ones are reaped)."""
    reap(
        Suppression,
        status_field="status",
        waiting=SuppressionStatus.PENDING,
        working=SuppressionStatus.SENDING,
    )
    now = timezone.now()
    return sorted(
        set(
            Suppression.objects.filter(status=SuppressionStatus.PENDING)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .values_list("connection_id", flat=True)
        )
    )


def suppressions_retry(*, ids: list[int]) -> int:
    """Failed opt-outs queued again (the admin's action); returns how many."""
    rows = Suppression.objects.filter(pk__in=ids, status=SuppressionStatus.FAILED)
    connection_ids = list(rows.values_list("connection_id", flat=True))
    with transaction.atomic():
        n = rows.update(status=SuppressionStatus.PENDING, attempts=0, not_before=None, error="")
        suppressions_dispatch(connection_ids)
    return n
