"""An approval runs only on the database its reviewers saw, as the SERVER reports it, on REAL servers.

The attacks: the configured target keeps its name while its URL is re-pointed at another database
(`?dbname=` on PostgreSQL, `?database=` on MariaDB, another SQLite file, another MongoDB database)
between the approval and its resume; a setting that changes what the statement means (search_path,
sql_mode) is changed in between; the store row's identity is edited with SQL; and a request that
expired on the store's clock is resumed at once by a client whose clock says it is fresh. Each must
run nothing, anywhere, and say which part differs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Callable
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from approvals import models
from approvals.service import ApprovalService
from approvals.slack.blocks import Card, request_blocks
from audit.store import Store
from config.settings import Policy
from console.commands.approvals import show_lines
from engines import open_driver
from gate import execute
from gate.api import Awaiting, Status
from gate.local import LocalGate
from snapshots import records
from tests import servers
from tests.pipeline_helpers import Clock, target_for
from tests.store_helpers import migrated

ROWS = [(i, f"site-{i % 4}", "ready") for i in range(1, 21)]     # 5 rows per site
SQL_UPDATE = "UPDATE deploys SET status = 'archived' WHERE site = 'site-1'"
MONGO_UPDATE = "db.deploys.updateMany({site: 'site-1'}, {$set: {status: 'archived'}})"


# -- the databases: A is what the reviewers approve, B is where the re-pointed name leads -------------
@dataclass
class Pair:
    """Two databases of one engine, and the URL that re-points the SAME target name from A to B."""
    dialect: str
    url_a: str
    url_b: str
    repointed: str                        # A's URL with one change that lands on B
    rows: Callable[[str], list[tuple]]    # the deploys rows of a database, read by the test itself
    update: str

    def unchanged(self) -> bool:
        return self.rows(self.url_a) == sorted(ROWS) and self.rows(self.url_b) == sorted(ROWS)


def _sql_fill(url: str) -> None:
    driver = open_driver(url)
    try:
        with driver.transaction(read_only=False) as tx:
            tx.execute("CREATE TABLE deploys (id INTEGER PRIMARY KEY, site VARCHAR(20) NOT NULL, status VARCHAR(20))")
            tx.execute("INSERT INTO deploys VALUES " + ", ".join(f"({i}, '{s}', '{st}')" for i, s, st in ROWS))
    finally:
        driver.close()


def _sql_rows(url: str, table: str = "deploys") -> list[tuple]:
    driver = open_driver(url)
    try:
        return sorted(tuple(r) for r in driver.read(f"SELECT id, site, status FROM {table}").rows)
    finally:
        driver.close()


def _with_query(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


@pytest.fixture
def postgres_pair(pg_url, pg_admin_url):
    name_b = servers.scratch_name("pgb")
    url_b = servers.create_pg_database(pg_admin_url, name_b)
    for url in (pg_url, url_b):
        _sql_fill(url)
    yield Pair("postgres", pg_url, url_b, _with_query(pg_url, f"dbname={name_b}"), _sql_rows, SQL_UPDATE)
    servers.drop_pg_database(pg_admin_url, name_b)


@pytest.fixture
def mysql_pair(mysql_url, mysql_admin_url):
    name_b = servers.scratch_name("myb")
    url_b = servers.create_mysql_database(mysql_admin_url, name_b)
    for url in (mysql_url, url_b):
        _sql_fill(url)
    yield Pair("mysql", mysql_url, url_b, _with_query(mysql_url, f"database={name_b}"), _sql_rows, SQL_UPDATE)
    servers.drop_mysql_database(mysql_admin_url, name_b)


@pytest.fixture
def sqlite_pair(tmp_path):
    url_a, url_b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    for url in (url_a, url_b):
        _sql_fill(url)
    return Pair("sqlite", url_a, url_b, url_b, _sql_rows, SQL_UPDATE)


def _mongo_url(server_url: str, database: str) -> str:
    return server_url.replace("/?", f"/{database}?", 1)


def _mongo_rows(url: str) -> list[tuple]:
    import pymongo
    client = pymongo.MongoClient(url)
    try:
        database = urlsplit(url).path.strip("/")
        return sorted((d["_id"], d["site"], d["status"]) for d in client[database].deploys.find())
    finally:
        client.close()


@pytest.fixture
def mongodb_pair(mongo_server_url):
    import pymongo
    names = [servers.scratch_name("mga"), servers.scratch_name("mgb")]
    client = pymongo.MongoClient(mongo_server_url)
    for name in names:
        client[name].deploys.insert_many([{"_id": i, "site": s, "status": st} for i, s, st in ROWS])
    url_a, url_b = (_mongo_url(mongo_server_url, name) for name in names)
    yield Pair("mongodb", url_a, url_b, url_b, _mongo_rows, MONGO_UPDATE)
    for name in names:
        client.drop_database(name)
    client.close()


@pytest.fixture(params=["postgres", "mysql", "sqlite", "mongodb"])
def pair(request) -> Pair:
    return request.getfixturevalue(f"{request.param}_pair")


# -- the control plane ---------------------------------------------------------------------------------
@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    opened = Store.open(migrated(f"sqlite:///{tmp_path / 'store.db'}"), clock=clock)
    yield opened
    opened.dispose()


@pytest.fixture
def reviewer(store):
    """Bob, in his own process as far as the store can tell, with a clock of his own that says it is
    still the moment the request was made (the gate's store clock is the one that counts)."""
    own = Store.open(store.url, clock=Clock())
    yield ApprovalService.from_store(own)
    own.dispose()


class Gate:
    """alice's in-process gate over a configuration the test edits: `targets[name]` is what the
    configuration says NOW, so re-pointing a target is one assignment, as editing the file would be."""

    def __init__(self, store: Store) -> None:
        self.targets: dict = {}
        self.gate = LocalGate(store=store, approvals=ApprovalService.from_store(store),
                              resolve_target=self.targets.__getitem__)
        self.opened: list[str] = []

    def point(self, url: str, policy: Policy | None = None) -> None:
        self.targets["prod"] = target_for(url, policy, name="prod")

    def session(self) -> str:
        session_id = self.gate.open_session("alice", "prod").id
        self.opened.append(session_id)
        return session_id

    def request(self, session_id: str, statement: str) -> Awaiting:
        (reply,) = self.gate.submit(session_id, statement)
        assert isinstance(reply, Awaiting), f"expected it to wait for approval, got {reply}"
        return reply

    def close(self) -> None:
        self.gate.close()


@pytest.fixture
def alice(store):
    gate = Gate(store)
    yield gate
    for record in records.list_snapshots(store.engine):   # MariaDB's snapshot database is shared
        if record.status == "complete":
            driver = open_driver(gate.targets["prod"].url)
            try:
                execute.snapshot_module(driver.dialect).discard(driver, record.location)
            finally:
                driver.close()
    gate.close()


# -- re-pointing the target's URL ------------------------------------------------------------------
def test_an_approval_does_not_follow_the_target_name_to_another_database(pair, alice, reviewer, store):
    alice.point(pair.url_a)
    first = alice.session()
    waiting = alice.request(first, pair.update)
    approved = reviewer.vote(waiting.request_id, "bob", "approve")
    assert approved.status is models.Status.APPROVED and approved.target_identity
    alice.gate.close_session(first)        # "Ctrl-C, I'll come back to it"

    alice.point(pair.repointed)             # same name in the configuration, another database behind it
    second = alice.session()
    (outcome,) = alice.gate.resume(second, waiting.request_id)

    assert outcome.status is Status.BLOCKED, outcome.message
    assert "db:" in outcome.message or "path:" in outcome.message, outcome.message
    assert "submit the statement again" in outcome.message
    assert pair.unchanged(), "the write ran on A or B"
    assert reviewer.get(waiting.request_id).status is models.Status.APPROVED   # still good where approved
    # Submitting it again there is a new request, shown with B's identity, not a reuse of A's approval.
    again = alice.request(second, pair.update)
    assert again.request_id != waiting.request_id and again.status == "pending"
    assert reviewer.get(again.request_id).target_identity != approved.target_identity


def test_the_approval_runs_where_it_was_approved(pair, alice, reviewer, store):
    alice.point(pair.url_a)
    first = alice.session()
    waiting = alice.request(first, pair.update)
    reviewer.vote(waiting.request_id, "bob", "approve")
    alice.gate.close_session(first)

    alice.point(pair.repointed)
    refused = alice.gate.resume(alice.session(), waiting.request_id)
    assert refused[0].status is Status.BLOCKED
    alice.point(pair.url_a)                 # back where the reviewers saw it: it runs, once
    (outcome,) = alice.gate.resume(alice.session(), waiting.request_id)

    assert outcome.status is Status.OK, outcome.message
    assert outcome.result.rowcount == 5
    assert sorted(r for r in pair.rows(pair.url_a) if r[2] == "archived") == \
        [(i, "site-1", "archived") for i in (1, 5, 9, 13, 17)]
    assert pair.rows(pair.url_b) == sorted(ROWS)
    used = reviewer.get(waiting.request_id)
    assert used.status is models.Status.USED
    requested = next(e.payload for e in store.events() if e.type == "approval"
                     and e.payload.get("event") == "requested" and e.payload["request_id"] == waiting.request_id)
    assert requested["target_identity"] == used.target_identity   # the trail records what was approved
    assert store.verify().ok


# -- what the server says, not what the URL says --------------------------------------------------
def test_each_engine_reports_its_identity_from_the_server(pair):
    a, b = open_driver(pair.url_a), open_driver(pair.repointed)
    try:
        ident_a, ident_b = a.server_identity(), b.server_identity()
        assert ident_a == a.server_identity(), "the identity must be stable"
    finally:
        a.close()
        b.close()
    engine = {"postgres": "postgresql", "mysql": "mysql", "sqlite": "sqlite", "mongodb": "mongodb"}[pair.dialect]
    assert ident_a.split()[0] == engine and ident_a != ident_b
    parts = dict(word.split("=", 1) for word in ident_a.split()[1:] if "=" in word)
    if pair.dialect == "postgres":
        assert parts["host"] == "127.0.0.1" or parts["host"].startswith(("::", "10.", "172.", "192.")), ident_a
        assert parts["db"] == urlsplit(pair.url_a).path.strip("/") and "system" in parts and "search_path" in ident_a
    elif pair.dialect == "mysql":
        assert parts["db"] == urlsplit(pair.url_a).path.strip("/") and parts["port"].isdigit()
        assert {"server_uuid", "server_uid", "server_id"} & set(parts) and "sql_mode" in parts
    elif pair.dialect == "sqlite":
        path = urlsplit(pair.url_a).path
        assert parts["path"] == os.path.realpath(path) and parts["ino"] == str(os.stat(path).st_ino)
    else:
        assert parts["db"] == urlsplit(pair.url_a).path.strip("/") and parts["host"]


def test_a_file_swapped_in_at_the_same_sqlite_path_is_another_database(sqlite_pair, alice, reviewer):
    """Same URL, same path: the reviewers approved the file that was there, not whatever is there now."""
    alice.point(sqlite_pair.url_a)
    first = alice.session()
    waiting = alice.request(first, SQL_UPDATE)
    reviewer.vote(waiting.request_id, "bob", "approve")
    alice.gate.close_session(first)
    path_a, path_b = urlsplit(sqlite_pair.url_a).path, urlsplit(sqlite_pair.url_b).path
    os.replace(path_a, path_a + ".moved")
    os.replace(path_b, path_a)              # B now lives at A's path

    (outcome,) = alice.gate.resume(alice.session(), waiting.request_id)
    assert outcome.status is Status.BLOCKED and "ino:" in outcome.message, outcome.message
    assert _sql_rows(sqlite_pair.url_a) == sorted(ROWS)
    assert _sql_rows(f"sqlite:///{path_a}.moved") == sorted(ROWS)


def test_without_pg_control_system_the_identity_still_names_server_and_database(pg_url, pg_admin_url):
    """A role that may not read the cluster's system_identifier gets an identity without it, silently."""
    import psycopg
    role = servers.scratch_name("role")
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    with psycopg.connect(pg_url, autocommit=True) as conn:   # in this scratch database only
        conn.execute("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC")
    try:
        parts = urlsplit(pg_url)
        driver = open_driver(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}").geturl())
        try:
            identity = driver.server_identity()
        finally:
            driver.close()
        assert "system=" not in identity and f"user={role}" in identity
        assert f"db={parts.path.strip('/')}" in identity
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_over_a_unix_socket_the_address_is_marked_as_the_clients(pg_url, pg_admin_url):
    """inet_server_addr() is NULL over a socket: the socket directory stands in, named as the client's."""
    import psycopg
    parts = urlsplit(pg_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        pytest.skip("the PostgreSQL server under test is not on this machine, so its socket is not reachable")
    with psycopg.connect(pg_admin_url) as conn:
        directory = conn.execute("SHOW unix_socket_directories").fetchone()[0].split(",")[0].strip()
    driver = open_driver(f"postgresql:///{parts.path.strip('/')}?host={directory}&user={parts.username or 'postgres'}")
    try:
        identity = driver.server_identity()
    finally:
        driver.close()
    assert f"url_host={directory}" in identity and "url_port=" in identity and " host=" not in identity


# -- session settings that change what the statement means ---------------------------------------
@pytest.mark.parametrize("engine, setting, part", [
    ("postgres", "SET search_path = shadow, public", "search_path:"),
    ("mysql", "SET sql_mode = 'ANSI_QUOTES'", "sql_mode:"),
])
def test_a_setting_changed_between_approval_and_resume_runs_nothing(engine, setting, part, request, reviewer):
    pair = request.getfixturevalue(f"{engine}_pair")
    alice = request.getfixturevalue("alice")   # after the pair: its snapshots are cleaned up before the databases go
    alice.point(pair.url_a)
    session = alice.session()
    write = alice.request(session, SQL_UPDATE)
    reviewer.vote(write.request_id, "bob", "approve")
    if engine == "postgres":   # the same name in another schema: what `deploys` resolves to after the SET
        driver = open_driver(pair.url_a)
        with driver.transaction(read_only=False) as tx:
            tx.execute("CREATE SCHEMA shadow")
            tx.execute("CREATE TABLE shadow.deploys AS SELECT * FROM public.deploys")
        driver.close()
    # A second, separately approved statement changes the session under the first approval.
    change = alice.request(session, setting)
    reviewer.vote(change.request_id, "bob", "approve")
    (changed,) = alice.gate.resume(session, change.request_id)
    assert changed.status is Status.OK, changed.message

    (outcome,) = alice.gate.resume(session, write.request_id)

    assert outcome.status is Status.BLOCKED and part in outcome.message, outcome.message
    assert "submit the statement again" in outcome.message
    assert pair.unchanged()
    if engine == "postgres":
        assert _sql_rows(pair.url_a, "shadow.deploys") == sorted(ROWS)


# -- the store row ---------------------------------------------------------------------------------
def test_an_identity_edited_in_the_store_is_refused(sqlite_pair, alice, reviewer, store):
    """Someone with write access to the store re-points the approved request at B by hand."""
    alice.point(sqlite_pair.url_b)
    probe = alice.session()
    identity_b = alice.gate._sessions[probe].driver.server_identity()
    alice.gate.close_session(probe)
    alice.point(sqlite_pair.url_a)
    first = alice.session()
    waiting = alice.request(first, SQL_UPDATE)
    reviewer.vote(waiting.request_id, "bob", "approve")
    alice.gate.close_session(first)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE cs_approval_requests SET target_identity = :identity WHERE id = :id"),
                     {"identity": identity_b, "id": waiting.request_id})

    alice.point(sqlite_pair.url_b)
    (outcome,) = alice.gate.resume(alice.session(), waiting.request_id)

    assert outcome.status is Status.BLOCKED and "altered after it was made" in outcome.message, outcome.message
    assert sqlite_pair.unchanged()


def test_an_identity_and_binding_both_rewritten_in_the_store_have_no_valid_votes(sqlite_pair, alice, reviewer, store):
    """The insider recomputes the binding too (it is a plain hash): the votes were cast on the old one."""
    alice.point(sqlite_pair.url_b)
    probe = alice.session()
    identity_b = alice.gate._sessions[probe].driver.server_identity()
    alice.gate.close_session(probe)
    alice.point(sqlite_pair.url_a)
    first = alice.session()
    waiting = alice.request(first, SQL_UPDATE)
    reviewer.vote(waiting.request_id, "bob", "approve")
    alice.gate.close_session(first)
    forged = models.binding(SQL_UPDATE, "prod", "alice", identity_b)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE cs_approval_requests SET target_identity = :identity, binding = :binding "
                          "WHERE id = :id"), {"identity": identity_b, "binding": forged, "id": waiting.request_id})

    alice.point(sqlite_pair.url_b)
    (outcome,) = alice.gate.resume(alice.session(), waiting.request_id)

    assert outcome.status is Status.BLOCKED and "votes do not add up" in outcome.message, outcome.message
    assert sqlite_pair.unchanged()


def test_a_request_made_before_identities_were_recorded_does_not_run(sqlite_pair, alice, reviewer, store):
    """A pending approval from before the upgrade never named a database: it is refused, not guessed."""
    alice.point(sqlite_pair.url_a)
    first = alice.session()
    waiting = alice.request(first, SQL_UPDATE)
    old_binding = models.binding(SQL_UPDATE, "prod", "alice")
    with store.engine.begin() as conn:   # what the row looks like after migrating a 0003 store
        conn.execute(text("UPDATE cs_approval_requests SET target_identity = NULL, binding = :binding "
                          "WHERE id = :id"), {"binding": old_binding, "id": waiting.request_id})
    reviewer.vote(waiting.request_id, "bob", "approve")

    (outcome,) = alice.gate.resume(first, waiting.request_id)

    assert outcome.status is Status.BLOCKED and "before approvals named the database" in outcome.message
    assert sqlite_pair.unchanged()


# -- expiry is the store's clock ------------------------------------------------------------------
def test_a_request_expired_on_the_stores_clock_does_not_run_when_resumed_at_once(sqlite_pair, alice, reviewer,
                                                                                  clock):
    alice.point(sqlite_pair.url_a, Policy(approval_lifetime=timedelta(minutes=5)))
    session = alice.session()
    waiting = alice.request(session, SQL_UPDATE)
    approved = reviewer.vote(waiting.request_id, "bob", "approve")   # bob's clock: the moment it was made
    assert approved.status is models.Status.APPROVED
    clock.advance(minutes=6)     # only the gate's store clock moves; nothing else waits or sleeps

    (outcome,) = alice.gate.resume(session, waiting.request_id)

    assert outcome.status is Status.EXPIRED, outcome.message
    assert sqlite_pair.unchanged()
    assert reviewer.get(waiting.request_id).status is models.Status.EXPIRED
    # The service's consume judges expiry itself; there is no time a caller could hand it.
    with pytest.raises(models.ExpiredError):
        ApprovalService.from_store(alice.gate.store).consume(
            waiting.request_id, statement=SQL_UPDATE, target="prod", requester="alice",
            target_identity=approved.target_identity)


# -- what reviewers see ----------------------------------------------------------------------------
def test_reviewers_see_the_identity_the_approval_binds_to(postgres_pair, alice, reviewer):
    alice.point(postgres_pair.url_a)
    waiting = alice.request(alice.session(), SQL_UPDATE)
    request = reviewer.get(waiting.request_id)
    database = urlsplit(postgres_pair.url_a).path.strip("/")

    shown = "\n".join(show_lines(request, reviewer.now()))
    assert f"runs on     {request.target_identity}" in shown and f"db={database}" in shown

    card = Card(request_id=request.id, requester=request.requester, target=request.target,
                environment=request.environment, statement=request.statement, kind=request.kind,
                reason=request.reason, rows=request.estimated_rows, rows_exact=request.rows_exact,
                approvals=0, required=1, approvers=None, expires_at=request.expires_at,
                identity=request.target_identity)
    texts = [b["text"]["text"] for b in request_blocks(card) if b.get("type") == "section" and "text" in b]
    assert any(t.startswith("*Runs on*") and f"db={database}" in t for t in texts)
    assert not any("Runs on" in t for t in
                   [b["text"]["text"] for b in request_blocks(replace(card, identity=None))
                    if b.get("type") == "section" and "text" in b])
