"""`countersign run` as scripts use it: the real command in a subprocess, its output and exit codes."""
from __future__ import annotations

import json
import sqlite3

import pytest

from tests.cli_helpers import cli_env, countersign, spawn_countersign

SETUP = """
CREATE TABLE deploys (id INTEGER PRIMARY KEY, site TEXT NOT NULL, status TEXT);
INSERT INTO deploys VALUES (1, 'a', 'ready'), (2, 'a', 'ready'), (3, 'b', 'ready'), (4, 'b', 'error');
"""


@pytest.fixture
def target(tmp_path) -> str:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(SETUP)
    return f"sqlite:///{path}"


def statuses(target: str) -> list[str]:
    with sqlite3.connect(target.removeprefix("sqlite:///")) as conn:
        return [r[0] for r in conn.execute("SELECT status FROM deploys ORDER BY id")]


def test_a_read_prints_rows_in_the_asked_format_and_exits_0(tmp_path, target):
    env = cli_env(tmp_path)
    done = countersign("run", target, "-c", "SELECT id, status FROM deploys WHERE site = 'a' ORDER BY id",
                       "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [{"id": 1, "status": "ready"},
                                                                        {"id": 2, "status": "ready"}]
    csv = countersign("run", target, "-c", "SELECT id FROM deploys WHERE id < 3 ORDER BY id", "--format", "csv",
                      env=env)
    assert csv.stdout.splitlines() == ["id", "1", "2"]


def test_a_write_not_approved_in_time_exits_3_and_says_how_to_approve(tmp_path, target):
    done = countersign("run", target, "-c", "UPDATE deploys SET status = 'x' WHERE site = 'a'", "--wait", "0",
                       env=cli_env(tmp_path))
    assert done.returncode == 3
    assert "waiting for approval" in done.stderr and "countersign approvals approve" in done.stderr
    assert statuses(target) == ["ready", "ready", "ready", "error"]


def test_when_requests_go_to_slack_the_console_names_the_channel(tmp_path, target):
    config = tmp_path / "countersign.toml"
    config.write_text(f'[slack]\nchannel = "C0APPROVALS"\n\n[targets.app]\nurl = "{target}"\n'
                      'environment = "production"\n')
    done = countersign("run", "app", "-c", "UPDATE deploys SET status = 'x' WHERE site = 'a'", "--wait", "0",
                       "--config", str(config), env=cli_env(tmp_path))
    assert done.returncode == 3
    assert "in Slack, channel C0APPROVALS" in done.stderr and "countersign approvals approve" not in done.stderr
    assert statuses(target) == ["ready", "ready", "ready", "error"]


def test_a_write_approved_by_another_user_runs_while_run_waits(tmp_path, target):
    sql = "UPDATE deploys SET status = 'archived' WHERE site = 'a'"
    waiting = spawn_countersign("run", target, "-c", sql, "--wait", "60", env=cli_env(tmp_path))
    line = waiting.stderr.readline()            # "waiting for approval <id> (...)"
    assert line.startswith("waiting for approval "), line
    request_id = line.split()[3]
    approved = countersign("approvals", "approve", request_id, env=cli_env(tmp_path, user="bob"))
    assert approved.returncode == 0, approved.stderr
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert "2 rows affected" in out and "snapshot" in err
    assert statuses(target) == ["archived", "archived", "ready", "error"]


def test_a_rejected_write_exits_3(tmp_path, target):
    waiting = spawn_countersign("run", target, "-c", "DELETE FROM deploys WHERE site = 'b'", "--wait", "60",
                                env=cli_env(tmp_path))
    request_id = waiting.stderr.readline().split()[3]
    rejected = countersign("approvals", "reject", request_id, "--reason", "not during the freeze",
                           env=cli_env(tmp_path, user="bob"))
    assert rejected.returncode == 0, rejected.stderr
    _, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 3 and "not during the freeze" in err
    assert len(statuses(target)) == 4


def test_a_blocked_statement_exits_4(tmp_path, target):
    config = tmp_path / "countersign.toml"
    config.write_text(f"""
[targets.app]
url = "{target}"
environment = "staging"
policy = "strict"

[policies.strict]
blocked = ["\\\\bDROP\\\\b"]
""")
    done = countersign("--config", str(config), "run", "app", "-c", "DROP TABLE deploys", env=cli_env(tmp_path))
    assert done.returncode == 4 and "blocked by policy" in done.stderr
    assert len(statuses(target)) == 4


def test_a_database_error_exits_5(tmp_path, target):
    done = countersign("run", target, "-c", "SELECT * FROM no_such_table", env=cli_env(tmp_path))
    assert done.returncode == 5 and "no such table" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["run", "nowhere", "-c", "SELECT 1"], "unknown target 'nowhere'"),
    (["run", "sqlite:///x.db"], "one of the arguments -c/--command -f/--file is required"),
    (["run", "demo", "-c", "   "], "no SQL statement given"),
    (["run", "demo", "-f", "/no/such/file.sql"], "cannot read /no/such/file.sql"),
])
def test_usage_errors_exit_2_with_a_clear_message(tmp_path, args, message):
    done = countersign(*args, env=cli_env(tmp_path))
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_the_session_and_every_statement_are_in_the_audit_trail(tmp_path, target):
    env = cli_env(tmp_path)
    countersign("run", target, "-c", "SELECT count(*) FROM deploys; SELECT 1 FROM missing", "--reason", "INC-7",
                env=env)
    sessions = [json.loads(line) for line in countersign("audit", "sessions", "--json", env=env).stdout.splitlines()]
    assert len(sessions) == 1 and sessions[0]["reason"] == "INC-7" and sessions[0]["commands"] == 2
    shown = json.loads(countersign("audit", "show", sessions[0]["id"], "--json", env=env).stdout)
    outcomes = [e["payload"] for e in shown["events"] if e["type"] == "outcome"]
    assert [o["status"] for o in outcomes] == ["ok", "failed"] and "missing" in outcomes[1]["error"]
    assert countersign("audit", "verify", env=env).returncode == 0


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
def test_a_blocked_pattern_sees_through_comments_whitespace_and_case(tmp_path, request, dialect):
    """`\\bDROP\\s+TABLE\\b` blocks the statement however it is spelled, on each SQL server."""
    url = request.getfixturevalue({"postgres": "pg_url", "mysql": "mysql_url", "sqlite": "sqlite_url"}[dialect])
    config = tmp_path / "countersign.toml"
    config.write_text('[targets.app]\nurl_env = "APP_URL"\npolicy = "strict"\n\n'
                      '[policies.strict]\nblocked = ["\\\\bDROP\\\\s+TABLE\\\\b"]\n')
    env = cli_env(tmp_path, APP_URL=url)
    for sql in ("DROP/**/TABLE victim", "drop\n  table victim", "DROP -- x\nTABLE victim"):
        done = countersign("--config", str(config), "run", "app", "-c", sql, "--wait", "0", env=env)
        assert done.returncode == 4 and "blocked by policy 'strict'" in done.stderr, (sql, done.stderr)


def pending_requests(env: dict) -> list[str]:
    listed = countersign("approvals", "list", "--pending", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.splitlines()


@pytest.mark.parametrize("dialect, said", [
    ("postgres", 'syntax error at or near "SELEC"'),
    ("mysql", "Invalid expression / Unexpected token. Line 1, Col: 7."),
    ("sqlite", "Invalid expression / Unexpected token. Line 1, Col: 7."),
])
def test_a_statement_that_does_not_parse_is_refused_before_any_request(tmp_path, request, dialect, said):
    url = request.getfixturevalue({"postgres": "pg_url", "mysql": "mysql_url", "sqlite": "sqlite_url"}[dialect])
    env = cli_env(tmp_path, APP_URL=url)
    config = tmp_path / "countersign.toml"
    config.write_text('[targets.app]\nurl_env = "APP_URL"\n')
    done = countersign("--config", str(config), "run", "app", "-c", "SELECT 1; SELEC 1", "--wait", "0", env=env)
    assert done.returncode == 2, done.stderr
    assert f"statement 2 does not parse as {dialect}: {said}" in done.stderr
    assert "--request-anyway" in done.stderr and "Traceback" not in done.stderr and done.stdout == ""
    assert pending_requests(env) == []


def test_request_anyway_files_the_unparsed_statement(tmp_path, target):
    env = cli_env(tmp_path)
    done = countersign("run", target, "-c", "SELEC 1", "--wait", "0", "--request-anyway", env=env)
    assert done.returncode == 3 and "waiting for approval" in done.stderr, done.stderr
    assert len(pending_requests(env)) == 1


def test_an_unknown_statement_postgres_can_parse_still_goes_for_approval(tmp_path, pg_url):
    """sqlglot does not know CALL's whole grammar; PostgreSQL's own parser decides what parses."""
    env = cli_env(tmp_path)
    done = countersign("run", pg_url, "-c", "CALL no_such_procedure()", "--wait", "0", env=env)
    assert done.returncode == 3 and "waiting for approval" in done.stderr, done.stderr


def test_a_mongosh_syntax_error_is_refused_with_its_line_and_column(tmp_path, mongo_server_url, mongo_db):
    from tests import servers
    env = cli_env(tmp_path)
    url = servers.with_database(mongo_server_url, mongo_db.name)
    done = countersign("run", url, "-c", "db.deploys.updateMany({a: 1 b: 2}, {$set: {c: 3}})", "--wait", "0", env=env)
    assert done.returncode == 2, done.stderr
    assert "does not parse as mongodb: syntax error" in done.stderr and "(line 1, column" in done.stderr
    assert pending_requests(env) == []
