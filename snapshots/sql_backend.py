"""The snapshot backend of the SQL engines (PostgreSQL, MySQL/MariaDB, SQLite): the same functions
as the MongoDB backend (snapshots.mongo_snapshot), so the gate reaches every engine's snapshots the
same way, through its engine record."""
from __future__ import annotations

from engines.base import Driver
from snapshots.capture import (capture, capture_after, committed, discard, hold_writer, locations,  # noqa: F401
                               measure, prepare_outside_transaction, release_writer, writer_alive)
from snapshots.plan import SnapshotPlan, plan_snapshot, quote_table
from snapshots.records import SnapshotRecord
from snapshots.restore import RestorePlan, restore_statements


def plan(text: str, dialect: str, tables, database: str | None = None) -> SnapshotPlan:
    return plan_snapshot(text, dialect, tables)


def restore(driver: Driver, record: SnapshotRecord) -> RestorePlan:
    """The statements that put a snapshot back."""
    return restore_statements(record, driver.dialect, driver.catalog())


def sample_text(record: SnapshotRecord, dialect: str, limit: int) -> str:
    """A read of the snapshot's rows (the read's row cap keeps the first ``limit``)."""
    return f"SELECT * FROM {quote_table(record.location, dialect)}"
