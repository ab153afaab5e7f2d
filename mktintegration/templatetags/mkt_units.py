"""``{{ seconds|duration }}``: a duration in the units a person reads ("850 ms", "12.4 s",
"3 min 20 s", "23 h 29 min", "2 d 4 h"), not thousands of seconds; ``{{ n|count }}``: a
whole number with thousands separators ("4,001")."""

from __future__ import annotations

import math

from django import template

register = template.Library()


@register.filter
def duration(seconds) -> str:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(value) or value < 0:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"
    whole = round(value)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


@register.filter
def count(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return "" if value is None else str(value)
    return f"{value:,}"
