"""Classify ONE statement: what kind it is, what it touches, and whether it may run without approval.

Reads are a whitelist; everything else needs approval, and anything not understood is UNKNOWN.
- First the text must lex the same way whatever the server's settings (splitting.lexing_ambiguity),
  and the statement is dispatched on its first word as the SERVER sees it: past leading comments,
  nested ones included (splitting.code_start).
- PostgreSQL: a read is what the server's own parser (libpg_query, via pglast) sees as one SelectStmt
  with no INTO, no locking clause and no data-changing CTE, whose every function call, operator and
  cast names something built in and free of side effects (builtins: from the server's pg_proc).
  sqlglot is not consulted. A cursor over such a read (DECLARE), and FETCH / MOVE / CLOSE, are reads.
- MySQL/SQLite: sqlglot must parse it into a SELECT, set operation, VALUES or TABLE whose whole tree
  holds no data-changing node, INTO, lock or fallback node, and every `name(` token must be a
  known-safe built-in called by its bare name (a name that is not native is a stored function).
- SHOW / DESCRIBE / a read-only PRAGMA / an EXPLAIN of a read pass too, in their plain forms only; on
  PostgreSQL so does an EXPLAIN without ANALYZE of a write whose calls would pass in a read (it is
  only planned).
"""
from __future__ import annotations

import logging
import re
import threading

import sqlglot
from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from classify.sql.builtins import postgres_builtins
from classify.sql.safe_lists import SAFE_FUNCTIONS, SYNTAX_NAMES, UNSAFE_FUNCTIONS
from classify.sql.splitting import (code_start, has_executable_comment, inline_executable_comments,
                               lexing_ambiguity, sqlglot_tokens)
from classify.sql.postgres import (check_postgres_read, cursor_statement, declared_query, postgres_plan_only,
                                   postgres_read)
from classify.sql.session import pragma, session_setting
from classify.kinds import Kind
from classify.verdict import Verdict, needs, passes

# sqlglot logs a warning for every statement it falls back on; we handle those ourselves.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

SQLGLOT_DIALECT = {"postgres": "postgres", "mysql": "mysql", "sqlite": "sqlite"}


# Nodes that change data, schema or privileges, wherever they appear in a tree.
_CHANGING_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
                   exp.TruncateTable, exp.Command, exp.Into, exp.Lock, exp.Copy, exp.LoadData,
                   exp.Grant, exp.Revoke, exp.Set, exp.Transaction, exp.Commit, exp.Rollback,
                   exp.NextValueFor, exp.Pragma, exp.Use, exp.Analyze, exp.Kill)
_READ_ROOTS = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)

# First words of statements sqlglot does not model (or models wrongly).
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
    "fetch": (Kind.UNKNOWN, "FETCH reads from a cursor"),
    "move": (Kind.UNKNOWN, "MOVE moves a cursor"),
    "close": (Kind.SESSION, "CLOSE closes an open cursor"),
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
_READ_WORDS = frozenset({"select", "with", "values", "table", ""})   # "": starts with "("
# Leading comments are gone by the time this runs (see code_start), so no comment skipping here: a
# regex that skips them (`(?:\s+|/\*.*?\*/)*`) backtracks exponentially on `/**/` + blanks + `(`.
_FIRST_WORDS = re.compile(r"\s*+([A-Za-z_@]++)(?:\s++(?:or\s++replace\s++)?+([A-Za-z_]++))?", re.I)


def first_words(text: str) -> tuple[str, str]:
    """The first two words of a statement that starts with code (not a comment).

    >>> first_words("CREATE OR REPLACE VIEW v AS SELECT 1")
    ('create', 'view')
    """
    match = _FIRST_WORDS.match(text)
    if not match:
        return "", ""
    return (match.group(1) or "").lower(), (match.group(2) or "").lower()


def classify_one(text: str, dialect: str) -> Verdict:
    """Never raises: a statement that makes the classifier fail is UNKNOWN and needs approval."""
    try:
        if dialect == "mysql" and has_executable_comment(text):
            # Where the server ends an executable comment is its lexer's business (a nested /* */, a
            # string holding */, the version number), so what it runs may not be what we inline: never
            # a kind a policy may let through without approval (read, session, transaction).
            inner = _classify(inline_executable_comments(text), dialect)
            return needs(_gated_kind(inner.kind), "contains a MySQL executable comment /*! ... */, which the "
                         f"server runs as SQL; what it runs: {inner.reason}", inner.tables, inner.has_where)
        return _classify(text, dialect)
    except RecursionError:
        return needs(Kind.UNKNOWN, "too deeply nested to analyse")
    except Exception as err:  # noqa: BLE001 - fail closed on anything unexpected
        return needs(Kind.UNKNOWN, f"could not be analysed ({type(err).__name__}: {err})")


def _gated_kind(kind: Kind) -> Kind:
    """The kind to give a statement that must go to a reviewer: policies may exempt read, session and
    transaction statements from approval, so a gated statement never carries one of those kinds."""
    return Kind.UNKNOWN if kind in (Kind.READ, Kind.SESSION, Kind.TRANSACTION) else kind


def _classify(text: str, dialect: str) -> Verdict:
    ambiguity = lexing_ambiguity(text, dialect)
    if ambiguity is not None:
        return needs(Kind.UNKNOWN, ambiguity)
    start = code_start(text, dialect)
    if start is None:
        return needs(Kind.UNKNOWN, "cannot be split into tokens (an unterminated quote or comment?)")
    body = text[start:]   # dispatch on the first word the SERVER sees, never one inside a comment
    word, second = first_words(body)
    if word == "explain" or (word in ("describe", "desc") and dialect == "mysql"):
        return _explain(body, dialect)
    if word in _BY_FIRST_WORD:
        return _BY_FIRST_WORD[word](body, dialect, word)
    if dialect == "postgres" and word in _READ_WORDS:
        verdict = postgres_read(text, word)
        if verdict is not None:
            return verdict
    if word in ("create", "alter", "drop") and second in _PRIVILEGE_OBJECTS:
        return needs(Kind.PRIVILEGE, f"{word.upper()} {second.upper()} changes who can do what")
    try:
        trees, tokens = _parse(text, dialect)
    except sqlglot.errors.SqlglotError as err:
        return _by_keyword(word, f"sqlglot cannot parse it ({_first_line(err)})")
    trees = [t for t in trees if t is not None and not isinstance(t, exp.Semicolon)]
    if len(trees) != 1:
        kind, _ = _KEYWORD_KINDS.get(word, (Kind.UNKNOWN, ""))
        return needs(kind if kind is not Kind.READ else Kind.UNKNOWN,
                     "the SQL parser does not see exactly one statement here")
    return _classify_tree(trees[0], text, dialect, word, tokens)


_PARSING = threading.local()


def _parse(text: str, dialect: str) -> tuple[list[exp.Expression | None], list[Token]]:
    """sqlglot.parse without its per-call dialect lookup and tokenizer set-up (a third of the cost
    on short statements), returning the tokens too. Tokenizers keep state, so each thread gets its own."""
    cache = _PARSING.__dict__
    if dialect not in cache:
        from sqlglot.dialects.dialect import Dialect
        sqlglot_dialect = Dialect.get_or_raise(SQLGLOT_DIALECT[dialect])
        cache[dialect] = (sqlglot_dialect.parser(), sqlglot_dialect.tokenizer())
    parser, tokenizer = cache[dialect]
    tokens = tokenizer.tokenize(text)
    return parser.parse(tokens, text), tokens


def _classify_tree(tree: exp.Expression, text: str, dialect: str, word: str, tokens: list[Token]) -> Verdict:
    if isinstance(tree, exp.Command):
        return _by_keyword(word, "not modelled by the SQL parser")
    if isinstance(tree, _READ_ROOTS):
        if word not in _READ_WORDS:   # sqlglot also accepts other dialects' forms (`FROM t`, DuckDB)
            return _by_keyword(word, f"a query starting with {word.upper() or 'this'} is not plain SQL here")
        return _read_or_not(tree, text, dialect, tokens)
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
    if isinstance(tree, exp.Copy):
        return needs(Kind.WRITE if tree.args.get("kind") else Kind.ADMIN,
                     "COPY reads or writes files, programs or tables", _tables(tree))
    return _by_keyword(word, f"{type(tree).__name__} statements are not on the read whitelist")


def _by_keyword(word: str, why: str) -> Verdict:
    """The fallback for what sqlglot does not model: a kind from the first word, always gated."""
    kind, reason = _KEYWORD_KINDS.get(word, (Kind.UNKNOWN, f"not recognised ({why})"))
    return needs(kind, reason)


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0][:160] if str(err) else type(err).__name__


# -- transaction control, USE, CLOSE: only their plain forms pass -----------------------------------
_IDENT = r'(?>[A-Za-z_][\w$]*+|"(?:[^"]|"")++"|`(?:[^`]|``)++`)'
_TXN_MODE = (r"(?:isolation\s+level\s+(?:serializable|repeatable\s+read|read\s+committed|read\s+uncommitted)"
             r"|read\s+write|read\s+only|(?:not\s+)?deferrable|with\s+consistent\s+snapshot)")
_TXN_MODES = rf"(?:(?:\s+|\s*,\s*){_TXN_MODE})*"
_WORK = r"(?:\s+(?:work|transaction))?"
_CHAIN = r"(?:\s+and\s+(?:no\s+)?chain)?"
_SAVEPOINTS = [rf"rollback{_WORK}\s+to(?:\s+savepoint)?\s+{_IDENT}", rf"savepoint\s+{_IDENT}",
               rf"release(?:\s+savepoint)?\s+{_IDENT}"]
_TRANSACTION_CONTROL = {dialect: re.compile("(?:" + "|".join(forms) + r")\s*", re.I) for dialect, forms in {
    "postgres": [rf"begin{_WORK}{_TXN_MODES}", rf"start\s+transaction{_TXN_MODES}",
                 rf"(?:commit|end|rollback|abort){_WORK}{_CHAIN}", *_SAVEPOINTS],
    "mysql": [r"begin(?:\s+work)?", rf"start\s+transaction{_TXN_MODES}", rf"(?:commit|rollback)(?:\s+work)?{_CHAIN}",
              *_SAVEPOINTS],
    # BEGIN IMMEDIATE / EXCLUSIVE take the database's write lock at once: not here.
    "sqlite": [r"begin(?:\s+deferred)?(?:\s+transaction)?", r"(?:commit|end|rollback)(?:\s+transaction)?",
               *_SAVEPOINTS],
}.items()}


def _transaction(body: str, dialect: str, word: str) -> Verdict:
    if _TRANSACTION_CONTROL[dialect].fullmatch(body):
        return passes(Kind.TRANSACTION, "transaction control")
    lowered = " ".join(body.lower().split())
    if word in ("commit", "rollback") and " prepared" in lowered:
        return needs(Kind.TRANSACTION, f"{word.upper()} PREPARED ends a two-phase transaction that another "
                     "session prepared")
    if word == "begin" and lowered.startswith("begin not atomic"):
        return needs(Kind.UNKNOWN, "BEGIN NOT ATOMIC runs a compound statement: arbitrary procedural code")
    if word == "start" and not lowered.startswith("start transaction"):
        return needs(Kind.ADMIN, f"{' '.join(body.split()[:2]).upper()} starts server threads (replication)")
    if word == "begin" and dialect == "sqlite" and lowered.startswith(("begin immediate", "begin exclusive")):
        return needs(Kind.TRANSACTION, "BEGIN IMMEDIATE/EXCLUSIVE locks the whole database against writers")
    return needs(Kind.UNKNOWN, "not a plain transaction-control statement")


def _use(body: str, dialect: str, word: str) -> Verdict:
    if dialect == "mysql" and re.fullmatch(rf"use\s+{_IDENT}\s*", body, re.I):
        return passes(Kind.SESSION, "USE switches the session's default database")
    return needs(Kind.UNKNOWN, "not a plain USE of a database")


# -- cursors (PostgreSQL; MySQL has them only inside stored routines) ------------------------------
def _declare(body: str, dialect: str, word: str) -> Verdict:
    """DECLARE ... CURSOR FOR q is a read when q is: the cursor runs q and nothing else, as it is
    fetched or (WITH HOLD) when its transaction commits."""
    query = declared_query(body) if dialect == "postgres" else None
    if query is None:
        return needs(Kind.UNKNOWN, "not a plain DECLARE ... CURSOR FOR" if dialect == "postgres" else
                     "DECLARE exists only inside stored routines on MySQL, and not on SQLite")
    start = code_start(query, dialect)
    inner = _classify(query, dialect)
    if (start is not None and first_words(query[start:])[0] in _READ_WORDS and inner.kind is Kind.READ
            and not inner.requires_approval):
        return passes(Kind.READ, "DECLARE of a cursor over a read with no side effects", inner.tables)
    return needs(_gated_kind(inner.kind), f"DECLARE of a cursor over a query that is not a plain read "
                 f"({inner.reason})", inner.tables)


def _cursor(body: str, dialect: str, word: str) -> Verdict:
    """FETCH / MOVE / CLOSE take a direction, a count and a cursor name: no expression, nothing to call.
    They read from a cursor the session declared, whose DECLARE was judged by its query. A cursor
    outlives its transaction only WITH HOLD, and then its query ran to the end at that commit: a FETCH
    in a later transaction runs none of it. (Within one transaction a FETCH does run more of the query;
    Countersign runs a BEGIN ... COMMIT block only as one approved batch.)"""
    found = cursor_statement(body) if dialect == "postgres" else None
    if found is None:
        return needs(Kind.UNKNOWN, f"not a plain {word.upper()} of a cursor" if dialect == "postgres" else
                     f"{word.upper()} of a cursor exists only inside stored routines on MySQL, and not on SQLite")
    return passes(Kind.READ, {"fetch": "FETCH reads rows from an open cursor", "move": "MOVE moves an open cursor",
                              "close": "CLOSE closes an open cursor"}[found])


# -- reads ---------------------------------------------------------------------------------------
def _read_or_not(tree: exp.Expression, text: str, dialect: str, tokens: list[Token]) -> Verdict:
    problem, tables = _read_problem(tree, dialect)
    if problem is None and dialect != "postgres":
        problem = _call_problem(tokens, tree, dialect)
    if problem is not None:
        kind, reason = problem
        return needs(kind, reason, tables, None)
    if dialect == "postgres":
        verdict = check_postgres_read(text)
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
# Names an `Anonymous` node may carry: the dialect's safe functions and its syntax words.
_ANONYMOUS_OK = {"postgres": postgres_builtins().functions | SYNTAX_NAMES["postgres"],
                 **{dialect: SAFE_FUNCTIONS[dialect] | SYNTAX_NAMES[dialect] for dialect in SAFE_FUNCTIONS}}
_SIDE_EFFECT = "has side effects a read-only transaction does not stop"
_UNSAFE_REASONS = {"postgres": postgres_builtins().denied,
                   **{dialect: dict.fromkeys(UNSAFE_FUNCTIONS, _SIDE_EFFECT) for dialect in SAFE_FUNCTIONS}}


def _read_problem(tree: exp.Expression, dialect: str) -> tuple[tuple[Kind, str] | None, tuple[str, ...]]:
    """One walk over the whole tree: the first reason it is not a plain read (or None), and its tables."""
    safe, unsafe = _ANONYMOUS_OK[dialect], _UNSAFE_REASONS[dialect]
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
            if name in unsafe:
                problem = Kind.UNKNOWN, f"calls {name}(), which {unsafe[name]}"
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


# Token types that may stand before `(` without calling anything: punctuation, operators and words
# MySQL and SQLite reserve (so no function can be called by that bare name). Any other token before
# `(` is a call, judged by its name as written.
_NOT_CALLS = frozenset(filter(None, (getattr(TokenType, name, None) for name in """
    L_PAREN R_PAREN L_BRACKET COMMA DASH PLUS STAR SLASH LT LTE GT GTE NOT EQ NEQ NULLSAFE_EQ COLON_EQ
    AND OR XOR AMP DPIPE PIPE CARET TILDE DIV ARROW DARROW MEMBER_OF IS IN EXISTS BETWEEN LIKE ILIKE
    RLIKE GLOB SIMILAR_TO SOUNDS_LIKE ESCAPE SELECT FROM WHERE ON USING JOIN INNER OUTER CROSS NATURAL
    STRAIGHT_JOIN VALUES ALIAS ROW OVER PARTITION_BY ORDER_BY GROUP_BY HAVING LIMIT UNION EXCEPT INTERSECT
    WITH RECURSIVE CASE WHEN THEN ELSE END DISTINCT WINDOW LATERAL INTERVAL INTO FOR SET TABLE INDEX KEY
    FORCE IGNORE USE PARTITION COLLATE SEPARATOR
""".split())))


def _call_problem(tokens: list[Token], tree: exp.Expression, dialect: str) -> tuple[Kind, str] | None:
    """MySQL/SQLite: every `name(` must be a known-safe built-in called by its bare name. A name that is
    not native resolves to a stored function; `db.name(` always does."""
    safe = _ANONYMOUS_OK[dialect]
    column_lists = None   # `WITH c(a) AS` / `AS t(a, b)`: an alias with its columns, not a call
    for before, token, after in zip([None, *tokens], tokens, tokens[1:]):
        if after.token_type is not TokenType.L_PAREN or token.token_type in _NOT_CALLS:
            continue
        name = token.text.lower()
        if before is not None and before.token_type is TokenType.DOT:
            return Kind.UNKNOWN, f"calls .{name}(), a stored function (built-ins are never qualified)"
        if name in UNSAFE_FUNCTIONS:
            return Kind.UNKNOWN, f"calls {name}(), which has side effects a read-only transaction does not stop"
        if name in safe:
            continue
        if column_lists is None:
            column_lists = {alias.this.meta.get("start") for alias in tree.find_all(exp.TableAlias)
                            if alias.args.get("columns") and isinstance(alias.this, exp.Identifier)}
        if token.start not in column_lists:
            where = "a stored function of the current database" if dialect == "mysql" else "not built in"
            return Kind.UNKNOWN, f"calls {name}(), which is not a known-safe built-in (it may be {where})"
    return None


# -- SHOW ----------------------------------------------------------------------------------------
# SHOW name | SHOW ALL | SHOW TIME ZONE | SHOW TRANSACTION ISOLATION LEVEL | SHOW SESSION AUTHORIZATION
_PG_SHOW = re.compile(r'show\s++(?:[\w.]++|"[^"]++")(?:\s++(?:zone|isolation|level|authorization)\b)*+\s*+', re.I)


def _show(body: str, dialect: str, word: str) -> Verdict:
    if dialect == "postgres":
        if _PG_SHOW.fullmatch(body):
            return passes(Kind.READ, "SHOW only reads a setting")
        return needs(Kind.UNKNOWN, "not a plain SHOW of a setting")
    if dialect != "mysql":
        return needs(Kind.UNKNOWN, "SHOW is not a statement of this dialect")
    tokens = sqlglot_tokens(body, dialect)
    if tokens is None:
        return needs(Kind.UNKNOWN, "cannot be split into tokens")
    where = next((t for t in tokens if t.token_type is TokenType.WHERE), None)
    if any(t.token_type is TokenType.L_PAREN for t in tokens if where is None or t.start < where.start):
        return needs(Kind.UNKNOWN, "not a plain SHOW (it has an expression in parentheses)")
    if where is None:
        return passes(Kind.READ, "SHOW only reads settings or metadata")
    # SHOW ... WHERE evaluates an arbitrary expression per row: SHOW TABLES WHERE GET_LOCK('x', 0).
    inner = _classify("SELECT 1 FROM DUAL WHERE " + body[where.end + 1:], dialect)
    if inner.requires_approval:
        return needs(Kind.UNKNOWN, f"SHOW ... WHERE evaluates an expression that is not a plain read: {inner.reason}")
    return passes(Kind.READ, "SHOW only reads settings or metadata")


# -- EXPLAIN -------------------------------------------------------------------------------------
_EXPLAIN_WORDS = (r"(?P<words>(?:(?:analyze|analyse|verbose|extended|partitions|query\s+plan|"
                  r"format\s*=?\s*\w+)\s+)*)")
_EXPLAIN_PREFIX = {
    # Only PostgreSQL has an option list in parentheses; in MySQL `EXPLAIN (SELECT ...)` is a query.
    "postgres": re.compile(r"(?:explain)\b\s*(\((?P<options>[^()]*)\)|" + _EXPLAIN_WORDS + ")", re.I),
    "mysql": re.compile(r"(?:explain|describe|desc)\b\s*" + _EXPLAIN_WORDS, re.I),
    "sqlite": re.compile(r"(?:explain)\b\s*" + _EXPLAIN_WORDS, re.I),
}
# MySQL's EXPLAIN/DESCRIBE of a table: `DESCRIBE t`, `DESC db.t col`, `EXPLAIN t 'a%'`.
_MYSQL_DESCRIBE_TABLE = re.compile(r"(?>[\w$]++|`(?:[^`]|``)++`)(?>\s*+\.\s*+(?>[\w$]++|`(?:[^`]|``)++`))?+"
                                   r"(?>\s++(?>[\w$%]++|`(?:[^`]|``)++`|'[^'\\]*+'))?+\s*+")
_MYSQL_EXPLAINABLE = ("select", "with", "insert", "update", "delete", "replace", "table", "values", "for")


def _explain(body: str, dialect: str) -> Verdict:
    match = _EXPLAIN_PREFIX[dialect].match(body)
    if not match:
        return needs(Kind.UNKNOWN, "not a plain EXPLAIN")
    rest = body[match.end():]
    options = ((match.groupdict().get("options") or "") + " " + (match.group("words") or "")).lower()
    analyzes = bool(re.search(r"\banaly[sz]e\b(?!\s+(false|off|0)\b)", options))
    start = code_start(rest, dialect)
    if start is None or not rest[start:].strip():
        return needs(Kind.UNKNOWN, "EXPLAIN of nothing this classifier can read")
    inner_word, _ = first_words(rest[start:])
    if dialect == "mysql" and inner_word not in _MYSQL_EXPLAINABLE and _MYSQL_DESCRIBE_TABLE.fullmatch(rest[start:]):
        return passes(Kind.READ, "DESCRIBE only reads metadata")
    inner = _classify(rest, dialect)
    if inner.kind is Kind.READ and not inner.requires_approval and inner_word in _READ_WORDS:
        return passes(Kind.READ, "EXPLAIN ANALYZE runs the statement: a read with no side effects" if analyzes
                      else "EXPLAIN of a read", inner.tables)
    if dialect == "postgres" and not analyzes:
        planned = postgres_plan_only(body)      # the server's own reading of the options decides
        if planned is not None:
            return planned
    if analyzes:
        return needs(_gated_kind(inner.kind), f"EXPLAIN ANALYZE runs the statement: {inner.reason}",
                     inner.tables, inner.has_where)
    return needs(Kind.UNKNOWN, f"EXPLAIN of a statement that is not a plain read ({inner.reason}); "
                 "only EXPLAIN of reads runs without approval", inner.tables)


def _set(body: str, dialect: str, word: str) -> Verdict:
    """SET/RESET; MariaDB's `SET STATEMENT ... FOR x` is judged by x, so the classifier judges x."""
    return session_setting(body, dialect, word, judge=lambda inner: _classify(inner, dialect))


_BY_FIRST_WORD = {
    "show": _show, "set": _set, "reset": _set, "pragma": pragma, "use": _use,
    "declare": _declare, "fetch": _cursor, "move": _cursor, "close": _cursor,
    **dict.fromkeys(("begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release"), _transaction),
}


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
