"""Export throughput against PostgreSQL's own COPY, measured in the same run.

    DATABASE_URL=postgres://... .venv/bin/python bench/export_bench.py [--rows 1000000]

Needs the backbone seeded (``manage.py seed_demo --companies 1000000``; ``--seed`` here does
it). Serves the app with gunicorn (one sync worker), fetches the real endpoints with curl (a
separate client process), and times ``psql \\copy (the same query) to stdout csv`` as the
anchor. Reports rows/s, the ratio to COPY and the serving worker's peak RSS; then, on 100k
rows, django-import-export and DRF's ModelSerializer for comparison. On SQLite it reports the
endpoint's rows/s (target: 60k rows/s). The last line is ``csv_ratio_vs_copy=<x>``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
from exports.datasets import CLIENTS  # noqa: E402
from exports.query import ExportQuery, csv_select  # noqa: E402
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


def psql_copy_seconds(query: ExportQuery) -> float:
    connection = connections[backbone_alias()]
    sql, params = csv_select(query, "postgresql")
    with connection.cursor() as cursor:
        literal = cursor.cursor.mogrify(sql, params)
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
        f"\\copy ({literal}) to '/dev/null' csv header",
    ]
    started = time.monotonic()
    subprocess.run(command, check=True, env=env)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="the second, smaller export")
    parser.add_argument("--seed", action="store_true", help="seed_demo the rows first if missing")
    parser.add_argument("--skip-comparisons", action="store_true")
    args = parser.parse_args()

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
    table = []
    ratio = None
    try:
        fields = ",".join(CLIENTS.default_fields)
        for rows in (args.small, args.rows):
            query = ExportQuery(dataset=CLIENTS, fields=list(CLIENTS.default_fields), limit=rows)
            anchor = psql_copy_seconds(query) if vendor == "postgresql" else None
            for fmt in ("csv", "ndjson"):
                server.reset_peak_rss()
                seconds, size, _ = fetch(
                    server,
                    token,
                    f"/marketing/export/clients?format={fmt}&limit={rows}&fields={fields}",
                )
                rate = rows / seconds
                r = (anchor / seconds) if anchor else None
                table.append(
                    (f"endpoint {fmt}", rows, seconds, rate, r, size, server.peak_rss_mb())
                )
                if fmt == "csv" and rows == args.rows:
                    ratio = r
            if anchor:
                table.append(("psql \\copy (anchor)", rows, anchor, rows / anchor, 1.0, 0, 0))
        anchor_small = None
        if vendor == "postgresql":
            small = ExportQuery(
                dataset=CLIENTS, fields=list(CLIENTS.default_fields), limit=args.small
            )
            anchor_small = psql_copy_seconds(small)
        if not args.skip_comparisons:
            for name, seconds in comparisons(args.small):
                r = anchor_small / seconds if anchor_small else None
                table.append((name, args.small, seconds, args.small / seconds, r, 0, 0))
    finally:
        server.stop()

    print(f"\nExport benchmark on {vendor} ({Company.objects.count():,} companies)")
    print(
        f"{'what':<28}{'rows':>10}{'seconds':>9}{'rows/s':>12}{'vs COPY':>9}{'MB out':>9}"
        f"{'peak RSS MB':>13}"
    )
    for name, rows, seconds, rate, r, size, rss in table:
        print(
            f"{name:<28}{rows:>10,}{seconds:>9.2f}{rate:>12,.0f}"
            f"{(f'{r:.3f}' if r else '-'):>9}{(f'{size / 1e6:.1f}' if size else '-'):>9}"
            f"{(f'{rss:.0f}' if rss else '-'):>13}"
        )
    if vendor == "postgresql":
        print(f"csv_ratio_vs_copy={ratio:.3f}")
    else:
        csv_rate = next(
            rate
            for name, rows, _, rate, *_ in table
            if name == "endpoint csv" and rows == args.rows
        )
        print(f"sqlite_csv_rows_per_s={csv_rate:.0f}")


if __name__ == "__main__":
    main()
