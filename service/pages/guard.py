"""Who may look at the auditor's pages, and what no page can be made to do.

- The browser proves who it is with an API token (service/tokens.py) pasted once at /audit/login;
  the token then travels in an HttpOnly, SameSite=Strict cookie scoped to the pages' path (Secure
  over https), so page scripts cannot read it and other sites cannot send it. Every request looks the
  token up again, so an expired or revoked token is refused on its next use.
- Only people with the auditor role see a page; anyone else signed in gets 403, and nobody signed in
  is sent to the sign-in page. Each page view (allowed or refused) is an `AuditorViewEvent` in the
  trail before anything is shown; a view the trail cannot record is not shown.
- Nothing changes data on GET. Every POST (sign in, sign out) carries a CSRF token that must equal
  the one in its own cookie (an attacker's page can neither read that cookie nor set it), and, when
  the browser sends an Origin, it must be this site's.
- Every response carries a strict Content-Security-Policy (no scripts at all), nosniff, no referrer
  to other sites (a link to Slack does not carry a page's address), no framing and no caching.
"""
from __future__ import annotations

import hmac
import secrets
from typing import Protocol
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from audit.events import AuditorViewEvent
from audit.store import Store

AUDITOR = "auditor"
TOKEN_COOKIE = "countersign_audit"
CSRF_COOKIE = "countersign_audit_csrf"
CSRF_FIELD = "csrf"
MAX_FORM_BYTES = 16 * 1024

HEADERS = {
    "content-security-policy": ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",     # no-referrer would make the browser send Origin: null on our own forms
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
}


class Principal(Protocol):
    person: str
    token_id: str
    roles: frozenset[str]


class Authenticator(Protocol):
    def principal(self, secret: str | None) -> Principal | None: ...


class FormError(ValueError):
    """A POST the pages refuse (not a form, too large, no CSRF token or the wrong one, another origin)."""


# -- headers on everything ----------------------------------------------------------------------------
class SecurityHeaders:
    """ASGI middleware: the headers above on every response of the pages, errors and redirects included."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items() if k.encode() not in names]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, with_headers)


# -- cookies ----------------------------------------------------------------------------------------
def cookie_path(request: Request) -> str:
    """The pages' own path (e.g. /audit): the cookies go nowhere else on the service."""
    return request.scope.get("root_path") or "/"


def secure(request: Request, forced: bool | None) -> bool:
    return forced if forced is not None else request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, *, forced_secure: bool | None) -> None:
    response.set_cookie(name, value, path=cookie_path(request), httponly=True, samesite="strict",
                        secure=secure(request, forced_secure))


def clear_cookie(response: Response, request: Request, name: str, *, forced_secure: bool | None) -> None:
    response.delete_cookie(name, path=cookie_path(request), httponly=True, samesite="strict",
                           secure=secure(request, forced_secure))


def csrf_token(request: Request) -> tuple[str, bool]:
    """This browser's CSRF token, and whether it is new (then the response must set its cookie)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(current) <= 100 and current.replace("-", "").replace("_", "").isalnum():
        return current, False
    return secrets.token_urlsafe(32), True


# -- forms ------------------------------------------------------------------------------------------
async def checked_form(request: Request) -> dict[str, str]:
    """A POSTed form, once its CSRF token and origin are right; FormError otherwise."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise FormError("the form was not sent as a form")
    origin = request.headers.get("origin")
    if origin is not None and origin != _own_origin(request):
        raise FormError("the form was sent from another site")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError("the form is too large")
    try:
        fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                                max_num_fields=20))
    except (UnicodeDecodeError, ValueError):
        raise FormError("the form could not be read") from None
    sent, expected = fields.get(CSRF_FIELD, ""), request.cookies.get(CSRF_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise FormError("the form's security token is missing or stale; reload the page and try again")
    return fields


def _own_origin(request: Request) -> str:
    url = request.url
    default = {"http": 80, "https": 443}.get(url.scheme)
    port = f":{url.port}" if url.port and url.port != default else ""
    return f"{url.scheme}://{url.hostname}{port}"


def local_target(request: Request, wanted: str | None) -> str:
    """Where to go after signing in: a page of these pages, never another site (an open redirect)."""
    base = cookie_path(request).rstrip("/")
    home = f"{base}/"
    if not wanted or not wanted.startswith(home) or "//" in wanted or "\\" in wanted or any(
            ord(c) < 0x21 or ord(c) == 0x7f for c in wanted):
        return home
    # A browser resolves "." and ".." segments (also written %2e) before it follows the link.
    segments = wanted.split("?", 1)[0].lower().replace("%2e", ".").split("/")
    return home if any(s in (".", "..") for s in segments) else wanted


# -- the trail ------------------------------------------------------------------------------------
def record_view(store: Store, principal: Principal, request: Request, *, allowed: bool, path: str | None = None) -> None:
    """An AuditorViewEvent; raises StoreUnavailable when the trail cannot record it (then nothing is shown)."""
    store.append(None, AuditorViewEvent(user=principal.person, token_id=principal.token_id,
                                        path=path or request.url.path, query=request.url.query[:2000],
                                        allowed=allowed))


def is_auditor(principal: Principal) -> bool:
    return AUDITOR in principal.roles
