"""Durations on the dashboard in the units a person reads (issue 13: "the latency target as
84572.7 s"): milliseconds, seconds, minutes, hours and days, never thousands of seconds."""

from __future__ import annotations

import pytest

from mktintegration.templatetags.mkt_units import duration


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.85, "850 ms"),
        (4.25, "4.2 s"),
        (12.4, "12 s"),
        (200, "3 min 20 s"),
        (600, "10 min"),
        (84_572.7, "23 h 29 min"),
        (7_200, "2 h"),
        (187_200, "2 d 4 h"),
        (None, ""),
        ("n/a", ""),
        (float("nan"), ""),
        (-3, ""),
    ],
)
def test_a_duration_is_shown_in_human_units(seconds, shown):
    assert duration(seconds) == shown
