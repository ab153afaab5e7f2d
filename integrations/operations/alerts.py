"""E-mail alerts on changes of state (docs/operations.md#alerts).

Every alert has a key naming what it is about (``sync:12:health``). ``AlertState`` keeps the
last state seen for each key; an e-mail goes out when the state changes into a bad one (and a
"recovered" one when it is good again), never because a bad state is observed again. The
same alert (key and kind) is sent at most once per MKT_ALERT_REPEAT_MINUTES; every alert,
sent or not, is an ``Alert`` row. Recipients: the object's own list (a sync also gets its
connection's), the active users of the MKT_ALERT_ROLES groups, and for a sync or an export
schedule the users granted change on it (its creator among them).
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from guardian.shortcuts import get_users_with_perms

from integrations.operations.models import (
    Alert,
    AlertKind,
    AlertRecipients,
    AlertState,
    AlertStatus,
)

log = logging.getLogger("mktintegration.alerts")
MAX_SEND_ATTEMPTS = 5
DASHBOARD_PATH = "/admin/operations/dashboard/"


def admin_url(path: str) -> str:
    return f"{settings.MKT_BASE_URL}{path}"


# --- recipients ----------------------------------------------------------------------------


def _owners(obj, perm: str) -> list[str]:
    """The e-mail addresses of the active users granted ``perm`` on this very object: its
    creator (who gets that grant) and whoever was granted change on it."""
    users = get_users_with_perms(
        obj, only_with_perms_in=[perm], with_group_users=False, with_superusers=False
    )
    return [u.email for u in users if u.is_active and u.email]


def recipients_for(*, connection=None, sync=None, export_schedule=None) -> list[str]:
    """The object's own list (a sync's connection's too) and the alert roles' users."""
    if sync is not None and connection is None:
        connection = sync.connection
    lists = Q(pk__in=[])
    if connection is not None:
        lists |= Q(connection=connection)
    if sync is not None:
        lists |= Q(sync=sync)
    if export_schedule is not None:
        lists |= Q(export_schedule=export_schedule)
    emails: list[str] = []
    for values in AlertRecipients.objects.filter(lists).values_list("emails", flat=True):
        emails += [str(v) for v in values or []]
    emails += list(
        get_user_model()
        .objects.filter(groups__name__in=settings.MKT_ALERT_ROLES, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    for owned, perm in ((sync, "change_sync"), (export_schedule, "change_exportschedule")):
        if owned is not None:
            emails += _owners(owned, perm)
    unique: dict[str, str] = {}
    for email in emails:
        unique.setdefault(email.strip().lower(), email.strip())
    return sorted(unique.values(), key=str.lower)


# --- sending -------------------------------------------------------------------------------


def alert_send(
    *,
    key: str,
    kind: str,
    subject: str,
    lines: list[str],
    path: str,
    recipients: list[str],
    now: datetime | None = None,
) -> Alert:
    """Record the alert and mail it, unless the same one went out within the repeat window."""
    now = now or timezone.now()
    url = admin_url(path)
    body = "\n".join(
        [
            *lines,
            "",
            f"Open it: {url}",
            f"Dashboard: {admin_url(DASHBOARD_PATH)}",
            "",
            "mktintegration sends alerts when a state changes, and the same alert at most "
            f"once every {settings.MKT_ALERT_REPEAT_MINUTES} minutes.",
        ]
    )
    window = now - timedelta(minutes=settings.MKT_ALERT_REPEAT_MINUTES)
    recent = Alert.objects.filter(
        key=key, kind=kind, status=AlertStatus.SENT, sent_at__gte=window
    ).exists()
    if recent:
        status = AlertStatus.SUPPRESSED
    elif not recipients:
        status = AlertStatus.NO_RECIPIENTS
    else:
        status = AlertStatus.PENDING
    alert = Alert.objects.create(
        key=key,
        kind=kind,
        subject=f"[mktintegration] {subject}"[:300],
        body=body,
        url=url[:500],
        recipients=recipients,
        status=status,
    )
    if status == AlertStatus.PENDING:
        alert_deliver(alert)
    else:
        log.warning("ALERT %s (%s): %s", subject, status, key)
    return alert


def alert_deliver(alert: Alert) -> bool:
    """Mail one alert, one message per recipient (no one sees the others' addresses)."""
    messages = [
        EmailMessage(alert.subject, alert.body, settings.DEFAULT_FROM_EMAIL, [address])
        for address in alert.recipients
    ]
    error = ""
    try:
        get_connection(fail_silently=False).send_messages(messages)
    except (smtplib.SMTPException, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
        log.error("ALERT %s could not be mailed: %s", alert.subject, error)
    Alert.objects.filter(pk=alert.pk).update(
        status=AlertStatus.FAILED if error else AlertStatus.SENT,
        sent_at=None if error else timezone.now(),
        attempts=alert.attempts + 1,
        error=error,
    )
    return not error


def alerts_retry_failed(*, now: datetime | None = None) -> int:
    """Mail again the alerts the mail server did not take (for up to a day, five tries)."""
    now = now or timezone.now()
    retried = 0
    for alert in Alert.objects.filter(
        status=AlertStatus.FAILED,
        attempts__lt=MAX_SEND_ATTEMPTS,
        created_at__gte=now - timedelta(days=1),
        created_at__lt=now,  # not the ones this evaluation just tried
    ):
        retried += alert_deliver(alert)
    return retried


# --- state ---------------------------------------------------------------------------------


def state_observe(
    key: str, state: str, *, baseline: str, detail: str = "", now: datetime | None = None
) -> tuple[str | None, AlertState]:
    """Record the state of ``key``; return the previous state when it changed (a key seen
    for the first time counts as changing from ``baseline``), else None."""
    now = now or timezone.now()
    with transaction.atomic():
        row, created = AlertState.objects.select_for_update().get_or_create(
            key=key, defaults={"state": state, "changed_at": now, "detail": detail[:500]}
        )
        if created:
            return (baseline if state != baseline else None), row
        if row.state == state:
            return None, row
        previous = row.state
        # Only the observer that moves the state from `previous` reports the change.
        moved = AlertState.objects.filter(pk=row.pk, state=previous).update(
            state=state, changed_at=now, detail=detail[:500]
        )
        if not moved:
            return None, row
        row.state, row.changed_at = state, now
        return previous, row


def _set_alerting(row: AlertState, value: bool) -> bool:
    """Flip the alerting flag; True for the one caller that flipped it."""
    return bool(AlertState.objects.filter(pk=row.pk, alerting=not value).update(alerting=value))


# --- events the engine reports -------------------------------------------------------------


def mirror_guard_tripped(*, sync, run) -> Alert:
    return alert_send(
        key=f"sync:{sync.pk}:mirror_guard",
        kind=AlertKind.MIRROR_GUARD,
        subject=f"Sync {sync.name!r}: mirror delete guard tripped",
        lines=[
            f"Run {run.pk} of sync {sync.name!r} would have archived more records at the "
            "destination than the sync allows (mirror_max_delete_share "
            f"{sync.mirror_max_delete_share:.0%}); nothing was archived.",
            "",
            f"Why: {run.error or 'see the run'}",
            "If the source really lost these records, raise the share for one run; otherwise "
            "check the sync's filters and the source data.",
        ],
        path=f"/admin/integrations/syncrun/{run.pk}/change/",
        recipients=recipients_for(sync=sync),
    )


def sync_paused(*, sync, reason: str) -> Alert:
    return alert_send(
        key=f"sync:{sync.pk}:paused",
        kind=AlertKind.SYNC_PAUSED,
        subject=f"Sync {sync.name!r} was paused",
        lines=[
            f"Sync {sync.name!r} ({sync.connection.name}, {sync.connection.vendor}) was paused "
            "and sends nothing until it is resumed.",
            "",
            f"Why: {reason}",
            "Fix the cause (credentials, configuration), then resume the sync in the admin.",
        ],
        path=f"/admin/integrations/sync/{sync.pk}/change/",
        recipients=recipients_for(sync=sync),
    )


def vendor_notice(*, connection, message: str) -> Alert:
    """The vendor notified an error of the account or a change of its state (a webhook)."""
    return alert_send(
        key=f"connection:{connection.pk}:vendor_notice",
        kind=AlertKind.VENDOR_NOTICE,
        subject=f"Connection {connection.name!r}: the vendor reports a problem",
        lines=[
            f"{connection.vendor} sent a notification about connection {connection.name!r}; "
            "it is marked failing until its next successful check.",
            "",
            f"What it says: {message}",
        ],
        path=f"/admin/integrations/connection/{connection.pk}/change/",
        recipients=recipients_for(connection=connection),
    )


def suppression_failed(*, sync, error: str, count: int) -> Alert:
    """Opt-outs a destination refused or never confirmed (docs/webhooks.md)."""
    return alert_send(
        key=f"sync:{sync.pk}:suppression_failed",
        kind=AlertKind.SUPPRESSION_FAILED,
        subject=f"Sync {sync.name!r}: {count} opt-out(s) not confirmed",
        lines=[
            f"{count} people whose consent was withdrawn could not be opted out at the "
            f"destination of sync {sync.name!r} ({sync.connection.name}). The consent gate "
            "keeps the sync from sending them anything, but the destination may still e-mail "
            "them.",
            "",
            f"Why: {error}",
            "Fix the cause, then retry them under Feedback from vendors > Opt-outs.",
        ],
        path="/admin/webhooks/suppression/?status__exact=failed",
        recipients=recipients_for(sync=sync),
    )
