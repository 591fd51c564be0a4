"""`countersign snapshots` as people use it: the real command in subprocesses, two users, a real store."""
from __future__ import annotations

import json
import sqlite3

import pytest

from tests.cli_helpers import cli_env, countersign, spawn_countersign

SETUP = """
CREATE TABLE deploys (id INTEGER PRIMARY KEY, site TEXT NOT NULL, metadata TEXT);
INSERT INTO deploys VALUES (1, 'a', '{"v": 1}'), (2, 'a', '{"v": 2}'), (3, 'b', '{"v": 3}'), (4, 'a', '{"v": 4}');
"""
WRITE = "UPDATE deploys SET metadata = NULL WHERE site = 'a'"


@pytest.fixture
def target(tmp_path) -> str:
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.executescript(SETUP)
    return f"sqlite:///{tmp_path / 'app.db'}"


def rows(target: str) -> list[tuple]:
    with sqlite3.connect(target.removeprefix("sqlite:///")) as conn:
        return conn.execute("SELECT id, site, metadata FROM deploys ORDER BY id").fetchall()


def approve_while_waiting(tmp_path, *args: str):
    """Start a command that waits for approval, approve it as bob, return (exit code, stdout, stderr)."""
    waiting = spawn_countersign(*args, "--wait", "60", env=cli_env(tmp_path))
    request_id = None
    lines = []
    while request_id is None:
        line = waiting.stderr.readline()
        assert line, f"no approval was requested: {''.join(lines)}"
        lines.append(line)
        if line.startswith("waiting for approval "):
            request_id = line.split()[3]
    done = countersign("approvals", "approve", request_id, env=cli_env(tmp_path, user="bob"))
    assert done.returncode == 0, done.stderr
    out, err = waiting.communicate(timeout=60)
    return waiting.returncode, out, "".join(lines) + err


def snapshots(tmp_path) -> list[dict]:
    listed = countersign("snapshots", "list", "--json", env=cli_env(tmp_path))
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_list_show_and_restore_a_snapshot(tmp_path, target):
    before = rows(target)
    code, _, err = approve_while_waiting(tmp_path, "run", target, "-c", WRITE)
    assert code == 0 and "snapshot" in err
    [snap] = snapshots(tmp_path)
    assert (snap["table"], snap["operation"], snap["row_count"], snap["status"]) == ("deploys", "update", 3, "complete")

    shown = countersign("snapshots", "show", snap["id"][:8], env=cli_env(tmp_path))
    assert shown.returncode == 0, shown.stderr
    assert WRITE in shown.stdout and '{"v": 4}' in shown.stdout           # the statement and the old rows
    assert "restore would run" in shown.stdout and "reverts the 3 updated rows" in shown.stdout

    code, out, err = approve_while_waiting(tmp_path, "snapshots", "restore", snap["id"])
    assert code == 0, err
    assert f"restore of snapshot {snap['id']}" in json.loads(countersign(
        "approvals", "list", "--json", env=cli_env(tmp_path)).stdout.splitlines()[-1])["reason"]
    assert rows(target) == before
    statuses = {s["id"]: s["status"] for s in snapshots(tmp_path)}
    assert statuses[snap["id"]] == "restored" and len(statuses) == 2       # the restore took its own snapshot
    again = countersign("snapshots", "restore", snap["id"], env=cli_env(tmp_path))
    assert again.returncode == 2 and "only a complete snapshot can be restored" in again.stderr
    assert countersign("audit", "verify", env=cli_env(tmp_path)).returncode == 0


def test_a_restore_is_a_write_the_requester_cannot_approve(tmp_path, target):
    approve_while_waiting(tmp_path, "run", target, "-c", WRITE)
    [snap] = snapshots(tmp_path)
    waiting = countersign("snapshots", "restore", snap["id"], "--wait", "0", env=cli_env(tmp_path))
    assert waiting.returncode == 3 and "waiting for approval" in waiting.stderr
    request_id = waiting.stderr.split("waiting for approval ")[1].split()[0]
    own = countersign("approvals", "approve", request_id, env=cli_env(tmp_path))
    assert own.returncode == 2 and "cannot vote on their own request" in own.stderr
    assert [r[2] for r in rows(target)] == [None, None, '{"v": 3}', None]


def test_prune_honours_the_retention_and_keeps_the_record(tmp_path, target):
    approve_while_waiting(tmp_path, "run", target, "-c", WRITE)
    [snap] = snapshots(tmp_path)
    kept = countersign("snapshots", "prune", env=cli_env(tmp_path))       # default retention: 30 days
    assert kept.returncode == 0 and kept.stdout == ""
    dry = countersign("snapshots", "prune", "--older-than", "0s", "--dry-run", env=cli_env(tmp_path))
    assert f"would prune {snap['id']}" in dry.stdout and snapshots(tmp_path)[0]["status"] == "complete"
    pruned = countersign("snapshots", "prune", "--older-than", "0s", env=cli_env(tmp_path))
    assert pruned.returncode == 0 and f"pruned {snap['id']}" in pruned.stdout
    assert snapshots(tmp_path)[0]["status"] == "pruned"
    with sqlite3.connect(target.removeprefix("sqlite:///")) as conn:
        left = conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'cs_snapshot_%' "
                            "AND name <> 'cs_snapshot_commits'").fetchone()[0]
    assert left == 0
    refused = countersign("snapshots", "restore", snap["id"], env=cli_env(tmp_path))
    assert refused.returncode == 2 and "pruned" in refused.stderr
    events = [json.loads(e) for e in countersign("audit", "export", env=cli_env(tmp_path)).stdout.splitlines()]
    [prune] = [e for e in events if e["payload"].get("event") == "pruned"]
    starts = {e["session_id"]: e["payload"] for e in events if e["type"] == "session_start"}
    assert starts[prune["session_id"]]["user"] == "alice"      # who pruned it is on record


def test_unknown_snapshot_and_bad_duration_exit_2(tmp_path):
    unknown = countersign("snapshots", "show", "nope", env=cli_env(tmp_path))
    assert unknown.returncode == 2 and "no snapshot 'nope'" in unknown.stderr
    bad = countersign("snapshots", "prune", "--older-than", "soon", env=cli_env(tmp_path))
    assert bad.returncode == 2 and "is not a duration" in bad.stderr
