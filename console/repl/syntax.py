"""Why a statement does not parse, in words an engineer expects (a parser's, not its internals), and
where: the shell draws psql's caret from it, `run` prints it. PURE.

PostgreSQL statements are read by PostgreSQL's own parser (pglast), so its message is the server's.
MySQL and SQLite statements are read by sqlglot, whose messages name its own classes ("Required
keyword: 'expression' missing for <class 'sqlglot.expressions.core.Mul'>"); those become the kind of
message the server would give ("syntax error at or near "FROM""). mongosh statements are read by
the JavaScript grammar, which says where.

>>> from classify.statements import classify
>>> syntax_error(classify("SELEC * FROM sites", "postgres")[0], "postgres")
SyntaxProblem(message='syntax error at or near "SELEC"', position=0)
>>> syntax_error(classify("SELECT 1 +", "mysql")[0], "mysql")
SyntaxProblem(message='syntax error at or near "+"', position=9)
>>> syntax_error(classify("SELECT 1", "mysql")[0], "mysql") is None
True
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from classify.statements import Kind, Statement


@dataclass(frozen=True)
class SyntaxProblem:
    message: str
    position: int | None      # 0-based character offset into the statement; None: the statement as a whole


def syntax_error(statement: Statement, dialect: str) -> SyntaxProblem | None:
    """The parse error of an UNKNOWN statement no parser could read; None for everything else."""
    from classify.unparsed import TOO_DEEP, parse_error
    if statement.kind is not Kind.UNKNOWN:
        return None
    if statement.reason == TOO_DEEP:
        return SyntaxProblem("it is nested too deeply to analyse; simplify it (e.g. fewer nested parentheses)", None)
    if dialect == "postgres":
        return _postgres(statement.text)
    if dialect == "mongodb":
        return _mongosh(statement.text)
    if parse_error(statement, dialect) is None:
        return None
    return _sqlglot(statement.text, dialect) or SyntaxProblem(parse_error(statement, dialect), None)


def _postgres(text: str) -> SyntaxProblem | None:
    from pglast import parser
    try:
        parser.parse_sql(text)
        return None
    except parser.ParseError as err:
        message = str(err.args[0]) if err.args else str(err)
        location = err.args[1] if len(err.args) > 1 and isinstance(err.args[1], int) else None
        return SyntaxProblem(message, len(text.rstrip()) if location is None else location)
    except RecursionError:
        return SyntaxProblem("it is nested too deeply to analyse; simplify it (e.g. fewer nested parentheses)", None)


def _mongosh(text: str) -> SyntaxProblem | None:
    from classify.mongosh.shell import MongoParseError, parse
    try:
        parse(text)
        return None
    except MongoParseError as err:
        return SyntaxProblem(str(err), err.position)   # its words end with "(line L, column C)"
    except RecursionError:
        return SyntaxProblem("the command is nested too deeply to analyse", None)


_EXPECTING = re.compile(r"^Expecting (.+)$")


def _sqlglot(text: str, dialect: str) -> SyntaxProblem | None:
    """sqlglot's first error as the server would word it, at the token it stopped on."""
    import sqlglot
    from sqlglot.errors import ParseError, TokenError
    try:
        sqlglot.parse(text, read=dialect)
        return None
    except ParseError as err:
        if not err.errors:
            return None
        first = err.errors[0]
    except TokenError as err:
        return SyntaxProblem(f"syntax error: {err}", None)
    except RecursionError:
        return SyntaxProblem("it is nested too deeply to analyse; simplify it (e.g. fewer nested parentheses)", None)
    token = (first.get("highlight") or "").strip()
    position = _offset(text, first.get("line"), first.get("col"), token)
    near = f'at or near "{token}"' if token else "at end of input"
    expecting = _EXPECTING.match(first.get("description") or "")
    if expecting:
        return SyntaxProblem(f"syntax error {near}: expected {expecting.group(1)}", position)
    return SyntaxProblem(f"syntax error {near}", position)


def _offset(text: str, line: int | None, column: int | None, token: str) -> int | None:
    """sqlglot's (line, column) is where the token it stopped on ENDS (1-based): its start, 0-based."""
    if not line or not column:
        return None
    lines = text.split("\n")
    if line > len(lines):
        return None
    start = sum(len(x) + 1 for x in lines[:line - 1]) + column - len(token)
    return max(0, min(start, len(text)))
