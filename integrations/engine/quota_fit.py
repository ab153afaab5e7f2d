"""A run planned to fit what is left of its destination's daily quota.

At the start of a plan the account's quota says how many requests are left
(``integrations.engine.quota``); the connector says what writing n records costs
(``Connector.quota_requests``: its requests per batch, look-ups, job polls). When the records
the run might send (the rows changed since the watermark, and the entries still pending) fit,
the plan goes on as always, handing records to delivery as it goes. When they may not, the
sends are held to the end of the plan and then cut: the records whose source row changed
longest ago go (ties in key order), the others are **deferred**: counted in the run's
``deferred`` bucket, left pending in the ledger with the time they go, and planned again by the
run that starts when the quota's next window opens (``Sync.quota_resume_at``). Nothing is
failed or dead-lettered for want of quota.

The plan fits what was left when it started. Another sync spending the same account at the
same time, or a retry, may use what this run counted on: the rate budget never lets a request
over the quota, and the batch that meets the spent quota is deferred the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from integrations.engine.ledger_io import PlannedRow, ledger_update
from integrations.engine.quota import QuotaStatus
from integrations.engine.state import sync_quota_resume
from integrations.models import LedgerEntry
from integrations.selectors import connection_quota


def records_within(connector, *, object_name: str, mode: str, requests: int) -> int:
    """The most records whose writing costs at most ``requests`` requests."""
    if requests <= 0:
        return 0
    low, high = 0, requests * connector.objects[object_name].max_batch
    while low < high:
        middle = (low + high + 1) // 2
        if connector.quota_requests(object_name, mode, middle) <= requests:
            low = middle
        else:
            high = middle - 1
    return low


def deferral_reason(status: QuotaStatus) -> str:
    return (
        f"deferred: {status.label}'s daily quota for this account has no room for it today "
        f"({status.left:,} of {status.limit:,} requests left when the run was planned); it "
        f"goes when the next window opens, at {status.resets:%Y-%m-%d %H:%M} UTC"
    )


def _key_order(key: str) -> tuple:
    return (0, int(key), "") if key.lstrip("-").isdigit() else (1, 0, key)


@dataclass
class QuotaFit:
    capacity: int  # the records the quota left can take
    status: QuotaStatus
    held: list[tuple[str, str, PlannedRow | None]] = field(default_factory=list)

    def hold(self, ctx, decision, row: PlannedRow | None) -> None:
        """A record the plan would send, kept until the plan knows them all."""
        self.held.append((decision.changed_at, decision.key, row))

    def cut(self, planner) -> None:
        """The oldest changes go, the rest are deferred."""
        held = sorted(self.held, key=lambda h: (h[0], _key_order(h[1])))
        self.held = []
        going, waiting = held[: self.capacity], held[self.capacity :]
        result = planner.result
        if planner.dry_run:
            result.counts["would_send"] -= len(waiting)
            if waiting:
                result.counts["deferred"] += len(waiting)
            return
        result.send_keys.extend(key for _, key, _ in going)
        if not waiting:
            return
        result.counts["deferred"] += len(waiting)
        reason = deferral_reason(self.status)
        ledger_update(
            planner.sync.pk, [replace(row, last_error=reason) for _, _, row in waiting if row]
        )
        sync_quota_resume(
            sync_id=planner.sync.pk, at=datetime.fromtimestamp(self.status.resets_at, UTC)
        )


def quota_fit(ctx, connector, *, since, retry_statuses, records=None) -> QuotaFit | None:
    """A cut to make at the end of this plan, or None when the run surely fits (or the
    destination has no daily quota). ``records``: the most the plan can send, when it is
    known (a real-time run plans its targets only)."""
    if ctx.connector_cls.daily_quota is None:
        return None
    status = connection_quota(ctx.sync.connection, look=True)
    if status is None:
        return None
    sync = ctx.sync
    capacity = records_within(
        connector, object_name=sync.destination_object, mode=sync.mode, requests=status.left
    )
    if records is None:
        pending = LedgerEntry.objects.filter(sync=sync, status__in=retry_statuses).count()
        records = pending + ctx.reader.count_changed(since)
    if records <= capacity:
        return None
    return QuotaFit(capacity, status)
