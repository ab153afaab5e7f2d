"""The sync list a manager scans at 1366 px: state, last run, next run and open failures in a
few columns, at a query count that does not grow with the syncs listed."""

import re
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from guardian.shortcuts import assign_perm

from integrations import services
from integrations.models import DeadLetter, LedgerEntry, SyncRun
from mktintegration import roles
from tests.integrations.conftest import make_connection, make_sync
from tests.page_text import page_text

SYNCS = "/admin/integrations/sync/"
LETTERS = "/admin/integrations/deadletter/"


def _row(page: str, name: str) -> str:
    """The text of the list row of the sync called ``name``."""
    for row in re.findall(r"<tr>.*?</tr>", page, re.S):
        if f">{name}</a>" in row:
            return row
    raise AssertionError(f"no row for {name}")


def _cell(row: str, column: str) -> str:
    """The text of one column of a list row."""
    return page_text(re.search(rf'class="field-{column}[^"]*">(.*?)</t[dh]>', row, re.S).group(1))


def _letters(sync, *, open_count: int, replayed: int = 0) -> None:
    for i in range(open_count + replayed):
        entry = LedgerEntry.objects.create(sync=sync, record_key=f"r{i}", status="failed")
        DeadLetter.objects.create(
            sync=sync,
            entry=entry,
            record_key=f"r{i}",
            error="Name is not allowed",
            status="open" if i < open_count else "replayed",
        )


def _every_15_minutes_last_sent(sync, *, minutes_ago: int) -> None:
    services.sync_schedule_apply(sync=sync)
    sent = timezone.now() - timedelta(minutes=minutes_ago)
    PeriodicTask.objects.filter(name=sync.periodic_task_name).update(last_run_at=sent)


def _manager_client(user_with_role, *syncs):
    manager = user_with_role(roles.MARKETING_MANAGER)
    for sync in syncs:
        assign_perm("integrations.change_sync", manager, sync)
    client = Client()
    client.force_login(manager)
    return client


@pytest.mark.django_db
def test_a_manager_sees_the_next_run_and_the_failures_of_their_syncs(hubspot, user_with_role):
    connection = make_connection("hubspot", hubspot)
    sync = make_sync(connection, name="Customers to HubSpot", every_minutes=15)
    _every_15_minutes_last_sent(sync, minutes_ago=3)
    _letters(sync, open_count=2)
    run = SyncRun.objects.create(sync=sync, trigger="schedule", status="partial")
    SyncRun.objects.filter(pk=run.pk).update(finished_at=timezone.now() - timedelta(hours=3))
    client = _manager_client(user_with_role, sync)

    page = client.get(SYNCS).content.decode()

    row = _row(page, "Customers to HubSpot")
    assert _cell(row, "next_run") == "in 12 min"
    assert _cell(row, "sends") == "clients → companies"
    assert _cell(row, "state") == "enabled"
    assert f'<a href="/admin/integrations/syncrun/{run.pk}/change/">partial</a> 3 h ago' in row
    url = f"{LETTERS}?sync__id__exact={sync.pk}&amp;status__exact=open"
    assert f'<a href="{url}">2</a>' in row
    letters = client.get(url.replace("&amp;", "&"))
    assert letters.status_code == 200
    assert letters.context["cl"].result_count == 2


@pytest.mark.django_db
def test_a_paused_sync_says_paused_and_why_and_has_no_next_run(hubspot, user_with_role):
    sync = make_sync(make_connection("hubspot", hubspot), name="Paused one", every_minutes=15)
    services.sync_set_paused(sync=sync, paused=True, reason="vendor maintenance")
    client = _manager_client(user_with_role, sync)

    row = _row(client.get(SYNCS).content.decode(), "Paused one")

    assert _cell(row, "state") == "paused: vendor maintenance"
    assert _cell(row, "next_run") == "—"
    assert PeriodicTask.objects.filter(name=sync.periodic_task_name, enabled=False).exists()


@pytest.mark.django_db
def test_a_sync_with_no_schedule_has_no_next_run_and_no_last_run(hubspot, user_with_role):
    sync = make_sync(make_connection("hubspot", hubspot), name="Manual one")
    SyncRun.objects.create(sync=sync, trigger="preview", status="preview")  # not a run
    client = _manager_client(user_with_role, sync)

    row = _row(client.get(SYNCS).content.decode(), "Manual one")

    assert _cell(row, "schedule") == "manual runs only"
    assert _cell(row, "next_run") == "—" and _cell(row, "last_run") == "-"


@pytest.mark.django_db
def test_the_failure_count_is_the_open_dead_letters_of_each_sync(hubspot, client_for):
    connection = make_connection("hubspot", hubspot)
    failing = make_sync(connection, name="Failing")
    clean = make_sync(connection, name="Clean")
    _letters(failing, open_count=3, replayed=2)
    _letters(clean, open_count=0, replayed=1)

    page = client_for(roles.INTEGRATION_ADMIN).get(SYNCS).content.decode()

    assert re.search(r'class="field-failures"><a href="[^"]+">3</a>', _row(page, "Failing"))
    assert 'class="field-failures">0<' in _row(page, "Clean")


@pytest.mark.django_db
def test_who_may_not_view_dead_letters_sees_the_count_without_a_link(hubspot, client_for):
    sync = make_sync(make_connection("hubspot", hubspot), name="Failing")
    _letters(sync, open_count=4)

    row = _row(client_for(roles.AUDITOR).get(SYNCS).content.decode(), "Failing")

    assert 'class="field-failures">4<' in row and LETTERS not in row


@pytest.mark.django_db
def test_the_sync_list_fits_1366_px_in_eight_columns(hubspot, client_for):
    make_sync(make_connection("hubspot", hubspot), name="One")

    page = client_for(roles.INTEGRATION_ADMIN).get(SYNCS).content.decode()

    head = re.search(r'<table id="result_list">.*?</thead>', page, re.S).group(0)
    headers = re.findall(r'<th scope="col"', head)
    assert len(headers) <= 9, len(headers)  # the action checkbox and 8 columns


def _listing_queries(client) -> int:
    client.get(SYNCS)  # the first page of a session also loads caches (content types, ...)
    with CaptureQueriesContext(db_connection) as queries:
        assert client.get(SYNCS).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_sync_list_costs_the_same_queries_for_2_syncs_as_for_20(
    hubspot, user_with_role, django_assert_max_num_queries
):
    connection = make_connection("hubspot", hubspot)
    syncs = [make_sync(connection, name=f"sync {i:02}", every_minutes=15) for i in range(2)]
    for sync in syncs:
        _every_15_minutes_last_sent(sync, minutes_ago=1)
        _letters(sync, open_count=1)
        SyncRun.objects.create(sync=sync, trigger="schedule", status="succeeded")
    client = _manager_client(user_with_role, *syncs)
    few = _listing_queries(client)

    more = [make_sync(connection, name=f"sync {i:02}", every_minutes=15) for i in range(2, 20)]
    for sync in more:
        _every_15_minutes_last_sent(sync, minutes_ago=1)
        _letters(sync, open_count=1)
        SyncRun.objects.create(sync=sync, trigger="schedule", status="succeeded")
    client = _manager_client(user_with_role, *syncs, *more)
    client.get(SYNCS)

    assert few <= 40, few
    with django_assert_max_num_queries(few):
        page = client.get(SYNCS).content.decode()
    assert page.count('class="field-next_run"') == 20


@pytest.mark.django_db
def test_the_list_sorts_by_failures_most_first(hubspot, client_for):
    connection = make_connection("hubspot", hubspot)
    for name, count in (("few", 1), ("many", 5), ("none", 0)):
        _letters(make_sync(connection, name=name), open_count=count)
    client = client_for(roles.INTEGRATION_ADMIN)
    columns = client.get(SYNCS).context["cl"].list_display
    failures, last_run = columns.index("failures"), columns.index("last_run")

    by_failures = client.get(SYNCS, {"o": str(failures)}).context["cl"].result_list
    by_last_run = client.get(SYNCS, {"o": str(last_run)})

    assert [sync.name for sync in by_failures] == ["many", "few", "none"]
    assert by_last_run.status_code == 200
