"""Renderer output compared line by line."""
from datetime import datetime
from decimal import Decimal

from engines.base import ResultSet
from console.repl.history import redact
from console.render import render

RESULT = ResultSet(("id", "name", "price"), ((1, "apple", Decimal("1.50")), (10, None, Decimal("12.00"))), 2)


def test_table():
    assert render(RESULT) == [
        " id | name  | price",
        "----+-------+-------",
        "  1 | apple |  1.50",
        " 10 | NULL  | 12.00",
        "(2 rows)",
    ]


def test_truncated_footer_and_affected_rows():
    assert render(ResultSet(("a",), ((1,),), 1, truncated=True))[-1] == "(1 row) (only the first 1 shown)"
    assert render(ResultSet((), (), 3)) == ["OK, 3 rows affected"]


def test_expanded():
    assert render(RESULT, "expanded")[:4] == ["-[ RECORD 1 ]", "id    | 1", "name  | apple", "price | 1.50"]


def test_csv_and_json():
    assert render(RESULT, "csv") == ["id,name,price", "1,apple,1.50", "10,,12.00"]
    when = ResultSet(("t",), ((datetime(2026, 1, 2, 3, 4, 5),),), 1)
    assert render(when, "json") == ['{"t": "2026-01-02 03:04:05"}']


def test_history_redacts_secret_literals():
    patterns = ("password", r"sk_live_\w+")
    assert redact("UPDATE u SET password = 'x' WHERE name = 'bob'", patterns) == \
        "UPDATE u SET password = '<redacted>' WHERE name = 'bob'"
    assert redact("INSERT INTO k VALUES ('sk_live_123')", patterns) == "INSERT INTO k VALUES ('<redacted>')"
    assert redact("SELECT 'x'", ()) == "SELECT 'x'"
