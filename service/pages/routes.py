"""The auditor's pages as routes for `countersign serve`: `routes(store, authenticator, ...)` returns one
Mount at /audit holding its own small Starlette app (its security headers and error pages apply to it
alone, not to the Slack endpoint).

Every page goes through `_page`: the token cookie -> the principal (service/auth.py) -> auditors only
(others 403, nobody 303 to /audit/login) -> the view recorded in the trail -> the view, run in a
worker thread (the store is synchronous).
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable, Mapping

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from audit.store import Store, StoreUnavailable
from service.pages import guard
from service.pages.chain_state import ChainWatch
from service.pages.context import Pages
from service.pages.templating import environment
from service.pages.views import approvals, exports, overview, sessions, signin, snapshots

STATIC = Path(__file__).resolve().parent / "static"


def routes(store: Store, authenticator: guard.Authenticator, *, engines: Mapping[str, str] | None = None,
           redact: Callable[[str], str] | None = None, chain: ChainWatch | None = None, chain_ttl: float = 60.0,
           secure_cookies: bool | None = None, clock: Callable[[], datetime] | None = None,
           path: str = "/audit") -> list[BaseRoute]:
    """The pages, mounted at `path`.

    engines: target name -> engine, for the sessions' engine filter (the trail records targets by name).
    redact: hides secret literals in statements shown on the pages and in transcripts (the JSON Lines
    exports keep the real text, as `audit export` does). chain / chain_ttl: how the chain's state is kept
    (chain_state.py). secure_cookies: None sets Secure on cookies when the request came over https.
    """
    pages = Pages(store=store, authenticator=authenticator, chain=chain or ChainWatch(store, ttl=chain_ttl),
                  env=environment(), engines=dict(engines or {}), redact=redact or (lambda text: text),
                  clock=clock or (lambda: datetime.now(timezone.utc)), secure_cookies=secure_cookies)
    page = lambda view: _page(pages, view)  # noqa: E731 - one line per route below reads best
    app = Starlette(
        routes=[
            Route("/", page(overview.overview), methods=["GET"]),
            Route("/sessions", page(sessions.sessions), methods=["GET"]),
            Route("/sessions/{session_id}", page(sessions.session), methods=["GET"]),
            Route("/sessions/{session_id}/transcript.txt", page(exports.session_transcript), methods=["GET"]),
            Route("/sessions/{session_id}/events.jsonl", page(exports.session_jsonl), methods=["GET"]),
            Route("/approvals", page(approvals.approvals), methods=["GET"]),
            Route("/snapshots", page(snapshots.snapshots), methods=["GET"]),
            Route("/snapshots/{snapshot_id}", page(snapshots.snapshot), methods=["GET"]),
            Route("/export", page(exports.export_form), methods=["GET"]),
            Route("/export/trail.jsonl", page(exports.trail_jsonl), methods=["GET"]),
            Route("/login", partial(signin.login_form, pages), methods=["GET"]),
            Route("/login", partial(signin.login, pages), methods=["POST"]),
            Route("/logout", partial(signin.logout, pages), methods=["POST"]),
            Route("/static/pages.css", _stylesheet, methods=["GET"]),
        ],
        middleware=[Middleware(guard.SecurityHeaders)],
        exception_handlers={HTTPException: _http_error},
    )
    return [Mount(path, app=app)]


def _page(pages: Pages, view) -> Callable:
    async def endpoint(request: Request) -> Response:
        secret = request.cookies.get(guard.TOKEN_COOKIE)
        try:
            principal = await run_in_threadpool(pages.authenticator.principal, secret) if secret else None
        except (StoreUnavailable, SQLAlchemyError) as err:    # who is asking cannot be told: show nothing
            return signin.unreadable(pages, request, err)
        if principal is None:
            return signin.to_login(pages, request)
        allowed = guard.is_auditor(principal)
        try:
            await run_in_threadpool(guard.record_view, pages.store, principal, request, allowed=allowed)
        except StoreUnavailable as err:
            return signin.unrecorded(pages, request, err)
        if not allowed:
            return signin.refused(pages, request, principal)
        try:
            return await run_in_threadpool(view, pages, request, principal)
        except StoreUnavailable as err:
            return pages.render(request, "message.html", principal, status=503, chain=False, title="Store unavailable",
                                heading="The audit store cannot be read", message=str(err))
    return endpoint


def _stylesheet(_request: Request) -> Response:
    return FileResponse(STATIC / "pages.css", media_type="text/css")


async def _http_error(_request: Request, exc: HTTPException) -> Response:
    # Plain text: an error page must not need the store (or reveal anything) to be drawn.
    return PlainTextResponse(f"{exc.status_code} {exc.detail}\n", status_code=exc.status_code)
