"""Failed-login throttling for the admin's password sign-in.

Failures are counted in the cache per user name and per client address, in a window of
``MKT_LOGIN_FAILURE_WINDOW_MINUTES`` that starts at the first failure. Once either count
reaches ``MKT_LOGIN_MAX_FAILURES``, the login form refuses (without checking the password) until
the window ends. A successful sign-in resets both counts. With several web processes the cache
must be shared (REDIS_URL) for the limit to hold across them.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import ValidationError

from audit.context import client_address


def _keys(username: str | None, address: str | None) -> list[str]:
    keys = []
    if username:
        digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
        keys.append(f"mkt:login-failures:user:{digest}")
    if address:
        keys.append(f"mkt:login-failures:addr:{address}")
    return keys


def login_failure_record(*, username: str | None, address: str | None) -> None:
    window = settings.MKT_LOGIN_FAILURE_WINDOW_MINUTES * 60
    for key in _keys(username, address):
        if not cache.add(key, 1, window):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, window)


def login_blocked(*, username: str | None, address: str | None) -> bool:
    limit = settings.MKT_LOGIN_MAX_FAILURES
    return any((cache.get(key) or 0) >= limit for key in _keys(username, address))


def login_failures_reset(*, username: str | None, address: str | None) -> None:
    cache.delete_many(_keys(username, address))


def _on_login_failed(sender, credentials, request=None, **kwargs):
    login_failure_record(
        username=credentials.get("username"),
        address=client_address(request) if request is not None else None,
    )


def _on_logged_in(sender, request, user, **kwargs):
    login_failures_reset(
        username=user.get_username(),
        address=client_address(request) if request is not None else None,
    )


def connect() -> None:
    user_login_failed.connect(_on_login_failed, dispatch_uid="mkt-login-failed")
    user_logged_in.connect(_on_logged_in, dispatch_uid="mkt-logged-in")


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, refusing while too many sign-ins failed for the user name or
    from the client's address."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": (
            "Too many failed sign-in attempts for this user name or from your address. "
            "Sign-in is blocked for up to %(minutes)s minutes; try again later."
        ),
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        address = client_address(self.request) if self.request is not None else None
        if login_blocked(username=username, address=address):
            raise ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"minutes": settings.MKT_LOGIN_FAILURE_WINDOW_MINUTES},
            )
        return super().clean()
