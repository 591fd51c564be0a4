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
from console import guarded_write
from console.drivers.base import Catalog, Driver, DriverError, QueryCancelled
from console.pipeline import ApprovalWaiting, Notice, Notify, Outcome, Status
from console.policy import Allow, NeedsApproval, Reject, decide, decide_row_cap
from console.settings import Target
from console.statements import Kind, Statement, classify


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
        return [r for r in self.approvals.list(requester=self.user) if r.session_id == self.session_id]

    def cancel_running(self) -> None:
        self.driver.cancel()

    # -- one statement ---------------------------------------------------------------------------
    def submit(self, statement: Statement, *, wait: float | None = None,
               cancel: threading.Event | None = None, notify: Notify | None = None) -> Outcome:
        notify = notify or _ignore
        cancel = cancel or threading.Event()
        decision = decide(statement, self.target.policy)
        try:
            if isinstance(decision, Reject):
                return self._blocked(statement, decision.message)
            if isinstance(decision, Allow):
                return self._run_allowed(statement, decision)
            return self._run_with_approval(statement, decision, wait, cancel, notify)
        except StoreUnavailable as err:
            return Outcome(statement, Status.FAILED,
                           f"not run: the audit store cannot record it ({err}); fix the store and retry")

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

    def _blocked(self, statement: Statement, message: str) -> Outcome:
        self._record("intent", statement, decision="blocked", approval_id=None)
        return self._finish(Outcome(statement, Status.BLOCKED, message), "blocked")

    def _run_allowed(self, statement: Statement, decision: Allow) -> Outcome:
        self._record("intent", statement, decision="allow", approval_id=None)
        read_only = statement.kind in (Kind.READ, Kind.SESSION)
        outcome = self._execute(statement, read_only=read_only)
        if not read_only:
            self._catalog = None
        return self._finish(outcome, "allow")

    def _execute(self, statement: Statement, *, read_only: bool) -> Outcome:
        started = time.perf_counter()
        max_rows = self.target.policy.max_display_rows
        try:
            if read_only:
                result = self.driver.read(statement.text, timeout_ms=self._timeout_ms(), max_rows=max_rows)
            else:
                with self.driver.transaction(read_only=False, timeout_ms=self._timeout_ms()) as tx:
                    result = tx.execute(statement.text, max_rows=max_rows)
        except QueryCancelled as err:
            return Outcome(statement, Status.CANCELLED, str(err), duration_ms=_ms(started))
        except DriverError as err:
            return Outcome(statement, Status.FAILED, str(err), duration_ms=_ms(started))
        return Outcome(statement, Status.OK, result=result, duration_ms=_ms(started))

    def _timeout_ms(self) -> int:
        return int(self.target.policy.statement_timeout.total_seconds() * 1000)

    # -- approval path ---------------------------------------------------------------------------
    def _run_with_approval(self, statement: Statement, decision: NeedsApproval, wait: float | None,
                           cancel: threading.Event, notify: Notify) -> Outcome:
        plan = guarded_write.plan_for(statement, self.dialect, self.catalog())
        if plan.refusal and not self.target.policy.allow_unsnapshotted:
            return self._blocked(statement, plan.refusal)
        estimate = guarded_write.count_affected(self.driver, plan, self._timeout_ms())
        decision = decide_row_cap(estimate.rows, self.target.policy, decision)
        if isinstance(decision, Reject):
            return self._blocked(statement, decision.message)
        decision = guarded_write.snapshot_cap(estimate.rows, self.target.policy, decision)
        request = self._find_or_request(statement, decision, estimate)
        self._record("intent", statement, decision="needs_approval", approval_id=request.id,
                     estimated_rows=estimate.rows, rows_exact=estimate.exact)
        if request.status == "pending":
            notify(ApprovalWaiting(request.id, statement, decision.reason, estimate.rows, estimate.exact,
                                   request.required_approvals,
                                   f"countersign approvals approve {request.id}"))
            request = self.approvals.wait(request.id, timeout=wait, cancel=cancel)
        outcome = self._after_decision(statement, request, cancel)
        if outcome is not None:
            return self._finish(outcome, "needs_approval")
        return self._run_approved(statement, request, plan, estimate, notify)

    def _find_or_request(self, statement: Statement, decision: NeedsApproval, estimate):
        from approvals.models import binding
        wanted = binding(statement.text, self.target.name, self.user)
        for existing in self.approvals.list(requester=self.user):
            if existing.binding == wanted and existing.status in ("pending", "approved"):
                return existing
        return self.approvals.request(
            requester=self.user, target=self.target.name, environment=self.target.environment,
            statement=statement.text, kind=str(statement.kind), reason=decision.reason,
            required_approvals=decision.approvals, allowed_approvers=decision.approvers or None,
            lifetime=self.target.policy.approval_lifetime, estimated_rows=estimate.rows,
            rows_exact=estimate.exact, session_id=self.session_id)

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

    def _run_approved(self, statement: Statement, request, plan, estimate, notify: Notify) -> Outcome:
        from approvals.models import ApprovalError
        try:
            request = self.approvals.consume(request.id, statement=statement.text, target=self.target.name,
                                             requester=self.user)
        except ApprovalError as err:
            return self._finish(Outcome(statement, Status.BLOCKED, str(err), approval_id=request.id),
                                "needs_approval")
        self._record("execute", statement, approval_id=request.id)
        outcome = guarded_write.run(
            statement, request=request, plan=plan, estimate=estimate, driver=self.driver,
            store=self.store, session_id=self.session_id, target=self.target, notify=notify,
            before_commit=lambda fields: self._record("commit", statement, approval_id=request.id, **fields))
        self._catalog = None
        return self._finish(outcome, "needs_approval")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
