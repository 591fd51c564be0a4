"""The HTTP face of `countersign serve`: POST /slack/events (Bolt), plus the routes and middleware the
composition root hands in (service/health.py's /healthz and /readyz, service/metrics.py's /metrics)."""
from __future__ import annotations

from typing import Sequence

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route


def build_asgi(bolt: App, routes: Sequence[BaseRoute] = (), middleware: Sequence[Middleware] = ()) -> Starlette:
    """`middleware` wraps every route, outermost first."""
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        # Bolt is synchronous: run it off the event loop so one slow click never stalls the others.
        response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(response)

    return Starlette(routes=[Route("/slack/events", slack_events, methods=["POST"]), *routes],
                     middleware=list(middleware))
