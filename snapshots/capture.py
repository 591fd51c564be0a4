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

Whether a write committed is decided by the target itself, never by the store alone: the write's own
transaction adds the snapshot's id to a commits table next to the snapshots (``countersign_snapshots.commits``,
or ``cs_snapshot_commits`` in SQLite), so the row exists exactly when the write committed, whatever
happened to the process or the connection afterwards. While the write runs, its process holds an
advisory lock named after the snapshot (PostgreSQL, MySQL), which the server frees when that process's
connection ends; snapshots.reconcile uses both to settle a snapshot the store still calls pending.
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


def commits_table(dialect: str) -> str:
    """The quoted name of the table whose rows say which snapshots' writes committed."""
    if dialect == "sqlite":
        return quote_ident("cs_snapshot_commits", dialect)
    return f"{quote_ident(SNAPSHOT_SCHEMA, dialect)}.{quote_ident('commits', dialect)}"


def _hex(snapshot_id: str) -> str:
    hex_id = snapshot_id.replace("-", "").lower()
    if not re.fullmatch(r"[0-9a-f]{1,40}", hex_id):
        raise ValueError(f"snapshot id {snapshot_id!r} is not a hex id")
    return hex_id


def _create_commits_table(tx: Transaction, dialect: str) -> None:
    kind = {"postgres": "timestamptz DEFAULT now()", "mysql": "TIMESTAMP DEFAULT CURRENT_TIMESTAMP",
            "sqlite": "TEXT DEFAULT CURRENT_TIMESTAMP"}[dialect]
    engine = " ENGINE=InnoDB" if dialect == "mysql" else ""
    tx.execute(f"CREATE TABLE IF NOT EXISTS {commits_table(dialect)} "
               f"(snapshot_id VARCHAR(40) PRIMARY KEY, committed_at {kind}){engine}")


def lock_key(snapshot_id: str) -> int:
    """The advisory lock a snapshot's writer holds: a bigint for PostgreSQL (60 bits of the id)."""
    return int(_hex(snapshot_id)[:15], 16)


def hold_writer(driver: Driver, snapshot_ids: list[str]) -> None:
    """Say "this write is running" to other processes until release_writer (or this process dies)."""
    if not snapshot_ids or driver.dialect not in ("postgres", "mysql"):
        return
    with driver.transaction(read_only=False) as tx:
        for snapshot_id in snapshot_ids:
            if driver.dialect == "postgres":
                tx.execute(f"SELECT pg_advisory_lock({lock_key(snapshot_id)})")
            else:
                tx.execute(f"SELECT GET_LOCK('cs_snap_{_hex(snapshot_id)}', 0)")


def release_writer(driver: Driver, snapshot_ids: list[str]) -> None:
    if not snapshot_ids or driver.dialect not in ("postgres", "mysql"):
        return
    try:
        with driver.transaction(read_only=False) as tx:
            for snapshot_id in snapshot_ids:
                if driver.dialect == "postgres":
                    tx.execute(f"SELECT pg_advisory_unlock({lock_key(snapshot_id)})")
                else:
                    tx.execute(f"SELECT RELEASE_LOCK('cs_snap_{_hex(snapshot_id)}')")
    except DriverError:
        pass   # the connection is gone, and its locks with it


def writer_alive(driver: Driver, snapshot_id: str) -> bool | None:
    """Whether a process still runs this snapshot's write; None where the server cannot say."""
    if driver.dialect == "postgres":
        sql = (f"SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
               f"AND ((classid::bigint << 32) | objid::bigint) = {lock_key(snapshot_id)})")
    elif driver.dialect == "mysql":
        sql = f"SELECT IS_USED_LOCK('cs_snap_{_hex(snapshot_id)}') IS NOT NULL"
    else:
        return None
    return bool(driver.read(sql).rows[0][0])


def committed(driver: Driver, location: str, snapshot_id: str) -> bool:
    """Whether the snapshot's write committed, as the target says: its row in the commits table (or,
    for a write recorded before that table existed, its snapshot table, created inside the write)."""
    dialect = driver.dialect
    try:
        if driver.read(f"SELECT count(*) FROM {commits_table(dialect)} "
                       f"WHERE snapshot_id = '{_hex(snapshot_id)}'").rows[0][0]:
            return True
    except DriverError:
        pass   # no commits table yet: no write of this version committed here
    return dialect in ("postgres", "sqlite") and _exists(driver, location)


def measure(driver: Driver, location: str) -> tuple[int, int | None]:
    """Rows and bytes a committed snapshot holds (its before-image plus inserted keys)."""
    dialect = driver.dialect
    has_keys = _exists(driver, keys_location(location))
    with driver.transaction(read_only=True) as tx:
        rows = _count(tx, _q(location, dialect))
        if has_keys:
            rows += _count(tx, _q(keys_location(location), dialect))
        return rows, _size(tx, dialect, location)


def locations(driver: Driver) -> tuple[str, ...]:
    """Every snapshot table on the target (not the keys tables), for finding strays."""
    dialect = driver.dialect
    if dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'cs\\_snapshot\\_%' ESCAPE '\\'"
    else:
        sql = (f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{SNAPSHOT_SCHEMA}' "
               "AND table_name LIKE 's\\_%'")
    try:
        names = [str(r[0]) for r in driver.read(sql).rows]
    except DriverError:
        return ()
    prefix = "" if dialect == "sqlite" else f"{SNAPSHOT_SCHEMA}."
    return tuple(prefix + n for n in names if _LOCATION.match(prefix + n))


def _exists(driver: Driver, location: str) -> bool:
    dialect = driver.dialect
    if dialect == "sqlite":
        sql = f"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{location}'"
    else:
        schema, name = location.split(".", 1)
        sql = (f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{schema}' "
               f"AND table_name = '{name}'")
    return bool(driver.read(sql).rows[0][0])


def prepare_outside_transaction(driver: Driver, plan: SnapshotPlan, snapshot_id: str) -> str:
    location = snapshot_location(plan.dialect, snapshot_id)
    if plan.dialect in ("postgres", "sqlite"):
        with driver.transaction(read_only=False) as tx:
            if plan.dialect == "postgres":
                tx.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(SNAPSHOT_SCHEMA, 'postgres')}")
            _create_commits_table(tx, plan.dialect)
    elif plan.dialect == "mysql":
        source = quote_table(plan.qualified_table, "mysql")
        # Each DDL statement commits on its own in MySQL; a transaction block changes nothing here.
        with driver.transaction(read_only=False) as tx:
            tx.execute(f"CREATE DATABASE IF NOT EXISTS {quote_ident(SNAPSHOT_SCHEMA, 'mysql')}")
            _create_commits_table(tx, "mysql")
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
    # In the write's own transaction: this row exists exactly when the write committed.
    tx.execute(f"INSERT INTO {commits_table(dialect)} (snapshot_id) VALUES ('{_hex(snapshot_id)}')")
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
