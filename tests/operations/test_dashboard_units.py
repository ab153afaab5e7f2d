"""The dashboard's numbers as a person reads them (issue 13: "the latency target as 84572.7 s
with run counts on ticks of 1.25"): durations in ms, s, min, h and d; count axes in whole
numbers."""

from __future__ import annotations

import re
from datetime import date

import pytest

from integrations.operations.charts import stacked_bars
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


def _tick_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end" fill="#616161">([^<]*)</text>', svg)


@pytest.mark.parametrize(
    ("most", "ticks"),
    [
        (3, ["0", "1", "2", "3", "4", "5"]),
        (2, ["0", "1", "2"]),
        (7, ["0", "2", "4", "6", "8", "10"]),
        (21, ["0", "5", "10", "15", "20", "25"]),
        (80, ["0", "25", "50", "75", "100"]),
    ],
)
def test_count_charts_are_ticked_in_whole_numbers(most, ticks):
    """Runs per day are counted in whole runs: an axis of 0, 1.25, 2.5 reads as nonsense."""
    days = [date(2026, 12, 1), date(2026, 12, 2)]
    svg = str(stacked_bars("Sync runs per day by outcome", days, {"succeeded": [most, 1]}))

    assert _tick_labels(svg) == ticks
