"""Heartbeats of running export runs: how the reaper tells a dead worker from a slow one."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connections
from django.utils import timezone

from exports.models import ExportRun, RunStatus

log = logging.getLogger(__name__)


class ClaimLost(Exception):
    """The reaper gave this run to another attempt while this one was still working."""


def heartbeat_interval() -> float:
    return max(min(30.0, settings.MKT_RUN_STALE_SECONDS / 5), 0.05)


class Heartbeat:
    """Keeps ``heartbeat_at`` fresh from a background thread while an attempt works.

    The thread has its own database connection, so it never waits on a COPY in progress on
    the attempt's connection. If the run is no longer this attempt's, ``lost`` turns True.
    """

    def __init__(self, *, run_id: int, attempt: int, every: float):
        self.run_id = run_id
        self.attempt = attempt
        self.every = every
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"export-run-{run_id}-heartbeat", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def check(self) -> None:
        if self.lost:
            raise ClaimLost(f"run {self.run_id} was taken over after attempt {self.attempt}")

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    touched = ExportRun.objects.filter(
                        pk=self.run_id, status=RunStatus.RUNNING, attempt=self.attempt
                    ).update(heartbeat_at=timezone.now())
                except Exception:
                    log.exception("heartbeat of export run %s failed", self.run_id)
                    continue
                if not touched:
                    self.lost = True
                    return
        finally:
            connections.close_all()  # this thread's connections only
