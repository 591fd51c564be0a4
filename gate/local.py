"""The gate run in this process: classify -> measure -> one policy decision -> approval -> snapshot ->
guarded execution -> audit.

Audit comes first at every step: if the intent cannot be recorded the statement does not run, and an
approved write records its commit *before* it commits, so a write the trail does not know about
never commits. The gate classifies every text itself; a front end only sends text.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from approvals.service import ApprovalService
from audit.events import (CommitEvent, ExecuteEvent, IntentEvent, OutcomeEvent, SnapshotPrunedEvent,
                          SnapshotRestoredEvent)
from audit.store import Store, StoreUnavailable
from classify.statements import Kind, Statement, classify
from config.settings import Target
from engines.base import Catalog, Driver, DriverError, QueryCancelled
from gate import execute
from gate.api import Awaiting, Outcome, Reply, RequestState, RestorePlan, SessionInfo, Status, script_text
from gate.errors import GateError
from gate.execute import Step
from gate.policy import Allow, Estimate, Limits, Measured, NeedsApproval, Reject, decide

MEASURED_KINDS = (Kind.WRITE, Kind.DDL, Kind.UNKNOWN)


@dataclass(frozen=True)
class _Prepared:
    """A request's statements as measured and decided, kept until ``resume`` runs them."""
    statements: tuple[Statement, ...]
    steps: tuple[Step, ...]
    decision: NeedsApproval
    text: str
    restores: str | None = None      # the snapshot this batch puts back


@dataclass
class _Session:
    info: SessionInfo
    target: Target
    driver: Driver
    cancelled: threading.Event = field(default_factory=threading.Event)
    prepared: dict[str, _Prepared] = field(default_factory=dict)
    catalog: Catalog | None = None


class LocalGate:
    def __init__(self, *, store: Store, approvals: ApprovalService, resolve_target: Callable[[str], Target],
                 open_driver: Callable[[str], Driver] | None = None, reviewers: str = "local") -> None:
        from engines import open_driver as default_open
        self.store = store
        self.approvals = approvals
        self._resolve = resolve_target
        self._open_driver = open_driver or default_open
        self._reviewers = reviewers
        self._sessions: dict[str, _Session] = {}

    # -- sessions --------------------------------------------------------------------------------
    def open_session(self, user: str, target: str, reason: str | None = None) -> SessionInfo:
        from approvals.names import BadName, canonical
        try:
            user = canonical(user)    # one person, one name: the name requests and votes are compared by
        except BadName as err:
            raise GateError(f"{err}; set COUNTERSIGN_USER to your plain login name") from None
        resolved = self._resolve(target)
        driver = self._open_driver(resolved.url)
        try:
            session_id = self.store.start_session(user=user, target=resolved.name, environment=resolved.environment,
                                                  host=socket.gethostname(), reason=reason)
        except BaseException:
            driver.close()
            raise
        info = SessionInfo(session_id, user, resolved.name, resolved.environment, resolved.dialect)
        self._sessions[session_id] = _Session(info, resolved, driver)
        self._settle_snapshots(self._sessions[session_id])
        return info

    def _settle_snapshots(self, session: _Session, only: str | None = None) -> None:
        """Decide snapshots left pending by a writer that died or lost its connection at COMMIT, from
        what the target says (snapshots.reconcile). Never in the way of opening a session: a target
        that cannot say now is asked again next time."""
        from snapshots.reconcile import reconcile
        try:
            reconcile(session.driver, execute.snapshot_module(session.driver.dialect), self.store.engine,
                      session.target.name, self.approvals.now(), only=only)
        except DriverError as err:
            logging.getLogger("countersign.snapshots").warning("could not settle pending snapshots on %s: %s",
                                                               session.target.name, err)

    def close_session(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        try:
            self.store.end_session(session_id)
        finally:
            session.driver.close()

    def close(self) -> None:
        for session_id in list(self._sessions):
            self.close_session(session_id)

    def _session(self, session_id: str) -> _Session:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise GateError(f"no open session {session_id}; open one first") from None

    # -- reading the target --------------------------------------------------------------------
    def classify(self, session_id: str, text: str) -> tuple[Statement, ...]:
        return classify(text, self._session(session_id).info.dialect)

    def catalog(self, session_id: str) -> Catalog:
        session = self._session(session_id)
        if session.catalog is None:
            session.catalog = session.driver.catalog()
        return session.catalog

    def pending(self, session_id: str) -> tuple:
        session = self._session(session_id)
        return tuple(self.approvals.list(requester=session.info.user, session_id=session_id))

    def cancel(self, session_id: str) -> None:
        """Stop what the session runs now, and wake a ``wait`` on its requests."""
        session = self._session(session_id)
        session.cancelled.set()
        session.driver.cancel()

    # -- statements ------------------------------------------------------------------------------
    def submit(self, session_id: str, text: str, *, as_one: bool = False, purpose: str | None = None,
               restores: str | None = None) -> tuple[Reply, ...]:
        """One statement, or with ``as_one`` several approved as ONE request and run in ONE
        transaction, each with its own snapshot (a restore, a migration step). ``restores`` names the
        snapshot a batch puts back, so the record is marked restored when it commits."""
        session = self._session(session_id)
        statements = classify(text, session.info.dialect)
        if len(statements) > 1 and not as_one:
            raise GateError("the text holds several statements; submit them one at a time, or as one batch")
        if not statements:
            return ()
        session.cancelled.clear()
        try:
            return self._submit(session, statements, purpose, restores)
        except StoreUnavailable as err:
            return tuple(Outcome(s, Status.FAILED, f"not run: the audit store cannot record it ({err}); "
                                 "fix the store and retry") for s in statements)

    def _submit(self, session: _Session, statements: tuple[Statement, ...], purpose: str | None,
                restores: str | None = None) -> tuple[Reply, ...]:
        steps = self._measure(session, statements)
        measured = _measured(steps) if steps else None
        decision = decide(statements, session.target.policy, measured, purpose)
        if isinstance(decision, Reject):
            return self._blocked(session, statements, decision.message)
        if isinstance(decision, Allow):
            return (self._run_allowed(session, statements[0], decision),)
        try:
            identity = session.driver.server_identity()   # what the reviewers approve it on, from the server
        except DriverError as err:
            return self._not_requested(session, statements, err)
        return (self._request(session, statements, steps or _unmeasured(statements), decision, restores, identity),)

    def _measure(self, session: _Session, statements: tuple[Statement, ...]) -> tuple[Step, ...]:
        """Plan each write's snapshot and count the rows it touches, before the policy decides."""
        if len(statements) == 1 and statements[0].kind not in MEASURED_KINDS:
            return ()
        catalog, database = self.catalog(session.info.id), getattr(session.driver, "database", None)
        timeout_ms = session.target.policy.statement_timeout_ms
        steps = []
        for statement in statements:
            plan = execute.plan_for(statement, session.driver.dialect, catalog, database)
            steps.append(Step(statement, plan, execute.count_affected(session.driver, plan, timeout_ms)))
        return tuple(steps)

    def _record(self, session: _Session, event_type: type, statement: Statement, **fields) -> None:
        """One typed audit event about a statement (its text and kind always in it)."""
        self.store.append(session.info.id, event_type(text=statement.text, kind=str(statement.kind), **fields))

    def _finish(self, session: _Session, outcome: Outcome, decision: str) -> Outcome:
        rows = outcome.result.rowcount if outcome.result else None
        try:
            self._record(session, OutcomeEvent, outcome.statement, decision=decision, status=str(outcome.status),
                         approval_id=outcome.approval_id, snapshot_id=outcome.snapshot_id, rows=rows,
                         duration_ms=round(outcome.duration_ms, 3),
                         error=outcome.message if outcome.status is not Status.OK else None)
        except StoreUnavailable as err:
            # The statement already ran (its intent, and for writes its commit, are in the trail):
            # say so plainly instead of pretending it did not happen.
            note = (f"its outcome could not be recorded in the audit trail ({err}); nothing more runs "
                    "until the store is fixed")
            return replace(outcome, message=f"{outcome.message}; {note}" if outcome.message else f"ran, but {note}")
        return outcome

    def _blocked(self, session: _Session, statements: tuple[Statement, ...], message: str) -> tuple[Outcome, ...]:
        for statement in statements:
            self._record(session, IntentEvent, statement, decision="blocked")
        return tuple(self._finish(session, Outcome(s, Status.BLOCKED, message), "blocked") for s in statements)

    def _run_allowed(self, session: _Session, statement: Statement, decision: Allow) -> Outcome:
        self._record(session, IntentEvent, statement, decision="allow")
        read_only = statement.kind in (Kind.READ, Kind.SESSION)
        outcome = _execute(session.driver, statement, decision, read_only=read_only)
        if not read_only:
            session.catalog = None
        return self._finish(session, outcome, "allow")

    # -- approval path ---------------------------------------------------------------------------
    def _not_requested(self, session: _Session, statements: tuple[Statement, ...], err: DriverError) -> tuple:
        """No request without the target's identity: it is what an approval binds to."""
        message = (f"not requested: the target's server did not say which database this session is on "
                   f"({err}); nothing ran — check the connection and submit it again")
        for statement in statements:
            self._record(session, IntentEvent, statement, decision="needs_approval")
        return tuple(self._finish(session, Outcome(s, Status.FAILED, message), "needs_approval") for s in statements)

    def _request(self, session: _Session, statements: tuple[Statement, ...], steps: tuple[Step, ...],
                 decision: NeedsApproval, restores: str | None, identity: str) -> Awaiting:
        text = script_text(statements)
        estimate = _measured(steps).estimate
        request = self._find_or_request(session, text, statements, decision, estimate, identity)
        for statement in statements:
            self._record(session, IntentEvent, statement, decision="needs_approval", approval_id=request.id,
                         estimated_rows=estimate.rows, rows_exact=estimate.exact)
        session.prepared[request.id] = _Prepared(statements, steps, decision, text, restores)
        return Awaiting(request.id, statements, request.reason, request.estimated_rows, bool(request.rows_exact),
                        request.required_approvals, str(request.status), self._reviewers)

    def _find_or_request(self, session: _Session, text: str, statements: tuple[Statement, ...],
                         decision: NeedsApproval, estimate, identity: str):
        from approvals.models import binding
        user, target = session.info.user, session.target
        for existing in self.approvals.list(requester=user, binding=binding(text, target.name, user, identity)):
            if existing.status in ("pending", "approved"):
                return existing
        single = len(statements) == 1
        return self.approvals.request(
            requester=user, target=target.name, environment=target.environment,
            statement=text, kind=str(statements[0].kind) if single else "batch",
            reason=decision.reason, required_approvals=decision.approvals,
            allowed_approvers=decision.approvers or None, lifetime=decision.lifetime,
            estimated_rows=estimate.rows, rows_exact=estimate.exact, session_id=session.info.id,
            target_identity=identity)

    def wait(self, request_id: str, timeout: float) -> RequestState:
        """Block until the request is decided or ``timeout`` seconds pass (a long-poll: call again to
        keep waiting). A ``cancel`` of the requesting session wakes it early."""
        wake = next((s.cancelled for s in list(self._sessions.values()) if request_id in s.prepared), None)
        return request_state(self.approvals.wait(request_id, timeout=timeout, cancel=wake))

    def resume(self, session_id: str, request_id: str) -> tuple[Outcome, ...]:
        """Run an approved request's statements, exactly as approved; otherwise say why not."""
        session = self._session(session_id)
        prepared = session.prepared.get(request_id) or self._prepare_again(session, request_id)
        try:
            request = self.approvals.expire_if_due(request_id)
            stopped = _not_approved(prepared.statements[0], request)
            if stopped is not None:
                if request.status != "pending":
                    session.prepared.pop(request_id, None)
                return tuple(self._finish(session, replace(stopped, statement=s), "needs_approval")
                             for s in prepared.statements)
            session.prepared.pop(request_id, None)
            return self._run_approved(session, prepared, request)
        except StoreUnavailable as err:
            return tuple(Outcome(s, Status.FAILED, f"not run: the audit store cannot record it ({err}); "
                                 "fix the store and retry", approval_id=request_id) for s in prepared.statements)

    def stop_waiting(self, session_id: str, request_id: str) -> tuple[Outcome, ...]:
        """The requester stopped waiting (Ctrl-C): nothing runs now, the request stays open, and the
        trail says so."""
        session = self._session(session_id)
        prepared = session.prepared.pop(request_id, None) or self._prepare_again(session, request_id)
        stopped = Outcome(prepared.statements[0], Status.CANCELLED,
                          f"stopped waiting for approval {request_id}; the request stays open — `\\pending` "
                          "or `countersign approvals list` shows it", approval_id=request_id)
        return tuple(self._finish(session, replace(stopped, statement=s), "needs_approval")
                     for s in prepared.statements)

    def _prepare_again(self, session: _Session, request_id: str) -> _Prepared:
        """A request this gate did not prepare (another process filed it): measure it afresh. The
        row limit still binds to the count the reviewers approved."""
        request = self.approvals.get(request_id)
        statements = classify(request.statement, session.info.dialect)
        steps = self._measure(session, statements) or _unmeasured(statements)
        decision = decide(statements, session.target.policy, _measured(steps))
        if not isinstance(decision, NeedsApproval):
            raise GateError(f"request {request_id} no longer needs approval under the policy; submit it again")
        return _Prepared(statements, steps, decision, script_text(statements))

    def _run_approved(self, session: _Session, prepared: _Prepared, request) -> tuple[Outcome, ...]:
        from approvals.models import ApprovalError
        statements, user = prepared.statements, session.info.user
        try:
            # Read afresh from the live connection, never taken from the request or a cache: the same
            # target name may now reach another database, or a SET/USE may have changed this session.
            identity = session.driver.server_identity()
        except DriverError as err:
            return tuple(self._finish(session, Outcome(
                s, Status.FAILED, f"not run: the target's server did not say which database this session is "
                f"on ({err}); approval {request.id} stays unused — submit the statement again", approval_id=request.id),
                "needs_approval") for s in statements)
        try:
            request = self.approvals.consume(request.id, statement=prepared.text, target=session.target.name,
                                             requester=user, target_identity=identity)
        except ApprovalError as err:
            return tuple(self._finish(session, Outcome(s, Status.BLOCKED, str(err), approval_id=request.id),
                                      "needs_approval") for s in statements)
        for statement in statements:
            self._record(session, ExecuteEvent, statement, approval_id=request.id)
        outcomes = execute.run(
            list(prepared.steps), request=request, decision=prepared.decision, driver=session.driver,
            store=self.store, session_id=session.info.id, target_name=session.target.name,
            before_commit=lambda fields: self._record(session, CommitEvent, statements[-1], approval_id=request.id,
                                                      statements=len(statements), rows=fields["rows"],
                                                      snapshot_ids=tuple(fields["snapshot_ids"])))
        session.catalog = None
        if prepared.restores and all(o.status is Status.OK for o in outcomes):
            self._mark_restored(session, prepared.restores, request.id)
        return tuple(self._finish(session, outcome, "needs_approval") for outcome in outcomes)

    def _mark_restored(self, session: _Session, snapshot_id: str, approval_id: str) -> None:
        from snapshots import records
        records.mark_restored(self.store.engine, snapshot_id)
        self.store.append(session.info.id, SnapshotRestoredEvent(snapshot_id=snapshot_id, approval_id=approval_id))

    # -- approvals -----------------------------------------------------------------------------
    def requests(self, pending_only: bool = False) -> tuple:
        return tuple(self.approvals.list(pending_only=pending_only))

    def request(self, id_or_prefix: str):
        return self.approvals.get(id_or_prefix)

    def vote(self, request_id: str, person: str, verdict: str, comment: str | None = None,
             source: str = "local"):
        """A reviewer's vote; the rules (never one's own request, only the policy's approvers, once,
        before expiry) are enforced here, whatever the front end."""
        return self.approvals.vote(self.approvals.get(request_id).id, person, verdict, comment, source)

    def check_vote(self, request_id: str, person: str):
        """The refusal ``person`` would get for voting now, raised without voting."""
        return self.approvals.check_vote(request_id, person)

    def expire_due(self) -> tuple[str, ...]:
        """Expire the open requests whose time has passed; their ids."""
        return tuple(self.approvals.expire_due())

    def withdraw(self, request_id: str, person: str):
        return self.approvals.cancel(self.approvals.get(request_id).id, person)

    def now(self):
        return self.approvals.now()

    # -- snapshots -----------------------------------------------------------------------------
    def prune_snapshot(self, session_id: str, snapshot_id: str) -> None:
        """Drop a snapshot's rows from the target and keep its record, under the session's user."""
        from snapshots import records
        session = self._session(session_id)
        record = records.get(self.store.engine, snapshot_id)
        if record.target != session.target.name:
            raise GateError(f"snapshot {record.id} belongs to target {record.target!r}, not {session.target.name!r}")
        if record.status == records.PENDING:
            # It may hold the only before-image of a committed write: settle it from the target first.
            self._settle_snapshots(session, only=record.id)
            record = records.get(self.store.engine, record.id)
            if record.status == records.PENDING:
                raise GateError(f"snapshot {record.id} is still pending (its write may be running, or the "
                                "target cannot say whether it committed); it was not pruned — try again later")
        execute.snapshot_module(session.driver.dialect).discard(session.driver, record.location)
        records.mark_pruned(self.store.engine, record.id)
        self.store.append(session_id, SnapshotPrunedEvent(snapshot_id=record.id, target=record.target,
                                                          rows=record.row_count))

    def snapshot_sample(self, session_id: str, snapshot_id: str, limit: int) -> Outcome:
        """The first rows of a snapshot: copies of production rows, so an audited read like any other."""
        from snapshots import records
        session = self._session(session_id)
        record = records.get(self.store.engine, snapshot_id)
        if record.target != session.target.name:
            raise GateError(f"snapshot {record.id} belongs to target {record.target!r}, not {session.target.name!r}")
        text = _sample_text(record, session.driver.dialect, limit)
        statement = Statement(0, text, Kind.READ, False, f"a sample of snapshot {record.id}'s rows",
                              (record.location,), None)
        decision = Allow(statement.reason, Limits(session.target.policy.statement_timeout_ms, limit))
        return self._run_allowed(session, statement, decision)

    def restore_plan(self, session_id: str, snapshot_id: str) -> RestorePlan:
        """What putting a snapshot back runs on this session's target (read from the target)."""
        from snapshots import records
        session = self._session(session_id)
        record = records.get(self.store.engine, snapshot_id)
        if record.target != session.target.name:
            raise GateError(f"snapshot {record.id} belongs to target {record.target!r}, not {session.target.name!r}")
        plan = _restore_statements(session.driver, record)
        return RestorePlan(record.id, record.table_name, record.row_count, tuple(plan.statements), tuple(plan.notes))


def _sample_text(record, dialect: str, limit: int) -> str:
    return execute.snapshot_module(dialect).sample_text(record, dialect, limit)


def _restore_statements(driver: Driver, record):
    """The statements that put a snapshot back, from the engine's snapshot backend."""
    from snapshots.restore import RestoreImpossible
    try:
        return execute.snapshot_module(driver.dialect).restore(driver, record)
    except RestoreImpossible as err:
        raise GateError(f"cannot restore snapshot {record.id}: {err}") from None


def request_state(request) -> RequestState:
    why = "; ".join(v.comment for v in request.votes if v.verdict == "reject" and v.comment)
    approvals = sum(1 for v in request.votes if v.verdict == "approve")
    return RequestState(request.id, str(request.status), approvals, request.required_approvals, why)


def _not_approved(statement: Statement, request) -> Outcome | None:
    status = request.status
    if status == "approved":
        return None
    if status == "pending":
        return Outcome(statement, Status.PENDING, f"approval {request.id} is still pending; run the same "
                       "statement again once it is approved", approval_id=request.id)
    if status == "rejected":
        why = request_state(request).reason
        return Outcome(statement, Status.REJECTED, f"rejected{': ' + why if why else ''}", approval_id=request.id)
    if status == "expired":
        return Outcome(statement, Status.EXPIRED, f"approval {request.id} expired; submit it again",
                       approval_id=request.id)
    return Outcome(statement, Status.BLOCKED, f"approval {request.id} is {status}", approval_id=request.id)


def _unmeasured(statements: tuple[Statement, ...]) -> tuple[Step, ...]:
    """Steps for statements nothing was measured for (no snapshot, rows unknown, never a silent 0)."""
    return tuple(Step(s, execute.WritePlan(None), Estimate(None, False, "not a write: nothing to count"))
                 for s in statements)


def _measured(steps: tuple[Step, ...]) -> Measured:
    estimate = steps[0].estimate if len(steps) == 1 else execute.total([s.estimate for s in steps])
    refusal = next((s.plan.refusal for s in steps if s.plan.refusal), None)
    return Measured(estimate, refusal)


def _execute(driver: Driver, statement: Statement, decision: Allow, *, read_only: bool) -> Outcome:
    started = time.perf_counter()
    max_rows, timeout_ms = decision.limits.max_display_rows, decision.limits.timeout_ms
    try:
        if read_only:
            result = driver.read(statement.text, timeout_ms=timeout_ms, max_rows=max_rows)
        else:
            with driver.transaction(read_only=False, timeout_ms=timeout_ms) as tx:
                result = tx.execute(statement.text, max_rows=max_rows)
    except QueryCancelled as err:
        return Outcome(statement, Status.CANCELLED, str(err), duration_ms=_ms(started))
    except DriverError as err:
        return Outcome(statement, Status.FAILED, str(err), duration_ms=_ms(started))
    return Outcome(statement, Status.OK, result=result, duration_ms=_ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
