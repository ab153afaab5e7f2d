"""Receiving one webhook request: checked, stored, acknowledged; processed later by a task.

In order: a known connection of that vendor (404), the body's size (413), the vendor's proof of
authenticity (401; 503 while the vendor's secret is not configured here), the body's shape and
depth (400), the connection's event rate (429 with Retry-After), and events not seen before
(409 when every one was: a replay). A refused request stores nothing but a count and an
access-log row (``refusals.py``). An accepted one is committed before the vendor gets its 2xx;
if the database cannot take it the vendor gets a 503 and sends it again. Never a 500.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError

from integrations.connectors import REGISTRY
from integrations.connectors.feedback import InboundWebhook, RefusalReason, WebhookRefused
from integrations.models import Connection
from integrations.webhooks.endpoints import (
    SECRET_HEADER,
    SECRET_PARAMETER,
    endpoint_secret_matches,
)
from integrations.webhooks.refusals import refusal_record
from integrations.webhooks.store import events_store
from mktintegration import bounds
from mktintegration.redis_client import redis_client

log = logging.getLogger(__name__)


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(message: str) -> bytes:
    return json.dumps({"detail": message}).encode()


def _connection(vendor: str, connection_id: int) -> Connection:
    cls = REGISTRY.get(vendor)
    if cls is None or not cls.webhook_auth or not bounds.ID.contains(connection_id):
        raise WebhookRefused(
            RefusalReason.UNKNOWN_CONNECTION, f"no {vendor} receiver here", status=404
        )
    connection = (
        Connection.objects.select_related("webhook_endpoint")
        .filter(pk=connection_id, vendor=vendor)
        .first()
    )
    if connection is None:
        raise WebhookRefused(
            RefusalReason.UNKNOWN_CONNECTION,
            f"no {vendor} connection {connection_id} receives webhooks here",
            status=404,
        )
    return connection


def _body(request) -> bytes:
    limit = settings.MKT_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    body = b"" if declared > limit else request.read(limit + 1)
    if declared > limit or len(body) > limit:
        raise WebhookRefused(
            RefusalReason.TOO_LARGE, f"the body is larger than {limit:,} bytes", status=413
        )
    return body


def _inbound(request, body: bytes) -> InboundWebhook:
    return InboundWebhook(
        method=request.method,
        url=settings.MKT_BASE_URL + request.get_full_path(),
        headers={name.lower(): value for name, value in request.headers.items()},
        query={name: request.GET.get(name, "") for name in request.GET},
        body=body,
        content_type=request.content_type or "",
    )


def _authenticate(cls, connection: Connection, inbound: InboundWebhook) -> None:
    if cls.webhook_auth == "url_secret":
        endpoint = getattr(connection, "webhook_endpoint", None)
        # In the URL, or in a header for vendors that send custom headers (Marketo).
        given = inbound.query.get(SECRET_PARAMETER, "") or inbound.header(SECRET_HEADER)
        if not endpoint_secret_matches(endpoint, given):
            reason = RefusalReason.BAD_SECRET if endpoint else RefusalReason.NOT_CONFIGURED
            raise WebhookRefused(reason, "the receiver's secret is missing or wrong")
        return
    cls.verify_webhook(inbound, connection=connection, now=time.time())


def _rate_take(connection_id: int, events: int) -> None:
    """At most MKT_WEBHOOK_EVENTS_PER_MINUTE events per connection in each clock minute,
    counted in Redis (one round trip, every web process alike) or, without it, the cache."""
    now = time.time()
    key = f"mkt:webhook:rate:{connection_id}:{int(now // 60)}"
    client = redis_client()
    if client is not None:
        pipe = client.pipeline()
        pipe.incrby(key, events)
        pipe.expire(key, 120)
        used = int(pipe.execute()[0])
    else:
        cache.add(key, 0, 120)
        try:
            used = cache.incr(key, events)
        except ValueError:
            cache.set(key, events, 120)
            used = events
    if used > settings.MKT_WEBHOOK_EVENTS_PER_MINUTE:
        if client is not None:
            client.decrby(key, events)
        else:
            cache.decr(key, events)
        raise WebhookRefused(
            RefusalReason.RATE_LIMITED,
            f"more than {settings.MKT_WEBHOOK_EVENTS_PER_MINUTE:,} events a minute",
            status=429,
            retry_after=math.ceil(60 - now % 60),
        )


def webhook_receive(*, vendor: str, connection_id: int, request) -> Answer:
    connection = None
    try:
        connection = _connection(vendor, connection_id)
        cls = REGISTRY[vendor]
        if request.method == "GET":
            if not cls.webhook_validation_get:
                return Answer(405, _json("this receiver takes POST"), headers={"Allow": "POST"})
            _authenticate(cls, connection, _inbound(request, b""))
            return Answer(200, _json("ok"))
        body = _body(request)
        inbound = _inbound(request, body)
        _authenticate(cls, connection, inbound)
        try:
            events = cls.parse_webhook(inbound, connection=connection)
        except (ValueError, TypeError, KeyError) as exc:
            raise WebhookRefused(
                RefusalReason.BAD_BODY, f"the body could not be read: {exc}", status=400
            ) from None
        if len(events) > bounds.WEBHOOK_EVENTS:
            raise WebhookRefused(
                RefusalReason.BAD_BODY,
                f"at most {bounds.WEBHOOK_EVENTS:,} events in one request",
                status=400,
            )
        if not events:  # a validation ping: answered, nothing to keep
            return Answer(200, _json("ok"))
        _rate_take(connection.pk, len(events))
        stored = events_store(connection=connection, events=events)
        if not stored:
            raise WebhookRefused(
                RefusalReason.REPLAYED,
                "every event in this request was received before",
                status=409,
            )
    except WebhookRefused as refused:
        headers = {}
        if refused.retry_after is not None:
            headers["Retry-After"] = str(refused.retry_after)
        refusal_record(
            vendor=vendor,
            connection_id=connection.pk if connection is not None else None,
            refused=refused,
            request=request,
        )
        return Answer(refused.status, _json(refused.message), headers=headers)
    except DatabaseError:
        log.exception(
            "webhook %s/%s: not stored; the vendor is asked to retry", vendor, connection_id
        )
        return Answer(503, _json("not stored; send it again"), headers={"Retry-After": "30"})
    status, content_type, answer = cls.webhook_answer(events)
    return Answer(status, answer, content_type)
