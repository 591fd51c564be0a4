"""MySQL/MariaDB and SQLite behind the Driver interface, on SQLAlchemy Core.

One connection per driver, held for the session (like a console's own connection). The server
enforces what this module promises:
- read-only: MySQL ``START TRANSACTION READ ONLY``; SQLite ``PRAGMA query_only = ON`` for the
  duration of the transaction.
- one statement per execute: PyMySQL without CLIENT.MULTI_STATEMENTS and Python's sqlite3 both
  refuse a string holding several statements.
- isolation: MySQL ``SET TRANSACTION ISOLATION LEVEL`` for the next transaction, plus
  ``innodb_snapshot_isolation`` where MariaDB has it, so a row changed by someone else since our
  snapshot makes the write fail instead of silently applying to the newer row. SQLite writers take
  the database lock up front (``BEGIN IMMEDIATE``), which is serializable.
- timeouts: MariaDB ``max_statement_time`` (seconds), MySQL ``max_execution_time`` (ms, reads
  only), InnoDB ``innodb_lock_wait_timeout``; SQLite uses an interrupt timer. MySQL's are sent before
  EVERY transaction, never cached: a statement that ran in between (``SET max_statement_time = 0``)
  changed them on the server without this driver seeing it, and must not outlive that statement.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool, StaticPool

from engines import isolation_sql, mask_url
from engines.base import (Catalog, Column, ConcurrentChange, ConnectionLost, DriverError,
                                  QueryCancelled, ReadOnlyViolation, ResultSet, StatementTimeout, Table)
from engines.base import identity_text
from engines.running import Running

CONNECT_TIMEOUT_S = 10
SNAPSHOT_SCHEMA = "countersign_snapshots"
SNAPSHOT_TABLE_PREFIX = "cs_snapshot_"

# MySQL/MariaDB error numbers (https://mariadb.com/kb/en/mariadb-error-codes/)
_MYSQL_READ_ONLY = {1792}                       # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
_MYSQL_CONCURRENT = {1213, 1205, 1020}          # deadlock, lock wait timeout, record changed (snapshot isolation)
_MYSQL_TIMEOUT = {1969, 3024}                   # MariaDB max_statement_time, MySQL max_execution_time
_MYSQL_KILLED = {1317}                          # query execution was interrupted (KILL QUERY)
_MYSQL_GONE = {2006, 2013, 2003, 2055}          # server has gone away, lost connection, cannot connect


def _engine_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    if scheme in ("mysql", "mariadb", "mariadb+pymysql"):
        return "mysql+pymysql://" + rest
    return url


class SqlAlchemyDriver:
    def __init__(self, url: str) -> None:
        self.url = mask_url(url)
        parsed = make_url(_engine_url(url))
        self.dialect = "sqlite" if parsed.get_backend_name() == "sqlite" else "mysql"
        self._running = Running()          # one transaction at a time on this connection
        self._cancelled = self._running.cancelled
        self._thread_id: int | None = None     # MySQL connection id, for KILL QUERY
        self._engine = self._create_engine(parsed)
        self._conn: Connection | None = None
        self._connect()

    def _create_engine(self, parsed):
        if self.dialect == "sqlite":
            engine = create_engine(parsed, poolclass=StaticPool,
                                   connect_args={"check_same_thread": False, "isolation_level": None})
        else:
            engine = create_engine(parsed, poolclass=StaticPool, pool_pre_ping=False,
                                   connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "autocommit": True})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:
            if self.dialect == "sqlite":
                dbapi_connection.isolation_level = None   # we issue BEGIN ourselves
        return engine

    def _connect(self) -> Connection:
        try:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "mysql":
                self._thread_id = self._conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
                self._has_snapshot_isolation = bool(self._conn.exec_driver_sql(
                    "SELECT COUNT(*) FROM information_schema.session_variables "
                    "WHERE variable_name = 'INNODB_SNAPSHOT_ISOLATION'").scalar())
                self._mariadb = "mariadb" in str(self._conn.exec_driver_sql("SELECT VERSION()").scalar()).lower()
        except SQLAlchemyError as err:
            raise DriverError(f"cannot connect to {self.url}: {_first_line(err)}") from None
        return self._conn

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            return self._connect()
        return self._conn

    @contextmanager
    def transaction(self, *, read_only: bool, timeout_ms: int | None = None,
                    isolation: str | None = None) -> Iterator["SqlAlchemyTransaction"]:
        level = isolation_sql(isolation)
        with self._running.statement():
            conn = self._connection()
            with self._translated():
                begin = self._begin_mysql if self.dialect == "mysql" else self._begin_sqlite
                timer = begin(conn, read_only, timeout_ms, level)
            try:
                yield SqlAlchemyTransaction(self, conn)
            except BaseException:
                self._rollback(conn)
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            with self._translated():
                conn.exec_driver_sql("COMMIT")
                if self.dialect == "sqlite" and read_only:
                    conn.exec_driver_sql("PRAGMA query_only = OFF")

    def read(self, text: str, *, timeout_ms: int | None = None, max_rows: int | None = None) -> ResultSet:
        with self.transaction(read_only=True, timeout_ms=timeout_ms) as tx:
            return tx.execute(text, max_rows=max_rows)

    def _begin_mysql(self, conn: Connection, read_only: bool, timeout_ms: int | None, level: str | None):
        settings = self._mysql_session_settings(timeout_ms, level)   # every time: see the module docstring
        conn.exec_driver_sql("SET SESSION " + ", ".join(f"{k} = {v}" for k, v in settings.items()))
        if level:
            conn.exec_driver_sql(f"SET TRANSACTION ISOLATION LEVEL {level}")
        conn.exec_driver_sql("START TRANSACTION READ ONLY" if read_only else "START TRANSACTION READ WRITE")
        return None

    def _mysql_session_settings(self, timeout_ms: int | None, level: str | None) -> dict[str, str]:
        seconds = (timeout_ms or 0) / 1000
        settings = {"max_statement_time": f"{seconds:.3f}"} if self._mariadb else \
            {"max_execution_time": str(int(timeout_ms or 0))}
        settings["innodb_lock_wait_timeout"] = str(max(1, int(seconds))) if timeout_ms else "50"
        if self._has_snapshot_isolation:
            settings["innodb_snapshot_isolation"] = "ON" if level in ("REPEATABLE READ", "SERIALIZABLE") else "OFF"
        return settings

    def _begin_sqlite(self, conn: Connection, read_only: bool, timeout_ms: int | None, level: str | None):
        if read_only:
            conn.exec_driver_sql("PRAGMA query_only = ON")
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        if not timeout_ms:
            return None
        timer = threading.Timer(timeout_ms / 1000, self._interrupt)   # `cancelled` unset: reads as a timeout
        timer.daemon = True
        timer.start()
        return timer

    def _raw_sqlite(self):
        return self._conn.connection.dbapi_connection

    def _rollback(self, conn: Connection) -> None:
        try:
            conn.exec_driver_sql("ROLLBACK")
            if self.dialect == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = OFF")
        except SQLAlchemyError:
            conn.invalidate()   # a connection we cannot roll back is not reused

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as err:
            raise self._error(err) from None
        except SQLAlchemyError as err:
            raise DriverError(_first_line(err)) from None

    def _error(self, err: DBAPIError) -> DriverError:
        message = _first_line(err)
        if self.dialect == "sqlite":
            return self._sqlite_error(err, message)
        code = err.orig.args[0] if err.orig is not None and err.orig.args else None
        if code in _MYSQL_READ_ONLY:
            return ReadOnlyViolation(f"refused by the server: this runs in a read-only transaction ({message}); "
                                     "it was sent as a read but it writes")
        if code in _MYSQL_CONCURRENT:
            return ConcurrentChange(f"a concurrent change touched the same rows ({message}); nothing was "
                                    "committed — run it again to see the current data")
        if code in _MYSQL_KILLED and self._cancelled.is_set():
            return QueryCancelled("cancelled on the server")
        if code in _MYSQL_TIMEOUT or code in _MYSQL_KILLED:
            return StatementTimeout(f"stopped by the server after the policy's statement timeout ({message})")
        if code in _MYSQL_GONE or err.connection_invalidated:
            return ConnectionLost(f"the connection to the server was lost ({message}); nothing was committed")
        return DriverError(message)

    def _sqlite_error(self, err: DBAPIError, message: str) -> DriverError:
        lowered = message.lower()
        if "readonly" in lowered or "read-only" in lowered or "attempt to write" in lowered:
            return ReadOnlyViolation(f"refused: this runs in a read-only transaction ({message}); "
                                     "it was sent as a read but it writes")
        if "interrupted" in lowered:
            if self._cancelled.is_set():
                return QueryCancelled("cancelled")
            return StatementTimeout("stopped after the policy's statement timeout")
        if "locked" in lowered or "busy" in lowered:
            return ConcurrentChange(f"the database is locked by another writer ({message}); nothing was "
                                    "committed — try again")
        return DriverError(message)

    def catalog(self) -> Catalog:
        with self._running.statement():
            conn = self._connection()
            with self._translated():
                return self._catalog(conn)

    def _catalog(self, conn: Connection) -> Catalog:
        inspector = inspect(conn)
        schema = None
        if self.dialect == "mysql":
            schema = conn.exec_driver_sql("SELECT DATABASE()").scalar()
        tables = []
        names = inspector.get_table_names() + inspector.get_view_names()
        for name in names:
            if name.startswith(SNAPSHOT_TABLE_PREFIX) or name.startswith("sqlite_"):
                continue
            columns = tuple(Column(c["name"], str(c["type"]), bool(c.get("nullable", True)))
                            for c in inspector.get_columns(name))
            keys = tuple(inspector.get_pk_constraint(name).get("constrained_columns") or ())
            tables.append(Table(schema, name, columns, keys))
        return Catalog(tuple(tables))

    def server_identity(self) -> str:
        """The Driver protocol's identity, from the server (MySQL/MariaDB) or the file itself (SQLite)."""
        with self.transaction(read_only=True) as tx, self._translated():
            conn = tx._conn
            return _mysql_identity(conn) if self.dialect == "mysql" else _sqlite_identity(conn)

    def cancel(self) -> None:
        if self._conn is None:
            return
        self._running.cancel(self._interrupt if self.dialect == "sqlite" else self._kill_query)

    def _interrupt(self) -> bool:
        try:
            self._raw_sqlite().interrupt()
            return True
        except Exception:  # noqa: BLE001 - already closed: nothing more to stop
            return False

    def _kill_query(self) -> bool:
        # KILL QUERY must come from another connection: ours is busy running the statement.
        try:
            other = create_engine(self._engine.url, poolclass=NullPool,
                                  connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
            try:
                with other.connect() as conn:
                    conn.exec_driver_sql(f"KILL QUERY {int(self._thread_id)}")
            finally:
                other.dispose()
        except SQLAlchemyError:
            pass   # the statement may have finished already; asking again does no harm
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._engine.dispose()


class SqlAlchemyTransaction:
    def __init__(self, driver: SqlAlchemyDriver, conn: Connection) -> None:
        self._driver = driver
        self._conn = conn

    def execute(self, text: str, max_rows: int | None = None) -> ResultSet:
        with self._driver._translated():
            result = self._conn.exec_driver_sql(_escape_percent(text, self._driver.dialect))
            if not result.returns_rows:
                return ResultSet((), (), result.rowcount)
            columns = tuple(result.keys())
            if max_rows is None:
                rows = result.fetchall()
                return ResultSet(columns, tuple(tuple(r) for r in rows), len(rows))
            rows = result.fetchmany(max_rows + 1)
            result.close()
            shown = tuple(tuple(r) for r in rows[:max_rows])
            return ResultSet(columns, shown, len(shown), truncated=len(rows) > max_rows)


# The server's own id, most specific first: MySQL's server_uuid, MariaDB's server_uid (10.3+), then
# the configured server_id every server has. SHOW answers for whichever exist, on either server.
_SERVER_IDS = ("server_uuid", "server_uid", "server_id")


def _mysql_identity(conn: Connection) -> str:
    """Where the server says it runs, which database the session is in (USE moves it), who the
    session acts as (SET ROLE changes it) and the sql_mode that decides how statements are read."""
    host, port, database, user, role, sql_mode = conn.exec_driver_sql(
        "SELECT @@hostname, @@port, DATABASE(), CURRENT_USER(), CURRENT_ROLE(), @@SESSION.sql_mode").one()
    ids = dict((name.lower(), value) for name, value in conn.exec_driver_sql(
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('server_uuid', 'server_uid', 'server_id')").all())
    server = next(((name, ids[name]) for name in _SERVER_IDS if name in ids), ("server_id", None))
    return identity_text("mysql", [("host", host), ("port", port), server, ("db", database), ("user", user),
                                   ("role", role), ("sql_mode", sql_mode)])


def _sqlite_identity(conn: Connection) -> str:
    """The main database file as SQLite resolved it, and its device and inode: another file at the
    same path (moved, replaced, symlinked) is another database. An in-memory database has no file."""
    path = next((row[2] for row in conn.exec_driver_sql("PRAGMA database_list").all() if row[1] == "main"), "")
    if not path:
        return identity_text("sqlite", [("path", ":memory:")])
    resolved = os.path.realpath(path)
    try:
        found = os.stat(resolved)
    except OSError as err:
        raise DriverError(f"the SQLite file {resolved} cannot be read ({err.strerror}); reopen the target") from None
    return identity_text("sqlite", [("path", resolved), ("dev", found.st_dev), ("ino", found.st_ino)])


def _escape_percent(text: str, dialect: str) -> str:
    """PyMySQL applies %-formatting whenever SQLAlchemy passes it an (empty) argument tuple."""
    return text.replace("%", "%%") if dialect == "mysql" else text


def _first_line(err: BaseException) -> str:
    """The database's own message. A MySQL/MariaDB error reads as the mysql client prints it
    (``ERROR 1146 (42S02): Table 'shop.x' doesn't exist``), not as PyMySQL's (code, text) tuple.

    >>> import pymysql
    >>> _first_line(pymysql.err.ProgrammingError(1146, "Table 'shop.x' doesn't exist", sqlstate="42S02"))
    "ERROR 1146 (42S02): Table 'shop.x' doesn't exist"
    """
    orig = getattr(err, "orig", None) or err
    args = getattr(orig, "args", ())
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):   # PyMySQL
        state = getattr(orig, "sqlstate", None)
        text = args[1].strip().splitlines()[0] if args[1].strip() else type(orig).__name__
        return f"ERROR {args[0]}{f' ({state})' if state else ''}: {text}"
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__
