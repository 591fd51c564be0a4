"""Settle what the store still calls ``pending`` from what the target itself says.

A snapshot is recorded pending before its write starts and marked complete after the write commits.
A process killed in between, or a connection lost at COMMIT, leaves the record pending although the
write may well have committed; calling that "incomplete" would make the only before-image of a
committed write unrestorable, and let a later prune delete it. So a pending record is decided here:

- its writer still runs (it holds the snapshot's advisory lock; or, on servers without one, the record
  is younger than the grace period): left alone;
- the target's commits table holds its id (written by the write's own transaction): complete, with the
  rows the snapshot table holds;
- otherwise the write never committed: discarded, and its tables dropped (MySQL creates them before
  the write, so a killed write would leave them behind).

Run when a session opens on a target, and before a prune.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from engines.base import Driver, DriverError
from snapshots import records

GRACE = timedelta(minutes=15)      # only where the server has no advisory lock to ask (SQLite, MongoDB)


@dataclass(frozen=True)
class Settled:
    snapshot_id: str
    status: str                    # complete | discarded
    rows: int | None = None


def reconcile(driver: Driver, backend, store_engine, target: str, now: datetime,
              only: str | None = None) -> tuple[Settled, ...]:
    """Decide every pending snapshot of ``target`` (or just ``only``) whose writer is gone."""
    settled = []
    for record in records.list_snapshots(store_engine, target, status=records.PENDING):
        if only is not None and record.id != only:
            continue
        if _running(driver, backend, record, now):
            continue
        if backend.committed(driver, record.location, record.id):
            rows, size = backend.measure(driver, record.location)
            records.mark_complete(store_engine, record.id, row_count=rows, size_bytes=size, location=record.location)
            settled.append(Settled(record.id, records.COMPLETE, rows))
        else:
            backend.discard(driver, record.location)
            records.mark_discarded(store_engine, record.id)
            settled.append(Settled(record.id, records.DISCARDED))
    return tuple(settled)


def _running(driver: Driver, backend, record, now: datetime) -> bool:
    try:
        alive = backend.writer_alive(driver, record.id)
    except DriverError:
        return True            # cannot tell: leave it for the next time
    if alive is not None:
        return alive
    created = record.created_at if record.created_at.tzinfo else record.created_at.replace(tzinfo=timezone.utc)
    return now - created < GRACE
