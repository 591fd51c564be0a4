"""Session state that cannot drift: SET forms are judged by the setting the SERVER sees (quoted or not,
wrapped in MariaDB's SET STATEMENT or not), settings that change meaning or limits need approval, and
the drivers apply the policy's timeout on every transaction whatever a session statement changed."""
from __future__ import annotations

import time
from contextlib import closing

import psycopg
import pytest

from classify.statements import Kind, classify
from config.settings import NON_READ_KINDS, Policy
from engines.base import StatementTimeout
from engines.postgres.driver import PostgresDriver
from engines.sqlalchemy.driver import SqlAlchemyDriver
from gate.policy import NeedsApproval, decide
from tests import servers

R, W, D, P, A, S, U = Kind.READ, Kind.WRITE, Kind.DDL, Kind.PRIVILEGE, Kind.ADMIN, Kind.SESSION, Kind.UNKNOWN

# dialect, statement, kind, needs approval
CASES = [
    # SET STATEMENT ... FOR x is judged by x (and its settings), never as "session"
    ("mysql", "SET STATEMENT max_statement_time = 0 FOR DROP TABLE t", D, True),
    ("mysql", "SET STATEMENT time_zone = '+00:00' FOR DELETE FROM t WHERE id = 1", W, True),
    ("mysql", "SET STATEMENT time_zone = '+00:00' FOR SELECT NOW()", R, False),
    ("mysql", "SET STATEMENT max_statement_time = 0 FOR SELECT 1", A, True),     # lifts the policy timeout
    ("mysql", "SET STATEMENT sql_log_bin = 0, time_zone = '+00:00' FOR SELECT 1", A, True),
    ("mysql", "SET STATEMENT time_zone = '+00:00' FOR SELECT GET_LOCK('x', 0)", U, True),
    ("mysql", "SET STATEMENT time_zone = '+00:00' FOR USE mysql", U, True),         # USE is refused alone
    ("mysql", "SET STATEMENT time_zone = '+00:00' FOR COMMIT", U, True),
    ("mysql", "SET STATEMENT time_zone = '+00:00'", U, True),                       # no FOR: unreadable
    ("postgres", "SET STATEMENT max_statement_time = 0 FOR DROP TABLE t", U, True),
    # quoted and unquoted names are one name
    ("postgres", 'SET "session_replication_role" = replica', A, True),
    ("postgres", 'SET "Session_Replication_Role" = replica', A, True),
    ("postgres", 'SET "role" = x', P, True),
    ("postgres", 'SET SESSION "role" = x', P, True),
    ("postgres", 'RESET "role"', P, True),
    ("postgres", 'SET "session_authorization" = x', P, True),
    ("postgres", 'SET "search_path" = evil', U, True),
    ("postgres", "SET SCHEMA 'evil'", U, True),
    ("postgres", 'SET "work_mem" = \'1TB\'', A, True),
    ("mysql", "SET `sql_log_bin` = 0", A, True),
    ("mysql", "SET SESSION `sql_mode` = ''", U, True),
    ("mysql", "SET @@session.`foreign_key_checks` = 0", A, True),
    ("mysql", "SET `max_statement_time` = 0", A, True),
    ("mysql", "SET @@GLOBAL.`time_zone` = '+00:00'", A, True),
    # a SET form the classifier cannot read is UNKNOWN
    ("postgres", "SET work_mem FROM CURRENT", U, True),
    ("postgres", "SET U&\"\\0072ole\" = x", U, True),
    ("postgres", "SET x", U, True),
    ("mysql", "SET /* c */ STATEMENT max_statement_time = 0 FOR DROP TABLE t", U, True),
    ("mysql", "SET @@@x = 1", U, True),
    ("sqlite", "SET x = 1", U, True),
    # settings that change meaning or resources need approval
    ("postgres", "SET search_path = app, public", U, True),
    ("postgres", "SET work_mem = '1TB'", A, True),
    ("postgres", "SET maintenance_work_mem = '4GB'", A, True),
    ("postgres", "SET temp_buffers = '1GB'", A, True),
    ("postgres", "SET statement_timeout = 0", A, True),
    ("postgres", "SET LOCAL lock_timeout TO 0", A, True),
    ("postgres", "SET idle_in_transaction_session_timeout = 0", A, True),
    ("postgres", "SET ROLE postgres", P, True),
    ("postgres", "SET default_transaction_read_only = off", U, True),           # not known: unknown
    ("mysql", "SET max_statement_time = 0", A, True),
    ("mysql", "SET max_execution_time = 0", A, True),
    ("mysql", "SET sql_mode = ''", U, True),
    ("mysql", "SET tmp_table_size = 1073741824", A, True),
    ("mysql", "SET max_heap_table_size = 1073741824", A, True),
    ("mysql", "SET sort_buffer_size = 1073741824", A, True),
    ("mysql", "SET sql_select_limit = 0", U, True),
    ("mysql", "SET @x = (SELECT GET_LOCK('x', 1))", U, True),
    ("mysql", "SET time_zone = (SELECT GET_LOCK('x', 1))", U, True),
    # ... and the everyday ones stay free
    ("mysql", "SET NAMES utf8mb4", S, False),
    ("mysql", "SET @since = '2024-01-01'", S, False),
    ("mysql", "SET @`since` = 5", S, False),
    ("mysql", "SET time_zone = '+00:00'", S, False),
    ("mysql", "SET @@session.time_zone = 'UTC'", S, False),
    ("postgres", "SET timezone = 'UTC'", S, False),
    ("postgres", "SET TIME ZONE 'UTC'", S, False),
    ("postgres", 'SET "TimeZone" TO \'UTC\'', S, False),
    ("postgres", "SET application_name = 'psql'", S, False),
    ("postgres", "SET datestyle = ISO, MDY", S, False),
    ("postgres", "SET enable_seqscan = off", S, False),
    ("postgres", "RESET work_mem", S, False),                                       # back to the default
    ("postgres", "RESET ALL", S, False),
]


@pytest.mark.parametrize("dialect,text,kind,gated", CASES, ids=[f"{d}:{t[:50]!r}" for d, t, _, _ in CASES])
def test_set_is_judged_by_what_the_server_sets(dialect, text, kind, gated):
    (statement,) = classify(text, dialect)
    assert (statement.kind, statement.requires_approval) == (kind, gated), statement.reason


@pytest.mark.parametrize("dialect,text", [
    ("mysql", "SET STATEMENT max_statement_time = 0 FOR DROP TABLE t"),
    ("mysql", "SET STATEMENT time_zone = '+00:00' FOR USE mysql"),
    ("mysql", "SET max_statement_time = 0"),
    ("mysql", "SET @x = (SELECT GET_LOCK('x', 1))"),
    ("postgres", 'SET "session_replication_role" = replica'),
    ("postgres", 'SET "search_path" = evil'),
    ("postgres", "SET work_mem = '1TB'"),
    ("postgres", "SET default_transaction_read_only = off"),
])
def test_a_policy_that_frees_session_statements_still_gates_these(dialect, text):
    free_sessions = Policy(approval_kinds=tuple(k for k in NON_READ_KINDS if k is not Kind.SESSION))
    assert isinstance(decide(tuple(classify(text, dialect)), free_sessions), NeedsApproval)


def test_set_statement_keeps_the_inner_statements_tables_and_where():
    (statement,) = classify("SET STATEMENT time_zone = '+00:00' FOR DELETE FROM t WHERE id = 1", "mysql")
    assert (statement.tables, statement.has_where) == (("t",), True)


# -- on the real servers: the classifier's reading is the server's -------------------------------------
def test_mariadb_set_statement_runs_its_statement(mysql_url, mysql_admin_url):
    """Under a policy that lets session statements through, this used to drop the table."""
    database = mysql_url.rsplit("/", 1)[1]
    with closing(servers._mysql_connect(mysql_admin_url, database)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (a INT)")
        cur.execute("SET STATEMENT max_statement_time = 0 FOR DROP TABLE t")
        cur.execute("SHOW TABLES")
        assert cur.fetchall() == ()
    (statement,) = classify("SET STATEMENT max_statement_time = 0 FOR DROP TABLE t", "mysql")
    assert (statement.kind, statement.requires_approval) == (D, True)


def test_mariadb_backquoted_names_are_the_same_setting(mysql_url, mysql_admin_url):
    database = mysql_url.rsplit("/", 1)[1]
    with closing(servers._mysql_connect(mysql_admin_url, database)) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION `sql_mode` = 'NO_BACKSLASH_ESCAPES'")
        cur.execute("SET @@session.`max_statement_time` = 7")
        cur.execute("SELECT @@session.sql_mode, @@session.max_statement_time")
        assert cur.fetchone() == ("NO_BACKSLASH_ESCAPES", 7.0)


def test_postgres_quoted_names_are_the_same_setting(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('SET "Search_Path" = evil')
        conn.execute('SET "work_mem" = \'77MB\'')
        conn.execute('SET "role" = pg_read_all_data')
        assert conn.execute("SELECT current_setting('search_path'), current_setting('work_mem'), "
                            "current_user::text").fetchone() == ("evil", "77MB", "pg_read_all_data")


# -- the drivers: the policy's timeout holds whatever ran before ---------------------------------------
def test_mariadb_timeout_is_applied_on_every_transaction(mysql_url):
    driver = SqlAlchemyDriver(mysql_url)
    try:
        with driver.transaction(read_only=False, timeout_ms=1000) as tx:   # as an approved SET would run
            tx.execute("SET max_statement_time = 0")
        started = time.perf_counter()
        with pytest.raises(StatementTimeout):
            driver.read("SELECT SLEEP(3)", timeout_ms=1000)
        assert time.perf_counter() - started < 2.5
        assert driver.read("SELECT @@session.max_statement_time", timeout_ms=1000).rows == ((1.0,),)
    finally:
        driver.close()


def test_postgres_timeout_is_applied_on_every_transaction(pg_url):
    driver = PostgresDriver(pg_url)
    try:
        with driver.transaction(read_only=False, timeout_ms=1000) as tx:
            tx.execute("SET statement_timeout = 0")                     # session-wide, outlives COMMIT
        started = time.perf_counter()
        with pytest.raises(StatementTimeout):
            driver.read("SELECT pg_sleep(3)", timeout_ms=1000)
        with pytest.raises(StatementTimeout):
            with driver.transaction(read_only=False, timeout_ms=1000) as tx:
                tx.execute("SELECT pg_sleep(3)")
        assert time.perf_counter() - started < 4.5
    finally:
        driver.close()
