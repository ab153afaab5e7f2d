"""Liveness and readiness probes.

``/healthz`` answers while the process can serve a request. ``/readyz`` also checks that the
databases and the Celery broker answer, and names what failed (503) when one does not.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection


def _check_database(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_broker() -> None:
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for key in ("data_folder_in", "control_folder"):
            folder = Path(options[key])
            if not folder.is_dir():
                raise OSError(f"broker folder {folder} is missing")
            probe = folder / ".readyz"
            probe.write_bytes(b"")
            probe.unlink()
        return
    with Connection(
        settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=3
    ) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
        client = getattr(connection.default_channel, "client", None)
        if client is not None and hasattr(client, "ping"):
            client.ping()


def _run(check, *args) -> dict:
    started = time.monotonic()
    try:
        check(*args)
    except Exception as exc:  # a probe reports every failure instead of raising
        # Only the exception's class and text: never the URL (it may carry a password).
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    checks = {"database": _run(_check_database, "default")}
    if settings.BACKBONE_DB_ALIAS != "default":
        checks["backbone_database"] = _run(_check_database, settings.BACKBONE_DB_ALIAS)
    checks["broker"] = _run(_check_broker)
    failed = sorted(name for name, result in checks.items() if not result["ok"])
    body = {"status": "failing" if failed else "ok", "failed": failed, "checks": checks}
    return JsonResponse(body, status=503 if failed else 200)
