"""A refused webhook request leaves a count and an access-log row, nothing else.

The count (``WebhookRefusal``, per vendor and reason) feeds ``/metrics``. The access-log row
(channel ``api``, dataset ``webhooks:<vendor>``) says who was refused, why, from where: the
access log is the record of who knocked on our endpoints, refused API reads included, and it is
append-only and verifiable. A flood of refusals writes at most ACCESS_LOG_PER_MINUTE rows per
connection and reason a minute (the last one says so); the count keeps counting every one.
"""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db import connection as db
from django.utils import timezone

from audit.context import client_address
from audit.models import Channel, Outcome
from audit.services import access_log_write
from integrations.connectors import REGISTRY
from integrations.connectors.feedback import RefusalReason, WebhookRefused
from integrations.webhooks.models import WebhookRefusal

ACCESS_LOG_PER_MINUTE = 10
_OUTCOMES = {
    RefusalReason.RATE_LIMITED: Outcome.LIMITED,
    RefusalReason.TOO_LARGE: Outcome.INVALID,
    RefusalReason.BAD_BODY: Outcome.INVALID,
}


def _count(vendor: str, reason: str) -> None:
    table = WebhookRefusal._meta.db_table
    with db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (vendor, reason, count, last_at) VALUES (%s, %s, 1, %s) "  # noqa: S608
            f"ON CONFLICT (vendor, reason) DO UPDATE SET count = {table}.count + 1, "
            "last_at = excluded.last_at",
            [vendor, reason, db.ops.adapt_datetimefield_value(timezone.now())],
        )


def refusal_record(
    *, vendor: str, connection_id: int | None, refused: WebhookRefused, request
) -> None:
    vendor = vendor if vendor in REGISTRY else "unknown"  # the URL's word is not trusted
    _count(vendor, refused.reason.value)
    key = f"mkt:webhook:refused:{vendor}:{connection_id}:{refused.reason}:{int(time.time() // 60)}"
    cache.add(key, 0, 120)
    try:
        seen = cache.incr(key)
    except ValueError:  # expired between add and incr
        seen = 1
    if seen > ACCESS_LOG_PER_MINUTE:
        return
    detail = f"{refused.reason}: {refused.message}"
    if seen == ACCESS_LOG_PER_MINUTE:
        detail += "; further refusals like this one this minute are counted, not logged"
    access_log_write(
        channel=Channel.API,
        actor=f"vendor:{vendor} (not verified)",
        dataset=f"webhooks:{vendor}",
        filters={"connection": connection_id} if connection_id else {},
        outcome=_OUTCOMES.get(refused.reason, Outcome.DENIED),
        status_code=refused.status,
        client_address=client_address(request),
        detail=detail[:1000],
    )
