"""Start the web server, one Celery worker and beat together (``make run``).

Each runs as its own process with the same environment; when one exits, or on Ctrl-C, the
others are stopped too, so nothing is left running in the background.
"""

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from mktintegration.demo import DEMO_HUBSPOT_PORT, DEMO_MAILCHIMP_PORT


class Command(BaseCommand):
    help = "Run web + Celery worker + beat in the foreground until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", default="2")

    def handle(self, *args, **options):
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
            commands["hubspot-emulator"] = [
                python,
                "-m",
                "tests.fakes",
                "--vendor",
                "hubspot",
                "--port",
                str(DEMO_HUBSPOT_PORT),
            ]
            commands["mailchimp-emulator"] = [
                python,
                "-m",
                "tests.fakes",
                "--vendor",
                "mailchimp",
                "--port",
                str(DEMO_MAILCHIMP_PORT),
            ]
        processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command)  # noqa: S603 (our own interpreter)
        self.stdout.write(
            self.style.SUCCESS(
                f"mktintegration is running: admin at http://{options['addr']}/admin/ "
                f"(started: {', '.join(commands)}; Ctrl-C stops them all)"
            )
        )
        exited = None
        while not stopping and exited is None:
            time.sleep(0.5)
            exited = next((n for n, p in processes.items() if p.poll() is not None), None)
        if exited:
            self.stderr.write(f"{exited} exited with code {processes[exited].returncode}; stopping")
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        if exited:
            sys.exit(1)
