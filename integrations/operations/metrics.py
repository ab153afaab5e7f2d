"""``/metrics`` in the Prometheus text format, read from the database at scrape time.

Counts live in our own tables (runs, batches, dead letters, the outbound and access logs), so
one scrape of any web process gives the figures of every worker on every machine; nothing is
counted in process memory. Scrapes within MKT_METRICS_CACHE_SECONDS share one reading (the
cache, Redis in production). The metric names are listed in docs/operations.md#metrics.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

# The classic text format every Prometheus version reads.
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from audit.models import AccessLog, Channel, OutboundLog
from audit.models import Outcome as AccessOutcome
from exports.models import ExportRun
from exports.models import RunStatus as ExportRunStatus
from integrations.models import (
    Connection,
    ConnectionCheck,
    DeadLetter,
    DeadLetterStatus,
    RunStatus,
    SyncBatch,
    SyncRun,
)
from integrations.models.runs import ACTIVE_RUN_STATUSES, BUCKETS, BatchStatus

log = logging.getLogger(__name__)
CACHE_KEY = "mkt:metrics:text"
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
FINISHED = (
    RunStatus.SUCCEEDED,
    RunStatus.PARTIAL,
    RunStatus.DEFERRED,
    RunStatus.FAILED,
    RunStatus.PAUSED,
)


def _histogram(name: str, doc: str, rows: dict[tuple, dict]) -> HistogramMetricFamily:
    """rows: label values -> {"le_<b>": count, "count": n, "sum": seconds}."""
    family = HistogramMetricFamily(
        name, doc, labels=["vendor"] if name.startswith("mkt_sync") else ["dataset"]
    )
    for labels, row in sorted(rows.items()):
        buckets = [(str(float(b)), row[f"le_{b}"] or 0) for b in DURATION_BUCKETS]
        buckets.append(("+Inf", row["count"]))
        family.add_metric(list(labels), buckets, sum_value=float(row["sum"] or 0))
    return family


class DatabaseCollector:
    """Everything read with a handful of grouped queries."""

    def collect(self):
        yield from self._sync_records()
        yield from self._sync_runs()
        yield from self._sync_durations()
        yield from self._vendor_calls()
        yield from self._queues()
        yield from self._dead_letters()
        yield from self._exports()
        yield from self._connections()
        yield from self._feedback()

    def _sync_records(self):
        family = CounterMetricFamily(
            "mkt_sync_records",
            "Records of sync runs by bucket and vendor.",
            labels=["vendor", "bucket"],
        )
        sums = (
            SyncRun.objects.exclude(status=RunStatus.PREVIEW)
            .values("sync__connection__vendor")
            .annotate(**{f"n_{b}": Sum(b) for b in BUCKETS})
        )
        for row in sums:
            for bucket in BUCKETS:
                family.add_metric(
                    [row["sync__connection__vendor"], bucket], row[f"n_{bucket}"] or 0
                )
        yield family
        calls = CounterMetricFamily(
            "mkt_sync_rate_limited_responses",
            "Vendor 429 answers met by sync runs (each waited, costing no attempt).",
            labels=["vendor"],
        )
        for row in SyncRun.objects.values("sync__connection__vendor").annotate(
            n=Sum("rate_limited")
        ):
            calls.add_metric([row["sync__connection__vendor"]], row["n"] or 0)
        yield calls

    def _sync_runs(self):
        family = CounterMetricFamily(
            "mkt_sync_runs", "Sync runs by vendor and status.", labels=["vendor", "status"]
        )
        for row in (
            SyncRun.objects.exclude(status=RunStatus.PREVIEW)
            .values("sync__connection__vendor", "status")
            .annotate(n=Count("id"))
        ):
            family.add_metric([row["sync__connection__vendor"], row["status"]], row["n"])
        yield family

    def _sync_durations(self):
        duration = ExpressionWrapper(
            F("finished_at") - F("started_at"), output_field=DurationField()
        )
        aggregates = {
            f"le_{b}": Count("id", filter=Q(duration__lte=timedelta(seconds=b)))
            for b in DURATION_BUCKETS
        }
        rows = (
            SyncRun.objects.filter(
                status__in=FINISHED, started_at__isnull=False, finished_at__isnull=False
            )
            .annotate(duration=duration)
            .values("sync__connection__vendor")
            .annotate(count=Count("id"), sum=Sum("duration"), **aggregates)
        )
        found = {}
        for row in rows:
            total = row["sum"]
            row["sum"] = total.total_seconds() if total is not None else 0
            found[(row["sync__connection__vendor"],)] = row
        yield _histogram("mkt_sync_run_duration_seconds", "Duration of finished sync runs.", found)
        export_aggregates = {
            f"le_{b}": Count("id", filter=Q(duration_ms__lte=b * 1000)) for b in DURATION_BUCKETS
        }
        rows = (
            ExportRun.objects.filter(status__in=[ExportRunStatus.SUCCEEDED, ExportRunStatus.FAILED])
            .values("schedule__dataset")
            .annotate(count=Count("id"), sum=Sum("duration_ms"), **export_aggregates)
        )
        found = {}
        for row in rows:
            row["sum"] = (row["sum"] or 0) / 1000
            found[(row["schedule__dataset"],)] = row
        yield _histogram(
            "mkt_export_run_duration_seconds", "Duration of finished scheduled export runs.", found
        )

    def _vendor_calls(self):
        family = CounterMetricFamily(
            "mkt_vendor_api_calls",
            "Requests to vendor APIs by vendor and HTTP status ('error': no answer).",
            labels=["vendor", "status"],
        )
        limited = CounterMetricFamily(
            "mkt_vendor_rate_limited", "Vendor answers with HTTP 429.", labels=["vendor"]
        )
        counted: dict[str, int] = {}
        for row in OutboundLog.objects.values("vendor", "status").annotate(n=Count("id")):
            status = str(row["status"]) if row["status"] is not None else "error"
            family.add_metric([row["vendor"], status], row["n"])
            if row["status"] == 429:
                counted[row["vendor"]] = counted.get(row["vendor"], 0) + row["n"]
        for vendor, n in sorted(counted.items()):
            limited.add_metric([vendor], n)
        yield family
        yield limited

    def _queues(self):
        depth = GaugeMetricFamily(
            "mkt_queue_depth", "Work waiting for a worker, by kind.", labels=["kind"]
        )
        now = timezone.now()
        depth.add_metric(["sync_runs"], SyncRun.objects.filter(status=RunStatus.QUEUED).count())
        depth.add_metric(
            ["sync_batches"], SyncBatch.objects.filter(status=BatchStatus.QUEUED).count()
        )
        depth.add_metric(
            ["export_runs"], ExportRun.objects.filter(status=ExportRunStatus.QUEUED).count()
        )
        yield depth
        waiting = GaugeMetricFamily(
            "mkt_sync_batches_waiting",
            "Queued batches held back until a time (rate-limit or retry back-off).",
        )
        waiting.add_metric(
            [], SyncBatch.objects.filter(status=BatchStatus.QUEUED, not_before__gt=now).count()
        )
        yield waiting
        active = GaugeMetricFamily(
            "mkt_sync_runs_active", "Sync runs by active status.", labels=["status"]
        )
        counts = dict(
            SyncRun.objects.filter(status__in=ACTIVE_RUN_STATUSES)
            .values("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        for status in ACTIVE_RUN_STATUSES:
            active.add_metric([status], counts.get(status, 0))
        yield active

    def _dead_letters(self):
        family = GaugeMetricFamily(
            "mkt_dead_letters", "Open dead letters by vendor.", labels=["vendor"]
        )
        for row in (
            DeadLetter.objects.filter(status=DeadLetterStatus.OPEN)
            .values("sync__connection__vendor")
            .annotate(n=Count("id"))
        ):
            family.add_metric([row["sync__connection__vendor"]], row["n"])
        yield family

    def _exports(self):
        rows = CounterMetricFamily(
            "mkt_export_rows",
            "Rows read by exports (API, files, downloads).",
            labels=["channel", "dataset"],
        )
        size = CounterMetricFamily(
            "mkt_export_bytes",
            "Bytes of exports (API, files, downloads).",
            labels=["channel", "dataset"],
        )
        # Exports only: the access log also holds what sync plans and previews read and the
        # admin pages that show personal data (channel admin, no file format).
        exports = AccessLog.objects.filter(
            outcome=AccessOutcome.OK, channel__in=[Channel.API, Channel.FILE, Channel.ADMIN]
        ).exclude(channel=Channel.ADMIN, format="")
        for row in exports.values("channel", "dataset").annotate(
            rows=Sum("rows"), size=Sum("bytes")
        ):
            rows.add_metric([row["channel"], row["dataset"]], row["rows"] or 0)
            size.add_metric([row["channel"], row["dataset"]], row["size"] or 0)
        yield rows
        yield size
        runs = CounterMetricFamily(
            "mkt_export_runs", "Scheduled export runs by status.", labels=["status"]
        )
        for row in ExportRun.objects.values("status").annotate(n=Count("id")):
            runs.add_metric([row["status"]], row["n"])
        yield runs

    def _connections(self):
        up = GaugeMetricFamily(
            "mkt_connection_up",
            "1 when the connection's latest check succeeded.",
            labels=["connection", "vendor"],
        )
        uptime = GaugeMetricFamily(
            "mkt_connection_uptime_ratio",
            "Share of the connection's checks that succeeded in the last 24 h.",
            labels=["connection", "vendor"],
        )
        since = timezone.now() - timedelta(hours=24)
        ratios = {
            row["connection_id"]: row["ok"] / row["total"]
            for row in ConnectionCheck.objects.filter(checked_at__gte=since)
            .values("connection_id")
            .annotate(total=Count("id"), ok=Count("id", filter=Q(ok=True)))
        }
        for connection in Connection.objects.only("pk", "name", "vendor", "status"):
            labels = [connection.name, connection.vendor]
            if connection.status != "untested":
                up.add_metric(labels, 1 if connection.status == "healthy" else 0)
            if connection.pk in ratios:
                uptime.add_metric(labels, ratios[connection.pk])
        yield up
        yield uptime

    def _feedback(self):
        """Feedback from vendors (docs/webhooks.md) and the events out (docs/events-out.md)."""
        from integrations.events_out.models import OutboxEvent, OutboxState
        from integrations.webhooks.models import Suppression, WebhookEvent, WebhookRefusal

        events = CounterMetricFamily(
            "mkt_webhook_events",
            "Events vendors reported (webhooks and polls) and kept, by vendor, kind and state.",
            labels=["vendor", "kind", "state"],
        )
        for row in WebhookEvent.objects.values("vendor", "kind", "state").annotate(n=Count("id")):
            events.add_metric([row["vendor"], row["kind"], row["state"]], row["n"])
        yield events
        refused = CounterMetricFamily(
            "mkt_webhook_refused",
            "Webhook requests refused (nothing stored), by vendor and reason.",
            labels=["vendor", "reason"],
        )
        for vendor, reason, count in WebhookRefusal.objects.values_list(
            "vendor", "reason", "count"
        ):
            refused.add_metric([vendor, reason], count)
        yield refused
        suppressions = CounterMetricFamily(
            "mkt_suppressions",
            "Opt-outs sent to destinations after a consent withdrawal, by vendor and status.",
            labels=["vendor", "status"],
        )
        for row in Suppression.objects.values("connection__vendor", "status").annotate(
            n=Count("id")
        ):
            suppressions.add_metric([row["connection__vendor"], row["status"]], row["n"])
        yield suppressions
        outbox = GaugeMetricFamily(
            "mkt_events_out",
            "Outbox events by state (delivered ones until pruned).",
            labels=["state"],
        )
        counts = dict(
            OutboxEvent.objects.values("state").annotate(n=Count("id")).values_list("state", "n")
        )
        for state in OutboxState.values:
            outbox.add_metric([state], counts.get(state, 0))
        yield outbox
        oldest = (
            OutboxEvent.objects.filter(state__in=[OutboxState.PENDING, OutboxState.SENDING])
            .order_by("pk")
            .values_list("created_at", flat=True)
            .first()
        )
        lag = GaugeMetricFamily(
            "mkt_events_out_lag_seconds", "Age of the oldest event not delivered yet (0: none)."
        )
        lag.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0.0)
        yield lag


def metrics_text() -> bytes:
    cached = cache.get(CACHE_KEY)
    if cached is not None:
        return cached
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    text = generate_latest(registry)
    cache.set(CACHE_KEY, text, settings.MKT_METRICS_CACHE_SECONDS)
    return text


def scrape_allowed(request) -> bool:
    """A matching bearer token, or a direct request from an allowed network."""
    token = settings.MKT_METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    keyword, _, presented = header.partition(" ")
    if token and keyword.lower() == "bearer":
        return hmac.compare_digest(presented.strip().encode(), token.encode())
    # A request relayed by a proxy carries the proxy's address: only direct ones count.
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for network in settings.MKT_METRICS_ALLOWED_NETWORKS:
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            log.warning("MKT_METRICS_ALLOWED_NETWORKS: %r is not a network", network)
    return False


@never_cache
@require_GET
def metrics_view(request):
    if not scrape_allowed(request):
        return HttpResponseForbidden(
            "metrics need the bearer token (MKT_METRICS_TOKEN) or an allowed network\n",
            content_type="text/plain",
        )
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
