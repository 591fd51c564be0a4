"""The harness itself: every test run gets its own scratch databases on real servers."""
from __future__ import annotations

from contextlib import closing

import pytest

from tests import servers


def test_postgres_scratch_database_is_real_and_empty(pg_url):
    import psycopg
    with psycopg.connect(pg_url) as conn:
        name, tables = conn.execute(
            "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')").fetchone()
    assert name.startswith("cs_pg_") and tables == 0


def test_mariadb_scratch_database_is_real_and_empty(mysql_url):
    import pymysql
    database = mysql_url.rsplit("/", 1)[1]
    with closing(servers._mysql_connect(mysql_url, database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT DATABASE(), (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE())")
        assert cur.fetchone() == (database, 0)
    assert isinstance(conn, pymysql.connections.Connection)


def test_mongo_wire_protocol_server_answers(mongo_db):
    mongo_db.deploys.insert_many([{"site": 1, "ok": True}, {"site": 2, "ok": False}])
    assert mongo_db.deploys.count_documents({"ok": True}) == 1


def test_unreachable_server_is_an_error_not_a_skip():
    with pytest.raises(servers.ServerUnavailable, match="not reachable"):
        servers.create_pg_database("postgresql://postgres@127.0.0.1:1/postgres", "cs_never")
