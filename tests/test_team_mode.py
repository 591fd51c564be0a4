"""Team mode: `countersign serve` holds the credentials, the policies and the store; a console holds a
token. Each test is an insider's attempt to get around that, against a real service (wiring.build's app
under uvicorn, or a real `countersign serve` process) and real `countersign` processes."""
from __future__ import annotations

import inspect
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from approvals import models
from approvals.service import ApprovalService
from audit.store import Store
from console.session import ConsoleSession
from gate.api import Awaiting, Gate, Status
from gate.remote import BadRequest, Forbidden, NotAuthenticated, NotFound, RemoteGate, Unavailable
from service import gate_access
from service.tokens import Tokens
from tests.cli_helpers import countersign, spawn_countersign
from tests.slack_emulator import SlackEmulator
from tests.slack_harness import SECRET, add_people, wait_until
from tests.store_helpers import migrated
from tests.team_harness import REPO, SERVER_TABLES, team_service, target_tables

UPDATE = "UPDATE deploys SET metadata = NULL WHERE site_id = 3"
READ = "SELECT count(*) AS n FROM deploys"
LONG_READ = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000) "
             "SELECT count(*) FROM c")


@pytest.fixture
def target_db(tmp_path) -> Path:
    db = tmp_path / "deploys.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE deploys (id INTEGER PRIMARY KEY, site_id INTEGER, metadata TEXT)")
        conn.executemany("INSERT INTO deploys (site_id, metadata) VALUES (?, 'x')", [(n % 5,) for n in range(50)])
    return db


@pytest.fixture
def team(tmp_path, target_db):
    targets = (target_tables("prod", approvers=["bob", "carol"])
               + target_tables("small", policy="small", max_display_rows=5))
    with team_service(tmp_path, targets, env={"TEAM_TARGET_URL": f"sqlite:///{target_db}"}, idle_timeout=2.0) as t:
        yield t


def nulled(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM deploys WHERE metadata IS NULL").fetchone()[0]


def session_for(gate, person: str, target: str = "prod") -> ConsoleSession:
    session = ConsoleSession(gate, user=person, target=target, dialect="sqlite", environment="production")
    session.open_session("testing")
    return session


def awaiting(session: ConsoleSession, text: str = UPDATE) -> Awaiting:
    reply, = session.gate.submit(session.session_id, text)
    assert isinstance(reply, Awaiting), reply
    return reply


def pending(team) -> list:
    return ApprovalService.from_store(team.store).list(pending_only=True)


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


# -- the happy path: a console with only a token --------------------------------------------------------
def test_a_console_with_only_a_token_reads_and_after_another_persons_vote_writes(team, tmp_path, target_db):
    alice_home, bob_home = tmp_path / "alice", tmp_path / "bob"
    alice, bob = team.console_env(alice_home, "alice"), team.console_env(bob_home, "bob")
    read = countersign("run", "prod", "-c", READ, "--format", "json", env=alice)
    assert (read.returncode, json.loads(read.stdout)) == (0, {"n": 50}), read.stderr
    console = spawn_countersign("run", "prod", "-c", UPDATE, "--wait", "60", env=alice)
    request = wait_until(lambda: pending(team), timeout=30)[0]
    listed = countersign("approvals", "list", "--pending", env=bob)
    assert request.id in listed.stdout and "alice" in listed.stdout, listed.stderr
    voted = countersign("approvals", "approve", request.id, env=bob)
    assert voted.returncode == 0, voted.stderr
    _, err = console.communicate(timeout=60)
    assert console.returncode == 0, err
    assert nulled(target_db) == 10
    # what the trail says: alice's session (never a name she typed), bob's vote through the API
    session = next(s for s in team.store.sessions() if s.user == "alice" and s.commands == 1)
    vote = next(e.payload for e in team.events("approval") if e.payload.get("event") == "vote")
    assert (vote["actor"], vote["source"]) == ("bob", "api")
    assert team.store.session(session.id).ended_at is not None and team.store.verify().ok
    # the snapshot of the write, through the service
    listed = countersign("snapshots", "list", env=alice)
    snapshot_id = listed.stdout.splitlines()[1].split()[0]
    shown = countersign("snapshots", "show", snapshot_id, env=alice)
    assert shown.returncode == 0 and "first 10 of 10 rows" in shown.stdout, shown.stderr
    # and no store, no key, no database anywhere on the consoles' side
    assert not [f for f in files_under(alice_home) + files_under(bob_home) if f.endswith((".db", ".key"))]


def test_results_are_bounded_and_say_so(team):
    session = session_for(team.gate("alice"), "alice", "small")
    outcome = session.submit(session.classify("SELECT id FROM deploys")[0])
    assert (outcome.status, len(outcome.result.rows), outcome.result.truncated) == (Status.OK, 5, True)


def test_run_says_when_csv_output_was_cut(team, tmp_path):
    done = countersign("run", "small", "-c", "SELECT id FROM deploys", "--format", "csv",
                       env=team.console_env(tmp_path / "a", "alice"))
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 6      # the header and 5 rows
    assert "only the first 5 rows" in done.stderr


# -- identity is the token's, never declared -------------------------------------------------------------
def test_countersign_user_is_refused_on_a_team_console(team, tmp_path, target_db):
    env = team.console_env(tmp_path / "a", "alice", COUNTERSIGN_USER="bob")
    done = countersign("run", "prod", "-c", UPDATE, env=env)
    assert done.returncode == 2 and "COUNTERSIGN_USER is set" in done.stderr
    voted = countersign("approvals", "list", env=env)
    assert voted.returncode == 2 and "COUNTERSIGN_USER" in voted.stderr
    assert team.store.sessions() == [] and nulled(target_db) == 0


def test_self_approval_through_the_api_is_refused(team, target_db):
    session = session_for(team.gate("alice"), "alice")
    request = awaiting(session)
    with pytest.raises(models.SelfApprovalError):
        session.gate.vote(request.request_id, None, "approve")
    # a token issued to "ALICE" is alice's: the same person, refused the same way
    shouting = team.gate(token=team.token("ALICE"))
    assert shouting.whoami().person == "alice"
    with pytest.raises(models.SelfApprovalError):
        shouting.vote(request.request_id, None, "approve")
    assert ApprovalService.from_store(team.store).get(request.request_id).status == "pending"
    assert nulled(target_db) == 0


def test_a_look_alike_of_an_existing_person_gets_no_token(team):
    team.token("alice")
    carol = team.gate("carol")                     # an admin
    with pytest.raises(BadRequest, match="looks like 'alice'"):
        carol.issue_token("a1ice", "ci", timedelta(days=1))
    with pytest.raises(BadRequest, match="not a person's name"):
        carol.issue_token("al\u200bice", "ci", timedelta(days=1))


def test_the_service_never_acts_as_a_name_in_the_body(team):
    alice = team.gate("alice")
    with pytest.raises(Forbidden, match="never as 'bob'"):
        alice.open_session("bob", "prod")
    session = session_for(alice, "alice")
    request = awaiting(session)
    bob_session = session_for(team.gate("bob"), "bob")
    bobs = awaiting(bob_session, "DELETE FROM deploys WHERE id = 7")
    for call in (lambda: alice.vote(bobs.request_id, "bob", "approve"),
                 lambda: alice.vote(bobs.request_id, "carol", "approve"),
                 lambda: alice.check_vote(bobs.request_id, "bob"),
                 lambda: alice.withdraw(bobs.request_id, "bob")):
        with pytest.raises(Forbidden):
            call()
    # the raw protocol, as a hand-written client would send it
    raw = httpx.post(f"{team.url}/api/v1/gate/vote", headers={"Authorization": f"Bearer {team.token('alice')}"},
                     json={"args": [request.request_id], "kwargs": {"person": "bob", "verdict": "approve"}})
    assert raw.status_code == 403 and raw.json()["error"]["type"] == "Forbidden"
    assert all(e.payload.get("actor") != "bob" for e in team.events("approval") if e.payload.get("event") == "vote")
    assert {s.user for s in team.store.sessions()} == {"alice", "bob"}


def test_another_persons_session_is_not_yours(team):
    bob_session = session_for(team.gate("bob"), "bob")
    request = awaiting(bob_session)
    alice, sid = team.gate("alice"), bob_session.session_id
    for name, call in {"close_session": lambda: alice.close_session(sid), "cancel": lambda: alice.cancel(sid),
                       "submit": lambda: alice.submit(sid, "SELECT 1"), "classify": lambda: alice.classify(sid, "x"),
                       "resume": lambda: alice.resume(sid, request.request_id),
                       "stop_waiting": lambda: alice.stop_waiting(sid, request.request_id),
                       "pending": lambda: alice.pending(sid), "catalog": lambda: alice.catalog(sid),
                       "restore_plan": lambda: alice.restore_plan(sid, "x"),
                       "prune_snapshot": lambda: alice.prune_snapshot(sid, "x")}.items():
        with pytest.raises(Forbidden, match="bob's"):
            call()
    outcome = bob_session.submit(bob_session.classify(READ)[0])    # still bob's, still open
    assert outcome.status is Status.OK and outcome.result.rows == ((50,),)
    assert [p.id for p in bob_session.pending()] == [request.request_id]


# -- tokens: revoked, expired, forged --------------------------------------------------------------------
def test_a_revoked_token_is_refused_at_its_next_use(team):
    secret = team.token("alice")
    gate = team.gate(token=secret)
    assert gate.whoami().person == "alice"
    Tokens(team.store).revoke(Tokens(team.store).authenticate(secret).id, by="carol")
    with pytest.raises(NotAuthenticated, match=f"run `countersign login {team.url}`"):
        gate.requests()


def test_an_expired_token_is_refused_on_the_services_clock(team):
    gate = team.gate(token=team.token("alice", lifetime=timedelta(minutes=10)))
    assert gate.whoami().person == "alice"
    team.clock.advance(minutes=11)           # the service's clock: a console's clock is never asked
    with pytest.raises(NotAuthenticated):
        gate.whoami()


def test_a_forged_token_is_refused(team):
    real = team.token("alice")
    token_id = real.split("_")[1]
    for forged in (f"cs_{token_id}_{'A' * 43}", real[:-1] + ("B" if real[-1] != "B" else "C"), "cs_", ""):
        response = httpx.post(f"{team.url}/api/v1/gate/requests", json={"args": [], "kwargs": {}},
                              headers={"Authorization": f"Bearer {forged}"} if forged else {})
        assert response.status_code == 401, forged
        assert "countersign login" in response.json()["error"]["message"]


def test_tokens_are_managed_by_admins(team, tmp_path):
    carol = team.console_env(tmp_path / "carol", "carol")
    issued = countersign("tokens", "issue", "erin", "--label", "nightly job", "--expires", "1d", "--json", env=carol)
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)
    assert team.gate(token=token["secret"]).whoami().person == "erin"
    listed = countersign("tokens", "list", env=carol)
    assert token["id"] in listed.stdout and "nightly job" in listed.stdout
    refused = countersign("tokens", "issue", "mallory", "--label", "x", env=team.console_env(tmp_path / "a", "alice"))
    assert refused.returncode == 2 and "admin role" in refused.stderr
    revoked = countersign("tokens", "revoke", token["id"][:8], env=carol)
    assert revoked.returncode == 0, revoked.stderr
    with pytest.raises(NotAuthenticated):
        team.gate(token=token["secret"]).whoami()


def test_tokens_on_the_service_host_are_issued_by_the_machine_login(team, tmp_path):
    from console.commands.tokens import machine_login
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERSIGN_")}
    env.update(team.env, PYTHONPATH=str(REPO), COUNTERSIGN_STORE=team.store.url, COUNTERSIGN_USER="carol")
    issued = countersign("--config", str(team.config_file), "tokens", "issue", "ci", "--label", "deploys",
                         "--json", env=env)
    assert issued.returncode == 0, issued.stderr
    event = team.events("token_issued")[-1].payload
    assert (event["user"], event["issued_by"]) == ("ci", machine_login())     # never COUNTERSIGN_USER


# -- the console holds no policy, no store, no URL ---------------------------------------------------------
def test_a_console_configuration_with_its_own_policy_is_refused(team, tmp_path, target_db):
    mine = tmp_path / "mine.toml"
    mine.write_text(f'[server]\nurl = "{team.url}"\n\n[targets.prod]\nurl = "sqlite:///{target_db}"\n'
                    'policy = "mine"\n\n[policies.mine]\napproval_kinds = []\n')
    env = team.console_env(tmp_path / "a", "alice")
    del env["COUNTERSIGN_SERVER"]                              # team mode from the file's [server] url
    done = countersign("--config", str(mine), "run", "prod", "-c", UPDATE, env=env)
    assert done.returncode == 2 and "[targets], [policies]" in done.stderr and "ask an admin" in done.stderr
    assert nulled(target_db) == 0 and team.store.sessions() == []


def test_a_team_console_has_no_store(team, tmp_path, target_db):
    store_file = tmp_path / "a" / "mine.db"
    env = team.console_env(tmp_path / "a", "alice", COUNTERSIGN_STORE=f"sqlite:///{store_file}")
    for args in (("run", "prod", "-c", READ), ("audit", "verify"), ("approvals", "list")):
        done = countersign(*args, env=env)
        assert done.returncode == 2 and "COUNTERSIGN_STORE is set" in done.stderr, args
    assert not store_file.exists()


def test_a_url_as_target_is_refused_by_the_console_and_by_the_service(team, tmp_path, target_db):
    done = countersign("run", f"sqlite:///{target_db}", "-c", READ, env=team.console_env(tmp_path / "a", "alice"))
    assert done.returncode == 2 and "holds no database URL" in done.stderr
    alice = team.gate("alice")
    with pytest.raises(BadRequest, match="never a URL"):
        alice.open_session(None, f"sqlite:///{target_db}")
    with pytest.raises(NotFound, match="no target 'elsewhere'"):
        alice.open_session(None, "elsewhere")


def test_approval_expiry_is_judged_on_the_services_clock(team, target_db):
    session = session_for(team.gate("alice"), "alice")
    request = awaiting(session)
    team.gate("bob").vote(request.request_id, None, "approve")
    team.clock.advance(minutes=31)            # past the policy's 30 minutes, on the service's clock only
    outcome, = session.gate.resume(session.session_id, request.request_id)
    assert outcome.status is Status.EXPIRED and nulled(target_db) == 0


def test_the_service_expires_requests_with_nobody_watching(team):
    session = session_for(team.gate("alice"), "alice")
    request = awaiting(session)
    team.clock.advance(minutes=31)
    approvals = ApprovalService.from_store(team.store)
    wait_until(lambda: approvals.get(request.request_id).status == "expired")   # no poster runs here


# -- Ctrl-C, dropped connections, vanished consoles --------------------------------------------------------
def test_ctrl_c_cancels_the_statement_on_the_service(team):
    session = session_for(team.gate("alice"), "alice")
    outcomes = []
    running = threading.Thread(target=lambda: outcomes.append(session.submit(session.classify(LONG_READ)[0])))
    running.start()
    wait_until(lambda: team.api.sessions._held[session.session_id].busy)
    session.cancel_running()
    running.join(30)
    assert outcomes[0].status is Status.CANCELLED


def test_a_dropped_connection_cancels_the_statement(team):
    alice = team.gate("alice")
    session = session_for(alice, "alice")
    with pytest.raises(httpx.ReadTimeout):     # the console goes away mid-statement
        httpx.post(f"{team.url}/api/v1/gate/submit", json={"args": [session.session_id, LONG_READ], "kwargs": {}},
                   headers={"Authorization": f"Bearer {team.token('alice')}"}, timeout=1.0)
    outcome = wait_until(lambda: [e.payload for e in team.events("outcome", session.session_id)], timeout=30)[0]
    assert outcome["status"] == "cancelled"


def test_a_console_killed_mid_wait_leaves_the_request_and_the_session_consistent(team, tmp_path, target_db):
    console = spawn_countersign("run", "prod", "-c", UPDATE, "--wait", "600",
                                env=team.console_env(tmp_path / "a", "alice"))
    request = wait_until(lambda: pending(team), timeout=30)[0]
    session_id = request.session_id
    console.send_signal(signal.SIGKILL)
    console.wait(timeout=10)
    # the service notices (the long-poll's connection dropped, then no heartbeat) and closes the session
    # (the trail records the end first; the service then forgets the session)
    wait_until(lambda: team.store.session(session_id).ended_at is not None
               and session_id not in team.api.sessions.ids(), timeout=30)
    kinds = [(e.type, e.payload.get("status")) for e in team.events(session_id=session_id)]
    assert kinds[-2:] == [("outcome", "cancelled"), ("session_end", None)]
    # the request stays open; approving it now runs nothing: nobody is there to run it
    approved = team.gate("bob").vote(request.id, None, "approve")
    assert approved.status == "approved" and nulled(target_db) == 0
    assert team.store.verify().ok


def test_a_silent_console_loses_its_session_a_live_one_keeps_it(team):
    live = session_for(team.gate("alice", heartbeat=0.2), "alice")
    silent = session_for(team.gate("alice", heartbeat=3600), "alice")
    wait_until(lambda: team.store.session(silent.session_id).ended_at is not None, timeout=30)
    assert team.store.session(live.session_id).ended_at is None
    assert live.submit(live.classify(READ)[0]).status is Status.OK
    with pytest.raises(NotFound, match="open a new one"):
        silent.submit(silent.classify(READ)[0])


# -- audit through the service ------------------------------------------------------------------------------
def test_the_trail_is_read_through_the_service_by_auditors_only(team, tmp_path):
    session = session_for(team.gate("alice"), "alice")
    session.submit(session.classify(READ)[0])
    session_id = session.session_id
    session.close()
    dave = team.console_env(tmp_path / "d", "dave")
    verified = countersign("audit", "verify", env=dave)
    assert verified.returncode == 0 and "audit trail intact" in verified.stdout, verified.stderr
    shown = countersign("audit", "show", session_id[:8], env=dave)
    assert shown.returncode == 0 and READ in shown.stdout and "session_end" in shown.stdout
    exported = countersign("audit", "export", env=dave)
    assert len(exported.stdout.splitlines()) == len(team.store.events())
    refused = countersign("audit", "verify", env=team.console_env(tmp_path / "a", "alice"))
    assert refused.returncode == 2 and "auditor role" in refused.stderr


# -- the protocol itself -----------------------------------------------------------------------------------
def test_the_api_takes_exactly_the_gates_verbs_and_arguments():
    for verb in gate_access.GATE_VERBS:
        declared = [p for p in inspect.signature(getattr(Gate, verb)).parameters if p != "self"]
        assert [p.name for p in gate_access.SIGNATURES[verb]] == declared, verb
    missing = {name for name, _ in inspect.getmembers(Gate, inspect.isfunction) if not name.startswith("_")}
    assert missing - gate_access.GATE_VERBS == {"expire_due"}          # the service runs it itself


def test_malformed_calls_get_clear_errors_never_a_traceback(team):
    token = team.token("alice")
    post = lambda verb, body: httpx.post(f"{team.url}/api/v1/gate/{verb}", content=body,  # noqa: E731
                                         headers={"Authorization": f"Bearer {token}"})
    cases = {("expire_due", b'{}'): 404, ("nosuch", b'{}'): 404, ("requests", b'not json'): 422,
             ("requests", b'[1]'): 422, ("snapshot_sample", b'{"args": ["s", "x", true]}'): 422,
             ("request", b'{"args": [{"$type": "os.system", "fields": {}}]}'): 422,
             ("submit", b'{"args": ["s"], "kwargs": {"sql": "x"}}'): 422}
    for (verb, body), status in cases.items():
        response = post(verb, body)
        assert response.status_code == status, (verb, body, response.text)
        assert set(response.json()["error"]) == {"type", "message"} and "Traceback" not in response.text
    with pytest.raises(models.UnknownRequestError):       # the console's own class, from the 404
        team.gate("alice").wait("no-such-request", 5)


def test_an_unreachable_service_is_said_plainly(tmp_path):
    from tests.servers import free_port
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Unavailable, match=f"cannot reach the Countersign service at {url}"):
        RemoteGate(url, "cs_x_y").whoami()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERSIGN_")}
    env.update(PYTHONPATH=str(REPO), HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "c"),
               COUNTERSIGN_SERVER=url)
    done = countersign("run", "prod", "-c", READ, env=env)
    assert done.returncode == 2 and f"countersign login {url}" in done.stderr      # no saved login yet
    done = countersign("run", "prod", "-c", READ, env={**env, "COUNTERSIGN_TOKEN": "cs_x_y"})
    assert done.returncode == 2 and "cannot reach the Countersign service" in done.stderr


# -- a real `countersign serve` process ----------------------------------------------------------------------
class Serve:
    """`countersign serve` as a process, with its own store, state directory and targets."""

    def __init__(self, tmp_path: Path, slack: SlackEmulator, target_url: str) -> None:
        from tests.servers import free_port
        self.home = tmp_path / "service"
        self.home.mkdir()
        self.config = self.home / "countersign.toml"
        self.config.write_text(SERVER_TABLES + target_tables("prod", approvers=["bob"]))
        self.store_url = migrated(f"sqlite:///{self.home / 'store.db'}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("COUNTERSIGN_")},
                    "SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SECRET,
                    "COUNTERSIGN_SLACK_API_URL": slack.base_url, "COUNTERSIGN_STORE": self.store_url,
                    "XDG_STATE_HOME": str(self.home / "state"), "TEAM_TARGET_URL": target_url,
                    "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "serve", "--config", str(self.config), "--port", str(self.port),
             "--log-format", "text"], cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def store(self) -> Store:
        return Store.open(self.store_url, key_file=self.home / "state" / "countersign" / "audit.key")

    def kill(self) -> str:
        self.process.kill()
        out, _ = self.process.communicate(timeout=30)
        return out


@pytest.mark.postgres
def test_a_serve_process_killed_mid_write_leaves_nothing_half_done(tmp_path, pg_url):
    import psycopg
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE deploys (id integer PRIMARY KEY, site_id integer, metadata text)")
        conn.execute("INSERT INTO deploys SELECT n, n % 5, 'x' FROM generate_series(1, 50) AS n")
    with SlackEmulator() as slack:
        add_people(slack)
        serve = Serve(tmp_path, slack, pg_url)
        try:
            wait_until(serve.ready, timeout=30)
            store = serve.store()
            tokens = Tokens(store)
            alice = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERSIGN_")}
            alice.update(HOME=str(tmp_path / "alice"), XDG_CONFIG_HOME=str(tmp_path / "alice" / "c"),
                         XDG_STATE_HOME=str(tmp_path / "alice" / "s"), PYTHONPATH=str(REPO),
                         COUNTERSIGN_SERVER=serve.url,
                         COUNTERSIGN_TOKEN=tokens.issue("alice", label="t", lifetime=timedelta(hours=1), by="carol").secret)
            read = countersign("run", "prod", "-c", READ, "--format", "json", env=alice)       # end to end
            assert (read.returncode, json.loads(read.stdout)) == (0, {"n": 50}), read.stderr + serve.kill()
            console = spawn_countersign("run", "prod", "-c", UPDATE, "--wait", "120", env=alice)
            request = wait_until(lambda: ApprovalService.from_store(store).list(pending_only=True), timeout=30)[0]
            with psycopg.connect(pg_url) as blocker:            # holds a row the write must change
                blocker.execute("SELECT * FROM deploys WHERE site_id = 3 FOR UPDATE")
                bob = RemoteGate(serve.url, tokens.issue("bob", label="t", lifetime=timedelta(hours=1), by="carol").secret)
                bob.vote(request.id, None, "approve")
                bob.close()
                wait_until(lambda: _blocked_update(pg_url), timeout=30)   # the write runs, waiting on the row
                serve.kill()                                     # SIGKILL mid-write
                blocker.rollback()
            _, err = console.communicate(timeout=60)
            assert console.returncode != 0 and "Countersign service" in err
            wait_until(lambda: not _service_connections(pg_url), timeout=30)   # its transaction ended
            with psycopg.connect(pg_url) as conn:
                assert conn.execute("SELECT count(*) FROM deploys WHERE metadata IS NULL").fetchone()[0] == 0
            trail = [(e.type, e.payload.get("text")) for e in store.events()]
            assert ("execute", UPDATE) in trail and ("outcome", UPDATE) not in trail   # it was running, never finished
            store.dispose()
            verified = countersign("audit", "verify", env={**serve.env})
            assert verified.returncode == 0 and "audit trail intact" in verified.stdout, verified.stdout + verified.stderr
        finally:
            if serve.process.poll() is None:
                serve.kill()


def _blocked_update(pg_url: str) -> bool:
    import psycopg
    with psycopg.connect(pg_url, autocommit=True) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND "
                                 "wait_event_type = 'Lock' AND query LIKE 'UPDATE deploys%'").fetchall())


def _service_connections(pg_url: str) -> list:
    import psycopg
    with psycopg.connect(pg_url, autocommit=True) as conn:
        return conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid()").fetchall()


def test_the_shell_in_team_mode_runs_reads_and_ctrl_c_reaches_the_service(team, tmp_path):
    import pexpect

    from tests.test_repl import Shell
    shell = Shell(team.console_env(tmp_path / "a", "alice"), "shell", "prod", user="alice", target="prod")
    assert "prod (production, sqlite) as alice" in shell.banner
    shell.send(READ + ";")
    assert " 50" in shell.wait_prompt()
    shell.send(LONG_READ + ";")
    wait_until(lambda: any(held.busy for held in team.api.sessions._held.values()))
    shell.child.sendintr()                      # Ctrl-C: the console cancels the statement on the service
    assert "cancel" in shell.wait_prompt().lower()
    shell.child.sendline("\\q")
    shell.child.expect(pexpect.EOF)
    session, = team.store.sessions()
    wait_until(lambda: team.store.session(session.id).ended_at is not None)
    outcomes = [e.payload["status"] for e in team.events("outcome", session.id)]
    assert outcomes == ["ok", "cancelled"]


# -- the console's saved login ------------------------------------------------------------------------------
def test_a_saved_login_is_0600_from_its_creation_and_used_by_the_console(team, tmp_path, monkeypatch):
    import stat as stat_module
    from datetime import datetime, timezone

    from console import credentials
    home = tmp_path / "alice"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    previous = os.umask(0)                           # even with no umask at all, the file is created 0600
    try:
        where = credentials.save(team.url + "/", team.token("alice"), "alice", datetime(2030, 1, 1, tzinfo=timezone.utc))
    finally:
        os.umask(previous)
    assert stat_module.S_IMODE(where.stat().st_mode) == 0o600
    assert stat_module.S_IMODE(where.parent.stat().st_mode) == 0o700
    assert credentials.load(team.url.upper().replace("HTTP://", "http://")).person == "alice"
    env = team.console_env(home)                     # no COUNTERSIGN_TOKEN: the saved login
    done = countersign("run", "prod", "-c", READ, "--format", "json", env=env)
    assert done.returncode == 0 and json.loads(done.stdout) == {"n": 50}, done.stderr
    where.chmod(0o644)                               # readable by others: refused, not used
    done = countersign("run", "prod", "-c", READ, env=env)
    assert done.returncode == 2 and "can be read by other users" in done.stderr
    where.chmod(0o600)
    assert credentials.forget(team.url) and credentials.load(team.url) is None
    done = countersign("run", "prod", "-c", READ, env=env)
    assert done.returncode == 2 and f"countersign login {team.url}" in done.stderr


def test_only_an_admin_may_drop_a_snapshot_before_its_retention(team):
    alice = session_for(team.gate(token=team.token("alice", lifetime=timedelta(days=60))), "alice")
    bob = team.gate("bob")

    def approved_write(text: str) -> str:
        request = awaiting(alice, text)
        bob.vote(request.request_id, None, "approve")
        written, = alice.gate.resume(alice.session_id, request.request_id)
        assert written.status is Status.OK and written.snapshot_id
        return written.snapshot_id

    young = approved_write(UPDATE)
    with pytest.raises(Forbidden, match="only an admin"):
        alice.prune_snapshot(young)
    assert alice.gate.prunable() == []                         # nothing is past its 30 days yet
    session_for(team.gate("carol"), "carol").prune_snapshot(young)      # carol is an admin
    assert alice.gate.snapshot(young).status == "pruned"
    old = approved_write("UPDATE deploys SET metadata = 'y' WHERE site_id = 4")
    team.clock.advance(days=31)                                # the service's clock, never a console's
    assert [r.id for r in alice.gate.prunable()] == [old]
    alice.prune_snapshot(old)
    assert alice.gate.snapshot(old).status == "pruned"
