"""PostgreSQL reads, judged on the server's own parse tree (libpg_query's JSON, via pglast). PURE.

A read is one SelectStmt with no INTO, no locking clause and no data-changing CTE, whose every function
call, operator and cast names something built in (pg_catalog) and free of side effects (safe_lists).
The tree is read as text: the keys below are libpg_query's node names.
"""
from __future__ import annotations

import json
import re

from classify.sql.safe_lists import POSTGRES_OPERATORS, POSTGRES_SYSTEM_SCHEMAS, SAFE_FUNCTIONS, UNSAFE_FUNCTIONS
from classify.kinds import Kind
from classify.verdict import Verdict, needs, passes

# What makes a SelectStmt more than a read, by its key in libpg_query's JSON tree.
_PG_NOT_READ: dict[str, tuple[Kind, str]] = {
    '"intoClause"': (Kind.DDL, "SELECT ... INTO creates a table"),
    '"lockingClause"': (Kind.WRITE, "has a locking clause (FOR UPDATE/SHARE), which locks rows"),
    '"InsertStmt"': (Kind.WRITE, "contains a data-changing INSERT (in a WITH clause)"),
    '"UpdateStmt"': (Kind.WRITE, "contains a data-changing UPDATE (in a WITH clause)"),
    '"DeleteStmt"': (Kind.WRITE, "contains a data-changing DELETE (in a WITH clause)"),
    '"MergeStmt"': (Kind.WRITE, "contains a data-changing MERGE (in a WITH clause)"),
}
_PG_NAME_LIST = r'\[((?:\{"String":\{"sval":"(?:[^"\\]|\\.)*"\}\},?)+)\]'
_PG_CALL = re.compile(r'"FuncCall":\{"funcname":' + _PG_NAME_LIST)
_PG_OPERATOR = re.compile(r'"(?:name|operName|useOp)":' + _PG_NAME_LIST)
_PG_OPERATOR_KEYS = ('"name":[', '"operName":[', '"useOp":[')
_PG_TYPE = re.compile(r'"typeName":\{"names":' + _PG_NAME_LIST)
_PG_SVAL = re.compile(r'"sval":"((?:[^"\\]|\\.)*)"')
_PG_STRING = r'"((?:[^"\\]|\\.)*)"'
_PG_RANGE_VAR = re.compile(rf'"RangeVar":\{{(?:"catalogname":{_PG_STRING},)?(?:"schemaname":{_PG_STRING},)?'
                           rf'"relname":{_PG_STRING}')
_PG_CTE_NAME = re.compile(rf'"ctename":{_PG_STRING}')
# SQL/JSON syntax of PostgreSQL 16+ (pglast's grammar), which PostgreSQL 15 parses as an ordinary call
# of a function named json_array, json_scalar, merge_action, ... that anyone may have created.
_PG_NEWER_SYNTAX = ('"JsonObjectConstructor"', '"JsonArrayConstructor"', '"JsonArrayQueryConstructor"',
                    '"JsonObjectAgg"', '"JsonArrayAgg"', '"JsonScalarExpr"', '"JsonSerializeExpr"',
                    '"JsonParseExpr"', '"JsonFuncExpr"', '"JsonTable"', '"MergeSupportFunc"')


def postgres_read(text: str, word: str) -> Verdict | None:
    """PostgreSQL reads, decided on the server's own parse tree alone (libpg_query, via pglast): one
    SelectStmt, nothing in _PG_NOT_READ, and every function, operator and cast built in and free of
    side effects. None when PostgreSQL does not see one SelectStmt: the general path classifies it.

    >>> postgres_read("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "with").reason
    'contains a data-changing DELETE (in a WITH clause)'
    """
    from pglast import parser
    try:
        tree_json = parser.parse_sql_json(text)
    except parser.ParseError:
        return None
    if not _one_select(tree_json):
        return None
    tables = _pg_tables(tree_json)
    problem = _pg_read_problem(tree_json)
    if problem is not None:
        return needs(*problem, tables)
    return passes(Kind.READ, "TABLE reads a whole table" if word == "table" else "read with no side effects",
                  tables)


def check_postgres_read(text: str) -> Verdict | None:
    """For reads that reached the sqlglot path: PostgreSQL's parser must agree. None when it does."""
    from pglast import parser
    try:
        tree_json = parser.parse_sql_json(text)
    except parser.ParseError as err:
        return needs(Kind.UNKNOWN, f"PostgreSQL cannot parse it: {err}")
    if not _one_select(tree_json):
        return needs(Kind.UNKNOWN, "PostgreSQL's parser does not see a plain SELECT here")
    problem = _pg_read_problem(tree_json)
    return needs(*problem) if problem else None


def _one_select(tree_json: str) -> bool:
    return tree_json.count('"stmt":') == 1 and '"stmt":{"SelectStmt"' in tree_json


def _pg_read_problem(tree_json: str) -> tuple[Kind, str] | None:
    for key, problem in _PG_NOT_READ.items():
        if key in tree_json:
            return problem
    why = _pg_call_problem(tree_json)
    return (Kind.UNKNOWN, why) if why else None


def _pg_tables(tree_json: str) -> tuple[str, ...]:
    """Relations read, as PostgreSQL names them (unquoted names folded to lower case), CTEs left out."""
    ctes = {_json_text(name) for name in _PG_CTE_NAME.findall(tree_json)} if '"ctename"' in tree_json else ()
    seen: dict[str, None] = {}
    for catalog, schema, relation in _PG_RANGE_VAR.findall(tree_json):
        if not (catalog or schema) and _json_text(relation) in ctes:
            continue
        seen.setdefault(".".join(_json_text(part) for part in (catalog, schema, relation) if part), None)
    return tuple(seen)


def _json_text(raw: str) -> str:
    return json.loads(f'"{raw}"') if "\\" in raw else raw


def _pg_call_problem(tree_json: str) -> str | None:
    """Every function, operator and cast in the server's tree, by the name the server will resolve."""
    calls = _PG_CALL.findall(tree_json)
    if len(calls) != tree_json.count('"FuncCall":'):
        return "PostgreSQL's parse tree holds a function call whose name cannot be read"
    for raw in calls:
        *schema, name = _pg_names(raw)
        if name in UNSAFE_FUNCTIONS:
            return f"calls {name}(), which has side effects a read-only transaction does not stop"
        if schema and schema != ["pg_catalog"]:
            return f"calls {'.'.join([*schema, name])}(), a function outside pg_catalog (user-defined)"
        if name not in SAFE_FUNCTIONS["postgres"]:
            return f"calls {name}(), which is not on the known-safe function list"
    operators = _PG_OPERATOR.findall(tree_json)
    if len(operators) != sum(tree_json.count(key) for key in _PG_OPERATOR_KEYS):
        return "PostgreSQL's parse tree holds an operator whose name cannot be read"
    for raw in operators:
        *schema, operator = _pg_names(raw)
        if (schema and schema != ["pg_catalog"]) or operator not in POSTGRES_OPERATORS:
            return (f"uses the operator {'.'.join([*schema, operator])}, which is not one of PostgreSQL's "
                    "own: a user-defined operator calls a user-defined function")
    for raw in _PG_TYPE.findall(tree_json):
        names = _pg_names(raw)
        if len(names) > 1 and names[0] not in POSTGRES_SYSTEM_SCHEMAS:
            return (f"casts to {'.'.join(names)}, a user-defined type (its casts and domain checks can "
                    "call functions)")
    for node in _PG_NEWER_SYNTAX:
        if node in tree_json:
            return (f"uses SQL/JSON syntax ({node.strip(chr(34))}), which PostgreSQL before 16 runs as a "
                    "call of whatever function has that name")
    return None


def _pg_names(raw: str) -> list[str]:
    return [_json_text(value) for value in _PG_SVAL.findall(raw)]
