"""What every page needs: the store, who may look, the chain's state, the templates, and how to draw one."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator, Mapping
from urllib.parse import urlencode

import jinja2
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import HTMLResponse

from audit.store import Store, StoreUnavailable
from service.pages import guard, queries
from service.pages.chain_state import ChainWatch

NAV = (("overview", "/", "Overview"), ("sessions", "/sessions", "Sessions"), ("approvals", "/approvals", "Approvals"),
       ("snapshots", "/snapshots", "Snapshots"), ("export", "/export", "Export"))
SUGGESTIONS_TTL = 60.0


@dataclass
class _Suggestions:
    """The filters' suggestion lists (people, targets, environments), read at most once a minute."""
    values: dict[str, list[str]] = field(default_factory=dict)
    at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Pages:
    store: Store
    authenticator: guard.Authenticator
    chain: ChainWatch
    env: jinja2.Environment
    engines: Mapping[str, str]                 # target name -> engine (postgres, mysql, sqlite, mongodb)
    redact: Callable[[str], str]               # secret literals out of statements shown to people
    clock: Callable[[], datetime]
    secure_cookies: bool | None                # None: Secure when the request came over https
    _suggestions: _Suggestions = field(default_factory=_Suggestions)

    def now(self) -> datetime:
        value = self.clock()
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """One read-only connection for one page; a store that fails is StoreUnavailable (a 503 page)."""
        try:
            with self.store.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as err:
            raise StoreUnavailable(f"the audit store could not be read: {type(err).__name__}") from err

    def suggestions(self) -> dict[str, list[str]]:
        cache = self._suggestions
        with cache.lock:
            if time.monotonic() - cache.at >= SUGGESTIONS_TTL:
                with self.reading() as conn:
                    cache.values = {c: queries.distinct_values(conn, c) for c in ("user", "target", "environment")}
                cache.at = time.monotonic()
            return cache.values

    def render(self, request: Request, template: str, principal: guard.Principal | None, *, status: int = 200,
               active: str = "", title: str = "", chain: bool = True, **values) -> HTMLResponse:
        csrf, new = guard.csrf_token(request)
        base = base_path(request)
        html = self.env.get_template(template).render(
            base=base, href=lambda path, **query: href(base, path, **query), principal=principal, csrf=csrf,
            chain=self.chain.state() if chain else None, nav=NAV, active=active, title=title, **values)
        response = HTMLResponse(html, status_code=status)
        if new:
            guard.set_cookie(response, request, guard.CSRF_COOKIE, csrf, forced_secure=self.secure_cookies)
        return response


def base_path(request: Request) -> str:
    """Where the pages are mounted (e.g. /audit), from the request itself."""
    return (request.scope.get("root_path") or "").rstrip("/")


def href(base: str, path: str, **query) -> str:
    """A link within the pages, with its query string (empty values left out).

    >>> href("/audit", "/sessions", person="alice", after=None, q="a&b")
    '/audit/sessions?person=alice&q=a%26b'
    """
    params = {k: v for k, v in query.items() if v not in (None, "", False)}
    return f"{base}{path}" + (f"?{urlencode(params)}" if params else "")
