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

from classify.statements import Kind, Statement
from engines.base import Catalog, ConnectionLost, Driver, DriverError, QueryCancelled, ResultSet
from gate.api import Outcome, Status
from gate.policy import Estimate, NeedsApproval, allowed_rows


@dataclass(frozen=True)
class WritePlan:
    snapshot: object | None          # snapshots.plan.SnapshotPlan
    refusal: str | None = None       # why a required snapshot cannot be planned
    note: str | None = None


@dataclass(frozen=True)
class Step:
    """One statement of an approved write, with its snapshot plan and the count shown to reviewers."""
    statement: Statement
    plan: WritePlan
    estimate: Estimate


class GuardTripped(Exception):
    """The write touched more rows than were approved: roll everything back."""


def snapshot_module(dialect: str):
    """The engine's snapshot backend (each exposes the same functions)."""
    from engines.registry import engine_for_dialect
    return engine_for_dialect(dialect).snapshots()


def plan_for(statement: Statement, dialect: str, catalog: Catalog, database: str | None = None) -> WritePlan:
    if statement.kind not in (Kind.WRITE, Kind.DDL, Kind.UNKNOWN):
        return WritePlan(None)
    from snapshots.plan import SnapshotUnsupported, table_infos
    try:
        return WritePlan(snapshot_module(dialect).plan(statement.text, dialect, table_infos(catalog), database))
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


def wants_snapshot(plan: WritePlan, estimate: Estimate, snapshot_above_rows: int) -> bool:
    if plan.snapshot is None:
        return False
    if getattr(plan.snapshot, "counts_twice", False):
        return True   # its rows touched are only known from the snapshot (see _touched)
    return estimate.rows is None or estimate.rows > snapshot_above_rows


@dataclass
class _Snapshot:
    id: str
    plan: object
    location: str | None = None
    captured: object | None = None


def run(steps: list[Step], *, request, decision: NeedsApproval, driver: Driver, store, session_id: str | None,
        target_name: str, before_commit: Callable[[dict], None]) -> tuple[Outcome, ...]:
    """Run every step in one transaction; return one Outcome per step (all ok, or all not committed).
    The row limit binds to the APPROVED request's count; everything else comes from the decision."""
    started = time.perf_counter()
    snapshots = [_Snapshot(store.new_id(), step.plan.snapshot)
                 if wants_snapshot(step.plan, step.estimate, decision.snapshot_above_rows) else None
                 for step in steps]
    results: list[ResultSet] = []
    limit = allowed_rows(request.estimated_rows, request.rows_exact, decision)
    backend, held = snapshot_module(driver.dialect), [s.id for s in snapshots if s]
    committing = False
    try:
        backend.hold_writer(driver, held)
        _prepare(snapshots, steps, request, driver, store, session_id, target_name)
        with driver.transaction(read_only=False, isolation="repeatable read",
                                timeout_ms=decision.limits.timeout_ms) as tx:
            touched: list[int] = []
            for step, snapshot in zip(steps, snapshots):
                results.append(_run_step(tx, step, snapshot, driver.dialect, decision.limits.max_display_rows))
                touched.append(_touched(step, results[-1], snapshot))
                _guard(touched, limit, len(steps))
            before_commit({"rows": sum(touched), "snapshot_ids": held})
            committing = True
    except ConnectionLost as err:
        if not committing:
            return _failed(steps, snapshots, driver, store, Status.FAILED, f"{err}", request, started)
        # Lost AT commit: the server may have committed. The snapshots stay pending, and the target's
        # own commits table settles them (snapshots.reconcile) the next time a session opens there.
        return tuple(Outcome(step.statement, Status.FAILED, "the connection was lost while the write was "
                             "committing, so whether it committed is not known; its snapshot is kept and is "
                             "settled from the database when the next session opens on this target "
                             "(`countersign snapshots list` then shows whether it can be restored)",
                             approval_id=request.id, snapshot_id=snapshot.id if snapshot else None,
                             duration_ms=_ms(started))
                     for step, snapshot in zip(steps, snapshots))
    except GuardTripped as err:
        return _failed(steps, snapshots, driver, store, Status.ROLLED_BACK, str(err), request, started)
    except QueryCancelled as err:
        return _failed(steps, snapshots, driver, store, Status.CANCELLED, f"{err}; rolled back", request, started)
    except DriverError as err:
        return _failed(steps, snapshots, driver, store, Status.FAILED, f"{err}; nothing was committed",
                       request, started)
    except BaseException:
        if not committing:
            _discard(snapshots, driver, store)
        raise
    finally:
        backend.release_writer(driver, held)
    return _committed(steps, snapshots, results, store, request, started)


def _prepare(snapshots: list, steps: list[Step], request, driver: Driver, store, session_id, target_name) -> None:
    from snapshots import records
    for step, snapshot in zip(steps, snapshots):
        if snapshot is None:
            continue
        records.record_pending(store.engine, snapshot_id=snapshot.id, target=target_name, plan=snapshot.plan,
                               statement=step.statement.text, approval_id=request.id, session_id=session_id,
                               now=store.clock())
        snapshot.location = snapshot_module(driver.dialect).prepare_outside_transaction(
            driver, snapshot.plan, snapshot.id)


def _run_step(tx, step: Step, snapshot: _Snapshot | None, dialect: str, max_display_rows: int) -> ResultSet:
    module = snapshot_module(dialect)
    if snapshot is not None:
        snapshot.captured = module.capture(tx, snapshot.plan, snapshot.id)
    reading = step.statement.kind is Kind.READ      # a read inside an approved transaction: shown, capped
    result = tx.execute(step.statement.text, max_rows=max_display_rows if reading else None)
    if snapshot is not None:
        snapshot.captured = module.capture_after(tx, snapshot.plan, snapshot.id, snapshot.captured)
    return result


def _touched(step: Step, result: ResultSet, snapshot: _Snapshot | None) -> int:
    """Rows the statement changed: the server's count, or for a MySQL upsert the snapshot's (rows it
    overwrote plus rows it inserted), since the server counts an updated row twice. A read inside
    the transaction touches nothing (its rowcount is the rows it returned)."""
    if step.statement.kind is Kind.READ:
        return 0
    if snapshot is not None and getattr(snapshot.plan, "counts_twice", False):
        return snapshot.captured.row_count
    return max(result.rowcount, 0)


def _guard(touched: list[int], limit: int | None, steps: int) -> None:
    rows = sum(touched)
    if limit is not None and rows > limit:
        what = "the write" if steps == 1 else f"statement {len(touched)} of {steps}"
        raise GuardTripped(f"{what} touched {rows} rows but {limit} were approved; rolled back, nothing "
                           "changed and no snapshot was kept")


def _committed(steps, snapshots, results, store, request, started) -> tuple[Outcome, ...]:
    from snapshots import records
    for snapshot in snapshots:
        if snapshot is None:
            continue
        captured = snapshot.captured
        records.mark_complete(store.engine, snapshot.id, row_count=captured.row_count,
                              size_bytes=captured.size_bytes, location=captured.location)
    elapsed = _ms(started)
    return tuple(Outcome(step.statement, Status.OK, result=result, approval_id=request.id,
                         snapshot_id=snapshot.id if snapshot else None,
                         snapshot_rows=snapshot.captured.row_count if snapshot else None, duration_ms=elapsed)
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
