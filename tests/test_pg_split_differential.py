"""Countersign's splitting and comment stripping against PostgreSQL's own, on generated scripts.

The classifier judges each piece Countersign cuts a script into, and the gate sends each piece alone;
if the server cut the script elsewhere, or read a comment as code (or code as a comment), what runs
would not be what was judged. Each generated script is a few SELECTs of literals full of what makes
a lexer stumble: `;` and comment markers inside strings, E'' strings with backslash escapes, dollar
quotes with and without tags, nested block comments, quoted names, empty statements. The server is the
oracle twice over:

- the whole script, sent with the simple query protocol, is split by the server: one result per
  statement, in order;
- each of Countersign's pieces, sent alone as a prepared statement (which refuses two commands),
  must give exactly those results, one piece per result; and so must the piece's normal form
  (classify/normalize.py: comments removed, whitespace collapsed, case folded: the generator writes
  lower case only, so folding changes nothing the server sees).
"""
from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from classify.normalize import normalize
from classify.sql.splitting import code_start, split_statements
from classify.statements import classify
from tests import servers

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server(pg_admin_url):
    name = servers.scratch_name("split")
    url = servers.create_pg_database(pg_admin_url, name)
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET default_transaction_read_only = on")   # nothing generated here may write
    yield conn
    conn.close()
    servers.drop_pg_database(pg_admin_url, name)


# -- what the scripts are made of (lower-case ASCII only) -----------------------------------------
def _joined(units: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(units), max_size=8).map("".join)


def _dollar_quoted(tag: str) -> st.SearchStrategy[str]:
    closing = f"${tag}$"
    body = _joined(["a", " ", ";", "'", "''", "--", "/*", "*/", "$", "\n", "\\", "e'", '"'])
    # The body must not close the quote early: the first `$tag$` after the opening one ends it.
    return body.filter(lambda b: (b + closing).find(closing) == len(b)).map(lambda b: closing + b + closing)


PLAIN_STRING = _joined(["a", " ", ";", "--", "/*", "*/", "$$", "\\", "''", "\n", '"']).map(lambda s: f"'{s}'")
# E'' strings: backslash escapes of the quote, the backslash, controls; a doubled quote too.
E_STRING = _joined(["a", " ", ";", "--", "/*", "*/", "$$", "\\\\", "\\'", "''", "\\n", "\\t", "\\x4a"]
                   ).map(lambda s: f"e'{s}'")
DOLLAR = st.sampled_from(["", "t", "a_b"]).flatmap(_dollar_quoted)
NAME = _joined(["a", " ", ";", "--", "/*", "'", '""', "$"]).map(lambda s: f'"x{s}"')
LINE_COMMENT = _joined(["a", " ", ";", "'", "/*", "*/", "$$", "\\", "-", '"']).map(lambda s: f"--{s}\n")
_BLOCK_UNITS = ["a", " ", ";", "'", "--", "\n", "$$", "\\", '"', "/* x */", "/* ; /* ' */ */"]
BLOCK_COMMENT = _joined(_BLOCK_UNITS).filter(lambda s: not s.endswith("/")).map(lambda s: f"/*{s}*/")
COMMENT = st.one_of(LINE_COMMENT, BLOCK_COMMENT)
GAP = st.one_of(st.sampled_from([" ", "\n", "  \t"]), COMMENT, st.tuples(COMMENT, COMMENT).map("".join))
VALUE = st.one_of(PLAIN_STRING, E_STRING, DOLLAR, st.integers(0, 99).map(str))


@st.composite
def statement(draw, marker: int) -> str:
    """`select <marker>, v [as "name"], ...`: one row, whose first column says which statement it is."""
    parts = ["select", draw(GAP), str(marker)]
    for _ in range(draw(st.integers(0, 3))):
        parts += [draw(st.sampled_from(["", " "])), ",", draw(GAP), draw(VALUE)]
        if draw(st.booleans()):
            parts += [" as ", draw(NAME)]
    return "".join(parts)


@st.composite
def script(draw) -> str:
    count = draw(st.integers(1, 4))
    pieces = [draw(st.sampled_from(["", " ", "\n"])), draw(st.one_of(st.just(""), COMMENT))]
    for marker in range(count):
        pieces += [draw(statement(marker)), draw(st.sampled_from(["", " ", "\n"])), ";"]
        pieces += [draw(st.sampled_from(["", " ", "\n", ";", " ; "])), draw(st.one_of(st.just(""), COMMENT))]
    if draw(st.booleans()):
        pieces.append(draw(st.sampled_from(["-- the end", "/* the end */", ""])))   # no newline after it
    return "".join(pieces)


# -- the comparison -------------------------------------------------------------------------------
def server_results(conn: psycopg.Connection, text: str) -> list[tuple]:
    """The server splits: one row per statement it ran (the simple query protocol takes several)."""
    cur = conn.cursor()
    cur.execute(text)
    rows = []
    while True:
        rows.extend(cur.fetchall())
        if not cur.nextset():
            return rows


def piece_result(conn: psycopg.Connection, piece: str) -> list[tuple]:
    """One piece alone, prepared: the server refuses it if it holds two commands."""
    return conn.cursor().execute(piece, prepare=True).fetchall()


def check(conn: psycopg.Connection, text: str) -> None:
    expected = server_results(conn, text)
    pieces = split_statements(text, "postgres")
    assert [s.text for s in classify(text, "postgres")] == pieces
    got = []
    for piece in pieces:
        start = code_start(piece, "postgres")
        assert start is not None and piece[start:].startswith("select"), (text, piece)
        (row,) = piece_result(conn, piece)
        assert piece_result(conn, normalize(piece, "postgres")) == [row], (text, piece, normalize(piece, "postgres"))
        got.append(row)
    assert got == expected, (text, pieces)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=script())
@example(text="select 0, e'\\';' as \"x;\"; select 1 /* a /* ; */ b */, $$;$$; -- ;")
@example(text="select 0, $t$ $$ ; $t$, '--', '/*';select 1--;\n, 2;;")
@example(text="/* lead */ select 0 /* ; */;\n-- only a comment; select 9\n")
def test_countersign_splits_and_strips_comments_as_postgresql_does(server, text):
    check(server, text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=script())
def test_the_fallback_split_after_a_syntax_error_agrees(server, text):
    """With a syntax error anywhere, the server runs nothing and Countersign splits with PostgreSQL's
    scanner instead of its parser: the pieces before the broken one must still be the server's."""
    broken = text + "\n; selec broken"
    pieces = split_statements(broken, "postgres")
    assert pieces[-1] == "selec broken"
    assert [piece_result(server, p)[0] for p in pieces[:-1]] == server_results(server, text)
