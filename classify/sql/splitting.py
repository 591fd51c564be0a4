"""Split a script into statements the way the target server's own client and lexer would. PURE.

- PostgreSQL: pglast, i.e. libpg_query, PostgreSQL's own parser. With the full parser first (so
  `BEGIN ATOMIC ... END` bodies stay whole); if the script has a syntax error somewhere, with its
  scanner, which still knows E-strings, dollar quotes and nested comments.
- SQLite: sqlite3.complete_statement, SQLite's own tokenizer (trigger bodies stay whole).
- MySQL/MariaDB: sqlglot's MySQL tokenizer; a `;` token ends a statement, as in the mysql client.
  `DELIMITER` is a client command, not SQL: it comes out as its own (unknown) statement.

Each piece is returned as the exact text to send, stripped of surrounding blanks and the final `;`.
Pieces that hold nothing but comments are dropped, except MySQL executable comments (`/*! ... */`),
which the server runs.
"""
from __future__ import annotations

import re
import sqlite3

_BLANK_OR_SEMI = " \t\r\n\f;"


def split_statements(script: str, dialect: str) -> list[str]:
    if "\x00" in script:
        # C lexers (libpg_query, sqlite3) stop at a NUL and would silently drop the rest: keep the
        # script whole, and the classifier refuses it (see lexing_ambiguity).
        return [script.strip()] if script.strip() else []
    if dialect == "postgres":
        pieces = _split_postgres(script)
    elif dialect == "sqlite":
        pieces = _split_sqlite(script)
    elif dialect == "mysql":
        pieces = _split_mysql(script)
    else:
        raise ValueError(f"unknown dialect {dialect!r}")
    return [p for p in (_trim(piece) for piece in pieces) if p and not _only_comments(p, dialect)]


def _trim(piece: str) -> str:
    return piece.strip().rstrip(_BLANK_OR_SEMI).strip()


def _split_postgres(script: str) -> list[str]:
    from pglast import parser
    try:
        # The server's own grammar: exact, and it keeps `BEGIN ATOMIC ... END` bodies whole.
        return [script[s] for s in parser.split(script, with_parser=True, only_slices=True)]
    except parser.ParseError:
        pass
    try:
        tokens = parser.scan(script)
    except parser.ParseError:
        # Even the lexer gave up (an unterminated quote or comment): the server would refuse the
        # rest as one broken statement, and so do we.
        return [script]
    # A syntax error somewhere: split on the lexer's own `;` tokens, so no text is ever dropped
    # (pglast's scanner-only split silently skips a statement it cannot recognise).
    return _split_on_semicolons(script, [(t.start, t.end) for t in tokens if t.name == "ASCII_59"])


def _split_on_semicolons(script: str, semicolons: list[tuple[int, int]]) -> list[str]:
    pieces, start = [], 0
    for semi_start, semi_end in semicolons:
        pieces.append(script[start:semi_start])
        start = semi_end + 1
    pieces.append(script[start:])
    return pieces


def _split_sqlite(script: str) -> list[str]:
    pieces, start, pos = [], 0, script.find(";")
    while pos != -1:
        if sqlite3.complete_statement(script[start:pos + 1]):
            pieces.append(script[start:pos + 1])
            start = pos + 1
        pos = script.find(";", pos + 1)
    pieces.append(script[start:])
    return pieces


def _split_mysql(script: str) -> list[str]:
    from sqlglot.dialects.mysql import MySQL
    from sqlglot.tokens import TokenType
    if re.search(r"(?im)^\s*delimiter\s", script):
        # The client would change the delimiter; we do not emulate that. Keep DELIMITER lines as
        # their own statements so they surface as unknown instead of silently merging statements.
        return _split_delimiter_lines(script)
    try:
        tokens = MySQL().tokenize(script)
    except Exception:  # noqa: BLE001 - an untokenizable script is one unknown statement
        return [script]
    return _split_on_semicolons(script, [(t.start, t.end) for t in tokens
                                         if t.token_type == TokenType.SEMICOLON])


def _split_delimiter_lines(script: str) -> list[str]:
    pieces: list[str] = []
    buffer: list[str] = []
    for line in script.splitlines(keepends=True):
        if re.match(r"(?i)^\s*delimiter\s", line):
            pieces.extend(_split_mysql("".join(buffer)))
            pieces.append(line)
            buffer = []
        else:
            buffer.append(line)
    pieces.extend(_split_mysql("".join(buffer)))
    return pieces


def has_executable_comment(text: str) -> bool:
    return "/*!" in text or "/*M!" in text


_EXECUTABLE_START = re.compile(r"/\*M?!(?:\d{5,6})?\s?")


def inline_executable_comments(text: str) -> str:
    """What MySQL/MariaDB actually runs: the body of every `/*! ... */` becomes plain SQL. Linear
    (no regex backtracking over an unterminated comment): the body ends at the first `*/`.

    >>> inline_executable_comments("SELECT 1 /*!50000 , SLEEP(1) */")
    'SELECT 1  , SLEEP(1)  '
    """
    out, pos = [], 0
    while (match := _EXECUTABLE_START.search(text, pos)) is not None:
        end = text.find("*/", match.end())
        if end == -1:
            break
        out.append(text[pos:match.start()] + " " + text[match.end():end] + " ")
        pos = end + 2
    out.append(text[pos:])
    return "".join(out)


_PG_COMMENT_TOKENS = ("C_COMMENT", "SQL_COMMENT")


def code_start(text: str, dialect: str) -> int | None:
    """Where the first token begins, past leading comments as the SERVER's lexer reads them
    (PostgreSQL nests `/* */`, MySQL and SQLite do not). None when the text cannot be tokenised.

    >>> code_start("/* a /* nested */ still a comment */ SELECT 1", "postgres")
    37
    """
    if not text.startswith(("-", "/", "#")):
        return 0
    if dialect == "postgres":
        from pglast import parser
        try:
            tokens = parser.scan(text)
        except parser.ParseError:
            return None
        code = [t for t in tokens if t.name not in _PG_COMMENT_TOKENS]
        return code[0].start if code else len(text)
    tokens = sqlglot_tokens(text, dialect)
    if tokens is None:
        return None
    return tokens[0].start if tokens else len(text)


def sqlglot_tokens(text: str, dialect: str) -> list | None:
    from sqlglot.dialects.dialect import Dialect
    try:
        return Dialect.get_or_raise(dialect).tokenize(text)
    except Exception:  # noqa: BLE001 - untokenizable text: the caller fails closed
        return None


def _mysql_escapes_a_closing_quote(text: str) -> bool:
    """A '...' (or "...") literal holding \' (or \"): with backslash escapes it runs on, without them
    (NO_BACKSLASH_ESCAPES; ANSI_QUOTES for "...") it ends there. A \" inside '...' is the same either way."""
    tokens = sqlglot_tokens(text, "mysql")
    if tokens is None:
        return True
    for token in tokens:
        literal = text[token.start:token.end + 1]
        quote = next((char for char in literal[:2] if char in "'\""), None)
        if quote is not None and "\\" + quote in literal:
            return True
    return False


_ASCII_TEXT = re.compile(r"[\t\n\r\x20-\x7e]*")


def _mysql_unquoted_odd_character(text: str) -> bool:
    """A character outside ASCII's printable range (and tab, newline, carriage return) anywhere but
    inside a quoted string or a quoted name. Our tokenizer and the server's are known to disagree
    there: Python's idea of whitespace is not MySQL's, so a comment can end (or start) at a
    different place, and a comment is invisible to the classifier.

    >>> _mysql_unquoted_odd_character("SELECT 'café', `naïve` FROM t -- fine")
    False
    >>> _mysql_unquoted_odd_character("SELECT 1 --\u00a0, GET_LOCK('x', 0)")
    True
    """
    if _ASCII_TEXT.fullmatch(text):
        return False
    tokens = sqlglot_tokens(text, "mysql")
    if tokens is None:
        return True
    quoted = [(t.start, t.end) for t in tokens if text[t.start:t.start + 1] in ("'", '"', "`")
              or text[t.start:t.start + 2].lower() in ("n'", "x'", "b'")]
    odd = (m.start() for m in re.finditer(r"[^\t\n\r\x20-\x7e]", text))
    return any(not any(start <= pos <= end for start, end in quoted) for pos in odd)


def lexing_ambiguity(text: str, dialect: str) -> str | None:
    """Why the server might cut this text into tokens differently from our lexers, or None.

    - Any dialect: a NUL character (C strings end there).
    - MySQL: a non-ASCII or control character outside quoted text (where comments end differs).
    - MySQL: a backslash before a string's own quote, which ends the string or not depending on
      sql_mode NO_BACKSLASH_ESCAPES / ANSI_QUOTES (a server setting we cannot see). (`--1` is fine:
      sqlglot, like MySQL, reads it as two minus signs unless a blank follows.)
    - PostgreSQL: a backslash before a quote in a plain '...' string: with standard_conforming_strings
      off (a server or role setting) it escapes the quote and the string runs on.
    """
    if "\x00" in text:
        return ("contains a NUL character: drivers and servers cut the text there or refuse it, so what runs "
                "is not what was checked")
    if dialect == "mysql":
        if _mysql_unquoted_odd_character(text):
            return ("has a non-ASCII or control character outside quoted text: MySQL's lexer and ours "
                    "disagree on where comments end around such characters (after `--`, MariaDB ends "
                    "a comment only at an ASCII blank), so what runs might not be what was checked; "
                    "quote the text or use plain ASCII")
        if ("\\'" in text or '\\"' in text) and _mysql_escapes_a_closing_quote(text):
            return ("has a backslash before a string's own quote: where the string ends depends on the "
                    "server's sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES)")
    elif dialect == "postgres" and "\\'" in text:
        from pglast import parser
        try:
            tokens = parser.scan(text)
        except parser.ParseError:
            return None   # the server refuses it too; the classifier will say it cannot parse it
        for token in tokens:
            literal = text[token.start:token.end + 1]
            if token.name == "SCONST" and literal[:1] in ("'", "N", "n") and "\\'" in literal:
                return ("has a backslash before a quote in a '...' string: with standard_conforming_strings "
                        "off the string does not end there; write it as E'...' or with ''")
    return None


def _only_comments(piece: str, dialect: str) -> bool:
    if dialect == "mysql" and has_executable_comment(piece):
        return False
    if "--" not in piece and "/*" not in piece and "#" not in piece:
        return False
    from sqlglot import tokenize
    try:
        return not tokenize(piece, read=dialect)
    except Exception:  # noqa: BLE001 - untokenizable text is not "only comments"
        return False
