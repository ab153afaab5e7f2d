"""Where outbox events go: a sink. The delivery loop (``deliver.py``) only knows this interface,
so another transport (Kafka, a cloud queue) is one class here and one line in ``sink_get``.

A sink takes a batch of CloudEvents (JSON objects) and either accepts all of them or raises
``SinkError`` (then the whole batch is retried later; the events' stable ids let the receiver
drop what it already has).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Protocol

from django.conf import settings

from mktintegration.errors import ConnectorError
from mktintegration.http import HttpClient, retry_after_seconds

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
SIGNATURE_HEADER = "X-Mkt-Signature"
TIMEOUT = (5.0, 30.0)


class SinkError(Exception):
    """The sink did not take the batch; retrying later may help (after ``retry_after``
    seconds, when the sink said)."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class Sink(Protocol):
    name: str

    def deliver(self, events: list[dict[str, Any]]) -> None: ...


def body_signature(body: bytes, secret: str) -> str:
    """``sha256=`` + hex HMAC-SHA256 of the body with the sink's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class HttpSink:
    """CloudEvents' HTTP binding, batched mode: one POST of a JSON array per batch, signed;
    any 2xx takes the batch, anything else (or no answer) is a SinkError."""

    name = "http"

    def __init__(self, *, url: str, secret: str):
        self.url = url
        self.secret = secret
        # Through the one client: timeouts, the address guard, an outbound log row per POST.
        self.http = HttpClient(
            vendor="events-sink", ca_bundle=settings.MKT_HTTP_CA_BUNDLE, timeout=TIMEOUT
        )

    def deliver(self, events: list[dict[str, Any]]) -> None:
        body = json.dumps(events, separators=(",", ":"), default=str).encode()
        headers = {
            "Content-Type": BATCH_CONTENT_TYPE,
            SIGNATURE_HEADER: body_signature(body, self.secret),
        }
        try:
            response = self.http.request(
                "POST", self.url, data=body, headers=headers, records=len(events)
            )
        except ConnectorError as exc:
            raise SinkError(exc.message) from None
        if not 200 <= response.status_code < 300:
            raise SinkError(
                f"the sink answered HTTP {response.status_code}",
                retry_after=retry_after_seconds(response),
            )


def sink_get() -> Sink | None:
    """The configured sink, or None when events out are off."""
    if not settings.MKT_EVENTS_SINK_URL:
        return None
    return HttpSink(url=settings.MKT_EVENTS_SINK_URL, secret=settings.MKT_EVENTS_SINK_SECRET)
