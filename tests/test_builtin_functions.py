"""The built-in functions a read may call, checked against the servers themselves.

PostgreSQL: the shipped data (classify/sql/data/pg15_functions.json) is what its generator derives from
this server's pg_proc, and the deny-list is needed: READ ONLY lets those functions run.
MariaDB: every name on the hand-written MySQL list is a native function there, never a stored one (a
name that is not native resolves to a function of the current database, which anyone with CREATE
ROUTINE may have written).
"""
from __future__ import annotations

from contextlib import closing

import psycopg
import pytest

from classify.sql.builtins import DEFAULT_MAJOR, postgres_builtins
from classify.sql.data import generate_pg_functions
from classify.sql.safe_lists import SAFE_FUNCTIONS, SYNTAX_NAMES, UNSAFE_FUNCTIONS
from classify.statements import classify


@pytest.mark.postgres
def test_the_shipped_data_is_what_the_server_says(pg_admin_url):
    generated = generate_pg_functions.generate(pg_admin_url)
    shipped = postgres_builtins()
    if generated["server_version_num"] // 10000 == DEFAULT_MAJOR:
        assert set(generated["functions"]) == shipped.functions - {"system_user"}
        assert set(generated["operators"]) | {"BETWEEN", "NOT BETWEEN", "BETWEEN SYMMETRIC",
                                              "NOT BETWEEN SYMMETRIC"} == shipped.operators
    else:   # another major version: what we call safe must not be unsafe there
        with closing(psycopg.connect(pg_admin_url)) as conn:
            existing = {name for (name,) in conn.execute(
                "SELECT DISTINCT proname FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace")}
        assert not (shipped.functions - set(generated["functions"])) & existing


def test_no_denied_function_is_on_the_safe_list():
    builtins = postgres_builtins()
    assert not builtins.functions & set(builtins.denied)
    assert not set(generate_pg_functions.HARMLESS_VOLATILE) & set(builtins.denied)


@pytest.mark.postgres
@pytest.mark.parametrize("call, effect", [
    ("txid_current()", "SELECT txid_current_if_assigned() IS NOT NULL"),
    ("pg_current_xact_id()", "SELECT pg_current_xact_id_if_assigned() IS NOT NULL"),
    ("set_config('search_path', 'pg_temp, evil', false)", "SELECT current_setting('search_path') LIKE '%evil%'"),
    ("pg_advisory_lock(8675309)",
     "SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"),
    ("query_to_xml('SELECT set_config(''application_name'', ''ran'', false)', true, true, '')",
     "SELECT current_setting('application_name') = 'ran'"),
])
def test_read_only_does_not_stop_what_the_deny_list_refuses(pg_url, call, effect):
    """As an insider would: each call succeeds inside READ ONLY and leaves its effect behind, and
    the classifier refuses it by name."""
    (statement,) = classify(f"SELECT {call}", "postgres")
    assert statement.requires_approval, statement.reason
    with closing(psycopg.connect(pg_url, autocommit=True)) as conn:
        conn.execute("BEGIN READ ONLY")
        conn.execute(f"SELECT {call}")
        assert conn.execute(effect).fetchone()[0] is True
        conn.execute("ROLLBACK")


@pytest.mark.mysql
def test_every_mysql_safe_name_is_native_on_mariadb(mysql_url):
    """MariaDB answers a call of a name that is not native with "FUNCTION db.name does not exist"
    (1305): that call would run a stored function. Called with no arguments, a native name fails on its
    argument count (1582), parses as syntax (1064), or returns a value."""
    import pymysql
    from tests.servers import _mysql_connect
    from urllib.parse import urlsplit
    stored = []
    with closing(_mysql_connect(mysql_url, urlsplit(mysql_url).path.lstrip("/"))) as conn, conn.cursor() as cur:
        for name in sorted(SAFE_FUNCTIONS["mysql"] - SYNTAX_NAMES["mysql"] - UNSAFE_FUNCTIONS):
            try:
                cur.execute(f"SELECT {name}()")
                cur.fetchall()
            except pymysql.err.MySQLError as err:
                if err.args[0] == 1305:
                    stored.append(name)
    assert not stored, f"not native on MariaDB, so a stored function of that name would run: {stored}"
