"""Countersign's MySQL lexing against MariaDB's own, character by character.

The classifier only sees what our tokenizer sees; a comment is invisible to it. If the server ends or
starts a comment somewhere else, it runs text the classifier never judged (a `--` followed by a
non-ASCII space is a comment to Python's idea of whitespace and code to MariaDB: a "read" once wrote a
file with INTO OUTFILE that way). The rule under test: whenever Countersign lets a MySQL statement
run as a plain read, the server reads it exactly as Countersign did — here, the same number of result
columns — and every statement where they could disagree needs approval instead.
"""
from __future__ import annotations

import sys

import pytest
import sqlglot

from engines import open_driver
from engines.base import DriverError
from classify.statements import Kind, classify

pytestmark = pytest.mark.mysql

# Every character Python calls whitespace, every ASCII control, a few non-ASCII look-alikes, and the
# plain ASCII characters that make or break a comment (so the agreeing cases are compared too).
CHARS = sorted({chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
               | {chr(c) for c in range(1, 32)} | {"\x7f", "\u200b", "\ufeff", "\u2060", "é", "ß", "\u202e"}
               | set(" x-*/#!1;"))
# Where a comment may start or end, each with the odd character in it.
FORMS = ["--{c}", "-- x{c}", "#{c}", "# x{c}", "/*{c}*/", "{c}--", "{c}#", "-{c}-"]
TAILS = [", 2", "\n, 2", ", 2 -- tail"]


def cases() -> list[str]:
    return [f"SELECT 1 {form.format(c=c)}{tail}" for c in CHARS for form in FORMS for tail in TAILS]


def columns_we_see(text: str) -> int:
    return len(sqlglot.parse_one(text, read="mysql").expressions)


@pytest.fixture(scope="module")
def server(mysql_admin_url):
    driver = open_driver(mysql_admin_url)
    yield driver
    driver.close()


def test_every_read_we_allow_is_read_the_same_way_by_the_server(server):
    """A server error is no disagreement (nothing ran); a result with other columns than ours is."""
    compared, disagreements = 0, []
    for script in cases():
        for statement in classify(script, "mysql"):
            if statement.requires_approval:
                continue
            assert statement.kind is Kind.READ
            try:
                got = len(server.read(statement.text).columns)
            except DriverError:
                continue
            compared += 1
            if got != columns_we_see(statement.text):
                disagreements.append((script, statement.text, got))
    assert compared > 100, "the comparison must cover the plain, agreeing cases too"
    assert not disagreements, disagreements[:10]


def test_the_reported_bypass_needs_approval():
    hidden = "SELECT 1 --\u00a0INTO OUTFILE '/tmp/countersign-pwned'"
    (statement,) = classify(hidden, "mysql")
    assert statement.requires_approval and statement.kind is Kind.UNKNOWN
    assert "outside quoted text" in statement.reason


@pytest.mark.parametrize("space", ["\u00a0", "\u2003", "\u3000", "\x85"])
def test_the_server_runs_what_follows_such_a_comment(server, space):
    """The disagreement is real: MariaDB reads past `--` and a non-ASCII or odd space as code
    (so a second column appears), which is why such text must never pass as a read."""
    text = f"SELECT 1 --{space}, 2"
    (statement,) = classify(text, "mysql")
    assert statement.requires_approval
    try:
        seen = len(server.read(text).columns)
    except DriverError:
        seen = None          # the server refused to tokenise it at all: still not what we saw
    assert seen != 1


def test_non_ascii_inside_quotes_stays_a_read():
    for text in ("SELECT 'café -- not a comment'", "SELECT `naïve` FROM t", "SELECT N'日本'"):
        (statement,) = classify(text, "mysql")
        assert statement.kind is Kind.READ and not statement.requires_approval, (text, statement.reason)
