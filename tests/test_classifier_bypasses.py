"""Red-team findings: statements that passed as harmless (read, or free session/transaction control)
but write, lock, call out or change state, each first confirmed on a real server. They must now need
approval; the ordinary statements next to them must stay free (friction); a selection is re-run on
the real servers to show the gate is not paranoia; pathological inputs must finish quickly."""
from __future__ import annotations

import sqlite3
import time
from contextlib import closing

import psycopg
import pytest

from classify.statements import Kind, classify
from tests import servers

R, W, D, P, A, S, T, U = (Kind.READ, Kind.WRITE, Kind.DDL, Kind.PRIVILEGE, Kind.ADMIN, Kind.SESSION,
                          Kind.TRANSACTION, Kind.UNKNOWN)
ANY = None

# dialect, statement, kind it must come out as (ANY: any kind, as long as it needs approval)
BYPASSES = [
    # -- PostgreSQL -------------------------------------------------------------------------------
    # Functions, operators and types are judged by the name PostgreSQL resolves, not sqlglot's node:
    ("postgres", "SELECT evil.lower('x')", U),                   # a user function named like a built-in
    ("postgres", "SELECT evil.now()", U),
    ("postgres", "SELECT 1 OPERATOR(evil.+) 2", U),              # user operator -> user function
    ("postgres", "SELECT 1 @#@ 2", U),                           # not one of PostgreSQL's operators
    ("postgres", "SELECT a FROM t ORDER BY a USING OPERATOR(evil.<)", ANY),
    ("postgres", "SELECT 1::evil.mytype", U),                    # cast functions, domain checks
    ("postgres", "SELECT read_csv('x')", U),                     # sqlglot knows it (DuckDB): typed node
    ("postgres", "SELECT levenshtein('a', 'b')", U),             # an extension's, or anyone's
    ("postgres", "SELECT ifnull(a, b) FROM t", U),               # not a PostgreSQL function at all
    ("postgres", 'SELECT "coalesce"(1)', U),                     # quoted: a function call, not COALESCE
    ("postgres", "SELECT json_array(1)", U),                     # PostgreSQL 15: a call of json_array()
    ("postgres", "SELECT setseed(0.5)", U),                      # changes the session's random sequence
    # With standard_conforming_strings off (a server or role setting) the server reads
    # 'a\', ' as one string, then runs pg_terminate_backend; pglast and sqlglot saw two strings.
    ("postgres", "SELECT 'a\\', ' || (SELECT pg_terminate_backend(1)::text) --'", U),
    ("postgres", "SET standard_conforming_strings = off", U),
    ("postgres", "SET search_path = evil, pg_catalog", U),       # evil.lower(text) shadows lower(text)
    # Any search_path changes what names resolve to (a later `t` or `f()` may be another schema's).
    ("postgres", "SET search_path = app, public", U),
    ("postgres", "SET search_path = pg_catalog, app", U),
    ("postgres", "COMMIT PREPARED 'x'", T),                      # ends another session's 2PC transaction
    ("postgres", "ROLLBACK PREPARED 'x'", T),
    ("postgres", "SELECT 1\x00, pg_advisory_lock(9)", U),        # the C parser stops at the NUL
    # -- MySQL / MariaDB --------------------------------------------------------------------------
    ("mysql", "SHOW TABLES WHERE GET_LOCK('x', 0)", U),          # SHOW ... WHERE evaluates expressions
    ("mysql", "SHOW VARIABLES WHERE Variable_name = SLEEP(1)", U),
    ("mysql", "SELECT evil.lower('x')", U),                      # db.f() is always a stored function
    ("mysql", "SELECT trunc(1)", U),                             # not native on MariaDB: stored function
    ("mysql", "SELECT read_csv('x')", U),                        # typed in sqlglot, stored fn in MariaDB
    ("mysql", "SELECT map(1)", U),                               # a sqlglot type token, a stored fn here
    ("mysql", "SELECT 1 --1, GET_LOCK('x', 0)", U),              # `--1` is minus minus one (sqlglot agrees)
    ("mysql", "SET NAMES gbk", U),                               # then '中\' ends its string early
    ("mysql", "SET CHARACTER SET sjis", U),
    ("mysql", "SET character_set_client = big5", U),
    ("mysql", "SELECT '中\\', GET_LOCK(0x41, 0) -- '", U),       # after SET NAMES gbk: GET_LOCK runs
    ("mysql", "SELECT 'a\\', GET_LOCK(0x41, 0) -- '", U),        # NO_BACKSLASH_ESCAPES on the server
    ("mysql", "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'", U),
    ("mysql", "EXPLAIN (SELECT * FROM (SELECT GET_LOCK('x', 0)) d)", U),   # MariaDB runs derived tables
    ("mysql", "DESCRIBE (SELECT * FROM (SELECT GET_LOCK('x', 0)) d)", U),
    ("mysql", "/* c */ EXPLAIN ANALYZE DELETE FROM t", W),       # was "EXPLAIN/DESCRIBE only reads"
    ("mysql", "START SLAVE", A),                                 # was "transaction control"
    ("mysql", "START REPLICA", A),
    ("mysql", "BEGIN NOT ATOMIC SELECT 1", U),                   # a compound statement
    ("mysql", "RESET MASTER", A),                                # deletes the binary logs
    ("mysql", "SET foreign_key_checks = 0", A),
    # Labelled SESSION, these would run unapproved under a policy that lets session statements through:
    ("mysql", "SET @a = 1, sql_mode = 'ANSI_QUOTES'", U),
    ("mysql", "SET NAMES 'gbk', @a = 1", U),
    ("mysql", "SET time_zone = '+00:00', sql_log_bin = 0", U),
    # -- SQLite -----------------------------------------------------------------------------------
    ("sqlite", "PRAGMA user_version(5)", A),                     # PRAGMA x(v) is PRAGMA x = v
    ("sqlite", "PRAGMA journal_mode(WAL)", A),
    ("sqlite", "PRAGMA busy_timeout(0)", A),
    ("sqlite", "PRAGMA schema_version(1)", A),
    ("sqlite", "BEGIN EXCLUSIVE", T),                            # locks the database against writers
    ("sqlite", "BEGIN IMMEDIATE TRANSACTION", T),
    ("sqlite", "SELECT optimize(t) FROM t", U),                  # FTS3/4 merges its b-trees
    ("sqlite", "SELECT sqlite_log(1, 'x')", U),
]


@pytest.mark.parametrize("dialect,text,kind", BYPASSES, ids=[f"{d}:{t[:45]!r}" for d, t, _ in BYPASSES])
def test_bypass_needs_approval(dialect, text, kind):
    (statement,) = classify(text, dialect)
    assert statement.requires_approval, statement.reason
    if kind is not ANY:
        assert statement.kind is kind, statement.reason


# A syntax error anywhere makes the PostgreSQL splitter fall back to the scanner, whose pieces keep
# their leading comments. The first word used to be read past non-nested comments only.
SCRIPTS = [
    ("postgres", "SELEC 1; /* c */ EXPLAIN ANALYZE SELECT pg_advisory_lock(42)", "EXPLAIN"),
    ("postgres", "SELEC 1; -- c\nEXPLAIN ANALYZE DELETE FROM t", "EXPLAIN"),
    ("postgres", "SELEC 1; /* /* */ SHOW */ COPY (SELECT 1) TO PROGRAM 'id'", "COPY"),
    ("postgres", "SELEC 1; /* /* */ BEGIN */ SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
    ("postgres", "SELEC 1; /* /* */ CLOSE */ SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
    ("mysql", "# c\nSHOW TABLES WHERE GET_LOCK('x', 0)", "SHOW"),
    ("sqlite", "/* c */ PRAGMA user_version(5)", "PRAGMA"),
]


@pytest.mark.parametrize("dialect,script,payload", SCRIPTS, ids=[f"{d}:{s[:45]!r}" for d, s, _ in SCRIPTS])
def test_leading_comments_do_not_hide_the_statement(dialect, script, payload):
    (statement,) = [s for s in classify(script, dialect) if payload in s.text]
    assert statement.requires_approval, statement.reason


def test_a_read_after_a_leading_comment_stays_free():
    *_, last = classify("SELEC 1; /* c */ SELECT 1; -- c\nSELECT 2", "postgres")
    assert (last.text, last.requires_approval) == ("-- c\nSELECT 2", False)


STILL_FREE = [
    ("postgres", "SELECT 1 OPERATOR(pg_catalog.+) 2"),
    ("postgres", "SELECT pg_catalog.now(), x::regclass, y::pg_catalog.int4 FROM t"),
    ("postgres", "SELECT E'it\\'s', 'it''s', $$a\\'b$$"),
    ("postgres", "SELECT 'a' LIKE 'b', 'a' SIMILAR TO 'b', x IS DISTINCT FROM 1, extract(year FROM now()), "
                 "now() AT TIME ZONE 'utc', substring('abc' FROM 1 FOR 2), trim(' a '), "
                 "position('a' IN 'abc'), 1 BETWEEN 0 AND 2, x = ANY (SELECT 1) FROM t"),
    ("postgres", "SELECT * FROM a JOIN b USING (i) AS x"),       # sqlglot cannot parse these two
    ("postgres", "SELECT a FROM t ORDER BY a USING >"),
    ("postgres", "WITH c(n) AS (VALUES (1)) VALUES ((SELECT n FROM c))"),
    ("postgres", "TABLE t"),
    ("postgres", "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM t"),
    ("postgres", "EXPLAIN /* c */ SELECT 1"),
    ("postgres", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY"),
    ("postgres", "ROLLBACK TO SAVEPOINT a"),
    ("postgres", "RELEASE SAVEPOINT a"),
    ("postgres", "SHOW TRANSACTION ISOLATION LEVEL"),
    ("postgres", "CLOSE c"),
    ("mysql", "SELECT a, COUNT(*), SUM(b), GROUP_CONCAT(DISTINCT d ORDER BY d SEPARATOR ',') FROM t "
              "WHERE x IN (1, 2) AND y LIKE 'a%' GROUP BY a HAVING COUNT(*) > 1 ORDER BY a LIMIT 10"),
    ("mysql", "SELECT DATE_FORMAT(c, '%Y-%m'), IFNULL(x, 0), CONCAT(a, '-', b), LEFT(n, 2), REPLACE(n, 'a', 'b'), "
              "DATE_SUB(NOW(), INTERVAL 1 DAY), CAST(x AS DECIMAL(10,2)), CAST(x AS CHAR(10)), "
              "CONVERT(x, SIGNED), IF(a > 1, 'y', 'n'), JSON_UNQUOTE(JSON_EXTRACT(j, '$.a')), UUID() FROM t"),
    ("mysql", "WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT * FROM c"),
    ("mysql", "SELECT * FROM (SELECT 1, 2) AS x (a, b)"),
    ("mysql", "SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) FROM t"),
    ("mysql", "SELECT * FROM t USE INDEX (i) WHERE MATCH (a, b) AGAINST ('x' IN BOOLEAN MODE)"),
    ("mysql", "SELECT * FROM t PARTITION (p0) WHERE EXISTS (SELECT 1) AND b = ANY (SELECT b FROM u)"),
    ("mysql", "SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (a INT PATH '$')) j"),
    ("mysql", "SELECT 1 -- a comment"),
    ("mysql", r"""SELECT JSON_EXTRACT(j, '$."a\"b"'), '{"k": "v\"w"}', `a\'b` FROM t"""),  # \" in '...'
    ("mysql", "# a comment\nSELECT 1"),
    ("mysql", "SHOW VARIABLES WHERE Variable_name LIKE 'max%'"),
    ("mysql", "SHOW FULL PROCESSLIST"),
    ("mysql", "DESCRIBE db.sites name"),
    ("mysql", "EXPLAIN FORMAT=JSON SELECT 1"),
    ("mysql", "SET NAMES utf8mb4"),
    ("mysql", "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'"),
    ("mysql", "START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT"),
    ("mysql", "USE mysql"),
    ("sqlite", "SELECT count(*), group_concat(b, ','), printf('%d', a), ifnull(a, 0), date('now'), "
               "strftime('%Y', c), json_extract(j, '$.a'), cast(a AS VARCHAR(10)), iif(a, 1, 2) FROM t"),
    ("sqlite", "SELECT * FROM json_each('[1]'), pragma_table_info('t')"),
    ("sqlite", "SELECT count(*) FILTER (WHERE a > 1) OVER (PARTITION BY b) FROM t"),
    ("sqlite", "PRAGMA table_info('t')"),
    ("sqlite", "PRAGMA main.table_info(t)"),
    ("sqlite", "PRAGMA integrity_check(10)"),
    ("sqlite", "PRAGMA user_version"),
    ("sqlite", "BEGIN DEFERRED TRANSACTION"),
    ("sqlite", "EXPLAIN QUERY PLAN SELECT * FROM t"),
]


@pytest.mark.parametrize("dialect,text", STILL_FREE, ids=[f"{d}:{t[:45]!r}" for d, t in STILL_FREE])
def test_ordinary_statements_stay_free(dialect, text):
    statements = classify(text, dialect)
    assert statements and not any(s.requires_approval for s in statements), [s.reason for s in statements]


@pytest.mark.parametrize("text", [
    "/**/" + " " * 40 + "(SELECT 1)",               # was exponential backtracking in first_words
    "PRAGMA " + "a" * 50_000 + " " * 50_000 + "(",   # was quadratic
    "SELECT 1 " + "/*! " * 20_000,                   # unterminated executable comments
    "SELECT " + "(" * 3_000 + "1" + ")" * 3_000,
    "BEGIN" + " READ WRITE" * 5_000 + " x",
])
@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
def test_pathological_input_is_classified_quickly(text, dialect):
    started = time.perf_counter()
    statements = classify(text, dialect)
    assert time.perf_counter() - started < 2
    assert statements


# -- on the real servers ----------------------------------------------------------------------------
def _pg_locks_after_read(url: str, text: str, before: tuple[str, ...] = ()) -> int:
    """Run text as Countersign runs a read (BEGIN READ ONLY ... COMMIT, extended protocol); count the
    advisory locks the session still holds afterwards."""
    with psycopg.connect(url, autocommit=True) as conn:
        for setting in before:
            conn.execute(setting)
        with conn.pipeline():
            conn.execute("BEGIN READ ONLY")
            conn.execute(text)
            conn.execute("COMMIT")
        (held,) = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                               "AND pid = pg_backend_pid()").fetchone()
        return held


@pytest.fixture
def pg_evil(pg_url):
    """A scratch database holding a schema of look-alike functions and an operator that lock."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA evil")
        conn.execute("CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql "
                     "AS $$ SELECT pg_advisory_lock(777)::text $$")
        conn.execute("CREATE FUNCTION evil.plus(int, int) RETURNS int LANGUAGE sql "
                     "AS $$ SELECT pg_try_advisory_lock(778)::int + $1 + $2 $$")
        conn.execute("CREATE OPERATOR evil.+ (leftarg = int, rightarg = int, function = evil.plus)")
    return pg_url


@pytest.mark.parametrize("script,before", [
    ("SELEC 1; /* /* */ SHOW */ SELECT pg_advisory_lock(43)", ()),
    ("SELECT evil.lower('x')", ()),
    ("SELECT 1 OPERATOR(evil.+) 2", ()),
    ("SELECT 'a\\', ' || (SELECT pg_advisory_lock(44)::text) --'", ("SET standard_conforming_strings = off",)),
])
def test_postgres_runs_these_in_a_read_only_transaction_and_they_are_gated(pg_evil, script, before):
    statement = classify(script, "postgres")[-1]
    assert _pg_locks_after_read(pg_evil, statement.text, before) == 1
    assert statement.requires_approval, statement.reason
    for setting in before:
        assert classify(setting, "postgres")[0].requires_approval


def test_postgres_search_path_shadowing_is_gated(pg_evil):
    """The read itself cannot be told apart from a built-in call; the SET that enables it is gated."""
    assert _pg_locks_after_read(pg_evil, "SELECT lower('x')", ("SET search_path = evil, pg_catalog",)) == 1
    (setting,) = classify("SET search_path = evil, pg_catalog", "postgres")
    assert setting.requires_approval and setting.kind is Kind.UNKNOWN


def _mysql_lock_held_after_read(url: str, admin_url: str, text: str, before: tuple[str, ...] = ()) -> bool:
    """Run text as Countersign runs a read (START TRANSACTION READ ONLY ... COMMIT); is the named lock
    `cs_rt` still held by the session afterwards?"""
    database = url.rsplit("/", 1)[1]
    with closing(servers._mysql_connect(admin_url, database)) as conn, conn.cursor() as cur:
        for setting in before:
            cur.execute(setting)
        cur.execute("START TRANSACTION READ ONLY")
        cur.execute(text)
        cur.fetchall()
        cur.execute("COMMIT")
        cur.execute("SELECT IS_USED_LOCK('cs_rt') = CONNECTION_ID()")
        return bool(cur.fetchone()[0])


@pytest.fixture
def mysql_evil(mysql_url, mysql_admin_url):
    database = mysql_url.rsplit("/", 1)[1]
    with closing(servers._mysql_connect(mysql_admin_url, database)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (a INT)")      # SHOW TABLES WHERE runs its expression per table
        for name in ("lower", "trunc", "read_csv"):
            cur.execute(f"CREATE FUNCTION `{name}`(x TEXT) RETURNS INT RETURN GET_LOCK('cs_rt', 0)")
    return mysql_url, mysql_admin_url, database


@pytest.mark.parametrize("text,before", [
    ("SHOW TABLES WHERE GET_LOCK('cs_rt', 0)", ()),
    ("SELECT {db}.lower('x')", ()),
    ("SELECT trunc(1)", ()),
    ("SELECT read_csv('x')", ()),
    ("SELECT 1 --1, GET_LOCK('cs_rt', 0)", ()),
    ("SELECT '中\\', GET_LOCK(0x63735f7274, 0) -- '", ("SET NAMES gbk",)),      # 0x63735f7274: 'cs_rt'
    ("SELECT 'a\\', GET_LOCK(0x63735f7274, 0) -- '", ("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'",)),
    ("EXPLAIN (SELECT * FROM (SELECT GET_LOCK('cs_rt', 0)) d)", ()),
])
def test_mariadb_runs_these_in_a_read_only_transaction_and_they_are_gated(mysql_evil, text, before):
    url, admin_url, database = mysql_evil
    text = text.replace("{db}", f"`{database}`")
    assert _mysql_lock_held_after_read(url, admin_url, text, before)
    (statement,) = classify(text, "mysql")
    assert statement.requires_approval, statement.reason
    for setting in before:
        assert classify(setting, "mysql")[0].requires_approval


def test_sqlite_pragma_call_form_sets_the_value_even_with_query_only(tmp_path):
    with closing(sqlite3.connect(tmp_path / "t.db", isolation_level=None)) as conn:
        conn.execute("PRAGMA query_only = ON")      # as Countersign's driver runs reads
        conn.execute("BEGIN")
        conn.execute("PRAGMA busy_timeout(1234)")
        conn.execute("COMMIT")
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (1234,)
    assert classify("PRAGMA busy_timeout(1234)", "sqlite")[0].requires_approval
