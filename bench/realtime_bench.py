"""Real-time benchmark: backbone changes at a steady rate to a real-time HubSpot sync, on the
production stack (PostgreSQL, Redis, Celery workers and beat), and how long each change took
to reach the HubSpot emulator.

    DATABASE_URL=postgres://.../mkt_realtime_bench REDIS_URL=redis://.../6 \\
        CELERY_BROKER_URL=redis://.../7 CELERY_QUEUE=mkt-realtime \\
        .venv/bin/python bench/realtime_bench.py [--rate 50] [--seconds 300] [--companies 2000]

The database (create it first: ``createdb``) is migrated if it needs to be. The bench seeds
``--companies`` companies in a segment of their own, and syncs them once, through the workers,
to the HubSpot emulator. The emulator allows HubSpot's 100 requests per 10 s, and the
connection's rate budget is set the same. The sync is real-time with an hourly schedule, as
docs/realtime.md advises.

The bench then renames random companies at ``--rate`` changes a second for ``--seconds``. The
load is open-loop: each change is written at its planned time, whatever happened before it.
Each change is a plain ``UPDATE`` of the backbone, so the backbone's trigger announces it.
Workers and beat (whose dispatcher ticks every second) do the rest.

When the last change is written, the bench waits until the emulator holds every company's
last name, and measures:

- ``realtime_p95_s``, ``realtime_p99_s``: over the changes, the time from the write's commit
  to the arrival at the emulator of an upsert carrying that value or a later one of the same
  company. A change overtaken by a later one within the window is coalesced: the later value
  is what HubSpot needs. The targets are p95 <= 5 s and p99 <= 10 s.
- ``events_lost``: changes whose value, or a later one of the same company, never arrived.
  The target is 0.
- ``sent_twice``: values HubSpot accepted more than once. The target is 0.
- ``dashboard_p95_s``: what the product's own measure (``RealtimeLag``, shown on the
  dashboard) says for the same changes.

It is sized for a 2-core machine: 2 Celery processes by default, plus beat. The writer, the
emulator, PostgreSQL and Redis share the same cores, so the figures are upper bounds of what
the product costs. On a shared machine they vary from run to run.
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
os.environ.setdefault("MKT_ENCRYPTION_KEYS", base64.urlsafe_b64encode(os.urandom(32)).decode())
os.environ.setdefault("MKT_AUDIT_KEYS", "bench-only-audit-key-not-for-production-0123456789")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ.setdefault("MKT_HTTP_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["DJANGO_SETTINGS_MODULE"] = "mktintegration.settings"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from exports.backbone.models import Company  # noqa: E402
from exports.backbone.segments import segment_define, segment_members_replace  # noqa: E402
from integrations.models import (  # noqa: E402
    Connection,
    FieldMapping,
    RealtimeLag,
    Sync,
    SyncRun,
    Trigger,
)
from integrations.services import sync_delete, sync_run_start, sync_save  # noqa: E402
from tests.fakes.hubspot import FakeHubSpot  # noqa: E402

HUBSPOT_RATE = (100, 10.0)  # requests per seconds: HubSpot's private-app limit (sync_bench)
UPSERT_PATH = "/crm/v3/objects/companies/batch/upsert"
PREFIX = "rt "  # the names the bench writes: "rt <sequence number>"


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]  # nearest rank


def seed(hubspot: FakeHubSpot, n: int, run_id: str) -> tuple[Sync, dict[int, str]]:
    """``n`` companies in a segment of their own, and a real-time sync of that segment."""
    for old in Sync.objects.filter(name__startswith="bench realtime"):
        sync_delete(sync=old)
    Connection.objects.filter(name__startswith="bench realtime").delete()
    now = timezone.now()
    companies = Company.objects.bulk_create(
        Company(
            external_id=f"RT-{run_id}-{i}",
            name=f"Realtime bench {i}",
            domain=f"rt{i}.example.com",
            country="DE",
            residency_region="eu",
            lifecycle_stage="customer",
            created_at=now,
            updated_at=now,
        )
        for i in range(n)
    )
    key = f"rtbench-{run_id}"
    segment = segment_define(key=key, name=f"Realtime bench {run_id}", subject="company")
    segment_members_replace(segment=segment, subject_ids=[c.pk for c in companies])
    conn = Connection(
        name="bench realtime HubSpot",
        vendor="hubspot",
        auth_kind="private_app_token",
        base_url=hubspot.url,
        rate_limit_requests=HUBSPOT_RATE[0],
        rate_limit_seconds=int(HUBSPOT_RATE[1]),
    )
    conn.set_credentials({"token": hubspot.credential})
    conn.save()
    sync = Sync.objects.create(
        name="bench realtime companies",
        connection=conn,
        dataset="clients",
        filters={"segment": key},
        destination_object="companies",
        match_source_field="external_id",
        match_destination_field="external_id",
    )
    for position, field in enumerate(("name", "domain")):
        FieldMapping.objects.create(
            sync=sync, source_field=field, destination_field=field, position=position
        )
    sync.realtime, sync.every_minutes = True, 60
    sync = sync_save(sync=sync)
    return sync, {c.pk: c.external_id for c in companies}


def _celery(args, log_dir: Path, *command: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="mktintegration.settings")
    name = command[0]
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mktintegration", *command, "-l", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=open(log_dir / f"realtime-{name}.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_stack(args, log_dir: Path) -> list[subprocess.Popen]:
    worker = _celery(
        args,
        log_dir,
        "worker",
        "-c",
        str(args.concurrency),
        "-n",
        f"realtime-bench-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    )
    beat = _celery(
        args,
        log_dir,
        "beat",
        "-S",
        "django_celery_beat.schedulers:DatabaseScheduler",
        "--pidfile=",
    )
    return [worker, beat]


def stop_stack(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_run(run: SyncRun, timeout: float) -> SyncRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in ("succeeded", "failed", "cancelled"):
            return run
        time.sleep(0.5)
    raise TimeoutError(f"run {run.pk} did not finish in {timeout:.0f} s")


class Writer:
    """Open-loop changes: change k is written at start + k / rate."""

    def __init__(self, external_ids: dict[int, str], *, rate: float, seconds: float):
        self.external_ids = external_ids
        self.pks = list(external_ids)
        self.rate = rate
        self.total = int(rate * seconds)
        self.writes: list[tuple[str, int, float]] = []  # external id, sequence, committed at
        self.late: list[float] = []

    def run(self) -> float:
        start = time.monotonic() + 0.5
        for k in range(self.total):
            planned = start + k / self.rate
            wait = planned - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.late.append(max(0.0, time.monotonic() - planned))
            pk = random.choice(self.pks)
            seq = k + 1
            Company.objects.filter(pk=pk).update(name=f"{PREFIX}{seq}", updated_at=timezone.now())
            self.writes.append((self.external_ids[pk], seq, time.time()))
        connection.close()
        return time.monotonic() - start

    def last_names(self) -> dict[str, str]:
        last: dict[str, str] = {}
        for external_id, seq, _ in self.writes:
            last[external_id] = f"{PREFIX}{seq}"
        return last


def drain(hubspot: FakeHubSpot, want: dict[str, str], timeout: float) -> tuple[float, int]:
    """Wait until the emulator holds every company's last name; (seconds, companies behind)."""
    started = time.monotonic()
    behind = len(want)
    while time.monotonic() - started < timeout:
        have = {
            o["properties"].get("external_id"): o["properties"].get("name")
            for o in hubspot.objects("companies")
        }
        behind = sum(1 for ext, name in want.items() if have.get(ext) != name)
        if not behind:
            break
        time.sleep(0.5)
    return time.monotonic() - started, behind


def accepted_values(requests) -> list[tuple[str, int, float]]:
    """(external id, sequence, arrival time) of every bench value HubSpot accepted."""
    found = []
    for request in requests:
        if request.method != "POST" or not request.path.endswith(UPSERT_PATH):
            continue
        if request.status not in (200, 207):
            continue
        accepted = None
        if request.status == 207:  # only the inputs that came back as results
            results = (request.response_body or {}).get("results", [])
            accepted = {r.get("properties", {}).get("external_id") for r in results}
        for item in request.body.get("inputs", []):
            name = item.get("properties", {}).get("name", "")
            if not name.startswith(PREFIX) or (accepted is not None and item["id"] not in accepted):
                continue
            found.append((item["id"], int(name[len(PREFIX) :]), request.timestamp))
    return found


def measure(writer: Writer, arrivals: list[tuple[str, int, float]]) -> dict:
    by_company: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for external_id, seq, at in arrivals:
        by_company[external_id].append((at, seq))
    for values in by_company.values():
        values.sort()
    latencies, lost = [], 0
    for external_id, seq, written in writer.writes:
        covering = next((at for at, got in by_company[external_id] if got >= seq), None)
        if covering is None:
            lost += 1
        else:
            latencies.append(max(covering - written, 0.0))
    twice = sum(1 for n in Counter((e, s) for e, s, _ in arrivals).values() if n > 1)
    return {"latencies": latencies, "lost": lost, "twice": twice}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50, help="changes per second")
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--companies", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=2, help="Celery processes")
    args = parser.parse_args()
    if connection.vendor != "postgresql" or not os.environ.get("CELERY_BROKER_URL", "").startswith(
        "redis"
    ):
        sys.exit("run this on PostgreSQL and Redis (DATABASE_URL, REDIS_URL, CELERY_BROKER_URL)")
    call_command("migrate", interactive=False, verbosity=0)
    log_dir = ROOT / "data" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    run_id = secrets.token_hex(3)
    with FakeHubSpot() as hubspot:
        hubspot.set_rate_limit(*HUBSPOT_RATE)
        sync, external_ids = seed(hubspot, args.companies, run_id)
        processes = start_stack(args, log_dir)
        try:
            print(f"First plan of {args.companies:,} companies through the workers ...", flush=True)
            first = wait_run(sync_run_start(sync=sync, trigger="manual"), timeout=600)
            if (first.status, first.created) != ("succeeded", args.companies):
                sys.exit(
                    f"the first run {first.status} with {first.created} created: {first.error}"
                )
            mark = len(hubspot.requests)  # what the first plan sent is not measured
            limited_before = hubspot.rate_limited_count
            since = timezone.now()
            writer = Writer(external_ids, rate=args.rate, seconds=args.seconds)
            print(
                f"Writing {args.rate:,.0f} changes/s for {args.seconds:.0f} s "
                f"({writer.total:,} changes) ...",
                flush=True,
            )
            thread_result: list[float] = []
            thread = threading.Thread(target=lambda: thread_result.append(writer.run()))
            thread.start()
            thread.join()
            drained, behind = drain(hubspot, writer.last_names(), timeout=120)
        finally:
            stop_stack(processes)
        measured = hubspot.requests[mark:]
        arrivals = accepted_values(measured)
        requests = [r for r in measured if r.path.endswith(UPSERT_PATH)]
        limited = hubspot.rate_limited_count - limited_before
        violations = hubspot.violations
    result = measure(writer, arrivals)
    latencies = result["latencies"]
    runs = SyncRun.objects.filter(sync=sync, queued_at__gte=since)
    realtime_runs = runs.filter(trigger=Trigger.REALTIME)
    lags = list(
        RealtimeLag.objects.filter(sync=sync, confirmed_at__gte=since).values_list(
            "seconds", flat=True
        )
    )
    elapsed = thread_result[0] if thread_result else float("nan")
    print()
    print(
        f"changes written {len(writer.writes):,} in {elapsed:.1f} s "
        f"({len(writer.writes) / elapsed:,.1f}/s achieved); writer late p95 "
        f"{_percentile(writer.late, 0.95) * 1000:.0f} ms"
    )
    print(
        f"runs {runs.count():,} ({realtime_runs.count():,} real-time, "
        f"{runs.filter(status='failed').count()} failed); upsert requests {len(requests):,}, "
        f"answered 429: {limited}; values accepted {len(arrivals):,}"
    )
    print(
        f"change -> HubSpot seconds: p50 {_percentile(latencies, 0.5):.2f}, "
        f"p95 {_percentile(latencies, 0.95):.2f}, p99 {_percentile(latencies, 0.99):.2f}, "
        f"max {max(latencies, default=float('nan')):.2f}"
    )
    print(f"drained {drained:.1f} s after the last change; companies behind at the end: {behind}")
    print(
        f"dashboard (RealtimeLag) over {len(lags):,} records: p95 {_percentile(lags, 0.95):.2f} s"
    )
    print(f"emulator violations: {len(violations)}")
    print(f"realtime_p95_s={_percentile(latencies, 0.95):.2f}")
    print(f"realtime_p99_s={_percentile(latencies, 0.99):.2f}")
    print(f"events_lost={result['lost']}")
    print(f"sent_twice={result['twice']}")
    print(f"dashboard_p95_s={_percentile(lags, 0.95):.2f}")


if __name__ == "__main__":
    main()
