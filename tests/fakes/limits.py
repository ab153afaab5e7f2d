"""Rate-limit windows and injected faults for the fake vendors.

These classes hold no lock of their own: ``base.FakeVendor`` calls them under its state lock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

FaultKind = Literal["fail", "delay", "drop"]


@dataclass(frozen=True)
class RateStatus:
    """The state of the sliding window after a request, for 429 bodies and rate headers.

    ``enforced`` is False while no limit is set (the window is then only reported).
    ``retry_after`` is the number of seconds until a slot frees up (0 when one is free).
    """

    limit: int
    window_seconds: float
    remaining: int
    retry_after: float
    enforced: bool

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` as whole seconds, rounded up, at least 1."""
        return str(max(1, math.ceil(self.retry_after)))


class SlidingWindow:
    """At most ``max_requests`` accepted requests in any rolling ``per_seconds`` interval.

    Only accepted requests take a slot, so a client that backs off for ``Retry-After`` seconds
    always gets through. When ``enforced`` is False every request is accepted and the window is
    only counted (so vendors that report their limit in headers can still do so).
    """

    def __init__(self, max_requests: int, per_seconds: float, *, enforced: bool = True):
        if max_requests < 1 or per_seconds <= 0:
            raise ValueError("a rate limit needs max_requests >= 1 and per_seconds > 0")
        self.max_requests = max_requests
        self.per_seconds = per_seconds
        self.enforced = enforced
        self._accepted: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._accepted and self._accepted[0] <= now - self.per_seconds:
            self._accepted.popleft()

    def try_acquire(self, now: float) -> bool:
        """Take a slot at ``now`` (monotonic seconds); False if the limit is reached."""
        self._prune(now)
        if self.enforced and len(self._accepted) >= self.max_requests:
            return False
        self._accepted.append(now)
        return True

    def status(self, now: float) -> RateStatus:
        """The remaining slots and the wait until the next one, as of ``now``."""
        self._prune(now)
        used = len(self._accepted)
        remaining = max(0, self.max_requests - used)
        retry_after = 0.0
        if remaining == 0 and self._accepted:
            # The slot that frees first belongs to the request that is `max_requests` back.
            oldest = self._accepted[used - self.max_requests]
            retry_after = max(0.0, oldest + self.per_seconds - now)
        return RateStatus(
            self.max_requests, self.per_seconds, remaining, retry_after, self.enforced
        )


@dataclass
class Fault:
    """An injected misbehaviour for the next ``remaining`` matching requests.

    ``fail``: answer ``status`` / ``body`` without applying. ``delay``: wait ``seconds`` before
    answering. ``drop``: close the socket without answering. For ``delay`` and ``drop``,
    ``apply_first`` says whether the route runs (the write lands) before the wait / the drop.
    """

    kind: FaultKind
    remaining: int
    status: int = 500
    body: Any = None
    seconds: float = 0.0
    apply_first: bool = False
    path_contains: str | None = None
    writes_only: bool = True
    headers: dict[str, str] | None = None  # ``fail``: extra response headers (Retry-After)
    skip: int = 0  # let this many matching requests through first

    def matches(self, path: str, is_write: bool) -> bool:
        """Whether a request to ``path`` (a write or not) consumes this fault."""
        if self.writes_only and not is_write:
            return False
        return self.path_contains is None or self.path_contains in path


class FaultQueue:
    """Faults in the order they were injected; the first matching one is consumed first."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue ``fault`` (ignored when its count is not positive)."""
        if fault.remaining > 0:
            self._faults.append(fault)

    def take(self, path: str, is_write: bool) -> Fault | None:
        """Consume one use of the first fault matching this request, if any."""
        for fault in self._faults:
            if fault.matches(path, is_write):
                if fault.skip:
                    fault.skip -= 1
                    return None
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> int:
        """How many injected faults are still to be consumed."""
        return sum(fault.remaining for fault in self._faults)

    def clear(self) -> None:
        """Forget every pending fault."""
        self._faults.clear()


class DailyLimit:
    """At most ``max_requests`` accepted requests per calendar day, the day starting at
    midnight at ``utc_offset_hours`` (Marketo: 12:00 AM CST, -6; Constant Contact: 00:00 UTC).

    Uses ``time.time()`` (not the monotonic clock): a test's fake clock moves the vendor's day
    as it moves ours. Only accepted requests are counted (emulator choice).
    """

    def __init__(self, max_requests: int, utc_offset_hours: float = 0.0):
        if max_requests < 1:
            raise ValueError("a daily limit needs max_requests >= 1")
        self.max_requests = max_requests
        self.offset = utc_offset_hours * 3600
        self._day: int | None = None
        self.used = 0
        self.refused = 0  # requests answered "quota spent"

    def day(self, now: float) -> int:
        return int((now + self.offset) // 86_400)

    def try_acquire(self, now: float) -> bool:
        """Count one request at ``now`` (epoch seconds); False when the day's are spent."""
        day = self.day(now)
        if day != self._day:
            self._day, self.used = day, 0
        if self.used >= self.max_requests:
            self.refused += 1
            return False
        self.used += 1
        return True

    def spend(self, n: int, now: float) -> None:
        """Count ``n`` requests others made at ``now``."""
        for _ in range(min(n, self.max_requests)):
            self.try_acquire(now)

    def used_today(self, now: float) -> int:
        return self.used if self.day(now) == self._day else 0


@dataclass
class DailyAllowance:
    """A vendor's daily request allowance: ``take()`` counts one request, False past it."""

    maximum: int
    used: int = 0
    refusals: int = 0

    def take(self) -> bool:
        if self.used >= self.maximum:
            self.refusals += 1
            return False
        self.used += 1
        return True
