"""SET / RESET and SQLite PRAGMA: which settings are harmless session state, and which are really
admin, privilege, or the ground the classifier itself stands on. PURE.

The kind matters beyond the gate: a policy may let SESSION statements run without approval, so a
setting that changes how later statements are parsed, checked or logged is labelled for what it is.
"""
from __future__ import annotations

import re

from sqlglot.tokens import TokenType

from classify.sql.safe_lists import (MYSQL_SAFE_CHARSETS, PRAGMAS_WITH_ARGUMENT, READ_ONLY_PRAGMAS,
                                SAFE_SESSION_VARIABLES)
from classify.sql.splitting import sqlglot_tokens
from classify.kinds import Kind
from classify.verdict import Verdict, needs, passes

_SET = re.compile(r"^\s*(?P<verb>set|reset)\s+(?P<scope>session\s+|local\s+|global\s+|persist\s+|"
                  r"persist_only\s+|@@session\.|@@local\.|@@global\.|@@)?(?P<name>[A-Za-z_][\w.]*"
                  r"(?:\s+zone)?|@[\w.$]+)\s*(?:(?:=|:=|\bto\b)\s*(?P<value>.*))?$", re.I | re.S)
_SIMPLE_VALUE = re.compile(r"^\s*(?:'[^'\\]*'|\"[^\"\\]*\"|[\w.+\-]+|default)(?:\s*,\s*(?:'[^'\\]*'|\"[^\"\\]*\"|"
                           r"[\w.+\-]+))*\s*$", re.I)
_SET_IDENTITY = re.compile(r"set\s+(?:session\s+|local\s+)?(?:role|session\s+authorization)\b", re.I)
_MYSQL_CHARSET = re.compile(r"set\s+(?:names|character\s+set|charset)\s+(['\"]?)(?P<charset>\w+)\1"
                            r"(?:\s+collate\s+(['\"]?)\w+\3)?\s*", re.I)


def session_setting(body: str, dialect: str, verb: str) -> Verdict:
    """SET/RESET. The kind matters beyond the gate: a policy may let SESSION statements run without
    approval, so what is really admin, privilege, or the classifier's own footing is labelled so."""
    if dialect == "mysql" and verb == "reset":
        return needs(Kind.ADMIN, "RESET clears server state (binary logs, replication, caches)")
    charset = _MYSQL_CHARSET.fullmatch(body) if dialect == "mysql" else None
    if charset is not None:
        if charset.group("charset").lower() in MYSQL_SAFE_CHARSETS:
            return passes(Kind.SESSION, "sets the connection's character set")
        return needs(Kind.UNKNOWN, f"switches the connection to {charset.group('charset')}, in which the server "
                     "would read the bytes of later statements differently from how they were checked")
    if dialect == "mysql" and _assigns_several(body):
        return needs(Kind.UNKNOWN, "sets several variables at once, and a list can hide any setting behind a "
                     "harmless first one (sql_mode, NAMES, sql_log_bin, ...); send them one by one")
    if verb == "set" and _SET_IDENTITY.match(body):
        return needs(Kind.PRIVILEGE, "SET ROLE / SESSION AUTHORIZATION acts with another role's privileges")
    match = _SET.match(body)
    if not match:
        what = " ".join(body.split()[:3])
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
        kind, why = _RISKY_SETTINGS.get(name, (Kind.SESSION, "is not on the list of harmless session settings"))
        return needs(kind, f"{verb.upper()} {name} {why}")
    if verb == "set" and (value is None or not _SIMPLE_VALUE.match(value)):
        return needs(Kind.SESSION, f"SET {name} to an expression is not known to be harmless")
    if name == "search_path" and _demotes_pg_catalog(value or ""):
        return needs(Kind.UNKNOWN, "this search_path puts a schema before pg_catalog, so its functions and "
                     "operators would shadow the built-in ones that reads are checked against")
    return passes(Kind.SESSION, f"harmless session setting ({name})")


# Settings that are more than session state (by the name _SET extracts).
_RISKY_SETTINGS: dict[str, tuple[Kind, str]] = {
    "session_replication_role": (Kind.ADMIN, "turns off triggers and foreign-key checks for later writes"),
    "sql_log_bin": (Kind.ADMIN, "keeps later writes out of the binary log (and off replicas)"),
    "foreign_key_checks": (Kind.ADMIN, "turns off foreign-key checks for later writes"),
    "unique_checks": (Kind.ADMIN, "turns off unique checks for later writes"),
    # How the server reads SQL text, which every later classification depends on.
    "sql_mode": (Kind.UNKNOWN, "changes how the server parses later statements (ANSI_QUOTES, "
                 "NO_BACKSLASH_ESCAPES, ORACLE, ...), which the classifier depends on"),
    "character_set_client": (Kind.UNKNOWN, "changes how the server decodes later statements"),
    "standard_conforming_strings": (Kind.UNKNOWN, "changes where '...' strings end in later statements"),
}


def _assigns_several(body: str) -> bool:
    """MySQL's SET takes a comma-separated list of assignments (`SET @a = 1, sql_mode = ''`)."""
    tokens = sqlglot_tokens(body, "mysql")
    return tokens is None or any(token.token_type is TokenType.COMMA for token in tokens)


def _demotes_pg_catalog(value: str) -> bool:
    schemas = [part.strip().strip("'\"").lower() for part in value.split(",")]
    return "pg_catalog" in schemas and schemas[0] != "pg_catalog"


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
