"""Alerts the sync engine raises. The engine calls these two functions; the e-mail, the
recipients, de-duplication and rate limiting live in ``integrations.operations.alerts``.

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
