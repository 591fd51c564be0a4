"""Is this `countersign serve` process alive, ready for work, or draining?

    GET /healthz   the process answers: always 200 and a tiny body, without touching the store, so an
                   orchestrator restarts only a process that is truly stuck (a store outage is not cured
                   by restarting every service that uses it)
    GET /readyz    200 only when the store answers at the schema this version needs, the audit key is
                   readable and is the key the trail's newest link was made with (or can still be
                   created, for a trail that has none yet), the anchor file can be written, and the
                   process is not draining; else 503 and every reason

`Drain` is the process's shutdown state. On SIGTERM the server calls `begin()`: /readyz turns 503
at once, every request but the operations routes is refused with 503 and SHUTTING_DOWN, and the work
already admitted (requests, and the Slack clicks Bolt finishes after it has answered Slack) is counted
until it is done, so the server can wait for it (service/http_server.py). `stopping` is a
threading.Event that long-polls may wait on (`gate.wait(..., cancel=drain.stopping)`): they answer at
once with the state as it is, and the caller polls again, on another instance.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from audit.anchors import FileAnchors
from audit.chain import GENESIS, AuditEvent
from audit.keys import AuditKeyError, load_key
from audit.revisions import UPGRADE_HINT, Revisions, schema_problem, script_revisions
from audit.schema import audit_chain_head
from audit.store import Store
from service.outbox import Outbox

log = logging.getLogger("countersign.serve.health")

OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})   # answered while draining, never counted as work
SHUTTING_DOWN = "the service is shutting down; retry on another instance"
READY_TIMEOUT = 5.0    # seconds /readyz waits for the store before it says it did not answer


# -- draining ---------------------------------------------------------------------------------------
class Drain:
    """Whether this process still takes work, and how much admitted work is still running."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._idle = threading.Condition()
        self._in_flight = 0
        self._began: float | None = None

    @property
    def draining(self) -> bool:
        return self.stopping.is_set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def begin(self) -> bool:
        """Stop taking work; True the first time (a second call, a second signal, is not a new drain)."""
        with self._idle:
            if self._began is not None:
                return False
            self._began = time.monotonic()
            self.stopping.set()
            return True

    def elapsed(self) -> float:
        """Seconds since the drain began (0 before)."""
        return 0.0 if self._began is None else time.monotonic() - self._began

    def admit(self) -> bool:
        """Count one unit of new work in, unless draining (checked under the same lock as `begin`, so
        no request slips in after the drain began and goes uncounted)."""
        with self._idle:
            if self.stopping.is_set():
                return False
            self._in_flight += 1
            return True

    def enter(self) -> None:
        """Count work that an admitted request started and that outlives it (a Slack click's vote)."""
        with self._idle:
            self._in_flight += 1

    def done(self) -> None:
        with self._idle:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def idle(self) -> bool:
        return self._in_flight == 0

    def wait_idle(self, timeout: float) -> bool:
        """Block until no work is in flight or `timeout` seconds pass; whether it went idle."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=max(0.0, timeout))

    def counted(self, executor: Executor) -> Executor:
        """`executor`, with each task it runs counted as work in flight."""
        return _CountedExecutor(executor, self)


class _CountedExecutor(Executor):
    def __init__(self, inner: Executor, drain: Drain) -> None:
        self._inner, self._drain = inner, drain

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self._drain.enter()
        try:
            future = self._inner.submit(fn, *args, **kwargs)
        except BaseException:
            self._drain.done()
            raise
        future.add_done_callback(lambda _: self._drain.done())
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait, cancel_futures=cancel_futures)


class DrainMiddleware:
    """Refuses new work with 503 once draining; counts the work it admits until its response is sent."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app, self.drain = app, drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPS_PATHS:
            await self.app(scope, receive, send)
            return
        if not self.drain.admit():
            # Connection: close, so a client on a kept-alive connection reconnects (to another instance)
            refusal = JSONResponse({"ok": False, "error": SHUTTING_DOWN}, status_code=503,
                                   headers={"Retry-After": "1", "Connection": "close"})
            await refusal(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.done()


def drain_middleware(drain: Drain) -> Middleware:
    return Middleware(DrainMiddleware, drain=drain)


# -- readiness --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """What one look at the process and its store found; `readiness` judges it."""
    draining: bool
    store: str                                 # the store's dialect
    store_error: str | None = None             # why the store did not answer
    schema_error: str | None = None            # what is wrong with its schema
    key_error: str | None = None               # why the audit key cannot be used
    anchor_error: str | None = None            # why the anchor file cannot be written
    details: dict = field(default_factory=dict)  # outbox_waiting, poster: for the operator's eyes


def readiness(probe: Probe) -> tuple[int, dict]:
    """The /readyz answer for what a probe found.

    >>> readiness(Probe(draining=False, store="postgresql", details={"outbox_waiting": 0}))
    (200, {'ok': True, 'store': 'postgresql', 'outbox_waiting': 0})
    >>> readiness(Probe(draining=True, store="sqlite", key_error="the audit key k is not 64 hex digits"))
    (503, {'ok': False, 'store': 'sqlite', 'reasons': ['the service is shutting down; retry on another instance', 'the audit key k is not 64 hex digits']})
    """
    reasons = [SHUTTING_DOWN] if probe.draining else []
    reasons += [r for r in (probe.store_error, probe.schema_error, probe.key_error, probe.anchor_error) if r]
    if reasons:
        return 503, {"ok": False, "store": probe.store, "reasons": reasons}
    return 200, {"ok": True, "store": probe.store, **probe.details}


def probe(store: Store, outbox: Outbox, drain: Drain) -> Probe:
    """Look at the store, the audit key and the anchor file (blocking I/O: run it off the event loop)."""
    draining, dialect = drain.draining, store.dialect
    try:
        problem = schema_problem(store.schema_revisions(), _revisions())
        if problem is not None:
            hint = f"; {UPGRADE_HINT}" if problem.upgradable else ""
            return Probe(draining, dialect, schema_error=f"the store {problem.text}{hint}")
        key_error = _key_error(store, store.key_path())
        details = {"outbox_waiting": outbox.waiting(), "poster": outbox.holder()}
    except Exception as err:  # noqa: BLE001 - any failure means "not ready"; the log has the details
        log.warning("readiness: the store did not answer: %s", err)
        # The reason stays in the log: /readyz may be reachable from where Slack is, the store's address need not.
        return Probe(draining, dialect, store_error="the store is not reachable (the service log says why)")
    return Probe(draining, dialect, key_error=key_error, anchor_error=_anchor_error(store), details=details)


def _key_error(store: Store, path: Path) -> str | None:
    """Why the audit key cannot extend this trail: unreadable, missing, or not the key its newest link
    was made with (a swapped key file would write links that `audit verify` rejects)."""
    try:
        key = load_key(path)
    except AuditKeyError as err:
        return str(err)
    newest = _newest_keyed(store)
    if key is None:
        if newest is not None:
            return (f"the audit key {path} is missing, but this trail's links were made with one: restore it, "
                    "or set COUNTERSIGN_AUDIT_KEY_FILE to where it is")
        # No key and an unkeyed trail: the first event recorded creates the key, if it can.
        return None if _writable(path) else f"the audit key {path} does not exist and cannot be created there"
    if newest is not None:
        store_id, event, prev_link = newest
        if key.link(store_id=store_id, seq=event.seq, prev_link=prev_link, digest=event.hash) != event.link:
            return (f"the audit key {path} is not the key this trail's links were made with: restore the "
                    "right key, or set COUNTERSIGN_AUDIT_KEY_FILE to where it is")
    return None


def _newest_keyed(store: Store) -> tuple[str, AuditEvent, str] | None:
    """The store's id, its newest event and the link that event chains from, when that event carries a
    keyed link; else None (an empty or unkeyed trail)."""
    head = audit_chain_head.c
    with store.engine.connect() as conn:
        row = conn.execute(select(head.last_seq, head.last_link, head.store_id).where(head.id == 1)).one_or_none()
    if row is None or row.last_link is None:
        return None
    event = store.event(row.last_seq)
    if event is None or event.link is None:
        return None            # a broken trail: `countersign audit verify` is the tool that says how
    previous = store.event(event.seq - 1) if event.seq > 1 else None
    return row.store_id or "", event, previous.chain_link if previous is not None else GENESIS


def _anchor_error(store: Store) -> str | None:
    sink = store.anchor_sink()
    if isinstance(sink, FileAnchors) and not _writable(sink.path):
        return f"the anchor file {sink.path} cannot be written; set COUNTERSIGN_AUDIT_ANCHOR_FILE to a writable place"
    return None


def _writable(path: Path) -> bool:
    """Whether the file `path` can be written, or created (its nearest existing ancestor is a writable
    directory: what is missing in between is created)."""
    if path.exists():
        return path.is_file() and os.access(path, os.W_OK)
    existing = next((p for p in path.parents if p.exists()), None)
    return existing is not None and existing.is_dir() and os.access(existing, os.W_OK)


@lru_cache(maxsize=1)
def _revisions() -> Revisions:
    """The migration scripts' revisions: read once, they do not change under a running process."""
    return script_revisions()


# -- the routes -------------------------------------------------------------------------------------
def routes(store: Store, outbox: Outbox, drain: Drain) -> list[Route]:
    """/healthz and /readyz, for the app to mount."""
    async def healthz(_request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(_request: Request) -> Response:
        try:
            found = await asyncio.wait_for(run_in_threadpool(probe, store, outbox, drain), READY_TIMEOUT)
        except asyncio.TimeoutError:
            found = Probe(drain.draining, store.dialect,
                          store_error=f"the store did not answer within {READY_TIMEOUT:.0f}s")
        status, body = readiness(found)
        return JSONResponse(body, status_code=status)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
