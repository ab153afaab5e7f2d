"""The contract, part 3: errors by kind. A 429 waits as long as the vendor says and costs no
attempt; a 5xx is retried; a 401 pauses the sync. Nothing is lost or sent twice."""

from __future__ import annotations

from itertools import pairwise

import pytest

from integrations.models import ConnectionStatus, RunStatus, SyncBatch
from integrations.services import sync_set_paused
from tests.integrations.conftest import start_and_drive

pytestmark = pytest.mark.contract


def test_a_429_waits_out_retry_after_and_costs_no_attempt(contract):
    records = contract.make(3)
    contract.profile.inject_429(contract.server, 2, retry_after=1)

    run = start_and_drive(contract.sync())

    assert (run.status, run.created) == (RunStatus.SUCCEEDED, 3), run.counts()
    assert run.rate_limited == 2
    assert [b.attempt for b in SyncBatch.objects.filter(run=run)] == [0]
    writes = contract.writes()
    answer = contract.profile.answer
    assert [answer(w) for w in writes[:3]] == ["rate_limited", "rate_limited", "ok"]
    waits = [
        later.timestamp - w.timestamp
        for w, later in pairwise(writes)
        if answer(w) == "rate_limited"
    ]
    # Retry-After: 1 (or the vendor's own wait where it sends none), honoured each time.
    assert min(waits) >= contract.profile.rate_limit_wait(1) * 0.95, waits
    assert [contract.creations(r) for r in records] == [1, 1, 1]


def test_a_5xx_is_transient_and_retried_with_nothing_lost_or_doubled(contract):
    records = contract.make(3)
    contract.profile.inject_5xx(contract.server, 2)

    run = start_and_drive(contract.sync())

    assert (run.status, run.created, run.failed) == (RunStatus.SUCCEEDED, 3, 0), run.counts()
    assert SyncBatch.objects.get(run=run).attempt == 2
    answers = [contract.profile.answer(w) for w in contract.writes()[:3]]
    assert answers == ["transient", "transient", "ok"]
    assert [contract.creations(r) for r in records] == [1, 1, 1]


def test_a_401_pauses_the_sync_marks_the_connection_and_loses_nothing(contract):
    # Connections by pasted secret, or by client credentials the vendor refuses too (the
    # profile's inject_401). OAuth connections renew once on a 401 first: test_oauth.py.
    records = contract.make(2)
    sync = contract.sync()
    contract.profile.inject_401(contract.server, 1)

    run = start_and_drive(sync)

    sync.refresh_from_db()
    contract.connection.refresh_from_db()
    assert (run.status, run.failed, run.created) == (RunStatus.PAUSED, 2, 0), run.counts()
    assert sync.paused and sync.pause_reason.startswith("auth")
    assert contract.profile.auth_refused in sync.pause_reason, sync.pause_reason
    assert contract.connection.status == ConnectionStatus.AUTH_FAILED
    sync_set_paused(sync=sync, paused=False)
    resumed = start_and_drive(sync)
    assert (resumed.status, resumed.created) == (RunStatus.SUCCEEDED, 2), resumed.counts()
    assert [contract.creations(r) for r in records] == [1, 1]
