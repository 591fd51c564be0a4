"""Take the snapshot a SnapshotPlan describes, server-side, inside the write's own transaction.

Where snapshots live (one table per snapshot, named from the snapshot id, hex digits only):
- PostgreSQL: schema ``countersign_snapshots``, table ``s_<id>``;
- MySQL/MariaDB: database ``countersign_snapshots``, table ``s_<id>``;
- SQLite: the same file, table ``cs_snapshot_<id>``.
Inserts also get ``<location>_keys``: the primary keys of the rows the write inserted, which restore
deletes. Its ``cs_new`` column tells keys listed before the write (0, removed again) from new ones (1).

MySQL commits implicitly before any DDL, so there the tables are created BEFORE the write's transaction
(prepare_outside_transaction) and only filled inside it; a rolled-back write leaves them behind for
discard(). PostgreSQL and SQLite create them inside the transaction: a rollback removes them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from engines.base import Driver, DriverError, Transaction
from snapshots.plan import SnapshotPlan, quote_ident, quote_table

SNAPSHOT_SCHEMA = "countersign_snapshots"
NEW_FLAG = "cs_new"
_LOCATION = re.compile(rf"^(?:{SNAPSHOT_SCHEMA}\.s_|cs_snapshot_)[0-9a-f]+$")


@dataclass(frozen=True)
class Captured:
    location: str
    row_count: int               # rows in the before-image (+ inserted keys, for inserts)
    size_bytes: int | None       # None where the server cannot say


def snapshot_location(dialect: str, snapshot_id: str) -> str:
    hex_id = snapshot_id.replace("-", "").lower()
    if not hex_id or not re.fullmatch(r"[0-9a-f]+", hex_id) or len(hex_id) > 40:
        raise ValueError(f"snapshot id {snapshot_id!r} is not a hex id")
    if dialect in ("postgres", "mysql", "mongodb"):     # a schema, a database, a MongoDB database
        return f"{SNAPSHOT_SCHEMA}.s_{hex_id}"
    if dialect == "sqlite":
        return f"cs_snapshot_{hex_id}"
    raise ValueError(f"no snapshot location for dialect {dialect!r}")


def keys_location(location: str) -> str:
    return f"{location}_keys"


def prepare_outside_transaction(driver: Driver, plan: SnapshotPlan, snapshot_id: str) -> str:
    location = snapshot_location(plan.dialect, snapshot_id)
    if plan.dialect == "postgres":
        with driver.transaction(read_only=False) as tx:
            tx.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(SNAPSHOT_SCHEMA, 'postgres')}")
    elif plan.dialect == "mysql":
        source = quote_table(plan.qualified_table, "mysql")
        # Each DDL statement commits on its own in MySQL; a transaction block changes nothing here.
        with driver.transaction(read_only=False) as tx:
            tx.execute(f"CREATE DATABASE IF NOT EXISTS {quote_ident(SNAPSHOT_SCHEMA, 'mysql')}")
            tx.execute(f"CREATE TABLE {_q(location, 'mysql')} LIKE {source}")
            if plan.operation == "insert":
                tx.execute(f"CREATE TABLE {_q(keys_location(location), 'mysql')} AS "
                           f"{_keys_shape(plan)} WHERE 1 = 0")
    return location


def capture(tx: Transaction, plan: SnapshotPlan, snapshot_id: str) -> Captured:
    """Before the write, in its transaction: copy the rows it will change."""
    location = snapshot_location(plan.dialect, snapshot_id)
    dialect = plan.dialect
    if plan.before_sql is None:
        raise ValueError("this plan has no before-image query")
    if dialect == "mysql":
        tx.execute(f"INSERT INTO {_q(location, dialect)} {plan.before_sql}")
        if plan.pre_keys_sql is not None:
            tx.execute(f"INSERT INTO {_q(keys_location(location), dialect)} {_keys_shape(plan, pre=True)}")
    else:
        tx.execute(f"CREATE TABLE {_q(location, dialect)} AS {plan.before_sql}")
        if plan.operation == "insert":
            shape = _keys_shape(plan, pre=plan.pre_keys_sql is not None)
            if plan.pre_keys_sql is None:
                shape += " WHERE 1 = 0"
            tx.execute(f"CREATE TABLE {_q(keys_location(location), dialect)} AS {shape}")
    rows = _count(tx, _q(location, dialect))
    return Captured(location, rows, _size(tx, dialect, location))


def capture_after(tx: Transaction, plan: SnapshotPlan, snapshot_id: str, captured: Captured) -> Captured:
    """After the write, in its transaction: for inserts, record the keys of the rows it added (rows
    whose key was in the before-image were overwritten, not added: restore reverts those instead)."""
    if plan.operation != "insert":
        return captured
    dialect, location = plan.dialect, captured.location
    keys_table = _q(keys_location(location), dialect)
    columns = ", ".join(f"a.{quote_ident(k, dialect)}" for k in plan.key_columns)
    tx.execute(f"INSERT INTO {keys_table} SELECT {columns}, 1 FROM ({plan.after_sql}) AS a "
               f"WHERE NOT EXISTS (SELECT 1 FROM {_q(location, dialect)} AS s WHERE {_same_key(plan, 's', 'a')}) "
               f"AND NOT EXISTS (SELECT 1 FROM {keys_table} AS p WHERE {_same_key(plan, 'p', 'a')})")
    if plan.pre_keys_sql is not None:
        tx.execute(f"DELETE FROM {keys_table} WHERE {quote_ident(NEW_FLAG, dialect)} = 0")
    inserted = _count(tx, keys_table)
    return Captured(location, captured.row_count + inserted, _size(tx, dialect, location))


def discard(driver: Driver, location: str | None) -> None:
    """Drop a snapshot's tables if they exist (after a rollback; on MySQL they outlive it)."""
    if location is None:
        return
    if not _LOCATION.match(location):
        raise ValueError(f"{location!r} is not a snapshot location")
    dialect = driver.dialect
    with driver.transaction(read_only=False) as tx:
        for name in (location, keys_location(location)):
            tx.execute(f"DROP TABLE IF EXISTS {_q(name, dialect)}")


# ---------------------------------------------------------------- helpers

def _q(location: str, dialect: str) -> str:
    if not re.fullmatch(rf"(?:{SNAPSHOT_SCHEMA}\.s_|cs_snapshot_)[0-9a-f]+(?:_keys)?", location):
        raise ValueError(f"{location!r} is not a snapshot location")
    return quote_table(location, dialect)


def _keys_shape(plan: SnapshotPlan, pre: bool = False) -> str:
    """SELECT of the key columns plus the cs_new flag: from the keys before the write (pre) or, only
    for its column types, from the after-write query."""
    source = plan.pre_keys_sql if pre else plan.after_sql
    columns = ", ".join(f"p.{quote_ident(k, plan.dialect)}" for k in plan.key_columns)
    return f"SELECT {columns}, 0 AS {quote_ident(NEW_FLAG, plan.dialect)} FROM ({source}) AS p"


def _same_key(plan: SnapshotPlan, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{quote_ident(k, plan.dialect)} = {right}.{quote_ident(k, plan.dialect)}"
                        for k in plan.key_columns)


def _count(tx: Transaction, quoted_table: str) -> int:
    return int(tx.execute(f"SELECT count(*) FROM {quoted_table}").rows[0][0])


def _size(tx: Transaction, dialect: str, location: str) -> int | None:
    names = (location, keys_location(location))
    if dialect == "postgres":
        parts = " + ".join(f"COALESCE(pg_total_relation_size(to_regclass('{_q(n, dialect)}')), 0)"
                           for n in names)
        sql = f"SELECT {parts}"
    elif dialect == "mysql":
        # InnoDB's figures are estimates (pages, refreshed lazily): good enough to size a snapshot.
        tables = ", ".join(f"'{n.split('.', 1)[1]}'" for n in names)
        sql = ("SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
               f"WHERE table_schema = '{SNAPSHOT_SCHEMA}' AND table_name IN ({tables})")
    else:
        tables = ", ".join(f"'{n}'" for n in names)
        sql = f"SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN ({tables})"
    try:
        return int(tx.execute(sql).rows[0][0])
    except DriverError:
        # SQLite builds without the dbstat table; the size is informative, never worth a failed write.
        return None
