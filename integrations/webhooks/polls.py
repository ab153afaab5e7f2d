"""Feedback read from a vendor's API on a schedule: a sent campaign's report (Mailchimp's email
activity: who was sent it, opened, clicked, bounced), and the standing polls of vendors without
webhooks (Account Engagement's opted-out prospects), kept for as long as the connection is.

A ``FeedbackPoll`` row per thing read keeps where the last read ended (the connector's cursor);
the beat task sends a poll task for each due one; the events read are stored and processed like
webhook events (one row per event, never two).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from integrations.connectors import REGISTRY, connector_class
from integrations.connectors.base import Connector
from integrations.engine.state import connection_mark_failed
from integrations.models import Connection
from integrations.selectors import connector_for
from integrations.webhooks.models import FeedbackPoll, Via
from integrations.webhooks.store import events_store
from mktintegration.errors import ConnectorError, ErrorKind

log = logging.getLogger(__name__)
# The first read of a campaign's report, this long after it was sent.
FIRST_POLL_DELAY = timedelta(minutes=1)


def polls_supported(connection: Connection) -> bool:
    cls = connector_class(connection.vendor)
    return cls.poll_feedback is not Connector.poll_feedback


def poll_schedule(*, connection: Connection, key: str, started_at: datetime) -> FeedbackPoll:
    """Read ``key`` from now for MKT_FEEDBACK_POLL_DAYS (a poll already there is extended)."""
    now = timezone.now()
    until = now + timedelta(days=settings.MKT_FEEDBACK_POLL_DAYS)
    poll, created = FeedbackPoll.objects.get_or_create(
        connection=connection,
        key=key[:200],
        defaults={
            "cursor": {"sent_at": started_at.isoformat()},
            "poll_until": until,
            "next_poll_at": now + FIRST_POLL_DELAY,
        },
    )
    if not created and poll.poll_until < until:
        FeedbackPoll.objects.filter(pk=poll.pk).update(poll_until=until)
        poll.poll_until = until
    return poll


def polls_standing_ensure() -> int:
    """Every connection whose vendor declares standing polls has them, read from now on (an
    existing one is kept going); the number created."""
    now = timezone.now()
    until = now + timedelta(days=settings.MKT_FEEDBACK_POLL_DAYS)
    vendors = {slug: cls.standing_polls for slug, cls in REGISTRY.items() if cls.standing_polls}
    created = 0
    for connection in Connection.objects.filter(vendor__in=list(vendors)).only("pk", "vendor"):
        for key in vendors[connection.vendor]:
            _, new = FeedbackPoll.objects.update_or_create(
                connection=connection,
                key=key,
                defaults={"poll_until": until},
                create_defaults={
                    "poll_until": until,
                    "next_poll_at": now,
                    "cursor": {"since": now.isoformat()},
                },
            )
            created += new
    return created


def polls_due() -> list[int]:
    """Polls to read now; those past their end are removed."""
    now = timezone.now()
    FeedbackPoll.objects.filter(poll_until__lt=now).delete()
    return list(FeedbackPoll.objects.filter(next_poll_at__lte=now).values_list("pk", flat=True))


def poll_run(*, poll_id: int) -> dict:
    """Read one poll once (claimed by moving its next time: one reader at a time);
    ``again``: more is ready now (the caller sends the task again)."""
    now = timezone.now()
    interval = timedelta(minutes=settings.MKT_FEEDBACK_POLL_MINUTES)
    claimed = FeedbackPoll.objects.filter(pk=poll_id, next_poll_at__lte=now).update(
        next_poll_at=now + interval, last_polled_at=now
    )
    if not claimed:
        return {"read": 0, "again": False}
    poll = FeedbackPoll.objects.select_related("connection").get(pk=poll_id)
    connector = connector_for(poll.connection)
    try:
        events, cursor, more = connector.poll_feedback(poll.key, dict(poll.cursor))
    except ConnectorError as exc:
        FeedbackPoll.objects.filter(pk=poll_id).update(last_error=exc.message[:2000])
        if exc.kind in (ErrorKind.AUTH, ErrorKind.CONFIG):
            connection_mark_failed(
                poll.connection, auth=exc.kind == ErrorKind.AUTH, message=exc.message
            )
        log.warning("poll %s of connection %s failed: %s", poll.key, poll.connection_id, exc)
        return {"read": 0, "again": False}
    finally:
        connector.http.close()
    stored = events_store(connection=poll.connection, events=events, via=Via.POLL)
    update = {"cursor": cursor, "last_error": "", "events": poll.events + len(stored)}
    if more:
        update["next_poll_at"] = timezone.now()
    FeedbackPoll.objects.filter(pk=poll_id).update(**update)
    return {"read": len(events), "stored": len(stored), "again": more}
