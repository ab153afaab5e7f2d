"""/metrics: Prometheus text read from the database, protected by token or network."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from audit.services import outbound_log_write
from integrations.models import Connection, DeadLetter, LedgerEntry, RunStatus, SyncRun
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync, start_and_drive


def _samples(text: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.mark.django_db
def test_metrics_are_read_from_the_database(client, hubspot, settings):
    settings.MKT_METRICS_CACHE_SECONDS = 0
    sync = make_sync(make_connection("hubspot", hubspot))
    CompanyFactory.create_batch(3)
    start_and_drive(sync)
    SyncRun.objects.create(sync=sync, trigger="api", status=RunStatus.QUEUED)
    entry = LedgerEntry.objects.create(sync=sync, record_key="x", status="dead")
    DeadLetter.objects.create(sync=sync, entry=entry, record_key="x", error="no")
    outbound_log_write(vendor="hubspot", method="POST", host="h", path="/p", status=429)

    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.content.decode())
    vendor = (("vendor", "hubspot"),)
    assert samples[("mkt_sync_records_total", (("bucket", "created"), ("vendor", "hubspot")))] == 3
    assert samples[("mkt_sync_runs_total", (("status", "succeeded"), ("vendor", "hubspot")))] == 1
    assert samples[("mkt_sync_run_duration_seconds_count", vendor)] == 1
    assert (
        samples[("mkt_sync_run_duration_seconds_bucket", (("le", "+Inf"), ("vendor", "hubspot")))]
        == 1
    )
    assert samples[("mkt_vendor_api_calls_total", (("status", "200"), ("vendor", "hubspot")))] >= 1
    assert samples[("mkt_vendor_rate_limited_total", vendor)] == 1
    assert samples[("mkt_queue_depth", (("kind", "sync_runs"),))] == 1
    assert samples[("mkt_dead_letters", vendor)] == 1


@pytest.mark.django_db
def test_export_rows_and_bytes_come_from_the_access_log(client, settings):
    from audit.services import access_log_write

    settings.MKT_METRICS_CACHE_SECONDS = 0
    for rows in (10, 5):
        access_log_write(
            channel="api", actor="t", dataset="clients", rows=rows, bytes=rows * 100, outcome="ok"
        )
    access_log_write(channel="api", actor="t", dataset="clients", rows=7, outcome="denied")
    # Reads that are not exports: a sync's plan, an admin page of contacts.
    access_log_write(channel="sync", actor="system", dataset="clients", rows=1000, outcome="ok")
    access_log_write(channel="admin", actor="t", dataset="backbone:contact", rows=50, outcome="ok")

    samples = _samples(client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode())

    labels = (("channel", "api"), ("dataset", "clients"))
    assert samples[("mkt_export_rows_total", labels)] == 15
    assert samples[("mkt_export_bytes_total", labels)] == 1500
    assert {key[1] for key in samples if key[0] == "mkt_export_rows_total"} == {labels}


@pytest.mark.django_db
def test_metrics_refuse_other_networks_and_relayed_requests(client, settings):
    settings.MKT_METRICS_TOKEN = ""

    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    relayed = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert relayed.status_code == 403
    settings.MKT_METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


@pytest.mark.django_db
def test_metrics_answer_the_bearer_token_from_anywhere(client, settings):
    settings.MKT_METRICS_TOKEN = "scrape-secret"
    settings.MKT_METRICS_ALLOWED_NETWORKS = []

    ok = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-secret"
    )
    wrong = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer nope")
    missing = client.get("/metrics", REMOTE_ADDR="127.0.0.1")

    assert (ok.status_code, wrong.status_code, missing.status_code) == (200, 403, 403)


def test_metrics_are_exempt_from_the_https_redirect(settings):
    import re

    assert any(re.match(pattern, "metrics") for pattern in settings.SECURE_REDIRECT_EXEMPT)


@pytest.mark.django_db
def test_metrics_count_refused_webhooks_received_events_and_the_outbox(client, settings):
    from integrations.webhooks.models import WebhookRefusal

    settings.MKT_HUBSPOT_WEBHOOK_SECRET = "app-secret"
    connection = Connection.objects.create(
        name="HubSpot", vendor="hubspot", auth_kind="private_app_token"
    )
    client.post(
        f"/marketing/integrations/webhooks/hubspot/{connection.pk}",
        b"[]",
        content_type="application/json",
        headers={"X-HubSpot-Signature-v3": "forged", "X-HubSpot-Request-Timestamp": "1"},
    )

    text = client.get("/metrics").content.decode()

    assert WebhookRefusal.objects.get().reason == "stale_timestamp"
    assert 'mkt_webhook_refused_total{reason="stale_timestamp",vendor="hubspot"} 1.0' in text
    assert 'mkt_events_out{state="pending"} 0.0' in text
    assert "mkt_events_out_lag_seconds 0.0" in text
