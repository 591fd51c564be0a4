"""The sessions list (filters, search, keyset pages) and one session's timeline."""
from __future__ import annotations

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from service.pages import params, queries, timeline
from service.pages.context import Pages


def sessions(pages: Pages, request: Request, principal) -> Response:
    where, problems = params.session_filter(request.query_params)
    after = queries.Cursor.parse(request.query_params.get("after"))
    before = queries.Cursor.parse(request.query_params.get("before"))
    with pages.reading() as conn:
        page = queries.sessions_page(conn, where, after=after, before=before, engines=pages.engines)
    return pages.render(request, "sessions.html", principal, active="sessions", title="Sessions", page=page,
                        where=where, problems=problems, query=params.filter_params(where),
                        suggestions=pages.suggestions(), engines=sorted(set(pages.engines.values())),
                        engine_of=pages.engines)


def session(pages: Pages, request: Request, principal) -> Response:
    session_id = request.path_params["session_id"]
    after_seq = _int(request.query_params.get("after_seq"))
    with pages.reading() as conn:
        row = queries.session(conn, session_id)
        if row is None:
            return not_found(pages, request, principal, f"no session {session_id}")
        events = queries.session_events(conn, session_id, after_seq=after_seq)
        entries = session_timeline(conn, pages, events)
        slack = queries.slack_posts(conn, [f"session:{session_id}"])
    more = events[-1].seq if len(events) >= queries.TIMELINE_LIMIT else None
    thread = timeline.slack_url(*slack[f"session:{session_id}"]) if slack else None
    return pages.render(request, "session.html", principal, active="sessions", title=f"Session {session_id[:8]}",
                        session=row, entries=entries, engine=pages.engines.get(row.target), slack_thread=thread,
                        more_after=more, after_seq=after_seq)


def session_timeline(conn: Connection, pages: Pages, events) -> tuple[timeline.Entry, ...]:
    """The session's commands with the store's records of their approvals and snapshots."""
    approval_ids = sorted({e.payload.get("approval_id") for e in events if e.type == "intent"
                           and isinstance(e.payload, dict) and e.payload.get("approval_id")})
    snapshot_ids: set[str] = set()
    for e in events:
        if isinstance(e.payload, dict) and e.type == "outcome" and e.payload.get("snapshot_id"):
            snapshot_ids.add(e.payload["snapshot_id"])
        if isinstance(e.payload, dict) and e.type == "commit":
            snapshot_ids.update(s for s in e.payload.get("snapshot_ids") or () if isinstance(s, str))
    ids = sorted(snapshot_ids)
    return timeline.build(events, approvals=queries.approvals_by_id(conn, approval_ids),
                          snapshots=queries.snapshots_by_id(conn, ids), changes=queries.snapshot_changes(conn, ids),
                          slack=queries.slack_posts(conn, [f"approval:{a}" for a in approval_ids]),
                          now=pages.now(), redact=pages.redact)


def not_found(pages: Pages, request: Request, principal, what: str) -> Response:
    return pages.render(request, "message.html", principal, status=404, title="Not found", heading="Not found",
                        message=what)


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0
