"""A statement's normal form, for matching policy patterns. PURE: no I/O.

Comments are removed, every run of whitespace and comments between two tokens becomes one space,
and the text is case folded, so ``DROP/**/TABLE`` and ``drop\\n  table`` both read ``drop table``.
The tokens come from each dialect's own lexer (PostgreSQL's scanner through pglast; sqlglot's
tokenizer for MySQL and SQLite), so a comment marker inside a string literal stays part of the string.
Tokens that touch in the text still touch (``count(*)`` stays ``count(*)``). mongosh text is kept as is.

>>> normalize("DROP/**/TABLE  t -- gone", "postgres")
'drop table t'
>>> normalize("SELECT '--not a comment'  FROM t", "sqlite")
"select '--not a comment' from t"
"""
from __future__ import annotations

import re
from functools import lru_cache

SQL_DIALECTS = ("postgres", "mysql", "sqlite")
# MySQL runs the body of /*! ... */ and /*M! ... */ (MariaDB): for MySQL it is text, not a comment.
_MYSQL_EXECUTABLE_COMMENT = re.compile(r"/\*M?!\d*(.*?)\*/", re.DOTALL)


def normalize(text: str, dialect: str) -> str:
    """``text`` without comments, with whitespace collapsed and case folded, from ``dialect``'s tokens.
    Text the lexer cannot read (an unterminated quote or comment) is only collapsed and folded."""
    if dialect not in SQL_DIALECTS:
        return text                                   # mongosh: as written
    if dialect == "mysql":
        text = _MYSQL_EXECUTABLE_COMMENT.sub(r" \1 ", text)
    try:
        spans = _postgres_spans(text) if dialect == "postgres" else _sqlglot_spans(text, dialect)
    except Exception:   # noqa: BLE001 — any lexer failure: fall back to the plain text, never raise
        return " ".join(text.split()).casefold()
    return _join(text, spans).casefold()


@lru_cache(maxsize=1024)
def normal_forms(text: str) -> tuple[str, ...]:
    """The text as written and its normal form under every SQL dialect, without repeats.

    A policy's patterns are matched against all of them (any match blocks): a policy does not know
    the dialect of the statement it judges, and matching more forms can only block more.

    >>> normal_forms("DROP -- x\\nTABLE t")
    ('DROP -- x\\nTABLE t', 'drop table t')
    """
    forms = [text] + [normalize(text, dialect) for dialect in SQL_DIALECTS]
    return tuple(dict.fromkeys(forms))


def _join(text: str, spans: list[tuple[int, int]]) -> str:
    """The tokens' own text; one space wherever whitespace or a comment separated two of them."""
    out, previous_end = [], None
    for start, end in spans:
        if previous_end is not None and start > previous_end:
            out.append(" ")
        out.append(text[start:end])
        previous_end = end
    return "".join(out)


def _postgres_spans(text: str) -> list[tuple[int, int]]:
    from pglast import parser
    return [(t.start, t.end + 1) for t in parser.scan(text) if t.name not in ("C_COMMENT", "SQL_COMMENT")]


def _sqlglot_spans(text: str, dialect: str) -> list[tuple[int, int]]:
    """sqlglot's tokens (comments are not tokens there); a token's span includes its quotes."""
    return [(t.start, t.end + 1) for t in _tokenizer(dialect).tokenize(text)]


def _tokenizer(dialect: str):
    from sqlglot.dialects.dialect import Dialect
    return Dialect.get_or_raise(dialect).tokenizer()
