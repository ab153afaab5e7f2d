"""What a run's page says at its top, worked out without the database: the trigger and who,
the buckets as a bar whose legend adds up to ``planned``, and, while it runs, how far it got
and about how long is left ("1,200 of 5,000 records, 3 of 10 batches, about 2 min left")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from integrations.models.runs import ACTIVE_RUN_STATUSES, BUCKETS, RunStatus, SyncRun, Trigger
from mktintegration.templatetags.mkt_units import duration as human_duration

# Past this an estimate says "more than a day" instead of a number nobody believes.
ETA_CAP_SECONDS = 86_400
RUNNING = (RunStatus.PLANNING, RunStatus.DELIVERING)

# The words of a bucket in the legend (the model's field names otherwise).
BUCKET_LABELS = {
    "dead_lettered": "dead-lettered",
    "deleted": "archived / deleted",
    "blocked": "blocked (residency)",
    "suppressed": "suppressed (no consent)",
}
NOT_YET = "not yet delivered"

_BY_SCHEDULE = {Trigger.SCHEDULE: "schedule", Trigger.QUOTA: "quota window"}


def eta_text(*, elapsed_seconds: float, done: int, total: int) -> str:
    """About how long is left when ``done`` of ``total`` units took ``elapsed_seconds``:
    "about 2 min left" (whole minutes; past an hour, 5 minutes); "less than a minute left";
    "estimating" before the first unit is done; "" when all are done (or there is nothing
    to do). Never negative; past a day, "more than a day left"."""
    if total <= 0 or done >= total:
        return ""
    if done <= 0 or elapsed_seconds <= 0:
        return "estimating"
    left = elapsed_seconds / done * (total - done)
    if left >= ETA_CAP_SECONDS:
        return "more than a day left"
    if left < 60:
        return "less than a minute left"
    # An estimate in the units it deserves: whole minutes, past an hour 5 minutes.
    step = 60 if left < 3_600 else 300
    return f"about {human_duration(round(left / step) * step)} left"


def progress_text(run: SyncRun, *, now: datetime) -> str:
    """Records and batches done and the ETA, while the run plans or delivers; else ""."""
    if run.status not in RUNNING:
        return ""
    if run.status == RunStatus.PLANNING and not run.batches_total:
        return "planning: working out which records to send"
    done_records = sum(run.counts().values())
    parts = [f"{done_records:,} of {run.planned:,} records"]
    if run.batches_total:
        parts.append(f"{run.batches_done:,} of {run.batches_total:,} batches")
    elapsed = (now - run.started_at).total_seconds() if run.started_at else 0.0
    if run.batches_total:
        eta = eta_text(elapsed_seconds=elapsed, done=run.batches_done, total=run.batches_total)
    else:
        eta = eta_text(elapsed_seconds=elapsed, done=done_records, total=run.planned)
    if eta:
        parts.append(eta)
    return ", ".join(parts)


def trigger_text(run: SyncRun) -> str:
    """How the run started and who started it: "Run now by ana", "schedule"."""
    if run.trigger in _BY_SCHEDULE:
        return _BY_SCHEDULE[run.trigger]
    label = Trigger(run.trigger).label if run.trigger in Trigger.values else run.trigger
    user = run.triggered_by
    if user is None:
        return label
    name = user.get_full_name() or user.get_username()
    return f"{label} by {name}"


@dataclass(frozen=True)
class Bucket:
    name: str
    label: str
    count: int
    width: int  # percent of planned, in 5 % steps (a CSS class mkt-w-<width>)

    @property
    def shown(self) -> str:
        return f"{self.count:,}"


def _width(count: int, planned: int) -> int:
    if not count or not planned:
        return 0
    share = min(count / planned, 1.0) * 100
    return max(5, round(share / 5) * 5)  # a bucket that holds records is never invisible


def buckets(run: SyncRun) -> list[Bucket]:
    """The non-empty buckets, and what is not delivered yet, whose counts add up to planned.

    Every planned record lands in exactly one bucket; while a run delivers, those still to
    come are "not yet delivered". A run that counted more than it planned (a record planned
    twice) shows its counts as they are."""
    counts = run.counts()
    planned = run.planned
    rows = [(name, BUCKET_LABELS.get(name, name), counts[name]) for name in BUCKETS]
    pending = planned - sum(counts.values())
    if pending > 0:
        rows.append(("pending", NOT_YET, pending))
    scale = max(planned, sum(count for _, _, count in rows))
    return [Bucket(n, label, c, _width(c, scale)) for n, label, c in rows if c]


def summary(run: SyncRun, *, now: datetime) -> dict:
    """The context of the run page's summary block."""
    duration = ""
    if run.started_at is not None:
        end = run.finished_at or now
        duration = human_duration(max((end - run.started_at).total_seconds(), 0))
    return {
        "status": run.get_status_display(),
        "active": run.status in ACTIVE_RUN_STATUSES,
        "trigger": trigger_text(run),
        "started_at": run.started_at,
        "duration": duration,
        "progress": progress_text(run, now=now),
        "buckets": buckets(run),
        "planned": f"{run.planned:,}",
        "plan_path": run.plan_path,
    }
