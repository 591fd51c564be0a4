"""Why a statement cannot be parsed at all, or None when it can. PURE.

An UNKNOWN statement is either one the classifier read and does not whitelist (it goes to a
reviewer) or one no parser could read (usually a typo: `run` refuses it instead of filing a request).
"""
from __future__ import annotations

import re

# The classifier's reasons for an UNKNOWN statement it could not read at all (classify/sql/classifier.py,
# classify/mongosh/shell.py); every other UNKNOWN was read and is simply not on a whitelist.
_UNREAD = re.compile(r"sqlglot cannot parse it \((?P<sqlglot>.*)\)\)$|^cannot be split into tokens"
                     r"|^not understood as a mongosh command: (?P<mongosh>.*)$", re.DOTALL)


TOO_DEEP = "too deeply nested to analyse"      # the classifier's reason when its parser ran out of stack


def parse_error(statement, dialect: str) -> str | None:
    """Why ``statement`` cannot be parsed, or None when it can. PostgreSQL's own parser (pglast) has
    the last word there, since sqlglot does not know all of PostgreSQL's grammar.

    >>> from classify.statements import classify
    >>> parse_error(classify("SELEC 1", "postgres")[0], "postgres")
    'syntax error at or near "SELEC", at index 0'
    >>> parse_error(classify("SELEC 1", "sqlite")[0], "sqlite")
    'Invalid expression / Unexpected token. Line 1, Col: 7.'
    >>> parse_error(classify("VACUUM", "postgres")[0], "postgres") is None
    True
    """
    from classify.statements import Kind
    if statement.kind is not Kind.UNKNOWN:
        return None
    if statement.reason == TOO_DEEP:
        return "it is nested too deeply to analyse; simplify it (e.g. fewer nested parentheses)"
    if dialect == "postgres":
        from pglast import parser
        try:
            parser.parse_sql(statement.text)
            return None
        except parser.ParseError as err:
            return str(err)
        except RecursionError:
            return "too deeply nested to parse"
    found = _UNREAD.search(statement.reason)
    if found is None:
        return None
    return found.group("sqlglot") or found.group("mongosh") or statement.reason
