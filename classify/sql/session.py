"""SET / RESET and SQLite PRAGMA: which settings are harmless session state, and which are really
admin, privilege, limits the policy owns, or the ground the classifier itself stands on. PURE.

The kind matters beyond the gate: a policy may let SESSION statements run without approval, so only
a setting known to be harmless is SESSION and free. One that changes how later statements are parsed,
resolved, checked, logged or limited is labelled for what it is, and a SET this module cannot read is
UNKNOWN. A name is the same name however it is written: PostgreSQL looks settings up without regard
to case or quotes, and so does MySQL for system variables, so `"Search_Path"`, `search_path` and
`` `search_path` `` are one setting, judged once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from sqlglot.tokens import TokenType

from classify.sql.safe_lists import (MYSQL_SAFE_CHARSETS, PRAGMAS_WITH_ARGUMENT, READ_ONLY_PRAGMAS,
                                SAFE_SESSION_VARIABLES)
from classify.sql.splitting import sqlglot_tokens
from classify.kinds import Kind
from classify.verdict import Verdict, needs, passes

# What classifies the statement after MariaDB's `SET STATEMENT ... FOR` (the SQL classifier, injected).
Judge = Callable[[str], Verdict]

_IDENT = r'(?:[A-Za-z_][\w$]*+|"(?:[^"]|"")++"|`(?:[^`]|``)++`)'
_USER_VARIABLE = r"""@(?:[\w.$]++|'(?:[^'\\]|'')*+'|"(?:[^"\\]|"")*+"|`(?:[^`]|``)++`)"""
_SCOPES = r"session|local|global|persist|persist_only"
_ASSIGNMENT = re.compile(
    rf"(?P<verb>set|reset)\s++(?:(?P<scope>{_SCOPES})\s++)?"
    rf"(?P<at>@@(?:(?P<at_scope>{_SCOPES})\s*+\.\s*+)?)?"
    rf"(?P<name>{_USER_VARIABLE}|{_IDENT}(?:\s*+\.\s*+{_IDENT})*+)"
    r"\s*+(?:(?::=|=|\bto\b)\s*+(?P<value>.*))?", re.I | re.S)
# PostgreSQL's SET forms with keywords for names: SET TIME ZONE 'UTC', SET SCHEMA 'app', SET NAMES 'UTF8'.
_PG_KEYWORD_FORM = re.compile(r"(?P<verb>set|reset)\s++(?:(?P<scope>session|local)\s++)?(?P<keyword>time\s++zone|"
                              r"schema|names|xml\s++option)(?![\w$])\s*+(?:(?:=|\bto\b)\s*+)?(?P<value>.*)", re.I | re.S)
_PG_KEYWORD_NAMES = {"time zone": "timezone", "schema": "search_path", "names": "client_encoding",
                     "xml option": "xmloption"}
_SIMPLE_VALUE = re.compile(r"^\s*(?:'[^'\\]*'|\"[^\"\\]*\"|[\w.+\-]+|default)(?:\s*,\s*(?:'[^'\\]*'|\"[^\"\\]*\"|"
                           r"[\w.+\-]+))*\s*$", re.I)
_IDENTITY = re.compile(r"(?:set|reset)\s++(?:(?:session|local)\s++)?(?:role|session\s++authorization|"
                       r"default\s++role|password)(?![\w$])", re.I)
_TRANSACTION = re.compile(r"set\s++(?:(?P<scope>session|local|global)\s++)?(?:transaction|session\s++"
                          r"characteristics\s++as\s++transaction|constraints)(?![\w$])", re.I)
_SET_STATEMENT = re.compile(r"set\s++statement(?![\w$])", re.I)
_MYSQL_CHARSET = re.compile(r"set\s+(?:names|character\s+set|charset)\s+(['\"]?)(?P<charset>\w+)\1"
                            r"(?:\s+collate\s+(['\"]?)\w+\3)?\s*", re.I)

_IDENTITY_SETTINGS = frozenset({"role", "session_authorization"})
_LIMITS = ("changes a time or memory limit that the policy and the server set, for every later statement "
           "of the session")
# Settings that are never free, whatever list they are also on (by canonical name: unquoted, lower case).
_NOT_FREE: dict[str, tuple[Kind, str]] = {
    "session_replication_role": (Kind.ADMIN, "turns off triggers and foreign-key checks for later writes"),
    "sql_log_bin": (Kind.ADMIN, "keeps later writes out of the binary log (and off replicas)"),
    "foreign_key_checks": (Kind.ADMIN, "turns off foreign-key checks for later writes"),
    "unique_checks": (Kind.ADMIN, "turns off unique checks for later writes"),
    # How the server reads SQL text and resolves names, which every later classification depends on.
    "sql_mode": (Kind.UNKNOWN, "changes how the server parses later statements (ANSI_QUOTES, "
                 "NO_BACKSLASH_ESCAPES, ORACLE, ...), which the classifier depends on"),
    "character_set_client": (Kind.UNKNOWN, "changes how the server decodes later statements"),
    "standard_conforming_strings": (Kind.UNKNOWN, "changes where '...' strings end in later statements"),
    "search_path": (Kind.UNKNOWN, "changes which schema's tables, functions and operators a name resolves to; "
                    "a schema before pg_catalog shadows the built-ins that reads are checked against"),
    "sql_select_limit": (Kind.UNKNOWN, "silently cuts what every later SELECT returns"),
    # Limits the policy applies on every transaction, and memory one statement may take.
    **{name: (Kind.ADMIN, _LIMITS) for name in (
        "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "idle_session_timeout",
        "transaction_timeout", "work_mem", "maintenance_work_mem", "hash_mem_multiplier", "temp_buffers",
        "temp_file_limit", "max_parallel_workers_per_gather", "max_parallel_maintenance_workers",
        "max_statement_time", "max_execution_time", "lock_wait_timeout", "innodb_lock_wait_timeout",
        "net_read_timeout", "net_write_timeout", "wait_timeout", "interactive_timeout", "tmp_table_size",
        "tmp_memory_table_size", "max_heap_table_size", "sort_buffer_size", "join_buffer_size",
        "read_buffer_size", "read_rnd_buffer_size", "max_join_size", "sql_max_join_size", "sql_big_selects",
        "group_concat_max_len", "max_sort_length", "max_recursive_iterations", "optimizer_search_depth",
        "long_query_time", "max_session_mem_used", "innodb_snapshot_isolation")},
}


def never_free_yet_listed_harmless() -> list[str]:
    """Settings on both lists, which would make the harmless list lie: there are none.

    >>> never_free_yet_listed_harmless()
    []
    """
    return sorted(set(_NOT_FREE) & set().union(*SAFE_SESSION_VARIABLES.values()))


@dataclass(frozen=True)
class _Assignment:
    verb: str                 # set | reset
    scope: str                # "" (this session), session, local, global, persist, persist_only
    name: str                 # canonical: unquoted, lower case; a user variable keeps its "@"
    value: str | None


def session_setting(body: str, dialect: str, verb: str, judge: Judge | None = None) -> Verdict:
    """SET/RESET, judged by the setting it names (see the module docstring).

    >>> session_setting('SET "Search_Path" = evil', "postgres", "set").kind
    <Kind.UNKNOWN: 'unknown'>
    >>> session_setting("SET application_name = 'psql'", "postgres", "set").requires_approval
    False
    """
    if dialect == "sqlite":
        return needs(Kind.UNKNOWN, f"{verb.upper()} is not a statement of SQLite (its settings are PRAGMAs)")
    if dialect == "mysql":
        verdict = _mysql_form(body, verb, judge)
        if verdict is not None:
            return verdict
    if _IDENTITY.match(body):
        return needs(Kind.PRIVILEGE, "SET ROLE / SESSION AUTHORIZATION / PASSWORD acts with, or changes, "
                     "another role's privileges")
    transaction = _TRANSACTION.match(body)
    if transaction is not None:
        if (transaction.group("scope") or "").lower() == "global":
            return needs(Kind.ADMIN, "SET GLOBAL TRANSACTION changes the transactions of every new session")
        return needs(Kind.SESSION, "sets how transactions behave; Countersign opens every transaction with "
                     "its own characteristics")
    assignment = _assignment(body, dialect)
    if assignment is None:
        return needs(Kind.UNKNOWN, f"{' '.join(body.split()[:3])} is a {verb.upper()} form this classifier "
                     "cannot read, so what it changes is unknown")
    return _judge(assignment, dialect)


def _mysql_form(body: str, verb: str, judge: Judge | None) -> Verdict | None:
    """MySQL's own SET forms; None when the statement is a plain assignment."""
    if verb == "reset":
        return needs(Kind.ADMIN, "RESET clears server state (binary logs, replication, caches)")
    if _SET_STATEMENT.match(body):
        return _set_statement(body, judge)
    charset = _MYSQL_CHARSET.fullmatch(body)
    if charset is not None:
        if charset.group("charset").lower() in MYSQL_SAFE_CHARSETS:
            return passes(Kind.SESSION, "sets the connection's character set")
        return needs(Kind.UNKNOWN, f"switches the connection to {charset.group('charset')}, in which the server "
                     "would read the bytes of later statements differently from how they were checked")
    if _assigns_several(body):
        return needs(Kind.UNKNOWN, "sets several variables at once, and a list can hide any setting behind a "
                     "harmless first one (sql_mode, NAMES, sql_log_bin, ...); send them one by one")
    return None


def _assignment(body: str, dialect: str) -> _Assignment | None:
    """The setting a SET/RESET names, however it is quoted; None for a form this module cannot read."""
    keyword = _PG_KEYWORD_FORM.fullmatch(body) if dialect == "postgres" else None
    if keyword is not None:
        verb, value = keyword.group("verb").lower(), keyword.group("value").strip() or None
        if (verb == "reset") == (value is not None):
            return None
        name = _PG_KEYWORD_NAMES[" ".join(keyword.group("keyword").lower().split())]
        return _Assignment(verb, (keyword.group("scope") or "").lower(), name, value)
    match = _ASSIGNMENT.fullmatch(body)
    if match is None:
        return None
    verb, at, name, value = match.group("verb").lower(), match.group("at"), match.group("name"), match.group("value")
    user_variable = name.startswith("@")
    if (verb == "reset") == (value is not None) or (at and (user_variable or match.group("scope"))):
        return None
    if dialect != "mysql" and (at or user_variable):
        return None
    scope = (match.group("at_scope") or match.group("scope") or "").lower()
    return _Assignment(verb, scope, name if user_variable else _canonical(name), value)


def _canonical(name: str) -> str:
    """The name the server looks up.

    >>> _canonical('"Search_Path"'), _canonical('`sql_mode`'), _canonical('app . "Tenant"')
    ('search_path', 'sql_mode', 'app.tenant')
    """
    parts = re.findall(r'"((?:[^"]|"")+)"|`((?:[^`]|``)+)`|([^\s."`]+)', name)
    return ".".join(double.replace('""', '"') or back.replace("``", "`") or bare
                    for double, back, bare in parts).lower()


def _judge(setting: _Assignment, dialect: str) -> Verdict:
    what = f"{setting.verb.upper()} {setting.name}"
    if setting.scope in ("global", "persist", "persist_only"):
        return needs(Kind.ADMIN, f"{setting.verb.upper()} GLOBAL changes the server for every session")
    if setting.name.startswith("@"):
        if setting.value is not None and _SIMPLE_VALUE.match(setting.value):
            return passes(Kind.SESSION, "sets a user variable to a literal")
        return needs(Kind.UNKNOWN, "sets a user variable to an expression; approve it like the expression")
    if setting.name in _IDENTITY_SETTINGS:
        return needs(Kind.PRIVILEGE, f"{what} acts with another role's privileges")
    if setting.verb == "reset":
        return passes(Kind.SESSION, f"{what} returns the setting to the server's default")
    if setting.name in _NOT_FREE:
        kind, why = _NOT_FREE[setting.name]
        return needs(kind, f"{what} {why}")
    if setting.name not in SAFE_SESSION_VARIABLES[dialect]:
        return needs(Kind.UNKNOWN, f"{what} is not on the list of harmless session settings")
    if setting.value is None or not _SIMPLE_VALUE.match(setting.value):
        return needs(Kind.UNKNOWN, f"SET {setting.name} to an expression is not known to be harmless")
    return passes(Kind.SESSION, f"harmless session setting ({setting.name})")


def _set_statement(body: str, judge: Judge | None) -> Verdict:
    """MariaDB's `SET STATEMENT var = value [, ...] FOR statement`: the settings last for that one
    statement, which then runs as it would alone. Free only as a free read with free settings; else it
    needs at least what the statement needs (a write stays a write, so its snapshot rules hold)."""
    split = _split_set_statement(body)
    if split is None or judge is None:
        return needs(Kind.UNKNOWN, "a SET STATEMENT ... FOR form this classifier cannot read")
    settings, statement = split
    inner = judge(statement)
    gated = [verdict for verdict in (session_setting(f"SET {s}", "mysql", "set") for s in settings)
             if verdict.requires_approval]
    if inner.kind is Kind.READ and not inner.requires_approval:
        if gated:
            return needs(gated[0].kind, f"SET STATEMENT ... FOR a read, with a setting that is not free: "
                         f"{gated[0].reason}", inner.tables)
        return passes(Kind.READ, f"{inner.reason}, with harmless settings for that statement only", inner.tables)
    gated_inner = inner.requires_approval and inner.kind not in (Kind.READ, Kind.SESSION, Kind.TRANSACTION)
    reasons = "; ".join(verdict.reason for verdict in (*gated[:1], inner))
    return needs(inner.kind if gated_inner else Kind.UNKNOWN, f"SET STATEMENT ... FOR runs a statement that is "
                 f"not a free read: {reasons}", inner.tables, inner.has_where)


def _split_set_statement(body: str) -> tuple[list[str], str] | None:
    """`SET STATEMENT a = 1, b = (x, y) FOR SELECT 1` -> (['a = 1', 'b = (x, y)'], 'SELECT 1')."""
    tokens = sqlglot_tokens(body, "mysql")
    if not tokens or len(tokens) < 3:
        return None
    settings, start, depth = [], tokens[1].end + 1, 0
    for token in tokens[2:]:
        depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(token.token_type, 0)
        if depth == 0 and token.token_type in (TokenType.COMMA, TokenType.FOR):
            settings.append(body[start:token.start].strip())
            start = token.end + 1
            if token.token_type is TokenType.FOR:
                return (settings, body[start:]) if all(settings) and body[start:].strip() else None
    return None


def _assigns_several(body: str) -> bool:
    """MySQL's SET takes a comma-separated list of assignments (`SET @a = 1, sql_mode = ''`)."""
    tokens = sqlglot_tokens(body, "mysql")
    return tokens is None or any(token.token_type is TokenType.COMMA for token in tokens)


_PRAGMA = re.compile(r"pragma\s++(?:(?:\w++|\"[^\"]*+\")\s*+\.\s*+)?+(?P<name>\w++)\s*+"
                     r"(?:\(\s*+(?P<argument>[\w\"'.$-]*+)\s*+\))?+\s*+", re.I)


def pragma(body: str, dialect: str, word: str) -> Verdict:
    if dialect != "sqlite":
        return needs(Kind.UNKNOWN, "PRAGMA is not a statement of this dialect")
    match = _PRAGMA.fullmatch(body)
    if match and match.group("name").lower() in READ_ONLY_PRAGMAS:
        name = match.group("name").lower()
        if match.group("argument") is None or name in PRAGMAS_WITH_ARGUMENT:
            return passes(Kind.READ, f"PRAGMA {name} only reads")
        return needs(Kind.ADMIN, f"PRAGMA {name}(value) sets {name}, like PRAGMA {name} = value")
    return needs(Kind.ADMIN, "this PRAGMA can change the database or the connection")
