"""Consent adapter benchmark: what the consent gate costs a plan, local table against the HTTP
consent service (the emulator of tests/fakes/consent.py on loopback).

    DATABASE_URL=postgres://... .venv/bin/python bench/consent_bench.py [--contacts 10000]

Seeds the backbone when it holds fewer contacts than asked (``seed_demo``; about three
contacts per company), then plans a contacts sync with the e-mail marketing consent over all
of them (first plan, empty ledger) three ways: the local table (consent read inside the
source query), the HTTP service with a cold cache, and the HTTP service again within the cache
TTL. The service answers what the local table says, so the buckets match. Nothing is sent.
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
os.environ.setdefault("MKT_AUDIT_KEYS", "bench-only-audit-key-not-for-production-0123456789")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ.setdefault("MKT_HTTP_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["DJANGO_SETTINGS_MODULE"] = "mktintegration.settings"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from exports.backbone.models import Contact  # noqa: E402
from exports.backbone.providers.consent_local import LocalConsent  # noqa: E402
from integrations.engine.planner import Planner  # noqa: E402
from integrations.models import Connection, FieldMapping, Sync, SyncRun  # noqa: E402
from integrations.services import sync_delete  # noqa: E402
from tests.fakes.consent import FakeConsentService  # noqa: E402

NAME = "consent bench"


def fresh_sync() -> Sync:
    old = Sync.objects.filter(name=NAME).first()
    if old is not None:
        sync_delete(sync=old)
    Connection.objects.filter(name=NAME).delete()
    connection = Connection(
        name=NAME, vendor="hubspot", auth_kind="private_app_token", base_url="http://127.0.0.1:9"
    )
    connection.set_credentials({"token": "unused"})
    connection.save()
    sync = Sync.objects.create(
        name=NAME,
        connection=connection,
        dataset="contacts",
        destination_object="contacts",
        match_source_field="email",
        match_destination_field="email",
        consent_purpose="email_marketing",
    )
    for position, (source, target) in enumerate(
        [("first_name", "firstname"), ("last_name", "lastname"), ("title", "jobtitle")]
    ):
        FieldMapping.objects.create(
            sync=sync, source_field=source, destination_field=target, position=position
        )
    return sync


def plan(sync: Sync, *, write: bool) -> tuple[float, dict]:
    """One first plan (``write``: ledger rows written, as a run does; else a preview)."""
    sync.refresh_from_db()
    run = SyncRun.objects.create(sync=sync, trigger="manual", config_version=sync.config_version)
    started = time.monotonic()
    result = Planner(run, dry_run=not write).plan()
    seconds = time.monotonic() - started
    SyncRun.objects.filter(pk=run.pk).update(status="succeeded")
    return seconds, dict(result.counts) | {"send": len(result.send_keys)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=10_000)
    args = parser.parse_args()
    if Contact.objects.count() < args.contacts:
        call_command("seed_demo", companies=args.contacts // 3 + 100, reset=True, seed=7)
    ids = list(Contact.objects.values_list("id", flat=True))  # the sync plans them all
    total = len(ids)

    settings.MKT_CONSENT_URL = ""
    plan(fresh_sync(), write=True)  # warm-up: caches, the database's buffers
    local_s, local_counts = plan(fresh_sync(), write=True)
    print(f"local table: {total} contacts planned in {local_s:.2f} s {local_counts}")

    local = LocalConsent().lookup(subjects=[str(i) for i in ids], purpose="email_marketing")
    with FakeConsentService() as service:
        for subject, decision in local.items():
            if decision.status:
                service.set_consent(subject, "email_marketing", decision.status)
        settings.MKT_CONSENT_URL, settings.MKT_CONSENT_TOKEN = service.url, service.token
        http_s, http_counts = plan(fresh_sync(), write=True)
        lookups = len(service.lookups())
        print(f"HTTP service: planned in {http_s:.2f} s with {lookups} look-ups {http_counts}")
        cached_s, _ = plan(fresh_sync(), write=True)
        cached_lookups = len(service.lookups()) - lookups
        print(f"HTTP, within the cache TTL: {cached_s:.2f} s, {cached_lookups} look-ups")
        assert http_counts == local_counts, "the service and the table disagree"
    fresh_sync().delete()
    print(f"contacts={total}")
    print(f"plan_local_s={local_s:.2f}")
    print(f"plan_http_s={http_s:.2f}")
    print(f"plan_http_cached_s={cached_s:.2f}")
    print(f"http_lookups={lookups}")
    print(f"http_over_local={http_s / local_s:.2f}")


if __name__ == "__main__":
    main()
