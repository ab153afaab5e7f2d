"""Server-rendered inline SVG charts for the dashboard: no JavaScript, no CDN.

Every value is also in a <title> (the browser shows it on hover, screen readers read it),
and every text is escaped.
"""

from __future__ import annotations

from datetime import date

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 140, 30, 28
PALETTE = {
    "succeeded": "#2e7d32",
    "partial": "#f9a825",
    "deferred": "#ff8f00",
    "failed": "#c62828",
    "paused": "#6d4c41",
    "skipped": "#9e9e9e",
    "created": "#2e7d32",
    "updated": "#1565c0",
    "unchanged": "#b0bec5",
    "deleted": "#6a1b9a",
    "invalid": "#ef6c00",
    "suppressed": "#8d6e63",
    "blocked": "#455a64",
    "rejected": "#d84315",
    "dead_lettered": "#880e4f",
    "rows": "#1565c0",
}
_FALLBACK = ["#00838f", "#5d4037", "#7cb342", "#3949ab", "#d81b60", "#fb8c00"]


def _color(name: str, index: int) -> str:
    return PALETTE.get(name, _FALLBACK[index % len(_FALLBACK)])


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:g}"


def _intervals(top: float, *, counts: bool) -> int:
    """How many gridline intervals the axis has: four, or for counts as many as give whole
    numbers (a top of 5 is ticked 0, 1, 2, 3, 4, 5, never 1.25)."""
    if not counts:
        return 4
    for n in (4, 5, 2, 1):
        if float(top / n).is_integer():
            return n
    return 1


def _frame(
    title: str,
    top: float,
    parts: list[str],
    legend: list[tuple[str, str]],
    *,
    counts: bool = False,
) -> SafeString:
    plot_h = HEIGHT - TOP - BOTTOM
    intervals = _intervals(top, counts=counts)
    svg = [
        f'<svg class="mkt-chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold" fill="#212121">'
        f"{escape(title)}</text>",
    ]
    for tick in range(intervals + 1):
        value = top * tick / intervals
        y = TOP + plot_h - plot_h * tick / intervals
        svg.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e0e0e0"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="#616161">{escape(_fmt(value))}</text>'
        )
    svg += parts
    for index, (label, color) in enumerate(legend):
        y = TOP + 4 + index * 16
        svg.append(
            f'<rect x="{WIDTH - RIGHT + 12}" y="{y}" width="10" height="10" fill="{color}"/>'
            f'<text x="{WIDTH - RIGHT + 28}" y="{y + 9}" font-size="11" fill="#212121">'
            f"{escape(label)}</text>"
        )
    svg.append("</svg>")
    return mark_safe("".join(svg))  # noqa: S308 - every text above is escaped


def stacked_bars(title: str, days: list[date], series: dict[str, list[float]]) -> SafeString:
    """One bar per day, stacked by series (e.g. runs by outcome)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    top = _nice_max(max(totals, default=0))
    slot = plot_w / max(len(days), 1)
    parts = []
    for i, day in enumerate(days):
        x = LEFT + i * slot + slot * 0.15
        y = TOP + plot_h
        for index, (name, values) in enumerate(series.items()):
            value = values[i]
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{_color(name, index)}"><title>{escape(f"{day:%b %d} {name}: {value:g}")}'
                "</title></rect>"
            )
        if len(days) <= 16 or i % 2 == 0:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - 10}" font-size="9" '
                f'text-anchor="middle" fill="#616161">{day:%d %b}</text>'
            )
    legend = [(name, _color(name, i)) for i, name in enumerate(series)]
    return _frame(title, top, parts, legend, counts=True)


def lines(
    title: str, days: list[date], series: dict[str, list[float | None]], *, top: float | None = None
) -> SafeString:
    """One line per series over the days (gaps where a value is None), e.g. uptime %."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for vs in series.values() for v in vs if v is not None]
    top = top or _nice_max(max(values, default=0))
    step = plot_w / max(len(days) - 1, 1)
    parts = []
    for index, (name, points) in enumerate(series.items()):
        color = _color(name, index)
        path, pen = [], "M"
        for i, value in enumerate(points):
            if value is None:
                pen = "M"
                continue
            x, y = LEFT + i * step, TOP + plot_h - plot_h * value / top
            path.append(f"{pen}{x:.1f},{y:.1f}")
            pen = "L"
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"><title>'
                f"{escape(f'{days[i]:%b %d} {name}: {value:g}')}</title></circle>"
            )
        if path:
            parts.insert(
                0, f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
    for i, day in enumerate(days):
        if len(days) <= 16 or i % 2 == 0:
            parts.append(
                f'<text x="{LEFT + i * step:.1f}" y="{HEIGHT - 10}" font-size="9" '
                f'text-anchor="middle" fill="#616161">{day:%d %b}</text>'
            )
    legend = [(name, _color(name, i)) for i, name in enumerate(series)]
    return _frame(title, top, parts, legend)
