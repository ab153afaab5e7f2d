"""One token renewal per connection at a time, across every worker on every machine.

With ``REDIS_URL``: a Redis key set only if absent (``SET NX PX``) and removed only by its
holder (a compare-and-delete script). Without: a lease on the connection's ``OAuthGrant`` row,
claimed by one atomic UPDATE and released by its holder, so no database transaction stays open
while the vendor's token endpoint is asked (on SQLite that would stop every writer).

A lease ends by itself after ``LEASE_SECONDS`` (longer than a token request may take), so a
worker that died holding it blocks the others no longer than that.
"""

from __future__ import annotations

import secrets
import time
from contextlib import contextmanager

from django.db.models import Q

from integrations.models import OAuthGrant
from mktintegration.redis_client import redis_client

LEASE_SECONDS = 60.0
POLL_SECONDS = 0.05

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RenewalLock:
    def __init__(self, connection_id: int):
        self.connection_id = connection_id
        self.owner = secrets.token_hex(16)
        self._redis = redis_client()

    @property
    def _key(self) -> str:
        return f"mkt:oauth:renew:{self.connection_id}"

    def try_acquire(self) -> bool:
        if self._redis is not None:
            return bool(
                self._redis.set(self._key, self.owner, nx=True, px=int(LEASE_SECONDS * 1000))
            )
        now = time.time()
        return bool(
            OAuthGrant.objects.filter(pk=self.connection_id)
            .filter(Q(lease_owner="") | Q(lease_until__lt=now))
            .update(lease_owner=self.owner, lease_until=now + LEASE_SECONDS)
        )

    def release(self) -> None:
        if self._redis is not None:
            self._redis.eval(_RELEASE, 1, self._key, self.owner)
            return
        OAuthGrant.objects.filter(pk=self.connection_id, lease_owner=self.owner).update(
            lease_owner="", lease_until=0
        )


@contextmanager
def renewal_lock(connection_id: int, *, wait: float):
    """Hold the connection's renewal lock; yields False when ``wait`` seconds passed first."""
    lock = RenewalLock(connection_id)
    deadline = time.monotonic() + wait
    held = lock.try_acquire()
    while not held and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        held = lock.try_acquire()
    try:
        yield held
    finally:
        if held:
            lock.release()
