"""The rate budget of one vendor account, shared by every worker process.

A token bucket per connection, kept in Redis when ``REDIS_URL`` is set (one Lua script, atomic
across machines) and in the database otherwise (one row per connection, updated in an
immediate transaction). A 429's ``Retry-After`` blocks the whole connection until then.

The bucket refills at 98% of the vendor's rate with a burst of 2% of its window, so no window
of the vendor's length ever holds more requests than the vendor allows.

Where the vendor has a daily quota (``integrations.engine.quota``), each request also counts
against it, in the same atomic step as its token: a request that would go over the quota is
never sent, ``acquire`` raises ``QuotaSpent`` (the records wait for the next window).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from integrations.connectors.base import QuotaUsage, RateSpec
from integrations.engine.quota import QuotaCounter, QuotaPlan, QuotaStatus, redis_key
from integrations.models import RateBucket
from mktintegration.errors import ConnectorError, ErrorKind, QuotaSpent
from mktintegration.redis_client import redis_client

SAFETY = 0.98


class RateWaitTooLong(ConnectorError):
    """The next request may go only after ``wait`` seconds: reschedule instead of sleeping.
    (A rate-limited ConnectorError, so interactive callers, such as the admin reading a
    destination's fields, say "try again" instead of failing.)"""

    def __init__(self, wait: float):
        super().__init__(
            f"the connection's rate budget is spent: next request in {wait:.1f} s",
            kind=ErrorKind.RATE_LIMITED,
            retry_after=wait,
        )
        self.wait = wait


@dataclass
class Bucket:
    rate: float  # tokens per second
    capacity: float

    @classmethod
    def for_spec(cls, spec: RateSpec) -> Bucket:
        return cls(
            rate=spec.requests / spec.per_seconds * SAFETY,
            capacity=max(1.0, spec.requests * (1 - SAFETY)),
        )


# KEYS[1]: the connection's bucket; KEYS[2] (with a daily quota): the account's counts, whose
# ARGV[4..9] are the connection's own allowance (0: none), the declared one, the oldest slot
# still counted, the slot of now, and for a reported quota ("1") the seconds between looks at
# a spent count. Returns the seconds to wait, or "q": the quota is spent.
_LUA = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or ARGV[2])
local refilled = tonumber(redis.call('HGET', KEYS[1], 'refilled') or ARGV[3])
local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked') or '0')
local rate, capacity, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if now < blocked then return tostring(blocked - now) end
tokens = math.min(capacity, tokens + (now - refilled) * rate)
local wait = 0
if tokens >= 1 and #KEYS > 1 then
  if now < tonumber(redis.call('HGET', KEYS[2], 'spent') or '0') then return 'q' end
  local limit = tonumber(ARGV[4])
  if limit <= 0 then limit = tonumber(redis.call('HGET', KEYS[2], 'limit') or ARGV[5]) end
  local first, used = tonumber(ARGV[6]), 0
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 's:' then
      if tonumber(string.sub(all[i], 3)) < first then
        redis.call('HDEL', KEYS[2], all[i])
      else
        used = used + tonumber(all[i + 1])
      end
    end
  end
  if used >= limit then
    -- a reported quota: one request reads the vendor's count again once it is old enough
    local seen = tonumber(redis.call('HGET', KEYS[2], 'seen') or '0')
    if ARGV[8] ~= '1' or now < seen + tonumber(ARGV[9]) then return 'q' end
    redis.call('HSET', KEYS[2], 'seen', tostring(now))
  end
  redis.call('HINCRBY', KEYS[2], 's:' .. ARGV[7], 1)
  redis.call('EXPIRE', KEYS[2], 172800)
end
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'refilled', tostring(now))
redis.call('EXPIRE', KEYS[1], 86400)
return tostring(wait)
"""
QUOTA_SPENT = -1.0  # what _take says when the daily quota is spent


class RateBudget:
    """``acquire()`` before each request; ``block(seconds)`` after a 429."""

    def __init__(
        self,
        *,
        connection_id: int,
        spec: RateSpec,
        max_wait: float | None = None,
        quota: QuotaPlan | None = None,
    ):
        self.connection_id = connection_id
        self.bucket = Bucket.for_spec(spec)
        self.max_wait = settings.MKT_RATE_MAX_WAIT_SECONDS if max_wait is None else max_wait
        self.waited = 0.0
        self._redis = redis_client()
        self.quota = QuotaCounter(quota, self._redis) if quota is not None else None

    def acquire(self) -> None:
        while True:
            wait = self._take()
            if wait == QUOTA_SPENT and self.quota is not None:
                now = time.time()
                raise self.quota.status(now).spent_error(now)
            if wait <= 0:
                return
            if wait > self.max_wait:
                raise RateWaitTooLong(wait)
            self.waited += wait
            time.sleep(wait)

    def block(self, seconds: float) -> None:
        until = time.time() + max(seconds, 0.0)
        if self._redis is not None:
            key = self._key()
            current = float(self._redis.hget(key, "blocked") or 0)
            if until > current:
                self._redis.hset(key, "blocked", str(until))
            return
        with transaction.atomic():
            bucket, _ = RateBucket.objects.select_for_update().get_or_create(
                connection_id=self.connection_id
            )
            if until > bucket.blocked_until:
                bucket.blocked_until = until
                bucket.save(update_fields=["blocked_until"])

    # --- the daily quota (what connectors call through Connector.quota_*) ------------------
    def quota_status(self) -> QuotaStatus | None:
        return self.quota.status(time.time()) if self.quota is not None else None

    def quota_observe(self, usage: QuotaUsage) -> None:
        if self.quota is not None:
            self.quota.observe(usage, time.time())

    def quota_exhausted(self, message: str, *, resets_at: float | None = None) -> QuotaSpent:
        """The vendor said the day's allowance is gone: hold the account; the error to raise."""
        now = time.time()
        if self.quota is None:
            return QuotaSpent(message, resets_at=resets_at or now + 3600.0, now=now)
        status = self.quota.exhaust(now, resets_at=resets_at)
        return QuotaSpent(
            f"{message}; the records wait for the quota's next window, at "
            f"{status.resets:%Y-%m-%d %H:%M} UTC",
            resets_at=max(status.resets_at, status.spent_until),
            now=now,
        )

    def _key(self) -> str:
        return f"mkt:rate:{self.connection_id}"

    def _take(self) -> float:
        """Take one token (and count the request against the daily quota); 0 if taken, else
        the seconds until one is available, or QUOTA_SPENT."""
        now = time.time()
        if self._redis is not None:
            take = _lua_take(self._redis)
            keys, args = [self._key()], [self.bucket.rate, self.bucket.capacity, now]
            if self.quota is not None:
                plan = self.quota.plan
                keys.append(redis_key(plan))
                args += [
                    plan.override or 0,
                    plan.quota.requests,
                    plan.first_slot(now),
                    plan.slot(now),
                    1 if plan.quota.reported else 0,
                    plan.recheck,
                ]
            answer = take(keys=keys, args=args)
            answer = answer.decode() if isinstance(answer, bytes) else str(answer)
            return QUOTA_SPENT if answer == "q" else float(answer)
        with transaction.atomic():
            bucket, _ = RateBucket.objects.select_for_update().get_or_create(
                connection_id=self.connection_id,
                defaults={"tokens": self.bucket.capacity, "refilled_at": now},
            )
            if now < bucket.blocked_until:
                return bucket.blocked_until - now
            tokens = min(
                self.bucket.capacity,
                bucket.tokens + (now - bucket.refilled_at) * self.bucket.rate,
            )
            if tokens >= 1:
                if self.quota is not None and self.quota.take_locked(now) is not None:
                    return QUOTA_SPENT
                bucket.tokens, bucket.refilled_at = tokens - 1, now
                bucket.save(update_fields=["tokens", "refilled_at"])
                return 0.0
            return (1 - tokens) / self.bucket.rate


_SCRIPTS = {}


def _lua_take(client):
    """The take script, registered once per client (then called by its SHA)."""
    if id(client) not in _SCRIPTS:
        _SCRIPTS[id(client)] = client.register_script(_LUA)
    return _SCRIPTS[id(client)]
