"""Real-time syncs: backbone changes to targeted runs within seconds (docs/realtime.md).

The dispatcher (``realtime_dispatch``, beat every second, rung at once by the ingest API)
does two things on every tick:

1. **Fan out** the backbone's change outbox (exports.backbone.changes): each change becomes a
   ``RealtimePending`` row for every real-time sync whose dataset it reaches (a contacts
   sync hears its contacts' companies too), one row per sync and record: a record already
   waiting keeps its earliest change time, the later changes are coalesced into it. The take
   and the fan-out commit together (one database) or the fan-out first (a separate backbone
   database: a change taken twice is coalesced, never lost).
2. **Start runs**: a sync whose oldest waiting record is ``MKT_REALTIME_WINDOW_SECONDS`` old
   gets a run (trigger ``realtime``) of at most ``MKT_REALTIME_RUN_RECORDS`` of its waiting
   records, moved into the run's ``targets`` in the same transaction. The run plans only those
   (integrations.engine.planner) through the same gate, ledger and delivery as any run. A
   sync with a run going is left for the next tick: its records wait together, and a burst
   becomes bigger runs under the same rate budget, never losses. A sync not yet planned at
   its configuration (new, or changed) gets a whole plan instead; a sync whose scheduled run
   found it busy (``schedule_waiting``) gets that scheduled run, with its waiting records.

A real-time run does not move the sync's watermark, so its scheduled run (a real-time sync
keeps a schedule) reads every change since the last scheduled plan again: whatever a lost
tick, a killed worker or a direct write with no listener missed is sent by it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from exports.backbone.changes import change_events_take, change_subscriptions_set
from exports.backbone.router import backbone_alias
from exports.datasets import DATASETS
from integrations.engine.dispatch import dispatch_run
from integrations.models import LedgerEntry, RealtimeLag, RealtimePending, Sync, SyncRun, Trigger
from integrations.models.runs import ACTIVE_RUN_STATUSES

log = logging.getLogger(__name__)
TAKE = 5000  # changes per transaction
TICK_CHANGES = 100_000  # changes one tick takes at most (the next tick takes the rest)
_IDS = 500  # subject ids per statement


def realtime_syncs():
    return Sync.objects.filter(realtime=True, enabled=True, paused=False)


def realtime_subscriptions_apply() -> None:
    """Make the backbone's triggers announce what the real-time syncs listen to (called
    whenever a sync is saved, paused or deleted)."""
    subjects: set[str] = set()
    for dataset_name in realtime_syncs().values_list("dataset", flat=True).distinct():
        dataset = DATASETS.get(dataset_name)
        subjects.update(subject for subject, _ in (dataset.realtime_subjects if dataset else ()))
    change_subscriptions_set(subjects)


def realtime_dispatch(*, now: datetime | None = None) -> dict[str, int]:
    """One tick of the dispatcher (the beat task, and the ingest API's bell)."""
    syncs = list(realtime_syncs())
    taken = fanned = 0
    while taken < TICK_CHANGES:
        count, pending = _fan_out(syncs)
        taken, fanned = taken + count, fanned + pending
        if count < TAKE:
            break
    started = realtime_runs_start(syncs, now=now or timezone.now())
    return {"changes": taken, "pending": fanned, "runs": started}


def _fan_out(syncs: list[Sync]) -> tuple[int, int]:
    """Take one transaction's worth of changes into the syncs' waiting records."""
    listeners: dict[str, list[tuple[Sync, str]]] = defaultdict(list)
    for sync in syncs:
        dataset = DATASETS.get(sync.dataset)
        for subject, sql in dataset.realtime_subjects if dataset else ():
            listeners[subject].append((sync, sql))
    with transaction.atomic(using=backbone_alias()), transaction.atomic():
        changes = change_events_take(TAKE)
        earliest: dict[str, dict[int, datetime]] = defaultdict(dict)
        for change in changes:
            seen = earliest[change.subject]
            if change.subject_id not in seen or change.occurred_at < seen[change.subject_id]:
                seen[change.subject_id] = change.occurred_at
        rows: dict[tuple[int, str], datetime] = {}
        for subject, times in earliest.items():
            for sync, sql in listeners.get(subject, ()):
                for key, at in _keys(sql, times):
                    slot = (sync.pk, key)
                    if slot not in rows or at < rows[slot]:
                        rows[slot] = at
        RealtimePending.objects.bulk_create(
            [RealtimePending(sync_id=s, record_key=k, event_at=at) for (s, k), at in rows.items()],
            batch_size=1000,
            ignore_conflicts=True,  # already waiting: its earlier time stays
        )
    return len(changes), len(rows)


def _keys(sql: str, times: dict[int, datetime]):
    """(record key, change time) for the changed subject ids, through the dataset's SQL."""
    if not sql:
        yield from ((str(subject_id), at) for subject_id, at in times.items())
        return
    ids = list(times)
    with connections[backbone_alias()].cursor() as cursor:
        for start in range(0, len(ids), _IDS):
            chunk = ids[start : start + _IDS]
            cursor.execute(sql.format(ids=", ".join(["%s"] * len(chunk))), chunk)
            for key, subject_id in cursor.fetchall():
                yield str(key), times[int(subject_id)]


def realtime_runs_start(syncs: list[Sync], *, now: datetime) -> int:
    """Start the runs that are due: a sync's oldest waiting record is a window old, or its
    scheduled run is waiting. A sync with a run going waits for the next tick."""
    window = timedelta(seconds=settings.MKT_REALTIME_WINDOW_SECONDS)
    by_id = {sync.pk: sync for sync in syncs}
    due = set(
        RealtimePending.objects.filter(sync_id__in=by_id)
        .values("sync_id")
        .annotate(oldest=Min("event_at"))
        .filter(oldest__lte=now - window)
        .values_list("sync_id", flat=True)
    )
    due |= {sync.pk for sync in syncs if sync.schedule_waiting}
    busy = set(
        SyncRun.objects.filter(sync_id__in=due, status__in=ACTIVE_RUN_STATUSES).values_list(
            "sync_id", flat=True
        )
    )
    return sum(_run_start(by_id[sync_id]) for sync_id in sorted(due - busy))


def _run_start(sync: Sync) -> bool:
    """One run of the sync's oldest waiting records (False: another run started first)."""
    try:
        with transaction.atomic():
            waiting = list(
                RealtimePending.objects.filter(sync=sync)
                .order_by("event_at", "id")
                .values_list("id", "record_key", "event_at")[: settings.MKT_REALTIME_RUN_RECORDS]
            )
            scheduled = sync.schedule_waiting
            run = SyncRun.objects.create(
                sync=sync,
                trigger=Trigger.SCHEDULE if scheduled else Trigger.REALTIME,
                config_version=sync.config_version,
                targets={key: at.isoformat() for _, key, at in waiting},
            )
            RealtimePending.objects.filter(id__in=[pk for pk, _, _ in waiting]).delete()
            if scheduled:
                Sync.objects.filter(pk=sync.pk).update(schedule_waiting=False)
            dispatch_run(run.pk)
    except IntegrityError:  # a run of the sync started meanwhile: the next tick tries again
        return False
    return True


def realtime_targets_return(run: SyncRun) -> None:
    """A real-time run that will not be tried again: its records wait for the next one."""
    if not run.targets:
        return
    RealtimePending.objects.bulk_create(
        [
            RealtimePending(sync_id=run.sync_id, record_key=key, event_at=_moment(at))
            for key, at in run.targets.items()
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )


def realtime_lag_record(run: SyncRun) -> int:
    """The records of a finished run with targets that the destination confirmed during the
    run: one lag row each, from the change to the confirmation."""
    keys = list(run.targets)
    lags = []
    for start in range(0, len(keys), 1000):
        confirmed = LedgerEntry.objects.filter(
            sync_id=run.sync_id,
            record_key__in=keys[start : start + 1000],
            synced_at__gte=run.started_at or run.queued_at,
        ).values_list("record_key", "synced_at")
        for key, synced_at in confirmed:
            if synced_at is None:
                continue
            event_at = _moment(run.targets[key])
            lags.append(
                RealtimeLag(
                    sync_id=run.sync_id,
                    run_id=run.pk,
                    record_key=key,
                    event_at=event_at,
                    confirmed_at=synced_at,
                    seconds=max((synced_at - event_at).total_seconds(), 0.0),
                )
            )
    RealtimeLag.objects.bulk_create(lags, batch_size=1000)
    return len(lags)


def _moment(text: str) -> datetime:
    """A change time as the dispatcher wrote it into a run's targets (ISO 8601)."""
    moment = parse_datetime(text)
    if moment is None:
        raise ValueError(f"not a change time: {text!r}")
    return moment


def realtime_lag_prune(*, days: int = 30) -> int:
    """Lag rows older than the dashboard reads."""
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = RealtimeLag.objects.filter(confirmed_at__lt=cutoff).delete()
    return deleted
