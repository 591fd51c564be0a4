"""The overview: the last 30 days as plots (writes and approvals per day per environment, time to a
decision, refused and rejected commands), and the numbers behind each plot as a table."""
from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from service.pages import params, plots, queries
from service.pages.context import Pages

DAYS = 30


def overview(pages: Pages, request: Request, principal) -> Response:
    now = pages.now()
    first = now.date() - timedelta(days=DAYS - 1)
    since = params.day_start(first)
    with pages.reading() as conn:
        writes = queries.writes_per_day(conn, since)
        approvals = queries.approvals_per_day(conn, since)
        refused = queries.refused_per_day(conn, since)
        seconds = queries.decision_seconds(conn, since)
        pending = queries.pending_count(conn, now)
        recent = queries.sessions_since(conn, now - timedelta(days=1))
    days = [(first + timedelta(days=i)).isoformat() for i in range(DAYS)]
    charts = [
        _chart("writes", "Commands that wrote, per day and environment", days, writes),
        _chart("approvals", "Approval requests, per day and environment", days, approvals),
        _chart("refused", "Commands refused by policy or rejected by a reviewer, per day", days, refused),
    ]
    buckets = plots.decision_buckets(seconds)
    return pages.render(request, "overview.html", principal, active="overview", title="Overview", charts=charts,
                        decisions=plots.histogram(buckets, "Time from request to decision"), buckets=buckets,
                        decided=len(seconds), pending=pending, recent=recent, days=DAYS)


def series(counts: list[queries.DayCount], days: list[str]) -> dict[str, list[int]]:
    """Per-day counts as one list per series (environment or status), every day present.

    >>> series([queries.DayCount("2026-03-02", "prod", 4)], ["2026-03-01", "2026-03-02"])
    {'prod': [0, 4]}
    """
    index = {day: i for i, day in enumerate(days)}
    out: dict[str, list[int]] = {}
    for c in sorted(counts, key=lambda c: c.series):
        if c.day in index:
            out.setdefault(c.series, [0] * len(days))[index[c.day]] += c.count
    return out


def _chart(key: str, title: str, days: list[str], counts: list[queries.DayCount]) -> dict:
    data = series(counts, days)
    rows = [(day, [values[i] for values in data.values()]) for i, day in enumerate(days)
            if any(values[i] for values in data.values())]
    return {"key": key, "title": title, "svg": plots.stacked_bars(days, data, title), "series": data,
            "rows": rows, "total": sum(sum(v) for v in data.values())}
