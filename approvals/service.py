"""Approval requests in the control-plane store: create, read, vote, consume, cancel, wait.

The rules live in approvals.models; this module loads a request, applies one rule and writes the
result back inside ONE transaction that holds the request's row lock (SELECT ... FOR UPDATE on
PostgreSQL, BEGIN IMMEDIATE on SQLite), so two approvers racing, or a vote racing the consume, are
serialised and each vote is counted exactly once.

Audit events are recorded after the commit: SQLite allows one writer at a time, so writing the
audit trail from inside our locked transaction would wait on ourselves. A failure to record
still raises, so the caller (which records its own intent before running anything) stops.
"""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from approvals import models
from approvals.models import ApprovalError, ApprovalRequest, Status, Vote
from approvals.names import BadName, canonical
from audit.events import (ABSENT, ApprovalApprovedEvent, ApprovalCancelledEvent, ApprovalEvent, ApprovalExpiredEvent,
                          ApprovalRejectedEvent, ApprovalRequestedEvent, ApprovalUsedEvent, ApprovalVoteEvent,
                          Event)
from audit.schema import approval_requests as requests_t
from audit.schema import approval_votes as votes_t

CHANNEL = "countersign_approvals"   # PostgreSQL NOTIFY channel; the payload is the request id
MIN_PREFIX = 4                      # shorter id prefixes are too easy to mistype into someone else's request
CANCEL_CHECK = 0.2                  # how often a waiter on PostgreSQL looks at its cancel event

Record = Callable[[str | None, Event], object]
Change = Callable[[ApprovalRequest, datetime], ApprovalRequest]


class ApprovalService:
    """One store's approval requests. `record(session_id, event)` writes audit events (Store.append)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime], new_id: Callable[[], str],
                 record: Record | None = None, poll_interval: float = 0.25,
                 record_within: Callable | None = None, recorded: Callable | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.new_id = new_id
        self.record = record
        # With a store that can (Store.append_within), a request's row change and its events commit in
        # ONE transaction: nobody ever sees a vote's `approved` row before its events, nor consumes it
        # in between (which would leave the trail reading vote, used, approved: a false alarm).
        self.record_within = record_within
        self.recorded = recorded
        self.poll_interval = poll_interval
        self.dialect = engine.dialect.name

    @classmethod
    def from_store(cls, store, *, poll_interval: float = 0.25) -> "ApprovalService":
        return cls(store.engine, clock=store.clock, new_id=store.new_id, record=store.append,
                   poll_interval=poll_interval, record_within=store.append_within, recorded=store.anchor_after)

    def now(self) -> datetime:
        return _utc(self.clock())

    # -- create and read ------------------------------------------------------------------------
    def request(self, *, requester: str, target: str, environment: str, statement: str, kind: str,
                reason: str, required_approvals: int, allowed_approvers, lifetime: timedelta,
                estimated_rows: int | None = None, rows_exact: bool | None = None,
                session_id: str | None = None, target_identity: str | None = None) -> ApprovalRequest:
        requester = _person(requester)
        allowed_approvers = None if allowed_approvers is None else [_person(a) for a in allowed_approvers]
        created = models.new_request(
            id=self.new_id(), now=self.now(), lifetime=lifetime, requester=requester, target=target,
            environment=environment, statement=statement, kind=kind, reason=reason,
            required_approvals=required_approvals, allowed_approvers=allowed_approvers,
            estimated_rows=estimated_rows, rows_exact=rows_exact, session_id=session_id,
            target_identity=target_identity)
        requested = ApprovalRequestedEvent(
            **_about(created, requester), statement=statement, target=target, environment=environment,
            reason=reason, required_approvals=required_approvals,
            allowed_approvers=tuple(created.allowed_approvers or ()) or None, estimated_rows=estimated_rows,
            rows_exact=rows_exact, expires_at=created.expires_at.isoformat(),
            target_identity=ABSENT if target_identity is None else target_identity)
        with self.engine.begin() as conn:
            conn.execute(insert(requests_t).values(**_row(created)))
            written = self._write_events(conn, created, [requested])
        self._after_commit(written)
        return created

    def get(self, id_or_prefix: str) -> ApprovalRequest:
        """One request by id or unique id prefix, its expiry applied as of now."""
        with self.engine.connect() as conn:
            request_id = _resolve(conn, id_or_prefix)
            return models.expire(_load(conn, [request_id])[0], self.now())

    def list(self, pending_only: bool = False, requester: str | None = None, *, binding: str | None = None,
             session_id: str | None = None) -> list[ApprovalRequest]:
        """Requests oldest first, expiry applied as of now; the filters are applied in the store."""
        query = select(requests_t.c.id).order_by(requests_t.c.created_at, requests_t.c.id)
        requester = None if requester is None else _person(requester)
        for column, value in ((requests_t.c.requester, requester), (requests_t.c.binding, binding),
                              (requests_t.c.session_id, session_id)):
            if value is not None:
                query = query.where(column == value)
        if pending_only:
            query = query.where(requests_t.c.status == Status.PENDING.value)
        now = self.now()
        with self.engine.connect() as conn:
            found = [models.expire(r, now) for r in _load(conn, conn.execute(query).scalars().all())]
        return [r for r in found if not pending_only or r.status == Status.PENDING]

    # -- transitions ----------------------------------------------------------------------------
    def vote(self, request_id: str, approver: str, verdict: str, comment: str | None = None,
             source: str = "local") -> ApprovalRequest:
        approver = _person(approver)

        def change(request: ApprovalRequest, now: datetime) -> ApprovalRequest:
            return models.vote(request, Vote(approver, verdict, comment, now, source), now)

        def events(before: ApprovalRequest, after: ApprovalRequest) -> list:
            voted = ApprovalVoteEvent(**_about(after, approver), verdict=verdict, comment=comment, source=source,
                                      approvals=after.approvals, required_approvals=after.required_approvals)
            return [voted] + ([_status_event(after, approver)] if after.status != before.status else [])
        return self._transition(request_id, change, events)[1]

    def consume(self, request_id: str, *, statement: str, target: str, requester: str,
                target_identity: str | None = None) -> ApprovalRequest:
        """The single-use gate right before execution; afterwards the request is `used`. Expiry is
        judged on this service's clock (`now`, under the row lock), never on a time the caller
        supplies; ``target_identity`` is what the target's server says now."""
        requester = _person(requester)

        def change(request: ApprovalRequest, now: datetime) -> ApprovalRequest:
            return models.consume(request, statement=statement, target=target, requester=requester, now=now,
                                  target_identity=target_identity)
        return self._transition(request_id, change, lambda _, used: [
            ApprovalUsedEvent(**_about(used, requester), binding=used.binding)])[1]

    def cancel(self, request_id: str, by: str) -> ApprovalRequest:
        by = _person(by)
        return self._transition(request_id, lambda r, now: models.cancel(r, by, now),
                                lambda _, cancelled: [_status_event(cancelled, by)])[1]

    def check_vote(self, request_id: str, person: str) -> ApprovalRequest:
        """Raise the refusal ``person`` would get for voting now, without voting (a front end asks
        before it opens a form for the vote)."""
        person = _person(person)
        request, now = self.get(request_id), self.now()
        models.vote(request, Vote(person, models.Verdict.REJECT, None, now, "check"), now)
        return request

    def expire_due(self) -> list[str]:
        """Persist the expiry of open requests whose time has passed (even when nobody is waiting on
        them); the ids that expired."""
        query = select(requests_t.c.id).where(requests_t.c.status == Status.PENDING.value,
                                              requests_t.c.expires_at <= self.now())
        with self.engine.connect() as conn:
            due = list(conn.execute(query).scalars())
        return [r.id for r in map(self.expire_if_due, due) if r.status == Status.EXPIRED]

    def expire_if_due(self, request_id: str) -> ApprovalRequest:
        """Persist an expiry that is due (a no-op otherwise); waiters call this so the store agrees."""
        return self._transition(request_id, models.expire)[1]

    def _transition(self, request_id: str, change: Change,
                    events: Callable[[ApprovalRequest, ApprovalRequest], list] | None = None,
                    ) -> tuple[ApprovalRequest, ApprovalRequest]:
        """Apply one rule under the row lock, with its audit events in the same transaction. A refused
        change still persists (and records) an expiry that is due."""
        with self._locked(request_id) as (conn, current):
            now = self.now()
            try:
                changed = change(current, now)
            except ApprovalError:
                due = models.expire(current, now)
                if due.status != current.status:
                    self._save(conn, current, due)
                    written = self._write_events(conn, due, [_status_event(due, None)])
                    conn.commit()
                    self._after_commit(written)
                raise
            if changed != current:
                self._save(conn, current, changed)
            expired = changed.status == Status.EXPIRED and current.status != Status.EXPIRED
            written = self._write_events(conn, changed, ([_status_event(changed, None)] if expired else [])
                                         + (events(current, changed) if events else []))
            conn.commit()
        self._after_commit(written)
        return current, changed

    def _write_events(self, conn: Connection, request: ApprovalRequest, events: list) -> list:
        """Record ``events`` in the caller's transaction when the store can; else keep them for after it."""
        if self.record_within is None:
            return [("later", request, event) for event in events]
        return [("written", request, self.record_within(conn, request.session_id, event)) for event in events]

    def _after_commit(self, written: list) -> None:
        for how, request, event in written:
            if how == "later":
                self._record(request, event)
            elif self.recorded is not None:
                self.recorded(event)

    @contextmanager
    def _locked(self, request_id: str) -> Iterator[tuple[Connection, ApprovalRequest]]:
        with self.engine.connect() as conn:
            conn.begin()
            if self.dialect == "sqlite":
                _sqlite_write_lock(conn, request_id)
            query = select(requests_t.c.id).where(requests_t.c.id == request_id)
            if self.dialect == "postgresql":
                query = query.with_for_update()
            if conn.execute(query).scalar() is None:
                raise models.UnknownRequestError(f"no approval request {request_id!r}; "
                                                 "`countersign approvals list` shows them", request_id)
            yield conn, _load(conn, [request_id])[0]

    def _save(self, conn: Connection, before: ApprovalRequest, after: ApprovalRequest) -> None:
        # The status guard is belt and braces: the row lock already makes this the only writer.
        done = conn.execute(update(requests_t)
                            .where(requests_t.c.id == before.id, requests_t.c.status == before.status.value)
                            .values(status=after.status.value, used_at=after.used_at))
        if done.rowcount != 1:
            raise ApprovalError(f"request {before.id} changed while it was being updated; try again", before.id)
        for ballot in after.votes[len(before.votes):]:
            try:
                conn.execute(insert(votes_t).values(
                    request_id=before.id, approver=ballot.approver, verdict=ballot.verdict.value,
                    comment=ballot.comment, binding=ballot.binding, ts=ballot.ts, source=ballot.source))
            except IntegrityError:
                raise models.DuplicateVoteError(f"{ballot.approver} has already voted on request "
                                                f"{before.id}; ask another approver", before.id) from None
        if self.dialect == "postgresql":  # delivered at commit, to every waiting console
            conn.execute(select(func.pg_notify(CHANNEL, before.id)))

    def _record(self, request: ApprovalRequest, event: ApprovalEvent) -> None:
        if self.record is not None:
            self.record(request.session_id, event)

    # -- waiting --------------------------------------------------------------------------------
    def wait(self, request_id: str, *, timeout: float | None,
             cancel: threading.Event | None = None) -> ApprovalRequest:
        """Block until the request is decided, `timeout` seconds pass, or `cancel` is set.

        Returns the request as it then is (still pending on timeout or cancel). On PostgreSQL the
        waiter sleeps on LISTEN and wakes on the NOTIFY sent by every change; on SQLite it polls.
        Either way the state is re-read every `poll_interval`, so expiry is noticed and persisted.
        """
        cancel = cancel or threading.Event()
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.dialect == "postgresql":
            return self._wait_listening(request_id, deadline, cancel)
        return self._wait_loop(request_id, deadline, cancel, cancel.wait)

    def _settle(self, request_id: str) -> ApprovalRequest:
        """The stored request; an expiry that is due is written (under the lock) only when it is due."""
        with self.engine.connect() as conn:
            stored = _load(conn, [_resolve(conn, request_id)])[0]
        if models.expire(stored, self.now()) is stored:
            return stored
        return self.expire_if_due(stored.id)

    def _wait_loop(self, request_id: str, deadline: float | None, cancel: threading.Event,
                   pause: Callable[[float], object]) -> ApprovalRequest:
        while True:
            request = self._settle(request_id)
            remaining = _remaining(deadline)
            if request.status in models.DECIDED or cancel.is_set() or remaining <= 0:
                return request
            pause(min(self.poll_interval, remaining))

    def _wait_listening(self, request_id: str, deadline: float | None,
                        cancel: threading.Event) -> ApprovalRequest:
        import psycopg
        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        # LISTEN before the first read: a vote committed in between is then never missed.
        with psycopg.connect(conninfo, autocommit=True) as listener:
            listener.execute(f"LISTEN {CHANNEL}")
            return self._wait_loop(request_id, deadline, cancel,
                                   lambda seconds: _await_notify(listener, request_id, seconds, cancel))


def _await_notify(listener, request_id: str, seconds: float, cancel: threading.Event) -> None:
    """Block on the socket until a NOTIFY names this request, `seconds` pass, or cancel is set."""
    until = time.monotonic() + seconds
    while not cancel.is_set():
        left = until - time.monotonic()
        if left <= 0:
            return
        for note in listener.notifies(timeout=min(CANCEL_CHECK, left)):
            if note.payload == request_id:
                return


# The event for a request that reached one of these statuses by a vote, its requester or the clock.
_STATUS_EVENTS = {Status.APPROVED: ApprovalApprovedEvent, Status.REJECTED: ApprovalRejectedEvent,
                  Status.CANCELLED: ApprovalCancelledEvent, Status.EXPIRED: ApprovalExpiredEvent}


def _about(request: ApprovalRequest, actor: str | None) -> dict:
    """The fields every approval event carries: which request, its status now, who acted."""
    return {"request_id": request.id, "status": str(request.status), "actor": actor}


def _status_event(request: ApprovalRequest, actor: str | None) -> ApprovalEvent:
    return _STATUS_EVENTS[request.status](**_about(request, actor))


def _person(name: str) -> str:
    """The one spelling of a person's name the rules compare (approvals.names.canonical): `Alice` and
    `alice` are one person, so neither can approve the other's request. A name that cannot be one
    person's (a zero-width space, a letter from another script) is refused, never cleaned up. An
    empty name passes through, so the rules say what is missing."""
    if not str(name).strip():
        return name
    try:
        return canonical(name)
    except BadName as err:
        raise ApprovalError(f"{err}; ask an admin for the name you are known by") from None


def _remaining(deadline: float | None) -> float:
    return float("inf") if deadline is None else deadline - time.monotonic()


def _sqlite_write_lock(conn: Connection, request_id: str) -> None:
    """Take SQLite's write lock before reading, so the read-check-write cannot interleave."""
    if not conn.connection.dbapi_connection.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:  # the engine already began a deferred transaction: a no-op write takes the lock now
        conn.execute(update(requests_t).where(requests_t.c.id == request_id).values(id=requests_t.c.id))


# -- rows <-> values --------------------------------------------------------------------------
def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC-aware."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _row(request: ApprovalRequest) -> dict:
    approvers = None if request.allowed_approvers is None else json.dumps(list(request.allowed_approvers))
    return {"id": request.id, "created_at": request.created_at, "expires_at": request.expires_at,
            "requester": request.requester, "target": request.target, "environment": request.environment,
            "statement": request.statement, "binding": request.binding, "kind": request.kind,
            "reason": request.reason, "required_approvals": request.required_approvals,
            "allowed_approvers": approvers, "estimated_rows": request.estimated_rows,
            "rows_exact": request.rows_exact, "status": request.status.value, "used_at": request.used_at,
            "session_id": request.session_id, "target_identity": request.target_identity}


def _load(conn: Connection, ids: list[str]) -> list[ApprovalRequest]:
    if not ids:
        return []
    rows = {r.id: r for r in conn.execute(select(requests_t).where(requests_t.c.id.in_(ids)))}
    ballots: dict[str, list[Vote]] = {i: [] for i in ids}
    for v in conn.execute(select(votes_t).where(votes_t.c.request_id.in_(ids)).order_by(votes_t.c.id)):
        ballots[v.request_id].append(Vote(v.approver, _enum(models.Verdict, v.verdict, v.request_id),
                                          v.comment, _utc(v.ts), v.source, v.binding))
    return [_request(rows[i], tuple(ballots[i])) for i in ids]


def _request(row, votes: tuple[Vote, ...]) -> ApprovalRequest:
    approvers = None if row.allowed_approvers is None else tuple(json.loads(row.allowed_approvers))
    return ApprovalRequest(
        id=row.id, created_at=_utc(row.created_at), expires_at=_utc(row.expires_at), requester=row.requester,
        target=row.target, environment=row.environment, statement=row.statement, binding=row.binding,
        kind=row.kind, reason=row.reason, required_approvals=row.required_approvals,
        allowed_approvers=approvers, estimated_rows=row.estimated_rows, rows_exact=row.rows_exact,
        status=_enum(Status, row.status, row.id), used_at=_utc(row.used_at), session_id=row.session_id,
        votes=votes, target_identity=row.target_identity)


def _enum(kind, value: str, request_id: str):
    try:
        return kind(value)
    except ValueError:  # fail closed on anything the rules do not know
        raise ApprovalError(f"request {request_id} has an unknown {kind.__name__.lower()} {value!r} in the "
                            "store; it cannot be used — ask an admin to check the store", request_id) from None


def _resolve(conn: Connection, key: str) -> str:
    """The full id for an id or a unique prefix of at least MIN_PREFIX characters."""
    key = key.strip()
    if conn.execute(select(requests_t.c.id).where(requests_t.c.id == key)).scalar() is not None:
        return key
    if len(key) < MIN_PREFIX:
        raise models.UnknownRequestError(f"no approval request {key!r}; give the full id or at least "
                                         f"{MIN_PREFIX} characters of it (`countersign approvals list`)", key)
    pattern = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = conn.execute(select(requests_t.c.id).where(requests_t.c.id.like(pattern, escape="\\"))
                         .limit(5)).scalars().all()
    if len(found) == 1:
        return found[0]
    if not found:
        raise models.UnknownRequestError(f"no approval request matches {key!r}; "
                                         "`countersign approvals list` shows them", key)
    raise models.UnknownRequestError(f"{key!r} matches several requests ({', '.join(found)}); "
                                     "give more of the id", key)
