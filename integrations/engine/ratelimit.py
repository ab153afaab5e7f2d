"""The rate budget of one vendor account, shared by every worker process.

A token bucket per connection, kept in Redis when ``REDIS_URL`` is set (one Lua script, atomic
across machines) and in the database otherwise (one row per connection, updated in an
immediate transaction). A 429's ``Retry-After`` blocks the whole connection until then.

The bucket refills at 98% of the vendor's rate with a burst of 2% of its window, so no window
of the vendor's length ever holds more requests than the vendor allows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from integrations.connectors.base import RateSpec
from integrations.models import RateBucket
from mktintegration.errors import ConnectorError, ErrorKind
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


_LUA = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or ARGV[2])
local refilled = tonumber(redis.call('HGET', KEYS[1], 'refilled') or ARGV[3])
local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked') or '0')
local rate, capacity, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if now < blocked then return tostring(blocked - now) end
tokens = math.min(capacity, tokens + (now - refilled) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'refilled', tostring(now))
redis.call('EXPIRE', KEYS[1], 86400)
return tostring(wait)
"""


class RateBudget:
    """``acquire()`` before each request; ``block(seconds)`` after a 429."""

    def __init__(self, *, connection_id: int, spec: RateSpec, max_wait: float | None = None):
        self.connection_id = connection_id
        self.bucket = Bucket.for_spec(spec)
        self.max_wait = settings.MKT_RATE_MAX_WAIT_SECONDS if max_wait is None else max_wait
        self.waited = 0.0
        self._redis = redis_client()

    def acquire(self) -> None:
        while True:
            wait = self._take()
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

    def _key(self) -> str:
        return f"mkt:rate:{self.connection_id}"

    def _take(self) -> float:
        """Take one token; 0 if taken, else the seconds until one is available."""
        now = time.time()
        if self._redis is not None:
            take = _lua_take(self._redis)
            return float(
                take(keys=[self._key()], args=[self.bucket.rate, self.bucket.capacity, now])
            )
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
