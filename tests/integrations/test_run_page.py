"""A run page a manager can read: named after its sync, a summary (status, trigger and who,
duration, the buckets as a bar whose legend adds up to the planned records), progress with an
estimate and a self-refresh while it runs, and a replay button for who may replay."""

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from integrations.models import DeadLetter, LedgerEntry, SyncRun
from integrations.run_progress import eta_text
from mktintegration import roles
from tests.integrations.conftest import make_connection, make_sync
from tests.mktintegration.test_csp import _inline
from tests.page_text import page_text, page_title

RUNS = "/admin/integrations/syncrun/"
REFRESH = 'data-refresh-seconds="10"'  # auto_refresh.js reloads it, with a pause button


@pytest.fixture
def sync(db):
    vendor = SimpleNamespace(url="http://127.0.0.1:9", credential="not-used")  # never called
    return make_sync(make_connection("hubspot", vendor), name="Customers to HubSpot")


def _run(sync, **fields):
    now = timezone.now()
    defaults = {
        "trigger": "schedule",
        "status": "succeeded",
        "started_at": now - timedelta(minutes=3, seconds=20),
        "finished_at": now,
    }
    return SyncRun.objects.create(sync=sync, **{**defaults, **fields})


def _summary(page: str) -> str:
    block = re.search(r'<div class="module mkt-run-summary">(.*?)<fieldset', page, re.S)
    assert block, page[:3000]
    return page_text(block.group(1))


def _legend_counts(page: str) -> tuple[list[int], int]:
    counts = re.findall(r'<span class="mkt-bucket-count">([\d,]+)</span>', page)
    planned = re.search(r'<span class="mkt-planned">([\d,]+)</span>', page).group(1)
    return [int(c.replace(",", "")) for c in counts], int(planned.replace(",", ""))


@pytest.mark.django_db
def test_run_page_title_and_breadcrumb_name_the_sync(client_for, sync):
    run = _run(sync)

    page = client_for(roles.INTEGRATION_ADMIN).get(f"{RUNS}{run.pk}/change/").content.decode()

    name = f"Run {run.pk} of Customers to HubSpot"
    assert page_title(page).startswith(f"{name} |")
    assert f"<h2>{name}</h2>" in page
    assert f"of {sync.pk} |" not in page_title(page)


@pytest.mark.django_db
def test_summary_shows_status_trigger_who_and_duration(client_for, sync, user_with_role):
    presser = user_with_role(None, first_name="Ana", last_name="Lima")
    manual = _run(sync, trigger="manual", triggered_by=presser, status="partial")
    scheduled = _run(sync, trigger="schedule")
    quota = _run(sync, trigger="quota")
    client = client_for(roles.INTEGRATION_ADMIN)

    texts = [
        _summary(client.get(f"{RUNS}{run.pk}/change/").content.decode())
        for run in (manual, scheduled, quota)
    ]

    assert "Status Finished with records not delivered" in texts[0]
    assert "Started by Run now by Ana Lima" in texts[0]
    assert "Duration 3 min 20 s" in texts[0]
    assert "Started by schedule" in texts[1] and "Status Succeeded" in texts[1]
    assert "Started by quota window" in texts[2]


@pytest.mark.django_db
def test_bucket_legend_adds_up_to_planned_and_page_has_no_inline_style(client_for, sync):
    finished = _run(
        sync, planned=5_000, created=1_200, updated=2_300, unchanged=1_000, invalid=450, failed=50
    )
    client = client_for(roles.INTEGRATION_ADMIN)

    page = client.get(f"{RUNS}{finished.pk}/change/").content.decode()

    counts, planned = _legend_counts(page)
    assert planned == 5_000 and sum(counts) == 5_000
    assert "1,200 created" in page_text(page) and "2,300 updated" in page_text(page)
    assert "mkt-w-25" in page  # 1,200 of 5,000 is 24 %, shown in 5 % steps
    assert _inline(page).found == []


@pytest.mark.django_db
def test_a_delivering_run_shows_progress_with_eta_and_refreshes(client_for, sync):
    running = _run(
        sync,
        status="delivering",
        finished_at=None,
        started_at=timezone.now() - timedelta(minutes=3),
        planned=5_000,
        created=1_200,
        batches_total=10,
        batches_done=3,
    )
    client = client_for(roles.INTEGRATION_ADMIN)

    page = client.get(f"{RUNS}{running.pk}/change/").content.decode()

    text = _summary(page)
    assert "1,200 of 5,000 records, 3 of 10 batches, about 7 min left" in text, text
    assert REFRESH in page
    counts, planned = _legend_counts(page)
    assert sum(counts) == planned == 5_000  # 3,800 are not yet delivered
    assert "3,800 not yet delivered" in text
    assert _inline(page).found == []


@pytest.mark.django_db
def test_a_finished_run_shows_no_progress_and_does_not_refresh(client_for, sync):
    done = _run(sync, planned=10, created=10, batches_total=1, batches_done=1)

    page = client_for(roles.INTEGRATION_ADMIN).get(f"{RUNS}{done.pk}/change/").content.decode()

    assert "Progress" not in _summary(page) and " left" not in _summary(page)
    assert REFRESH not in page
    assert "http-equiv" not in page


@pytest.mark.django_db
def test_a_queued_run_refreshes_and_says_nothing_is_planned_yet(client_for, sync):
    queued = _run(sync, status="queued", started_at=None, finished_at=None)

    page = client_for(roles.INTEGRATION_ADMIN).get(f"{RUNS}{queued.pk}/change/").content.decode()

    assert REFRESH in page
    assert "No records planned yet." in page_text(page)
    assert "Started not yet" in page_text(page)


@pytest.mark.django_db
def test_a_manager_opens_a_granted_syncs_run_and_gets_404_for_another(client, sync, user_with_role):
    other = make_sync(sync.connection, name="Not yours")
    mine, theirs = _run(sync), _run(other)
    manager = user_with_role(roles.MARKETING_MANAGER)
    assign_perm("integrations.view_sync", manager, sync)
    client.force_login(manager)

    page = client.get(f"{RUNS}{mine.pk}/change/")

    assert page.status_code == 200
    assert f"Run {mine.pk} of Customers to HubSpot" in page_title(page.content.decode())
    assert client.get(f"{RUNS}{theirs.pk}/change/").status_code == 404
    assert client.post(f"{RUNS}{theirs.pk}/replay/").status_code == 404


def _dead_letters(run, n):
    for i in range(n):
        entry = LedgerEntry.objects.create(sync=run.sync, record_key=f"k{i}", status="dead")
        DeadLetter.objects.create(
            sync=run.sync, entry=entry, run=run, record_key=entry.record_key, error="refused"
        )


@pytest.mark.django_db
def test_replay_button_replays_the_runs_dead_letters_for_who_may(client, sync, user_with_role):
    run = _run(sync, status="partial", planned=2, dead_lettered=2)
    _dead_letters(run, 2)
    viewer = user_with_role(roles.MARKETING_MANAGER)
    assign_perm("integrations.view_sync", viewer, sync)
    replayer = user_with_role(roles.MARKETING_MANAGER)
    for perm in ("view_sync", "replay_deadletters"):
        assign_perm(f"integrations.{perm}", replayer, sync)

    client.force_login(viewer)
    assert "Replay 2 dead letters" not in client.get(f"{RUNS}{run.pk}/change/").content.decode()
    assert client.post(f"{RUNS}{run.pk}/replay/").status_code == 403
    assert DeadLetter.objects.filter(status="open").count() == 2

    client.force_login(replayer)
    page = client.get(f"{RUNS}{run.pk}/change/").content.decode()
    assert ">Replay 2 dead letters</button>" in page
    assert client.get(f"{RUNS}{run.pk}/replay/").status_code == 405
    replayed = client.post(f"{RUNS}{run.pk}/replay/", follow=True)

    replay = SyncRun.objects.get(trigger="replay")
    assert replayed.redirect_chain[-1][0] == f"{RUNS}{replay.pk}/change/"
    assert "Customers to HubSpot: 2 dead letters replayed." in page_text(replayed.content.decode())
    assert DeadLetter.objects.filter(status="open").count() == 0
    assert replay.triggered_by == replayer
    assert "Started by Dead-letter replay by " in _summary(replayed.content.decode())


# --- the estimate ------------------------------------------------------------------------------


def test_eta_before_the_first_batch_is_estimating():
    assert eta_text(elapsed_seconds=30, done=0, total=10) == "estimating"
    assert eta_text(elapsed_seconds=0, done=0, total=10) == "estimating"


def test_eta_from_elapsed_time_and_batches_done_in_whole_minutes():
    assert eta_text(elapsed_seconds=60, done=3, total=10) == "about 2 min left"  # 140 s
    assert eta_text(elapsed_seconds=180.3, done=3, total=10) == "about 7 min left"
    assert eta_text(elapsed_seconds=3_000, done=1, total=2) == "about 50 min left"
    assert eta_text(elapsed_seconds=5_000, done=1, total=2) == "about 1 h 25 min left"  # 5 min


def test_eta_is_empty_when_done_or_nothing_to_do():
    assert eta_text(elapsed_seconds=60, done=10, total=10) == ""
    assert eta_text(elapsed_seconds=60, done=12, total=10) == ""
    assert eta_text(elapsed_seconds=60, done=0, total=0) == ""


def test_eta_is_never_negative_nor_absurd():
    assert eta_text(elapsed_seconds=-5, done=3, total=10) == "estimating"  # clock skew
    assert eta_text(elapsed_seconds=0.001, done=9_999, total=10_000) == "less than a minute left"
    assert eta_text(elapsed_seconds=10**9, done=1, total=10) == "more than a day left"
    assert eta_text(elapsed_seconds=86_400, done=1, total=2) == "more than a day left"
    assert eta_text(elapsed_seconds=86_000, done=1, total=2) == "about 23 h 55 min left"
