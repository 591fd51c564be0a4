"""What the store knows about each snapshot (table cs_snapshots).

A snapshot is recorded as ``pending`` BEFORE its write's transaction starts and becomes ``complete``
after that transaction committed. A row still pending after its writer is gone (killed, or the
connection lost at COMMIT) is settled from the target itself by snapshots.reconcile: complete if the
write committed, discarded if not. Until then it cannot be restored from, and prune leaves it alone.
Rolled-back writes are marked ``discarded`` straight away; ``restored`` records that its rows were put back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update

from audit.schema import snapshots as table
from snapshots.capture import snapshot_location
from snapshots.plan import SnapshotPlan

PENDING, COMPLETE, DISCARDED, RESTORED, PRUNED = "pending", "complete", "discarded", "restored", "pruned"
_STATUS_TEXT = {
    PENDING: "pending (whether its write committed is settled when a session next opens on its target)",
    COMPLETE: "complete",
    DISCARDED: "discarded (the write rolled back)",
    RESTORED: "restored",
    PRUNED: "pruned (its rows were dropped by the retention policy)",
}


class SnapshotNotFound(LookupError):
    pass


@dataclass(frozen=True)
class SnapshotRecord:
    id: str
    created_at: datetime
    target: str
    table_name: str                  # schema.table (or table) the write touched
    location: str                    # where the before-image lives on the target server
    operation: str                   # update | delete | insert | table
    key_columns: tuple[str, ...]
    row_count: int
    size_bytes: int | None
    statement: str
    approval_id: str | None
    session_id: str | None
    status: str

    @property
    def status_text(self) -> str:
        return _STATUS_TEXT.get(self.status, self.status)

    @property
    def restorable(self) -> bool:
        return self.status == COMPLETE


def record_pending(engine: Engine, *, snapshot_id: str, target: str, plan: SnapshotPlan, statement: str,
                   approval_id: str | None, session_id: str | None, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(insert(table).values(
            id=snapshot_id, created_at=now, target=target, table_name=plan.qualified_table,
            location=snapshot_location(plan.dialect, snapshot_id), operation=plan.operation,
            key_columns=json.dumps(list(plan.key_columns)), row_count=0, size_bytes=None,
            statement=statement, approval_id=approval_id, session_id=session_id, status=PENDING))


def mark_complete(engine: Engine, snapshot_id: str, *, row_count: int, size_bytes: int | None,
                  location: str) -> None:
    # Only a pending snapshot can complete: a discarded one must never come back (reconcile never
    # discards a snapshot whose writer still holds its lock, so the two cannot race).
    _transition(engine, snapshot_id, (PENDING,), status=COMPLETE, row_count=row_count,
                size_bytes=size_bytes, location=location)


def mark_discarded(engine: Engine, snapshot_id: str) -> None:
    # Called while a failed write unwinds: never raise over the error that caused it.
    _transition(engine, snapshot_id, (PENDING,), strict=False, status=DISCARDED)


def mark_restored(engine: Engine, snapshot_id: str) -> None:
    _transition(engine, snapshot_id, (COMPLETE,), status=RESTORED)


def mark_pruned(engine: Engine, snapshot_id: str) -> None:
    _transition(engine, snapshot_id, (PENDING, COMPLETE, DISCARDED, RESTORED), status=PRUNED)


def list_snapshots(engine: Engine, target: str | None = None, status: str | None = None) -> list[SnapshotRecord]:
    query = select(table).order_by(table.c.created_at.desc(), table.c.id)
    if target is not None:
        query = query.where(table.c.target == target)
    if status is not None:
        query = query.where(table.c.status == status)
    with engine.connect() as conn:
        return [_record(row) for row in conn.execute(query)]


def get(engine: Engine, id_or_prefix: str) -> SnapshotRecord:
    prefix = id_or_prefix.strip()
    if not prefix:
        raise SnapshotNotFound("give a snapshot id (or the start of one)")
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with engine.connect() as conn:
        exact = conn.execute(select(table).where(table.c.id == prefix)).one_or_none()
        if exact is not None:
            return _record(exact)
        rows = conn.execute(select(table).where(table.c.id.like(escaped + "%", escape="\\")).limit(2)).all()
    if not rows:
        raise SnapshotNotFound(f"no snapshot {prefix!r}; `countersign snapshots list` shows them")
    if len(rows) > 1:
        raise SnapshotNotFound(f"{prefix!r} matches several snapshots; give more of the id")
    return _record(rows[0])


def _transition(engine: Engine, snapshot_id: str, allowed: tuple[str, ...], *, strict: bool = True,
                **values) -> None:
    with engine.begin() as conn:
        changed = conn.execute(update(table).where(table.c.id == snapshot_id, table.c.status.in_(allowed))
                               .values(**values)).rowcount
    if changed != 1 and strict:
        raise SnapshotNotFound(f"snapshot {snapshot_id} is not {' or '.join(allowed)}; it was not changed")


def _record(row) -> SnapshotRecord:
    m = row._mapping
    return SnapshotRecord(id=m["id"], created_at=m["created_at"], target=m["target"],
                          table_name=m["table_name"], location=m["location"], operation=m["operation"],
                          key_columns=tuple(json.loads(m["key_columns"])), row_count=int(m["row_count"]),
                          size_bytes=m["size_bytes"], statement=m["statement"],
                          approval_id=m["approval_id"], session_id=m["session_id"], status=m["status"])
