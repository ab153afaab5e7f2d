"""FakeSink over real HTTP: batches taken by id, signatures checked, down and up."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from tests.fakes.sink import BATCH_CONTENT_TYPE, FakeSink


@pytest.fixture
def sink():
    with FakeSink(secret="s") as server:
        yield server


def _post(sink, events, *, secret="s", content_type=BATCH_CONTENT_TYPE):  # noqa: S107
    body = json.dumps(events).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return requests.post(
        sink.url,
        data=body,
        headers={"Content-Type": content_type, "X-Mkt-Signature": signature},
        timeout=5,
    )


def _event(i):
    return {"specversion": "1.0", "id": f"e{i}", "source": "/t", "type": "t.happened"}


def test_accepted_events_are_kept_by_id_and_copies_counted(sink):
    assert _post(sink, [_event(1), _event(2)]).status_code == 200
    assert _post(sink, [_event(2)]).status_code == 200

    assert set(sink.events) == {"e1", "e2"}
    assert sink.copies == {"e1": 1, "e2": 2}
    assert sink.violations == []


def test_while_down_nothing_is_taken(sink):
    sink.down()
    assert _post(sink, [_event(1)]).status_code == 503
    sink.up()
    assert _post(sink, [_event(2)]).status_code == 200

    assert set(sink.events) == {"e2"}


def test_a_wrong_signature_or_type_or_event_is_a_violation(sink):
    _post(sink, [_event(1)], secret="wrong")
    _post(sink, [_event(2)], content_type="application/json")
    _post(sink, [{"id": "e3"}])

    assert sink.events == {}
    problems = "\n".join(sink.violations)
    assert "X-Mkt-Signature" in problems and "Content-Type" in problems
    assert "event without specversion, source, type" in problems
