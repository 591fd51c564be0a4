"""The login routes of the team API (wire protocol v1); no token is needed to log in.

    POST /api/v1/login       {"person", "host"} -> {"login_id", "poll_secret", "expires_at"}
    POST /api/v1/login/poll  {"login_id", "poll_secret", "wait"?} -> {"status": ...} (+ the token, once)
    POST /api/v1/logout      Authorization: Bearer <token> -> {"revoked": id}: a person ends their own token

Errors are ``{"error": {"type", "message"}}``: 401 no usable token, 404 no such login, 413 a body too
large, 422 bad arguments, 429 too many logins (with Retry-After), 503 the store is unavailable. A
long-poll waits on the event loop, not on a worker thread, so waiting consoles never starve the
threads that take Slack's clicks.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from audit.store import StoreUnavailable
from service.auth import bearer
from service.login import MAX_WAIT, PENDING, REREAD, BadLogin, LoginError, Logins, TooManyLogins, UnknownLogin

log = logging.getLogger("countersign.serve.login")
MAX_BODY = 16 * 1024


def routes(logins: Logins) -> list[Route]:
    async def start(request: Request) -> JSONResponse:
        body = await _body(request)
        person, host = body.get("person"), body.get("host")
        if not isinstance(person, str) or not isinstance(host, str):
            raise BadLogin('send {"person": "<your name>", "host": "<this machine\'s name>"}')
        address = request.client.host if request.client else None
        started = await run_in_threadpool(logins.start, person, host, address)
        return JSONResponse({"login_id": started.login_id, "poll_secret": started.poll_secret,
                             "expires_at": started.expires_at.isoformat()})

    async def poll(request: Request) -> JSONResponse:
        body = await _body(request)
        login_id, secret, wait = body.get("login_id"), body.get("poll_secret"), body.get("wait", 0)
        if not isinstance(login_id, str) or not isinstance(secret, str) or isinstance(wait, bool) \
                or not isinstance(wait, (int, float)):
            raise BadLogin('send {"login_id": "...", "poll_secret": "...", "wait": <seconds, at most 30>}')
        state = await _long_poll(request, logins, login_id, secret, max(0.0, min(float(wait), MAX_WAIT)))
        return JSONResponse(state.to_json())

    async def logout(request: Request) -> JSONResponse:
        revoked = await run_in_threadpool(logins.logout, bearer(request.headers.get("authorization")))
        if revoked is None:
            return _error(401, "NotAuthenticated", "no usable token (it expired or was revoked already); "
                                                   "you are logged out")
        return JSONResponse({"revoked": revoked.id})

    return [Route("/api/v1/login", _answering(start), methods=["POST"]),
            Route("/api/v1/login/poll", _answering(poll), methods=["POST"]),
            Route("/api/v1/logout", _answering(logout), methods=["POST"])]


async def _long_poll(request: Request, logins: Logins, login_id: str, secret: str, wait: float):
    """Check, then sleep on the event loop until a click here answers a login (or REREAD passes, for a
    click taken by another `serve` process sharing the store), until the deadline, or until the console
    goes away (Ctrl-C): nobody is left waiting for it."""
    loop, changed = asyncio.get_running_loop(), asyncio.Event()
    deadline = time.monotonic() + wait
    with logins.watching(lambda: loop.call_soon_threadsafe(changed.set)):
        while True:
            changed.clear()
            state = await run_in_threadpool(logins.check, login_id, secret)
            left = deadline - time.monotonic()
            if state.status != PENDING or left <= 0:
                return state
            try:
                await asyncio.wait_for(changed.wait(), timeout=min(left, REREAD))
            except asyncio.TimeoutError:
                pass
            if await request.is_disconnected():
                return state


def _answering(handler):
    """The handler, its refusals as the wire protocol's JSON errors, and never a traceback."""
    async def route(request: Request) -> JSONResponse:
        try:
            return await handler(request)
        except TooManyLogins as err:
            return _error(429, type(err).__name__, str(err), {"Retry-After": str(err.retry_after)})
        except UnknownLogin as err:
            return _error(404, type(err).__name__, str(err))
        except _TooLarge as err:
            return _error(413, "BadLogin", str(err))
        except LoginError as err:
            return _error(422, type(err).__name__, str(err))
        except StoreUnavailable as err:
            return _error(503, type(err).__name__, f"{err}; try again shortly")
        except Exception:  # noqa: BLE001 - logged here; the caller gets one line, never a traceback
            log.exception("login route %s failed", request.url.path)
            return _error(500, "InternalError", "the service failed to answer; an operator can find why in its log")
    return route


class _TooLarge(LoginError):
    pass


async def _body(request: Request) -> dict:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise _TooLarge(f"the request body is over {MAX_BODY} bytes")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadLogin("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise BadLogin("the request body must be a JSON object")
    return body


def _error(status: int, kind: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)
