"""PostgreSQL behind the Driver interface, on psycopg 3.

Why it is written the way it is:
- The connection is in autocommit mode and every transaction is opened with an explicit
  ``BEGIN ... READ ONLY`` / ``ISOLATION LEVEL ...``, so what the server enforces is exactly what
  this module says, never a driver default.
- Every statement goes over the EXTENDED protocol, which refuses a string holding several
  statements. With no parameters psycopg would use the simple protocol, where
  ``SELECT 1; COMMIT; DELETE ...`` escapes the read-only transaction (FINDINGS.md). Pipeline mode
  always uses the extended protocol; it also lets a read travel with its BEGIN and COMMIT in a
  single round trip.
- The policy's timeout is ``SET LOCAL statement_timeout``: it ends with the transaction.
- Automatic prepared statements are off (``prepare_threshold=None``). psycopg prepares a statement
  by itself once it has run a few times; when a pipeline aborts on an error the server forgets
  those prepared statements but psycopg's cache does not, and every later statement of the session
  fails (``prepared statement "_pg3_2" does not exist``, then ``current transaction is aborted``).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import psycopg
from psycopg import errors, sql

from engines import isolation_sql, mask_url
from engines.base import (Catalog, Column, ConcurrentChange, ConnectionLost, DriverError,
                                  QueryCancelled, ReadOnlyViolation, ResultSet, StatementTimeout, Table)
from engines.base import identity_text
from engines.running import Running

CONNECT_TIMEOUT_S = 10
SNAPSHOT_SCHEMA = "countersign_snapshots"

CATALOG_SQL = """
SELECT c.table_schema, c.table_name, c.column_name, c.data_type, c.is_nullable = 'YES',
       EXISTS (SELECT 1 FROM information_schema.table_constraints tc
               JOIN information_schema.key_column_usage k
                 ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema
                AND k.table_name = tc.table_name
               WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = c.table_schema
                 AND tc.table_name = c.table_name AND k.column_name = c.column_name)
FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema', %(snapshots)s)
  AND c.table_schema NOT LIKE 'pg\\_%%' AND t.table_type IN ('BASE TABLE', 'VIEW')
ORDER BY c.table_schema, c.table_name, c.ordinal_position
"""

# What the server says this session is on, and the settings that change what a statement means. The
# last column says whether this role may read the cluster's system_identifier (pg_control_system()
# is for superusers unless granted), so the second query runs only when it can succeed.
IDENTITY_SQL = """
SELECT host(inet_server_addr()), inet_server_port(), current_database(), current_user,
       current_setting('search_path'), has_function_privilege('pg_control_system()', 'EXECUTE')
"""


class PostgresDriver:
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.url = mask_url(url)
        self._conninfo = url
        self._conn: psycopg.Connection | None = None
        self._running = Running()          # one transaction at a time on this connection
        self._cancelled = self._running.cancelled
        self._connect()

    def _connect(self) -> psycopg.Connection:
        try:
            self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                         application_name="countersign", prepare_threshold=None)
        except psycopg.Error as err:
            raise DriverError(f"cannot connect to {self.url}: {_first_line(err)}") from None
        return self._conn

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            return self._connect()   # the server went away earlier: start afresh
        return self._conn

    @contextmanager
    def transaction(self, *, read_only: bool, timeout_ms: int | None = None,
                    isolation: str | None = None) -> Iterator["PostgresTransaction"]:
        level = isolation_sql(isolation)
        with self._running.statement():
            conn = self._connection()
            with _translated(self._cancelled):
                conn.execute(_begin_sql(read_only, level, timeout_ms))
            try:
                yield PostgresTransaction(conn, self._cancelled)
            except BaseException:
                _rollback(conn)
                raise
            with _translated(self._cancelled):
                conn.execute("COMMIT")

    def read(self, text: str, *, timeout_ms: int | None = None, max_rows: int | None = None) -> ResultSet:
        """One statement in its own READ ONLY transaction, in ONE round trip: BEGIN, the timeout, the
        statement and COMMIT travel together in pipeline mode. The whole result comes back to the
        client (as in psql); only the first max_rows are kept."""
        with self._running.statement():
            conn = self._connection()
            cur = conn.cursor()
            try:
                with _translated(self._cancelled), conn.pipeline():
                    conn.execute("BEGIN READ ONLY")
                    if timeout_ms:
                        conn.execute(_timeout_sql(timeout_ms))
                    cur.execute(text)
                    conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            return _result(cur, max_rows)

    def catalog(self) -> Catalog:
        with self.transaction(read_only=True) as tx:
            cur = tx.conn.execute(CATALOG_SQL, {"snapshots": SNAPSHOT_SCHEMA})
            return _catalog(cur.fetchall())

    def server_identity(self) -> str:
        """The Driver protocol's identity, from the server. Over a unix socket inet_server_addr() is
        NULL: the socket directory and port libpq connected to stand in, named url_host/url_port so
        nobody takes them for the server's own word."""
        with self.transaction(read_only=True) as tx, _translated(self._cancelled):
            host, port, database, user, search_path, may_read_system = tx.conn.execute(IDENTITY_SQL).fetchone()
            system = (tx.conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]
                      if may_read_system else None)
            where = ([("host", host), ("port", port)] if host is not None else
                     [("url_host", tx.conn.info.host), ("url_port", tx.conn.info.port)])
        return identity_text("postgresql", where + [("db", database)]
                             + ([("system", system)] if system is not None else [])
                             + [("user", user), ("search_path", search_path)])

    def cancel(self) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            return

        def send() -> bool:
            try:
                conn.cancel_safe(timeout=5)
                return True
            except psycopg.Error:
                return False   # the server is gone: nothing more to stop
        self._running.cancel(send)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class PostgresTransaction:
    def __init__(self, conn: psycopg.Connection, cancelled: threading.Event) -> None:
        self.conn = conn
        self._cancelled = cancelled

    def execute(self, text: str, max_rows: int | None = None) -> ResultSet:
        cur = self.conn.cursor()
        with _translated(self._cancelled):
            with self.conn.pipeline():   # the extended protocol: one statement, never several
                cur.execute(text)
            return _result(cur, max_rows)


def _result(cur: psycopg.Cursor, max_rows: int | None) -> ResultSet:
    if cur.description is None:
        return ResultSet((), (), cur.rowcount)
    columns = tuple(d.name for d in cur.description)
    if max_rows is None:
        return ResultSet(columns, tuple(cur.fetchall()), cur.rowcount)
    rows = cur.fetchmany(max_rows + 1)
    shown = tuple(rows[:max_rows])
    return ResultSet(columns, shown, cur.rowcount if cur.rowcount >= 0 else len(shown),
                     truncated=len(rows) > max_rows)


@contextmanager
def _translated(cancelled: threading.Event) -> Iterator[None]:
    """psycopg errors -> the Driver's errors, each with a message a person can act on."""
    try:
        yield
    except errors.ReadOnlySqlTransaction as err:
        raise ReadOnlyViolation(f"refused by the server: this runs in a read-only transaction "
                                f"({_first_line(err)}); it was sent as a read but it writes") from None
    except errors.QueryCanceled as err:
        if cancelled.is_set():
            raise QueryCancelled("cancelled on the server") from None
        raise StatementTimeout(f"stopped by the server after the policy's statement timeout "
                               f"({_first_line(err)})") from None
    except (errors.SerializationFailure, errors.DeadlockDetected, errors.LockNotAvailable) as err:
        raise ConcurrentChange(f"a concurrent change touched the same rows ({_first_line(err)}); "
                               "nothing was committed — run it again to see the current data") from None
    except psycopg.OperationalError as err:
        raise ConnectionLost(f"the connection to the server was lost ({_first_line(err)}); "
                             "nothing was committed") from None
    except psycopg.Error as err:
        raise DriverError(_server_message(err)) from None


def _begin_sql(read_only: bool, level: str | None, timeout_ms: int | None) -> sql.Composed:
    """BEGIN and the timeout in ONE round trip. Our own text, so the simple protocol's
    multi-statement string is fine here; the user's statement never travels this way.

    >>> _begin_sql(True, None, 1500).as_string(None)
    'BEGIN READ ONLY; SET LOCAL statement_timeout = 1500'
    """
    begin = "BEGIN" + (f" ISOLATION LEVEL {level}" if level else "") + (" READ ONLY" if read_only else "")
    parts = [sql.SQL(begin)] + ([_timeout_sql(timeout_ms)] if timeout_ms else [])
    return sql.SQL("; ").join(parts)


def _timeout_sql(timeout_ms: int) -> sql.Composed:
    return sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(int(timeout_ms)))


def _rollback(conn: psycopg.Connection) -> None:
    if conn.closed or conn.broken:
        return   # the server already dropped the transaction
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        conn.close()   # a connection we cannot roll back is not reused


def _server_message(err: psycopg.Error) -> str:
    """The server's own words, as psql gives them, on one line: the primary message, "at character N"
    (where in the statement, 1-based, as the server counts: front ends draw psql's caret from it),
    the SQLSTATE, then "; detail: ..." and "; hint: ...".

    >>> class Diag: message_primary, statement_position, sqlstate, message_detail, message_hint = \\
    ...     'column "x" does not exist', "8", "42703", None, 'Perhaps you meant "t.y".'
    >>> class Err(psycopg.Error): diag = Diag()
    >>> _server_message(Err())
    'column "x" does not exist at character 8 (SQLSTATE 42703); hint: Perhaps you meant "t.y".'
    """
    diag = getattr(err, "diag", None)
    text = (getattr(diag, "message_primary", None) if diag is not None else None) or _first_line(err)
    position = getattr(diag, "statement_position", None) if diag is not None else None
    if position:
        text = f"{text} at character {position}"
    if diag is not None and diag.sqlstate:
        text = f"{text} (SQLSTATE {diag.sqlstate})"
    detail = getattr(diag, "message_detail", None) if diag is not None else None
    if detail:
        text = f"{text}; detail: {' '.join(detail.split())}"
    hint = getattr(diag, "message_hint", None) if diag is not None else None
    return f"{text}; hint: {' '.join(hint.split())}" if hint else text


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _catalog(rows: list[tuple]) -> Catalog:
    tables: dict[tuple[str, str], tuple[list[Column], list[str]]] = {}
    for schema, table, column, type_, nullable, is_key in rows:
        columns, keys = tables.setdefault((schema, table), ([], []))
        columns.append(Column(column, type_, bool(nullable)))
        if is_key:
            keys.append(column)
    return Catalog(tuple(Table(schema, name, tuple(cols), tuple(keys))
                         for (schema, name), (cols, keys) in tables.items()))
