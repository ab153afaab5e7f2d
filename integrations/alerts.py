"""Alerts about syncs. E-mail delivery with de-duplication arrives with the operations work;
until then alerts go to the log at WARNING, which the deployment's log shipping sees."""

from __future__ import annotations

import logging

log = logging.getLogger("mktintegration.alerts")


def alert_mirror_guard(*, sync, run) -> None:
    log.warning(
        "ALERT mirror delete guard tripped on sync %s (%s): %s", sync.pk, sync.name, run.error
    )


def alert_sync_paused(*, sync, reason: str) -> None:
    log.warning("ALERT sync %s (%s) paused: %s", sync.pk, sync.name, reason)
