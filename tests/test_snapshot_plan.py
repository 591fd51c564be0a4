"""The pure snapshot planner: which rows each write form changes, in each dialect, and what it refuses."""
from __future__ import annotations

import pytest

from engines.base import Catalog, Column, Table
from snapshots.plan import (SnapshotUnsupported, TableInfo, is_upsert, plan_snapshot, table_infos,
                            whole_table_kind)

CATALOG = Catalog((
    Table("public", "orders", (Column("id", "int"), Column("status", "text"), Column("total", "int")), ("id",)),
    Table("public", "users", (Column("id", "int"), Column("email", "text"), Column("active", "bool")), ("id",)),
    Table("public", "events", (Column("at", "timestamp"), Column("what", "text")), ()),
    Table("public", "pairs", (Column("a", "int"), Column("b", "int"), Column("v", "text")), ("a", "b")),
    Table("audit", "orders", (Column("id", "int"),), ("id",)),
))
TABLES = table_infos(CATALOG)


def plan(sql: str, dialect: str = "postgres"):
    return plan_snapshot(sql, dialect, TABLES)


def refused(sql: str, dialect: str = "postgres") -> str:
    with pytest.raises(SnapshotUnsupported) as err:
        plan(sql, dialect)
    return str(err.value)


def test_table_infos_keys_by_qualified_and_unambiguous_bare_names():
    assert TABLES["public.users"] == TableInfo("users", "public", ("id", "email", "active"), ("id",))
    assert TABLES["users"] is TABLES["public.users"]
    assert "orders" not in TABLES                  # in two schemas: the bare name is ambiguous
    assert TABLES["audit.orders"].columns == ("id",)


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
def test_update_uses_the_writes_own_predicate(dialect):
    p = plan("UPDATE users SET active = false WHERE email LIKE '%@old.example'", dialect)
    assert (p.operation, p.table, p.schema, p.key_columns) == ("update", "users", "public", ("id",))
    assert p.before_sql == "SELECT users.* FROM users WHERE email LIKE '%@old.example'"
    assert p.count_sql == f"SELECT COUNT(*) FROM ({p.before_sql}) AS s"
    assert p.after_sql is None and not p.count_is_table_size


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
def test_delete_without_where_snapshots_every_row(dialect):
    p = plan("DELETE FROM users", dialect)
    assert (p.operation, p.before_sql) == ("delete", "SELECT users.* FROM users")


def test_aliases_and_schemas_are_kept():
    p = plan("DELETE FROM public.orders AS o WHERE o.total < 0")
    assert p.before_sql == "SELECT o.* FROM public.orders AS o WHERE o.total < 0"
    assert (p.table, p.schema) == ("orders", "public")


def test_update_from_becomes_a_correlated_exists():
    p = plan("UPDATE users AS u SET active = false FROM public.orders o WHERE o.id = u.id AND o.total > 5")
    assert p.before_sql == ("SELECT u.* FROM users AS u WHERE EXISTS(SELECT 1 FROM public.orders AS o "
                            "WHERE o.id = u.id AND o.total > 5)")


def test_sqlite_update_from():
    p = plan("UPDATE users SET email = p.v FROM pairs AS p WHERE p.a = users.id", "sqlite")
    assert p.before_sql == "SELECT users.* FROM users WHERE EXISTS(SELECT 1 FROM pairs AS p WHERE p.a = users.id)"


def test_delete_using_several_tables():
    p = plan("DELETE FROM users USING public.orders o, pairs p WHERE o.id = users.id AND p.a = o.id")
    assert p.before_sql == ("SELECT users.* FROM users WHERE EXISTS(SELECT 1 FROM public.orders AS o, pairs AS p "
                            "WHERE o.id = users.id AND p.a = o.id)")


@pytest.mark.parametrize("sql", [
    "UPDATE users u JOIN pairs p ON p.a = u.id SET u.active = 0 WHERE p.v = 'x'",
    "UPDATE pairs p JOIN users u ON p.a = u.id SET u.active = 0 WHERE p.v = 'x'",
    "UPDATE users u, pairs p SET u.active = 0 WHERE p.a = u.id AND p.v = 'x'",
])
def test_mysql_multi_table_update_targets_the_set_table(sql):
    p = plan(sql, "mysql")
    assert p.table == "users"
    assert p.before_sql.startswith("SELECT u.* FROM users AS u WHERE EXISTS(SELECT 1 FROM pairs AS p WHERE ")
    assert "p.a = u.id" in p.before_sql and "p.v = 'x'" in p.before_sql


@pytest.mark.parametrize("sql", [
    "DELETE u FROM users u JOIN pairs p ON p.a = u.id WHERE p.v = 'x'",
    "DELETE FROM u USING users u JOIN pairs p ON p.a = u.id WHERE p.v = 'x'",
])
def test_mysql_multi_table_delete(sql):
    p = plan(sql, "mysql")
    assert (p.operation, p.table) == ("delete", "users")
    assert p.before_sql == ("SELECT u.* FROM users AS u WHERE EXISTS(SELECT 1 FROM pairs AS p "
                            "WHERE p.a = u.id AND p.v = 'x')")


@pytest.mark.parametrize("sql, why", [
    ("UPDATE users u LEFT JOIN pairs p ON p.a = u.id SET u.active = 0", "LEFT JOIN"),
    ("UPDATE users u JOIN pairs p ON p.a = u.id SET u.active = 0, p.v = 'x'", "several tables"),
    ("UPDATE users u JOIN pairs p ON p.a = u.id SET active = 0", "qualify every SET column"),
    ("DELETE u, p FROM users u JOIN pairs p ON p.a = u.id", "several tables"),
    ("UPDATE users u JOIN pairs p USING (id) SET u.active = 0", "USING"),
])
def test_mysql_multi_table_forms_it_refuses(sql, why):
    assert why in refused(sql, "mysql")


def test_order_by_limit_is_kept_when_the_order_is_total():
    p = plan("DELETE FROM users WHERE active = 0 ORDER BY email, id LIMIT 10", "mysql")
    assert p.before_sql == "SELECT users.* FROM users WHERE active = 0 ORDER BY email, id LIMIT 10"
    assert p.count_sql == f"SELECT COUNT(*) FROM ({p.before_sql}) AS s"


@pytest.mark.parametrize("sql", ["UPDATE users SET active = 0 LIMIT 10",
                                 "DELETE FROM users ORDER BY email LIMIT 3"])
def test_limit_without_a_total_order_is_refused(sql):
    assert "ORDER BY that includes the whole primary key" in refused(sql, "mysql")


def test_read_only_cte_is_carried_into_the_snapshot_query():
    p = plan("WITH old AS (SELECT id FROM users WHERE active = false) DELETE FROM pairs WHERE a IN (SELECT id FROM old)")
    assert p.before_sql == ("WITH old AS (SELECT id FROM users WHERE active = FALSE) "
                            "SELECT pairs.* FROM pairs WHERE a IN (SELECT id FROM old)")


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
@pytest.mark.parametrize("sql", ["TRUNCATE TABLE users", "DROP TABLE users"])
def test_truncate_and_drop_take_the_whole_table(dialect, sql):
    p = plan(sql, dialect)
    assert (p.operation, p.before_sql, p.count_sql) == ("table", "SELECT * FROM users", "SELECT COUNT(*) FROM users")
    assert p.count_is_table_size


def test_merge_takes_the_whole_target_table():
    p = plan("MERGE INTO users u USING pairs p ON u.id = p.a WHEN MATCHED THEN UPDATE SET email = p.v "
             "WHEN NOT MATCHED THEN INSERT (id, email) VALUES (p.a, p.v)")
    assert (p.operation, p.table, p.before_sql, p.count_is_table_size) == ("table", "users", "SELECT * FROM users", True)
    assert whole_table_kind("MERGE INTO users u USING pairs p ON u.id = p.a WHEN MATCHED THEN DELETE",
                            "postgres") == "merge"


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
def test_insert_values_counts_tuples_and_finds_rows_by_literal_keys(dialect):
    p = plan("INSERT INTO users (id, email) VALUES (7, 'a@x'), (-8, 'b@x')", dialect)
    assert (p.operation, p.count_sql, p.upsert) == ("insert", "SELECT 2", False)
    assert p.before_sql == "SELECT users.* FROM users WHERE 1 = 0"
    q = "`" if dialect == "mysql" else '"'
    assert p.after_sql == f"SELECT {q}users{q}.{q}id{q} FROM users WHERE {q}users{q}.{q}id{q} IN (7, -8)"
    assert p.pre_keys_sql is None


def test_insert_select_on_postgres_finds_inserted_rows_by_transaction_id():
    p = plan("INSERT INTO users (email) SELECT v FROM pairs WHERE a > 1")
    assert p.count_sql == "SELECT COUNT(*) FROM (SELECT v FROM pairs WHERE a > 1) AS s"
    assert p.after_sql == 'SELECT "users"."id" FROM users WHERE xmin = CAST(PG_CURRENT_XACT_ID() AS xid)'
    assert p.pre_keys_sql is None


@pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
def test_insert_select_elsewhere_diffs_the_keys(dialect):
    p = plan("INSERT INTO pairs (a, b) SELECT id, id FROM users", dialect)
    q = "`" if dialect == "mysql" else '"'
    assert p.pre_keys_sql == p.after_sql == f"SELECT {q}pairs{q}.{q}a{q}, {q}pairs{q}.{q}b{q} FROM pairs"


def test_insert_with_cte_counts_through_the_cte():
    p = plan("WITH n AS (SELECT 5 AS id) INSERT INTO users (id) SELECT id FROM n")
    assert p.count_sql == "SELECT COUNT(*) FROM (WITH n AS (SELECT 5 AS id) SELECT id FROM n) AS s"


@pytest.mark.parametrize("sql, dialect", [
    ("INSERT INTO users (id, email) VALUES (1, 'a'), (2, 'b') ON CONFLICT (id) DO UPDATE SET email = excluded.email", "postgres"),
    ("INSERT INTO users (id, email) VALUES (1, 'a'), (2, 'b') ON DUPLICATE KEY UPDATE email = VALUES(email)", "mysql"),
    ("REPLACE INTO users (id, email) VALUES (1, 'a'), (2, 'b')", "mysql"),
    ("INSERT OR REPLACE INTO users (id, email) VALUES (1, 'a'), (2, 'b')", "sqlite"),
    ("INSERT INTO users (id, email) VALUES (1, 'a'), (2, 'b') ON CONFLICT (id) DO UPDATE SET email = excluded.email", "sqlite"),
])
def test_upserts_with_literal_keys_snapshot_the_rows_they_may_overwrite(sql, dialect):
    p = plan(sql, dialect)
    assert p.upsert and is_upsert(sql, dialect)
    assert p.before_sql.startswith("SELECT users.* FROM users WHERE ") and p.before_sql.endswith(" IN (1, 2)")
    assert p.after_sql.endswith(" IN (1, 2)")
    assert p.count_sql == "SELECT 2"


def test_upsert_on_another_unique_column_matches_on_that_column():
    p = plan("INSERT INTO users (email, active) VALUES ('a@x', true) ON CONFLICT (email) DO UPDATE SET active = true")
    assert p.before_sql == """SELECT users.* FROM users WHERE "users"."email" IN ('a@x')"""
    assert p.after_sql == """SELECT "users"."id" FROM users WHERE "users"."email" IN ('a@x')"""


def test_composite_keys_use_row_values():
    p = plan("INSERT INTO pairs (a, b, v) VALUES (1, 2, 'x'), (3, 4, 'y') ON CONFLICT (a, b) DO UPDATE SET v = excluded.v")
    assert p.before_sql == 'SELECT pairs.* FROM pairs WHERE ("pairs"."a", "pairs"."b") IN ((1, 2), (3, 4))'


def test_do_nothing_and_ignore_are_plain_inserts():
    assert not plan("INSERT INTO users (id) VALUES (1) ON CONFLICT DO NOTHING").upsert
    assert not plan("INSERT IGNORE INTO users (id) VALUES (1)", "mysql").upsert


@pytest.mark.parametrize("sql, dialect, why", [
    ("INSERT INTO users (id, email) SELECT a, v FROM pairs ON CONFLICT (id) DO UPDATE SET email = excluded.email",
     "postgres", "not literals"),
    ("REPLACE INTO users (email) VALUES ('a')", "mysql", "not literals"),
    ("INSERT INTO users (id) VALUES (1) ON CONFLICT ON CONSTRAINT users_pkey DO UPDATE SET id = 2", "postgres",
     "ON CONSTRAINT"),
    ("INSERT INTO events VALUES (now(), 'x')", "postgres", "no primary key"),
])
def test_inserts_it_refuses(sql, dialect, why):
    assert why in refused(sql, dialect)


@pytest.mark.parametrize("sql, why", [
    ("DELETE FROM nowhere WHERE id = 1", "not in the catalog"),
    ("DELETE FROM orders WHERE id = 1", "not in the catalog"),          # ambiguous bare name
    ("DO $$ BEGIN DELETE FROM users; END $$", "not a write Countersign knows"),
    ("SELECT delete_everything()", "not a write Countersign knows"),
    ("CALL purge_users()", "not a write Countersign knows"),
    ("WITH gone AS (DELETE FROM pairs RETURNING a) DELETE FROM users WHERE id IN (SELECT a FROM gone)",
     "data-changing"),
    ("DELETE FROM users WHERE random() < 0.1", "volatile"),
    ("TRUNCATE users, pairs", "one table per statement"),
    ("TRUNCATE users CASCADE", "CASCADE"),
    ("DROP VIEW users", "removes no table rows"),
    ("ALTER TABLE users DROP COLUMN email", "not a write Countersign knows"),
    ("DELETE FROM users; DELETE FROM pairs", "exactly one statement"),
])
def test_writes_it_cannot_snapshot_say_why(sql, why):
    assert why in refused(sql)


def test_unknown_dialect_is_refused():
    with pytest.raises(SnapshotUnsupported, match="not available"):
        plan_snapshot("DELETE FROM users", "mongodb", TABLES)
