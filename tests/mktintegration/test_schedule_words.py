"""A sync's schedule in words next to its cron, with the next three run times, as beat will
run it (issue 13: "the schedule in words next to the cron")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mktintegration.scheduling import cron_next, schedule_words
from tests.integrations.conftest import make_connection, make_sync

FRIDAY_7AM = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "every", "words"),
    [
        ("*/15 * * * *", None, "Every 15 minutes, UTC"),
        ("30 6 * * 1-5", None, "At 06:30, Monday through Friday, UTC"),
        ("0 0 1 * *", None, "At 00:00, on day 1 of the month, UTC"),
        ("", 90, "every 90 minutes"),
        ("", 120, "every 2 hours"),
        ("", None, "manual runs only"),
        ("61 * * * *", None, "61 * * * * (not a valid cron expression)"),
    ],
)
def test_a_schedule_is_said_in_words(cron, every, words):
    assert schedule_words(cron=cron, every_minutes=every) == words


def test_the_next_runs_of_a_weekday_schedule_skip_the_weekend():
    times = cron_next("30 6 * * 1-5", after=FRIDAY_7AM)

    assert [f"{t:%a %d %H:%M}" for t in times] == ["Mon 07 06:30", "Tue 08 06:30", "Wed 09 06:30"]


def test_the_next_runs_come_after_the_moment_asked_and_a_cron_that_never_fires_has_none():
    at = datetime(2026, 12, 4, 7, 15, tzinfo=UTC)
    assert [f"{t:%H:%M}" for t in cron_next("*/15 * * * *", after=at)] == [
        "07:30",
        "07:45",
        "08:00",
    ]
    assert cron_next("0 0 30 2 *", after=at) == []


@pytest.mark.django_db
def test_the_sync_page_shows_the_schedule_in_words_and_the_next_runs(hubspot, client_for, clock):
    from mktintegration import roles

    clock.now = FRIDAY_7AM.timestamp()
    sync = make_sync(make_connection("hubspot", hubspot), cron="30 6 * * 1-5")
    client = client_for(roles.INTEGRATION_ADMIN)

    page = client.get(f"/admin/integrations/sync/{sync.pk}/change/").content.decode()
    listing = client.get("/admin/integrations/sync/").content.decode()

    assert "At 06:30, Monday through Friday, UTC. Next runs: Mon 2026-12-07 06:30" in page
    assert "At 06:30, Monday through Friday, UTC" in listing
