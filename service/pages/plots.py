"""Plots for the overview, drawn here as inline SVG: no script, no charting library, nothing fetched. PURE.

Each function returns markup whose every piece of text went through `escape` (labels come from the
trail: environment names are whatever a configuration said). Colours are SVG presentation attributes,
not style attributes, so the pages' Content-Security-Policy (no inline styles) holds. Every bar has a
<title>, which browsers show on hover, and the page shows the numbers as a table beside the plot.

>>> svg = stacked_bars(["2026-03-01", "2026-03-02"], {"production": [3, 0], "<staging>": [1, 2]}, "Writes per day")
>>> svg.count("<rect"), "&lt;staging&gt;" in svg, "<staging>" in svg
(5, True, False)
"""
from __future__ import annotations

from markupsafe import Markup, escape

PALETTE = ("#2f6690", "#d1495b", "#66a182", "#edae49", "#8e6c8a", "#3a7ca5", "#00798c", "#7a7265")
WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 28, 46


def stacked_bars(days: list[str], series: dict[str, list[int]], title: str) -> Markup:
    """One bar per day, stacked by series (an environment, a status); a legend above."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    top = _nice(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(days), 1)
    bar_w = max(step * 0.72, 1.0)
    parts = [_axes(top, plot_h)]
    for i, day in enumerate(days):
        x, y = LEFT + i * step + (step - bar_w) / 2, TOP + plot_h
        for n, (name, values) in enumerate(series.items()):
            value = values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[n % len(PALETTE)]}"><title>{escape(day)} {escape(name)}: {value}</title></rect>')
    parts += _day_labels(days, step)
    parts += _legend(list(series))
    return _svg(title, parts)


def histogram(buckets: list[tuple[str, int]], title: str) -> Markup:
    """One bar per bucket (e.g. time to approval: under a minute, 1-5 minutes, ...)."""
    top = _nice(max((n for _, n in buckets), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(buckets), 1)
    bar_w = step * 0.6
    parts = [_axes(top, plot_h)]
    for i, (label, count) in enumerate(buckets):
        h = plot_h * count / top
        x = LEFT + i * step + (step - bar_w) / 2
        parts.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                     f'fill="{PALETTE[0]}"><title>{escape(label)}: {count}</title></rect>')
        parts.append(f'<text class="label" x="{LEFT + i * step + step / 2:.1f}" y="{TOP + plot_h + 16}" '
                     f'text-anchor="middle">{escape(label)}</text>')
        if count:
            parts.append(f'<text class="value" x="{LEFT + i * step + step / 2:.1f}" y="{TOP + plot_h - h - 4:.1f}" '
                         f'text-anchor="middle">{count}</text>')
    return _svg(title, parts)


DECISION_BUCKETS = ((60, "< 1 min"), (300, "1–5 min"), (900, "5–15 min"), (3600, "15–60 min"),
                    (4 * 3600, "1–4 h"), (24 * 3600, "4–24 h"), (float("inf"), "> 1 day"))


def decision_buckets(seconds: list[float]) -> list[tuple[str, int]]:
    """
    >>> decision_buckets([5, 59, 60, 4000, 100000])
    [('< 1 min', 2), ('1–5 min', 1), ('5–15 min', 0), ('15–60 min', 0), ('1–4 h', 1), ('4–24 h', 0), ('> 1 day', 1)]
    """
    counts = [0] * len(DECISION_BUCKETS)
    for s in seconds:
        counts[next(i for i, (limit, _) in enumerate(DECISION_BUCKETS) if s < limit)] += 1
    return [(label, counts[i]) for i, (_, label) in enumerate(DECISION_BUCKETS)]


def _svg(title: str, parts: list[str]) -> Markup:
    body = "".join(parts)
    return Markup(f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
                  f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
                  f'<title>{escape(title)}</title>{body}</svg>')


def _axes(top: int, plot_h: float) -> str:
    lines = []
    for k in range(5):
        value = top * k / 4
        y = TOP + plot_h - plot_h * k / 4
        lines.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                     f'stroke="#d9dee3" stroke-width="1"/>')
        lines.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_tick(value)}</text>')
    return "".join(lines)


def _day_labels(days: list[str], step: float) -> list[str]:
    every = max(1, len(days) // 10)     # at most about ten labels under the bars
    return [f'<text class="label" x="{LEFT + i * step + step / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="middle">{escape(day[5:])}</text>'
            for i, day in enumerate(days) if i % every == 0]


def _legend(names: list[str]) -> list[str]:
    parts, x = [], LEFT
    for n, name in enumerate(names):
        label = escape(name if len(name) <= 24 else name[:23] + "…")
        parts.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{PALETTE[n % len(PALETTE)]}"/>'
                     f'<text class="legend" x="{x + 14}" y="17">{label}</text>')
        x += 28 + 7 * len(str(label))
    return parts


def _nice(value: int) -> int:
    """A round top for the axis at or above `value`: four grid steps of 1, 2 or 5 times a power of ten,
    so every tick is a whole number (never 0: an empty plot still has an axis).

    >>> _nice(0), _nice(5), _nice(7), _nice(23), _nice(180), _nice(1001)
    (4, 8, 8, 40, 200, 2000)
    """
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if 4 * step * magnitude >= value:
                return 4 * step * magnitude
        magnitude *= 10


def _tick(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
