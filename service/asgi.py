"""The HTTP face of `countersign serve`: POST /slack/events (Bolt) and GET /healthz."""
from __future__ import annotations

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.outbox import Outbox


def build_asgi(bolt: App, outbox: Outbox) -> Starlette:
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        # Bolt is synchronous: run it off the event loop so one slow click never stalls the others.
        response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(response)

    async def healthz(_request: Request) -> Response:
        status, body = await run_in_threadpool(health, outbox)
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/slack/events", slack_events, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])])


def health(outbox: Outbox) -> tuple[int, dict]:
    """200 and a small summary when the store answers; 503 and the reason when it does not."""
    try:
        with outbox.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return 200, {"ok": True, "store": outbox.engine.dialect.name, "outbox_waiting": outbox.waiting(),
                     "poster": outbox.holder()}
    except Exception as err:  # noqa: BLE001 - any failure means "not healthy", said plainly
        return 503, {"ok": False, "error": f"the store is not reachable: {type(err).__name__}"}
