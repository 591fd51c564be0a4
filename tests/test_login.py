"""`countersign login`: the whole flow through the real service (Bolt under uvicorn on 127.0.0.1), the
Slack emulator, and clicks sent as Slack sends them (signed block_actions requests), on SQLite and
PostgreSQL stores. Each rule is attacked the way an insider would: someone else's click, a replayed
click, a late click, a second poll, probing who exists, filling someone's direct messages."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from audit.schema import logins as logins_t
from audit.store import Store
from config.settings import ServerSettings, Settings
from service import wiring
from service.auth import Authenticator
from service.login import STARTS_PER_PERSON
from service.tokens import Tokens
from tests.slack_emulator import SlackEmulator
from tests.slack_harness import (PEOPLE, SECRET, SLACK_USERS, UvicornThread, add_people, block_actions,
                                 signed_headers, slack_config, wait_until)

REPO = Path(__file__).resolve().parents[1]
BOB, CAROL = SLACK_USERS["bob"], SLACK_USERS["carol"]
SERVER = ServerSettings(admins=("carol",), login_lifetime=timedelta(hours=12), login_window=timedelta(minutes=5))
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


class Clock:
    """The service's clock, moved by the test (expiry is judged on it, never on a console's)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, span: timedelta) -> None:
        self.now += span


class Team:
    """The running service, its Slack, its store and the HTTP calls a console makes."""

    def __init__(self, slack: SlackEmulator, store: Store, service: wiring.Service, url: str, clock) -> None:
        self.slack, self.store, self.service, self.url, self.clock = slack, store, service, url, clock

    def call(self, path: str, body: dict | bytes | None = None, token: str | None = None) -> tuple[int, dict, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(f"{self.url}{path}", data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=40) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read()), dict(err.headers)

    def start(self, person: str = "bob", host: str = "laptop-7") -> dict:
        status, body, _ = self.call("/api/v1/login", {"person": person, "host": host})
        assert status == 200, body
        return body

    def poll(self, started: dict, wait: float = 0) -> dict:
        status, body, _ = self.call("/api/v1/login/poll", {"login_id": started["login_id"],
                                                           "poll_secret": started["poll_secret"], "wait": wait})
        assert status == 200, body
        return body

    def question(self, login_id: str):
        """The direct message asking about this login, once sent: the emulator's call."""
        def sent():
            return next((c for c in self.slack.calls("chat.postMessage")
                         if c.args.get("blocks") and login_id in json.dumps(c.args["blocks"])), None)
        return wait_until(sent)

    def click(self, action: str, login_id: str, user: str, *, channel: str, ts: str) -> int:
        body = block_actions(action, login_id, user, channel=channel, message_ts=ts)
        request = urllib.request.Request(f"{self.url}/slack/events", data=body.encode(), headers=signed_headers(body))
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status

    def answer(self, started: dict, action: str = "login_confirm", user: str = BOB) -> None:
        """Click a button on the question, in the direct message it was sent to."""
        sent = self.question(started["login_id"])
        assert self.click(action, started["login_id"], user, channel=sent.response["channel"],
                          ts=sent.response["ts"]) == 200

    def events(self, type_: str) -> list[dict]:
        return [e.payload for e in self.store.events() if e.type == type_]

    def logins(self, login_id: str | None = None) -> list[dict]:
        return [e for e in self.events("login") if login_id is None or e["login_id"] == login_id]

    def principal(self, token: str):
        return Authenticator(Tokens(self.store), SERVER).principal(token)


def _team(slack: SlackEmulator, store_url: str, clock=None, people: dict | None = None):
    store = Store.open(store_url, clock=clock)
    client = WebClient(token=slack.token, base_url=slack.base_url)
    config = slack_config(people=people or dict(PEOPLE))
    service = wiring.build(store, client, config, signing_secret=SECRET,
                           settings=Settings(store_url=None, targets={}, server=SERVER))
    return store, service


@pytest.fixture
def team(store_url):
    clock = Clock()
    with SlackEmulator() as slack:
        add_people(slack)
        store, service = _team(slack, store_url, clock, {**PEOPLE, "erin": "erin@example.com"})  # erin: no Slack
        try:
            with UvicornThread(service.asgi) as server:
                yield Team(slack, store, service, f"http://127.0.0.1:{server.port}", clock)
        finally:
            service.logins.close()
            store.dispose()


# -- the flow -------------------------------------------------------------------------------------------
def test_a_confirmed_login_gives_a_working_token_once(team):
    started = team.start("bob", "laptop-7")
    assert set(started) == {"login_id", "poll_secret", "expires_at"}
    assert datetime.fromisoformat(started["expires_at"]) == T0 + SERVER.login_window
    sent = team.question(started["login_id"])
    assert sent.args["channel"] == BOB                    # a direct message to bob's Slack user
    assert sent.args["text"] == "Is this you, logging in to Countersign from laptop-7?"
    buttons = json.loads(sent.args["blocks"]) if isinstance(sent.args["blocks"], str) else sent.args["blocks"]
    assert [(b["action_id"], b["value"], b["text"]["text"]) for b in buttons[-1]["elements"]] == [
        ("login_confirm", started["login_id"], "Yes, it's me"), ("login_deny", started["login_id"], "No")]
    assert team.poll(started) == {"status": "pending"}

    team.answer(started)
    confirmed = team.poll(started, wait=10)
    assert (confirmed["status"], confirmed["person"]) == ("confirmed", "bob")
    assert datetime.fromisoformat(confirmed["expires_at"]) == T0 + SERVER.login_lifetime
    principal = team.principal(confirmed["token"])
    assert (principal.person, principal.roles) == ("bob", frozenset())
    assert team.poll(started) == {"status": "collected"}             # the token is handed out once
    assert team.poll(started, wait=1) == {"status": "collected"}

    updated = wait_until(lambda: team.slack.calls("chat.update"))[0]
    assert (updated.args["channel"], updated.args["ts"]) == (sent.response["channel"], sent.response["ts"])
    assert "Confirmed" in updated.args["text"]
    assert [(e["status"], e["slack_user"]) for e in team.logins()] == [
        ("requested", BOB), ("confirmed", BOB), ("collected", BOB)]
    issued = team.events("token_issued")
    assert [(e["user"], e["kind"], e["issued_by"]) for e in issued] == [("bob", "login", "bob")]


def test_the_store_keeps_only_hashes(team):
    started = team.start()
    team.answer(started)
    token = team.poll(started, wait=10)["token"]
    with team.store.engine.connect() as conn:
        row = conn.execute(select(logins_t)).one()
        everything = " ".join(str(v) for v in row) + " ".join(
            str(v) for r in conn.exec_driver_sql("SELECT * FROM cs_api_tokens") for v in r)
    assert row.poll_hash == hashlib.sha256(started["poll_secret"].encode()).hexdigest()
    assert started["poll_secret"] not in everything and token not in everything
    assert all(started["poll_secret"] not in json.dumps(e.payload) and token not in json.dumps(e.payload)
               for e in team.store.events())


def test_a_long_poll_wakes_when_the_person_clicks(team):
    started = team.start()
    team.question(started["login_id"])
    answers = []
    waiting = threading.Thread(target=lambda: answers.append((team.poll(started, wait=25), time.monotonic())))
    waiting.start()
    wait_until(lambda: team.service.logins.waiting == 1)      # the console's poll is waiting
    clicked = time.monotonic()
    team.answer(started)
    waiting.join(timeout=30)
    state, answered_at = answers[0]
    assert state["status"] == "confirmed" and answered_at - clicked < 5


def test_denied_gives_nothing(team):
    started = team.start()
    team.answer(started, "login_deny")
    assert team.poll(started, wait=10) == {"status": "denied"}
    assert team.poll(started) == {"status": "denied"}
    assert team.events("token_issued") == []
    updated = wait_until(lambda: team.slack.calls("chat.update"))[0]
    assert "Denied" in updated.args["text"]
    assert [e["status"] for e in team.logins()] == ["requested", "denied"]


# -- the attacks ----------------------------------------------------------------------------------------
def test_a_click_by_someone_else_is_refused_and_recorded(team):
    """carol clicks Yes on bob's question (say it was shared into a channel): nothing happens for her."""
    started = team.start("bob")
    sent = team.question(started["login_id"])
    assert team.click("login_confirm", started["login_id"], CAROL, channel="CSHARED", ts=sent.response["ts"]) == 200
    refused = wait_until(lambda: [e for e in team.logins() if e["status"] == "refused"])
    assert refused[0]["slack_user"] == CAROL and refused[0]["why"].startswith("not_the_recipient")
    told = wait_until(lambda: [c for c in team.slack.calls("chat.postEphemeral") if c.args["user"] == CAROL])
    assert "sent to someone else" in told[0].args["text"]
    assert team.poll(started) == {"status": "pending"}
    team.answer(started)                                   # bob still can
    assert team.poll(started, wait=10)["person"] == "bob"


def test_a_slack_account_no_longer_the_person_cannot_confirm(team):
    """bob's Slack account now has another email (it was handed to someone else): his question is void."""
    started = team.start("bob")
    team.question(started["login_id"])
    team.slack.add_user(BOB, "mallory@elsewhere.example", "bob")
    team.answer(started)
    refused = wait_until(lambda: [e for e in team.logins() if e["status"] == "refused"])
    assert refused[0]["why"].startswith("unmapped")
    assert team.poll(started) == {"status": "pending"} and team.events("token_issued") == []


def test_a_replayed_click_has_no_second_effect(team):
    started = team.start()
    sent = team.question(started["login_id"])
    body = block_actions("login_deny", started["login_id"], BOB, channel=sent.response["channel"],
                         message_ts=sent.response["ts"])
    headers = signed_headers(body)
    for _ in range(2):      # the same signed request twice (Bolt accepts it within five minutes)
        request = urllib.request.Request(f"{team.url}/slack/events", data=body.encode(), headers=headers)
        assert urllib.request.urlopen(request, timeout=10).status == 200
    team.answer(started, "login_confirm")      # and a change of mind afterwards
    wait_until(lambda: len(team.logins()) == 4)
    assert [(e["status"], (e["why"] or "").split(":")[0]) for e in team.logins()][1:] == [
        ("denied", ""), ("refused", "answered"), ("refused", "answered")]
    assert team.poll(started) == {"status": "denied"} and team.events("token_issued") == []


def test_a_login_expires_on_the_service_clock(team):
    started = team.start()
    team.question(started["login_id"])
    team.clock.advance(SERVER.login_window)
    team.answer(started)            # too late: the service's clock says the question has expired
    refused = wait_until(lambda: [e for e in team.logins() if e["status"] == "refused"])
    assert refused[0]["why"].startswith("expired")
    assert team.poll(started) == {"status": "expired"}
    assert team.events("token_issued") == []


def test_a_confirmed_login_not_collected_soon_is_never_collected(team):
    started = team.start()
    team.answer(started)
    wait_until(lambda: any(e["status"] == "confirmed" for e in team.logins()))
    team.clock.advance(timedelta(minutes=2))
    assert team.poll(started) == {"status": "expired"} and team.events("token_issued") == []


def test_polling_needs_the_poll_secret(team):
    started = team.start()
    team.answer(started)
    wait_until(lambda: any(e["status"] == "confirmed" for e in team.logins()))
    for login_id, secret in ((started["login_id"], "guessed"), ("no-such-login", started["poll_secret"])):
        status, body, _ = team.call("/api/v1/login/poll", {"login_id": login_id, "poll_secret": secret})
        assert (status, body["error"]["type"]) == (404, "UnknownLogin")
    assert team.poll(started)["status"] == "confirmed"     # the guesses took nothing


def test_who_exists_is_not_revealed(team):
    """Someone in [people], someone not, someone with no Slack account: the same answers throughout;
    only the trail says why nobody was asked."""
    answers = {name: team.call("/api/v1/login", {"person": name, "host": "laptop-7"}) for name in
               ("bob", "mallory", "erin")}
    shapes = {name: (status, sorted(body), len(body["login_id"]), len(body["poll_secret"]), body["expires_at"],
                     headers.get("content-type"))
              for name, (status, body, headers) in answers.items()}
    assert shapes["bob"] == shapes["mallory"] == shapes["erin"]
    started = {name: body for name, (_, body, _) in answers.items()}
    team.question(started["bob"]["login_id"])
    refused = wait_until(lambda: len([e for e in team.logins() if e["status"] == "refused"]) == 2 and
                         {e["user"]: e["why"] for e in team.logins() if e["status"] == "refused"})
    assert refused["mallory"] == "not in [people]"
    assert refused["erin"].startswith("no Slack account")
    assert [c.args["channel"] for c in team.slack.calls("chat.postMessage")] == [BOB]
    assert {team.poll(s)["status"] for s in started.values()} == {"pending"}
    team.clock.advance(SERVER.login_window)
    assert {team.poll(s)["status"] for s in started.values()} == {"expired"}


def test_starts_are_limited_per_person(team):
    """Nobody can fill bob's direct messages; an unknown name is limited alike, so the limit tells nothing."""
    for name in ("bob", "mallory"):
        for _ in range(STARTS_PER_PERSON):
            team.start(name)
        status, body, headers = team.call("/api/v1/login", {"person": name.upper(), "host": "laptop-7"})
        assert (status, body["error"]["type"]) == (429, "TooManyLogins")
        assert "too many logins for " + name in body["error"]["message"] and int(headers["retry-after"]) > 0
    wait_until(lambda: len(team.slack.calls("chat.postMessage")) == STARTS_PER_PERSON)
    team.clock.advance(timedelta(minutes=10, seconds=1))
    team.start("bob")
    assert wait_until(lambda: len(team.slack.calls("chat.postMessage")) == STARTS_PER_PERSON + 1)


@pytest.mark.parametrize("body, kind", [
    ({"person": "bob", "host": "laptop (IT here: click Yes)"}, "BadLogin"),
    ({"person": "bob", "host": "<!channel>"}, "BadLogin"),
    ({"person": "b\u200bob", "host": "laptop-7"}, "BadLogin"),
    ({"person": ["bob"], "host": "laptop-7"}, "BadLogin"),
    (b"not json", "BadLogin"),
])
def test_bad_starts_are_refused_with_a_reason(team, body, kind):
    status, answer, _ = team.call("/api/v1/login", body)
    assert (status, answer["error"]["type"]) == (422, kind) and answer["error"]["message"]
    assert team.slack.calls("chat.postMessage") == []


def test_logout_revokes_only_the_callers_own_token(team):
    started = team.start()
    team.answer(started)
    token = team.poll(started, wait=10)["token"]
    status, body, _ = team.call("/api/v1/logout", token=token)
    assert status == 200 and team.principal(token) is None
    assert [(e["user"], e["revoked_by"]) for e in team.events("token_revoked")] == [("bob", "bob")]
    status, body, _ = team.call("/api/v1/logout", token=token)
    assert (status, body["error"]["type"]) == (401, "NotAuthenticated")


# -- `countersign login` and `countersign logout`, as real processes -----------------------------------
@pytest.fixture
def served(store_url):
    """The service with the real clock (a console's poll meets the real deadline)."""
    with SlackEmulator() as slack:
        add_people(slack)
        store, service = _team(slack, store_url)
        try:
            with UvicornThread(service.asgi) as server:
                yield Team(slack, store, service, f"http://127.0.0.1:{server.port}", None)
        finally:
            service.logins.close()
            store.dispose()


def _console_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERSIGN_")}
    env.update({"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
                "PYTHONPATH": str(REPO)})
    return env


def _countersign(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "console.cli", *args], env=env, cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _login_id_asking(team: Team, user: str) -> str:
    """The login the console started: the one whose question went to `user`."""
    sent = wait_until(lambda: [c for c in team.slack.calls("chat.postMessage") if c.args["channel"] == user], 30)
    blocks = sent[0].args["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    return blocks[-1]["elements"][0]["value"]


def test_countersign_login_and_logout(served, tmp_path):
    env = _console_env(tmp_path)
    console = _countersign("login", served.url, "--as", "Bob", env=env)
    login_id = _login_id_asking(served, BOB)
    served.answer({"login_id": login_id})
    out, err = console.communicate(timeout=60)
    assert console.returncode == 0, err
    assert f"Confirm in Slack: Countersign sent you a direct message asking whether this is you, logging in " \
           f"from {socket.gethostname()}" in out
    assert f"Logged in to {served.url} as bob" in out

    saved = tmp_path / "config" / "countersign" / "credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    token = json.loads(saved.read_text())["servers"][served.url]["token"]
    assert served.principal(token).person == "bob"

    console = _countersign("logout", served.url, env=env)
    out, err = console.communicate(timeout=60)
    assert console.returncode == 0, err
    assert f"Logged out of {served.url}." in out
    assert served.principal(token) is None
    assert json.loads(saved.read_text())["servers"] == {}


def test_countersign_login_denied_saves_nothing(served, tmp_path):
    env = {**_console_env(tmp_path), "COUNTERSIGN_SERVER": served.url}       # the service, named once
    console = _countersign("login", "--as", "bob", env=env)
    served.answer({"login_id": _login_id_asking(served, BOB)}, "login_deny")
    out, err = console.communicate(timeout=60)
    assert console.returncode == 3 and "you answered No in Slack" in err
    assert not (tmp_path / "config" / "countersign" / "credentials.json").exists()


def test_countersign_login_refuses_a_cleartext_url_off_this_machine(tmp_path):
    console = _countersign("login", "http://countersign.example.com", env=_console_env(tmp_path))
    out, err = console.communicate(timeout=60)
    assert console.returncode == 2 and "use https://" in err


def test_countersign_login_stops_cleanly_on_ctrl_c(served, tmp_path):
    import signal
    console = _countersign("login", served.url, "--as", "bob", env=_console_env(tmp_path))
    _login_id_asking(served, BOB)
    wait_until(lambda: served.service.logins.waiting == 1, 30)     # it is waiting for the answer
    console.send_signal(signal.SIGINT)
    out, err = console.communicate(timeout=60)
    assert console.returncode == 130 and "stopped: you are not logged in" in err
    assert "Traceback" not in err
    assert not (tmp_path / "config" / "countersign" / "credentials.json").exists()
    wait_until(lambda: served.service.logins.waiting == 0)        # the service stopped waiting too


def test_the_service_side_poll_waits_for_the_click(team):
    """Logins.poll, as a caller inside the service uses it: it returns as soon as the click lands."""
    started = team.start()
    team.question(started["login_id"])
    answers = []
    waiting = threading.Thread(target=lambda: answers.append(
        team.service.logins.poll(started["login_id"], started["poll_secret"], wait=25)))
    waiting.start()
    wait_until(lambda: team.service.logins.waiting == 1)
    team.answer(started)
    waiting.join(timeout=30)
    assert answers[0].status == "confirmed" and answers[0].person == "bob"
