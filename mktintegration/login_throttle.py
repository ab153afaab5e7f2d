"""Failed-login throttling for the admin's password sign-in: progressive delays per account
(OWASP ASVS 4.0 V2.2.1), not a lockout by address. Policy and numbers: docs/security.md;
the decision: docs/adr/0005-login-lockout.md.

Three counters of failures live in the cache, each forgotten ``MKT_LOGIN_FAILURE_WINDOW_MINUTES``
after its last failure:

- per **account** (the user name as typed, any case; unknown names are counted alike, so the
  answer never tells whether an account exists),
- per **account and client address**,
- per **client address** (all names together; a much higher allowance).

The first ``MKT_LOGIN_FREE_FAILURES`` failures on a counter (``MKT_LOGIN_ADDRESS_FREE_FAILURES``
for the address) cost nothing; each further one makes the next attempt wait, from that failure,
1 second, then twice as long each time, up to ``MKT_LOGIN_MAX_DELAY_MINUTES``. While an attempt
waits it is refused without checking the password.

Which counters an attempt waits for depends on whether its address is **known** for the
account (the account signed in from it within ``MKT_LOGIN_KNOWN_ADDRESS_DAYS``): an attempt
from a known address waits only for failures of that account from that address, so a stranger
guessing elsewhere cannot lock the owner out; any other attempt also waits for the account's
and the address's counters, so guessing from many addresses is slowed as one. One attempt at a
time is checked per account (and per account and address): parallel guesses do not get past
a delay together.

A successful sign-in clears the account-and-address counter and marks the address known. With
several web processes the cache must be shared (REDIS_URL) for the counts to hold across them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import ValidationError

from audit.context import client_address

logger = logging.getLogger("mktintegration.login")
# How long one password check may hold an account's turn (a crashed request gives it back).
_TURN_SECONDS = 10
_PREFIX = "mkt:login"


class LoginThrottled(Exception):
    def __init__(self, wait: int, reason: str):
        super().__init__(reason)
        self.wait = wait
        self.reason = reason


@dataclass(frozen=True)
class _Keys:
    account: str | None
    pair: str | None
    address: str | None
    known: str | None

    @classmethod
    def of(cls, username: str | None, address: str | None) -> _Keys:
        account = None
        if username:
            account = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
        pair = f"{account}:{address}" if account and address else None
        return cls(
            account=f"{_PREFIX}:account:{account}" if account else None,
            pair=f"{_PREFIX}:pair:{pair}" if pair else None,
            address=f"{_PREFIX}:address:{address}" if address else None,
            known=f"{_PREFIX}:known:{pair}" if pair else None,
        )


def _window() -> int:
    return settings.MKT_LOGIN_FAILURE_WINDOW_MINUTES * 60


def _failures(key: str | None, now: float) -> tuple[int, float]:
    """(failures, time of the last one) on a counter, (0, 0) once forgotten."""
    entry = cache.get(key) if key else None
    if not entry or now - entry[1] > _window():
        return 0, 0.0
    return entry[0], entry[1]


def delay_seconds(*, failures: int, free: int) -> int:
    """How long after the last failure the next attempt waits: nothing within the free
    allowance, then 1 s, doubling with every further failure, capped."""
    if failures <= free:
        return 0
    cap = settings.MKT_LOGIN_MAX_DELAY_MINUTES * 60
    return min(2 ** min(failures - free - 1, 32), cap)


def _wait(key: str | None, free: int, now: float) -> int:
    failures, last = _failures(key, now)
    return max(0, math.ceil(last + delay_seconds(failures=failures, free=free) - now))


def _address_known(keys: _Keys) -> bool:
    return bool(keys.known and cache.get(keys.known))


@contextmanager
def login_attempt(*, username: str | None, address: str | None) -> Iterator[None]:
    """Around one password check: LoginThrottled (and no check) while a delay runs for this
    attempt, or while another attempt for the same account is being checked."""
    keys = _Keys.of(username, address)
    now = time.time()
    free = settings.MKT_LOGIN_FREE_FAILURES
    known = _address_known(keys)
    waits = [(_wait(keys.pair, free, now), "this address has been failing for this name")]
    if not known:
        waits.append((_wait(keys.account, free, now), "this name has been failing"))
        waits.append(
            (
                _wait(keys.address, settings.MKT_LOGIN_ADDRESS_FREE_FAILURES, now),
                "this address has been failing for many names",
            )
        )
    wait, reason = max(waits, key=lambda item: item[0])
    if wait > 0:
        _refused(username, address, wait, reason)
    turns = [f"{key}:turn" for key in (keys.pair, None if known else keys.account) if key]
    taken = []
    try:
        for turn in turns:
            if not cache.add(turn, 1, _TURN_SECONDS):
                _refused(username, address, 1, "another sign-in for this name is being checked")
            taken.append(turn)
        yield
    finally:
        cache.delete_many(taken)


def _refused(username: str | None, address: str | None, wait: int, reason: str) -> NoReturn:
    logger.warning(
        "sign-in refused without checking the password: user name %r from %s, retry in %d s (%s)",
        username,
        address,
        wait,
        reason,
    )
    raise LoginThrottled(wait, reason)


def login_failure_record(*, username: str | None, address: str | None) -> None:
    keys = _Keys.of(username, address)
    now = time.time()
    counts = {}
    for name, key in (("name", keys.account), ("pair", keys.pair), ("address", keys.address)):
        if key:
            failures = _failures(key, now)[0] + 1
            cache.set(key, (failures, now), _window())
            counts[name] = failures
    logger.warning(
        "sign-in failed: user name %r from %s (%d failures for this name, %d from this address)",
        username,
        address,
        counts.get("name", 0),
        counts.get("address", 0),
    )


def login_success_record(*, username: str | None, address: str | None) -> None:
    keys = _Keys.of(username, address)
    if keys.pair:
        cache.delete(keys.pair)
        cache.set(keys.known, 1, settings.MKT_LOGIN_KNOWN_ADDRESS_DAYS * 86400)


def _on_login_failed(sender, credentials, request=None, **kwargs):
    login_failure_record(
        username=credentials.get("username"),
        address=client_address(request) if request is not None else None,
    )


def _on_logged_in(sender, request, user, **kwargs):
    login_success_record(
        username=user.get_username(),
        address=client_address(request) if request is not None else None,
    )


def connect() -> None:
    user_login_failed.connect(_on_login_failed, dispatch_uid="mkt-login-failed")
    user_logged_in.connect(_on_logged_in, dispatch_uid="mkt-logged-in")


def wait_text(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{math.ceil(seconds / 60)} minutes"


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, refusing (without checking the password) while a delay runs."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": "Too many failed sign-in attempts. Try again in %(wait)s.",
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        address = client_address(self.request) if self.request is not None else None
        try:
            with login_attempt(username=username, address=address):
                return super().clean()
        except LoginThrottled as throttled:
            raise ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"wait": wait_text(throttled.wait)},
            ) from None
