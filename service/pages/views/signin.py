"""Signing in with a token (a form POST, CSRF-checked) and signing out; see service/pages/guard.py."""
from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from audit.store import StoreUnavailable
from service.pages import guard
from service.pages.context import Pages, base_path, href


def login_form(pages: Pages, request: Request) -> Response:
    return _form(pages, request, status=200, error=None, wanted=request.query_params.get("next"))


async def login(pages: Pages, request: Request) -> Response:
    try:
        form = await guard.checked_form(request)
    except guard.FormError as err:
        return _form(pages, request, status=403, error=str(err), wanted=None)
    wanted = form.get("next")
    try:
        principal = await run_in_threadpool(pages.authenticator.principal, form.get("token", "").strip() or None)
    except (StoreUnavailable, SQLAlchemyError) as err:
        return unreadable(pages, request, err)
    if principal is None:
        return _form(pages, request, status=401, wanted=wanted,
                     error="That token was not accepted: it is unknown, expired or revoked. Ask an admin for a new one.")
    try:
        await run_in_threadpool(guard.record_view, pages.store, principal, request, allowed=guard.is_auditor(principal))
    except StoreUnavailable as err:
        return unrecorded(pages, request, err)
    if not guard.is_auditor(principal):
        return refused(pages, request, principal)
    response = RedirectResponse(guard.local_target(request, wanted), status_code=303)
    guard.set_cookie(response, request, guard.TOKEN_COOKIE, form["token"].strip(), forced_secure=pages.secure_cookies)
    return response


async def logout(pages: Pages, request: Request) -> Response:
    try:
        await guard.checked_form(request)
    except guard.FormError as err:
        return _form(pages, request, status=403, error=str(err), wanted=None)
    response = RedirectResponse(href(base_path(request), "/login"), status_code=303)
    guard.clear_cookie(response, request, guard.TOKEN_COOKIE, forced_secure=pages.secure_cookies)
    return response


def to_login(pages: Pages, request: Request) -> Response:
    """Nobody (valid) signed in: off to the sign-in page, coming back here afterwards."""
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(href(base_path(request), "/login", next=wanted), status_code=303)
    if guard.TOKEN_COOKIE in request.cookies:   # expired or revoked: forget it
        guard.clear_cookie(response, request, guard.TOKEN_COOKIE, forced_secure=pages.secure_cookies)
    return response


def refused(pages: Pages, request: Request, principal) -> Response:
    return pages.render(request, "message.html", principal, status=403, chain=False, title="Not allowed",
                        heading="Not allowed",
                        message=f"You are signed in as {principal.person}, who is not an auditor. Only the people "
                                "listed in [server] auditors of the service's configuration may see these pages; "
                                "ask an admin if you should be one. This visit was recorded.")


def unrecorded(pages: Pages, request: Request, err: Exception) -> Response:
    return pages.render(request, "message.html", None, status=503, chain=False, title="Not recorded",
                        heading="Your visit could not be recorded",
                        message=f"Looking at the trail is itself recorded, and the audit store could not record "
                                f"it ({err}), so nothing is shown. Try again once the store is back.")


def unreadable(pages: Pages, request: Request, err: Exception) -> Response:
    return pages.render(request, "message.html", None, status=503, chain=False, title="Store unavailable",
                        heading="The audit store cannot be read",
                        message=f"Who you are cannot be checked right now ({type(err).__name__}); try again "
                                "once the store is back.")


def _form(pages: Pages, request: Request, *, status: int, error: str | None, wanted: str | None) -> Response:
    return pages.render(request, "login.html", None, status=status, chain=False, title="Sign in", error=error,
                        wanted=guard.local_target(request, wanted))
