"""Classify ONE statement: what kind it is, what it touches, and whether it may run without approval.

Reads are a whitelist. A statement passes as a read only when sqlglot parses it into a SELECT, a set
operation, VALUES or TABLE (or it is SHOW / DESCRIBE / a read-only PRAGMA / a plain EXPLAIN of a
read) AND its whole tree holds no data-changing node, no INTO, no locking clause, no fallback node and
no function outside the known-safe set. For PostgreSQL the server's own parser (pglast) must agree
that it is a plain SelectStmt. Everything else needs approval; anything not understood is UNKNOWN.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from console.safe_lists import (READ_ONLY_PRAGMAS, SAFE_FUNCTIONS, SAFE_SESSION_VARIABLES,
                                UNSAFE_FUNCTIONS)
from console.splitting import has_executable_comment, inline_executable_comments
from console.statements import Kind

# sqlglot logs a warning for every statement it falls back on; we handle those ourselves.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

SQLGLOT_DIALECT = {"postgres": "postgres", "mysql": "mysql", "sqlite": "sqlite"}


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    requires_approval: bool
    reason: str
    tables: tuple[str, ...] = ()
    has_where: bool | None = None


def needs(kind: Kind, reason: str, tables: tuple[str, ...] = (), has_where: bool | None = None) -> Verdict:
    return Verdict(kind, True, reason, tables, has_where)


def passes(kind: Kind, reason: str, tables: tuple[str, ...] = ()) -> Verdict:
    return Verdict(kind, False, reason, tables, None)


# Nodes that change data, schema or privileges, wherever they appear in a tree.
_CHANGING_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
                   exp.TruncateTable, exp.Command, exp.Into, exp.Lock, exp.Copy, exp.LoadData,
                   exp.Grant, exp.Revoke, exp.Set, exp.Transaction, exp.Commit, exp.Rollback,
                   exp.NextValueFor, exp.Pragma, exp.Use, exp.Analyze, exp.Kill)
_READ_ROOTS = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)

# First words of statements sqlglot does not model (or models wrongly, see FINDINGS.md).
_KEYWORD_KINDS: dict[str, tuple[Kind, str]] = {
    "vacuum": (Kind.ADMIN, "VACUUM rewrites storage"),
    "analyze": (Kind.ADMIN, "ANALYZE updates statistics (on MariaDB it also runs the statement)"),
    "analyse": (Kind.ADMIN, "ANALYZE updates statistics"),
    "cluster": (Kind.ADMIN, "CLUSTER rewrites a table"),
    "reindex": (Kind.ADMIN, "REINDEX rebuilds indexes"),
    "checkpoint": (Kind.ADMIN, "CHECKPOINT forces a WAL checkpoint"),
    "lock": (Kind.ADMIN, "LOCK takes table locks that a read-only transaction does not prevent"),
    "unlock": (Kind.ADMIN, "UNLOCK TABLES changes table locks"),
    "listen": (Kind.ADMIN, "LISTEN subscribes the session to notifications"),
    "unlisten": (Kind.ADMIN, "UNLISTEN changes the session's subscriptions"),
    "notify": (Kind.ADMIN, "NOTIFY sends a notification to other sessions"),
    "load": (Kind.ADMIN, "LOAD loads a shared library or data into the server"),
    "copy": (Kind.ADMIN, "COPY reads or writes files, programs or tables"),
    "kill": (Kind.ADMIN, "KILL ends another session or query"),
    "flush": (Kind.ADMIN, "FLUSH changes server state"),
    "optimize": (Kind.ADMIN, "OPTIMIZE rebuilds a table"),
    "repair": (Kind.ADMIN, "REPAIR rewrites a table"),
    "check": (Kind.ADMIN, "CHECK TABLE is an administrative command"),
    "checksum": (Kind.ADMIN, "CHECKSUM TABLE is an administrative command"),
    "handler": (Kind.ADMIN, "HANDLER opens low-level table access"),
    "install": (Kind.ADMIN, "INSTALL adds a server plugin"),
    "uninstall": (Kind.ADMIN, "UNINSTALL removes a server plugin"),
    "purge": (Kind.ADMIN, "PURGE deletes server logs"),
    "reset": (Kind.SESSION, "RESET changes session or server state"),
    "discard": (Kind.SESSION, "DISCARD drops session state"),
    "deallocate": (Kind.SESSION, "DEALLOCATE drops a prepared statement"),
    "prepare": (Kind.UNKNOWN, "PREPARE stores a statement to run later; approve the statement itself"),
    "execute": (Kind.UNKNOWN, "EXECUTE runs a prepared statement whose text is not visible here"),
    "exec": (Kind.UNKNOWN, "EXEC runs a procedure"),
    "do": (Kind.UNKNOWN, "DO runs arbitrary procedural code"),
    "call": (Kind.UNKNOWN, "CALL runs a stored procedure, which can do anything"),
    "declare": (Kind.UNKNOWN, "DECLARE opens a cursor or variable"),
    "fetch": (Kind.UNKNOWN, "FETCH runs more of a cursor's query, which may call writing functions"),
    "move": (Kind.UNKNOWN, "MOVE runs more of a cursor's query, which may call writing functions"),
    "close": (Kind.READ, "CLOSE closes an open cursor"),
    "attach": (Kind.ADMIN, "ATTACH opens another database file"),
    "detach": (Kind.ADMIN, "DETACH closes an attached database"),
    "refresh": (Kind.DDL, "REFRESH MATERIALIZED VIEW rewrites the view's data"),
    "security": (Kind.DDL, "SECURITY LABEL changes object metadata"),
    "import": (Kind.DDL, "IMPORT FOREIGN SCHEMA creates tables"),
    "comment": (Kind.DDL, "COMMENT changes object metadata"),
    "rename": (Kind.DDL, "RENAME changes the schema"),
    "create": (Kind.DDL, "CREATE changes the schema"),
    "alter": (Kind.DDL, "ALTER changes the schema"),
    "drop": (Kind.DDL, "DROP removes schema objects and their data"),
    "truncate": (Kind.WRITE, "TRUNCATE removes every row of a table"),
    "replace": (Kind.WRITE, "REPLACE deletes and re-inserts rows"),
    "insert": (Kind.WRITE, "INSERT adds rows"),
    "update": (Kind.WRITE, "UPDATE changes rows"),
    "delete": (Kind.WRITE, "DELETE removes rows"),
    "merge": (Kind.WRITE, "MERGE changes rows"),
    "upsert": (Kind.WRITE, "UPSERT changes rows"),
    "grant": (Kind.PRIVILEGE, "GRANT changes privileges"),
    "revoke": (Kind.PRIVILEGE, "REVOKE changes privileges"),
    "reassign": (Kind.PRIVILEGE, "REASSIGN OWNED changes ownership"),
    "begin": (Kind.TRANSACTION, "transaction control"),
    "start": (Kind.TRANSACTION, "transaction control"),
    "commit": (Kind.TRANSACTION, "transaction control"),
    "end": (Kind.TRANSACTION, "transaction control"),
    "rollback": (Kind.TRANSACTION, "transaction control"),
    "abort": (Kind.TRANSACTION, "transaction control"),
    "savepoint": (Kind.TRANSACTION, "transaction control"),
    "release": (Kind.TRANSACTION, "transaction control"),
    "xa": (Kind.ADMIN, "XA transactions span sessions"),
    "delimiter": (Kind.UNKNOWN, "DELIMITER is a mysql-client command, not SQL; scripts here end statements with ';'"),
}

_PRIVILEGE_OBJECTS = {"role", "user", "group"}
_FIRST_WORDS = re.compile(r"(?:\s+|--[^\n]*\n?|/\*.*?\*/|#[^\n]*\n?)*([A-Za-z_@]+)(?:\s+(?:or\s+replace\s+)?([A-Za-z_]+))?",
                          re.S | re.I)


def first_words(text: str) -> tuple[str, str]:
    match = _FIRST_WORDS.match(text)
    if not match:
        return "", ""
    return (match.group(1) or "").lower(), (match.group(2) or "").lower()


def classify_one(text: str, dialect: str) -> Verdict:
    """Never raises: a statement that makes the classifier fail is UNKNOWN and needs approval."""
    try:
        if dialect == "mysql" and has_executable_comment(text):
            inner = _classify(inline_executable_comments(text), dialect)
            return needs(inner.kind, "contains a MySQL executable comment /*! ... */, which the server "
                         f"runs as SQL; what it runs: {inner.reason}", inner.tables, inner.has_where)
        return _classify(text, dialect)
    except RecursionError:
        return needs(Kind.UNKNOWN, "too deeply nested to analyse")
    except Exception as err:  # noqa: BLE001 - fail closed on anything unexpected
        return needs(Kind.UNKNOWN, f"could not be analysed ({type(err).__name__}: {err})")


def _classify(text: str, dialect: str) -> Verdict:
    word, second = first_words(text)
    if word == "explain" or (word in ("describe", "desc") and dialect == "mysql"):
        return _explain(text, dialect)
    if word == "show":
        return passes(Kind.READ, "SHOW only reads settings or metadata")
    if word in ("set", "reset"):
        return _session_setting(text, dialect, word)
    if word == "pragma":
        return _pragma(text, dialect)
    if word == "use":
        return passes(Kind.SESSION, "USE switches the session's default database")
    if word == "table" and dialect == "postgres":
        verdict = _check_postgres_read(text, Kind.READ)
        return verdict or passes(Kind.READ, "TABLE reads a whole table", (second,) if second else ())
    if word in ("create", "alter", "drop") and second in _PRIVILEGE_OBJECTS:
        return needs(Kind.PRIVILEGE, f"{word.upper()} {second.upper()} changes who can do what")
    try:
        trees = _parse(text, dialect)
    except sqlglot.errors.SqlglotError as err:
        return _by_keyword(word, f"sqlglot cannot parse it ({_first_line(err)})")
    trees = [t for t in trees if t is not None and not isinstance(t, exp.Semicolon)]
    if len(trees) != 1:
        kind, _ = _KEYWORD_KINDS.get(word, (Kind.UNKNOWN, ""))
        return needs(kind if kind is not Kind.READ else Kind.UNKNOWN,
                     "the SQL parser does not see exactly one statement here")
    return _classify_tree(trees[0], text, dialect, word)


_PARSING = threading.local()


def _parse(text: str, dialect: str) -> list[exp.Expression | None]:
    """sqlglot.parse without its per-call dialect lookup and tokenizer set-up (a third of the cost
    on short statements). Tokenizers keep state, so each thread gets its own."""
    cache = _PARSING.__dict__
    if dialect not in cache:
        from sqlglot.dialects.dialect import Dialect
        sqlglot_dialect = Dialect.get_or_raise(SQLGLOT_DIALECT[dialect])
        cache[dialect] = (sqlglot_dialect.parser(), sqlglot_dialect.tokenizer())
    parser, tokenizer = cache[dialect]
    return parser.parse(tokenizer.tokenize(text), text)


def _classify_tree(tree: exp.Expression, text: str, dialect: str, word: str) -> Verdict:
    if isinstance(tree, exp.Command):
        return _by_keyword(word, "not modelled by the SQL parser")
    if isinstance(tree, _READ_ROOTS):
        return _read_or_not(tree, text, dialect)
    if isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
        return _write(tree)
    if isinstance(tree, exp.TruncateTable):
        return needs(Kind.WRITE, "TRUNCATE removes every row", _tables(tree), False)
    if isinstance(tree, (exp.Create, exp.Drop, exp.Alter)):
        verb = {exp.Create: "CREATE", exp.Drop: "DROP", exp.Alter: "ALTER"}[type(tree)]
        what = str(tree.args.get("kind") or "").upper() or "object"
        return needs(Kind.DDL, f"{verb} {what} changes the schema", _tables(tree))
    if isinstance(tree, (exp.Grant, exp.Revoke)):
        return needs(Kind.PRIVILEGE, f"{word.upper()} changes privileges", _tables(tree))
    if isinstance(tree, (exp.Transaction, exp.Commit, exp.Rollback)) and word in _TRANSACTION_WORDS:
        return passes(Kind.TRANSACTION, "transaction control")
    if isinstance(tree, (exp.Show, exp.Describe)):
        return passes(Kind.READ, "only reads metadata", _tables(tree))
    if isinstance(tree, exp.Copy):
        return needs(Kind.WRITE if tree.args.get("kind") else Kind.ADMIN,
                     "COPY reads or writes files, programs or tables", _tables(tree))
    return _by_keyword(word, f"{type(tree).__name__} statements are not on the read whitelist")


_TRANSACTION_WORDS = {"begin", "start", "commit", "end", "rollback", "abort"}


def _by_keyword(word: str, why: str) -> Verdict:
    kind, reason = _KEYWORD_KINDS.get(word, (Kind.UNKNOWN, f"not recognised ({why})"))
    if kind is Kind.TRANSACTION:
        return passes(kind, reason)
    if kind is Kind.READ:
        return passes(kind, reason)
    return needs(kind, reason)


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0][:160] if str(err) else type(err).__name__


# -- reads ---------------------------------------------------------------------------------------
def _read_or_not(tree: exp.Expression, text: str, dialect: str) -> Verdict:
    problem, tables = _read_problem(tree, dialect)
    if problem is not None:
        kind, reason = problem
        return needs(kind, reason, tables, None)
    if dialect == "postgres":
        verdict = _check_postgres_read(text, Kind.READ)
        if verdict is not None:
            return Verdict(verdict.kind, True, verdict.reason, tables, None)
    return passes(Kind.READ, "read with no side effects", tables)


# The bulk of any tree; none of them can change anything, so the walk skips them cheaply.
_PLAIN_NODES = frozenset({
    exp.Identifier, exp.Column, exp.Literal, exp.Star, exp.Alias, exp.TableAlias, exp.Paren, exp.From,
    exp.Join, exp.Where, exp.Order, exp.Ordered, exp.Group, exp.Limit, exp.Offset, exp.Having,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.And, exp.Or, exp.Not, exp.Is, exp.Null,
    exp.Boolean, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Neg, exp.In, exp.Like, exp.ILike,
    exp.DataType, exp.Tuple, exp.Subquery, exp.Select, exp.Union, exp.Except, exp.Intersect,
    exp.Values, exp.Distinct, exp.Window, exp.Dot, exp.Bracket, exp.Array, exp.Var,
})


def _read_problem(tree: exp.Expression, dialect: str) -> tuple[tuple[Kind, str] | None, tuple[str, ...]]:
    """One walk over the whole tree: the first reason it is not a plain read (or None), and its tables."""
    safe = SAFE_FUNCTIONS[dialect]
    tables: list[exp.Table] = []
    ctes: set[str] = set()
    problem = None
    for node in tree.walk():
        if type(node) in _PLAIN_NODES:
            continue
        if isinstance(node, exp.Table):
            tables.append(node)
        elif isinstance(node, exp.CTE):
            ctes.add(node.alias_or_name.lower())
        elif problem is not None:
            continue
        elif isinstance(node, _CHANGING_NODES):
            problem = _changing_node(node)
        elif isinstance(node, exp.Func):
            name = _function_name(node)
            if name in UNSAFE_FUNCTIONS:
                problem = Kind.UNKNOWN, f"calls {name}(), which has side effects a read-only transaction does not stop"
            elif isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc)) and name not in safe:
                problem = Kind.UNKNOWN, f"calls {name}(), which is not on the known-safe function list"
    if problem is None and tree.args.get("locks"):
        problem = Kind.WRITE, "has a locking clause (FOR UPDATE/SHARE), which locks rows"
    return problem, _table_names(tables, ctes)


def _changing_node(node: exp.Expression) -> tuple[Kind, str]:
    if isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
        return Kind.WRITE, f"contains a data-changing {type(node).__name__.upper()} (e.g. in a CTE)"
    if isinstance(node, exp.Into):
        return Kind.DDL, "SELECT ... INTO creates a table or writes a file"
    if isinstance(node, exp.Lock):
        return Kind.WRITE, "has a locking clause (FOR UPDATE/SHARE), which locks rows"
    if isinstance(node, exp.NextValueFor):
        return Kind.WRITE, "NEXT VALUE FOR advances a sequence"
    if isinstance(node, exp.Command):
        return Kind.UNKNOWN, "contains a fragment the SQL parser did not understand"
    return Kind.UNKNOWN, f"contains a {type(node).__name__} node, which is not on the read whitelist"


def _function_name(node: exp.Func) -> str:
    if isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc)):
        name = node.this if isinstance(node.this, str) else node.name
        return str(name).lower().rsplit(".", 1)[-1]
    return node.sql_name().lower()


# Keys in libpg_query's JSON tree that mean "this is not a plain read".
_PG_NOT_READ_KEYS = ('"intoClause"', '"lockingClause"', '"InsertStmt"', '"UpdateStmt"', '"DeleteStmt"',
                     '"MergeStmt"')


def _check_postgres_read(text: str, kind: Kind) -> Verdict | None:
    """PostgreSQL's own parser must agree that this is one plain SelectStmt. None when it does."""
    from pglast import parser
    try:
        tree_json = parser.parse_sql_json(text)
    except parser.ParseError as err:
        return needs(Kind.UNKNOWN, f"PostgreSQL cannot parse it: {err}")
    if tree_json.count('"stmt":') != 1 or '"stmt":{"SelectStmt"' not in tree_json:
        return needs(Kind.UNKNOWN, "PostgreSQL's parser does not see a plain SELECT here")
    for key in _PG_NOT_READ_KEYS:
        if key in tree_json:
            return needs(Kind.WRITE if key != '"intoClause"' else Kind.DDL,
                         f"PostgreSQL's parser finds {key.strip(chr(34))} in it")
    return None


# -- EXPLAIN -------------------------------------------------------------------------------------
_EXPLAIN_PREFIX = re.compile(
    r"^\s*(?:explain|describe|desc)\b\s*(\((?P<options>[^()]*)\)|(?P<words>(?:(?:analyze|analyse|verbose|"
    r"extended|partitions|query\s+plan|format\s*=?\s*\w+)\s+)*))", re.I)


def _explain(text: str, dialect: str) -> Verdict:
    match = _EXPLAIN_PREFIX.match(text)
    rest = text[match.end():] if match else ""
    options = ((match.group("options") or "") + " " + (match.group("words") or "")).lower() if match else ""
    analyzes = bool(re.search(r"\banaly[sz]e\b(?!\s+(false|off|0)\b)", options))
    if not rest.strip():
        return passes(Kind.READ, "EXPLAIN/DESCRIBE only reads metadata")
    inner_word, _ = first_words(rest)
    if dialect == "mysql" and inner_word not in ("select", "with", "insert", "update", "delete",
                                                  "replace", "table", "values", "(", "for"):
        # MySQL: EXPLAIN tbl / DESCRIBE tbl show a table's columns.
        return passes(Kind.READ, "DESCRIBE only reads metadata")
    inner = _classify(rest, dialect)
    if analyzes:
        return Verdict(inner.kind, inner.requires_approval,
                       f"EXPLAIN ANALYZE runs the statement: {inner.reason}", inner.tables, inner.has_where)
    if inner.kind is Kind.READ and not inner.requires_approval:
        return passes(Kind.READ, "EXPLAIN of a read", inner.tables)
    return needs(Kind.UNKNOWN, f"EXPLAIN of a statement that is not a plain read ({inner.reason}); "
                 "only EXPLAIN of reads runs without approval", inner.tables)


# -- session settings ----------------------------------------------------------------------------
_SET = re.compile(r"^\s*(?P<verb>set|reset)\s+(?P<scope>session\s+|local\s+|global\s+|persist\s+|"
                  r"persist_only\s+|@@session\.|@@local\.|@@global\.|@@)?(?P<name>[A-Za-z_][\w.]*"
                  r"(?:\s+zone)?|@[\w.$]+)\s*(?:(?:=|:=|\bto\b)\s*(?P<value>.*))?$", re.I | re.S)
_SIMPLE_VALUE = re.compile(r"^\s*(?:'[^'\\]*'|\"[^\"\\]*\"|[\w.+\-]+|default)(?:\s*,\s*(?:'[^'\\]*'|\"[^\"\\]*\"|"
                           r"[\w.+\-]+))*\s*$", re.I)


def _session_setting(text: str, dialect: str, verb: str) -> Verdict:
    match = _SET.match(text)
    if dialect == "mysql" and re.match(r"^\s*set\s+(names|character\s+set|charset)\s+['\"\w]+"
                                       r"(\s+collate\s+['\"\w]+)?\s*$", text, re.I):
        return passes(Kind.SESSION, "sets the connection's character set")
    if not match:
        what = " ".join(text.split()[:3])
        return needs(Kind.SESSION, f"{what} changes session state and is not a known-harmless setting")
    name = match.group("name").lower()
    scope = (match.group("scope") or "").lower()
    value = match.group("value")
    if "global" in scope or "persist" in scope:
        return needs(Kind.ADMIN, f"{verb.upper()} GLOBAL changes the server for every session")
    if name.startswith("@"):
        if value is not None and _SIMPLE_VALUE.match(value):
            return passes(Kind.SESSION, "sets a user variable to a literal")
        return needs(Kind.SESSION, "sets a user variable to an expression; approve it like the expression")
    if name not in SAFE_SESSION_VARIABLES[dialect]:
        return needs(Kind.SESSION, f"{verb.upper()} {name} is not on the list of harmless session settings")
    if verb == "set" and (value is None or not _SIMPLE_VALUE.match(value)):
        return needs(Kind.SESSION, f"SET {name} to an expression is not known to be harmless")
    return passes(Kind.SESSION, f"harmless session setting ({name})")


def _pragma(text: str, dialect: str) -> Verdict:
    if dialect != "sqlite":
        return needs(Kind.UNKNOWN, "PRAGMA is not a statement of this dialect")
    match = re.match(r"^\s*pragma\s+(?:\w+\.)?(\w+)\s*(\(\s*[\w\"'.]*\s*\))?\s*$", text, re.I)
    if match and match.group(1).lower() in READ_ONLY_PRAGMAS:
        return passes(Kind.READ, f"PRAGMA {match.group(1).lower()} only reads")
    return needs(Kind.ADMIN, "this PRAGMA can change the database or the connection")


# -- writes --------------------------------------------------------------------------------------
def _write(tree: exp.Expression) -> Verdict:
    tables = _tables(tree)
    target = tables[0] if tables else "?"
    if isinstance(tree, exp.Insert):
        return needs(Kind.WRITE, f"INSERT into {target}", tables, None)
    if isinstance(tree, exp.Merge):
        return needs(Kind.WRITE, f"MERGE into {target}", tables, None)
    verb = "UPDATE of" if isinstance(tree, exp.Update) else "DELETE from"
    if tree.args.get("where") is not None:
        return needs(Kind.WRITE, f"{verb} {target} with a WHERE clause", tables, True)
    return needs(Kind.WRITE, f"{verb} {target} WITHOUT a WHERE clause: every row", tables, False)


def _tables(tree: exp.Expression) -> tuple[str, ...]:
    tables, ctes = [], set()
    for node in tree.walk():
        if isinstance(node, exp.Table):
            tables.append(node)
        elif isinstance(node, exp.CTE):
            ctes.add(node.alias_or_name.lower())
    return _table_names(tables, ctes)


def _table_names(tables: list[exp.Table], ctes: set[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for table in tables:
        name = table.name
        if not name or (not table.db and name.lower() in ctes):
            continue
        qualified = ".".join(part for part in (table.catalog, table.db, name) if part)
        seen.setdefault(qualified, None)
    return tuple(seen)
