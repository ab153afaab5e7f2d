"""Export throughput against the anchors a DBA would run instead, measured in the same run.

    DATABASE_URL=postgres://... .venv/bin/python bench/export_bench.py [--rows 1000000]
    .venv/bin/python bench/export_bench.py --rows 1000000          # SQLite (the default)

Needs the backbone seeded (``manage.py seed_demo --companies 1000000``; ``--seed`` here does
it). Serves the app with gunicorn (one sync worker) and fetches the real endpoints with curl
(a separate client process). Anchors, each of the same rows (the dataset's default fields,
its join, ``ORDER BY id``, the limit):

- PostgreSQL, *plain copy*: ``psql \\copy (SELECT <the columns> ...) to '/dev/null' csv``
  with the export's own value formatting (ISO 8601 UTC times, two-decimal amounts,
  true/false) and nothing else: what the export returns minus the cell-safety rules. The
  target ratios are against it. Also shown: the export's own generated SELECT under the same
  ``\\copy``, and ``select *`` of the company table alone.
- SQLite, *CLI*: ``sqlite3 -csv`` of the same plain SELECT on the same database file.

Every measurement runs ``--repeat`` times (default 3), the rounds interleaved; the table
shows the median and the spread (min-max). Peak RSS is the serving worker's, per size. The
last lines are ``csv_ratio_vs_plain_copy=`` and ``ndjson_ratio_vs_plain_copy=`` (PostgreSQL)
or ``sqlite_csv_ratio_vs_cli=`` (SQLite), medians. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANCHOR_PG = "psql \\copy plain (anchor)"
OWN_SELECT = "psql \\copy own SELECT"
ANCHOR_SQLITE = "sqlite3 -csv (anchor)"
sys.path.insert(0, str(ROOT))


def _bench_env() -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = dict(os.environ)
    env.setdefault("DEBUG", "0")
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
    env.setdefault("MKT_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    # A fixed bench-only key, so the audit anchors of a reused bench database keep verifying.
    env.setdefault("MKT_AUDIT_KEYS", "bench-only-audit-key-not-for-production-0123456789")
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    env.setdefault("SECURE_SSL_REDIRECT", "0")
    env.setdefault("MKT_EXPORT_RATE", "100000/min")
    env.setdefault("LOG_LEVEL", "WARNING")
    env["DJANGO_SETTINGS_MODULE"] = "mktintegration.settings"
    return env


os.environ.update(_bench_env())

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.db import connections  # noqa: E402

from exports.backbone.models import Company  # noqa: E402
from exports.backbone.router import backbone_alias  # noqa: E402
from exports.datasets import CLIENTS, FieldType  # noqa: E402
from exports.query import Dialect, ExportQuery, _base_sql, csv_select  # noqa: E402
from mktintegration import roles  # noqa: E402
from mktintegration.models import User  # noqa: E402
from mktintegration.tokens import token_create  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "mktintegration.wsgi",
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "900",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=_bench_env(),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        self.worker_pid = self._worker_pid()

    def _worker_pid(self) -> int:
        for _ in range(50):
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids = children.read_text().split() if children.exists() else []
            if pids:
                return int(pids[0])
            time.sleep(0.1)
        raise RuntimeError("gunicorn worker did not start")

    def reset_peak_rss(self) -> None:
        Path(f"/proc/{self.worker_pid}/clear_refs").write_text("5")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.worker_pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def fetch(server: Gunicorn, token: str, path: str) -> tuple[float, int, bytes]:
    """curl the endpoint; returns seconds, bytes and the first 200 bytes."""
    out = Path(tempfile.gettempdir()) / f"mkt-export-bench-{os.getpid()}.out"
    started = time.monotonic()
    subprocess.run(
        [
            "curl",
            "-sSf",
            "-o",
            str(out),
            "-H",
            f"Authorization: Bearer {token}",
            f"http://127.0.0.1:{server.port}{path}",
        ],
        check=True,
    )
    seconds = time.monotonic() - started
    size = out.stat().st_size
    with out.open("rb") as fh:
        head = fh.read(200)
    out.unlink()
    return seconds, size, head


def plain_select(query: ExportQuery, vendor: str) -> str:
    """The anchor's SELECT: the export's columns, join, order and limit, its value formatting
    for numbers, times and booleans, text cells as stored (no cell-safety rules)."""
    dialect = Dialect(vendor)
    fields = [query.dataset.field(name) for name in query.fields]
    columns = ", ".join(
        f"{f.sql if f.type == FieldType.TEXT else dialect.csv_cell(f)} AS {f.name}" for f in fields
    )
    sql, params = _base_sql(query, dialect, columns)
    assert not params, "the anchors are measured on unfiltered queries"
    return sql


def psql_copy_seconds(select_sql: str) -> float:
    connection = connections[backbone_alias()]
    settings = connection.settings_dict
    env = dict(os.environ, PGPASSWORD=settings.get("PASSWORD") or "")
    command = [
        "psql",
        "-X",
        "-q",
        "-h",
        settings.get("HOST") or "localhost",
        "-p",
        str(settings.get("PORT") or 5432),
        "-U",
        settings.get("USER") or "postgres",
        "-d",
        settings["NAME"],
        "-c",
        f"\\copy ({select_sql}) to '/dev/null' csv header",
    ]
    started = time.monotonic()
    subprocess.run(command, check=True, env=env)
    return time.monotonic() - started


def own_select(query: ExportQuery) -> str:
    sql, params = csv_select(query, "postgresql")
    with connections[backbone_alias()].cursor() as cursor:
        return cursor.cursor.mogrify(sql, params)


def sqlite_cli_seconds(select_sql: str) -> float:
    database = connections[backbone_alias()].settings_dict["NAME"]
    # The statement is written for the driver, which halves a doubled percent sign.
    command = ["sqlite3", "-csv", "-header", str(database), select_sql.replace("%%", "%")]
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def token_for_bench() -> str:
    user, _ = User.objects.get_or_create(
        username="bench-client", defaults={"is_service_account": True}
    )
    user.groups.add(Group.objects.get(name=roles.INTEGRATION_ADMIN))
    _, raw = token_create(
        user=user,
        name="export bench",
        scopes=["export:clients", "export:metrics"],
        expires_days=1,
    )
    return raw


def comparisons(rows: int) -> list[tuple[str, float]]:
    """django-import-export and DRF ModelSerializer on the same rows, in this process."""
    results = []
    queryset = Company.objects.order_by("id")[:rows]
    try:
        from import_export import resources

        class CompanyResource(resources.ModelResource):
            class Meta:
                model = Company

        started = time.monotonic()
        CompanyResource().export(queryset=queryset).csv  # noqa: B018 (forces the render)
        results.append(("django-import-export CSV", time.monotonic() - started))
    except ImportError:
        print("  (django-import-export not installed: pip install -e '.[bench]')")
    from rest_framework import serializers
    from rest_framework.renderers import JSONRenderer

    class CompanySerializer(serializers.ModelSerializer):
        class Meta:
            model = Company
            fields = "__all__"

    started = time.monotonic()
    JSONRenderer().render(CompanySerializer(queryset, many=True).data)
    results.append(("DRF ModelSerializer JSON", time.monotonic() - started))
    return results


def spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="the second, smaller export")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every measurement")
    parser.add_argument("--seed", action="store_true", help="seed_demo the rows first if missing")
    parser.add_argument("--skip-comparisons", action="store_true")
    args = parser.parse_args()
    if args.repeat < 1 or args.rows < 1 or args.small < 1:
        parser.error("--rows, --small and --repeat are at least 1")

    vendor = connections[backbone_alias()].vendor
    have = Company.objects.count()
    if have < args.rows:
        if not args.seed:
            sys.exit(
                f"only {have:,} companies; run seed_demo --companies {args.rows} or use --seed"
            )
        from django.core.management import call_command

        call_command("seed_demo", companies=str(args.rows - have))
    token = token_for_bench()
    server = Gunicorn()
    fields = ",".join(CLIENTS.default_fields)
    # (what, rows) -> seconds of each round; (endpoint, rows) -> peak RSS of each round
    seconds: dict[tuple[str, int], list[float]] = {}
    sizes: dict[tuple[str, int], int] = {}
    rss: dict[tuple[str, int], list[float]] = {}
    try:
        for fmt in ("csv", "ndjson"):  # warm up: the worker's first request loads the app
            fetch(server, token, f"/marketing/export/clients?format={fmt}&limit=1000")
        for _ in range(args.repeat):
            for rows in (args.small, args.rows):
                query = ExportQuery(
                    dataset=CLIENTS, fields=list(CLIENTS.default_fields), limit=rows
                )
                if vendor == "postgresql":
                    table = f"SELECT * FROM backbone_company ORDER BY id LIMIT {rows}"
                    anchors = [
                        (ANCHOR_PG, psql_copy_seconds, plain_select(query, vendor)),
                        (OWN_SELECT, psql_copy_seconds, own_select(query)),
                        ("psql \\copy select * (table)", psql_copy_seconds, table),
                    ]
                else:
                    anchors = [(ANCHOR_SQLITE, sqlite_cli_seconds, plain_select(query, vendor))]
                for name, measure, sql in anchors:
                    seconds.setdefault((name, rows), []).append(measure(sql))
                for fmt in ("csv", "ndjson"):
                    server.reset_peak_rss()
                    took, size, _ = fetch(
                        server,
                        token,
                        f"/marketing/export/clients?format={fmt}&limit={rows}&fields={fields}",
                    )
                    seconds.setdefault((f"endpoint {fmt}", rows), []).append(took)
                    sizes[(f"endpoint {fmt}", rows)] = size
                    rss.setdefault((f"endpoint {fmt}", rows), []).append(server.peak_rss_mb())
        comparison_rows = []
        if not args.skip_comparisons:
            comparison_rows = comparisons(args.small)
    finally:
        server.stop()

    anchor_name = ANCHOR_PG if vendor == "postgresql" else ANCHOR_SQLITE
    print(
        f"\nExport benchmark on {vendor} ({Company.objects.count():,} companies), "
        f"{args.repeat} round(s): median (min-max)"
    )
    print(
        f"{'what':<32}{'rows':>10}{'seconds':>20}{'rows/s':>11}{'vs anchor':>11}"
        f"{'MB out':>8}{'peak RSS MB':>13}"
    )
    ratios: dict[tuple[str, int], float] = {}
    for (name, rows), values in seconds.items():
        median, low, high = spread(values)
        anchor = statistics.median(seconds[(anchor_name, rows)])
        ratios[(name, rows)] = anchor / median
        size = sizes.get((name, rows))
        peak = max(rss[(name, rows)]) if (name, rows) in rss else None
        print(
            f"{name:<32}{rows:>10,}{f'{median:.2f} ({low:.2f}-{high:.2f})':>20}"
            f"{rows / median:>11,.0f}{anchor / median:>11.3f}"
            f"{(f'{size / 1e6:.1f}' if size else '-'):>8}{(f'{peak:.0f}' if peak else '-'):>13}"
        )
    for name, took in comparison_rows:
        anchor = statistics.median(seconds[(anchor_name, args.small)])
        print(
            f"{name:<32}{args.small:>10,}{f'{took:.2f}':>20}{args.small / took:>11,.0f}"
            f"{anchor / took:>11.3f}{'-':>8}{'-':>13}"
        )
    print(f"anchor: {anchor_name}")
    if vendor == "postgresql":
        own = statistics.median(seconds[(OWN_SELECT, args.rows)])
        csv_own = own / statistics.median(seconds[("endpoint csv", args.rows)])
        print(f"csv_ratio_vs_own_select={csv_own:.3f}")
        print(f"csv_ratio_vs_plain_copy={ratios[('endpoint csv', args.rows)]:.3f}")
        print(f"ndjson_ratio_vs_plain_copy={ratios[('endpoint ndjson', args.rows)]:.3f}")
    else:
        print(f"sqlite_csv_ratio_vs_cli={ratios[('endpoint csv', args.rows)]:.3f}")
    for fmt in ("csv", "ndjson"):
        small, large = (max(rss[(f"endpoint {fmt}", n)]) for n in (args.small, args.rows))
        print(f"{fmt}_peak_rss_mb_small={small:.0f} {fmt}_peak_rss_mb_large={large:.0f}")


if __name__ == "__main__":
    main()
