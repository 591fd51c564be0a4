"""Is a piece of typed text a finished statement? The console's Enter asks; each dialect's own
tokenizer answers (the same ones the splitter uses), so Enter and splitting never disagree. PURE.

>>> [is_complete_statement(t, "postgres") for t in ("SELECT 1;", "SELECT ';", "SELECT 1; -- done")]
[True, False, True]
"""
from __future__ import annotations

import re

# A dialect's own string literals where they differ from standard SQL's '...' with '' escapes:
# MySQL takes "..." as a string too, and a backslash escapes the next character in both.
_STRING_LITERALS = {
    "mysql": re.compile(r"'(?:[^'\\]|\\.|'')*(?:'|\Z)|\"(?:[^\"\\]|\\.|\"\")*(?:\"|\Z)", re.S),
}


def string_literal(dialect: str | None) -> re.Pattern | None:
    """The dialect's string-literal pattern where it is not standard SQL's (history redaction uses it).

    >>> string_literal("mysql").match('"it\\\\"s" rest').group(0)
    '"it\\\\"s"'
    >>> string_literal("postgres") is None
    True
    """
    return _STRING_LITERALS.get(dialect or "")


def is_complete_statement(text: str, dialect: str) -> bool:
    if dialect == "mongodb":   # mongosh runs a complete expression on Enter, with or without ';'
        from classify.mongosh.shell import is_complete as complete_mongosh
        return complete_mongosh(text)
    return ";" in text and _ends_with_terminator(text, dialect)


def _ends_with_terminator(text: str, dialect: str) -> bool:
    """The dialect's own tokenizer decides; an unterminated quote or comment means "go on"."""
    if dialect == "sqlite":
        import sqlite3
        return sqlite3.complete_statement(text)
    if dialect == "mysql":
        from sqlglot.dialects.mysql import MySQL
        from sqlglot.tokens import TokenType
        try:
            tokens = MySQL().tokenize(text)   # comments ride on the tokens, they are not tokens
        except Exception:  # noqa: BLE001 - sqlglot raises TokenError (and others) on unfinished text
            return False
        return bool(tokens) and tokens[-1].token_type == TokenType.SEMICOLON
    from pglast import parser
    try:
        tokens = [t for t in parser.scan(text) if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    except parser.ParseError:
        return False
    return bool(tokens) and tokens[-1].name == "ASCII_59"
