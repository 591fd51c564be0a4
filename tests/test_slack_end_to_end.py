"""A console's write approved from Slack, end to end: `countersign run` (a real process) asks, the
service posts the request, a signed click approves it, the write runs, and Slack's threads tell it all."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from approvals.service import ApprovalService
from service import slack_settings
from tests.slack_emulator import SlackEmulator
from tests.slack_harness import (AUDIT_CHANNEL, SLACK_USERS, Running, UvicornThread, add_people, block_actions,
                                 start, wait_until)

REPO = Path(__file__).resolve().parent.parent
CONFIG = """
[slack]
channel = "CAPPROVALS"
audit_channel = "CAUDITLOG"

[people]
alice = "alice@example.com"
bob = "bob@example.com"

[targets.deploys-prod]
url = "sqlite:///{db}"
environment = "production"
policy = "prod"

[policies.prod]
approvers = ["bob"]
"""


@pytest.fixture
def target(tmp_path) -> Path:
    db = tmp_path / "deploys.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE deploys (id INTEGER PRIMARY KEY, site_id INTEGER, metadata TEXT)")
        conn.executemany("INSERT INTO deploys (site_id, metadata) VALUES (?, 'x')", [(n % 5,) for n in range(50)])
    return db


def _console(config_file: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "console.cli", "--config", str(config_file), "run", "deploys-prod",
         "-c", "UPDATE deploys SET metadata = NULL WHERE site_id = 3", "--wait", "60", "--reason", "INC-42"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _approve_from_slack(running: Running, console: subprocess.Popen):
    """Bob approves the console's request by clicking in Slack; the console's exit and the request."""
    request = wait_until(lambda: running.approvals.list(pending_only=True), timeout=30)[0]
    running.posted_approval(request.id)
    status, _ = running.post(block_actions("countersign_approve", request.id, SLACK_USERS["bob"]))
    _, err = console.communicate(timeout=60)
    assert (status, console.returncode) == (200, 0), err
    wait_until(lambda: running.service.outbox.waiting() == 0 and len(_audit_posts(running.slack)) >= 3)
    return request


def _audit_posts(slack: SlackEmulator) -> list:
    return [c for c in slack.calls("chat.postMessage") if c.args["channel"] == AUDIT_CHANNEL]


def test_a_console_write_approved_from_slack(tmp_path, target, store_url):
    config_file = tmp_path / "countersign.toml"
    config_file.write_text(CONFIG.format(db=target))
    env = {**os.environ, "COUNTERSIGN_STORE": store_url, "COUNTERSIGN_USER": "alice"}
    with SlackEmulator() as slack:
        add_people(slack)
        store, service = start(slack, store_url, config=slack_settings.load(config_file, env)[1])
        service.poster.start()
        try:
            with UvicornThread(service.asgi) as server:
                running = Running(slack, store, service, f"http://127.0.0.1:{server.port}",
                                  ApprovalService.from_store(store))
                request = _approve_from_slack(running, _console(config_file, env))
                assert running.approvals.get(request.id).status == "used"
        finally:
            service.poster.stop()
            store.dispose()
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM deploys WHERE metadata IS NULL").fetchone()[0] == 10
    _assert_slack_told_it_all(slack)


def _assert_slack_told_it_all(slack: SlackEmulator) -> None:
    posts = slack.calls("chat.postMessage")
    approval_post = next(c for c in posts if c.args["channel"] == "CAPPROVALS" and "thread_ts" not in c.args)
    assert {"type": "mrkdwn", "text": "*Rows*\n10 (counted)"} in approval_post.args["blocks"][1]["fields"]
    outcome = next(c for c in posts if c.args.get("thread_ts") == approval_post.response["ts"])
    assert "ok, 10 row(s)" in outcome.args["text"] and "snapshot" in outcome.args["text"]
    session = _audit_posts(slack)
    assert "opened a session on *deploys-prod*" in session[0].args["text"] and "INC-42" in session[0].args["text"]
    assert {c.args["thread_ts"] for c in session[1:]} == {session[0].response["ts"]}
    assert "Session ended: 1 command(s): 1 ok" in session[-1].args["text"]
    final = slack.message(approval_post.response["channel"], approval_post.response["ts"])
    assert "Approved and run" in str(final["blocks"][-1])
