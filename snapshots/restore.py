"""The SQL that puts a snapshot's rows back. PURE: it returns statements, it runs nothing.

Restore is a write like any other: the console submits these statements through classification,
approval, their own snapshot and the audit trail. Rows are matched by primary key: updates are reverted,
deleted rows re-inserted, inserted rows removed. ``notes`` tell the person approving what the
statements will and will not do.
"""
from __future__ import annotations

from dataclasses import dataclass

from engines.base import Catalog, Table
from snapshots.capture import keys_location
from snapshots.plan import is_upsert, quote_ident, quote_table, whole_table_kind
from snapshots.records import SnapshotRecord


_NO_KEY_INSERT = ("this restore is an INSERT into a table without a primary key, which cannot itself be "
                  "snapshotted: it runs only where policy sets allow_unsnapshotted = true")


class RestoreImpossible(Exception):
    """Nothing can be restored from this snapshot; the message says why."""


@dataclass(frozen=True)
class RestorePlan:
    statements: tuple[str, ...]
    notes: tuple[str, ...]


def restore_statements(record: SnapshotRecord, dialect: str, catalog: Catalog) -> RestorePlan:
    if not record.restorable:
        raise RestoreImpossible(f"snapshot {record.id} is {record.status_text}; only a complete "
                                "snapshot can be restored")
    if record.operation == "table" and whole_table_kind(record.statement, dialect) == "drop":
        return _recreate(record, dialect, catalog)
    table = catalog.table(record.table_name)
    if table is None:
        raise RestoreImpossible(f"table {record.table_name} no longer exists; recreate it first")
    sql = _Sql(record, dialect, table)
    keys = record.key_columns
    if record.operation == "update":
        if not keys:
            raise RestoreImpossible(
                f"{record.table_name} has no primary key, so the {record.row_count} updated rows cannot "
                f"be matched to their old values; the before-image is in {record.location} to compare "
                "by hand")
        return RestorePlan(sql.revert(), (f"reverts the {record.row_count} updated rows to their old values, "
                                          f"matched by {', '.join(keys)}; rows deleted since stay deleted",))
    if record.operation == "delete":
        notes = [f"re-inserts the {record.row_count} deleted rows"]
        if keys:
            notes.append(f"fails, changing nothing, if a row with the same {', '.join(keys)} exists again")
        else:
            notes.append(f"{record.table_name} has no primary key: every row of the snapshot is inserted "
                         "again, so rows already put back by hand would be duplicated")
            notes.append(_NO_KEY_INSERT)
        return RestorePlan((sql.reinsert(),), tuple(notes))
    if record.operation == "insert":
        if not keys:
            raise RestoreImpossible(f"{record.table_name} has no primary key: inserted rows cannot be told apart")
        statements = [sql.delete_inserted()]
        notes = [f"deletes the rows the write inserted, by {', '.join(keys)} (listed in "
                 f"{keys_location(record.location)})"]
        if is_upsert(record.statement, dialect):
            statements.extend(sql.revert())
            notes.append("reverts the rows the upsert overwrote to their old values")
        return RestorePlan(tuple(statements), tuple(notes))
    if record.operation == "table":
        return _whole_table(record, dialect, sql)
    raise RestoreImpossible(f"unknown snapshot operation {record.operation!r}")


def _whole_table(record: SnapshotRecord, dialect: str, sql: "_Sql") -> RestorePlan:
    kind = whole_table_kind(record.statement, dialect)
    if kind == "truncate":
        notes = [f"re-inserts the {record.row_count} rows the table held before TRUNCATE"]
        if not record.key_columns:
            notes.append("no primary key: rows added since are kept, and nothing stops duplicates")
            notes.append(_NO_KEY_INSERT)
        return RestorePlan((sql.reinsert(),), tuple(notes))
    # MERGE may have updated, inserted and deleted rows: make the table equal its snapshot again.
    if not record.key_columns:
        raise RestoreImpossible(f"{record.table_name} has no primary key, so the rows the MERGE changed cannot "
                                f"be matched; the whole table as it was is in {record.location}")
    return RestorePlan((sql.delete_missing(), *sql.revert(), sql.insert_missing()),
                       ("makes the table equal to its snapshot, by primary key: rows added since the "
                        "snapshot (by the MERGE or anyone else) are deleted, changed rows reverted, "
                        "deleted rows re-inserted",))


def _recreate(record: SnapshotRecord, dialect: str, catalog: Catalog) -> RestorePlan:
    if catalog.table(record.table_name) is not None:
        raise RestoreImpossible(f"a table {record.table_name} exists again; drop or rename it before "
                                "restoring the dropped one")
    target, snap = quote_table(record.table_name, dialect), quote_table(record.location, dialect)
    if dialect == "mysql":
        # LIKE copies the snapshot's columns, primary key and indexes (it was created LIKE the table).
        return RestorePlan((f"CREATE TABLE {target} LIKE {snap}", f"INSERT INTO {target} SELECT * FROM {snap}"),
                           (f"recreates {record.table_name} with its columns, primary key and indexes and "
                            f"its {record.row_count} rows; foreign keys, triggers, grants and partitioning "
                            "are NOT restored",))
    return RestorePlan((f"CREATE TABLE {target} AS SELECT * FROM {snap}",),
                       (f"recreates {record.table_name} with its columns and {record.row_count} rows only: "
                        "its primary key, constraints, defaults, indexes, triggers and grants are NOT "
                        "restored; add them again by hand",))


class _Sql:
    """Statement text for one table and its snapshot, quoted for the dialect."""

    def __init__(self, record: SnapshotRecord, dialect: str, table: Table) -> None:
        self.dialect = dialect
        self.target = quote_table(f"{table.schema}.{table.name}" if table.schema else table.name, dialect)
        self.snap = quote_table(record.location, dialect)
        self.keys_table = quote_table(keys_location(record.location), dialect)
        self.keys = [quote_ident(k, dialect) for k in record.key_columns]
        key_names = {k.lower() for k in record.key_columns}
        self.columns = [quote_ident(c.name, dialect) for c in table.columns]
        self.values = [quote_ident(c.name, dialect) for c in table.columns if c.name.lower() not in key_names]

    def _key_tuple(self, prefix: str = "") -> str:
        cols = ", ".join(prefix + k for k in self.keys)
        return cols if len(self.keys) == 1 else f"({cols})"

    def _on(self) -> str:
        return " AND ".join(f"t.{k} = s.{k}" for k in self.keys)

    def revert(self) -> tuple[str, ...]:
        if not self.values:
            return ()                       # only key columns: nothing but the key could have changed
        if self.dialect == "mysql":
            sets = ", ".join(f"t.{c} = s.{c}" for c in self.values)
            return (f"UPDATE {self.target} AS t JOIN {self.snap} AS s ON {self._on()} SET {sets}",)
        sets = ", ".join(f"{c} = s.{c}" for c in self.values)
        return (f"UPDATE {self.target} AS t SET {sets} FROM {self.snap} AS s WHERE {self._on()}",)

    def reinsert(self) -> str:
        # (PostgreSQL identity columns GENERATED ALWAYS would need OVERRIDING SYSTEM VALUE, which the
        # classifier cannot parse: such a restore fails loudly instead of running unclassified.)
        cols = ", ".join(self.columns)
        return f"INSERT INTO {self.target} ({cols}) SELECT {cols} FROM {self.snap}"

    def delete_inserted(self) -> str:
        return (f"DELETE FROM {self.target} WHERE {self._key_tuple()} IN "
                f"(SELECT {', '.join(self.keys)} FROM {self.keys_table})")

    def delete_missing(self) -> str:
        return (f"DELETE FROM {self.target} WHERE {self._key_tuple()} NOT IN "
                f"(SELECT {', '.join(self.keys)} FROM {self.snap})")

    def insert_missing(self) -> str:
        cols = ", ".join(self.columns)
        return (f"INSERT INTO {self.target} ({cols}) SELECT {cols} FROM {self.snap} AS s "
                f"WHERE {self._key_tuple('s.')} NOT IN (SELECT {', '.join(self.keys)} FROM {self.target})")
