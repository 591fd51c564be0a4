"""Renderer output compared line by line: tables, honest footers, psql's error caret, mongosh documents."""
import doctest
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from bson import Decimal128, Int64, ObjectId

from engines.base import ResultSet
from console import render
from console.repl.history import redact
from console.render import error_lines, render as render_result

RESULT = ResultSet(("id", "name", "price"), ((1, "apple", Decimal("1.50")), (10, None, Decimal("12.00"))), 2)


def test_table():
    assert render_result(RESULT) == [
        " id | name  | price",
        "----+-------+-------",
        "  1 | apple |  1.50",
        " 10 | NULL  | 12.00",
        "(2 rows)",
    ]


def test_a_cut_result_says_how_many_rows_there_were_or_that_more_were_not_fetched():
    shown = tuple((i,) for i in range(1000))
    assert render_result(ResultSet(("a",), shown, 200000, truncated=True))[-1] == "(showing 1,000 of 200,000 rows)"
    assert render_result(ResultSet(("a",), shown, 1000, truncated=True))[-1] == \
        "(showing the first 1,000 rows; more were not fetched)"
    assert render_result(ResultSet(("a",), shown, 1000))[-1] == "(1000 rows)"   # not cut: as psql says it


def test_an_empty_read_says_0_rows_and_a_statement_without_rows_says_its_tag():
    assert render_result(ResultSet(("a",), (), 0), kind="read") == [" a", "---", "(0 rows)"]
    assert render_result(ResultSet((), (), 0), kind="read") == ["(0 rows)"]   # a read with no columns
    assert render_result(ResultSet((), (), -1), kind="session", text="SET search_path = app") == ["SET"]
    assert render_result(ResultSet((), (), 0), kind="session", text="set @a = 1") == ["SET"]
    assert render_result(ResultSet((), (), -1), kind="ddl", text="CREATE UNIQUE INDEX i ON t (a)") == ["CREATE INDEX"]
    assert render_result(ResultSet((), (), -1)) == ["OK"]   # never "-1 rows affected"
    assert render_result(ResultSet((), (), 3), kind="write") == ["OK, 3 rows affected"]
    assert render_result(ResultSet((), (), 1), kind="write") == ["OK, 1 row affected"]


def test_expanded_and_auto_width():
    assert render_result(RESULT, "expanded")[:4] == ["-[ RECORD 1 ]", "id    | 1", "name  | apple", "price | 1.50"]
    lines = render_result(RESULT)
    assert not render.wider_than(lines, 80) and render.wider_than(lines, 10)


def test_csv_and_json():
    assert render_result(RESULT, "csv") == ["id,name,price", "1,apple,1.50", "10,,12.00"]
    when = ResultSet(("t",), ((datetime(2026, 1, 2, 3, 4, 5),),), 1)
    assert render_result(when, "json") == ['{"t": "2026-01-02 03:04:05"}']


def test_a_value_cannot_rewrite_the_terminal():
    """A row (or a table name in \\dt) holding escape codes is shown escaped, never raw."""
    lines = render_result(ResultSet(("name\x1b[2J",), (("evil\x1b[2K\rrow",),), 1))
    assert "\x1b" not in "".join(lines) and "\r" not in "".join(lines)
    assert "evil\\x1b[2K\\rrow" in lines[2]


def test_postgres_errors_are_shown_as_psql_shows_them():
    text = "SELECT id,\n       sites.nme\nFROM sites"
    assert error_lines("ERROR", 'column sites.nme does not exist at character 19 (SQLSTATE 42703); hint: '
                       'Perhaps you meant to reference the column "sites.name".', text) == [
        "ERROR: column sites.nme does not exist (SQLSTATE 42703)",
        "LINE 2:        sites.nme",
        "               ^",
        'HINT: Perhaps you meant to reference the column "sites.name".',
    ]


def test_a_mysql_error_keeps_its_own_form():
    assert error_lines("ERROR", "ERROR 1146 (42S02): Table 'shop.x' doesn't exist") == [
        "ERROR 1146 (42S02): Table 'shop.x' doesn't exist"]


def test_the_caret_stays_under_the_position_on_a_long_line_and_after_escaped_characters():
    columns = ", ".join(f"c{i}" for i in range(100))
    long = f"SELECT {columns}, bad, {columns} FROM t"
    line, caret = render.caret_lines(long, long.index("bad"))
    assert line.startswith("LINE 1: ...") and line.endswith("...")
    assert line[caret.index("^"):].startswith("bad")
    line, caret = render.caret_lines("SELECT '\x1b' bad", 11)
    assert line[caret.index("^"):].startswith("bad")


def test_a_position_outside_the_statement_draws_no_caret():
    assert error_lines("ERROR", "boom at character 99", "SELECT 1") == ["ERROR: boom"]


def test_mongodb_documents_are_relaxed_extended_json():
    doc = {"_id": ObjectId("65a000000000000000000001"), "n": Int64(7), "price": Decimal128("1.50"),
           "when": datetime(2024, 1, 2, tzinfo=timezone.utc), "tags": ["a", "b"], "meta": {"x": 1},
           "big": {"k": "v" * 80}}
    assert render.document_lines(render.ejson(doc)) == [
        "{",
        '  "_id": {"$oid": "65a000000000000000000001"},',
        '  "n": 7,',
        '  "price": {"$numberDecimal": "1.50"},',
        '  "when": {"$date": "2024-01-02T00:00:00Z"},',
        '  "tags": ["a", "b"],',
        '  "meta": {"x": 1},',
        '  "big": {',
        '    "k": "' + "v" * 80 + '"',
        "  }",
        "}",
    ]


def test_history_redacts_secret_literals():
    patterns = ("password", r"sk_live_\w+")
    assert redact("UPDATE u SET password = 'x' WHERE name = 'bob'", patterns) == \
        "UPDATE u SET password = '<redacted>' WHERE name = 'bob'"
    assert redact("INSERT INTO k VALUES ('sk_live_123')", patterns) == "INSERT INTO k VALUES ('<redacted>')"
    assert redact("SELECT 'x'", ()) == "SELECT 'x'"


@pytest.mark.parametrize("module", ["console.render", "console.repl.documents", "console.repl.describe",
                                    "console.repl.syntax", "console.repl.catalog_sql", "console.repl.history"])
def test_doctests(module):
    import importlib
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted >= 1
