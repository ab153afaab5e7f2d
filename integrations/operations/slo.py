"""The real-time objective: p95 of event-to-action latency.

A **real-time sync** (docs/realtime.md) measures it from its events: each record a real-time
run delivered has a ``RealtimeLag`` row, from the change event's time (the outbox's, or the
time the ingest API was told) to the destination's confirmation.

Any other scheduled sync estimates it from the ledger: the ledger's ``synced_at`` (the
destination confirmed it) minus the source row's ``updated_at`` (its change). Counted over
records confirmed in the window (default 24 h) whose change also happened in the window and
before the confirmation (a row changed again since has a newer change still on its way; a
backfill of old rows is not a real-time flow).

At most SAMPLE of the latest confirmations of each kind are read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from exports.backbone.router import backbone_alias
from exports.datasets import DATASETS, FieldType
from integrations.models import LedgerEntry, LedgerStatus, RealtimeLag

SAMPLE = 20_000
CHUNK = 500


@dataclass(frozen=True)
class Latency:
    records: int
    p50_seconds: float | None
    p95_seconds: float | None


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile of the values (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]


def _as_utc(value) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = parse_datetime(str(value))
        if value is None:
            return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _source_changes(dataset_name: str, keys: list[str]) -> dict[str, datetime]:
    dataset = DATASETS[dataset_name]
    key = dataset.field(dataset.key)
    changed = dataset.field(dataset.updated_at)
    values: list = (
        [int(k) for k in keys if k.lstrip("-").isdigit()] if key.type == FieldType.INT else keys
    )
    found: dict[str, datetime] = {}
    with connections[backbone_alias()].cursor() as cursor:
        for start in range(0, len(values), CHUNK):
            chunk = values[start : start + CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            # Column expressions come from the dataset registry; the keys are parameters.
            cursor.execute(
                f"SELECT {key.sql}, {changed.sql} FROM {dataset.from_sql} "  # noqa: S608
                f"WHERE {key.sql} IN ({marks})",
                chunk,
            )
            for row_key, row_changed in cursor.fetchall():
                moment = _as_utc(row_changed)
                if moment is not None:
                    found[str(row_key)] = moment
    return found


def event_to_action(
    syncs, *, now: datetime | None = None, window: timedelta = timedelta(hours=24)
) -> dict:
    """{"overall": Latency, "by_sync": {sync_id: Latency}} over the given syncs."""
    now = now or timezone.now()
    since = now - window
    realtime = set(syncs.filter(realtime=True).values_list("pk", flat=True))
    per_sync: dict[int, list[float]] = {}
    for sync_id, seconds in (
        RealtimeLag.objects.filter(
            sync_id__in=realtime, confirmed_at__gte=since, confirmed_at__lte=now
        )
        .order_by("-confirmed_at")
        .values_list("sync_id", "seconds")[:SAMPLE]
    ):
        per_sync.setdefault(sync_id, []).append(seconds)
    entries = list(
        LedgerEntry.objects.filter(
            sync__in=syncs.exclude(pk__in=realtime),
            status=LedgerStatus.SYNCED,
            synced_at__gte=since,
            synced_at__lte=now,
        )
        .order_by("-synced_at")
        .values_list("sync_id", "sync__dataset", "record_key", "synced_at")[:SAMPLE]
    )
    by_dataset: dict[str, list[str]] = {}
    for _, dataset, key, _ in entries:
        if dataset in DATASETS:
            by_dataset.setdefault(dataset, []).append(key)
    changes = {name: _source_changes(name, sorted(set(keys))) for name, keys in by_dataset.items()}
    for sync_id, dataset, key, synced_at in entries:
        changed = changes.get(dataset, {}).get(key)
        if changed is None or changed < since or changed > synced_at:
            continue
        per_sync.setdefault(sync_id, []).append((synced_at - changed).total_seconds())
    everything = [v for values in per_sync.values() for v in values]

    def latency(values: list[float]) -> Latency:
        return Latency(len(values), percentile(values, 0.5), percentile(values, 0.95))

    return {
        "overall": latency(everything),
        "by_sync": {sync_id: latency(values) for sync_id, values in per_sync.items()},
    }
