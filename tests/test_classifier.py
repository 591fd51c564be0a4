"""The classifier: a readable table of statements and what they must come out as, adversarial input,
and property tests that it never crashes (PostgreSQL's own regression statements, as ground truth, are in
test_classifier_corpus.py)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classify.sql.splitting import code_start
from classify.statements import Kind, classify
from tests import fixtures

@pytest.mark.parametrize("case", fixtures.cases(), ids=lambda c: c.id)
def test_fixture_table(case):
    (statement,) = classify(case.text, case.dialect)
    assert (statement.kind, statement.requires_approval) == (Kind(case.kind), case.requires_approval), statement.reason
    assert statement.text == case.text
    if case.tables is not None:
        assert statement.tables == case.tables
    assert statement.has_where == case.has_where
    assert statement.reason and "\n" not in statement.reason


@pytest.mark.parametrize("case", fixtures.adversarial(), ids=lambda c: c.id)
def test_adversarial_statements_never_pass_as_reads(case):
    statements = classify(case.text, case.dialect)
    assert statements, "a statement must never disappear"
    for statement in statements:   # each one: a harmless piece must not carry a dangerous one through
        assert statement.requires_approval, statement.as_json()


@pytest.mark.parametrize("dialect,script,texts", [
    ("postgres", "SELECT 'a;b'; SELECT $$c;d$$; SELECT $t$e;f$t$; SELECT E'g\\';h'",
     ["SELECT 'a;b'", "SELECT $$c;d$$", "SELECT $t$e;f$t$", "SELECT E'g\\';h'"]),
    ("postgres", "SELECT 1 /* a /* nested; */ still comment; */; SELECT 2",
     ["SELECT 1 /* a /* nested; */ still comment; */", "SELECT 2"]),
    ("postgres", "SELECT '\\'; DELETE FROM deploys", ["SELECT '\\'", "DELETE FROM deploys"]),
    ("postgres", "SELECT 1 /* nested /* comment */ ; DELETE FROM deploys */",
     ["SELECT 1 /* nested /* comment */ ; DELETE FROM deploys */"]),
    ("postgres", "SELECT 1; SELEC broken; SELECT 2", ["SELECT 1", "SELEC broken", "SELECT 2"]),
    ("postgres", "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT 3",
     ["CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; SELECT 2; END", "SELECT 3"]),
    ("postgres", "-- only a comment\n", []),
    ("postgres", "SELECT 1; -- trailing\nDELETE FROM t", ["SELECT 1", "DELETE FROM t"]),
    ("mysql", "SELECT 'a;b'; SELECT \"c;d\"; SELECT `e;f` FROM t # x;y\n; SELECT 'it\\'s;'",
     ["SELECT 'a;b'", "SELECT \"c;d\"", "SELECT `e;f` FROM t # x;y", "SELECT 'it\\'s;'"]),
    ("mysql", "SELECT 1; /*!50000 DROP TABLE t */", ["SELECT 1", "/*!50000 DROP TABLE t */"]),
    ("sqlite", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE x SET a = 1; DELETE FROM y; END; SELECT 1",
     ["CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE x SET a = 1; DELETE FROM y; END", "SELECT 1"]),
])
def test_splits_like_the_server(dialect, script, texts):
    assert [s.text for s in classify(script, dialect)] == texts
    assert [s.index for s in classify(script, dialect)] == list(range(len(texts)))


def test_unknown_dialect_is_refused():
    with pytest.raises(ValueError, match="postgres, mysql, sqlite"):
        classify("SELECT 1", "oracle")


SQLISH = st.lists(st.sampled_from([
    "SELECT", "DELETE", "UPDATE", "INSERT", "INTO", "FROM", "WHERE", "WITH", "AS", "(", ")", ";", "'",
    '"', "`", "$$", "$a$", "E'", "/*", "*/", "/*!", "--", "#", "\n", "t", "1", "=", ",", "*", "\\",
    "BEGIN", "END", "SET", "ROLE", "EXPLAIN", "ANALYZE", "COPY", "PRAGMA", "nextval(", "RETURNING",
]), max_size=30).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(script=st.one_of(SQLISH, st.text(max_size=200)), dialect=st.sampled_from(["postgres", "mysql", "sqlite"]))
def test_never_crashes_and_never_drops_or_reorders_text(script, dialect):
    statements = classify(script, dialect)
    position = 0
    for s in statements:
        assert isinstance(s.kind, Kind) and s.reason
        found = script.find(s.text, position)
        assert found >= 0, f"{s.text!r} is not the script's own text, in order"
        position = found + len(s.text)
        body = s.text[code_start(s.text, dialect) or 0:].lower()
        if dialect == "postgres" and s.kind is Kind.READ and not s.requires_approval and \
                not body.startswith(("show", "explain", "declare", "fetch", "move", "close")):
            from pglast import parser
            assert '"stmt":{"SelectStmt"' in parser.parse_sql_json(s.text)
