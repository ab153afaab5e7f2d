"""Idle and absolute timeouts of signed-in sessions (OWASP ASVS 4.0 V3.3).

A session signed in with a password or SSO ends ``MKT_SESSION_IDLE_MINUTES`` after its last
request: that request finds itself signed out (the admin sends it to the login page, saying
why). The time of the last request is kept in the session, written at most once a minute, so
the idle timeout holds to within a minute without a session write on every request. Writing
the session would push Django's expiry on with every write; so the first request after
sign-in fixes the expiry at ``SESSION_COOKIE_AGE`` after it, and activity never extends it.

API requests with a token have no session and are not affected.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.utils import timezone

logger = logging.getLogger("mktintegration.session")
LAST_SEEN = "mkt_last_seen"  # epoch seconds of the last request (to the minute)
_WRITE_EVERY = 60


class IdleSessionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = request.session
        if SESSION_KEY in session:
            now = time.time()
            last_seen = session.get(LAST_SEEN)
            idle = settings.MKT_SESSION_IDLE_MINUTES
            if last_seen is not None and now - last_seen > idle * 60:
                logger.info("signed out user %s after %d idle minutes", session[SESSION_KEY], idle)
                logout(request)
                messages.info(
                    request,
                    f"You were signed out after {idle} minutes without activity. "
                    "Sign in again to continue.",
                )
            elif last_seen is None:
                session[LAST_SEEN] = int(now)
                session.set_expiry(timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE))
            elif now - last_seen >= _WRITE_EVERY:
                session[LAST_SEEN] = int(now)
        return self.get_response(request)
