"""Alerts the sync engine and the token lifecycle raise; the e-mail, the recipients,
de-duplication and rate limiting live in ``integrations.operations.alerts``.

An alert that cannot be recorded or mailed is logged and never fails the run that raised it.
"""

from __future__ import annotations

import logging

log = logging.getLogger("mktintegration.alerts")


def alert_mirror_guard(*, sync, run) -> None:
    log.warning(
        "ALERT mirror delete guard tripped on sync %s (%s): %s", sync.pk, sync.name, run.error
    )
    try:
        from integrations.operations.alerts import mirror_guard_tripped

        mirror_guard_tripped(sync=sync, run=run)
    except Exception:
        log.exception("ALERT mirror guard of sync %s could not be sent", sync.pk)


def alert_sync_paused(*, sync, reason: str) -> None:
    log.warning("ALERT sync %s (%s) paused: %s", sync.pk, sync.name, reason)
    try:
        from integrations.operations.alerts import sync_paused

        sync_paused(sync=sync, reason=reason)
    except Exception:
        log.exception("ALERT pause of sync %s could not be sent", sync.pk)


def alert_connection_auth(*, connection_id: int) -> None:
    """A connection's credentials were refused (an OAuth grant lost): alert now, not at the
    next periodic evaluation."""
    try:
        from integrations.models import Connection
        from integrations.operations.evaluate import connection_evaluate

        connection_evaluate(Connection.objects.get(pk=connection_id))
    except Exception:
        log.exception("ALERT credentials of connection %s: could not be sent", connection_id)
