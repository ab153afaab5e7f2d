"""Sync engine benchmark: planning cost, delivery under a vendor rate limit, engine ceiling.

    DATABASE_URL=postgres://... [REDIS_URL=... CELERY_BROKER_URL=redis://...] \\
        .venv/bin/python bench/sync_bench.py

Needs the backbone seeded with 1,000,000 companies (``manage.py seed_demo --companies 1000000``).

(a) plans a companies sync over the whole table (first plan, empty ledger), marks every record
    delivered, changes 1% of the companies, and plans again: the second plan must take
    <= 2 s and <= 0.1x the first.
(b) delivers records through a real Celery worker to the HubSpot emulator limited to HubSpot's
    100 requests per 10 s: throughput >= 0.9x that rate, <= 1% of requests answered 429,
    no record lost.
(c) the same with an unlimited emulator: the engine's own ceiling (>= 5,000 records/s).

``--vendor salesforce`` measures instead ``--records`` contacts (default 1,000,000) through
Salesforce Bulk API 2.0 against the emulator, end to end from plan to ledger commit by a real
worker, and the worker's memory (bench/salesforce_bench.py; the backbone needs no seeding).
The last lines are ``key=value`` figures.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
os.environ.setdefault("MKT_ENCRYPTION_KEYS", base64.urlsafe_b64encode(os.urandom(32)).decode())
# A fixed bench-only key, so the audit anchors of a reused bench database keep verifying.
os.environ.setdefault("MKT_AUDIT_KEYS", "bench-only-audit-key-not-for-production-0123456789")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ.setdefault("MKT_HTTP_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["DJANGO_SETTINGS_MODULE"] = "mktintegration.settings"

import django  # noqa: E402

django.setup()

from django.db import connection, connections  # noqa: E402
from django.utils import timezone  # noqa: E402

from exports.backbone.models import Company  # noqa: E402
from exports.backbone.router import backbone_alias  # noqa: E402
from integrations.engine.planner import Planner, SyncContext  # noqa: E402
from integrations.models import (  # noqa: E402
    Connection,
    FieldMapping,
    Sync,
    SyncRun,
)
from integrations.services import sync_delete, sync_run_start  # noqa: E402
from tests.fakes.hubspot import FakeHubSpot  # noqa: E402

MAPPINGS = [
    ("name", "name"),
    ("domain", "domain"),
    ("industry", "industry"),
    ("employees", "numberofemployees"),
    ("country", "country"),
    ("city", "city"),
]


def make_sync(name: str, server: FakeHubSpot, *, filters: dict, rate: tuple[int, float] | None):
    old = Sync.objects.filter(name=name).first()
    if old is not None:
        sync_delete(sync=old)
        # Clear the previous measurement's dead rows now, not by autovacuum during this one.
        with connection.cursor() as cursor:
            for table in (
                "integrations_ledgerentry",
                "integrations_syncbatch",
                "audit_outboundlog",
            ):
                cursor.execute(f"VACUUM ANALYZE {table}")
    Connection.objects.filter(name=name).delete()
    conn = Connection(
        name=name,
        vendor="hubspot",
        auth_kind="private_app_token",
        base_url=server.url,
        rate_limit_requests=rate[0] if rate else 1_000_000,
        rate_limit_seconds=rate[1] if rate else 1,
    )
    conn.set_credentials({"token": server.credential})
    conn.save()
    sync = Sync.objects.create(
        name=name,
        connection=conn,
        dataset="clients",
        filters=filters,
        destination_object="companies",
        match_source_field="external_id",
        match_destination_field="external_id",
    )
    for position, (source, target) in enumerate(MAPPINGS):
        FieldMapping.objects.create(
            sync=sync, source_field=source, destination_field=target, position=position
        )
    return sync


def plan_once(sync: Sync) -> tuple[float, int]:
    sync.refresh_from_db()
    run = SyncRun.objects.create(sync=sync, trigger="manual", config_version=sync.config_version)
    started = time.monotonic()
    result = Planner(run).plan()
    seconds = time.monotonic() - started
    Sync.objects.filter(pk=sync.pk).update(
        source_watermark=result.watermark, planned_config_version=sync.config_version
    )
    SyncRun.objects.filter(pk=run.pk).update(status="succeeded")
    return seconds, result.planned


def mark_all_delivered(sync: Sync) -> None:
    """What delivery would leave in the ledger: every record confirmed with its hash."""
    ctx = SyncContext.load(sync)
    hashes = []  # read first: the connection cannot query while a COPY is open
    for rows in ctx.reader.changed(None):
        for row in rows:
            d = ctx.decide(row, None, None)
            hashes.append((d.key, d.payload_hash))
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE bench_hashes (record_key text, payload_hash text)")
        with cursor.cursor.copy("COPY bench_hashes FROM STDIN") as copy:
            for row in hashes:
                copy.write_row(row)
        cursor.execute(
            "UPDATE integrations_ledgerentry l SET status = 'synced', "
            "payload_hash = h.payload_hash FROM bench_hashes h "
            "WHERE l.sync_id = %s AND l.record_key = h.record_key",
            [sync.pk],
        )
        cursor.execute("DROP TABLE bench_hashes")
    # A real first delivery takes a while; autovacuum tidies the ledger after it. Do now what
    # it would have done, so the incremental plan is not measured on a million dead rows.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE integrations_ledgerentry")


def change_one_percent() -> int:
    with connections[backbone_alias()].cursor() as cursor:
        cursor.execute(
            "UPDATE backbone_company SET name = name || ' (renamed)', updated_at = %s "
            "WHERE id %% 100 = 0",
            [timezone.now()],
        )
        return cursor.rowcount


def deliver(sync: Sync, server: FakeHubSpot, worker) -> dict:
    sync.refresh_from_db()
    run = sync_run_start(sync=sync, trigger="manual", full=True)
    started = time.monotonic()
    while True:
        run.refresh_from_db()
        if run.status not in ("queued", "planning", "delivering"):
            break
        if time.monotonic() - started > 1800:
            raise TimeoutError("delivery did not finish in 30 minutes")
        time.sleep(0.5)
    seconds = time.monotonic() - started
    expected = set(
        Company.objects.filter(
            **{k: v for k, v in [("country", sync.filters["country"])]}
        ).values_list("external_id", flat=True)
    )
    stored = {o["properties"]["external_id"] for o in server.objects("companies")}
    requests = len(server.calls("batch/upsert"))
    return {
        "run": run,
        "seconds": seconds,
        "delivering_seconds": (run.finished_at - run.started_at).total_seconds(),
        "records": run.created + run.updated,
        "requests": requests,
        "rate_limited": server.rate_limited_count,
        "lost": len(expected - stored),
        "duplicates": sum(1 for o in server.objects("companies") if o.get("created_count", 1) > 1),
    }


def measure_plans() -> tuple[float, float]:
    with FakeHubSpot() as server:
        sync = make_sync("bench plan", server, filters={}, rate=None)
        first, first_rows = plan_once(sync)
        print(f"  first plan: {first_rows:,} records in {first:.1f} s", flush=True)
        mark_all_delivered(sync)
        changed = change_one_percent()
        second, second_rows = plan_once(sync)
        print(f"  after {changed:,} changes: {second_rows:,} planned in {second:.2f} s", flush=True)
    return first, second


def measure_delivery(label: str, country: str, limit, concurrency: int) -> dict:
    from tests.worker import WorkerProcess

    with FakeHubSpot() as server:
        # Unlimited means unlimited in the rate headers too (the emulator otherwise reports
        # HubSpot's nominal 190 per 10 s, and the connector honours a spent window).
        server.set_rate_limit(*(limit or (1_000_000_000, 10.0)))
        sync = make_sync(f"bench {label}", server, filters={"country": country}, rate=limit)
        worker = WorkerProcess(concurrency=concurrency, name=f"bench-{label}").start()
        try:
            result = deliver(sync, server, worker)
        finally:
            worker.stop()
    print(
        f"  {label}: {result['records']:,} records, {result['requests']:,} requests in "
        f"{result['delivering_seconds']:.1f} s, 429s {result['rate_limited']}, "
        f"lost {result['lost']}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limited-country", default="IE", help="rows for (b): 1/20 of companies")
    parser.add_argument("--ceiling-country", default="US", help="rows for (c): 4/20 of companies")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--parts", default="abc", help="which measurements: a, b and/or c")
    parser.add_argument("--vendor", choices=("hubspot", "salesforce"), default="hubspot")
    parser.add_argument(
        "--records", type=int, default=1_000_000, help="salesforce: contacts to send"
    )
    parser.add_argument(
        "--job-records",
        type=int,
        default=10_000,
        help="salesforce: MKT_SALESFORCE_BULK_JOB_RECORDS",
    )
    parser.add_argument(
        "--poll-seconds", type=float, default=1.0, help="salesforce: MKT_SYNC_JOB_POLL_SECONDS"
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("run this on PostgreSQL (DATABASE_URL)")
    figures: list[tuple[str, str, str, str, str]] = []  # label, value, target, key, key value
    if args.vendor == "salesforce":
        from bench import salesforce_bench

        print(
            f"Salesforce Bulk API 2.0 benchmark: {args.records:,} contacts, jobs of "
            f"{args.job_records:,}, polled every {args.poll_seconds:g} s, "
            f"{args.concurrency} worker processes",
            flush=True,
        )
        figures = salesforce_bench.measure(
            records=args.records,
            concurrency=args.concurrency,
            job_records=args.job_records,
            poll_seconds=args.poll_seconds,
        )
        report(figures, [key for *_, key, _ in figures])
        return
    print(f"Sync benchmark on {Company.objects.count():,} companies", flush=True)
    if "a" in args.parts:
        first, second = measure_plans()
        figures += [
            ("first plan, seconds", f"{first:.1f}", "<= 5", "plan_first_s", f"{first:.2f}"),
            (
                "incremental plan, seconds",
                f"{second:.2f}",
                "<= 1",
                "plan_incremental_s",
                f"{second:.3f}",
            ),
            (
                "incremental / first",
                f"{second / first:.3f}",
                "<= 0.1",
                "plan_incremental_ratio",
                f"{second / first:.4f}",
            ),
        ]
    lost = 0
    if "b" in args.parts:
        limited = measure_delivery("limited", args.limited_country, (100, 10.0), args.concurrency)
        ratio = limited["requests"] / limited["delivering_seconds"] / (100 / 10.0)
        share = limited["rate_limited"] / max(limited["requests"], 1)
        lost += limited["lost"]
        figures += [
            ("delivery / allowed rate", f"{ratio:.3f}", ">= 0.9", "delivery_ratio", f"{ratio:.3f}"),
            (
                "share of requests answered 429",
                f"{share:.4f}",
                "<= 0.01",
                "rate_limited_share",
                f"{share:.4f}",
            ),
        ]
    if "c" in args.parts:
        ceiling = measure_delivery("ceiling", args.ceiling_country, None, args.concurrency)
        rate = ceiling["records"] / ceiling["delivering_seconds"]
        lost += ceiling["lost"]
        figures.append(
            (
                "engine records/s (unlimited)",
                f"{rate:,.0f}",
                ">= 5,000",
                "engine_records_per_s",
                f"{rate:.0f}",
            )
        )
    if "b" in args.parts or "c" in args.parts:
        figures.append(("records lost", str(lost), "0", "records_lost", str(lost)))
    order = [
        "plan_first_s",
        "plan_incremental_s",
        "plan_incremental_ratio",
        "delivery_ratio",
        "rate_limited_share",
        "records_lost",
        "engine_records_per_s",
    ]
    report(figures, order)


def report(figures: list[tuple[str, str, str, str, str]], order: list[str]) -> None:
    """The figures as a table, then as ``key=value`` lines in ``order``."""
    print()
    print(f"{'measure':<36}{'value':>14}{'target':>14}")
    for label, value, target, _, _ in figures:
        print(f"{label:<36}{value:>14}{target:>14}")
    keyed = {key: value for _, _, _, key, value in figures if key}
    for key in order:
        if key in keyed:
            print(f"{key}={keyed[key]}")


if __name__ == "__main__":
    main()
