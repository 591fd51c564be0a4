"""The catalog queries behind psql's backslash commands, per dialect. PURE: arguments in, SQL text out.

Each meta-command is answered by ordinary SELECTs on the server's own catalog, which the console
submits to the gate like any typed read: they run in a read-only transaction and each one is in the
audit trail. Every query here classifies as a READ (tests/test_meta.py checks it), so none can ever
turn into an approval request.

Names and patterns the person types only ever reach these queries as string literals, quoted for
the dialect (see ``literal``).

>>> print(literal("it's", "postgres"), literal("a\\\\b", "mysql"))
'it''s' CONVERT(X'615c62' USING utf8mb4)
>>> like_clause("n.nspname", "pub*", "postgres")
"lower(n.nspname) LIKE lower('pub%')"
"""
from __future__ import annotations

from dataclasses import dataclass

ENGINE_NAMES = {"postgres": "PostgreSQL", "mysql": "MySQL/MariaDB", "sqlite": "SQLite", "mongodb": "MongoDB"}
SNAPSHOT_SCHEMA = "countersign_snapshots"      # where snapshots live on PostgreSQL and MySQL


class NotAvailable(Exception):
    """The command has no meaning on this engine; the message says what to use instead."""


@dataclass(frozen=True)
class Query:
    """One catalog read, and the title psql would print above its table."""
    sql: str
    title: str = ""


def literal(text: str, dialect: str) -> str:
    """A string literal. Where a backslash may be an escape (MySQL; PostgreSQL with
    standard_conforming_strings off) the classifier rightly refuses to guess where a literal holding
    one ends, so such text goes as hex (MySQL) or dollar-quoted (PostgreSQL), where nothing escapes."""
    if "\\" in text and dialect == "mysql":
        return f"CONVERT(X'{text.encode('utf-8').hex()}' USING utf8mb4)"
    if "\\" in text and dialect == "postgres":
        tag = next(t for t in (f"$cs{i}$" for i in range(len(text) + 1)) if t not in text)
        return f"{tag}{text}{tag}"
    quoted = text.replace("'", "''")
    return f"'{quoted}'"


def like_clause(column: str, pattern: str, dialect: str) -> str:
    """psql's pattern (``*`` any text, ``?`` one character, case-insensitive) as a LIKE on ``column``,
    escaped with a backslash (the default escape of PostgreSQL and MySQL; SQLite is told).

    >>> like_clause("name", "a_b?", "sqlite")
    "lower(name) LIKE lower('a\\\\_b_') ESCAPE '\\\\'"
    >>> like_clause("name", "a_b?", "postgres")
    'lower(name) LIKE lower($cs0$a\\\\_b_$cs0$)'
    """
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = escaped.replace("*", "%").replace("?", "_")
    escape = " ESCAPE '\\'" if dialect == "sqlite" else ""
    return f"lower({column}) LIKE lower({literal(like, dialect)}){escape}"


def _split(pattern: str) -> tuple[str | None, str]:
    """``schema.name`` -> (schema, name); a bare name has no schema."""
    schema, dot, name = pattern.rpartition(".")
    return (schema or None, name) if dot else (None, pattern)


def _not_available(command: str, dialect: str, instead: str = "") -> NotAvailable:
    hint = f"; {instead}" if instead else ""
    return NotAvailable(f"{command} is not available on {ENGINE_NAMES.get(dialect, dialect)}{hint}")


MONGO_INSTEAD = {
    "\\l": "use `show dbs`", "\\dn": "use `show dbs`", "\\dt": "use `show collections`",
    "\\dv": "use `show collections`", "\\d": "use `show collections` or db.<collection>.findOne()",
    "\\di": "use db.<collection>.getIndexes()", "\\df": "MongoDB has no stored functions to list",
    "\\du": "use db.runCommand({usersInfo: 1}) (it needs approval: it is not a plain read)",
}


def _mongo(command: str) -> NotAvailable:
    return _not_available(command, "mongodb", MONGO_INSTEAD.get(command, ""))


# -- listings ----------------------------------------------------------------------------------------
_PG_KINDS = {"table": "('r', 'p')", "view": "('v', 'm')", "index": "('i', 'I')",
             "relation": "('r', 'p', 'v', 'm', 'S', 'f')"}
_PG_KIND_NAME = ("CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view' "
                 "WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'I' THEN 'partitioned index' "
                 "WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' END")
_PG_USER_SCHEMAS = (f"n.nspname NOT IN ('pg_catalog', 'information_schema', '{SNAPSHOT_SCHEMA}') "
                    "AND n.nspname !~ '^pg_'")


def relations(kind: str, pattern: str, dialect: str) -> Query:
    """``\\dt`` (kind "table"), ``\\dv`` ("view"), ``\\di`` ("index") and ``\\d`` ("relation")."""
    command = {"table": "\\dt", "view": "\\dv", "index": "\\di", "relation": "\\d"}[kind]
    title = "List of indexes" if kind == "index" else "List of relations"
    if dialect == "postgres":
        return Query(_pg_relations(kind, pattern), title)
    if dialect == "mysql":
        return Query(_mysql_indexes(pattern) if kind == "index" else _mysql_relations(kind, pattern), title)
    if dialect == "sqlite":
        return Query(_sqlite_relations(kind, pattern), title)
    raise _mongo(command)


def _pg_relations(kind: str, pattern: str) -> str:
    where = [f"c.relkind IN {_PG_KINDS[kind]}", _PG_USER_SCHEMAS]
    if pattern:
        schema, name = _split(pattern)
        where.append(like_clause("c.relname", name, "postgres"))
        if schema:
            where.append(like_clause("n.nspname", schema, "postgres"))
    table = ", t.relname AS \"Table\"" if kind == "index" else ""
    join = ("\nJOIN pg_catalog.pg_index x ON x.indexrelid = c.oid\n"
            "JOIN pg_catalog.pg_class t ON t.oid = x.indrelid") if kind == "index" else ""
    return (f"SELECT n.nspname AS \"Schema\", c.relname AS \"Name\", {_PG_KIND_NAME} AS \"Type\",\n"
            f"       pg_catalog.pg_get_userbyid(c.relowner) AS \"Owner\"{table}\n"
            "FROM pg_catalog.pg_class c\n"
            f"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace{join}\n"
            f"WHERE {' AND '.join(where)}\n"
            "ORDER BY 1, 2")


_MYSQL_TYPES = {"table": "('BASE TABLE', 'SYSTEM VERSIONED')", "view": "('VIEW')",
                "relation": "('BASE TABLE', 'SYSTEM VERSIONED', 'VIEW', 'SEQUENCE')"}


def _mysql_relations(kind: str, pattern: str) -> str:
    where = ["table_schema = DATABASE()", f"table_type IN {_MYSQL_TYPES[kind]}"]
    if pattern:
        where.append(like_clause("table_name", _split(pattern)[1], "mysql"))
    return ("SELECT table_name AS `Name`,\n"
            "       CASE table_type WHEN 'BASE TABLE' THEN 'table' WHEN 'SYSTEM VERSIONED' THEN 'table'\n"
            "            WHEN 'VIEW' THEN 'view' ELSE lower(table_type) END AS `Type`, engine AS `Engine`\n"
            "FROM information_schema.tables\n"
            f"WHERE {' AND '.join(where)}\n"
            "ORDER BY 1")


def _mysql_indexes(pattern: str) -> str:
    where = ["table_schema = DATABASE()"]
    if pattern:
        where.append(like_clause("index_name", _split(pattern)[1], "mysql"))
    return ("SELECT index_name AS `Name`, table_name AS `Table`,\n"
            "       GROUP_CONCAT(column_name ORDER BY seq_in_index SEPARATOR ', ') AS `Columns`,\n"
            "       CASE WHEN non_unique = 0 THEN 'unique' ELSE '' END AS `Unique`, index_type AS `Method`\n"
            "FROM information_schema.statistics\n"
            f"WHERE {' AND '.join(where)}\n"
            "GROUP BY table_name, index_name, non_unique, index_type\n"
            "ORDER BY 2, 1")


_SQLITE_TYPES = {"table": "('table')", "view": "('view')", "index": "('index')", "relation": "('table', 'view')"}
# SQLite's own tables and Countersign's snapshot tables (same file) are not the user's.
_SQLITE_OWN = "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'cs\\_snapshot\\_%' ESCAPE '\\'"


def _sqlite_relations(kind: str, pattern: str) -> str:
    where = [f"type IN {_SQLITE_TYPES[kind]}", _SQLITE_OWN]
    if pattern:
        where.append(like_clause("name", _split(pattern)[1], "sqlite"))
    table = ", tbl_name AS \"Table\"" if kind == "index" else ""
    return (f"SELECT name AS \"Name\", type AS \"Type\"{table}\n"
            "FROM sqlite_master\n"
            f"WHERE {' AND '.join(where)}\n"
            "ORDER BY 1")


def schemas(pattern: str, dialect: str) -> Query:
    """``\\dn``: PostgreSQL's schemas; on MySQL a schema is a database."""
    if dialect == "postgres":
        where = ["n.nspname !~ '^pg_'", "n.nspname <> 'information_schema'", f"n.nspname <> '{SNAPSHOT_SCHEMA}'"]
        if pattern:
            where.append(like_clause("n.nspname", pattern, "postgres"))
        return Query("SELECT n.nspname AS \"Name\", pg_catalog.pg_get_userbyid(n.nspowner) AS \"Owner\"\n"
                     "FROM pg_catalog.pg_namespace n\n"
                     f"WHERE {' AND '.join(where)}\n"
                     "ORDER BY 1", "List of schemas")
    if dialect == "mysql":   # a schema is a database; the server's own and Countersign's are left out
        return Query(_mysql_schemata(pattern, "schema_name NOT IN ('information_schema', 'mysql', "
                                              f"'performance_schema', 'sys', '{SNAPSHOT_SCHEMA}')"),
                     "List of schemas (databases)")
    if dialect == "sqlite":
        raise _not_available("\\dn", dialect, "a SQLite file has one schema, main")
    raise _mongo("\\dn")


def _mysql_schemata(pattern: str, *conditions: str) -> str:
    clauses = list(conditions) + ([like_clause("schema_name", pattern, "mysql")] if pattern else [])
    where = f"\nWHERE {' AND '.join(clauses)}" if clauses else ""
    return ("SELECT schema_name AS `Name`, default_character_set_name AS `Encoding`,\n"
            "       default_collation_name AS `Collation`\n"
            f"FROM information_schema.schemata{where}\n"
            "ORDER BY 1")


def databases(pattern: str, dialect: str) -> Query:
    """``\\l``."""
    if dialect == "postgres":
        where = f"\nWHERE {like_clause('d.datname', pattern, 'postgres')}" if pattern else ""
        return Query("SELECT d.datname AS \"Name\", pg_catalog.pg_get_userbyid(d.datdba) AS \"Owner\",\n"
                     "       d.datcollate AS \"Collate\", d.datctype AS \"Ctype\"\n"
                     f"FROM pg_catalog.pg_database d{where}\n"
                     "ORDER BY 1", "List of databases")
    if dialect == "mysql":
        return Query(_mysql_schemata(pattern), "List of databases")
    if dialect == "sqlite":
        raise _not_available("\\l", dialect, "a SQLite target is one database file (\\conninfo names it)")
    raise _mongo("\\l")


def functions(pattern: str, dialect: str) -> Query:
    """``\\df``: user-defined functions and procedures."""
    if dialect == "postgres":
        where = ["n.nspname NOT IN ('pg_catalog', 'information_schema')", "n.nspname !~ '^pg_'"]
        if pattern:
            schema, name = _split(pattern)
            where.append(like_clause("p.proname", name, "postgres"))
            if schema:
                where.append(like_clause("n.nspname", schema, "postgres"))
        return Query(
            "SELECT n.nspname AS \"Schema\", p.proname AS \"Name\",\n"
            "       pg_catalog.format_type(p.prorettype, NULL) AS \"Result data type\",\n"
            "       array_to_string(ARRAY(SELECT pg_catalog.format_type(a.t, NULL)\n"
            "                             FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, i)\n"
            "                             ORDER BY a.i), ', ') AS \"Argument data types\",\n"
            "       CASE p.prokind WHEN 'a' THEN 'agg' WHEN 'w' THEN 'window' WHEN 'p' THEN 'proc' ELSE 'func' END AS \"Type\"\n"
            "FROM pg_catalog.pg_proc p\n"
            "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace\n"
            f"WHERE {' AND '.join(where)}\n"
            "ORDER BY 1, 2, 4", "List of functions")
    if dialect == "mysql":
        where = ["r.routine_schema = DATABASE()"]
        if pattern:
            where.append(like_clause("r.routine_name", _split(pattern)[1], "mysql"))
        return Query(
            "SELECT r.routine_name AS `Name`, lower(r.routine_type) AS `Type`, r.dtd_identifier AS `Result data type`,\n"
            "       (SELECT GROUP_CONCAT(concat_ws(' ', p.parameter_mode, p.parameter_name, p.dtd_identifier)\n"
            "                            ORDER BY p.ordinal_position SEPARATOR ', ')\n"
            "        FROM information_schema.parameters p\n"
            "        WHERE p.specific_schema = r.routine_schema AND p.specific_name = r.specific_name\n"
            "          AND p.ordinal_position > 0) AS `Argument data types`\n"
            "FROM information_schema.routines r\n"
            f"WHERE {' AND '.join(where)}\n"
            "ORDER BY 1", "List of functions")
    if dialect == "sqlite":
        raise _not_available("\\df", dialect, "SQLite has no stored functions")
    raise _mongo("\\df")


def roles(pattern: str, dialect: str) -> Query:
    """``\\du``."""
    if dialect == "postgres":
        where = ["r.rolname !~ '^pg_'"] + ([like_clause("r.rolname", pattern, "postgres")] if pattern else [])
        attributes = ", ".join(f"CASE WHEN {test} THEN '{name}' END" for test, name in (
            ("r.rolsuper", "Superuser"), ("r.rolcreaterole", "Create role"), ("r.rolcreatedb", "Create DB"),
            ("NOT r.rolcanlogin", "Cannot login"), ("r.rolreplication", "Replication"),
            ("r.rolbypassrls", "Bypass RLS")))
        return Query(f"SELECT r.rolname AS \"Role name\", concat_ws(', ', {attributes}) AS \"Attributes\"\n"
                     "FROM pg_catalog.pg_roles r\n"
                     f"WHERE {' AND '.join(where)}\n"
                     "ORDER BY 1", "List of roles")
    if dialect == "mysql":
        where = f"\nWHERE {like_clause('User', pattern, 'mysql')}" if pattern else ""
        return Query(f"SELECT User AS `User`, Host AS `Host`\nFROM mysql.user{where}\nORDER BY 1, 2",
                     "List of users")
    if dialect == "sqlite":
        raise _not_available("\\du", dialect, "SQLite has no users or roles")
    raise _mongo("\\du")


# -- \d NAME -----------------------------------------------------------------------------------------
def describe(name: str, dialect: str) -> dict[str, Query]:
    """The queries behind ``\\d NAME``, by section: "columns" (the relation itself; no rows means
    no such relation), then "indexes", "constraints" and, on SQLite, "sql" (for CHECKs and views)."""
    if dialect == "postgres":
        return _pg_describe(name)
    if dialect == "mysql":
        return _mysql_describe(name)
    if dialect == "sqlite":
        return _sqlite_describe(name)
    raise _mongo("\\d")


def _pg_describe(name: str) -> dict[str, Query]:
    # to_regclass resolves the name as the server would (search_path, "Quoted" names) and is NULL,
    # not an error, when there is no such relation.
    oid = f"to_regclass({literal(name, 'postgres')})"
    return {
        "columns": Query(
            "SELECT n.nspname, c.relname, c.relkind, a.attname,\n"
            "       pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,\n"
            "       pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,\n"
            "       CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid, true) END\n"
            "FROM pg_catalog.pg_class c\n"
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
            "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped\n"
            "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum\n"
            f"WHERE c.oid = {oid}\n"
            "ORDER BY a.attnum"),
        "indexes": Query(
            "SELECT i.relname, x.indisprimary, x.indisunique, pg_catalog.pg_get_indexdef(x.indexrelid),\n"
            "       con.contype\n"
            "FROM pg_catalog.pg_index x\n"
            "JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid\n"
            "LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid\n"
            "     AND con.contype IN ('p', 'u', 'x')\n"
            f"WHERE x.indrelid = {oid}\n"
            "ORDER BY x.indisprimary DESC, i.relname"),
        "constraints": Query(
            "SELECT con.conname, con.contype, pg_catalog.pg_get_constraintdef(con.oid, true),\n"
            f"       con.conrelid = {oid}, cl.relname\n"
            "FROM pg_catalog.pg_constraint con\n"
            "JOIN pg_catalog.pg_class cl ON cl.oid = con.conrelid\n"
            f"WHERE (con.conrelid = {oid} AND con.contype IN ('c', 'f'))\n"
            f"   OR (con.confrelid = {oid} AND con.contype = 'f')\n"
            "ORDER BY 4 DESC, 2, 1"),
    }


def _mysql_describe(name: str) -> dict[str, Query]:
    schema, table = _split(name)
    where_schema = literal(schema, "mysql") if schema else "DATABASE()"
    on = f"table_schema = {where_schema} AND table_name = {literal(table, 'mysql')}"
    return {
        "columns": Query(
            "SELECT c.table_schema, c.table_name, t.table_type, c.column_name, c.column_type,\n"
            "       c.is_nullable = 'NO', c.column_default, c.extra, v.view_definition\n"
            "FROM information_schema.tables t\n"
            "LEFT JOIN information_schema.columns c\n"
            "  ON c.table_schema = t.table_schema AND c.table_name = t.table_name\n"
            "LEFT JOIN information_schema.views v\n"
            "  ON v.table_schema = t.table_schema AND v.table_name = t.table_name\n"
            f"WHERE t.{on.replace(' AND table_name', ' AND t.table_name')}\n"
            "ORDER BY c.ordinal_position"),
        "indexes": Query(
            "SELECT index_name, index_name = 'PRIMARY', non_unique = 0,\n"
            "       GROUP_CONCAT(column_name ORDER BY seq_in_index SEPARATOR ', '), index_type\n"
            "FROM information_schema.statistics\n"
            f"WHERE {on}\n"
            "GROUP BY index_name, non_unique, index_type\n"
            "ORDER BY index_name = 'PRIMARY' DESC, index_name"),
        "constraints": Query(
            "SELECT k.constraint_name, 'f', k.table_name,\n"
            "       GROUP_CONCAT(k.column_name ORDER BY k.ordinal_position SEPARATOR ', '),\n"
            "       k.referenced_table_name,\n"
            "       GROUP_CONCAT(k.referenced_column_name ORDER BY k.ordinal_position SEPARATOR ', '),\n"
            "       r.update_rule, r.delete_rule, k.table_name = " + literal(table, "mysql") + "\n"
            "FROM information_schema.key_column_usage k\n"
            "JOIN information_schema.referential_constraints r\n"
            "  ON r.constraint_schema = k.constraint_schema AND r.constraint_name = k.constraint_name\n"
            "     AND r.table_name = k.table_name\n"
            f"WHERE (k.{on.replace(' AND table_name', ' AND k.table_name')})\n"
            f"   OR (k.referenced_table_schema = {where_schema} AND k.referenced_table_name = {literal(table, 'mysql')})\n"
            "GROUP BY k.constraint_name, k.table_name, k.referenced_table_name, r.update_rule, r.delete_rule\n"
            "UNION ALL\n"
            "SELECT cc.constraint_name, 'c', tc.table_name, cc.check_clause, NULL, NULL, NULL, NULL, 1\n"
            "FROM information_schema.check_constraints cc\n"
            "JOIN information_schema.table_constraints tc\n"
            "  ON tc.constraint_schema = cc.constraint_schema AND tc.constraint_name = cc.constraint_name\n"
            "     AND tc.constraint_type = 'CHECK'\n"
            f"WHERE tc.{on.replace(' AND table_name', ' AND tc.table_name')}\n"
            "ORDER BY 9 DESC, 2, 1"),
    }


def _sqlite_describe(name: str) -> dict[str, Query]:
    table = literal(_split(name)[1], "sqlite")
    return {
        "columns": Query(
            "SELECT m.type, m.name, c.name, c.type, c.\"notnull\", c.dflt_value, c.pk\n"
            "FROM sqlite_master m\n"
            "LEFT JOIN pragma_table_info(m.name) c\n"
            f"WHERE m.type IN ('table', 'view') AND m.name = {table} COLLATE NOCASE\n"
            "ORDER BY c.cid"),
        "indexes": Query(
            "SELECT il.name, il.origin = 'pk', il.\"unique\",\n"
            "       (SELECT group_concat(ii.name, ', ') FROM pragma_index_info(il.name) ii), il.origin, il.partial\n"
            f"FROM pragma_index_list({table}) il\n"
            "ORDER BY il.origin = 'pk' DESC, il.name"),
        "constraints": Query(
            "SELECT m.name, f.id, f.\"table\", group_concat(f.\"from\", ', '), group_concat(f.\"to\", ', '),\n"
            "       f.on_update, f.on_delete, m.name = " + table + " COLLATE NOCASE\n"
            "FROM sqlite_master m\n"
            "JOIN pragma_foreign_key_list(m.name) f\n"
            f"WHERE m.type = 'table' AND (m.name = {table} COLLATE NOCASE OR f.\"table\" = {table} COLLATE NOCASE)\n"
            "GROUP BY m.name, f.id, f.\"table\", f.on_update, f.on_delete\n"
            "ORDER BY 8 DESC, m.name, f.id"),
        "sql": Query(f"SELECT sql FROM sqlite_master WHERE name = {table} COLLATE NOCASE AND type IN ('table', 'view')"),
    }
