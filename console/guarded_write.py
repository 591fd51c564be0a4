"""An approved write, run exactly as approved: snapshot first, then the statement, then the guard.

All of it happens in ONE transaction at REPEATABLE READ, so the snapshot holds exactly the rows the
write changes, a concurrent change aborts the write instead of widening it, and a write that touches
more rows than were approved rolls back together with its snapshot.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from console.drivers.base import Catalog, Driver, DriverError, QueryCancelled
from console.pipeline import Notice, Notify, Outcome, Status
from console.policy import Decision, NeedsApproval
from console.settings import Policy, Target
from console.statements import Kind, Statement


@dataclass(frozen=True)
class WritePlan:
    snapshot: object | None          # snapshots.plan.SnapshotPlan
    refusal: str | None = None       # why a required snapshot cannot be planned
    note: str | None = None


@dataclass(frozen=True)
class Estimate:
    rows: int | None                 # None: could not be counted (never a silent zero)
    exact: bool
    note: str


class GuardTripped(Exception):
    """The write touched more rows than were approved: roll everything back."""


def plan_for(statement: Statement, dialect: str, catalog: Catalog) -> WritePlan:
    if statement.kind not in (Kind.WRITE, Kind.DDL, Kind.UNKNOWN):
        return WritePlan(None)
    from snapshots.plan import SnapshotUnsupported, plan_snapshot, table_infos
    try:
        return WritePlan(plan_snapshot(statement.text, dialect, table_infos(catalog)))
    except SnapshotUnsupported as err:
        if statement.kind is Kind.WRITE:
            return WritePlan(None, refusal=f"no snapshot can be taken before this write ({err}); "
                             "rewrite it in a form Countersign can snapshot, or ask for a policy with "
                             "allow_unsnapshotted = true")
        return WritePlan(None, note=str(err))


def count_affected(driver: Driver, plan: WritePlan, timeout_ms: int) -> Estimate:
    """The count shown to reviewers: exact when the write's own predicate can be counted."""
    sql = getattr(plan.snapshot, "count_sql", None)
    if plan.snapshot is None or sql is None:
        return Estimate(None, False, "the rows this statement touches cannot be counted in advance")
    try:
        with driver.transaction(read_only=True, timeout_ms=timeout_ms) as tx:
            result = tx.execute(sql)
        return Estimate(int(result.rows[0][0]), True, "exact count with the statement's own predicate")
    except (DriverError, IndexError, TypeError, ValueError) as err:
        return Estimate(None, False, f"counting the affected rows failed: {err}")


def snapshot_cap(rows: int | None, policy: Policy, decision: NeedsApproval) -> Decision:
    if rows is not None and rows > policy.snapshot_max_rows:
        return NeedsApproval(f"{decision.reason}; its snapshot of {rows} rows is over the cap of "
                             f"{policy.snapshot_max_rows}", decision.approvals + 1, decision.approvers)
    return decision


def allowed_rows(request, policy: Policy) -> int | None:
    """The approved count: exact counts bind; otherwise only the policy's row cap does."""
    if request.rows_exact and request.estimated_rows is not None:
        return request.estimated_rows + policy.row_tolerance
    return policy.max_write_rows


def wants_snapshot(plan: WritePlan, estimate: Estimate, policy: Policy) -> bool:
    if plan.snapshot is None:
        return False
    return estimate.rows is None or estimate.rows > policy.snapshot_above_rows


def run(statement: Statement, *, request, plan: WritePlan, estimate: Estimate, driver: Driver, store,
        session_id: str | None, target: Target, notify: Notify,
        before_commit: Callable[[dict], None]) -> Outcome:
    from snapshots import capture, records
    policy = target.policy
    started = time.perf_counter()
    limit = allowed_rows(request, policy)
    snapshot = plan.snapshot if wants_snapshot(plan, estimate, policy) else None
    snapshot_id = store.new_id() if snapshot is not None else None
    location = None
    if snapshot is not None:
        records.record_pending(store.engine, snapshot_id=snapshot_id, target=target.name, plan=snapshot,
                               statement=statement.text, approval_id=request.id, session_id=session_id,
                               now=store.clock())
        location = capture.prepare_outside_transaction(driver, snapshot, snapshot_id)
    try:
        with driver.transaction(read_only=False, isolation="repeatable read",
                                timeout_ms=int(policy.statement_timeout.total_seconds() * 1000)) as tx:
            captured = capture.capture(tx, snapshot, snapshot_id) if snapshot is not None else None
            result = tx.execute(statement.text)
            if snapshot is not None:
                captured = capture.capture_after(tx, snapshot, snapshot_id, captured)
            if limit is not None and result.rowcount > limit:
                raise GuardTripped(f"the write touched {result.rowcount} rows but {limit} were approved; "
                                   "rolled back, nothing changed and no snapshot was kept")
            before_commit({"rows": result.rowcount, "snapshot_id": snapshot_id})
    except GuardTripped as err:
        _discard(driver, store, snapshot_id, location)
        return Outcome(statement, Status.ROLLED_BACK, str(err), approval_id=request.id,
                       duration_ms=_ms(started))
    except QueryCancelled as err:
        _discard(driver, store, snapshot_id, location)
        return Outcome(statement, Status.CANCELLED, f"{err}; rolled back", approval_id=request.id,
                       duration_ms=_ms(started))
    except DriverError as err:
        _discard(driver, store, snapshot_id, location)
        return Outcome(statement, Status.FAILED, f"{err}; nothing was committed", approval_id=request.id,
                       duration_ms=_ms(started))
    except BaseException:
        _discard(driver, store, snapshot_id, location)
        raise
    if snapshot is not None:
        records.mark_complete(store.engine, snapshot_id, row_count=captured.row_count,
                              size_bytes=captured.size_bytes, location=captured.location)
        notify(Notice(f"snapshot {snapshot_id} holds the {captured.row_count} rows as they were; "
                      f"`countersign snapshots restore {snapshot_id}` puts them back"))
    return Outcome(statement, Status.OK, result=result, approval_id=request.id, snapshot_id=snapshot_id,
                   duration_ms=_ms(started))


def _discard(driver: Driver, store, snapshot_id: str | None, location) -> None:
    if snapshot_id is None:
        return
    from snapshots import capture, records
    try:
        capture.discard(driver, location)
    finally:
        records.mark_discarded(store.engine, snapshot_id)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
