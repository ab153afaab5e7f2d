"""A real Celery worker process for integration tests.

It runs with the test settings against the test database, consuming from the same broker as
the test process: the file broker by default, Redis when CELERY_BROKER_URL names it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """The URL of the database the test process is using (the test database)."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    user = config.get("USER") or ""
    password = config.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{auth}{config.get('HOST') or ''}{port}/{config['NAME']}"


class WorkerProcess:
    def __init__(self, *, concurrency: int = 2, name: str = "test-worker"):
        self.concurrency = concurrency
        self.name = name
        self.process: subprocess.Popen | None = None
        self.log_path = Path(settings.DATA_DIR) / f"{name}.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="tests.settings",
            DATABASE_URL=test_database_url(),
            PYTHONPATH=str(ROOT),
        )
        env.pop("BACKBONE_DATABASE_URL", None)
        return env

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mktintegration",
                "worker",
                "-l",
                "INFO",
                "-c",
                str(self.concurrency),
                "-n",
                f"{self.name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole worker (parent and pool children) at once, as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "log", None):
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def clear_file_broker() -> None:
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for sub in ("queue", "processed", "control"):
            folder = settings.BROKER_DIR / sub
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)


def wait_for(condition: Callable[[], object], *, timeout: float = 60, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"waited {timeout:.0f} s for {what or condition}")


def finish_after_kill(run, *, timeout: float = 120) -> None:
    """After a worker was killed mid-run: a replacement worker starts, the reaper runs once the
    dead worker's work is stale (what beat does every minute), and the run is waited for until
    it is no longer delivering."""
    from integrations.engine.runs import runs_reap
    from integrations.models import RunStatus, SyncRun

    replacement = WorkerProcess(name="replacement").start()
    try:
        time.sleep(settings.MKT_RUN_STALE_SECONDS + 1)
        runs_reap()
        wait_for(
            lambda: (
                SyncRun.objects.get(pk=run.pk).status
                not in (RunStatus.DELIVERING, RunStatus.PLANNING)
            ),
            timeout=timeout,
            what="the interrupted run to finish",
        )
    finally:
        replacement.stop()
