"""``make run``'s process supervisor (run_stack): Ctrl-C stops web, worker, beat and the two
vendor emulators, quietly and at once, and leaves nothing running."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mktintegration.management.commands.run_stack import STOP_SECONDS

ROOT = Path(__file__).resolve().parents[2]
# What the test process may have set for its own databases, broker and settings.
_OWN_ENVIRONMENT = ("DJANGO_", "DATABASE_URL", "BACKBONE_", "CELERY_", "REDIS_URL", "MKT_")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _beat_scheduled(database: Path) -> bool:
    """Beat has written every entry of the app's schedule to its database (it is past its
    start-up, which a signal may otherwise interrupt half-way on a loaded machine)."""
    from mktintegration.celery import app

    if not database.exists():
        return False
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            names = {n for (n,) in db.execute("SELECT name FROM django_celery_beat_periodictask")}
    except sqlite3.Error:
        return False
    return set(app.conf.beat_schedule) <= names


def _wait_until(ready, *, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {timeout} s; output:\n{log.read_text()}")
        time.sleep(0.2)


@pytest.mark.timeout(120)
def test_ctrl_c_stops_the_whole_stack_quietly_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_ENVIRONMENT)}
    env.update(DEBUG="1", MKT_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    web, hubspot, mailchimp, marketo = _free_port(), _free_port(), _free_port(), _free_port()
    log = tmp_path / "run_stack.log"
    with log.open("w") as out:
        stack = subprocess.Popen(
            [
                *manage,
                "run_stack",
                f"--addr=127.0.0.1:{web}",
                f"--hubspot-port={hubspot}",
                f"--mailchimp-port={mailchimp}",
                f"--marketo-port={marketo}",
                "--concurrency=1",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own terminal-like process group
        )
    try:
        _wait_until(
            lambda: (
                all(_listening(port) for port in (web, hubspot, mailchimp, marketo))
                and "ready." in log.read_text()
                and "beat: Starting..." in log.read_text()
                and _beat_scheduled(tmp_path / "data" / "mktintegration.sqlite3")
            ),
            timeout=60,
            what="web, emulators, worker and beat up",
            log=log,
        )
        before_ctrl_c = len(log.read_text())
        started = time.monotonic()
        os.killpg(stack.pid, signal.SIGINT)  # Ctrl-C: the terminal signals its whole group
        code = stack.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        if stack.poll() is None:
            stack.terminate()
            stack.wait(timeout=30)

    output = log.read_text()
    after = output[before_ctrl_c:]
    assert code == 0, output
    assert took < STOP_SECONDS and "killed" not in after, (took, after)  # none had to be killed
    assert "Traceback" not in after and " ERROR " not in after, after
    # Besides log records of work under way: the line saying so, and at most Celery's own
    # "worker: Warm shutdown (MainProcess)".
    said = [line for line in after.splitlines() if line.strip() and not line[:4].isdigit()]
    assert said[-1].startswith("mktintegration stopped"), after
    assert len(said) <= 2, after
    assert not any(_listening(port) for port in (web, hubspot, mailchimp, marketo)), "left running"
