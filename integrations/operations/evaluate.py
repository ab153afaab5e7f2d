"""The periodic evaluation behind state-change alerts (beat: every two minutes).

It computes every object's state with the same rules as the status API and reports changes:
sync or export schedule into failing and back to healthy, a connection's credentials
rejected (and accepted again) or about to expire, a sync's open dead letters crossing the
threshold, scheduled runs that should have started and did not, and a vendor account that has
used MKT_ALERT_QUOTA_SHARE of its daily quota (integrations.operations.quotas).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from exports.models import ExportSchedule
from integrations.models import Connection, ConnectionStatus, GrantState, OAuthGrant, Sync
from integrations.oauth.flows import AuthorizationCode, flow_for
from integrations.operations import alerts
from integrations.operations.alerts import _set_alerting, alert_send, recipients_for, state_observe
from integrations.operations.models import AlertKind
from integrations.operations.quotas import quota_evaluate
from integrations.operations.status import (
    DEGRADED,
    FAILING,
    HEALTHY,
    PAUSED,
    ObjectStatus,
    export_statuses,
    sync_statuses,
)

log = logging.getLogger(__name__)


def evaluate_all(*, now: datetime | None = None) -> dict[str, int]:
    """Observe every object once; returns how many alerts were raised, by kind."""
    now = now or timezone.now()
    raised: dict[str, int] = {}

    def count(alert) -> None:
        if alert is not None:
            raised[alert.kind] = raised.get(alert.kind, 0) + 1

    syncs = {s.pk: s for s in Sync.objects.select_related("connection")}
    for status in sync_statuses(Sync.objects.filter(pk__in=syncs), now=now):
        sync = syncs[status.id]
        count(_health(status, sync=sync, now=now))
        count(
            _schedule(
                status, kind="sync", obj=sync, runnable=sync.enabled and not sync.paused, now=now
            )
        )
        count(_dead_letters(status, sync, now=now))
    schedules = {s.pk: s for s in ExportSchedule.objects.all()}
    for status in export_statuses(ExportSchedule.objects.filter(pk__in=schedules), now=now):
        schedule = schedules[status.id]
        count(_health(status, export_schedule=schedule, now=now))
        count(_schedule(status, kind="export", obj=schedule, runnable=schedule.enabled, now=now))
    for connection in Connection.objects.all():
        count(connection_evaluate(connection, now=now))
        count(_expiry(connection, now=now))
    for alert in quota_evaluate(Connection.objects.all(), now=now):
        count(alert)
    raised["retried"] = alerts.alerts_retry_failed(now=now)
    return raised


def _lines(status: ObjectStatus) -> list[str]:
    lines = [f"Why: {reason}" for reason in status.reasons]
    run = status.last_run
    if run:
        finished = run["finished_at"]
        when = f" at {finished:%Y-%m-%d %H:%M} UTC" if finished else ""
        lines.append(f"Last run: {run['id']} {run['status']}{when}")
    if status.last_success_at:
        lines.append(f"Last success: {status.last_success_at:%Y-%m-%d %H:%M} UTC")
    else:
        lines.append("Last success: never")
    return lines


def _health(status: ObjectStatus, *, now, sync=None, export_schedule=None):
    kind = "sync" if sync is not None else "export"
    obj = sync or export_schedule
    previous, row = state_observe(
        f"{kind}:{obj.pk}:health",
        status.state,
        baseline=HEALTHY,
        detail="; ".join(status.reasons),
        now=now,
    )
    if previous is None:
        return None
    label = "Sync" if sync is not None else "Export schedule"
    if status.state == PAUSED and sync is not None and sync.paused:
        # Deliberate pauses ("paused by <user>") tell nobody; the engine's do.
        if not sync.pause_reason.startswith("paused by"):
            return alerts.sync_paused(sync=sync, reason=sync.pause_reason or "paused")
        return None
    recipients = recipients_for(sync=sync, export_schedule=export_schedule)
    if status.state == FAILING and _set_alerting(row, True):
        return alert_send(
            key=row.key,
            kind=AlertKind.SYNC_FAILING if sync else AlertKind.EXPORT_FAILING,
            subject=f"{label} {obj.name!r} is failing",
            lines=[f"{label} {obj.name!r} went from {previous} to failing.", "", *_lines(status)],
            path=status.admin_path,
            recipients=recipients,
            now=now,
        )
    if status.state in (HEALTHY, DEGRADED) and _set_alerting(row, False):
        return alert_send(
            key=row.key,
            kind=AlertKind.SYNC_RECOVERED if sync else AlertKind.EXPORT_RECOVERED,
            subject=f"{label} {obj.name!r} recovered",
            lines=[
                f"{label} {obj.name!r} is no longer failing: it is {status.state} "
                f"(it was {previous}).",
                "",
                *_lines(status),
            ],
            path=status.admin_path,
            recipients=recipients,
            now=now,
        )
    return None


def _schedule(status: ObjectStatus, *, kind: str, obj, runnable: bool, now):
    has_schedule = bool(obj.cron or obj.every_minutes)
    if not runnable or not has_schedule:
        state = "inactive"
    else:
        state = "missed" if status.schedule_missed_at else "on_time"
    detail = f"{status.schedule_missed_at:%Y-%m-%dT%H:%MZ}" if status.schedule_missed_at else ""
    previous, row = state_observe(
        f"{kind}:{obj.pk}:schedule", state, baseline="inactive", detail=detail, now=now
    )
    if previous is None or state != "missed":
        return None
    label = "Sync" if kind == "sync" else "Export schedule"
    grace = settings.MKT_ALERT_MISSED_GRACE_MINUTES
    return alert_send(
        key=row.key,
        kind=AlertKind.SCHEDULE_MISSED,
        subject=f"{label} {obj.name!r}: a scheduled run did not start",
        lines=[
            f"{label} {obj.name!r} ({status.schedule}) should have started a run at "
            f"{status.schedule_missed_at:%Y-%m-%d %H:%M} UTC; none started within "
            f"{grace} minutes.",
            "",
            "Check that celery beat and a worker are running (the admin's Worker heartbeats "
            "and Periodic tasks pages) and that the schedule's periodic task is enabled.",
            *_lines(status),
        ],
        path=status.admin_path,
        recipients=recipients_for(
            sync=obj if kind == "sync" else None,
            export_schedule=obj if kind == "export" else None,
        ),
        now=now,
    )


def _dead_letters(status: ObjectStatus, sync: Sync, *, now):
    threshold = settings.MKT_ALERT_DEAD_LETTER_THRESHOLD
    state = "above" if status.dead_letters > threshold else "below"
    previous, row = state_observe(
        f"sync:{sync.pk}:dead_letters",
        state,
        baseline="below",
        detail=str(status.dead_letters),
        now=now,
    )
    if previous is None or state != "above":
        return None
    return alert_send(
        key=row.key,
        kind=AlertKind.DEAD_LETTERS,
        subject=f"Sync {sync.name!r}: {status.dead_letters} dead letters",
        lines=[
            f"Sync {sync.name!r} has {status.dead_letters} open dead letters (records the "
            f"destination refused for good); the alert threshold is {threshold}.",
            "",
            "Look at their errors, fix the data or the mapping, then replay them.",
        ],
        path=f"/admin/integrations/deadletter/?sync__id__exact={sync.pk}&status__exact=open",
        recipients=recipients_for(sync=sync),
        now=now,
    )


def connection_evaluate(connection: Connection, *, now: datetime | None = None):
    """Report a connection whose credentials were rejected, or accepted again."""
    failed = connection.status == ConnectionStatus.AUTH_FAILED
    previous, row = state_observe(
        f"connection:{connection.pk}:auth",
        "auth_failed" if failed else "ok",
        baseline="ok",
        detail=connection.last_error if failed else "",
        now=now,
    )
    if previous is None:
        return None
    path = f"/admin/integrations/connection/{connection.pk}/change/"
    if failed and _set_alerting(row, True):
        return alert_send(
            key=row.key,
            kind=AlertKind.AUTH_FAILING,
            subject=f"Connection {connection.name!r}: credentials rejected",
            lines=[
                f"{connection.vendor} rejected the credentials of connection "
                f"{connection.name!r}. Its syncs pause when they meet this error.",
                "",
                f"Why: {connection.last_error or 'authentication failed'}",
                _auth_fix(connection),
            ],
            path=path,
            recipients=recipients_for(connection=connection),
            now=now,
        )
    if not failed and connection.status == ConnectionStatus.HEALTHY and _set_alerting(row, False):
        return alert_send(
            key=row.key,
            kind=AlertKind.AUTH_RECOVERED,
            subject=f"Connection {connection.name!r}: credentials accepted again",
            lines=[
                f"Connection {connection.name!r} passed its check. Resume any syncs that were "
                "paused for its credentials."
            ],
            path=path,
            recipients=recipients_for(connection=connection),
            now=now,
        )
    return None


def _auth_fix(connection: Connection) -> str:
    if isinstance(flow_for(connection), AuthorizationCode):
        from integrations.oauth.connect import connect_url

        return (
            f"Reconnect it (Reconnect on its page, or {connect_url(connection)}); the syncs "
            "its lost authorization paused resume when it works again."
        )
    return (
        "An Integration Admin should enter new credentials, test the connection, then resume "
        "its syncs."
    )


def credentials_expire_at(connection: Connection) -> datetime | None:
    """When the connection stops working unless someone reconnects it: its OAuth grant's
    stored end (a refresh token's stated lifetime, or the access token's own when nothing
    renews it). Tokens that are renewed automatically, and static secrets, have none."""
    grant = OAuthGrant.objects.filter(pk=connection.pk, state=GrantState.CONNECTED).first()
    return grant.expires_at if grant is not None else None


def _expiry(connection: Connection, *, now):
    expires = credentials_expire_at(connection)
    soon = expires is not None and expires - now < timedelta(
        days=settings.MKT_ALERT_EXPIRY_WARNING_DAYS
    )
    detail = f"{expires:%Y-%m-%dT%H:%MZ}" if expires else ""
    previous, row = state_observe(
        f"connection:{connection.pk}:expiry",
        "expiring" if soon else "ok",
        baseline="ok",
        detail=detail,
        now=now,
    )
    if previous is None or not soon:
        return None
    return alert_send(
        key=row.key,
        kind=AlertKind.AUTH_EXPIRING,
        subject=f"Connection {connection.name!r}: credentials expire {expires:%Y-%m-%d %H:%M} UTC",
        lines=[
            f"The credentials of connection {connection.name!r} ({connection.vendor}) expire at "
            f"{expires:%Y-%m-%d %H:%M} UTC. Reconnect it before then or its syncs will pause.",
            _auth_fix(connection),
        ],
        path=f"/admin/integrations/connection/{connection.pk}/change/",
        recipients=recipients_for(connection=connection),
        now=now,
    )
