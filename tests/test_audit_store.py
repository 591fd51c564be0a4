"""The audit store on real backends (SQLite file and PostgreSQL): the hash chain, tampering, concurrency."""
from __future__ import annotations

import doctest
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

import console.commands.audit
import audit.store
from audit.schema import metadata
from audit.store import (GENESIS, Store, StoreUnavailable, UnknownSession, default_store_url, event_hash,
                         verify_chain)
from tests import servers

REPO = Path(__file__).resolve().parents[1]
BERLIN = timezone(timedelta(hours=2))  # a clock in another zone: the trail must still be UTC throughout


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 11, 0, 0, 250_000, tzinfo=BERLIN)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(store_url, clock):
    opened = Store.open(store_url, clock=clock)
    yield opened
    opened.dispose()


def record_session(store: Store, clock: Clock, statements: int = 2) -> str:
    session = store.start_session(user="alice", target="billing", environment="production", host="laptop",
                                  reason="INC-42")
    for n in range(statements):
        clock.advance(seconds=1)
        store.append(session, "intent", {"text": f"SELECT {n}", "kind": "read", "decision": "allow"})
        store.append(session, "outcome", {"text": f"SELECT {n}", "status": "ok", "rows": n})
    clock.advance(seconds=1)
    store.end_session(session)
    return session


def tamper(store: Store, sql: str, **params) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


# -- the chain ------------------------------------------------------------------------------------
def test_appended_events_form_a_chain_that_verifies(store, clock):
    session = record_session(store, clock)
    events = store.events()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e.type for e in events] == ["session_start", "intent", "outcome", "intent", "outcome", "session_end"]
    assert events[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(events, events[1:]))
    for e in events:  # what was stored is what was hashed, read back in UTC
        assert e.ts.tzinfo == timezone.utc
        assert e.hash == event_hash(e.prev_hash, id=e.id, session_id=e.session_id, ts=e.ts, type=e.type,
                                    payload=e.payload)
    assert events[0].ts == datetime(2026, 3, 1, 9, 0, 0, 250_000, tzinfo=timezone.utc)
    assert events[0].payload == {"user": "alice", "target": "billing", "environment": "production",
                                 "host": "laptop", "reason": "INC-42"}
    assert store.verify().ok and store.verify().checked == 6
    assert {e.session_id for e in store.events(session_id=session)} == {session}


def test_append_returns_the_stored_event_with_a_json_normalised_payload(store):
    recorded = store.append(None, "approval", {"event": "requested", "at": datetime(2026, 1, 1), "ids": (1, 2)})
    assert recorded.payload == {"event": "requested", "at": "2026-01-01 00:00:00", "ids": [1, 2]}
    assert store.events() == [recorded]


def test_events_since_a_time(store, clock):
    record_session(store, clock)
    since = datetime(2026, 3, 1, 9, 0, 2, tzinfo=timezone.utc)
    assert [e.seq for e in store.events(since=since)] == [4, 5, 6]
    assert [e.seq for e in store.events(since=since.astimezone(BERLIN))] == [4, 5, 6]


def test_editing_an_event_payload_is_detected_naming_its_seq(store, clock):
    record_session(store, clock)
    tamper(store, "UPDATE cs_audit_events SET payload = :p WHERE seq = 3",
           p='{"rows":1000,"status":"ok","text":"SELECT 0"}')  # it really touched 0 rows
    result = store.verify()
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 3, 2)
    assert "event 3" in result.problem and "altered" in result.problem


def test_editing_a_link_is_detected(store, clock):
    record_session(store, clock)
    tamper(store, "UPDATE cs_audit_events SET prev_hash = :h WHERE seq = 2", h=GENESIS)
    result = store.verify()
    assert (result.ok, result.first_broken_seq) == (False, 2)
    assert "does not link" in result.problem


def test_deleting_a_middle_event_is_detected(store, clock):
    record_session(store, clock)
    tamper(store, "DELETE FROM cs_audit_events WHERE seq = 4")
    result = store.verify()
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 4, 3)
    assert "missing" in result.problem


def test_deleting_the_last_event_is_detected(store, clock):
    record_session(store, clock)
    tamper(store, "DELETE FROM cs_audit_events WHERE seq = 6")
    result = store.verify()
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 6, 5)
    assert "newest events were deleted" in result.problem


def test_verify_chain_reports_a_head_that_disagrees_with_the_last_event(store, clock):
    record_session(store, clock)
    events = store.events()
    result = verify_chain(events, head_seq=6, head_hash="f" * 64)
    assert (result.ok, result.first_broken_seq) == (False, 6) and "chain head" in result.problem


def test_concurrent_appends_from_threads_keep_one_valid_chain(store):
    threads, each = 6, 15
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def appender(n: int) -> None:
        start.wait()
        try:
            for i in range(each):
                store.append(f"thread-{n}", "intent", {"text": f"SELECT {n}, {i}"})
        except BaseException as err:  # surfaced below: a thread's exception is otherwise lost
            failures.append(err)

    workers = [threading.Thread(target=appender, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    result = store.verify()
    assert result.ok, result.problem
    assert result.checked == threads * each
    assert [e.seq for e in store.events()] == list(range(1, threads * each + 1))


APPENDER = """
import sys
from audit.store import Store
store = Store.open(sys.argv[1], create=True)
for i in range(20):
    store.append(None, "intent", {"text": f"SELECT {i}", "process": sys.argv[2]})
store.dispose()
"""


def test_processes_opening_a_new_store_at_once_migrate_once_and_share_the_chain(new_store_url):
    """Two terminals, first run: both create the store and both record into it."""
    store_url = new_store_url
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, store_url, str(n)], cwd=REPO,
                              stderr=subprocess.PIPE, text=True) for n in range(3)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    store = Store.open(store_url)
    try:
        result = store.verify()
        assert result.ok and result.checked == 60, result.problem
        assert {e.payload["process"] for e in store.events()} == {"0", "1", "2"}
    finally:
        store.dispose()


# -- sessions -------------------------------------------------------------------------------------
def test_sessions_newest_first_with_their_command_count(store, clock):
    first = record_session(store, clock, statements=1)
    clock.advance(minutes=5)
    second = record_session(store, clock, statements=3)
    listed = store.sessions()
    assert [(s.id, s.commands) for s in listed] == [(second, 3), (first, 1)]
    assert listed[0].started_at == datetime(2026, 3, 1, 9, 5, 2, 250_000, tzinfo=timezone.utc)
    assert listed[0].ended_at == listed[0].started_at + timedelta(seconds=4)
    assert (listed[0].user, listed[0].environment, listed[0].reason) == ("alice", "production", "INC-42")


def test_a_session_is_found_by_id_or_unique_prefix(store_url, clock):
    ids = iter(["aaaa1111", "e1", "aaaa2222", "e2", "bbbb3333", "e3"])  # session, its start event, ...
    store = Store.open(store_url, clock=clock, new_id=lambda: next(ids))
    try:
        for _ in range(3):
            store.start_session(user="bob", target="t", environment="staging", host="h")
        assert store.session("bbbb").id == "bbbb3333"
        assert store.session("aaaa2222").id == "aaaa2222"
        assert store.session("bbbb3333").commands == 0 and store.session("bbbb3333").ended_at is None
        with pytest.raises(UnknownSession, match="several"):
            store.session("aaaa")
        with pytest.raises(UnknownSession, match="no session"):
            store.session("cccc")
        with pytest.raises(UnknownSession, match="at least 4"):
            store.session("bbb")
    finally:
        store.dispose()


def test_ending_a_session_twice_records_one_end(store, clock):
    session = record_session(store, clock, statements=0)
    store.end_session(session)
    assert [e.type for e in store.events(session_id=session)] == ["session_start", "session_end"]


# -- opening ----------------------------------------------------------------------------------------
def head_revision() -> str:
    from alembic.script import ScriptDirectory
    from audit.store import _alembic_config
    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()


def test_opening_twice_is_idempotent_and_keeps_the_trail(store_url, clock):
    first = Store.open(store_url, clock=clock)
    record_session(first, clock, statements=1)
    first.dispose()
    again = Store.open(store_url, clock=clock)
    try:
        assert again.verify().ok and again.verify().checked == 4
        with again.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head_revision()
            assert conn.execute(text("SELECT count(*) FROM cs_audit_chain_head")).scalar() == 1
    finally:
        again.dispose()


def test_the_migration_creates_exactly_the_schema(store):
    # The trigram search index exists only on PostgreSQL, and only where pg_trgm could be created.
    optional = {"ix_cs_audit_events_intent_trgm"}
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in differences if not (d[0] == "remove_index" and d[1].name in optional)] == []


def test_postgresql_urls_use_psycopg(store):
    if store.dialect == "postgresql":
        assert store.url.startswith("postgresql+psycopg://")
    else:
        assert store.dialect == "sqlite"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def test_a_postgresql_store_that_does_not_exist_is_unavailable(pg_admin_url):
    missing = servers.with_database(pg_admin_url, servers.scratch_name("missing"))
    with pytest.raises(StoreUnavailable, match="cannot open the store") as caught:
        Store.open(missing)
    assert "does not exist" in str(caught.value)


def test_a_sqlite_store_in_a_missing_directory_is_unavailable(tmp_path):
    with pytest.raises(StoreUnavailable, match="does not exist"):
        Store.open(f"sqlite:///{tmp_path / 'gone' / 'store.db'}")


def test_a_store_url_of_another_kind_is_unavailable():
    with pytest.raises(StoreUnavailable, match="SQLite or PostgreSQL"):
        Store.open("mysql://root@127.0.0.1/countersign")


def test_any_database_error_while_recording_raises_store_unavailable(store, clock):
    session = record_session(store, clock, statements=0)
    tamper(store, "DROP TABLE cs_audit_events")
    with pytest.raises(StoreUnavailable, match="could not record the intent event"):
        store.append(session, "intent", {"text": "DELETE FROM accounts"})
    with pytest.raises(StoreUnavailable):
        store.start_session(user="alice", target="t", environment="production", host="h")


def test_a_missing_chain_head_refuses_to_record(store, clock):
    tamper(store, "DELETE FROM cs_audit_chain_head")
    with pytest.raises(StoreUnavailable, match="chain head is missing"):
        store.append(None, "intent", {"text": "SELECT 1"})
    assert store.events() == []  # nothing half-recorded
    assert not store.verify().ok


def test_default_store_url(monkeypatch, tmp_path):
    monkeypatch.setenv("COUNTERSIGN_STORE", "postgresql://cs@db/countersign")
    assert default_store_url() == "postgresql://cs@db/countersign"
    monkeypatch.delenv("COUNTERSIGN_STORE")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_store_url() == f"sqlite:///{tmp_path / 'state' / 'countersign' / 'store.db'}"
    assert (tmp_path / "state" / "countersign").is_dir()


def test_docstring_examples_hold():
    """They pin the hash format an outside auditor relies on."""
    for module in (audit.store, console.commands.audit):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0
