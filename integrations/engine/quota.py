"""Daily quotas: the requests one vendor account may make in a day, counted for every worker
and every sync on the account (docs/adr/0009-daily-quotas.md).

A connector declares the vendor's allowance (``Connector.daily_quota``: a ``DailyQuota``); a
connection may set its own (``Connection.daily_quota_requests``: plans differ). Requests are
counted per *slot*: the day itself for a calendar day in the vendor's time zone, an hour for a
rolling 24 hours (the 25 latest hourly slots are counted, so the count never falls short of
the vendor's). The counts live in Redis when ``REDIS_URL`` is set (one hash per account,
changed by the rate budget's Lua script together with the token bucket) and in the database
otherwise (one ``DailyQuotaCount`` row per account, in the rate bucket's transaction).

The allowance in force: the connection's own if set, else the one the vendor last reported
(``Connector.quota_usage``), else the declared one. What the vendor reports as used raises our
count (other integrations spend the same account). When the vendor says the day's allowance
is gone, the account is held until the window ends.

A ``reported`` quota (Salesforce) trusts the vendor's count instead: each report *replaces*
ours (its rolling window falls as old requests leave it, which hourly slots of our own would
only follow 25 hours late), what is sent after it is added, and when the count says spent one
request goes every ``recheck`` seconds to read it again (the hash's "seen", the row's
``reported_at``: when the vendor last said). Reports of requests answered out of order may
under-count by the requests in flight for a moment; the next answer corrects it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import cache
from zoneinfo import ZoneInfo

from django.db import transaction

from integrations.connectors.base import DailyQuota, QuotaUsage
from integrations.models import DailyQuotaCount
from mktintegration.errors import QuotaSpent

HOUR = 3600
ROLLING_SLOTS = 25  # the current hour and the 24 before it
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


@cache
def zone(name: str) -> tzinfo:
    """An IANA time zone, "UTC", or a fixed offset such as "-06:00"."""
    match = _OFFSET.match(name)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    return UTC if name.upper() == "UTC" else ZoneInfo(name)


@dataclass(frozen=True)
class QuotaPlan:
    """What one connection's budget enforces: whose quota, the vendor's terms, and the
    connection's own allowance (None: the vendor's)."""

    account: str  # "<vendor>:<account>"
    quota: DailyQuota
    override: int | None = None
    label: str = "the vendor"
    recheck: float = 900.0  # a reported quota: seconds between looks once it is spent

    def first_slot(self, now: float) -> int:
        """The oldest slot still counted at ``now``."""
        if self.quota.rolling:
            return self.slot(now) - (ROLLING_SLOTS - 1) * HOUR
        return self.slot(now)

    def slot(self, now: float) -> int:
        """The slot ``now`` is counted in: the start of its day, or of its hour."""
        if self.quota.rolling:
            return int(now // HOUR * HOUR)
        local = datetime.fromtimestamp(now, zone(self.quota.timezone))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return int(midnight.timestamp())

    def resets_at(self, now: float, slots: dict[int, int], seen: float = 0.0) -> float:
        """When a request may go again once the allowance is spent: the next midnight, or
        (rolling) when the oldest counted hour leaves the window, or (reported) the next look
        at the vendor's count."""
        if self.quota.reported:
            return max(seen + self.recheck, now)
        if self.quota.rolling:
            used = sorted(start for start, count in slots.items() if count)
            return float(used[0] + ROLLING_SLOTS * HOUR) if used else now + HOUR
        local = datetime.fromtimestamp(now, zone(self.quota.timezone)).date()
        tomorrow = datetime.combine(
            local + timedelta(days=1), datetime.min.time(), tzinfo=zone(self.quota.timezone)
        )
        return tomorrow.timestamp()

    def limit(self, reported: int | None) -> int:
        return self.override or reported or self.quota.requests


@dataclass(frozen=True)
class QuotaStatus:
    """One account's quota as of ``now``: what is allowed, counted and left, and when the
    window moves on."""

    account: str
    label: str
    limit: int
    used: int
    resets_at: float
    spent_until: float = 0.0
    #: a reported quota counted as spent whose count is old enough to be read again
    stale: bool = False

    @property
    def left(self) -> int:
        return 0 if self.spent else max(self.limit - self.used, 0)

    @property
    def spent(self) -> bool:
        return self.spent_until > 0 or self.used >= self.limit

    @property
    def share(self) -> float:
        return min(self.used / self.limit, 1.0) if self.limit else 1.0

    @property
    def resets(self) -> datetime:
        return datetime.fromtimestamp(max(self.resets_at, self.spent_until), UTC)

    def spent_error(self, now: float) -> QuotaSpent:
        return QuotaSpent(
            f"{self.label}'s daily quota for this account is spent ({self.used:,} of "
            f"{self.limit:,} requests): the records wait for its next window, at "
            f"{self.resets:%Y-%m-%d %H:%M} UTC",
            resets_at=max(self.resets_at, self.spent_until),
            now=now,
        )


# --- the counts -------------------------------------------------------------------------------
# Redis: hash mkt:quota:<account>, fields "s:<slot start>" (requests counted in that slot),
# "limit" (the allowance the vendor last reported) and "spent" (held until, epoch seconds).
REDIS_TTL = 2 * 86_400
# What a vendor's header may say, at most (the reported allowance is a PositiveIntegerField).
REPORTED_MAX = 2_000_000_000


def redis_key(plan: QuotaPlan) -> str:
    return f"mkt:quota:{plan.account}"


def _slots_of(mapping: dict, first: int) -> dict[int, int]:
    return {int(start): int(count) for start, count in mapping.items() if int(start) >= first}


def _read_redis(client, plan: QuotaPlan, now: float) -> tuple[dict, int | None, float, float]:
    raw = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in client.hgetall(redis_key(plan)).items()
    }
    slots = _slots_of(
        {name[2:]: value for name, value in raw.items() if name.startswith("s:")},
        plan.first_slot(now),
    )
    reported = int(raw["limit"]) if raw.get("limit") else None
    return slots, reported, float(raw.get("spent") or 0), float(raw.get("seen") or 0)


def _status(plan: QuotaPlan, now: float, slots, reported, spent_until, seen=0.0) -> QuotaStatus:
    limit, used = plan.limit(reported), sum(slots.values())
    held = spent_until if spent_until > now else 0.0
    return QuotaStatus(
        account=plan.account,
        label=plan.label,
        limit=limit,
        used=used,
        resets_at=plan.resets_at(now, slots, seen),
        spent_until=held,
        stale=plan.quota.reported and not held and used >= limit and now >= seen + plan.recheck,
    )


class QuotaCounter:
    """Reads and corrections of one account's counts (taking a request is the rate budget's,
    atomically with its token: ``take_locked`` and the Lua script there)."""

    def __init__(self, plan: QuotaPlan, redis=None):
        self.plan = plan
        self.redis = redis

    def status(self, now: float) -> QuotaStatus:
        if self.redis is not None:
            return _status(self.plan, now, *_read_redis(self.redis, self.plan, now))
        row = DailyQuotaCount.objects.filter(pk=self.plan.account).first()
        if row is None:
            return _status(self.plan, now, {}, None, 0.0)
        slots = _slots_of(row.slots, self.plan.first_slot(now))
        return _status(self.plan, now, slots, row.reported_limit, row.spent_until, row.reported_at)

    def take_locked(self, now: float) -> QuotaStatus | None:
        """Database mode, inside the rate bucket's transaction: count one request now, or
        the status saying the allowance is spent (nothing counted)."""
        row, _ = DailyQuotaCount.objects.select_for_update().get_or_create(pk=self.plan.account)
        slots = _slots_of(row.slots, self.plan.first_slot(now))
        status = _status(
            self.plan, now, slots, row.reported_limit, row.spent_until, row.reported_at
        )
        fields = ["slots", "updated_at"]
        if status.stale:  # one request reads the vendor's count again
            row.reported_at = now
            fields.append("reported_at")
        elif status.spent:
            return status
        slot = self.plan.slot(now)
        slots[slot] = slots.get(slot, 0) + 1
        row.slots = {str(start): count for start, count in slots.items()}
        row.save(update_fields=fields)
        return None

    def observe(self, usage: QuotaUsage, now: float) -> None:
        """The vendor's own count (and allowance): our count rises to it, never falls; a
        reported quota's count becomes it."""
        replace = self.plan.quota.reported
        used, limit = min(usage.used, REPORTED_MAX), min(usage.limit or 0, REPORTED_MAX)
        if self.redis is not None:
            key = redis_key(self.plan)
            slots, *_ = _read_redis(self.redis, self.plan, now)
            pipe = self.redis.pipeline()
            if replace:
                if slots:  # (slots older than the window are dropped by the take script)
                    pipe.hdel(key, *(f"s:{start}" for start in slots))
                pipe.hset(key, mapping={f"s:{self.plan.slot(now)}": used, "seen": str(now)})
            elif used > sum(slots.values()):
                pipe.hincrby(key, f"s:{self.plan.slot(now)}", used - sum(slots.values()))
            if limit:
                pipe.hset(key, "limit", str(limit))
            pipe.expire(key, REDIS_TTL)
            pipe.execute()
            return
        with transaction.atomic():
            row, _ = DailyQuotaCount.objects.select_for_update().get_or_create(pk=self.plan.account)
            slots = _slots_of(row.slots, self.plan.first_slot(now))
            slot = self.plan.slot(now)
            if replace:
                slots, row.reported_at = {slot: used}, now
            elif used > sum(slots.values()):
                slots[slot] = slots.get(slot, 0) + used - sum(slots.values())
            row.slots = {str(start): count for start, count in slots.items()}
            if limit:
                row.reported_limit = limit
            row.save()

    def exhaust(self, now: float, *, resets_at: float | None = None) -> QuotaStatus:
        """The vendor said the allowance is spent: hold the account until the window ends
        (or ``resets_at``)."""
        status = self.status(now)
        until = resets_at or status.resets_at
        if self.redis is not None:
            key = redis_key(self.plan)
            current = float(self.redis.hget(key, "spent") or 0)
            if until > current:
                self.redis.hset(key, "spent", str(until))
                self.redis.expire(key, max(REDIS_TTL, math.ceil(until - now) + HOUR))
        else:
            with transaction.atomic():
                row, _ = DailyQuotaCount.objects.select_for_update().get_or_create(
                    pk=self.plan.account
                )
                if until > row.spent_until:
                    row.spent_until = until
                    row.save(update_fields=["spent_until", "updated_at"])
        return self.status(now)
