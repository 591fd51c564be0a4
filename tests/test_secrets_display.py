"""Secrets and display: no password on the command line, every secret URL parameter masked, secret
literals redacted wherever the trail, approvals and snapshots are shown (but kept in the trail and its
export), and control and bidirectional characters shown as escapes wherever a statement is shown.

Each runs the real `countersign` on a SQLite target."""
from __future__ import annotations

import json
import sqlite3

import pytest

from console.repl.history import RedactingHistory
from engines import mask_url
from tests.cli_helpers import cli_env, countersign, spawn_countersign

EVIL_TABLE = "evil\x1b[2K\u202etable"
SETUP = f"""
CREATE TABLE deploys (id INTEGER PRIMARY KEY, site TEXT NOT NULL, status TEXT, token TEXT);
INSERT INTO deploys VALUES (1, 'a', 'ready', NULL), (2, 'a', 'ready', NULL), (3, 'b', 'ready', NULL);
CREATE TABLE "{EVIL_TABLE}" (id INTEGER PRIMARY KEY, note TEXT);
INSERT INTO "{EVIL_TABLE}" VALUES (1, 'x'), (2, 'y');
"""
# What a reviewer must never see raw: erase the line, and reverse the rest of it.
HIDING = "\x1b[2K\u202e"
RAW = ("\x1b", "\u202e", "\r", "\b")
DECEIVING = f"UPDATE deploys SET status = 'ok{HIDING}' WHERE site = 'a'"
SECRET_WRITE = "UPDATE deploys SET token = 'tok-hunter2', status = 'rotated' WHERE site = 'a'"


@pytest.fixture
def target(tmp_path) -> str:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(SETUP)
    return f"sqlite:///{path}"


def shows_escaped(text: str) -> bool:
    return "\\x1b[2K\\u202e" in text and not any(char in text for char in RAW)


def pending_request(tmp_path, target: str, sql: str) -> str:
    """File a request and leave it pending (`--wait 0`); its id."""
    done = countersign("run", target, "-c", sql, "--wait", "0", env=cli_env(tmp_path))
    assert done.returncode == 3, done.stderr
    return done.stderr.split()[3]


def approve_while_waiting(tmp_path, target: str, sql: str) -> str:
    waiting = spawn_countersign("run", target, "-c", sql, "--wait", "60", env=cli_env(tmp_path))
    request_id = waiting.stderr.readline().split()[3]
    approved = countersign("approvals", "approve", request_id, env=cli_env(tmp_path, user="bob"))
    assert approved.returncode == 0, approved.stderr
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    return approved.stdout


def only_session(env) -> str:
    sessions = countersign("audit", "sessions", "--json", env=env).stdout.splitlines()
    assert len(sessions) == 1, sessions
    return json.loads(sessions[0])["id"]


# -- 1. no password on the command line ---------------------------------------------------------------
@pytest.mark.parametrize("url", ["postgresql://app:s3cret@127.0.0.1:1/shop",
                                 "postgresql://app@127.0.0.1:1/shop?sslmode=require&sslpassword=s3cret",
                                 "mongodb://127.0.0.1:1/shop?authSource=admin&password=s3cret"])
@pytest.mark.parametrize("command", [("run", "{url}", "-c", "SELECT 1"), ("shell", "{url}")])
def test_a_target_url_with_a_password_is_refused_with_advice(tmp_path, url, command):
    done = countersign(*(part.format(url=url) for part in command), env=cli_env(tmp_path))
    assert done.returncode == 2
    assert "carries a password" in done.stderr and "url_env" in done.stderr and "$PROD_URL" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_a_target_url_can_come_from_an_environment_variable(tmp_path, target):
    env = cli_env(tmp_path, APP_URL=target)
    done = countersign("run", "$APP_URL", "-c", "SELECT count(*) AS n FROM deploys", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"n": 3}
    # a password is fine there: it is not in the process list (the server here just is not listening)
    env = cli_env(tmp_path, PG_URL="postgresql://app:s3cret@127.0.0.1:1/shop")
    refused = countersign("run", "$PG_URL", "-c", "SELECT 1", env=env)
    assert refused.returncode == 2 and "carries a password" not in refused.stderr
    assert "s3cret" not in refused.stderr
    unset = countersign("run", "$NO_SUCH_URL", "-c", "SELECT 1", env=cli_env(tmp_path))
    assert unset.returncode == 2 and "environment variable NO_SUCH_URL is not set" in unset.stderr


# -- 2. every secret-bearing URL parameter masked -------------------------------------------------------
@pytest.mark.parametrize("url, masked", [
    ("postgresql://app:pw@db/shop?sslpassword=pw&sslmode=require",
     "postgresql://app:***@db/shop?sslpassword=***&sslmode=require"),
    ("postgresql://app@db/shop?sslkey=/keys/app.key&sslcert=/keys/app.crt",
     "postgresql://app@db/shop?sslkey=***&sslcert=/keys/app.crt"),
    ("mysql://app@db/shop?PWD=pw&passwd=pw", "mysql://app@db/shop?PWD=***&passwd=***"),
    ("mongodb://db/shop?authSource=admin&password=pw&authMechanismProperties=AWS_SESSION_TOKEN:t",
     "mongodb://db/shop?authSource=admin&password=***&authMechanismProperties=***"),
    ("postgresql://db/shop?client_secret=s&access_token=t&api_key=k",
     "postgresql://db/shop?client_secret=***&access_token=***&api_key=***"),
    ("postgresql://app@db/shop?application_name=ci", "postgresql://app@db/shop?application_name=ci"),
])
def test_every_secret_url_parameter_is_masked(url, masked):
    assert mask_url(url) == masked


# -- 3. secret literals redacted in every view, kept in the trail -------------------------------------
def test_the_trail_shows_secret_literals_redacted_but_keeps_and_exports_the_real_text(tmp_path, target):
    env = cli_env(tmp_path)
    read = countersign("run", target, "-c", "SELECT id FROM deploys WHERE api_key = 'k-live-123'", env=env)
    assert "api_key" in read.stderr   # no such column: the read fails, and is recorded all the same
    session = only_session(env)
    shown = countersign("audit", "show", session, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "api_key = '<redacted>'" in shown.stdout and "k-live-123" not in shown.stdout
    as_json = countersign("audit", "show", session, "--json", env=env)
    assert "<redacted>" in as_json.stdout and "k-live-123" not in as_json.stdout
    verified = countersign("audit", "verify", env=env)
    assert verified.returncode == 0 and "audit trail intact" in verified.stdout
    exported = countersign("audit", "export", env=env)
    texts = [json.loads(line)["payload"].get("text") for line in exported.stdout.splitlines()]
    assert "SELECT id FROM deploys WHERE api_key = 'k-live-123'" in texts
    shared = countersign("audit", "export", "--redact", env=env)
    assert "k-live-123" not in shared.stdout and "api_key = '<redacted>'" in shared.stdout


def test_configured_secret_patterns_replace_the_defaults_in_views(tmp_path, target):
    config = tmp_path / "countersign.toml"
    config.write_text(f'[history]\nsecret_patterns = ["^pin$"]\n\n[targets.app]\nurl = "{target}"\n'
                      'environment = "development"\n')
    env = cli_env(tmp_path, COUNTERSIGN_CONFIG=str(config))
    countersign("run", "app", "-c", "SELECT 1 WHERE 'a' = 'b' OR pin = '4711' OR token = 'tok-1'", env=env)
    shown = countersign("audit", "show", only_session(env), env=env).stdout
    assert "pin = '<redacted>'" in shown and "token = 'tok-1'" in shown


def test_approvals_show_secret_literals_redacted(tmp_path, target):
    request_id = pending_request(tmp_path, target, SECRET_WRITE)
    bob = cli_env(tmp_path, user="bob")
    listed = countersign("approvals", "list", env=bob)
    shown = countersign("approvals", "show", request_id, env=bob)
    as_json = countersign("approvals", "list", "--json", env=bob)
    for done in (listed, shown, as_json):
        assert done.returncode == 0, done.stderr
        assert "token = '<redacted>'" in done.stdout and "tok-hunter2" not in done.stdout
    assert "status = 'rotated'" in shown.stdout


def test_a_default_history_redacts_without_configured_patterns(tmp_path):
    history = RedactingHistory(tmp_path / "history", ())
    history.append_string("UPDATE users SET password = 'hunter2', api_key = 'k1' WHERE name = 'bob';")
    text = (tmp_path / "history").read_text()
    assert "hunter2" not in text and "'k1'" not in text and "name = 'bob'" in text


# -- 4. control and bidirectional characters shown as escapes -----------------------------------------
def test_approvals_list_and_show_escape_control_and_bidi_characters(tmp_path, target):
    request_id = pending_request(tmp_path, target, DECEIVING)
    bob = cli_env(tmp_path, user="bob")
    listed = countersign("approvals", "list", "--pending", env=bob)
    shown = countersign("approvals", "show", request_id, env=bob)
    for done in (listed, shown):
        assert done.returncode == 0, done.stderr
        assert shows_escaped(done.stdout), done.stdout
    assert "    UPDATE deploys SET status = 'ok\\x1b[2K\\u202e' WHERE site = 'a'" in shown.stdout.splitlines()
    raw = countersign("approvals", "show", request_id, "--json", env=bob)
    assert json.loads(raw.stdout)["statement"] == DECEIVING   # JSON escapes on its own; the text is exact


def test_audit_show_escapes_and_multi_line_statements_stay_readable(tmp_path, target):
    env = cli_env(tmp_path)
    countersign("run", target, "-c", f"SELECT id\n\tFROM deploys WHERE site = '{HIDING}'", env=env)
    shown = countersign("audit", "show", only_session(env), env=env)
    assert shows_escaped(shown.stdout), shown.stdout
    assert "SELECT id FROM deploys WHERE site = '\\x1b[2K\\u202e'" in shown.stdout


def test_the_waiting_message_escapes_a_table_name_that_hides_text(tmp_path, target):
    done = countersign("run", target, "-c", f'DELETE FROM "{EVIL_TABLE}" WHERE id = 1', "--wait", "0",
                       env=cli_env(tmp_path))
    assert done.returncode == 3
    assert shows_escaped(done.stderr), done.stderr


def test_snapshots_show_and_the_approval_echo_escape_and_redact(tmp_path, target):
    sql = f"UPDATE deploys SET status = 'ok{HIDING}', token = 'tok-hunter2' WHERE site = 'a'"
    echoed = approve_while_waiting(tmp_path, target, sql)
    assert shows_escaped(echoed) and "tok-hunter2" not in echoed
    env = cli_env(tmp_path)
    listed = countersign("snapshots", "list", "--json", env=env)
    snapshot = json.loads(listed.stdout.splitlines()[0])["id"]
    shown = countersign("snapshots", "show", snapshot, env=env)
    assert shown.returncode == 0, shown.stderr
    assert shows_escaped(shown.stdout), shown.stdout
    assert "token = '<redacted>'" in shown.stdout and "tok-hunter2" not in shown.stdout


def test_slack_never_sees_a_secret_literal(tmp_path):
    """The approval card, its attached file and the session thread show statements redacted; the trail
    (and so what runs) keeps the real text."""
    import json
    from datetime import datetime, timedelta, timezone

    from approvals.models import new_request
    from audit.store import AuditEvent
    from service.feed import posts_for
    from service.render import approval_message
    from service.slack_settings import SlackConfig
    statement = "UPDATE users SET password = 'hunter2', api_token = 'sk_live_abc' WHERE id = 7"
    config = SlackConfig("CAPPROVALS", "CAUDIT", secret_patterns=(r"sk_live_\w+", "password"))
    request = new_request(id="r1", now=datetime.now(timezone.utc), lifetime=timedelta(minutes=5), requester="alice",
                          target="prod", environment="production", statement=statement, kind="write",
                          reason="writes need approval", required_approvals=1, allowed_approvers=None)
    card = json.dumps(approval_message(request, config).blocks)
    assert "hunter2" not in card and "sk_live_abc" not in card and "<redacted>" in card
    outcome = AuditEvent(5, "e5", "s1", datetime.now(timezone.utc), "outcome",
                         {"text": statement, "kind": "write", "decision": "needs_approval", "status": "ok",
                          "approval_id": "r1", "snapshot_id": None, "rows": 1, "duration_ms": 1.0, "error": None},
                         "0" * 64, "1" * 64, None)
    thread = json.dumps([p.payload for p in posts_for(outcome, config) if p is not None])
    assert "hunter2" not in thread and "sk_live_abc" not in thread and "<redacted>" in thread
