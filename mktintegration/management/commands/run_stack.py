"""Start the web server, one Celery worker and beat together (``make run``).

Each runs as its own process with the same environment, in a process group of its own: Ctrl-C
(which the terminal sends to its whole foreground group), SIGTERM or a closed terminal reach
this command only, and it stops the others with one SIGTERM each and says so in one line.
When one exits by itself, the others are stopped too, so nothing is left running.
"""

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from mktintegration.demo import DEMO_HUBSPOT_PORT, DEMO_MAILCHIMP_PORT, DEMO_MARKETO_PORT

STOP_SECONDS = 15  # how long the processes have to stop before they are killed


class Command(BaseCommand):
    help = "Run web + Celery worker + beat in the foreground until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", default="2")
        parser.add_argument(
            "--hubspot-port",
            type=int,
            default=DEMO_HUBSPOT_PORT,
            help="Demo mode: the HubSpot emulator's port (the demo connection uses the default).",
        )
        parser.add_argument(
            "--mailchimp-port",
            type=int,
            default=DEMO_MAILCHIMP_PORT,
            help="Demo mode: the Mailchimp emulator's port (the demo connection uses the default).",
        )
        parser.add_argument(
            "--marketo-port",
            type=int,
            default=DEMO_MARKETO_PORT,
            help="Demo mode: the Marketo emulator's port (the demo connection uses the default).",
        )

    def handle(self, *args, **options):
        commands = _commands(options)
        processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, stop)
        for name, command in commands.items():
            if stopping:
                break
            # Our own interpreter; a group of its own, so that only we get the terminal's Ctrl-C.
            processes[name] = subprocess.Popen(command, process_group=0)  # noqa: S603
        self.stdout.write(
            self.style.SUCCESS(
                f"mktintegration is running: admin at http://{options['addr']}/admin/ "
                f"(started: {', '.join(processes)}; Ctrl-C stops them all)"
            )
        )
        exited = None
        while not stopping and exited is None:
            time.sleep(0.5)
            exited = next((n for n, p in processes.items() if p.poll() is not None), None)
        if exited:
            self.stderr.write(f"{exited} exited with code {processes[exited].returncode}; stopping")
        killed = _stop(processes)
        line = f"mktintegration stopped ({', '.join(processes)})"
        if killed:
            line += f"; killed after {STOP_SECONDS} s: {', '.join(killed)}"
        self.stdout.write(line)
        if exited:
            sys.exit(1)


def _commands(options) -> dict[str, list[str]]:
    python = sys.executable
    commands = {
        "web": [python, "manage.py", "runserver", options["addr"], "--noreload"],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "mktintegration",
            "worker",
            "-l",
            "INFO",
            "-c",
            options["concurrency"],
            "--without-gossip",
            "--without-mingle",
            "-n",
            "demo-worker@%h",
        ],
        "beat": [python, "-m", "celery", "-A", "mktintegration", "beat", "-l", "INFO"],
    }
    if settings.DEMO_MODE:
        # The demo connections talk to local vendor emulators (tests/fakes).
        for vendor in ("hubspot", "mailchimp", "marketo"):
            port = str(options[f"{vendor}_port"])
            emulator = [python, "-m", "tests.fakes", "--vendor", vendor, "--port", port]
            commands[f"{vendor}-emulator"] = emulator
    return commands


def _stop(processes: dict[str, subprocess.Popen]) -> list[str]:
    """SIGTERM each process still running; kill what has not stopped in time. Returns the
    names of the killed ones."""
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    killed = []
    for name, process in processes.items():
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            killed.append(name)
    return killed
