"""Errors that say whether retrying helps. The engine decides from ``kind``, never from text."""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    RATE_LIMITED = "rate_limited"  # wait (Retry-After) and try again; costs no attempt
    TRANSIENT = "transient"  # network, timeout, 5xx: back off and retry
    PERMANENT = "permanent"  # the request or record is wrong: retrying will not help
    AUTH = "auth"  # credentials rejected or expired: pause and tell a human
    CONFIG = "config"  # our configuration is wrong (host, list id, field): pause


class ConnectorError(Exception):
    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.retry_after = retry_after

    def __str__(self):
        return self.message


class QuotaSpent(ConnectorError):
    """The vendor account's daily quota is spent until ``resets_at`` (epoch seconds): the
    records wait for the next window (deferred), they are never failed for it."""

    def __init__(self, message: str, *, resets_at: float, now: float, status: int | None = None):
        super().__init__(
            message,
            kind=ErrorKind.RATE_LIMITED,
            status=status,
            retry_after=max(resets_at - now, 0.0),
        )
        self.resets_at = resets_at
