"""Exports: a session as a transcript (text) and as JSON Lines, and the trail for a date range as JSON
Lines in exactly the form `countersign audit export` writes (audit/serialize.py), chain fields and
all, so a third party can check every hash and link without Countersign.

A date range exports one unbroken stretch of the chain: from the first event recorded on the first
day to the last one recorded on the last day, in seq order, streamed a batch at a time.
"""
from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from audit.serialize import event_json, export_line
from service.pages import params, queries
from service.pages.context import Pages
from service.pages.transcript import transcript
from service.pages.views.sessions import not_found, session_timeline


def export_form(pages: Pages, request: Request, principal) -> Response:
    since, until, problems = params.date_range(request.query_params, pages.now().date())
    return pages.render(request, "export.html", principal, active="export", title="Export", since=since, until=until,
                        problems=problems)


def trail_jsonl(pages: Pages, request: Request, principal) -> Response:
    since, until, _problems = params.date_range(request.query_params, pages.now().date())
    with pages.reading() as conn:
        stretch = queries.seq_range(conn, params.day_start(since), params.day_start(until + timedelta(days=1)))
    name = f"countersign-audit-{since.isoformat()}-to-{until.isoformat()}.jsonl"
    if stretch is None:
        return _attachment(PlainTextResponse("", media_type="application/x-ndjson"), name)

    def lines():
        with pages.reading() as conn:
            for batch in queries.events_between(conn, *stretch):
                yield "".join(export_line(event_json(e)) + "\n" for e in batch)
    return _attachment(StreamingResponse(lines(), media_type="application/x-ndjson"), name)


def session_jsonl(pages: Pages, request: Request, principal) -> Response:
    session_id = request.path_params["session_id"]
    with pages.reading() as conn:
        row = queries.session(conn, session_id)
        if row is None:
            return not_found(pages, request, principal, f"no session {session_id}")
        events = queries.session_events(conn, session_id, limit=10**9)
    body = "".join(export_line(event_json(e)) + "\n" for e in events)
    return _attachment(Response(body, media_type="application/x-ndjson"), f"countersign-session-{session_id}.jsonl")


def session_transcript(pages: Pages, request: Request, principal) -> Response:
    session_id = request.path_params["session_id"]
    with pages.reading() as conn:
        row = queries.session(conn, session_id)
        if row is None:
            return not_found(pages, request, principal, f"no session {session_id}")
        entries = session_timeline(conn, pages, queries.session_events(conn, session_id, limit=10**9))
    text = transcript(row, entries, pages.chain.state(), pages.engines.get(row.target))
    return _attachment(PlainTextResponse(text), f"countersign-session-{session_id}.txt")


def _attachment(response: Response, name: str) -> Response:
    response.headers["content-disposition"] = f'attachment; filename="{name}"'
    return response
