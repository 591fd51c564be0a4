"""The pages' Jinja2 environment: autoescaped, strict, and honest about hidden characters.

Every `{{ value }}` is HTML-escaped (autoescape), and before that any string has its control and
format characters (terminal escape codes, bidirectional overrides, zero-width spaces) shown as
`\\uXXXX` escapes (the `finalize` hook), so what an auditor reads is what the trail holds, in every
template, without a filter to forget. Only markup this package builds itself (the SVG plots, which
escape their own text) is passed through as Markup.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import jinja2
from markupsafe import Markup

from approvals.slack.text import visible


# Printable ASCII, newlines and tabs: nothing hidden, nothing to show as an escape (the common case, fast).
_PLAIN = re.compile(r"[\x20-\x7e\n\t]*")
# Only these collapse: str.split() would also swallow \x1c-\x1f, NBSP and line separators, hiding them.
_SPACES = re.compile(r"[ \t\r\n]+")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("service.pages", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, finalize=_finalize,
                             trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters.update(when=when, day=day, duration=duration, ms=ms, number=number, short=short, first_line=first_line)
    return env


def _finalize(value):
    if isinstance(value, Markup):
        return value
    if value is None:
        return "–"
    if isinstance(value, str):
        return value if _PLAIN.fullmatch(value) else visible(value)
    return value


def when(value: datetime | None) -> str:
    """
    >>> when(datetime(2026, 3, 1, 9, 0, 5, 123456, tzinfo=timezone.utc)), when(None)
    ('2026-03-01 09:00:05', '–')
    """
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if value else "–"


def day(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d") if value else ""


def duration(value: timedelta | float | None) -> str:
    """
    >>> duration(timedelta(seconds=42)), duration(timedelta(minutes=3, seconds=5)), duration(90061)
    ('42 s', '3 min 5 s', '1 d 1 h')
    """
    if value is None:
        return "–"
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def ms(value) -> str:
    return "–" if value is None else f"{float(value):,.1f} ms"


def number(value) -> str:
    return "–" if value is None else f"{int(value):,}"


def short(value: str | None, width: int = 12) -> str:
    """An id's first characters (the full id is in the link and the title)."""
    return "–" if not value else value[:width]


def first_line(value: str | None, width: int = 160) -> str:
    """
    >>> first_line("UPDATE t\\n   SET a = 1")
    'UPDATE t SET a = 1'
    """
    flat = _SPACES.sub(" ", value or "").strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"
