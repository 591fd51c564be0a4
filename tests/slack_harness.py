"""What the Slack tests share: signed requests with Slack's documented payloads, a running service
(Bolt app under uvicorn on 127.0.0.1, the poster thread, the Slack emulator), and bounded waits."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

import uvicorn
from slack_sdk import WebClient

from approvals.service import ApprovalService
from audit.store import Store
from service import wiring
from service.slack_settings import SlackConfig
from tests.slack_emulator import TEAM_ID, SlackEmulator

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL, AUDIT_CHANNEL = "CAPPROVALS", "CAUDITLOG"
PEOPLE = {"alice": "alice@example.com", "bob": "bob@example.com", "carol": "carol@example.com",
          "dave": "dave@example.com"}
SLACK_USERS = {"alice": "UALICE", "bob": "UBOB", "carol": "UCAROL", "dave": "UDAVE"}


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll `predicate` until it returns something truthy (returned) or `timeout` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


# -- Slack's requests -------------------------------------------------------------------------------
def signed_headers(body: str, secret: str = SECRET, ts: int | None = None) -> dict:
    """Slack's signature: v0= + HMAC-SHA256(secret, f"v0:{ts}:{body}")."""
    ts = int(time.time()) if ts is None else ts
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": f"v0={digest}"}


def block_actions(action_id: str, request_id: str, user: str, **where) -> str:
    """A block_actions interaction payload, form-encoded as Slack sends it over HTTP."""
    return urlencode({"payload": json.dumps(block_actions_payload(action_id, request_id, user, **where))})


def block_actions_payload(action_id: str, request_id: str, user: str, *, message_ts: str = "1700000000.000100",
                          channel: str = CHANNEL) -> dict:
    """Slack's documented block_actions payload for one button click."""
    return {
        "type": "block_actions", "api_app_id": "A0COUNTER", "token": "legacy-verification-token",
        "team": {"id": TEAM_ID, "domain": "countersign-test"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "channel": {"id": channel, "name": "approvals"},
        "message": {"type": "message", "ts": message_ts, "text": "approval", "blocks": []},
        "response_url": "https://hooks.slack.com/actions/T0COUNTER/1/abc",
        "actions": [{"action_id": action_id, "block_id": "countersign_decide", "value": request_id,
                     "type": "button", "text": {"type": "plain_text", "text": "x"},
                     "action_ts": f"{time.time():.6f}"}],
    }


def view_submission(request_id: str, user: str, reason: str | None) -> str:
    """A view_submission payload for the reject modal, form-encoded as Slack sends it over HTTP."""
    return urlencode({"payload": json.dumps(view_submission_payload(request_id, user, reason))})


def view_submission_payload(request_id: str, user: str, reason: str | None) -> dict:
    """Slack's documented view_submission payload for the reject modal."""
    value = {"type": "plain_text_input", "value": reason}
    return {
        "type": "view_submission", "api_app_id": "A0COUNTER", "token": "legacy-verification-token",
        "team": {"id": TEAM_ID, "domain": "countersign-test"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "trigger_id": "13345224609.738474920.8088930838d88f008e1",
        "view": {"id": "V00000001", "team_id": TEAM_ID, "type": "modal", "callback_id": "countersign_reject",
                 "private_metadata": request_id, "blocks": [], "hash": "1.abc",
                 "state": {"values": {"reason_block": {"reason": value}}},
                 "title": {"type": "plain_text", "text": "Reject request"}},
        "response_urls": [],
    }


# -- the service under test ------------------------------------------------------------------------
@dataclass
class Running:
    slack: SlackEmulator
    store: Store
    service: wiring.Service
    url: str
    approvals: ApprovalService

    def post(self, body: str, headers: dict | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"{self.url}/slack/events", data=body.encode(),
                                         headers=headers if headers is not None else signed_headers(body))
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def get(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def request(self, statement: str = "UPDATE deploys SET metadata = NULL WHERE site_id = 3", *,
                requester: str = "alice", approvers=("bob", "carol"), required: int = 1,
                lifetime: timedelta = timedelta(minutes=30), target: str = "deploys-prod"):
        """An approval request as a console makes one."""
        return self.approvals.request(
            requester=requester, target=target, environment="production", statement=statement, kind="write",
            reason="UPDATE of deploys with a WHERE clause", required_approvals=required,
            allowed_approvers=list(approvers) if approvers else None, lifetime=lifetime, estimated_rows=25,
            rows_exact=True)

    def posted_approval(self, request_id: str):
        """Wait until the approval message is in Slack; its (channel, ts)."""
        return wait_until(lambda: self.service.outbox.posted(f"approval:{request_id}"))

    def clicks(self) -> list[dict]:
        return [e.payload for e in self.store.events() if e.type == "slack_click"]


class UvicornThread:
    """uvicorn on a socket bound to a free port on 127.0.0.1, in a thread; started() waits for it."""

    def __init__(self, app) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "UvicornThread":
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=10)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def slack_config(**overrides) -> SlackConfig:
    values = {"channel": CHANNEL, "audit_channel": AUDIT_CHANNEL, "people": dict(PEOPLE)}
    values.update(overrides)
    return SlackConfig(**values)


def add_people(slack: SlackEmulator) -> None:
    for name, user in SLACK_USERS.items():
        slack.add_user(user, PEOPLE[name], name)


def start(slack: SlackEmulator, store_url: str, *, config: SlackConfig | None = None, holder: str | None = None,
          lease: float = 10.0):
    """Open the store and build the service against the emulator (the caller starts what it needs)."""
    store = Store.open(store_url, create=True)
    client = WebClient(token=slack.token, base_url=slack.base_url)
    service = wiring.build(store, client, config or slack_config(), signing_secret=SECRET, holder=holder,
                           lease=lease, poster_interval=0.05)
    return store, service
