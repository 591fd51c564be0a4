"""The pipeline run in this process: classify -> policy -> approval -> snapshot -> guarded execution -> audit.

Audit comes first at every step: if the intent cannot be recorded the statement does not run, and an
approved write records its outcome *before* it commits, so a write the trail does not know about
never commits.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace

from audit.store import Store, StoreUnavailable
from approvals.service import ApprovalService
from gate import execute as guarded_write
from gate.execute import Step
from engines.base import Catalog, Driver, DriverError, QueryCancelled
from gate.api import ApprovalWaiting, Notify, Outcome, Status
from gate.policy import Allow, NeedsApproval, Reject, decide, decide_row_cap
from config.settings import Target
from classify.statements import Kind, Statement, classify


def _ignore(_event) -> None:
    pass


class LocalPipeline:
    def __init__(self, *, target: Target, driver: Driver, store: Store, approvals: ApprovalService,
                 user: str) -> None:
        self.target = target
        self.driver = driver
        self.store = store
        self.approvals = approvals
        self.user = user
        self.target_name = target.name
        self.environment = target.environment
        self.dialect = target.dialect
        self.session_id: str | None = None
        self._catalog: Catalog | None = None

    # -- session -------------------------------------------------------------------------------
    def open_session(self, reason: str | None = None) -> str:
        self.session_id = self.store.start_session(
            user=self.user, target=self.target.name, environment=self.target.environment,
            host=socket.gethostname(), reason=reason)
        return self.session_id

    def close_session(self) -> None:
        if self.session_id:
            self.store.end_session(self.session_id)
            self.session_id = None

    def close(self) -> None:
        try:
            self.close_session()
        finally:
            self.driver.close()

    def classify(self, text: str) -> tuple[Statement, ...]:
        return classify(text, self.dialect)

    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = self.driver.catalog()
        return self._catalog

    def pending(self) -> list:
        if self.session_id is None:
            return []
        return self.approvals.list(requester=self.user, session_id=self.session_id)

    def cancel_running(self) -> None:
        self.driver.cancel()

    # -- statements ------------------------------------------------------------------------------
    def submit(self, statement: Statement, *, wait: float | None = None,
               cancel: threading.Event | None = None, notify: Notify | None = None) -> Outcome:
        return self._submit((statement,), wait, cancel, notify)[0]

    def submit_batch(self, statements: tuple[Statement, ...], *, wait: float | None = None,
                     cancel: threading.Event | None = None, notify: Notify | None = None,
                     purpose: str | None = None) -> tuple[Outcome, ...]:
        """Several statements approved as ONE request and run in ONE transaction, each with its own
        snapshot (a restore, a migration step): all of them commit, or none does. ``purpose`` leads
        the reason reviewers see."""
        return self._submit(tuple(statements), wait, cancel, notify, purpose) if statements else ()

    def _submit(self, statements: tuple[Statement, ...], wait: float | None, cancel: threading.Event | None,
                notify: Notify | None, purpose: str | None = None) -> tuple[Outcome, ...]:
        notify = notify or _ignore
        cancel = cancel or threading.Event()
        decisions = [decide(s, self.target.policy) for s in statements]
        try:
            rejected = next((d for d in decisions if isinstance(d, Reject)), None)
            if rejected is not None:
                return self._blocked(statements, rejected.message)
            gated = [d for d in decisions if isinstance(d, NeedsApproval)]
            if len(statements) == 1 and not gated:
                return (self._run_allowed(statements[0], decisions[0]),)
            # A batch runs as one approved unit, even when policy would let each statement run alone.
            decision = gated[0] if gated else NeedsApproval("runs as one batch in one transaction",
                                                            self.target.policy.approvals,
                                                            self.target.policy.approvers)
            if len(statements) > 1:
                decision = replace(decision, reason=f"{len(statements)} statements in one transaction; "
                                                    f"the first: {decision.reason}")
            if purpose:
                decision = replace(decision, reason=f"{purpose}: {decision.reason}")
            return self._run_with_approval(statements, decision, wait, cancel, notify)
        except StoreUnavailable as err:
            return tuple(Outcome(s, Status.FAILED, f"not run: the audit store cannot record it ({err}); "
                                 "fix the store and retry") for s in statements)

    def _record(self, type_: str, statement: Statement, **fields) -> None:
        payload = {"text": statement.text, "kind": str(statement.kind), **fields}
        self.store.append(self.session_id, type_, payload)

    def _finish(self, outcome: Outcome, decision: str) -> Outcome:
        rows = outcome.result.rowcount if outcome.result else None
        try:
            self._record("outcome", outcome.statement, decision=decision, status=str(outcome.status),
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

    def _blocked(self, statements: tuple[Statement, ...], message: str) -> tuple[Outcome, ...]:
        for statement in statements:
            self._record("intent", statement, decision="blocked", approval_id=None)
        return tuple(self._finish(Outcome(s, Status.BLOCKED, message), "blocked") for s in statements)

    def _run_allowed(self, statement: Statement, decision: Allow) -> Outcome:
        self._record("intent", statement, decision="allow", approval_id=None)
        read_only = statement.kind in (Kind.READ, Kind.SESSION)
        outcome = self._execute(statement, read_only=read_only)
        if not read_only:
            self._catalog = None
        return self._finish(outcome, "allow")

    def _execute(self, statement: Statement, *, read_only: bool) -> Outcome:
        started = time.perf_counter()
        max_rows, timeout_ms = self.target.policy.max_display_rows, self.target.policy.statement_timeout_ms
        try:
            if read_only:
                result = self.driver.read(statement.text, timeout_ms=timeout_ms, max_rows=max_rows)
            else:
                with self.driver.transaction(read_only=False, timeout_ms=timeout_ms) as tx:
                    result = tx.execute(statement.text, max_rows=max_rows)
        except QueryCancelled as err:
            return Outcome(statement, Status.CANCELLED, str(err), duration_ms=_ms(started))
        except DriverError as err:
            return Outcome(statement, Status.FAILED, str(err), duration_ms=_ms(started))
        return Outcome(statement, Status.OK, result=result, duration_ms=_ms(started))

    # -- approval path ---------------------------------------------------------------------------
    def _run_with_approval(self, statements: tuple[Statement, ...], decision: NeedsApproval, wait: float | None,
                           cancel: threading.Event, notify: Notify) -> tuple[Outcome, ...]:
        policy = self.target.policy
        steps = []
        for statement in statements:
            plan = guarded_write.plan_for(statement, self.dialect, self.catalog(), getattr(self.driver, "database", None))
            if plan.refusal and not policy.allow_unsnapshotted:
                return self._blocked(statements, plan.refusal)
            steps.append(Step(statement, plan,
                              guarded_write.count_affected(self.driver, plan, policy.statement_timeout_ms)))
        estimate = steps[0].estimate if len(steps) == 1 else guarded_write.total([s.estimate for s in steps])
        decision = decide_row_cap(estimate.rows, policy, decision)
        if isinstance(decision, Reject):
            return self._blocked(statements, decision.message)
        decision = guarded_write.snapshot_cap(estimate.rows, policy, decision)
        text = script_text(statements)
        request = self._find_or_request(text, statements, decision, estimate)
        for statement in statements:
            self._record("intent", statement, decision="needs_approval", approval_id=request.id,
                         estimated_rows=estimate.rows, rows_exact=estimate.exact)
        if request.status == "pending":
            notify(ApprovalWaiting(request.id, statements[0], request.reason, estimate.rows, estimate.exact,
                                   request.required_approvals, f"countersign approvals approve {request.id}"))
            request = self.approvals.wait(request.id, timeout=wait, cancel=cancel)
        stopped = self._after_decision(statements[0], request, cancel)
        if stopped is not None:
            return tuple(self._finish(replace(stopped, statement=s), "needs_approval") for s in statements)
        return self._run_approved(steps, text, request, notify)

    def _find_or_request(self, text: str, statements: tuple[Statement, ...], decision: NeedsApproval, estimate):
        from approvals.models import binding
        wanted = binding(text, self.target.name, self.user)
        for existing in self.approvals.list(requester=self.user, binding=wanted):
            if existing.status in ("pending", "approved"):
                return existing
        single = len(statements) == 1
        return self.approvals.request(
            requester=self.user, target=self.target.name, environment=self.target.environment,
            statement=text, kind=str(statements[0].kind) if single else "batch",
            reason=decision.reason, required_approvals=decision.approvals,
            allowed_approvers=decision.approvers or None, lifetime=self.target.policy.approval_lifetime,
            estimated_rows=estimate.rows, rows_exact=estimate.exact, session_id=self.session_id)

    def _after_decision(self, statement: Statement, request, cancel: threading.Event) -> Outcome | None:
        status = request.status
        if cancel.is_set():   # Ctrl-C as the approval arrived: the user asked for nothing to run
            return Outcome(statement, Status.CANCELLED, f"stopped waiting for approval {request.id}; "
                           "the request stays open — `\\pending` or `countersign approvals list` shows it",
                           approval_id=request.id)
        if status == "approved":
            return None
        if status == "pending":
            return Outcome(statement, Status.PENDING, f"approval {request.id} is still pending; run the same "
                           "statement again once it is approved", approval_id=request.id)
        if status == "rejected":
            why = "; ".join(v.comment for v in request.votes if v.verdict == "reject" and v.comment)
            return Outcome(statement, Status.REJECTED, f"rejected{': ' + why if why else ''}",
                           approval_id=request.id)
        if status == "expired":
            return Outcome(statement, Status.EXPIRED, f"approval {request.id} expired; submit it again",
                           approval_id=request.id)
        return Outcome(statement, Status.BLOCKED, f"approval {request.id} is {status}", approval_id=request.id)

    def _run_approved(self, steps: list[Step], text: str, request, notify: Notify) -> tuple[Outcome, ...]:
        from approvals.models import ApprovalError
        statements = [step.statement for step in steps]
        try:
            request = self.approvals.consume(request.id, statement=text, target=self.target.name,
                                             requester=self.user)
        except ApprovalError as err:
            return tuple(self._finish(Outcome(s, Status.BLOCKED, str(err), approval_id=request.id),
                                      "needs_approval") for s in statements)
        for statement in statements:
            self._record("execute", statement, approval_id=request.id)
        outcomes = guarded_write.run(
            steps, request=request, driver=self.driver, store=self.store, session_id=self.session_id,
            target=self.target, notify=notify,
            before_commit=lambda fields: self._record("commit", statements[-1], approval_id=request.id,
                                                      statements=len(statements), **fields))
        self._catalog = None
        return tuple(self._finish(outcome, "needs_approval") for outcome in outcomes)


def script_text(statements: tuple[Statement, ...]) -> str:
    """What a request approves: one statement's exact text, or a batch's statements each ended by ';'.

    >>> from classify.statements import classify
    >>> script_text(classify("DELETE FROM a WHERE id = 1; DELETE FROM b WHERE id = 2", "sqlite"))
    'DELETE FROM a WHERE id = 1;\\nDELETE FROM b WHERE id = 2;'
    """
    if len(statements) == 1:
        return statements[0].text
    return "\n".join(f"{s.text};" for s in statements)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
