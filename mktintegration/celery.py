"""The Celery app. Tasks take ids and JSON kwargs; every run is a row in our own tables."""

import logging.config
import os

from celery import Celery
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
)

from mktintegration import logcontext, tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mktintegration.settings")

app = Celery("mktintegration")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Log lines of a task carry the request and trace ids of whoever queued it
# (mktintegration/logcontext.py); with MKT_LOG_FORMAT=json the worker logs through Django's
# LOGGING (Celery's own lines too), one JSON object per line.
before_task_publish.connect(logcontext.task_published, weak=False)
task_prerun.connect(logcontext.task_started, weak=False)
task_postrun.connect(logcontext.task_ended, weak=False)


# Traces (mktintegration/tracing.py; off unless OTEL_TRACES_EXPORTER is set): set up in each
# pool process, after the fork (a span processor's export thread does not survive one); a
# worker without child processes (solo, threads) sets up in its own.
@worker_process_init.connect(weak=False)
def _traces_in_pool_process(**_):
    tracing.configure()


@worker_init.connect(weak=False)
def _traces_in_worker(sender=None, **_):
    pool = getattr(getattr(sender, "pool_cls", None), "__module__", "") or ""
    if not pool.endswith("prefork"):
        tracing.configure()


if os.environ.get("MKT_LOG_FORMAT") == "json":

    @setup_logging.connect(weak=False)
    def _logging(**_):
        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)


# Built-in periodic tasks. django-celery-beat's DatabaseScheduler copies these into its
# tables when beat starts, so they appear (and can be paused) in the admin.
app.conf.beat_schedule = {
    "worker-heartbeat": {"task": "mktintegration.heartbeat", "schedule": 30.0},
    "refresh-company-metrics": {"task": "backbone.refresh_metrics", "schedule": 3600.0},
    "reap-stale-export-runs": {"task": "exports.reap_stale_runs", "schedule": 60.0},
    # Connection uptime checks (each due every MKT_CONNECTION_CHECK_MINUTES) and state-change
    # alerts, including scheduled runs that never started (docs/operations.md).
    "check-connections": {"task": "operations.check_connections", "schedule": 60.0},
    "evaluate-alerts": {"task": "operations.evaluate_alerts", "schedule": 120.0},
    "reap-stale-sync-runs": {"task": "integrations.reap", "schedule": 60.0},
    # Feedback from vendors: unprocessed or failed events, opt-outs due, campaign reports to
    # read, retention (docs/webhooks.md); events out: retries and retention (docs/events-out.md).
    "webhooks-maintain": {"task": "webhooks.maintain", "schedule": 30.0},
    "events-out-maintain": {"task": "events_out.maintain", "schedule": 15.0},
    # Records a daily quota deferred go when its next window opens (docs/syncs.md).
    "resume-quota-deferred-syncs": {"task": "integrations.quota_resume", "schedule": 60.0},
    # Real-time syncs: the backbone's changes to runs within seconds (docs/realtime.md). A tick
    # that finds nothing to do costs two small queries; one not taken within 5 s is dropped (a
    # later one does its work). Their latency rows are kept 30 days.
    "realtime-dispatch": {
        "task": "integrations.realtime_dispatch",
        "schedule": 1.0,
        "options": {"expires": 5.0},
    },
    "realtime-lag-prune": {"task": "integrations.realtime_lag_prune", "schedule": 3600.0},
}
