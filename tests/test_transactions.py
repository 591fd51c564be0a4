"""BEGIN ... COMMIT in a script: ONE approval request for the whole block, ONE transaction on the real
server (each write with its snapshot and the row guard), all of it or nothing; ROLLBACK drops it."""
from __future__ import annotations

import pytest

from engines import open_driver
from tests.cli_helpers import cli_env, countersign, spawn_countersign

ROWS = [(1, "a", "ready"), (2, "a", "ready"), (3, "b", "ready"), (4, "b", "error")]
FIX = """BEGIN;
UPDATE deploys SET status = 'archived' WHERE site = 'a';
SELECT count(*) FROM deploys WHERE status = 'archived';
DELETE FROM deploys WHERE status = 'error';
COMMIT;
"""


@pytest.fixture(params=["postgres", "mysql", "sqlite"])
def target(request) -> str:
    url = request.getfixturevalue({"postgres": "pg_url", "mysql": "mysql_url", "sqlite": "sqlite_url"}[request.param])
    driver = open_driver(url)
    with driver.transaction(read_only=False) as tx:
        tx.execute("CREATE TABLE deploys (id INTEGER PRIMARY KEY, site VARCHAR(10) NOT NULL, status VARCHAR(20))")
        tx.execute("INSERT INTO deploys VALUES " + ", ".join(f"({i}, '{s}', '{st}')" for i, s, st in ROWS))
    driver.close()
    return url


def rows(url: str) -> list[tuple]:
    driver = open_driver(url)
    try:
        return sorted(tuple(r) for r in driver.read("SELECT id, site, status FROM deploys").rows)
    finally:
        driver.close()


def submit(tmp_path, url: str, script: str):
    path = tmp_path / "fix.sql"
    path.write_text(script)
    waiting = spawn_countersign("run", url, "-f", str(path), "--wait", "60", env=cli_env(tmp_path))
    line = waiting.stderr.readline()
    assert line.startswith("waiting for approval "), line
    return waiting, line.split()[3]


def test_a_block_is_one_request_and_one_transaction(tmp_path, target):
    waiting, request_id = submit(tmp_path, target, FIX)
    shown = countersign("approvals", "show", request_id, env=cli_env(tmp_path, user="bob"))
    assert "UPDATE deploys" in shown.stdout and "DELETE FROM deploys" in shown.stdout    # the whole block
    assert rows(target) == ROWS                                                          # nothing ran yet
    approved = countersign("approvals", "approve", request_id, env=cli_env(tmp_path, user="bob"))
    assert approved.returncode == 0, approved.stderr
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert rows(target) == [(1, "a", "archived"), (2, "a", "archived"), (3, "b", "ready")]
    assert "2" in out                     # the read inside the block saw the block's own update
    assert "waiting for approval" not in err           # no second request after the first


def test_a_failing_statement_rolls_the_whole_block_back(tmp_path, target):
    broken = FIX.replace("DELETE FROM deploys WHERE status = 'error'", "INSERT INTO deploys VALUES (1, 'z', 'dup')")
    waiting, request_id = submit(tmp_path, target, broken)
    countersign("approvals", "approve", request_id, env=cli_env(tmp_path, user="bob"))
    _, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 5, err
    assert rows(target) == ROWS                                                          # the UPDATE too


def test_rollback_drops_the_block_and_an_unclosed_block_runs_nothing(tmp_path, target):
    dropped = countersign("run", target, "-c", "BEGIN; DELETE FROM deploys; ROLLBACK; SELECT 1",
                          env=cli_env(tmp_path))
    assert dropped.returncode == 0, dropped.stderr
    assert "dropped; nothing ran" in dropped.stderr
    unclosed = countersign("run", target, "-c", "BEGIN; DELETE FROM deploys", env=cli_env(tmp_path))
    assert unclosed.returncode == 2 and "without COMMIT" in unclosed.stderr
    assert rows(target) == ROWS
    pending = countersign("approvals", "list", "--pending", "--json", env=cli_env(tmp_path, user="bob"))
    assert pending.stdout.strip() == ""                                                  # nothing filed
