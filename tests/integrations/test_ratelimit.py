"""The rate budget one connection's workers share (database, or Redis when configured)."""

import os
import time

import pytest

from integrations.connectors.base import RateSpec
from integrations.engine.ratelimit import RateBudget, RateWaitTooLong
from mktintegration.redis_client import redis_client

BACKENDS = [
    "database",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(
            not os.environ.get("REDIS_URL"), reason="needs a Redis server: set REDIS_URL (CI does)"
        ),
    ),
]


@pytest.fixture(params=BACKENDS)
def backend(request, settings, hubspot_connection):
    settings.REDIS_URL = os.environ.get("REDIS_URL") if request.param == "redis" else None
    if settings.REDIS_URL:
        redis_client().delete(f"mkt:rate:{hubspot_connection.pk}")
    return hubspot_connection


@pytest.mark.django_db
def test_two_workers_share_one_budget(backend):
    spec = RateSpec(requests=10, per_seconds=1)
    first, second = (RateBudget(connection_id=backend.pk, spec=spec) for _ in range(2))

    started = time.monotonic()
    for _ in range(3):
        first.acquire()
        second.acquire()
    elapsed = time.monotonic() - started

    # 6 requests at 9.8/s with a burst of one: the 5 after the first wait ~0.1 s each.
    assert elapsed >= 5 / 9.8 * 0.9


@pytest.mark.django_db
def test_a_429_blocks_every_worker_of_the_connection(backend):
    spec = RateSpec(requests=1000, per_seconds=1)
    RateBudget(connection_id=backend.pk, spec=spec).block(0.5)

    started = time.monotonic()
    RateBudget(connection_id=backend.pk, spec=spec).acquire()

    assert time.monotonic() - started >= 0.45


@pytest.mark.django_db
def test_a_long_wait_hands_the_batch_back_instead_of_sleeping(backend):
    spec = RateSpec(requests=1000, per_seconds=1)
    RateBudget(connection_id=backend.pk, spec=spec).block(60)

    with pytest.raises(RateWaitTooLong) as wait:
        RateBudget(connection_id=backend.pk, spec=spec, max_wait=1).acquire()
    assert 55 < wait.value.wait <= 60
