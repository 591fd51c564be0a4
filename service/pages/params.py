"""Query strings -> the values the queries take, checked. PURE.

A malformed value never reaches SQL and never fails the page: it is dropped and named in `problems`,
which the page shows above its results.

>>> f, problems = session_filter({"person": " alice ", "from": "2026-03-01", "to": "yesterday", "wrote": "1"})
>>> f.person, f.since, f.until, f.wrote, problems
('alice', datetime.date(2026, 3, 1), None, True, ["'to' must be a date like 2026-03-01, not 'yesterday'"])
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Mapping

from service.pages.queries import APPROVAL_VIEWS, SessionFilter

MAX_TEXT = 200
MIN_SEARCH = 2


def session_filter(params: Mapping[str, str]) -> tuple[SessionFilter, list[str]]:
    problems: list[str] = []
    search = _text(params, "q", problems)
    if search is not None and len(search) < MIN_SEARCH:
        problems.append(f"search for at least {MIN_SEARCH} characters")
        search = None
    since, until = _date(params, "from", problems), _date(params, "to", problems)
    if since and until and until < since:
        problems.append("'to' is before 'from'; showing nothing until that is fixed")
    return SessionFilter(person=_text(params, "person", problems), target=_text(params, "target", problems),
                         environment=_text(params, "environment", problems), engine=_text(params, "engine", problems),
                         since=since, until=until, wrote=_flag(params, "wrote"), refused=_flag(params, "refused"),
                         search=search), problems


def filter_params(f: SessionFilter) -> dict[str, str]:
    """The query string that selects `f` again (for page links).

    >>> filter_params(SessionFilter(person="alice", wrote=True))
    {'person': 'alice', 'wrote': '1'}
    """
    values = {"person": f.person, "target": f.target, "environment": f.environment, "engine": f.engine,
              "from": f.since.isoformat() if f.since else None, "to": f.until.isoformat() if f.until else None,
              "wrote": "1" if f.wrote else None, "refused": "1" if f.refused else None, "q": f.search}
    return {k: v for k, v in values.items() if v}


def approval_view(params: Mapping[str, str]) -> str:
    """
    >>> approval_view({"status": "expired"}), approval_view({"status": "<x>"}), approval_view({})
    ('expired', 'pending', 'pending')
    """
    view = params.get("status", "pending")
    return view if view in APPROVAL_VIEWS else "pending"


def date_range(params: Mapping[str, str], today: date) -> tuple[date, date, list[str]]:
    """An export's from/to days (inclusive); the last 30 days when not given.

    >>> date_range({"from": "2026-03-01", "to": "2026-03-31"}, date(2026, 4, 2))[:2]
    (datetime.date(2026, 3, 1), datetime.date(2026, 3, 31))
    >>> date_range({}, date(2026, 4, 2))[:2]
    (datetime.date(2026, 3, 4), datetime.date(2026, 4, 2))
    """
    problems: list[str] = []
    until = _date(params, "to", problems) or today
    since = _date(params, "from", problems) or until - timedelta(days=29)
    if until < since:
        problems.append("'to' is before 'from'")
        since, until = until, since
    return since, until, problems


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _text(params: Mapping[str, str], name: str, problems: list[str]) -> str | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    if len(value) > MAX_TEXT:
        problems.append(f"'{name}' is longer than {MAX_TEXT} characters; ignored")
        return None
    return value


def _date(params: Mapping[str, str], name: str, problems: list[str]) -> date | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"'{name}' must be a date like 2026-03-01, not {value[:40]!r}")
        return None


def _flag(params: Mapping[str, str], name: str) -> bool:
    return (params.get(name) or "").lower() in ("1", "on", "true", "yes")
