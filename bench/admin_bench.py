"""Admin render time: the server time of every admin page a journey opens (issue 13).

    DATABASE_URL=sqlite:////tmp/admin_bench/demo.sqlite3 .venv/bin/python bench/admin_bench.py
    source /tmp/benv.sh && .venv/bin/python bench/admin_bench.py      # PostgreSQL, 1M companies

Uses whatever ``DATABASE_URL`` points at, migrated and seeded (``manage.py migrate`` then
``manage.py seed_demo --companies 10000`` for the demo). The target is the slowest page's median
<= 300 ms on the 10,000-company demo and <= 1 s on 1,000,000 companies (chosen from the
number of companies: more than 100,000 means 1 s).

It creates what the pages show, all named "bench admin" and removed at the end: a connection to
the HubSpot emulator (tests/fakes/hubspot.py, in this process); a sync of the companies of one
country with six mappings, scheduled hourly (on its row only: no beat entry starts it); one
finished run of it, delivered by the engine itself (run_execute and batch_execute in this
process; the Celery broker is in memory), with a few records the emulator rejects (dead
letters); and three users: an Integration Admin, a Marketing Manager granted the sync (what its
creator gets) and view on the connection, and an Auditor (the only role that reads the audit
logs). The access-log rows the record searches write stay: the audit chains are append-only.

Server time is the Django test client in this process (middleware, views, queries, templates;
no network, no browser): wall time of each GET, after one warm-up request per page, whose query
count, query time and slowest query the table shows (``--sql`` prints the slowest queries).
Every page is fetched ``--repeat`` times (default 5), the rounds interleaved; each response must
be 200. The anchor is Django's own password-change page (session, user, the navigation): each
role's floor of an admin page here. The last lines are ``admin_render_max_ms=`` (the slowest
page's median) and ``admin_render_pages=``.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
os.environ.setdefault("MKT_ENCRYPTION_KEYS", base64.urlsafe_b64encode(os.urandom(32)).decode())
# A fixed bench-only key, so the audit anchors of a reused bench database keep verifying.
os.environ.setdefault("MKT_AUDIT_KEYS", "bench-only-audit-key-not-for-production-0123456789")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("MKT_HTTP_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# The bench delivers its run's batches itself: no task may reach a worker of the real broker.
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ["DJANGO_SETTINGS_MODULE"] = "mktintegration.settings"

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import F  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from guardian.shortcuts import assign_perm  # noqa: E402

from exports.backbone.models import Company  # noqa: E402
from integrations.engine.runs import batch_execute, batch_poll, run_execute  # noqa: E402
from integrations.models import (  # noqa: E402
    Connection,
    DeadLetter,
    FieldMapping,
    LedgerEntry,
    Sync,
    SyncBatch,
    SyncRun,
)
from integrations.models.runs import BatchStatus  # noqa: E402
from integrations.services import sync_delete  # noqa: E402
from mktintegration import roles  # noqa: E402
from mktintegration.grants import creator_grant  # noqa: E402
from mktintegration.models import User  # noqa: E402
from tests.fakes.hubspot import FakeHubSpot  # noqa: E402

NAME = "bench admin"
HOST = "127.0.0.1"
BIG = 100_000  # more companies than this: the 1 s target
MAPPINGS = [
    ("name", "name"),
    ("domain", "domain"),
    ("industry", "industry"),
    ("employees", "numberofemployees"),
    ("country", "country"),
    ("city", "city"),
]
ADMIN, MANAGER, AUDITOR = "admin", "manager", "auditor"
USERS = {
    ADMIN: roles.INTEGRATION_ADMIN,
    MANAGER: roles.MARKETING_MANAGER,
    AUDITOR: roles.AUDITOR,
}
ANCHOR = "password change (anchor)"
UNCACHED = "sync editor, field list uncached"


@dataclass
class Bench:
    server: FakeHubSpot
    sync: Sync
    run: SyncRun
    users: dict[str, User]
    history_external_id: str
    test_key: str


@dataclass
class Page:
    label: str
    url: str
    role: str
    follow: bool = False
    before: Callable[[], None] | None = None  # run before each request, outside its time
    seconds: list[float] = field(default_factory=list)
    queries: int = 0
    query_ms: float = 0.0  # the warm-up's queries, together
    slowest_query_ms: float = 0.0
    slowest_sql: str = ""


def users_remove() -> None:
    User.objects.filter(username__startswith=f"{NAME.replace(' ', '-')}-").delete()


def users_create(sync: Sync) -> dict[str, User]:
    users = {}
    for key, role in USERS.items():
        user = User.objects.create(username=f"{NAME.replace(' ', '-')}-{key}", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        users[key] = user
    # What a manager holds on a sync they created, and the connection granted to pick it.
    creator_grant(obj=sync, user=users[MANAGER])
    assign_perm("integrations.view_connection", users[MANAGER], sync.connection)
    return users


def bench_remove() -> None:
    for old in Sync.objects.filter(name=NAME):
        sync_delete(sync=old)
    Connection.objects.filter(name=NAME).delete()
    users_remove()


def deliver(run: SyncRun) -> SyncRun:
    """What the worker does, in this process: plan, then every batch until none is left."""
    run_execute(run_id=run.pk)
    deadline = time.monotonic() + 1800
    while True:
        batch = (
            SyncBatch.objects.filter(run=run, status__in=(BatchStatus.QUEUED, BatchStatus.WAITING))
            .order_by(F("not_before").asc(nulls_first=True), "pk")
            .first()
        )
        if batch is None:
            break
        if time.monotonic() > deadline:
            raise TimeoutError("the bench run did not finish in 30 minutes")
        if batch.not_before is not None:
            time.sleep(max((batch.not_before - timezone.now()).total_seconds(), 0))
        if batch.status == BatchStatus.WAITING:
            batch_poll(batch_id=batch.pk)
        else:
            batch_execute(batch_id=batch.pk)
    run.refresh_from_db()
    return run


def bench_create(server: FakeHubSpot, *, country: str, rejected: int) -> Bench:
    companies = Company.objects.filter(country=country).order_by("id")
    records = companies.count()
    if records < rejected + 1:
        sys.exit(f"only {records} companies in {country}: seed_demo first or pick --country")
    conn = Connection(
        name=NAME,
        vendor="hubspot",
        auth_kind="private_app_token",
        base_url=server.url,
        rate_limit_requests=1_000_000,
        rate_limit_seconds=1,
    )
    conn.set_credentials({"token": server.credential})
    conn.save()
    sync = Sync.objects.create(
        name=NAME,
        connection=conn,
        dataset="clients",
        filters={"country": country},
        destination_object="companies",
        match_source_field="external_id",
        match_destination_field="external_id",
        # Scheduled, so the dashboard's latency sample reads its ledger, as it reads a real
        # installation's. On the row only: no beat entry, so nothing starts a run of it.
        every_minutes=60,
    )
    for position, (source, target) in enumerate(MAPPINGS):
        FieldMapping.objects.create(
            sync=sync, source_field=source, destination_field=target, position=position
        )
    # A few records HubSpot refuses, so the run has dead letters and failure reasons.
    poisoned = list(companies[:rejected])
    for company in poisoned:
        server.reject_values("companies", "name", company.name, "Name is not allowed")
    run = SyncRun.objects.create(sync=sync, trigger="manual", config_version=sync.config_version)
    started = time.monotonic()
    run = deliver(run)
    print(
        f"  bench run: {run.status}, {run.planned:,} planned, {run.created:,} created, "
        f"{run.dead_lettered} dead letters, {run.batches_total} batches "
        f"in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    if not DeadLetter.objects.filter(sync=sync).exists():
        sys.exit("the bench run left no dead letters: the emulator accepted every record")
    synced = LedgerEntry.objects.filter(sync=sync, status="synced").order_by("record_key").first()
    if synced is None:
        sys.exit(f"the bench run synced nothing ({run.status}: {run.error})")
    return Bench(
        server=server,
        sync=sync,
        run=run,
        users=users_create(sync),
        history_external_id=poisoned[0].external_id,
        test_key=synced.record_key,
    )


def pages(bench: Bench) -> list[Page]:
    sync, run = bench.sync, bench.run
    history = (
        reverse("admin:integrations_sync_record_history")
        + "?"
        + urlencode({"q": bench.history_external_id, "by": "external_id"})
    )
    test_record = (
        reverse("admin:integrations_sync_test_record", args=[sync.pk])
        + "?"
        + (urlencode({"q": bench.test_key, "by": "key"}))
    )
    journey = [  # (label, url): what the admin and the manager open
        ("/ (landing, redirect followed)", "/"),
        ("admin index", reverse("admin:index")),
        ("dashboard", reverse("admin:operations_dashboard_changelist")),
        ("sync changelist", reverse("admin:integrations_sync_changelist")),
        ("sync editor (change page)", reverse("admin:integrations_sync_change", args=[sync.pk])),
        ("test on one record", test_record),
        ("sync run changelist", reverse("admin:integrations_syncrun_changelist")),
        ("run page", reverse("admin:integrations_syncrun_change", args=[run.pk])),
        ("record history search", history),
        ("dead letter changelist", reverse("admin:integrations_deadletter_changelist")),
        ("connection changelist", reverse("admin:integrations_connection_changelist")),
        (
            "connection page",
            reverse("admin:integrations_connection_change", args=[sync.connection_id]),
        ),
        ("export schedule changelist", reverse("admin:exports_exportschedule_changelist")),
    ]
    audit = [  # what the auditor opens (no other role may)
        ("change history changelist", reverse("admin:auditlog_logentry_changelist")),
        ("access log changelist", reverse("admin:audit_accesslog_changelist")),
        ("outbound log changelist", reverse("admin:audit_outboundlog_changelist")),
    ]
    anchor = reverse("admin:password_change")
    result = [Page(ANCHOR, anchor, role) for role in (ADMIN, MANAGER, AUDITOR)]
    for role in (ADMIN, MANAGER):
        result += [Page(label, url, role, follow=url == "/") for label, url in journey]
    # The editor's field list is cached per connection for 15 minutes (keyed by the
    # connection's updated_at): once more with it asked of HubSpot on every request.
    editor = reverse("admin:integrations_sync_change", args=[sync.pk])

    def field_list_expire() -> None:
        Connection.objects.filter(pk=sync.connection_id).update(updated_at=timezone.now())

    result.append(Page(UNCACHED, editor, ADMIN, before=field_list_expire))
    result += [Page(label, url, AUDITOR) for label, url in audit]
    return result


def fetch(client: Client, page: Page) -> float:
    if page.before is not None:
        page.before()
    started = time.perf_counter()
    response = client.get(page.url, follow=page.follow)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(
            f"{page.label} as {page.role}: HTTP {response.status_code} for {page.url}\n"
            f"{response.content[:2000].decode(errors='replace')}"
        )
    return seconds


def measure(bench: Bench, repeat: int) -> list[Page]:
    clients = {}
    for role, user in bench.users.items():
        client = Client(HTTP_HOST=HOST)
        client.force_login(user)
        clients[role] = client
    todo = pages(bench)
    for page in todo:  # the warm-up request of each page, with its queries counted
        with CaptureQueriesContext(connection) as captured:
            fetch(clients[page.role], page)
        page.queries = len(captured.captured_queries)
        page.query_ms = sum(float(q["time"]) for q in captured.captured_queries) * 1000
        if captured.captured_queries:
            slowest = max(captured.captured_queries, key=lambda q: float(q["time"]))
            page.slowest_query_ms = float(slowest["time"]) * 1000
            page.slowest_sql = slowest["sql"]
    for _ in range(repeat):
        for page in todo:
            asked = len(bench.server.calls("/crm/v3/properties/"))
            page.seconds.append(fetch(clients[page.role], page))
            if page.label == UNCACHED and len(bench.server.calls("/crm/v3/properties/")) == asked:
                raise SystemExit("the sync editor did not ask the emulator for the field list")
    return todo


def report(measured: list[Page], *, companies: int, repeat: int, show_sql: bool) -> None:
    target_ms = 1000 if companies > BIG else 300
    # Each role's own floor: the admin's navigation lists what the role may see.
    anchors = {p.role: statistics.median(p.seconds) * 1000 for p in measured if p.label == ANCHOR}
    print(
        f"\nAdmin render time on {connection.vendor} ({companies:,} companies), {repeat} "
        f"round(s) after a warm-up, ms; queries and their time are the warm-up's"
    )
    print(
        f"{'page':<34}{'as':<9}{'median':>7}{'min-max':>11}{'max':>6}{'x anchor':>9}"
        f"{'queries':>8}{'db ms':>7}{'slowest q':>10}{'target':>9}"
    )
    for page in measured:
        values = [s * 1000 for s in page.seconds]
        median = statistics.median(values)
        is_anchor = page.label == ANCHOR
        target = "-" if is_anchor else f"<= {target_ms}"
        over = " OVER" if median > target_ms and not is_anchor else ""
        print(
            f"{page.label:<34}{page.role:<9}{median:>7.0f}"
            f"{f'{min(values):.0f}-{max(values):.0f}':>11}{max(values):>6.0f}"
            f"{median / anchors[page.role]:>9.1f}{page.queries:>8}{page.query_ms:>7.0f}"
            f"{page.slowest_query_ms:>10.1f}{target:>9}{over}"
        )
    timed = [p for p in measured if p.label != ANCHOR]
    if show_sql:
        print("\nthe slowest queries of the warm-ups:")
        for page in sorted(timed, key=lambda p: -p.slowest_query_ms)[:8]:
            sql = " ".join(page.slowest_sql.split())
            print(f"  {page.label} ({page.role}), {page.slowest_query_ms:.1f} ms: {sql[:800]}")
    slowest = max(timed, key=lambda p: statistics.median(p.seconds))
    slowest_ms = statistics.median(slowest.seconds) * 1000
    floors = ", ".join(f"{role} {ms:.0f} ms" for role, ms in anchors.items())
    print(f"anchor: {ANCHOR} (Django's own page), median per role: {floors}")
    print(f"slowest page: {slowest.label} as {slowest.role}")
    print(f"admin_render_max_ms={slowest_ms:.0f}")
    print(f"admin_render_pages={len(timed)}")
    print(f"admin_render_target_ms={target_ms}")
    over_target = sum(statistics.median(p.seconds) * 1000 > target_ms for p in timed)
    print(f"admin_render_over_target={over_target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds after the warm-up")
    parser.add_argument(
        "--country", default="IE", help="the bench sync's filter: 1/20 of companies"
    )
    parser.add_argument("--rejected", type=int, default=5, help="records the emulator refuses")
    parser.add_argument("--sql", action="store_true", help="print the slowest queries")
    args = parser.parse_args()
    if not 1 <= args.repeat <= 100 or not 1 <= args.rejected <= 100:
        parser.error("--repeat and --rejected are 1 to 100")
    companies = Company.objects.count()
    if not companies:
        sys.exit("no companies: run manage.py seed_demo --companies 10000 first")
    print(f"Admin benchmark on {connection.vendor}, {companies:,} companies", flush=True)
    bench_remove()  # what an interrupted earlier run left
    try:
        with FakeHubSpot() as server:
            bench = bench_create(server, country=args.country, rejected=args.rejected)
            measured = measure(bench, args.repeat)
    finally:
        bench_remove()
    report(measured, companies=companies, repeat=args.repeat, show_sql=args.sql)


if __name__ == "__main__":
    main()
