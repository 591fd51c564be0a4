"""Running `countersign serve` for operators: /healthz and /readyz, /metrics, JSON logs, and a graceful
stop on SIGTERM of a real process with a vote in flight."""
from __future__ import annotations

import io
import json
import logging
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk import WebClient
from sqlalchemy import text

from approvals.service import ApprovalService
from gate.api import Awaiting
from gate.remote import RemoteGate
from audit.anchors import FileAnchors
from audit.store import Store
from service import health, logs, wiring
from service.health import SHUTTING_DOWN, Drain
from service.outbox import Outbox
from service.tokens import Tokens
from tests.slack_emulator import SlackEmulator
from tests.slack_harness import (SECRET, SLACK_USERS, Running, UvicornThread, add_people, block_actions, slack_config,
                                 wait_until)

BOB, CAROL = SLACK_USERS["bob"], SLACK_USERS["carol"]
LITERAL = "literal-4f1c9e"          # a statement literal: the trail holds it, the logs must not


class HeldSlack(SlackEmulator):
    """The emulator, answering users.info only once `released` is set while `holding` is: a click's
    vote then stays in flight inside the service for as long as the test wants."""

    def __init__(self) -> None:
        super().__init__()
        self.holding, self.held, self.released = threading.Event(), threading.Event(), threading.Event()

    def answer(self, method: str, args: dict, token: str | None):
        if method == "users.info" and self.holding.is_set():
            self.held.set()
            self.released.wait(timeout=60)
        return super().answer(method, args, token)


@pytest.fixture
def slack():
    with HeldSlack() as emulator:
        add_people(emulator)
        try:
            yield emulator
        finally:
            emulator.released.set()


def _build(slack: SlackEmulator, store: Store) -> wiring.Service:
    client = WebClient(token=slack.token, base_url=slack.base_url)
    return wiring.build(store, client, slack_config(), signing_secret=SECRET, poster_interval=0.05)


@pytest.fixture
def ops(tmp_path, slack):
    """The service on a SQLite store with its own audit key and anchor file, under uvicorn (no poster)."""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}", create=True, key_file=tmp_path / "keys" / "audit.key",
                       anchors=FileAnchors(tmp_path / "anchors" / "anchors.jsonl"))
    service = _build(slack, store)
    try:
        with UvicornThread(service.asgi) as server:
            yield Running(slack, store, service, f"http://127.0.0.1:{server.port}", ApprovalService.from_store(store))
    finally:
        store.dispose()


def _request(approvals: ApprovalService, n: int = 1, lifetime: timedelta = timedelta(minutes=30)):
    return approvals.request(requester="alice", target="deploys-prod", environment="production",
                             statement=f"DELETE FROM deploys WHERE note = '{LITERAL}' AND id = {n}", kind="write",
                             reason="a write", required_approvals=1, allowed_approvers=["bob", "carol"],
                             lifetime=lifetime)


def _fetch(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _scrape(running: Running) -> dict[tuple[str, frozenset], float]:
    """/metrics as {(sample name, labels): value}, parsed by prometheus_client's own parser."""
    status, headers, body = _fetch(f"{running.url}/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def _value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


# -- /healthz and /readyz ---------------------------------------------------------------------------
def test_readyz_is_200_with_a_summary_when_everything_answers(ops):
    assert ops.get("/healthz") == (200, {"ok": True})
    assert ops.get("/readyz") == (200, {"ok": True, "store": "sqlite", "outbox_waiting": 0, "poster": None})


def test_readyz_names_a_store_at_an_old_schema(ops):
    with ops.store.engine.begin() as conn:
        (current,) = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        status, body = ops.get("/readyz")
        assert status == 503 and len(body["reasons"]) == 1
        assert "is at schema revision 0001" in body["reasons"][0]
        assert "countersign store upgrade" in body["reasons"][0]
    finally:
        with ops.store.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})
    assert ops.get("/readyz")[0] == 200


def test_readyz_refuses_an_audit_key_that_is_swapped_broken_or_gone(ops):
    """An insider who swaps the key file (to write links they can forge, or to make verify fail later)
    takes the service out of rotation at once, before it writes a single link with that key."""
    _request(ops.approvals)                       # the first event creates the key and keys the trail
    key = ops.store.key_path()
    original = key.read_text()
    assert ops.get("/readyz")[0] == 200
    try:
        for content, says in ((secrets.token_hex(32) + "\n", "is not the key this trail's links were made with"),
                              ("not a key\n", "is not 64 hex digits")):
            key.write_text(content)
            status, body = ops.get("/readyz")
            assert status == 503 and says in " ".join(body["reasons"]), body
        key.unlink()
        status, body = ops.get("/readyz")
        assert status == 503 and "is missing, but this trail's links were made with one" in body["reasons"][0]
    finally:
        key.write_text(original)
    assert ops.get("/readyz")[0] == 200


def test_readyz_names_an_anchor_file_that_cannot_be_written(tmp_path, slack):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the anchors' directory should be\n")
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}", create=True, key_file=tmp_path / "audit.key",
                       anchors=FileAnchors(blocker / "anchors.jsonl"))
    try:
        service = _build(slack, store)
        status, body = health.readiness(health.probe(store, service.outbox, service.drain))
        assert status == 503 and body["reasons"] == [
            f"the anchor file {blocker / 'anchors.jsonl'} cannot be written; set COUNTERSIGN_AUDIT_ANCHOR_FILE "
            "to a writable place"]
    finally:
        store.dispose()


def test_draining_refuses_new_work_and_still_answers_the_operations_routes(ops):
    request = _request(ops.approvals)
    assert ops.service.drain.begin() is True and ops.service.drain.begin() is False
    status, body = ops.get("/readyz")
    assert status == 503 and body["reasons"] == [SHUTTING_DOWN]
    assert ops.get("/healthz") == (200, {"ok": True})            # alive: an orchestrator must not kill it
    assert _scrape(ops)[("countersign_store_up", frozenset())] == 1
    click = block_actions("countersign_approve", request.id, BOB)
    status, body = ops.post(click)
    assert status == 503 and json.loads(body) == {"ok": False, "error": SHUTTING_DOWN}
    assert ops.slack.calls("users.info") == []                    # Bolt never saw it
    assert ops.approvals.get(request.id).status == "pending" and ops.clicks() == []
    assert _value(_scrape(ops), "countersign_http_requests_total", route="/slack/events", method="POST",
                  status="503") == 1
    assert _value(_scrape(ops), "countersign_draining") == 1


def test_a_drain_waits_for_work_admitted_before_it_began():
    drain = Drain()
    assert drain.admit() and drain.begin()
    assert not drain.admit()                      # nothing new once draining
    assert not drain.wait_idle(0.05)
    drain.done()
    assert drain.wait_idle(0.05) and drain.idle()
    # Work an admitted request hands to a thread pool (Bolt finishing a click) counts too.
    release = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        counted = drain.counted(pool)
        future = counted.submit(release.wait, 10)
        assert drain.in_flight == 1 and not drain.wait_idle(0.05)
        release.set()
        assert future.result(timeout=10) is True
        assert drain.wait_idle(10)


# -- /metrics ---------------------------------------------------------------------------------------
def test_metrics_count_requests_by_route_template_never_by_raw_path(ops):
    request = _request(ops.approvals)
    assert ops.post(block_actions("countersign_approve", request.id, BOB))[0] == 200
    sprayed = f"/requests/{uuid.uuid4()}"             # a client spraying paths must not grow the series
    assert _fetch(f"{ops.url}{sprayed}")[0] == 404
    ops.get("/readyz")
    samples = _scrape(ops)
    assert _value(samples, "countersign_http_requests_total", route="/slack/events", method="POST", status="200") == 1
    assert _value(samples, "countersign_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert _value(samples, "countersign_http_requests_total", route="/readyz", method="GET", status="200") == 1
    assert _value(samples, "countersign_http_request_duration_seconds_count", route="/slack/events") == 1
    assert sprayed not in _fetch(f"{ops.url}/metrics")[2].decode()


def test_metrics_read_pending_requests_outbox_depth_and_time_to_decision(ops):
    first, _second = _request(ops.approvals, 1), _request(ops.approvals, 2)
    _request(ops.approvals, 3, lifetime=timedelta(microseconds=1))      # expired: not pending any more
    ops.service.poster.feed()                                            # the requests' posts wait in the outbox
    samples = _scrape(ops)
    assert _value(samples, "countersign_approval_requests_pending") == 2
    waiting = ops.service.outbox.waiting()
    assert waiting >= 3 and _value(samples, "countersign_slack_outbox_depth") == waiting
    assert _value(samples, "countersign_approval_decision_seconds_count", outcome="approved") is None

    assert ops.post(block_actions("countersign_approve", first.id, BOB))[0] == 200
    wait_until(lambda: ops.approvals.get(first.id).status == "approved")
    samples = wait_until(lambda: (s := _scrape(ops)) and
                         _value(s, "countersign_approval_decision_seconds_count", outcome="approved") == 1 and s)
    assert _value(samples, "countersign_approval_requests_pending") == 1
    decided = ops.approvals.get(first.id)
    took = (decided.votes[0].ts - decided.created_at).total_seconds()
    assert _value(samples, "countersign_approval_decision_seconds_sum", outcome="approved") == pytest.approx(took)


def test_each_app_has_its_own_registry(ops):
    other = _build(ops.slack, ops.store)              # a second app in one process: no duplicate series
    with UvicornThread(other.asgi) as server:
        other_url = f"http://127.0.0.1:{server.port}"
        for _ in range(3):
            _fetch(f"{other_url}/healthz")
    assert _value(_scrape(ops), "countersign_http_requests_total", route="/healthz", method="GET",
                  status="200") is None
    assert b'route="/healthz"' in other.metrics.exposition()[0]


def test_metrics_report_a_store_outage_instead_of_failing(slack, pg_url, pg_admin_url):
    store = Store.open(pg_url, create=True)
    service = _build(slack, store)
    name = pg_url.rsplit("/", 1)[1]
    try:
        with UvicornThread(service.asgi) as server:
            running = Running(slack, store, service, f"http://127.0.0.1:{server.port}", None)  # type: ignore[arg-type]
            assert _value(_scrape(running), "countersign_store_up") == 1
            with psycopg.connect(pg_admin_url, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                try:
                    samples = _scrape(running)
                    assert _value(samples, "countersign_store_up") == 0
                    assert _value(samples, "countersign_approval_requests_pending") is None
                finally:
                    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        store.dispose()


# -- logs -------------------------------------------------------------------------------------------
@pytest.fixture
def root_logger():
    """logs.configure owns the root logger; give it back to pytest as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_ts_level_logger_message_and_the_extra_fields(root_logger):
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    logging.getLogger("countersign.serve").info("draining %s", "now", extra={"in_flight": 2})
    line = json.loads(stream.getvalue())
    assert list(line)[:4] == ["ts", "level", "logger", "message"]
    assert (line["level"], line["logger"], line["message"], line["in_flight"]) == (
        "INFO", "countersign.serve", "draining now", 2)
    assert line["ts"].endswith("+00:00")


def test_log_lines_never_show_a_secret_the_process_was_given(root_logger):
    """Whatever logs it (a library's debug line with a header, an exception with a URL in it), a
    token, the signing secret or a database password never reaches the log."""
    token, password = "xoxb-1234-5678-abcdefgh", logs.url_password("postgresql://cs:pw-9d8c7b@store/cs")
    stream = io.StringIO()
    logs.configure("json", secrets=[token, SECRET, password], stream=stream)
    log = logging.getLogger("slack_sdk.web")
    log.warning("Sending a request: headers={'Authorization': 'Bearer %s'}", token)
    log.warning("signature check", extra={"secret": SECRET})
    try:
        raise ConnectionError(f"cannot connect to postgresql://cs:{password}@store/cs")
    except ConnectionError:
        log.exception("store failed")
    out = stream.getvalue()
    assert len(out.splitlines()) == 3 and all(json.loads(line) for line in out.splitlines())
    assert token not in out and SECRET not in out and password not in out
    assert out.count(logs.REDACTED) == 3


def test_text_on_a_terminal_json_otherwise():
    leader, follower = os.openpty()
    try:
        with open(follower, "w", closefd=False) as terminal:
            assert logs.default_format(terminal) == "text"
    finally:
        os.close(leader)
        os.close(follower)
    assert logs.default_format(io.StringIO()) == "json"


# -- a real process, stopped with SIGTERM ------------------------------------------------------------
REPO = Path(__file__).resolve().parent.parent
SERVE_CONFIG = """
[slack]
channel = "CAPPROVALS"
audit_channel = "CAUDITLOG"

[people]
alice = "alice@example.com"
bob = "bob@example.com"
carol = "carol@example.com"

[targets.deploys-prod]
url_env = "OPS_TARGET_URL"
environment = "production"
policy = "prod"

[policies.prod]
approvers = ["bob", "carol"]
"""


class Serve:
    """One `countersign serve --log-format json` process, its output read as it comes (a full pipe
    would block it)."""

    def __init__(self, tmp_path: Path, slack: SlackEmulator, store_url: str, *args: str) -> None:
        config, target = tmp_path / "countersign.toml", tmp_path / "target.db"
        config.write_text(SERVE_CONFIG)
        with sqlite3.connect(target) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS deploys (id INTEGER PRIMARY KEY, note TEXT)")
            conn.execute("INSERT OR REPLACE INTO deploys VALUES (1, 'old')")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SECRET,
               "COUNTERSIGN_SLACK_API_URL": slack.base_url, "COUNTERSIGN_STORE": store_url,
               "OPS_TARGET_URL": f"sqlite:///{target}"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "serve", "--config", str(config), "--port", str(self.port),
             "--log-format", "json", *args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self._reader.start()

    def ready(self) -> bool:
        return _fetch_or_none(f"{self.url}/readyz") == 200

    def exited(self, timeout: float) -> tuple[int, str]:
        """Wait for the process to end by itself: its exit code and everything it printed."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code, "".join(self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def _fetch_or_none(url: str) -> int | None:
    try:
        return _fetch(url)[0]
    except OSError:
        return None


def _in_flight(serve: Serve) -> float | None:
    status, _, body = _fetch(f"{serve.url}/metrics")
    samples = {s.name: s.value for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    return samples.get("countersign_work_in_flight")


def _readyz_503(serve: Serve):
    status, _, body = _fetch(f"{serve.url}/readyz")
    return status == 503 and json.loads(body)


def _log(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]       # every line is JSON


def test_sigterm_drains_a_vote_in_flight_then_exits_0(tmp_path, slack, pg_url):
    store = Store.open(pg_url, create=True)
    serve = Serve(tmp_path, slack, pg_url, "--drain-seconds", "30")
    approvals = ApprovalService.from_store(store)
    try:
        wait_until(serve.ready, timeout=20)
        first, second = _request(approvals, 1), _request(approvals, 2)
        wait_until(lambda: len(slack.calls("chat.postMessage")) >= 2)
        running = Running(slack, store, None, serve.url, approvals)  # type: ignore[arg-type]
        slack.holding.set()
        # Bolt answers Slack at once and finishes the vote on its executor, now stuck on users.info.
        assert running.post(block_actions("countersign_approve", first.id, BOB))[0] == 200
        assert slack.held.wait(10)
        assert _in_flight(serve) == 1
        serve.process.send_signal(signal.SIGTERM)

        body = wait_until(lambda: _readyz_503(serve), timeout=10)        # out of rotation at once
        assert body["reasons"] == [SHUTTING_DOWN]
        assert running.get("/healthz") == (200, {"ok": True})
        status, refused = running.post(block_actions("countersign_approve", second.id, CAROL))
        assert status == 503 and json.loads(refused)["error"] == SHUTTING_DOWN
        assert serve.process.poll() is None                              # still waiting for the vote

        slack.released.set()
        code, out = serve.exited(timeout=30)
        assert code == 0, out

        assert approvals.get(first.id).status == "approved"
        assert approvals.get(second.id).status == "pending"            # the refused click never voted
        assert [(c["person"], c["accepted"]) for c in
                (e.payload for e in store.events() if e.type == "slack_click")] == [("bob", True)]
        assert store.verify().ok
        outbox = Outbox(store.engine, store.clock)
        assert outbox.holder() is None and outbox.waiting() == 0       # flushed, then the lease released
        assert any("Approved" in json.dumps(c.args.get("blocks")) for c in slack.calls("chat.update"))
    finally:
        slack.released.set()
        serve.kill()
        store.dispose()

    lines = _log(out)
    messages = [line["message"] for line in lines]
    draining = next(line for line in lines if line["message"].startswith("draining"))
    # The count logged is whatever was in flight at that instant (the click's HTTP request may already
    # be answered); that the drain waited for the vote is proven above.
    assert isinstance(draining["in_flight"], int) and messages[-1] == "stopped"
    assert {"ts", "level", "logger", "message"} <= set(lines[0])
    for leaked in (slack.token, SECRET, LITERAL):
        assert leaked not in out


def test_sigterm_answers_a_consoles_long_poll_and_exits_0(tmp_path, slack):
    """A console waiting for approval (the team API's long-poll) gets the request's state as it is, and
    polls again elsewhere; the service does not sit out its drain time on a wait that could last minutes."""
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(store_url, create=True)
    serve = Serve(tmp_path, slack, store_url, "--drain-seconds", "30")
    gate = None
    try:
        wait_until(serve.ready, timeout=20)
        gate = RemoteGate(serve.url, Tokens(store).issue("alice", label="ops test", lifetime=timedelta(hours=1),
                                                         by="carol").secret)
        session = gate.open_session(None, "deploys-prod", "the drain test")
        (awaiting,) = gate.submit(session.id, f"UPDATE deploys SET note = '{LITERAL}' WHERE id = 1")
        assert isinstance(awaiting, Awaiting)
        answers: list = []
        poll = threading.Thread(target=lambda: answers.append(gate.wait(awaiting.request_id, 300)), daemon=True)
        poll.start()
        wait_until(lambda: _in_flight(serve) == 1)                      # the long-poll is in the service
        started = time.monotonic()
        serve.process.send_signal(signal.SIGTERM)
        poll.join(timeout=30)
        assert [a.status for a in answers] == ["pending"]              # answered, not cut off
        code, out = serve.exited(timeout=30)
        assert code == 0, out
        assert time.monotonic() - started < 15                         # well within the 30 s drain
    finally:
        if gate is not None:
            gate.close()
        serve.kill()
    try:
        assert ApprovalService.from_store(store).get(awaiting.request_id).status == "pending"
        assert store.verify().ok
        assert Outbox(store.engine, store.clock).holder() is None
        assert LITERAL not in out
        assert "stopped" in [line["message"] for line in _log(out)]
    finally:
        store.dispose()


def test_the_drain_time_bounds_a_stop_with_a_vote_stuck_in_flight(tmp_path, slack):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(store_url, create=True)
    serve = Serve(tmp_path, slack, store_url, "--drain-seconds", "1")
    approvals = ApprovalService.from_store(store)
    try:
        wait_until(serve.ready, timeout=20)
        request = _request(approvals)
        slack.holding.set()
        assert Running(slack, store, None, serve.url, approvals).post(  # type: ignore[arg-type]
            block_actions("countersign_approve", request.id, BOB))[0] == 200
        assert slack.held.wait(10)
        started = time.monotonic()
        serve.process.send_signal(signal.SIGTERM)
        code, out = serve.exited(timeout=30)
        stopped_after = time.monotonic() - started
    finally:
        slack.released.set()
        serve.kill()
    try:
        assert code == 0, out
        assert stopped_after < 10, out                       # 1 s of drain, then the poster's last round
        assert "stopping with work still in flight" in [line["message"] for line in _log(out)]
        assert approvals.get(request.id).status == "pending" and store.verify().ok
        assert Outbox(store.engine, store.clock).holder() is None
    finally:
        store.dispose()
