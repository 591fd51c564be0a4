"""The team API of `countersign serve`: the gate's verbs over HTTP for consoles that hold no
credentials, no policy and no store (wire protocol v1).

    POST /api/v1/gate/{verb}           {"args": [...], "kwargs": {...}} -> {"result": ...} (gate.codec values)
    GET  /api/v1/whoami                who the token is: person, roles, token id, expiry
    GET  /api/v1/tokens                (admin) the tokens; ?all=1 includes revoked and expired ones
    POST /api/v1/tokens                (admin) {"person", "label", "lifetime_seconds"} -> the secret, once
    POST /api/v1/tokens/{id}/revoke    (admin, or the token's own person)

The verbs are the gate's (gate.api.Gate, all but ``expire_due``: the service runs it itself) and the
service's own, for what a console without a store needs: ``heartbeat`` (the console is alive),
``target`` (a target's name, environment, dialect, policy name: never its URL), ``now`` (the service's
clock), ``snapshots``/``snapshot``/``prunable`` (snapshot records), and for the auditor role
``audit_sessions``/``audit_session``/``audit_events``/``audit_event``/``audit_verify``.

Errors are ``{"error": {"type", "message"}}`` with 401 (no usable token), 403 (not yours, not your
role), 404 (no such verb, session, request or snapshot), 422 (bad arguments), 502 (the target database
failed), 503 (the store failed, or the service is draining); a 500 carries a reference, never a
traceback. Who may call what is service/gate_access.py; this module is the I/O around it.

The service's gate is a LocalGate over the service's own targets (their credentials from the
service's environment), policies and store. Blocking calls run off the event loop, long-polls on
their own thread budget so waiting consoles never starve running statements. A console that
vanished leaves its session behind: sessions that see no call and no heartbeat for ``idle_timeout``
seconds are closed by a housekeeping thread (what they waited for is recorded as no longer waited
for, the driver released, the trail ends with session_end). The same thread expires approval
requests whose time has passed, with or without Slack.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterator

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from approvals.models import ApprovalError, UnknownRequestError
from approvals.names import BadName
from audit.store import StoreUnavailable, UnknownSession
from config.settings import Settings
from engines.base import DriverError
from gate.api import Awaiting
from gate.codec import decode, encode
from gate.errors import GateError
from service.auth import ADMIN, Authenticator, Principal, bearer
from service.gate_access import (MAX_LISTED, SESSION_VERBS, Call, Denied, authorize, look_alike, may_prune,
                                 token_owner_or_admin)
from service.tokens import TokenError, Tokens
from snapshots.records import SnapshotNotFound

log = logging.getLogger("countersign.serve.api")

PREFIX = "/api/v1"
IDLE_TIMEOUT_S = 300.0        # a console heartbeats every 60 s (gate/remote.py); five missed: it is gone
HOUSEKEEPING_S = 2.0          # how often idle sessions are looked for and due requests expired
WAIT_SLICE_S = 5.0            # a long-poll re-checks the drain this often
MAX_BODY = 1 << 20            # one call's JSON; a statement longer than a megabyte is not typed at a console
WAITERS = 200                 # long-polls in flight at once (each holds a thread while it waits)
MAX_TOKEN_LIFETIME = timedelta(days=366)
# Calls that run a statement: when the console's connection drops mid-call, the statement is cancelled
# (as a Ctrl-C would), so nothing keeps running for a console that is gone.
CANCEL_ON_DISCONNECT = frozenset({"submit", "resume", "snapshot_sample", "catalog"})
NOT_AUTHENTICATED = ("no valid token: it is missing, expired or revoked; run `countersign login {url}` "
                     "(or ask an admin for a new token)")


# -- the sessions the service holds for consoles ----------------------------------------------------
@dataclass
class _Held:
    owner: str
    target: str
    seen: float
    busy: int = 0
    awaiting: set[str] = field(default_factory=set)      # requests submitted and neither resumed nor stopped
    waits: set[threading.Event] = field(default_factory=set)   # its long-polls in flight (a cancel wakes them)
    lock: threading.Lock = field(default_factory=threading.Lock)   # one statement at a time per session


class HeldSessions:
    """Who opened which session, when it was last heard of, and what it waits for."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}

    def add(self, session_id: str, owner: str, target: str) -> None:
        with self._lock:
            self._held[session_id] = _Held(owner, target, self.clock())

    def remove(self, session_id: str) -> None:
        with self._lock:
            self._held.pop(session_id, None)

    def owner(self, session_id: str) -> str | None:
        held = self._held.get(session_id)
        return held.owner if held else None

    def target(self, session_id: str) -> str | None:
        held = self._held.get(session_id)
        return held.target if held else None

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def touch(self, session_id: str | None) -> None:
        held = self._held.get(session_id) if session_id else None
        if held is not None:
            held.seen = self.clock()

    def session_of(self, request_id: str) -> str | None:
        with self._lock:
            return next((sid for sid, held in self._held.items() if request_id in held.awaiting), None)

    def awaiting(self, session_id: str) -> set[str]:
        held = self._held.get(session_id)
        return set(held.awaiting) if held else set()

    def mark(self, session_id: str, request_id: str, waiting: bool) -> None:
        held = self._held.get(session_id)
        if held is not None:
            (held.awaiting.add if waiting else held.awaiting.discard)(request_id)

    def wake(self, session_id: str) -> None:
        held = self._held.get(session_id)
        for event in list(held.waits if held else ()):
            event.set()

    @contextmanager
    def using(self, session_id: str, *, exclusive: bool, wake: threading.Event | None = None) -> Iterator[None]:
        """The session is in use (never idle) for the block; ``exclusive`` also takes its lock;
        ``wake`` (a long-poll's) is set by the session's cancel."""
        held = self._held.get(session_id)
        if held is None:
            yield
            return
        with self._lock:
            held.busy += 1
            if wake is not None:
                held.waits.add(wake)
        try:
            if exclusive:
                with held.lock:
                    yield
            else:
                yield
        finally:
            with self._lock:
                held.busy -= 1
                held.waits.discard(wake)
                held.seen = self.clock()

    def idle(self, timeout: float) -> list[str]:
        now = self.clock()
        with self._lock:
            return [sid for sid, held in self._held.items() if not held.busy and now - held.seen >= timeout]

    @contextmanager
    def reaping(self, session_id: str, timeout: float) -> Iterator[bool]:
        """True inside when the session is still idle and now locked for closing; False when a call
        arrived meanwhile (it is left alone)."""
        held = self._held.get(session_id)
        if held is None or not held.lock.acquire(blocking=False):
            yield False
            return
        try:
            yield not held.busy and self.clock() - held.seen >= timeout
        finally:
            held.lock.release()


# -- the API ------------------------------------------------------------------------------------------
class TeamApi:
    def __init__(self, gate, *, settings: Settings, tokens: Tokens, authenticator: Authenticator,
                 idle_timeout: float = IDLE_TIMEOUT_S, housekeeping_interval: float = HOUSEKEEPING_S,
                 stopping: threading.Event | None = None, on_decided: Callable[[Any], object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.gate = gate
        self.store = gate.store
        self.settings = settings
        self.tokens = tokens
        self.auth = authenticator
        self.idle_timeout = idle_timeout
        self.interval = housekeeping_interval
        self.stopping = stopping or threading.Event()
        self.on_decided = on_decided
        self.sessions = HeldSessions(clock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiters: anyio.CapacityLimiter | None = None

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> "TeamApi":
        self._thread = threading.Thread(target=self._housekeep, name="countersign-sessions", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop housekeeping and close every session still open (each gets its session_end)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for session_id in self.sessions.ids():
            self._close_abandoned(session_id, "the service is stopping")

    def _housekeep(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.housekeeping()
            except Exception:  # noqa: BLE001 - a store outage must not end the thread
                log.exception("housekeeping failed; trying again")

    def housekeeping(self) -> None:
        """One round: expire what is due (on the service's clock), close sessions nobody uses."""
        self.gate.expire_due()
        for session_id in self.sessions.idle(self.idle_timeout):
            with self.sessions.reaping(session_id, self.idle_timeout) as still_idle:
                if still_idle:
                    self._close_abandoned(session_id, f"no call or heartbeat for {self.idle_timeout:.0f}s")

    def _close_abandoned(self, session_id: str, why: str) -> None:
        owner = self.sessions.owner(session_id)
        for request_id in sorted(self.sessions.awaiting(session_id)):
            try:   # the trail says nobody waits for it any more; the request itself stays open
                self.gate.stop_waiting(session_id, request_id)
            except Exception:  # noqa: BLE001 - closing the session matters more
                log.exception("could not record that session %s stopped waiting for %s", session_id, request_id)
        try:
            self.gate.close_session(session_id)
        except Exception:  # noqa: BLE001 - the driver is released by close_session's finally
            log.exception("closing session %s failed", session_id)
        self.sessions.remove(session_id)
        log.info("closed session %s of %s: %s", session_id, owner, why)

    # -- routes -----------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [Route(f"{PREFIX}/gate/{{verb}}", self._gate_route, methods=["POST"]),
                Route(f"{PREFIX}/whoami", self._whoami_route, methods=["GET"]),
                Route(f"{PREFIX}/tokens", self._tokens_route, methods=["GET", "POST"]),
                Route(f"{PREFIX}/tokens/{{token_id}}/revoke", self._revoke_route, methods=["POST"])]

    async def _gate_route(self, request: Request) -> Response:
        verb = request.path_params["verb"]
        try:
            args, kwargs = _arguments(await _body(request))
        except Denied as err:
            return _error(err)
        secret = bearer(request.headers.get("authorization"))
        if verb == "wait":   # a long-poll: its own thread budget, and it ends when its console goes away
            wake = threading.Event()
            job = anyio.to_thread.run_sync(self._answer, secret, verb, args, kwargs, wake,
                                           limiter=self._wait_limiter())
            return _json(await self._unless_gone(request, job, wake.set))
        job = anyio.to_thread.run_sync(self._answer, secret, verb, args, kwargs)
        if verb not in CANCEL_ON_DISCONNECT:
            return _json(await job)
        return _json(await self._unless_gone(request, job, self._cancel_for(secret, args, kwargs)))

    async def _whoami_route(self, request: Request) -> Response:
        return _json(await anyio.to_thread.run_sync(self._guarded, request, self._whoami, None))

    async def _tokens_route(self, request: Request) -> Response:
        try:
            body = await _body(request) if request.method == "POST" else None
        except Denied as err:
            return _error(err)
        handler = self._issue if request.method == "POST" else self._list_tokens
        return _json(await anyio.to_thread.run_sync(self._guarded, request, handler, body))

    async def _revoke_route(self, request: Request) -> Response:
        return _json(await anyio.to_thread.run_sync(self._guarded, request, self._revoke,
                                                    request.path_params["token_id"]))

    def _wait_limiter(self) -> anyio.CapacityLimiter:
        if self._waiters is None:
            self._waiters = anyio.CapacityLimiter(WAITERS)
        return self._waiters

    async def _unless_gone(self, request: Request, job, cancel: Callable[[], None]):
        """Await ``job``; if the console's connection drops first, cancel the session's statement (as
        its Ctrl-C would) and let the job finish: the write commits whole or rolls back whole. Every
        read comes through here: one watching task beside the job, no more."""
        finished = False

        async def watch() -> None:
            await _disconnected(request)
            if not finished:
                log.warning("a console disconnected during a call; cancelling its statement")
                try:
                    await anyio.to_thread.run_sync(cancel)
                except Exception:  # noqa: BLE001 - nobody awaits this task: its failure goes to the log
                    log.exception("cancelling the statement of a console that disconnected failed")

        watcher = asyncio.ensure_future(watch())
        try:
            return await job
        finally:
            finished = True
            if not watcher.done():
                watcher.cancel()

    def _cancel_for(self, secret: str | None, args: list, kwargs: dict) -> Callable[[], None]:
        session_id = kwargs.get("session_id", args[0] if args else None)

        def cancel() -> None:
            principal = self.auth.principal(secret)
            if principal is not None and isinstance(session_id, str) \
                    and self.sessions.owner(session_id) == principal.person:
                self.gate.cancel(session_id)
        return cancel

    # -- answering (on a worker thread) -----------------------------------------------------------
    def _answer(self, secret: str | None, verb: str, args: list, kwargs: dict,
                wake: threading.Event | None = None) -> tuple[int, dict]:
        try:
            principal = self._principal(secret)
            call = authorize(principal, verb, args, kwargs, self.sessions.owner)
            return 200, {"result": encode(self.call(principal, call, wake=wake))}
        except Exception as err:  # noqa: BLE001 - every failure becomes an error body (see _failure)
            return _failure(err)

    def _guarded(self, request: Request, handler, body) -> tuple[int, dict]:
        try:
            principal = self._principal(bearer(request.headers.get("authorization")))
            return 200, handler(principal, body, request)
        except Exception as err:  # noqa: BLE001
            return _failure(err)

    def _principal(self, secret: str | None) -> Principal:
        principal = self.auth.principal(secret)
        if principal is None:
            raise Denied(401, NOT_AUTHENTICATED.format(url=self.settings.server.url or "URL"))
        return principal

    def call(self, principal: Principal, call: Call, *, wake: threading.Event | None = None) -> Any:
        """Make an authorized call; the session's verbs one at a time per session (``cancel`` and
        ``heartbeat`` excepted: they must get through while a statement runs). ``wake`` ends a
        long-poll early (its console went away)."""
        verb, arguments = call.verb, dict(call.arguments)
        if verb == "wait":
            return self._wait(principal, wake=wake or threading.Event(), **arguments)
        special = getattr(self, _handler_name(verb), None)
        if verb not in SESSION_VERBS:
            return special(principal, **arguments) if special else getattr(self.gate, verb)(**arguments)
        session_id = arguments["session_id"]
        with self.sessions.using(session_id, exclusive=verb not in ("cancel", "heartbeat")):
            if verb not in ("cancel", "heartbeat") and self.sessions.owner(session_id) is None:
                raise Denied(404, f"no open session {session_id} on the service; it was closed: open a new one")
            return special(principal, **arguments) if special else getattr(self.gate, verb)(**arguments)

    # -- verbs with more to them than the gate's own ----------------------------------------------
    def _open_session(self, principal: Principal, user: str, target: str, reason: str | None):
        configured = self._target(target)
        if configured.policy.require_reason and not (reason or "").strip():
            raise Denied(422, f"target {target!r}'s policy asks for a reason; pass --reason")
        info = self.gate.open_session(user, configured.name, reason)
        self.sessions.add(info.id, principal.person, configured.name)
        return info

    def _close_session(self, principal: Principal, session_id: str) -> None:
        try:
            self.gate.close_session(session_id)
        finally:
            self.sessions.remove(session_id)

    def _submit(self, principal: Principal, session_id: str, **arguments):
        replies = self.gate.submit(session_id, **arguments)
        reviewers = self.settings.reviewers_for(self._target(self.sessions.target(session_id)))
        shown = []
        for reply in replies:
            if isinstance(reply, Awaiting):
                self.sessions.mark(session_id, reply.request_id, True)
                reply = dataclasses.replace(reply, reviewers=reviewers)
            shown.append(reply)
        return tuple(shown)

    def _resume(self, principal: Principal, session_id: str, request_id: str):
        self.sessions.mark(session_id, request_id, False)
        return self.gate.resume(session_id, request_id)

    def _stop_waiting(self, principal: Principal, session_id: str, request_id: str):
        self.sessions.mark(session_id, request_id, False)
        return self.gate.stop_waiting(session_id, request_id)

    def _heartbeat(self, principal: Principal, session_id: str) -> None:
        return None    # `using` has noted that the console is alive

    def _cancel(self, principal: Principal, session_id: str) -> None:
        """Ctrl-C: stop the running statement and wake the session's long-polls."""
        self.sessions.wake(session_id)
        self.gate.cancel(session_id)

    def _wait(self, principal: Principal, request_id: str, timeout: float, wake: threading.Event):
        """A long-poll: until the request is decided, ``timeout`` passes, the console goes away or
        presses Ctrl-C (``wake``), or the service drains (seen within WAIT_SLICE_S: the state as it is
        is the answer, and the console polls again). The waiting session counts as in use."""
        from gate.local import request_state
        deadline = time.monotonic() + timeout
        session_id = self.sessions.session_of(request_id)
        with self.sessions.using(session_id, exclusive=False, wake=wake) if session_id else _nothing():
            while True:
                left = max(0.0, min(WAIT_SLICE_S, deadline - time.monotonic()))
                state = request_state(self.gate.approvals.wait(request_id, timeout=left, cancel=wake))
                if state.status != "pending" or wake.is_set() or self.stopping.is_set() \
                        or time.monotonic() >= deadline:
                    return state

    def _vote(self, principal: Principal, **arguments):
        decided = self.gate.vote(**arguments)
        if self.on_decided is not None:
            self.on_decided(decided)
        return decided

    def _requests(self, principal: Principal, pending_only: bool = False):
        return tuple(self.gate.requests(pending_only=pending_only))[-MAX_LISTED:]

    def _prune_snapshot(self, principal: Principal, session_id: str, snapshot_id: str) -> None:
        from snapshots import records
        record = records.get(self.store.engine, snapshot_id)
        target = self._target(record.target)
        may_prune(principal, admin=principal.has(ADMIN), created_at=_utc(record.created_at),
                  retention=target.policy.snapshot_retention, now=_utc(self.store.clock()))
        self.gate.prune_snapshot(session_id, record.id)

    # -- the service's own verbs ------------------------------------------------------------------
    def _target(self, name: str | None):
        if name and "://" in name:
            raise Denied(422, "the service opens only the targets in its own configuration, never a URL a "
                              "console sends (it alone holds the credentials); name a target")
        try:
            return self.settings.targets[name]
        except KeyError:
            known = ", ".join(sorted(self.settings.targets)) or "none"
            raise Denied(404, f"the service has no target {name!r} (its targets: {known})") from None

    def _target_info(self, principal: Principal, name: str) -> dict:
        target = self._target(name)
        return {"name": target.name, "environment": target.environment, "dialect": target.dialect,
                "policy": target.policy.name, "require_reason": target.policy.require_reason,
                "reviewers": self.settings.reviewers_for(target)}

    def _now(self, principal: Principal):
        return _utc(self.store.clock())

    def _snapshots(self, principal: Principal, target: str | None = None) -> list:
        from snapshots.records import list_snapshots
        return [dataclasses.asdict(r) for r in list_snapshots(self.store.engine, target=target)[:MAX_LISTED]]

    def _snapshot(self, principal: Principal, id_or_prefix: str) -> dict:
        from snapshots.records import get
        return dataclasses.asdict(get(self.store.engine, id_or_prefix))

    def _prunable(self, principal: Principal, older_than: timedelta | None = None) -> list:
        """Snapshots past their target's retention (or ``older_than``), on the service's clock."""
        from snapshots.records import PRUNED, list_snapshots
        now, due = _utc(self.store.clock()), []
        for record in list_snapshots(self.store.engine):
            target = self.settings.targets.get(record.target)
            if record.status == PRUNED or target is None:
                continue
            keep = older_than if older_than is not None else target.policy.snapshot_retention
            if now - _utc(record.created_at) >= keep:
                due.append(dataclasses.asdict(record))
        return due[:MAX_LISTED]

    def _audit_sessions(self, principal: Principal) -> list:
        return [dataclasses.asdict(s) for s in self.store.sessions()]

    def _audit_session(self, principal: Principal, id_or_prefix: str) -> dict:
        return dataclasses.asdict(self.store.session(id_or_prefix))

    def _audit_events(self, principal: Principal, session_id: str | None, since, after_seq: int, limit: int) -> list:
        events = self.store.events(session_id=session_id, since=since)
        return [_event(e) for e in events if e.seq > after_seq][:limit]

    def _audit_event(self, principal: Principal, seq: int) -> dict | None:
        event = self.store.event(seq)
        return _event(event) if event is not None else None

    def _audit_verify(self, principal: Principal) -> dict:
        return dataclasses.asdict(self.store.verify())

    # -- who am I, and tokens ---------------------------------------------------------------------
    def _whoami(self, principal: Principal, _body, _request) -> dict:
        token = self.tokens.get(principal.token_id)
        return {"person": principal.person, "roles": sorted(principal.roles), "token_id": principal.token_id,
                "expires_at": token.expires_at.isoformat()}

    def _list_tokens(self, principal: Principal, _body, request: Request) -> dict:
        _admin_only(principal)
        every = request.query_params.get("all") in ("1", "true", "yes")
        return {"tokens": [token_json(t) for t in self.tokens.list(include_inactive=every)]}

    def _issue(self, principal: Principal, body, _request) -> dict:
        _admin_only(principal)
        person, label, seconds = _token_request(body)
        twin = look_alike(_canonical(person), self._people())
        if twin is not None:
            raise Denied(422, f"{person!r} looks like {twin!r}, who already exists: one person must never be two "
                              "approvers; use their exact name")
        issued = self.tokens.issue(person, label=label, lifetime=timedelta(seconds=seconds), by=principal.person)
        return {"id": issued.id, "secret": issued.secret, "person": issued.person, "label": issued.label,
                "kind": issued.kind, "expires_at": issued.expires_at.isoformat()}

    def _revoke(self, principal: Principal, token_id: str, _request) -> dict:
        token = self.tokens.get(token_id)
        token_owner_or_admin(principal, token.person, admin=principal.has(ADMIN))
        return token_json(self.tokens.revoke(token.id, by=principal.person))

    def _people(self) -> set[str]:
        """Everyone the service knows of: token holders, admins, auditors."""
        return ({t.person for t in self.tokens.list(include_inactive=True)} | set(self.auth.admins)
                | set(self.auth.auditors))


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _handler_name(verb: str) -> str:
    """The method that serves a verb with more to it than the gate's own (``target`` is also a helper).

    >>> _handler_name("target"), _handler_name("submit")
    ('_target_info', '_submit')
    """
    return "_target_info" if verb == "target" else f"_{verb}"


# -- request and response bodies ----------------------------------------------------------------------
async def _body(request: Request) -> dict:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise Denied(422, f"the request is larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise Denied(422, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Denied(422, "the body must be a JSON object")
    return body


def _arguments(body: dict) -> tuple[list, dict]:
    """The call's arguments, decoded; only the gate's own value types are built (gate.codec)."""
    args, kwargs = body.get("args", []), body.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise Denied(422, "the body must be {\"args\": [...], \"kwargs\": {...}}")
    try:
        return [decode(a) for a in args], {str(k): decode(v) for k, v in kwargs.items()}
    except (KeyError, TypeError, ValueError, RecursionError) as err:
        raise Denied(422, f"an argument is not a value the gate takes ({type(err).__name__})") from None


async def _disconnected(request: Request) -> None:
    """Returns when the client goes away (the body has been read: the next message is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _json(answer: tuple[int, dict]) -> Response:
    status, body = answer
    return JSONResponse(body, status_code=status)


def _error(err: Denied) -> Response:
    return _json(_failure(err))


STATUS_TYPES = {401: "NotAuthenticated", 403: "Forbidden", 404: "NotFound", 422: "BadRequest", 503: "Unavailable"}


def _failure(err: Exception) -> tuple[int, dict]:
    """One place that turns a failure into a status and a message for the person at the console."""
    if isinstance(err, Denied):
        status, kind = err.status, STATUS_TYPES.get(err.status, "Denied")
    elif isinstance(err, (UnknownRequestError, SnapshotNotFound, UnknownSession)):
        status, kind = 404, type(err).__name__
    elif isinstance(err, ApprovalError):
        status, kind = 403, type(err).__name__
    elif isinstance(err, (GateError, TokenError, BadName)):
        status, kind = 422, type(err).__name__
    elif isinstance(err, DriverError):
        status, kind = 502, type(err).__name__
    elif isinstance(err, StoreUnavailable):
        status, kind = 503, "StoreUnavailable"
    else:
        reference = uuid.uuid4().hex[:12]
        log.error("internal error (reference %s)", reference, exc_info=err)
        return 500, {"error": {"type": "InternalError", "message": f"the service failed (reference {reference}: "
                                                                  "its log has the details); tell its operator"}}
    return status, {"error": {"type": kind, "message": str(err)}}


def _admin_only(principal: Principal) -> None:
    if not principal.has(ADMIN):
        raise Denied(403, "managing tokens needs the admin role ([server] admins in the service's configuration)")


def _token_request(body) -> tuple[str, str, float]:
    if not isinstance(body, dict):
        raise Denied(422, "send {\"person\", \"label\", \"lifetime_seconds\"}")
    person, label, seconds = body.get("person"), body.get("label"), body.get("lifetime_seconds")
    if not isinstance(person, str) or not isinstance(label, str):
        raise Denied(422, "person and label must be text")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds:
        raise Denied(422, "lifetime_seconds must be a positive number")
    if seconds > MAX_TOKEN_LIFETIME.total_seconds():
        raise Denied(422, f"a token lives at most {MAX_TOKEN_LIFETIME.days} days; issue a new one when it expires")
    return person, label, float(seconds)


def _canonical(person: str) -> str:
    from approvals.names import canonical
    return canonical(person)


def token_json(t) -> dict:
    return {"id": t.id, "person": t.person, "label": t.label, "kind": t.kind, "issued_by": t.issued_by,
            "created_at": t.created_at.isoformat(), "expires_at": t.expires_at.isoformat(),
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None, "revoked_by": t.revoked_by}


def _event(e) -> dict:
    return {"seq": e.seq, "id": e.id, "session_id": e.session_id, "ts": e.ts, "type": e.type,
            "payload": e.payload, "prev_hash": e.prev_hash, "hash": e.hash, "link": e.link}


def _utc(value):
    from datetime import timezone
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def build_gate(settings: Settings, store):
    """The service's gate: its own targets (credentials from its environment), policies and store."""
    from approvals.service import ApprovalService
    from gate.local import LocalGate

    def resolve(name: str):
        try:
            return settings.targets[name]
        except KeyError:
            raise Denied(404, f"the service has no target {name!r}") from None
    return LocalGate(store=store, approvals=ApprovalService.from_store(store), resolve_target=resolve)
