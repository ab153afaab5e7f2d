"""``FakeSink``: an analytics pipeline's HTTP endpoint taking our events out, on 127.0.0.1.

It speaks the CloudEvents HTTP binding in batched mode (``Content-Type:
application/cloudevents-batch+json``, a JSON array of events), checks each request's
``X-Mkt-Signature`` (``sha256=`` + hex HMAC-SHA256 of the body, tests/fakes/receiver.py), and
keeps every event it accepted by id, so a test sees what arrived, what arrived more than once
(at-least-once delivery), and what was refused. ``down()`` makes it answer 503 (or another
status) until ``up()``.

    with FakeSink(secret="s3cret") as sink:
        settings.MKT_EVENTS_SINK_URL, settings.MKT_EVENTS_SINK_SECRET = sink.url, sink.secret
        ...
        assert set(sink.events) == expected_ids and sink.violations == []
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Self

from tests.fakes.receiver import FakeReceiver, verify_hmac

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")  # CloudEvents 1.0 required attributes


class FakeSink:
    def __init__(self, *, secret: str = "sink-test-secret", path: str = "/events"):  # noqa: S107
        self.secret = secret
        self.path = path
        self._receiver = FakeReceiver()

    def start(self) -> Self:
        self._receiver.start()
        return self

    def stop(self) -> None:
        self._receiver.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._receiver.url + self.path

    def down(self, status: int = 503) -> None:
        """Answer every request with ``status`` (nothing is taken) until ``up()``."""
        self._receiver.default_status = status

    def up(self) -> None:
        self._receiver.default_status = 200

    @property
    def requests(self):
        return self._receiver.received

    def _accepted(self) -> list[dict[str, Any]]:
        events = []
        for request in self._receiver.received:
            if 200 <= request.status < 300 and not self._problems(request):
                events += json.loads(request.body)
        return events

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        """Every event accepted, by id (the last copy of each)."""
        return {event["id"]: event for event in self._accepted()}

    @property
    def copies(self) -> Counter:
        """How many times each event id was accepted (above 1: delivered again)."""
        return Counter(event["id"] for event in self._accepted())

    def _problems(self, request) -> list[str]:
        problems = []
        if request.method != "POST" or request.path != self.path:
            problems.append(f"{request.method} {request.path}: expected POST {self.path}")
        if (request.header("Content-Type") or "").split(";")[0] != BATCH_CONTENT_TYPE:
            problems.append(f"Content-Type is not {BATCH_CONTENT_TYPE}")
        if not verify_hmac(request, self.secret):
            problems.append("X-Mkt-Signature does not match the body")
        try:
            batch = json.loads(request.body)
        except ValueError:
            return [*problems, "the body is not JSON"]
        if not isinstance(batch, list):
            return [*problems, "a batch is a JSON array"]
        for event in batch:
            missing = [name for name in REQUIRED if not event.get(name)]
            if missing:
                problems.append(f"event without {', '.join(missing)}")
            elif event["specversion"] != "1.0":
                problems.append(f"specversion {event['specversion']!r}")
        return problems

    @property
    def violations(self) -> list[str]:
        """What of our requests breaks the binding or the signature (tests want [])."""
        return [p for request in self._receiver.received for p in self._problems(request)]
