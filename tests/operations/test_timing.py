"""Cron arithmetic for next runs and missed ticks (UTC, Celery's crontab day rules)."""

from datetime import UTC, datetime

from integrations.operations.timing import cron_next, cron_previous


def at(*parts):
    return datetime(*parts, tzinfo=UTC)


def test_next_and_previous_tick_of_a_weekday_schedule():
    # 2026-11-27 is a Friday.
    assert cron_next("30 6 * * 1-5", at(2026, 11, 27, 7, 0)) == at(2026, 11, 30, 6, 30)
    assert cron_previous("30 6 * * 1-5", at(2026, 11, 29, 12, 0)) == at(2026, 11, 27, 6, 30)
    assert cron_previous("30 6 * * 1-5", at(2026, 11, 30, 6, 30)) == at(2026, 11, 30, 6, 30)


def test_every_fifteen_minutes():
    assert cron_next("*/15 * * * *", at(2026, 11, 29, 10, 14, 59)) == at(2026, 11, 29, 10, 15)
    assert cron_next("*/15 * * * *", at(2026, 11, 29, 23, 50)) == at(2026, 11, 30, 0, 0)
    assert cron_previous("*/15 * * * *", at(2026, 11, 29, 10, 14)) == at(2026, 11, 29, 10, 0)


def test_leap_day_is_found():
    assert cron_next("0 12 29 2 *", at(2026, 3, 1)) == at(2028, 2, 29, 12, 0)
