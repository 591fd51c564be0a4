"""PostgreSQL reads, judged on the server's own parse tree (libpg_query's JSON, via pglast). PURE.

A read is one SelectStmt with no INTO, no locking clause and no data-changing CTE, whose every function
call, operator and cast names something built in (pg_catalog) and free of side effects. Which built-ins
those are is an input value (builtins.PostgresBuiltins, derived from the server's pg_proc).
The tree is read as text: the keys below are libpg_query's node names. A key is always followed by
`:` in the JSON, and no string value is (a quote inside a value is escaped), so `"intoClause":` is
the node and never a column alias spelled `AS "intoClause"`.
"""
from __future__ import annotations

import json
import re

from classify.sql.builtins import PostgresBuiltins, postgres_builtins
from classify.kinds import Kind
from classify.verdict import Verdict, needs, passes

# Schemas whose types and functions only a superuser can add to.
POSTGRES_SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})

# What makes a SelectStmt more than a read, by its key in libpg_query's JSON tree.
_PG_NOT_READ: dict[str, tuple[Kind, str]] = {
    '"intoClause":': (Kind.DDL, "SELECT ... INTO creates a table"),
    '"lockingClause":': (Kind.WRITE, "has a locking clause (FOR UPDATE/SHARE), which locks rows"),
    '"InsertStmt":': (Kind.WRITE, "contains a data-changing INSERT (in a WITH clause)"),
    '"UpdateStmt":': (Kind.WRITE, "contains a data-changing UPDATE (in a WITH clause)"),
    '"DeleteStmt":': (Kind.WRITE, "contains a data-changing DELETE (in a WITH clause)"),
    '"MergeStmt":': (Kind.WRITE, "contains a data-changing MERGE (in a WITH clause)"),
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
_PG_NEWER_SYNTAX = ('"JsonObjectConstructor":', '"JsonArrayConstructor":', '"JsonArrayQueryConstructor":',
                    '"JsonObjectAgg":', '"JsonArrayAgg":', '"JsonScalarExpr":', '"JsonSerializeExpr":',
                    '"JsonParseExpr":', '"JsonFuncExpr":', '"JsonTable":', '"MergeSupportFunc":')
# What EXPLAIN without ANALYZE may plan: the planner runs none of it (it only folds IMMUTABLE calls,
# which the same function check as a read's covers).
_PLANNABLE = ("SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CreateTableAsStmt")
_FALSE = frozenset({"false", "off", "0", "no"})


def postgres_read(text: str, word: str, builtins: PostgresBuiltins | None = None) -> Verdict | None:
    """PostgreSQL reads, decided on the server's own parse tree alone (libpg_query, via pglast): one
    SelectStmt, nothing in _PG_NOT_READ, and every function, operator and cast built in and free of
    side effects. None when PostgreSQL does not see one SelectStmt: the general path classifies it.

    >>> postgres_read("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "with").reason
    'contains a data-changing DELETE (in a WITH clause)'
    >>> postgres_read('SELECT 1 AS "intoClause"', "select").requires_approval
    False
    """
    from pglast import parser
    try:
        tree_json = parser.parse_sql_json(text)
    except parser.ParseError:
        return None
    if not _one_statement(tree_json, "SelectStmt"):
        return None
    tables = _pg_tables(tree_json)
    problem = _pg_read_problem(tree_json, builtins or postgres_builtins())
    if problem is not None:
        return needs(*problem, tables)
    return passes(Kind.READ, "TABLE reads a whole table" if word == "table" else "read with no side effects",
                  tables)


def check_postgres_read(text: str, builtins: PostgresBuiltins | None = None) -> Verdict | None:
    """For reads that reached the sqlglot path: PostgreSQL's parser must agree. None when it does."""
    from pglast import parser
    try:
        tree_json = parser.parse_sql_json(text)
    except parser.ParseError as err:
        return needs(Kind.UNKNOWN, f"PostgreSQL cannot parse it: {err}")
    if not _one_statement(tree_json, "SelectStmt"):
        return needs(Kind.UNKNOWN, "PostgreSQL's parser does not see a plain SELECT here")
    problem = _pg_read_problem(tree_json, builtins or postgres_builtins())
    return needs(*problem) if problem else None


def postgres_plan_only(text: str, builtins: PostgresBuiltins | None = None) -> Verdict | None:
    """EXPLAIN without ANALYZE of a write, a SELECT ... INTO / FOR UPDATE or a CREATE TABLE AS: the
    server plans the statement and runs none of it (no row is written or locked). It passes when every
    function, operator and cast in it would pass in a read, since the planner evaluates IMMUTABLE calls
    with constant arguments. None when the text is not such an EXPLAIN.

    >>> postgres_plan_only("EXPLAIN (COSTS OFF) DELETE FROM t WHERE id = 1").reason
    'EXPLAIN without ANALYZE only plans the DELETE; none of it runs'
    >>> postgres_plan_only("EXPLAIN ANALYZE DELETE FROM t") is None
    True
    """
    from pglast import parser
    try:
        tree_json = parser.parse_sql_json(text)
    except parser.ParseError:
        return None
    if not _one_statement(tree_json, "ExplainStmt"):
        return None
    explain = json.loads(tree_json)["stmts"][0]["stmt"]["ExplainStmt"]
    if any(_option_is_on(option["DefElem"]) for option in explain.get("options", ())
           if option.get("DefElem", {}).get("defname", "").lower() == "analyze") \
            or any("DefElem" not in option for option in explain.get("options", ())):
        return None
    (statement,) = explain["query"]
    if statement not in _PLANNABLE:
        return None
    problem = _pg_call_problem(tree_json, builtins or postgres_builtins())
    what = statement.removesuffix("Stmt").upper().replace("CREATETABLEAS", "CREATE TABLE AS")
    if problem is not None:
        return needs(Kind.UNKNOWN, f"EXPLAIN plans the {what}, and planning evaluates its calls: {problem}")
    return passes(Kind.READ, f"EXPLAIN without ANALYZE only plans the {what}; none of it runs",
                  _pg_tables(tree_json))


def _option_is_on(option: dict) -> bool:
    """EXPLAIN's boolean option as the server reads it (defGetBoolean): no value, or anything but an
    explicit false, is on."""
    arg = option.get("arg")
    if arg is None:
        return True
    if "String" in arg:
        return arg["String"].get("sval", "").lower() not in _FALSE
    if "Integer" in arg:
        return arg["Integer"].get("ival", 0) != 0
    return True


def declared_query(text: str) -> str | None:
    """The query of `DECLARE name [options] CURSOR [WITH[OUT] HOLD] FOR query`, exactly as written;
    None when PostgreSQL does not see one DECLARE here.

    >>> declared_query("DECLARE c /* for */ NO SCROLL CURSOR WITH HOLD FOR SELECT 1")
    ' SELECT 1'
    """
    from pglast import parser
    try:
        if not _one_statement(parser.parse_sql_json(text), "DeclareCursorStmt"):
            return None
        tokens = parser.scan(text)
    except parser.ParseError:
        return None
    # Every word before the query is a keyword of the grammar or the cursor's name, which cannot be an
    # unquoted FOR: the first FOR token ends the options.
    found = next((t for t in tokens if t.name == "FOR"), None)
    return None if found is None else text[found.end + 1:]


def cursor_statement(text: str) -> str | None:
    """"fetch", "move" or "close" when PostgreSQL sees one plain FETCH, MOVE or CLOSE here, else None.
    Their grammar holds a direction, a count and a cursor name: no expression, so nothing to call.

    >>> cursor_statement("MOVE ABSOLUTE -1 IN c"), cursor_statement("CLOSE ALL"), cursor_statement("FETCH c; SELECT 1")
    ('move', 'close', None)
    """
    from pglast import parser
    try:
        tree_json = parser.parse_sql_json(text)
    except parser.ParseError:
        return None
    if _one_statement(tree_json, "FetchStmt"):
        return "move" if '"ismove":true' in tree_json else "fetch"
    if _one_statement(tree_json, "ClosePortalStmt"):
        return "close"
    return None


def _one_statement(tree_json: str, node: str) -> bool:
    return tree_json.count('"stmt":') == 1 and f'"stmt":{{"{node}":' in tree_json


def _pg_read_problem(tree_json: str, builtins: PostgresBuiltins) -> tuple[Kind, str] | None:
    for key, problem in _PG_NOT_READ.items():
        if key in tree_json:
            return problem
    why = _pg_call_problem(tree_json, builtins)
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


def _pg_call_problem(tree_json: str, builtins: PostgresBuiltins) -> str | None:
    """Every function, operator and cast in the server's tree, by the name the server will resolve."""
    calls = _PG_CALL.findall(tree_json)
    if len(calls) != tree_json.count('"FuncCall":'):
        return "PostgreSQL's parse tree holds a function call whose name cannot be read"
    for raw in calls:
        *schema, name = _pg_names(raw)
        if name in builtins.denied:
            return f"calls {name}(), which {builtins.denied[name]}"
        if schema and schema != ["pg_catalog"]:
            return f"calls {'.'.join([*schema, name])}(), a function outside pg_catalog (user-defined)"
        if name not in builtins.functions:
            return (f"calls {name}(), which is not one of PostgreSQL's side-effect-free built-ins "
                    "(any other function is user code, or can run it)")
    operators = _PG_OPERATOR.findall(tree_json)
    if len(operators) != sum(tree_json.count(key) for key in _PG_OPERATOR_KEYS):
        return "PostgreSQL's parse tree holds an operator whose name cannot be read"
    for raw in operators:
        *schema, operator = _pg_names(raw)
        if (schema and schema != ["pg_catalog"]) or operator not in builtins.operators:
            return (f"uses the operator {'.'.join([*schema, operator])}, which is not one of PostgreSQL's "
                    "own: a user-defined operator calls a user-defined function")
    for raw in _PG_TYPE.findall(tree_json):
        names = _pg_names(raw)
        if len(names) > 1 and names[0] not in POSTGRES_SYSTEM_SCHEMAS:
            return (f"casts to {'.'.join(names)}, a user-defined type (its casts and domain checks can "
                    "call functions)")
    for node in _PG_NEWER_SYNTAX:
        if node in tree_json:
            return (f"uses SQL/JSON syntax ({node.strip(':').strip(chr(34))}), which PostgreSQL before 16 "
                    "runs as a call of whatever function has that name")
    return None


def _pg_names(raw: str) -> list[str]:
    return [_json_text(value) for value in _PG_SVAL.findall(raw)]
