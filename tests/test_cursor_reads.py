"""Cursors and plan-only EXPLAIN as reads, tried on a real PostgreSQL the way an insider would.

The classifier lets FETCH / MOVE / CLOSE pass on their own, although a FETCH runs more of its cursor's
query. That holds because of how reads run: each one is its own READ ONLY transaction (the driver's
read()), so a cursor without HOLD is gone before the next statement, and one WITH HOLD ran its whole
query when the transaction that declared it committed. Here a function that leaves a mark (a session
setting, which READ ONLY does not stop) shows where a cursor's code runs: never at FETCH.
"""
from __future__ import annotations

from contextlib import closing

import psycopg
import pytest

from classify.statements import classify
from engines import open_driver
from engines.base import DriverError

pytestmark = pytest.mark.postgres

MARKING_FUNCTION = """
CREATE FUNCTION leave_mark(i int) RETURNS int LANGUAGE plpgsql {volatility} AS $$
BEGIN
    PERFORM set_config('countersign.marks', coalesce(current_setting('countersign.marks', true), '') || 'x', false);
    RETURN i;
END $$
"""


@pytest.fixture
def driver(pg_url):
    with closing(psycopg.connect(pg_url, autocommit=True)) as conn:
        conn.execute(MARKING_FUNCTION.format(volatility="VOLATILE"))
        conn.execute(MARKING_FUNCTION.format(volatility="IMMUTABLE").replace("leave_mark", "fold_mark"))
        conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 3) g")
    opened = open_driver(pg_url)
    yield opened
    opened.close()


def marks(driver) -> str:
    return driver.read("SELECT coalesce(current_setting('countersign.marks', true), '')").rows[0][0]


def test_a_cursor_over_user_code_needs_approval_and_its_fetch_runs_none_of_it(driver):
    declare = "DECLARE c CURSOR WITH HOLD FOR SELECT leave_mark(id) FROM t"
    (statement,) = classify(declare, "postgres")
    assert statement.requires_approval and statement.kind == "unknown", statement.reason
    driver.read(declare)                        # as if approved: the query runs when its transaction commits
    assert marks(driver) == "xxx"
    (fetch,) = classify("FETCH ALL FROM c", "postgres")
    assert not fetch.requires_approval
    assert len(driver.read(fetch.text).rows) == 3
    assert marks(driver) == "xxx", "FETCH ran the cursor's code again"
    driver.read("CLOSE c")


def test_a_cursor_without_hold_is_gone_before_the_next_read(driver):
    driver.read("DECLARE c CURSOR FOR SELECT leave_mark(id) FROM t")
    with pytest.raises(DriverError, match="does not exist"):
        driver.read("FETCH ALL FROM c")
    assert marks(driver) == "", "a cursor nobody fetched from ran its query"


def test_a_cursor_over_a_read_passes_and_fetches(driver):
    text = "DECLARE c SCROLL CURSOR WITH HOLD FOR SELECT id, lower('X') FROM t ORDER BY id"
    (declare,) = classify(text, "postgres")
    assert not declare.requires_approval and declare.tables == ("t",)
    driver.read(declare.text)
    assert list(driver.read("FETCH 2 FROM c").rows) == [(1, "x"), (2, "x")]
    driver.read("MOVE ABSOLUTE 0 IN c")
    assert list(driver.read("FETCH NEXT FROM c").rows) == [(1, "x")]
    driver.read("CLOSE ALL")
    with pytest.raises(DriverError, match="does not exist"):
        driver.read("FETCH NEXT FROM c")


def test_explain_without_analyze_of_a_write_changes_nothing(driver):
    for text in ("EXPLAIN (COSTS OFF) DELETE FROM t WHERE id > 0", "EXPLAIN UPDATE t SET id = id + 1",
                 "EXPLAIN INSERT INTO t SELECT g FROM generate_series(1, 5) g", "EXPLAIN SELECT * FROM t FOR UPDATE"):
        (statement,) = classify(text, "postgres")
        assert not statement.requires_approval, statement.reason
        driver.read(text)
    assert list(driver.read("SELECT count(*), sum(id) FROM t").rows) == [(3, 6)]


def test_planning_runs_immutable_user_code_so_explain_of_it_needs_approval(driver):
    """Why EXPLAIN's calls are checked like a read's: the planner folds an IMMUTABLE call with constant
    arguments, so EXPLAIN alone runs it (and anyone may mark any function IMMUTABLE)."""
    text = "EXPLAIN DELETE FROM t WHERE id = fold_mark(1)"
    (statement,) = classify(text, "postgres")
    assert statement.requires_approval and "fold_mark" in statement.reason
    driver.read(text)
    assert marks(driver) == "x"
