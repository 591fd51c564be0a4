"""The auditor's pages over real HTTP (uvicorn on 127.0.0.1): who may look, what every response
carries, that nothing shown can run in the browser, that viewing is recorded, and that the exports
verify as the chain does. The trail is made by the real pipeline (gate, approvals, snapshots,
restores, Slack clicks through the Slack emulator) on a SQLite and a PostgreSQL store.

tests/test_auditor_browser.py drives the same pages in Chromium; it uses the fixtures defined here.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from approvals.service import ApprovalService
from audit.keys import load_key
from audit.store import Store
from config.settings import Policy, ServerSettings, Target
from console.commands.snapshots import _classified
from console.session import ConsoleSession
from gate.api import Awaiting, Status
from gate.local import LocalGate
from service.auth import Authenticator
from service.pages import queries, routes
from service.tokens import Tokens
from tests import servers
from tests.pipeline_helpers import Submission
from tests.slack_emulator import SlackEmulator
from tests.slack_harness import (SLACK_USERS, Running, UvicornThread, add_people, block_actions, start,
                                 wait_until)
from tests.store_helpers import migrated

REPO = Path(__file__).resolve().parent.parent
HOSTILE = "SELECT '<script>alert(1)</script>' AS x, 'a\x1b[2Jb\u202ec' AS y"
UPDATE = "UPDATE deploys SET metadata = 'cleared' WHERE site_id = 3"
REJECTED = "DELETE FROM deploys WHERE site_id = 1"
READERS = 55                      # carol's read-only sessions: more than one page of sessions
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
ENGINES = {"billing": "sqlite", "billing-staging": "sqlite", "ledger": "postgres"}


# -- the trail, made by the real pipeline -----------------------------------------------------------
@dataclass
class Trail:
    """A store filled through the pipeline, and the pages serving it."""
    store_url: str
    store: Store
    url: str                      # the pages' base, e.g. http://127.0.0.1:PORT/audit
    auditor: str                  # token secrets
    outsider: str
    alice: str = ""               # session ids
    restorer: str = ""
    dave: str = ""
    erin: str = ""
    readers: list[str] = field(default_factory=list)
    snapshot: str = ""
    write_request: str = ""
    rejected_request: str = ""


def fill(store: Store, target_db: Path, running: Running) -> dict:
    """Sessions by alice (a read, a hostile-looking read, a write approved by bob in Slack, and its
    restore approved by carol), dave (a write carol rejects), erin on staging (a blocked DROP, a write
    the staging policy allows) and carol (many reads)."""
    with sqlite3.connect(target_db) as conn:
        conn.execute("CREATE TABLE deploys (id INTEGER PRIMARY KEY, site_id INTEGER NOT NULL, metadata TEXT)")
        conn.executemany("INSERT INTO deploys (site_id, metadata) VALUES (?, 'm')", [(n % 5,) for n in range(40)])
    url = f"sqlite:///{target_db}"
    production = Policy(name="prod", approvers=("bob", "carol"), blocked=(r"(?i)^\s*drop\b",))
    staging = Policy(name="staging", approval_kinds=(), blocked=(r"(?i)^\s*drop\b",))
    targets = {"billing": Target("billing", url, "sqlite", "production", production),
               "billing-staging": Target("billing-staging", url, "sqlite", "staging", staging)}
    gate = LocalGate(store=store, approvals=ApprovalService.from_store(store), resolve_target=targets.__getitem__)
    votes = ApprovalService.from_store(store)

    def console(user: str, target: str, reason: str | None = None) -> ConsoleSession:
        session = ConsoleSession(gate, user=user, target=target, dialect="sqlite",
                                 environment=targets[target].environment)
        session.open_session(reason)
        return session

    def run(session: ConsoleSession, statement: str):
        return Submission(session, statement).start()

    ids: dict = {}
    alice = console("alice", "billing", "INC-42 stale deploy metadata")
    assert run(alice, "SELECT count(*) FROM deploys").result().status is Status.OK
    assert run(alice, HOSTILE).result().status is Status.OK
    write = run(alice, UPDATE)
    running.posted_approval(write.request_id)
    assert running.post(block_actions("countersign_approve", write.request_id, SLACK_USERS["bob"]))[0] == 200
    outcome = write.result()
    assert outcome.status is Status.OK and outcome.snapshot_id, outcome
    ids.update(alice=alice.session_id, snapshot=outcome.snapshot_id, write_request=write.request_id)
    alice.close()
    # `countersign snapshots restore`: a session of its own, one batch, one approval (carol's)
    restorer = console("alice", "billing", f"restore snapshot {outcome.snapshot_id}")
    restored = restore(restorer, outcome.snapshot_id, lambda request_id: votes.vote(
        request_id, "carol", "approve", comment="put it back"))
    assert [o.status for o in restored] == [Status.OK] * len(restored)
    ids["restorer"] = restorer.session_id
    restorer.close()

    dave = console("dave", "billing")
    rejected = run(dave, REJECTED)
    votes.vote(rejected.request_id, "carol", "reject", comment="wrong site")
    assert rejected.result().status is Status.REJECTED
    ids.update(dave=dave.session_id, rejected_request=rejected.request_id)
    dave.close()

    erin = console("erin", "billing-staging")
    assert run(erin, "DROP TABLE deploys").result().status is Status.BLOCKED
    assert run(erin, "UPDATE deploys SET metadata = 'staged' WHERE id = 2").result().status is Status.OK
    ids["erin"] = erin.session_id
    erin.close()

    ids["readers"] = []
    for n in range(READERS):
        carol = console("carol", "billing")
        assert run(carol, f"SELECT id FROM deploys WHERE id = {n + 1}").result().status is Status.OK
        ids["readers"].append(carol.session_id)
        carol.close()
    gate.close()
    return ids


def restore(session: ConsoleSession, snapshot_id: str, approve) -> tuple:
    """What `countersign snapshots restore` does: the plan's statements as one batch that marks the
    snapshot restored when it commits; `approve(request_id)` decides it while the batch waits."""
    plan = session.restore_plan(snapshot_id)
    asked, outcomes = threading.Event(), []

    def notify(event) -> None:
        if isinstance(event, Awaiting):
            outcomes.append(event.request_id)
            asked.set()
    runner = threading.Thread(target=lambda: outcomes.append(session.submit_batch(
        _classified(session, plan.statements), wait=30, notify=notify, restores=snapshot_id,
        purpose=f"restore of snapshot {snapshot_id}")), daemon=True)
    runner.start()
    assert asked.wait(30), "the restore never asked for approval"
    approve(outcomes[0])
    runner.join(60)
    assert not runner.is_alive(), "the restore did not finish"
    return outcomes[-1]


def pages_app(store: Store, *, auditors=("ada",)) -> tuple[Starlette, Tokens, Authenticator]:
    tokens = Tokens(store)
    authenticator = Authenticator(tokens, ServerSettings(auditors=tuple(auditors)))
    return Starlette(routes=routes(store, authenticator, engines=ENGINES, chain_ttl=0)), tokens, authenticator


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def trail(request, tmp_path_factory):
    """One filled store per backend for the module, served by the pages on a free port."""
    tmp = tmp_path_factory.mktemp("auditor")
    if request.param == "sqlite":
        store_url, cleanup = f"sqlite:///{tmp / 'store.db'}", None
    else:
        admin, name = servers.admin_pg_url(), servers.scratch_name("pages")
        store_url, cleanup = servers.create_pg_database(admin, name), (admin, name)
    try:
        migrated(store_url)
        with SlackEmulator() as slack:
            add_people(slack)
            store, service = start(slack, store_url)
            service.poster.start()
            try:
                with UvicornThread(service.asgi) as slack_app:
                    running = Running(slack, store, service, f"http://127.0.0.1:{slack_app.port}",
                                      ApprovalService.from_store(store))
                    ids = fill(store, tmp / "target.db", running)
                    wait_until(lambda: service.outbox.waiting() == 0, timeout=30)
            finally:
                service.poster.stop()
        app, tokens, _auth = pages_app(store)
        auditor = tokens.issue("ada", label="audit", lifetime=timedelta(hours=2), by="root").secret
        outsider = tokens.issue("bob", label="console", lifetime=timedelta(hours=2), by="root").secret
        with UvicornThread(app) as server:
            yield Trail(store_url, store, f"http://127.0.0.1:{server.port}/audit", auditor, outsider, **ids)
        store.dispose()
    finally:
        if cleanup:
            servers.drop_pg_database(*cleanup)


# -- HTTP with cookies, by hand ---------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: dict
    body: str
    cookies: list[str]

    def cookie(self, name: str) -> str | None:
        for line in self.cookies:
            parsed = SimpleCookie(line)
            if name in parsed:
                return line
        return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http(method: str, url: str, *, cookies: dict | None = None, form: dict | None = None,
         headers: dict | None = None) -> Reply:
    data = urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if form is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if cookies:
        request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
    try:
        with _OPENER.open(request, timeout=30) as response:
            return _reply(response, response.status)
    except urllib.error.HTTPError as err:
        return _reply(err, err.code)


def _reply(response, status: int) -> Reply:
    body = response.read().decode("utf-8", "replace")
    return Reply(status, {k.lower(): v for k, v in response.headers.items()}, body,
                 response.headers.get_all("Set-Cookie") or [])


def cleared(reply: Reply) -> bool:
    """The response tells the browser to forget the token cookie."""
    cookie = reply.cookie("countersign_audit") or ""
    return "Max-Age=0" in cookie or 'countersign_audit="";' in cookie


def signed_in(trail: Trail, token: str) -> dict:
    return {"countersign_audit": token, "countersign_audit_csrf": "c" * 43}


def get(trail: Trail, path: str, token: str | None = None, **kwargs) -> Reply:
    return http("GET", trail.url + path, cookies=signed_in(trail, token) if token else None, **kwargs)


def sign_in_form(trail: Trail) -> tuple[str, str]:
    """The sign-in page's CSRF token and the cookie it set."""
    page = http("GET", trail.url + "/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.body).group(1)
    assert page.cookie("countersign_audit_csrf") and token in page.cookie("countersign_audit_csrf")
    return token, token


def views(store: Store, **where) -> list[dict]:
    return [e.payload for e in store.events() if e.type == "auditor_view"
            and all(e.payload.get(k) == v for k, v in where.items())]


PAGES = ["/", "/sessions", "/sessions?wrote=1", "/approvals", "/approvals?status=all", "/snapshots", "/export"]


def every_page(trail: Trail) -> list[str]:
    return PAGES + [f"/sessions/{trail.alice}", f"/snapshots/{trail.snapshot}",
                    f"/sessions/{trail.alice}/transcript.txt", f"/sessions/{trail.alice}/events.jsonl",
                    "/export/trail.jsonl"]


# -- who may look -----------------------------------------------------------------------------------
def test_nobody_signed_in_is_sent_to_sign_in_and_sees_nothing(trail):
    for path in every_page(trail):
        reply = get(trail, path)
        assert reply.status == 303, path
        assert reply.headers["location"].startswith("/audit/login?next=%2Faudit"), path
        assert reply.body == "" and "alice" not in reply.body


def test_a_signed_in_person_who_is_not_an_auditor_gets_403_and_the_refusal_is_recorded(trail):
    before = len(views(trail.store, user="bob", allowed=False))
    for path in every_page(trail):
        reply = get(trail, path, trail.outsider)
        assert reply.status == 403, path
        assert "not an auditor" in reply.body
        assert "UPDATE deploys" not in reply.body and "chain" not in reply.body.lower().split("<main>")[1]
    assert len(views(trail.store, user="bob", allowed=False)) == before + len(every_page(trail))


def test_a_forged_expired_or_revoked_token_is_sent_back_to_sign_in(trail):
    tokens = Tokens(trail.store)
    revoked = tokens.issue("ada", label="soon revoked", lifetime=timedelta(hours=1), by="root")
    assert get(trail, "/sessions", revoked.secret).status == 200
    tokens.revoke(revoked.id, by="root")
    for token in (revoked.secret, trail.auditor[:-2] + "xx", "cs_" + "0" * 60, "<script>"):
        reply = get(trail, "/sessions", token)
        assert reply.status == 303 and reply.headers["location"].startswith("/audit/login")
        assert cleared(reply)


def test_sign_in_sets_an_httponly_samesite_strict_cookie_only_for_an_auditor(trail):
    csrf, _ = sign_in_form(trail)
    jar = {"countersign_audit_csrf": csrf}
    bad = http("POST", trail.url + "/login", cookies=jar, form={"csrf": csrf, "token": "cs_nope"})
    assert bad.status == 401 and bad.cookie("countersign_audit") is None and "not accepted" in bad.body
    outsider = http("POST", trail.url + "/login", cookies=jar, form={"csrf": csrf, "token": trail.outsider})
    assert outsider.status == 403 and outsider.cookie("countersign_audit") is None
    ok = http("POST", trail.url + "/login", cookies=jar,
              form={"csrf": csrf, "token": trail.auditor, "next": "/audit/approvals?status=all"})
    assert ok.status == 303 and ok.headers["location"] == "/audit/approvals?status=all"
    cookie = ok.cookie("countersign_audit")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/audit" in cookie
    assert "Secure" not in cookie            # plain http here; over https it is Secure (next test)
    assert views(trail.store, user="ada", path="/audit/login")


def test_the_cookie_is_secure_when_the_pages_are_served_over_https(trail):
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (a TLS-terminating proxy in front of it)
    https = {"X-Forwarded-Proto": "https"}
    page = http("GET", trail.url + "/login", headers=https)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.body).group(1)
    assert "Secure" in page.cookie("countersign_audit_csrf")
    ok = http("POST", trail.url + "/login", cookies={"countersign_audit_csrf": csrf},
              form={"csrf": csrf, "token": trail.auditor}, headers=https)
    assert ok.status == 303 and "Secure" in ok.cookie("countersign_audit")


def test_after_sign_in_it_goes_only_to_a_page_of_its_own(trail):
    csrf, _ = sign_in_form(trail)
    for wanted in ("https://evil.example/", "//evil.example/x", "/audit/../../evil", "/audit/%2E%2e/evil", "/elsewhere", "/audit\\@evil",
                   "/audit/\r\nSet-Cookie: x=1"):
        ok = http("POST", trail.url + "/login", cookies={"countersign_audit_csrf": csrf},
                  form={"csrf": csrf, "token": trail.auditor, "next": wanted})
        assert ok.status == 303 and ok.headers["location"] == "/audit/", wanted


def test_every_post_needs_its_csrf_token_and_this_origin(trail):
    csrf, _ = sign_in_form(trail)
    attempts = [
        ({}, {"token": trail.auditor}, {}),                                                  # no token at all
        ({"countersign_audit_csrf": csrf}, {"token": trail.auditor}, {}),                    # cookie, no field
        ({}, {"csrf": csrf, "token": trail.auditor}, {}),                                    # field, no cookie
        ({"countersign_audit_csrf": csrf}, {"csrf": csrf[:-1] + "A", "token": trail.auditor}, {}),
        ({"countersign_audit_csrf": csrf}, {"csrf": csrf, "token": trail.auditor}, {"Origin": "https://evil.example"}),
    ]
    for cookies, form, headers in attempts:
        reply = http("POST", trail.url + "/login", cookies=cookies, form=form, headers=headers)
        assert reply.status == 403 and reply.cookie("countersign_audit") is None, (cookies, form, headers)
    # Signing out without the token does nothing either
    session = {"countersign_audit": trail.auditor, "countersign_audit_csrf": csrf}
    assert http("POST", trail.url + "/logout", cookies=session, form={}).status == 403
    out = http("POST", trail.url + "/logout", cookies=session, form={"csrf": csrf})
    assert out.status == 303 and out.headers["location"] == "/audit/login"
    assert cleared(out)
    # A form that is not a form is refused
    raw = urllib.request.Request(trail.url + "/login", data=json.dumps({"token": trail.auditor}).encode(),
                                 method="POST", headers={"Content-Type": "application/json",
                                                         "Cookie": f"countersign_audit_csrf={csrf}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        _OPENER.open(raw, timeout=10)
    assert refused.value.code == 403


def test_no_get_changes_anything_but_the_record_of_the_view(trail):
    tables = ("cs_sessions", "cs_approval_requests", "cs_approval_votes", "cs_snapshots", "cs_api_tokens",
              "cs_slack_outbox")

    def counts():
        with trail.store.engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}
    before, seq = counts(), trail.store.events()[-1].seq
    for path in every_page(trail) + ["/login", "/logout?csrf=x", "/login?token=" + trail.auditor]:
        get(trail, path, trail.auditor)
    assert counts() == before
    assert {e.type for e in trail.store.events() if e.seq > seq} == {"auditor_view"}
    assert get(trail, "/logout", trail.auditor).status == 405
    login = get(trail, "/login?token=" + trail.auditor)
    assert login.status == 200 and login.cookie("countersign_audit") is None


# -- what every response carries ----------------------------------------------------------------------
def test_every_response_carries_the_security_headers(trail):
    replies = [get(trail, path, trail.auditor) for path in every_page(trail)]
    replies += [get(trail, "/sessions"), get(trail, "/sessions", trail.outsider), get(trail, "/nowhere", trail.auditor),
                get(trail, "/sessions/not-a-session", trail.auditor), http("GET", trail.url + "/login"),
                http("GET", trail.url + "/static/pages.css")]
    assert {r.status for r in replies} >= {200, 303, 403, 404}
    for reply in replies:
        assert reply.headers["content-security-policy"] == CSP
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "same-origin"
        assert reply.headers["x-frame-options"] == "DENY"
        assert reply.headers["cache-control"] == "no-store"


def test_no_page_holds_a_script_an_inline_style_or_a_foreign_resource(trail):
    for path in PAGES + [f"/sessions/{trail.alice}", f"/snapshots/{trail.snapshot}"]:
        body = get(trail, path, trail.auditor).body
        assert "<script" not in body.lower() and " style=" not in body and "javascript:" not in body.lower(), path
        assert not re.search(r'(src|href)="(https?:)?//(?!slack\.com/archives/)', body), path
        assert re.search(r' on[a-z]+=', body) is None, path


# -- every value escaped ----------------------------------------------------------------------------
def test_a_statement_with_markup_and_terminal_codes_is_shown_as_text(trail):
    body = get(trail, f"/sessions/{trail.alice}", trail.auditor).body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>" not in body and "\x1b" not in body and "\u202e" not in body
    assert "a\\u001b[2Jb\\u202ec" in body
    text_export = get(trail, f"/sessions/{trail.alice}/transcript.txt", trail.auditor)
    assert text_export.headers["content-type"].startswith("text/plain")
    assert "\x1b" not in text_export.body and "\u202e" not in text_export.body and "a\\u001b[2Jb" in text_export.body
    search = get(trail, "/sessions?" + urlencode({"q": "<script>alert(1)</script>", "person": '"><img src=x>'}),
                 trail.auditor).body
    assert "<img src=x>" not in search and "&lt;script&gt;" in search and "&#34;&gt;&lt;img src=x&gt;" in search


# -- viewing is recorded ------------------------------------------------------------------------------
def test_each_view_is_recorded_with_who_what_and_the_filters(trail):
    get(trail, "/sessions?person=dave&wrote=1", trail.auditor)
    recorded = views(trail.store, user="ada", path="/audit/sessions", query="person=dave&wrote=1")
    assert recorded and recorded[-1]["allowed"] is True and recorded[-1]["token_id"]
    typed = [e.event for e in trail.store.events() if e.type == "auditor_view"][-1]
    assert type(typed).__name__ == "AuditorViewEvent"


# -- the pages answer the four questions ------------------------------------------------------------
def test_the_session_page_tells_who_ran_what_who_approved_it_and_what_it_changed(trail):
    body = get(trail, f"/sessions/{trail.alice}", trail.auditor).body
    assert "INC-42 stale deploy metadata" in body and "alice" in body
    assert "UPDATE deploys SET metadata = &#39;cleared&#39; WHERE site_id = 3" in body
    assert re.search(r"<b>bob</b> approved\s+via slack \(Slack user <code>UBOB</code>\)", body)
    assert "8 row(s)" in body and trail.snapshot[:12] in body and ">restored<" in body
    assert "https://slack.com/archives/CAUDITLOG/p" in body       # the session's thread
    restore = get(trail, f"/sessions/{trail.restorer}", trail.auditor).body
    assert re.search(r"<b>carol</b> approved\s+via local", restore) and "put it back" in restore
    snapshot = get(trail, f"/snapshots/{trail.snapshot}", trail.auditor).body
    assert re.search(r"restored at [0-9: -]+ \(event \d+\) in session .*: requested by alice, approved by carol "
                     r"via local", snapshot)
    dave = get(trail, f"/sessions/{trail.dave}", trail.auditor).body
    assert "<b>carol</b> rejected" in dave and "wrong site" in dave and "status rejected" in dave


def test_the_lists_filter_and_page(trail):
    def listed(query: str) -> set[str]:
        body = get(trail, "/sessions?" + query, trail.auditor).body
        return set(re.findall(r'href="/audit/sessions/([0-9a-f-]{36})"', body))
    assert listed("person=dave") == {trail.dave}
    assert listed("wrote=1") == {trail.alice, trail.erin, trail.restorer}
    assert listed("refused=1") == {trail.dave, trail.erin}
    assert listed(urlencode({"q": "site_id = 1"})) == {trail.dave}
    assert listed("environment=staging") == {trail.erin}
    assert listed("engine=postgres") == set()
    today = datetime.now(timezone.utc).date()
    assert listed(f"from={today + timedelta(days=1)}") == set()
    first = get(trail, "/sessions?person=carol", trail.auditor).body
    older = re.search(r'href="(/audit/sessions\?after=[^"]+)"', first).group(1).replace("&amp;", "&")
    second = http("GET", trail.url.removesuffix("/audit") + older, cookies=signed_in(trail, trail.auditor)).body
    page1 = set(re.findall(r'href="/audit/sessions/([0-9a-f-]{36})"', first))
    page2 = set(re.findall(r'href="/audit/sessions/([0-9a-f-]{36})"', second))
    assert len(page1) == queries.PAGE_SIZE and page1.isdisjoint(page2) and page1 | page2 == set(trail.readers)
    approvals = get(trail, "/approvals?status=decided", trail.auditor).body
    assert trail.write_request in approvals and trail.rejected_request in approvals


# -- exports verify ------------------------------------------------------------------------------------
def check_chain_lines(lines: list[dict], key_path: Path | None = None) -> None:
    """What a third party does with an export: recompute every hash (and, holding the key, every keyed
    link) and follow every link; plain hashlib and json, nothing from Countersign but the key's HMAC."""
    for i, e in enumerate(lines):
        body = json.dumps({"id": e["id"], "session_id": e["session_id"], "ts": e["ts"], "type": e["type"],
                           "payload": e["payload"]}, sort_keys=True, separators=(",", ":"))
        assert hashlib.sha256((e["prev_hash"] + body).encode()).hexdigest() == e["hash"], e["seq"]
        if i:
            assert e["seq"] == lines[i - 1]["seq"] + 1 and e["prev_hash"] == lines[i - 1]["hash"], e["seq"]


def test_the_trail_export_is_audit_exports_format_and_verifies_as_a_chain(trail):
    newest = trail.store.events()[-1].seq
    reply = get(trail, "/export/trail.jsonl", trail.auditor)
    assert reply.status == 200 and "attachment" in reply.headers["content-disposition"]
    lines = reply.body.splitlines()
    events = [json.loads(line) for line in lines]
    assert events[0]["seq"] == 1 and events[-1]["seq"] == newest + 1     # up to the record of this very view
    assert events[-1]["type"] == "auditor_view" and events[-1]["payload"]["path"] == "/audit/export/trail.jsonl"
    check_chain_lines(events)
    key = load_key(trail.store.key_path())
    head = trail.store.event(1)
    with trail.store.engine.connect() as conn:
        store_id = conn.execute(text("SELECT store_id FROM cs_audit_chain_head")).scalar_one()
    prev = events[0]["prev_hash"]
    for e in events:
        assert e["link"] == key.link(store_id=store_id, seq=e["seq"], prev_link=prev, digest=e["hash"])
        prev = e["link"]
    assert head.hash == events[0]["hash"]
    cli = subprocess.run([sys.executable, "-m", "console.cli", "audit", "export", "--format", "jsonl"], cwd=REPO,
                         env={**os.environ, "COUNTERSIGN_STORE": trail.store_url}, capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.splitlines()[:len(lines)] == lines          # byte for byte what `audit export` writes
    tomorrow = datetime.now(timezone.utc).date() + timedelta(days=1)
    assert get(trail, f"/export/trail.jsonl?from={tomorrow}&to={tomorrow}", trail.auditor).body == ""


def test_a_session_exports_as_verifiable_json_lines_and_as_a_transcript(trail):
    events = [json.loads(line) for line in get(trail, f"/sessions/{trail.alice}/events.jsonl", trail.auditor)
              .body.splitlines()]
    assert {e["session_id"] for e in events} == {trail.alice}
    assert [e["seq"] for e in events] == [e.seq for e in trail.store.events(session_id=trail.alice)]
    for e in events:
        check_chain_lines([e])
    assert any(e["payload"].get("text") == HOSTILE for e in events)     # the real text, for re-verification
    transcript = get(trail, f"/sessions/{trail.alice}/transcript.txt", trail.auditor).body
    assert f"Countersign session {trail.alice}" in transcript and "person    alice" in transcript
    assert "approve by bob via slack (Slack user UBOB)" in transcript
    assert f"snapshot {trail.snapshot}: 8 row(s) of deploys (update), restored" in transcript


def test_the_partial_index_predicates_are_the_queries_own():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "m0006", REPO / "audit" / "migrations" / "versions" / "0006_auditor_page_indexes.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert (migration.WROTE, migration.REFUSED, migration.SNAPSHOT_EVENTS) == (
        queries.WROTE, queries.REFUSED, queries.SNAPSHOT_EVENTS)


# -- a broken chain is shown as broken -----------------------------------------------------------------
@pytest.fixture
def small_trail(store_url, tmp_path):
    """A store of its own to tamper with: alice's session with one read, through the pipeline."""
    store = Store.open(store_url)
    target = Target("billing", f"sqlite:///{tmp_path / 't.db'}", "sqlite", "production", Policy())
    gate = LocalGate(store=store, approvals=ApprovalService.from_store(store), resolve_target=lambda _: target)
    session = ConsoleSession(gate, user="alice", target="billing", dialect="sqlite", environment="production")
    session_id = session.open_session("a read")
    assert Submission(session, "SELECT 42").start().result().status is Status.OK
    session.close()
    app, tokens, _ = pages_app(store)
    token = tokens.issue("ada", label="audit", lifetime=timedelta(hours=1), by="root").secret
    with UvicornThread(app) as server:
        yield Trail(store_url, store, f"http://127.0.0.1:{server.port}/audit", token, "", alice=session_id)
    store.dispose()


def tamper(store: Store, seq: int, old: str, new: str) -> None:
    with store.engine.begin() as conn:
        payload = conn.execute(text("SELECT payload FROM cs_audit_events WHERE seq = :s"), {"s": seq}).scalar_one()
        conn.execute(text("UPDATE cs_audit_events SET payload = :p WHERE seq = :s"),
                     {"p": payload.replace(old, new), "s": seq})


def test_an_edited_event_shows_the_chain_broken_on_every_page_and_marks_the_command(small_trail):
    trail = small_trail
    assert 'class="chain intact"' in get(trail, "/", trail.auditor).body
    intent = next(e for e in trail.store.events(session_id=trail.alice) if e.type == "intent")
    tamper(trail.store, intent.seq, "SELECT 42", "SELECT 41")
    for path in PAGES + [f"/sessions/{trail.alice}"]:
        body = get(trail, path, trail.auditor).body
        assert 'class="chain broken"' in body, path
        assert f"Audit chain BROKEN at event {intent.seq}: event {intent.seq} (intent) was altered" in body, path
    session_page = get(trail, f"/sessions/{trail.alice}", trail.auditor).body
    assert f'tampered" id="event-{intent.seq}"' in session_page and "SELECT 41" in session_page
    assert "BROKEN at event" in get(trail, f"/sessions/{trail.alice}/transcript.txt", trail.auditor).body


def test_an_edited_row_outside_the_chain_shows_which_table(small_trail):
    trail = small_trail
    with trail.store.engine.begin() as conn:
        conn.execute(text("UPDATE cs_sessions SET \"user\" = 'mallory'"))
    body = get(trail, "/sessions", trail.auditor).body
    assert 'class="chain broken"' in body and "a row of cs_sessions disagrees with the trail" in body


@pytest.mark.parametrize("name", ["service.pages.queries", "service.pages.timeline", "service.pages.plots",
                                  "service.pages.params", "service.pages.templating", "service.pages.context",
                                  "service.pages.chain_state", "service.pages.views.overview"])
def test_the_pages_docstring_examples_hold(name):
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted and result.failed == 0, f"{result.failed} docstring example(s) in {name} fail"


def test_a_view_the_trail_cannot_record_is_not_shown(small_trail):
    """An insider who stops the trail from recording (here: the chain head row deleted) sees nothing."""
    trail = small_trail
    assert get(trail, f"/sessions/{trail.alice}", trail.auditor).status == 200
    with trail.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM cs_audit_chain_head"))
    for path in (f"/sessions/{trail.alice}", "/export/trail.jsonl", f"/sessions/{trail.alice}/events.jsonl"):
        reply = get(trail, path, trail.auditor)
        assert reply.status == 503 and "could not be recorded" in reply.body, path
        assert "SELECT 42" not in reply.body and trail.alice not in reply.body, path
