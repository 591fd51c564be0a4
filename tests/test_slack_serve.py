"""`countersign serve` as real processes: configuration, /readyz, a click end to end, and two
processes on one PostgreSQL store posting each request once."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from approvals.service import ApprovalService
from audit.store import Store
from tests.slack_emulator import SlackEmulator
from tests.slack_harness import (SECRET, SLACK_USERS, Running, UvicornThread, add_people, block_actions, start,
                                 wait_until)

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
slack_channel = "CPRODAPPROVALS"
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Serve:
    """One `countersign serve` process."""

    def __init__(self, tmp_path: Path, slack: SlackEmulator, store_url: str, *, token: str | None = None) -> None:
        config = tmp_path / "countersign.toml"
        config.write_text(CONFIG.format(db=tmp_path / "target.db"))
        self.port = _free_port()
        env = {**os.environ, "SLACK_BOT_TOKEN": token or slack.token, "SLACK_SIGNING_SECRET": SECRET,
               "COUNTERSIGN_SLACK_API_URL": slack.base_url, "COUNTERSIGN_STORE": store_url}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "serve", "--config", str(config), "--port", str(self.port)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        import urllib.request
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        return self.process.returncode, out


@pytest.fixture
def slack():
    with SlackEmulator() as emulator:
        add_people(emulator)
        yield emulator


def _request(approvals: ApprovalService, n: int = 1):
    return approvals.request(requester="alice", target="deploys-prod", environment="production",
                             statement=f"DELETE FROM deploys WHERE id = {n}", kind="write", reason="a write",
                             required_approvals=1, allowed_approvers=["bob"], lifetime=timedelta(minutes=30))


def test_serve_posts_to_the_policy_channel_and_takes_a_click(tmp_path, slack):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(store_url, create=True)
    serve = Serve(tmp_path, slack, store_url)
    try:
        wait_until(serve.healthy, timeout=20)
        approvals = ApprovalService.from_store(store)
        request = _request(approvals)
        posted = wait_until(lambda: slack.calls("chat.postMessage"))[0]
        assert posted.args["channel"] == "CPRODAPPROVALS"           # the policy's slack_channel
        running = Running(slack, store, None, serve.url, approvals)  # type: ignore[arg-type]
        assert running.post(block_actions("countersign_approve", request.id, SLACK_USERS["bob"]))[0] == 200
        wait_until(lambda: approvals.get(request.id).status == "approved")
        wait_until(lambda: slack.calls("chat.update"))
    finally:
        code, out = serve.stop()
        store.dispose()
    assert code == 0, out


def test_serve_refuses_a_token_slack_rejects(tmp_path, slack):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    Store.open(store_url, create=True).dispose()
    serve = Serve(tmp_path, slack, store_url, token="xoxb-wrong")
    serve.process.wait(timeout=30)
    code, out = serve.stop()
    assert code == 2 and "refuses SLACK_BOT_TOKEN (invalid_auth)" in out


def test_two_serve_processes_on_one_postgres_store_post_each_request_once(tmp_path, slack, pg_url):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    store = Store.open(pg_url, create=True)
    serves = [Serve(tmp_path / "a", slack, pg_url), Serve(tmp_path / "b", slack, pg_url)]
    try:
        wait_until(lambda: all(s.healthy() for s in serves), timeout=20)
        approvals = ApprovalService.from_store(store)
        ids = [_request(approvals, n).id for n in range(20)]
        posts = lambda: [c.args["blocks"][-1]["elements"][0]["value"] for c in slack.calls("chat.postMessage")]
        wait_until(lambda: len(posts()) >= 20, timeout=20)
        wait_until(lambda: _waiting(store) == 0)
        assert posts() == ids                                       # each once, in order
    finally:
        outs = [s.stop() for s in serves]
        store.dispose()
    assert [code for code, _ in outs] == [0, 0], outs


def _waiting(store: Store) -> int:
    from service.outbox import Outbox
    return Outbox(store.engine, store.clock).waiting()


def test_readyz_is_503_while_the_store_is_unreachable_and_healthz_stays_200(slack, pg_url, pg_admin_url):
    store, service = start(slack, pg_url)
    name = pg_url.rsplit("/", 1)[1]
    try:
        with UvicornThread(service.asgi) as server:
            running = Running(slack, store, service, f"http://127.0.0.1:{server.port}", None)  # type: ignore[arg-type]
            assert running.get("/readyz")[0] == 200
            with psycopg.connect(pg_admin_url, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                try:
                    status, body = running.get("/readyz")
                    assert (status, body["ok"]) == (503, False)
                    assert body["reasons"] == ["the store is not reachable (the service log says why)"]
                    assert running.get("/healthz") == (200, {"ok": True})     # alive: no restart for a store outage
                finally:
                    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            assert running.get("/readyz")[0] == 200
    finally:
        store.dispose()


def test_serve_mounts_the_auditor_pages_behind_sign_in(tmp_path, slack):
    """`countersign serve` serves /audit: without a token it sends the browser to sign in, and no page
    shows anything to an anonymous caller."""
    from starlette.testclient import TestClient
    store, service = start(slack, f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with TestClient(service.asgi, base_url="https://testserver") as client:
            answer = client.get("/audit/sessions", follow_redirects=False)
            assert answer.status_code in (302, 303) and "/audit/login" in answer.headers["location"]
            assert "frame-ancestors 'none'" in answer.headers.get("content-security-policy", "")
            assert client.get("/audit/login").status_code == 200
    finally:
        store.dispose()
