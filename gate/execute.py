"""Approved writes, run exactly as approved: for each statement its snapshot first, then the statement,
then the blast-radius guard.

All of it happens in ONE transaction at REPEATABLE READ, so each snapshot holds exactly the rows its
statement changes, a concurrent change aborts the write instead of widening it, and a write that
touches more rows than were approved rolls back together with its snapshots. A batch (a restore, a
script approved as one) is the same thing with several statements in that one transaction.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from engines.base import Catalog, Driver, DriverError, QueryCancelled, ResultSet
from gate.api import Notice, Notify, Outcome, Status
from gate.policy import Decision, NeedsApproval
from config.settings import Policy, Target
from classify.statements import Kind, Statement


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


@dataclass(frozen=True)
class Step:
    """One statement of an approved write, with its snapshot plan and the count shown to reviewers."""
    statement: Statement
    plan: WritePlan
    estimate: Estimate


class GuardTripped(Exception):
    """The write touched more rows than were approved: roll everything back."""


def snapshot_module(dialect: str):
    """The capture functions for a dialect: SQL engines share one module, MongoDB has its own."""
    if dialect == "mongodb":
        from snapshots import mongo_snapshot
        return mongo_snapshot
    from snapshots import capture
    return capture


def plan_for(statement: Statement, dialect: str, catalog: Catalog, database: str | None = None) -> WritePlan:
    if statement.kind not in (Kind.WRITE, Kind.DDL, Kind.UNKNOWN):
        return WritePlan(None)
    from snapshots.plan import SnapshotUnsupported, plan_snapshot, table_infos
    try:
        if dialect == "mongodb":
            from snapshots import mongo_snapshot
            return WritePlan(mongo_snapshot.plan_snapshot(statement.text, table_infos(catalog), database=database))
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
        result = driver.read(sql, timeout_ms=timeout_ms, max_rows=1)
        return Estimate(int(result.rows[0][0]), True, "exact count with the statement's own predicate")
    except (DriverError, IndexError, TypeError, ValueError) as err:
        return Estimate(None, False, f"counting the affected rows failed: {err}")


def total(estimates: list[Estimate]) -> Estimate:
    """The count for a batch: exact only when every statement's count is."""
    if any(e.rows is None for e in estimates):
        return Estimate(None, False, "some statements' rows cannot be counted in advance")
    return Estimate(sum(e.rows for e in estimates), all(e.exact for e in estimates),
                    "sum of each statement's count")


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
    if _counts_twice(plan.snapshot):
        return True   # its rows touched are only known from the snapshot (see _touched)
    return estimate.rows is None or estimate.rows > policy.snapshot_above_rows


def _counts_twice(snapshot_plan) -> bool:
    """MySQL reports 2 affected rows for each row an upsert updates (REPLACE: deleted and inserted)."""
    return snapshot_plan.dialect == "mysql" and getattr(snapshot_plan, "upsert", False)


@dataclass
class _Snapshot:
    id: str
    plan: object
    location: str | None = None
    captured: object | None = None


def run(steps: list[Step], *, request, driver: Driver, store, session_id: str | None, target: Target,
        notify: Notify, before_commit: Callable[[dict], None]) -> tuple[Outcome, ...]:
    """Run every step in one transaction; return one Outcome per step (all ok, or all not committed)."""
    policy = target.policy
    started = time.perf_counter()
    snapshots = [_Snapshot(store.new_id(), step.plan.snapshot)
                 if wants_snapshot(step.plan, step.estimate, policy) else None for step in steps]
    results: list[ResultSet] = []
    limit = allowed_rows(request, policy)
    try:
        _prepare(snapshots, steps, request, driver, store, session_id, target)
        with driver.transaction(read_only=False, isolation="repeatable read",
                                timeout_ms=policy.statement_timeout_ms) as tx:
            touched: list[int] = []
            for step, snapshot in zip(steps, snapshots):
                results.append(_run_step(tx, step, snapshot, driver.dialect))
                touched.append(_touched(results[-1], snapshot))
                _guard(touched, limit, len(steps))
            before_commit({"rows": sum(touched), "snapshot_ids": [s.id for s in snapshots if s]})
    except GuardTripped as err:
        return _failed(steps, snapshots, driver, store, Status.ROLLED_BACK, str(err), request, started)
    except QueryCancelled as err:
        return _failed(steps, snapshots, driver, store, Status.CANCELLED, f"{err}; rolled back", request, started)
    except DriverError as err:
        return _failed(steps, snapshots, driver, store, Status.FAILED, f"{err}; nothing was committed",
                       request, started)
    except BaseException:
        _discard(snapshots, driver, store)
        raise
    return _committed(steps, snapshots, results, store, notify, request, started)


def _prepare(snapshots: list, steps: list[Step], request, driver: Driver, store, session_id, target) -> None:
    from snapshots import records
    for step, snapshot in zip(steps, snapshots):
        if snapshot is None:
            continue
        records.record_pending(store.engine, snapshot_id=snapshot.id, target=target.name, plan=snapshot.plan,
                               statement=step.statement.text, approval_id=request.id, session_id=session_id,
                               now=store.clock())
        snapshot.location = snapshot_module(driver.dialect).prepare_outside_transaction(
            driver, snapshot.plan, snapshot.id)


def _run_step(tx, step: Step, snapshot: _Snapshot | None, dialect: str) -> ResultSet:
    module = snapshot_module(dialect)
    if snapshot is not None:
        snapshot.captured = module.capture(tx, snapshot.plan, snapshot.id)
    result = tx.execute(step.statement.text)
    if snapshot is not None:
        snapshot.captured = module.capture_after(tx, snapshot.plan, snapshot.id, snapshot.captured)
    return result


def _touched(result: ResultSet, snapshot: _Snapshot | None) -> int:
    """Rows the statement changed: the server's count, or for a MySQL upsert the snapshot's (rows it
    overwrote plus rows it inserted), since the server counts an updated row twice."""
    if snapshot is not None and _counts_twice(snapshot.plan):
        return snapshot.captured.row_count
    return max(result.rowcount, 0)


def _guard(touched: list[int], limit: int | None, steps: int) -> None:
    rows = sum(touched)
    if limit is not None and rows > limit:
        what = "the write" if steps == 1 else f"statement {len(touched)} of {steps}"
        raise GuardTripped(f"{what} touched {rows} rows but {limit} were approved; rolled back, nothing "
                           "changed and no snapshot was kept")


def _committed(steps, snapshots, results, store, notify: Notify, request, started) -> tuple[Outcome, ...]:
    from snapshots import records
    for snapshot in snapshots:
        if snapshot is None:
            continue
        captured = snapshot.captured
        records.mark_complete(store.engine, snapshot.id, row_count=captured.row_count,
                              size_bytes=captured.size_bytes, location=captured.location)
        notify(Notice(f"snapshot {snapshot.id} holds the {captured.row_count} rows as they were; "
                      f"`countersign snapshots restore {snapshot.id}` puts them back"))
    elapsed = _ms(started)
    return tuple(Outcome(step.statement, Status.OK, result=result, approval_id=request.id,
                         snapshot_id=snapshot.id if snapshot else None, duration_ms=elapsed)
                 for step, snapshot, result in zip(steps, snapshots, results))


def _failed(steps, snapshots, driver, store, status: Status, message: str, request, started) -> tuple[Outcome, ...]:
    _discard(snapshots, driver, store)
    elapsed = _ms(started)
    return tuple(Outcome(step.statement, status, message, approval_id=request.id, duration_ms=elapsed)
                 for step in steps)


def _discard(snapshots: list, driver: Driver, store) -> None:
    from snapshots import records
    for snapshot in snapshots:
        if snapshot is None:
            continue
        try:
            snapshot_module(driver.dialect).discard(driver, snapshot.location)
        except DriverError:
            pass   # the server is gone; the record below says the snapshot is not usable, which is what matters
        finally:
            records.mark_discarded(store.engine, snapshot.id)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
