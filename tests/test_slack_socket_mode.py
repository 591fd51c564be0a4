"""Socket Mode: the same listeners, driven by envelopes over a WebSocket the service opens."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from approvals.service import ApprovalService
from audit.store import Store
from service.socket_mode import connect
from tests.slack_emulator import SlackEmulator
from tests.slack_harness import (SLACK_USERS, Running, add_people, block_actions_payload, start,
                                 view_submission_payload, wait_until)
from tests.slack_socket_mode import SocketModeServer

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def slack():
    with SlackEmulator() as emulator, SocketModeServer() as server:
        add_people(emulator)
        emulator.socket_mode_url = server.url
        yield emulator, server


def test_approve_and_reject_over_socket_mode(slack, store_url):
    emulator, server = slack
    store, service = start(emulator, store_url)
    service.poster.start()
    handler = connect(service.bolt, emulator.app_token)
    try:
        running = Running(emulator, store, service, "", ApprovalService.from_store(store))
        assert server.connected.wait(10)
        first, second = running.request(), running.request("DELETE FROM deploys WHERE id = 7")
        running.posted_approval(first.id)
        clicked = server.send_interactive(block_actions_payload("countersign_approve", first.id, SLACK_USERS["bob"]))
        wait_until(lambda: server.acked(clicked))
        wait_until(lambda: running.approvals.get(first.id).status == "approved")
        submitted = server.send_interactive(view_submission_payload(second.id, SLACK_USERS["carol"], "wrong id"))
        assert wait_until(lambda: server.acked(submitted)) == {"envelope_id": submitted}
        assert [(v.approver, v.comment) for v in running.approvals.get(second.id).votes] == [("carol", "wrong id")]
    finally:
        handler.close()
        service.poster.stop()
        store.dispose()


def test_serve_socket_mode_process(slack, tmp_path):
    emulator, server = slack
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(store_url, create=True)
    env = {**os.environ, "SLACK_BOT_TOKEN": emulator.token, "SLACK_APP_TOKEN": emulator.app_token,
           "COUNTERSIGN_SLACK_API_URL": emulator.base_url, "COUNTERSIGN_STORE": store_url}
    env.pop("SLACK_SIGNING_SECRET", None)
    config = tmp_path / "countersign.toml"
    config.write_text('[slack]\nchannel = "CAPPROVALS"\n\n[people]\nbob = "bob@example.com"\n')
    process = subprocess.Popen([sys.executable, "-m", "console.cli", "serve", "--config", str(config),
                                "--socket-mode"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        assert server.connected.wait(20)
        approvals = ApprovalService.from_store(store)
        running = Running(emulator, store, None, "", approvals)  # type: ignore[arg-type]
        request = running.request()
        wait_until(lambda: emulator.calls("chat.postMessage"), timeout=20)
        server.send_interactive(block_actions_payload("countersign_approve", request.id, SLACK_USERS["bob"]))
        wait_until(lambda: approvals.get(request.id).status == "approved")
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
        store.dispose()
    assert process.returncode == 0, out
