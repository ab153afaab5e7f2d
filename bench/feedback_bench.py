"""Feedback loop benchmark: HubSpot webhooks into the receiver at a fixed rate, on the production
stack (gunicorn, Redis, Celery workers, PostgreSQL), and the opt-outs they cause at Mailchimp.

    DATABASE_URL=postgres://.../mkt_feedback_bench REDIS_URL=redis://.../4 \\
        CELERY_BROKER_URL=redis://.../5 CELERY_QUEUE=mkt-feedback \\
        .venv/bin/python bench/feedback_bench.py [--rate 1000] [--seconds 120] [--port 8901]

The database (create it first: ``createdb``) is migrated if it needs to be. It seeds a
company with ``--contacts`` consented contacts and syncs them (through the workers) to the
HubSpot emulator and to two Mailchimp audiences; then POSTs signed HubSpot-style requests of
10 events at ``--rate`` events a second for ``--seconds`` (open loop: each request leaves at its
planned time, whatever the answers before it), ``--unsubscribe-share`` of them opt-outs of
synced contacts (each contact once), the rest property changes nobody acts on. Then it waits
for every event to be processed and every opt-out confirmed, and measures:

- ``webhook_p95_ms``: p95 of the receive latency seen by the sender (target <= 50 ms);
- ``suppression_p95_s``: p95, over the opt-outs, of received -> confirmed by both Mailchimp
  audiences (the database's own timestamps; target <= 5 s);
- ``events_lost``: events acknowledged with a 2xx and not stored, plus events stored and never
  processed (target 0).

It is sized for a 2-core machine (3 gunicorn workers, 2 Celery processes by default); the
sender, the emulators, PostgreSQL and Redis share the same cores, so the figures are upper
bounds of what the product costs, and on a shared machine they vary from run to run.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import math
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
APP_SECRET = "bench-hubspot-app-secret"  # noqa: S105 - a bench-only value
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
os.environ.setdefault("MKT_ENCRYPTION_KEYS", base64.urlsafe_b64encode(os.urandom(32)).decode())
os.environ.setdefault("MKT_AUDIT_KEYS", "bench-only-audit-key-not-for-production-0123456789")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ.setdefault("MKT_HTTP_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ["MKT_HUBSPOT_WEBHOOK_SECRET"] = APP_SECRET
os.environ["MKT_WEBHOOK_EVENTS_PER_MINUTE"] = "10000000"
os.environ["DJANGO_SETTINGS_MODULE"] = "mktintegration.settings"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Max  # noqa: E402
from django.utils import timezone  # noqa: E402

from exports.backbone.models import Company, ConsentRecord, Contact  # noqa: E402
from integrations.models import Connection, FieldMapping, Sync, SyncRun  # noqa: E402
from integrations.services import sync_delete, sync_run_start  # noqa: E402
from integrations.webhooks.models import (  # noqa: E402
    EventState,
    Suppression,
    SuppressionStatus,
    WebhookEvent,
)
from tests.fakes.hubspot import FakeHubSpot  # noqa: E402
from tests.fakes.mailchimp import DEFAULT_LIST, FakeMailchimp  # noqa: E402
from tests.worker import WorkerProcess  # noqa: E402

SECOND_LIST = "list0002"
EVENTS_PER_REQUEST = 10


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]  # nearest rank


def _connection(name: str, vendor: str, server, auth: dict) -> Connection:
    conn = Connection(
        name=name,
        vendor=vendor,
        auth_kind="private_app_token" if vendor == "hubspot" else "api_key",
        base_url=getattr(server, "base_url", server.url),
        rate_limit_requests=1_000_000,
        rate_limit_seconds=1,
    )
    conn.set_credentials(auth)
    conn.save()
    return conn


def _sync(name, conn, obj, match, mappings, company, **fields) -> Sync:
    sync = Sync.objects.create(
        name=name,
        connection=conn,
        dataset="contacts",
        filters={"company_external_id": company.external_id},
        destination_object=obj,
        match_source_field="email",
        match_destination_field=match,
        consent_purpose="email_marketing",
        **fields,
    )
    for position, (source, target) in enumerate(mappings):
        FieldMapping.objects.create(
            sync=sync, source_field=source, destination_field=target, position=position
        )
    return sync


def seed(hubspot: FakeHubSpot, mailchimp: FakeMailchimp, n: int, run_id: str):
    """A company with ``n`` consented contacts, synced to HubSpot and two Mailchimp audiences."""
    for old in Sync.objects.filter(name__startswith="bench feedback"):
        sync_delete(sync=old)
    Connection.objects.filter(name__startswith="bench feedback").delete()
    now = timezone.now()
    company = Company.objects.create(
        external_id=f"FB-{run_id}",
        name="Feedback bench",
        country="DE",
        residency_region="eu",
        lifecycle_stage="lead",
        created_at=now,
        updated_at=now,
    )
    contacts = Contact.objects.bulk_create(
        Contact(
            company=company,
            email=f"fb{run_id}-{i}@example.com",
            first_name=f"P{i}",
            created_at=now,
            updated_at=now,
        )
        for i in range(n)
    )
    ConsentRecord.objects.bulk_create(
        ConsentRecord(
            contact=c, purpose="email_marketing", channel="email", status="granted", recorded_at=now
        )
        for c in contacts
    )
    mailchimp.add_list(SECOND_LIST)
    hs = _connection("bench feedback HubSpot", "hubspot", hubspot, {"token": hubspot.credential})
    mc = _connection(
        "bench feedback Mailchimp", "mailchimp", mailchimp, {"api_key": mailchimp.credential}
    )
    first = [("first_name", "firstname")]
    merge = [("first_name", "FNAME")]
    syncs = [
        _sync("bench feedback HubSpot contacts", hs, "contacts", "email", first, company),
        _sync(
            "bench feedback audience 1",
            mc,
            "members",
            "email_address",
            merge,
            company,
            destination_config={"list_id": DEFAULT_LIST},
        ),
        _sync(
            "bench feedback audience 2",
            mc,
            "members",
            "email_address",
            merge,
            company,
            destination_config={"list_id": SECOND_LIST},
        ),
    ]
    runs = [sync_run_start(sync=s, trigger="manual") for s in syncs]
    deadline = time.monotonic() + 600
    while any(
        SyncRun.objects.get(pk=r.pk).status in ("queued", "planning", "delivering") for r in runs
    ):
        if time.monotonic() > deadline:
            raise TimeoutError("the seeding syncs did not finish in 10 minutes")
        time.sleep(0.5)
    created = [SyncRun.objects.get(pk=r.pk).created for r in runs]
    if created != [n, n, n]:
        raise RuntimeError(f"seeding synced {created} of {n} contacts each")
    ids = {o["properties"]["email"]: o["id"] for o in hubspot.objects("contacts")}
    return hs, [ids[c.email] for c in contacts]


class Sender:
    """Open-loop load: request k leaves at start + k / requests-per-second."""

    def __init__(self, *, port: int, connection_id: int, hubspot_ids: list[str], args):
        self.port = port
        self.path = f"/marketing/integrations/webhooks/hubspot/{connection_id}"
        self.url = f"http://127.0.0.1:{port}{self.path}"
        self.targets = list(hubspot_ids)
        random.shuffle(self.targets)
        self.rate = args.rate / EVENTS_PER_REQUEST
        self.total = int(self.rate * args.seconds)
        self.share = args.unsubscribe_share
        self.lock = threading.Lock()
        self.next = 0
        self.event_id = int(time.time() * 1000) * 1000
        self.results: list[tuple[float, int, int, float]] = []  # latency, status, events, late

    def _events(self) -> list[dict]:
        events = []
        with self.lock:
            for _ in range(EVENTS_PER_REQUEST):
                self.event_id += 1
                optout = self.targets and random.random() < self.share
                target = self.targets.pop() if optout else random.choice(self.targets or ["1"])
                events.append(
                    FakeHubSpot.webhook_event(
                        target,
                        "hs_email_optout" if optout else "firstname",
                        "true" if optout else "Somebody",
                        event_id=self.event_id,
                    )
                )
        return events

    def _one(self, planned: float) -> None:
        body, headers = FakeHubSpot.signed_webhook(self.url, self._events(), secret=APP_SECRET)
        late = max(0.0, time.monotonic() - planned)
        started = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            conn.request("POST", self.path, body=body, headers=headers)
            status = conn.getresponse().status
            conn.close()
        except OSError:
            status = 0
        with self.lock:
            self.results.append((time.monotonic() - started, status, EVENTS_PER_REQUEST, late))

    def run(self, threads: int) -> float:
        start = time.monotonic() + 0.5

        def worker():
            while True:
                with self.lock:
                    k = self.next
                    self.next += 1
                if k >= self.total:
                    return
                planned = start + k / self.rate
                wait = planned - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self._one(planned)

        pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        return time.monotonic() - start


def _stack_env(args) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="mktintegration.settings",
        MKT_BASE_URL=f"http://127.0.0.1:{args.port}",
        PYTHONPATH=str(ROOT),
    )
    return env


def _start(args, log_dir: Path) -> list[subprocess.Popen]:
    """gunicorn on ``--port`` (the Celery workers are tests/worker.py's, as in sync_bench)."""
    env = _stack_env(args)
    bin_dir = Path(sys.executable).parent
    web = subprocess.Popen(
        [
            str(bin_dir / "gunicorn"),
            "mktintegration.wsgi",
            "-w",
            str(args.web_workers),
            "-b",
            f"127.0.0.1:{args.port}",
            "--access-logfile",
            "-" if args.verbose else "/dev/null",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(log_dir / "gunicorn.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("gunicorn did not answer /healthz in 60 s")
        time.sleep(0.3)
    return [web]


def _stop(processes: list[subprocess.Popen]) -> None:
    import signal

    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def drain(connection_id: int, since, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while time.monotonic() < deadline:
        waiting = WebhookEvent.objects.filter(
            connection_id=connection_id, received_at__gte=since, state=EventState.RECEIVED
        ).exists()
        pending = Suppression.objects.filter(
            status__in=[SuppressionStatus.PENDING, SuppressionStatus.SENDING]
        ).exists()
        if not waiting and not pending:
            break
        time.sleep(0.5)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000, help="events per second")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--unsubscribe-share", type=float, default=0.01)
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="Celery processes")
    parser.add_argument("--threads", type=int, default=16, help="sender threads")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if connection.vendor != "postgresql" or not os.environ.get("CELERY_BROKER_URL", "").startswith(
        "redis"
    ):
        sys.exit("run this on PostgreSQL and Redis (DATABASE_URL, REDIS_URL, CELERY_BROKER_URL)")
    call_command("migrate", interactive=False, verbosity=0)
    log_dir = ROOT / "data" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    run_id = secrets.token_hex(3)
    with FakeHubSpot() as hubspot, FakeMailchimp() as mailchimp:
        hubspot.set_rate_limit(10_000_000, 10.0)  # no vendor limit: the loop's own cost
        mailchimp.set_max_concurrency(None)
        processes = _start(args, log_dir)
        worker = WorkerProcess(concurrency=args.concurrency, name="feedback-bench").start()
        try:
            print(f"Seeding {args.contacts:,} contacts synced to 3 destinations ...", flush=True)
            hs_connection, hubspot_ids = seed(hubspot, mailchimp, args.contacts, run_id)
            since = timezone.now()
            sender = Sender(
                port=args.port, connection_id=hs_connection.pk, hubspot_ids=hubspot_ids, args=args
            )
            print(
                f"Sending {args.rate:,.0f} events/s for {args.seconds:.0f} s "
                f"({sender.total:,} requests of {EVENTS_PER_REQUEST}) ...",
                flush=True,
            )
            elapsed = sender.run(args.threads)
            drained = drain(hs_connection.pk, since, timeout=300)
        finally:
            worker.stop()
            _stop(processes)
        violations = hubspot.violations + mailchimp.violations
    ok = [r for r in sender.results if 200 <= r[1] < 300]
    acked = sum(r[2] for r in ok)
    stored = WebhookEvent.objects.filter(connection=hs_connection, received_at__gte=since)
    unprocessed = stored.filter(state=EventState.RECEIVED).count()
    lost = max(acked - stored.count(), 0) + unprocessed
    latencies = [r[0] * 1000 for r in ok]
    optouts = stored.filter(kind="unsubscribe", state=EventState.PROCESSED)
    confirmed = []
    unconfirmed = 0
    for event in optouts.annotate(done=Max("suppressions__confirmed_at")):
        rows = list(Suppression.objects.filter(event=event).values_list("status", flat=True))
        if len(rows) == 2 and set(rows) == {SuppressionStatus.DONE}:
            confirmed.append((event.done - event.received_at).total_seconds())
        else:
            unconfirmed += 1
    late = [r[3] for r in sender.results]
    print()
    print(
        f"requests sent {len(sender.results):,} in {elapsed:.1f} s "
        f"({sum(r[2] for r in sender.results) / elapsed:,.0f} events/s achieved); "
        f"non-2xx {len(sender.results) - len(ok)}; sender late p95 "
        f"{_percentile(late, 0.95) * 1000:.0f} ms"
    )
    print(
        f"receive latency ms: p50 {_percentile(latencies, 0.5):.1f}, "
        f"p95 {_percentile(latencies, 0.95):.1f}, p99 {_percentile(latencies, 0.99):.1f}"
    )
    print(
        f"events acknowledged {acked:,}, stored {stored.count():,}, unprocessed {unprocessed}; "
        f"drained {drained:.1f} s after the last request"
    )
    print(
        f"opt-outs {optouts.count():,}: confirmed by both audiences {len(confirmed):,}, "
        f"not {unconfirmed}; received -> confirmed p50 {_percentile(confirmed, 0.5):.2f} s, "
        f"p95 {_percentile(confirmed, 0.95):.2f} s, max {max(confirmed, default=0):.2f} s"
    )
    print(f"emulator violations: {len(violations)}")
    print(f"webhook_p95_ms={_percentile(latencies, 0.95):.1f}")
    print(f"suppression_p95_s={_percentile(confirmed, 0.95):.2f}")
    print(f"events_lost={lost}")


if __name__ == "__main__":
    main()
