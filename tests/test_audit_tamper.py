"""The audit trail against an insider with raw SQL on the store (SQLite file and PostgreSQL).

Each test does what someone who can write the store but does not hold the audit key would do, then
runs `audit verify` (the Store method and the CLI) and expects the tampering named. Before keyed
links, anchors and the row checks, every one of these trails verified as intact.
"""
from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from approvals.service import ApprovalService
from audit.anchors import Anchor, Anchoring, FileAnchors
from audit.keys import KEY_FILE_ENV
from audit.store import GENESIS, Store, StoreUnavailable, canonical_json, event_hash
from console.cli import main


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch) -> Path:
    """The audit key and the anchors go in this test's own state directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for name in (KEY_FILE_ENV, "COUNTERSIGN_AUDIT_ANCHOR_FILE", "COUNTERSIGN_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "state" / "countersign"


@pytest.fixture
def store(store_url, monkeypatch):
    monkeypatch.setenv("COUNTERSIGN_STORE", store_url)
    opened = Store.open(store_url, clock=Clock())
    yield opened
    opened.dispose()


def record_session(store: Store, user: str = "alice", statements: int = 2) -> str:
    session = store.start_session(user=user, target="billing", environment="production", host="laptop")
    for n in range(statements):
        store.append(session, "intent", {"text": f"DELETE FROM t WHERE id = {n}", "kind": "write",
                                         "decision": "allow"})
        store.append(session, "outcome", {"text": f"DELETE FROM t WHERE id = {n}", "status": "ok", "rows": 1})
    store.end_session(session)   # anchors the head: seq 2 * statements + 2
    return session


def sql(store: Store, statement: str, **params) -> None:
    """The insider: raw SQL on the store, in one transaction."""
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def rows(store: Store, statement: str, **params) -> list:
    with store.engine.connect() as conn:
        return conn.execute(text(statement), params).all()


def rewrite_head_to(store: Store, seq: int) -> None:
    """Point the head row at event ``seq``, as if the trail had always ended there."""
    (hash_, link), = rows(store, "SELECT hash, link FROM cs_audit_events WHERE seq = :s", s=seq)
    sql(store, "UPDATE cs_audit_chain_head SET last_seq = :s, last_hash = :h, last_link = :l", s=seq, h=hash_,
        l=link)


def recompute_unkeyed_chain(store: Store) -> None:
    """Recompute every hash and prev_hash with the published sha256 formula, and the head."""
    prev = GENESIS
    for seq, id_, session_id, type_, payload in rows(
            store, "SELECT seq, id, session_id, type, payload FROM cs_audit_events ORDER BY seq"):
        ts = next(e.ts for e in store.events() if e.seq == seq)
        digest = event_hash(prev, id=id_, session_id=session_id, ts=ts, type=type_, payload=json.loads(payload))
        sql(store, "UPDATE cs_audit_events SET prev_hash = :p, hash = :h WHERE seq = :s", p=prev, h=digest, s=seq)
        prev = digest
    sql(store, "UPDATE cs_audit_chain_head SET last_hash = :h", h=prev)


def cli_verify(capsys) -> tuple[int, list[str]]:
    code = main(["audit", "verify"])
    return code, capsys.readouterr().out.splitlines()


# -- (1) truncation -------------------------------------------------------------------------------------
def test_deleting_the_newest_events_and_rewriting_the_head_is_caught_by_the_anchor(store, capsys):
    record_session(store)                        # events 1-6, anchored at 6 when the session ended
    sql(store, "DELETE FROM cs_audit_events WHERE seq > 3")
    rewrite_head_to(store, 3)
    result = store.verify()
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 4, 3)
    assert result.problem.startswith("the trail ends at event 3 but was anchored at event 6 at 2026-03-01 09:00:")
    assert "events 4 to 6 were deleted" in result.problem
    code, out = cli_verify(capsys)
    assert code == 1 and out[0].startswith("audit trail BROKEN at event 4: the trail ends at event 3 but was "
                                           "anchored at event 6")


def test_truncating_back_past_an_anchor_made_by_audit_verify_is_caught(store, capsys):
    session = store.start_session(user="alice", target="billing", environment="production", host="laptop")
    store.append(session, "intent", {"text": "SELECT 1", "kind": "read", "decision": "allow"})
    assert cli_verify(capsys) == (0, ["audit trail intact: 2 events"])   # and anchors event 2
    sql(store, "DELETE FROM cs_audit_events WHERE seq = 2")
    rewrite_head_to(store, 1)
    code, out = cli_verify(capsys)
    assert code == 1 and "the trail ends at event 1 but was anchored at event 2" in out[0]


def test_an_empty_trail_that_was_anchored_is_caught(store):
    record_session(store, statements=0)
    sql(store, "DELETE FROM cs_audit_events")
    sql(store, "UPDATE cs_audit_chain_head SET last_seq = 0, last_hash = :g, last_link = NULL", g=GENESIS)
    result = store.verify()
    assert not result.ok and "the trail ends at event 0 but was anchored at event 2" in result.problem


# -- (2) a recomputed chain -------------------------------------------------------------------------------
def test_editing_an_event_and_recomputing_every_unkeyed_link_is_caught_by_the_keyed_link(store, state, capsys):
    record_session(store)
    sql(store, "UPDATE cs_audit_events SET payload = :p WHERE seq = 3",
        p=canonical_json({"text": "DELETE FROM t WHERE id = 0", "status": "ok", "rows": 0}))  # it deleted 1 row
    recompute_unkeyed_chain(store)
    for anchors in (state / "anchors").iterdir():   # even with every anchor gone
        anchors.unlink()
    result = store.verify()
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 3, 2)
    assert result.problem.startswith("event 3 (outcome) does not match its keyed link")
    code, out = cli_verify(capsys)
    assert code == 1 and out[0].startswith("audit trail BROKEN at event 3: event 3 (outcome) does not match its "
                                           "keyed link")
    assert out[2] == "  the 2 events before it are intact"


def test_stripping_the_keyed_links_and_recomputing_is_caught(store):
    record_session(store)
    sql(store, "UPDATE cs_audit_events SET link = NULL")
    sql(store, "UPDATE cs_audit_chain_head SET last_link = NULL")
    result = store.verify()
    assert (result.ok, result.first_broken_seq) == (False, 1)
    assert "event 1 (session_start) has no keyed link, but every event from event 1 must carry one" in result.problem


def test_stripping_the_keyed_links_and_moving_where_they_begin_is_caught_by_the_anchor(store):
    record_session(store)
    sql(store, "UPDATE cs_audit_events SET payload = :p WHERE seq = 3", p=canonical_json({"status": "ok"}))
    recompute_unkeyed_chain(store)
    sql(store, "UPDATE cs_audit_events SET link = NULL")
    sql(store, "UPDATE cs_audit_chain_head SET last_link = NULL, keyed_from = 1000")
    result = store.verify()
    assert (result.ok, result.first_broken_seq) == (False, 1)   # the session's first event was anchored too
    assert "event 1's link" in result.problem and "differs from the one anchored at 2026-03-01" in result.problem
    assert "the chain was recomputed" in result.problem


def test_a_trail_checked_with_another_key_is_not_intact(store, tmp_path):
    record_session(store)
    (tmp_path / "other.key").write_text("ab" * 32 + "\n")
    other = Store.open(store.url, key_file=tmp_path / "other.key")
    try:
        result = other.verify(anchor=False)
        assert (result.ok, result.first_broken_seq) == (False, 1)
        assert "does not match its keyed link" in result.problem and str(tmp_path / "other.key") in result.problem
    finally:
        other.dispose()


# -- (3) rows outside the chain ---------------------------------------------------------------------------
@pytest.fixture
def approvals(store):
    return ApprovalService.from_store(store)


def request_write(approvals: ApprovalService, session: str):
    return approvals.request(requester="alice", target="billing", environment="production",
                             statement="DELETE FROM invoices", kind="write", reason="DELETE without WHERE",
                             required_approvals=1, allowed_approvers=None, lifetime=timedelta(hours=1),
                             estimated_rows=40, rows_exact=True, session_id=session)


def test_turning_a_rejection_into_an_approval_in_the_votes_table_is_named(store, approvals, capsys):
    session = store.start_session(user="alice", target="billing", environment="production", host="laptop")
    request = request_write(approvals, session)
    approvals.vote(request.id, "bob", "reject", "not on a Friday")
    assert store.verify().ok
    sql(store, "UPDATE cs_approval_votes SET verdict = 'approve', comment = NULL WHERE approver = 'bob'")
    result = store.verify()
    assert (result.ok, result.table, result.first_broken_seq) == (False, "cs_approval_votes", None)
    assert result.problem.startswith(f"the vote by bob on approval request {request.id}: its verdict is 'approve' "
                                     "but event ")
    assert "(approval) recorded 'reject'" in result.problem
    code, out = cli_verify(capsys)
    assert code == 1 and out[0].startswith("audit trail BROKEN: a row of cs_approval_votes disagrees with the trail: "
                                           "the vote by bob")


def test_a_forged_vote_row_and_status_are_named(store, approvals):
    session = store.start_session(user="alice", target="billing", environment="production", host="laptop")
    request = request_write(approvals, session)
    sql(store, "INSERT INTO cs_approval_votes (request_id, approver, verdict, comment, binding, ts, source) "
               "VALUES (:r, 'bob', 'approve', NULL, :b, :ts, 'local')", r=request.id, b=request.binding,
        ts=datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc))
    result = store.verify()
    assert (result.ok, result.table) == (False, "cs_approval_votes")
    assert f"the vote by bob on approval request {request.id} has no `vote` event in the trail" in result.problem
    sql(store, "UPDATE cs_approval_requests SET status = 'approved'")
    result = store.verify()
    assert (result.ok, result.table) == (False, "cs_approval_requests")
    assert f"approval request {request.id}: its status is 'approved' but event" in result.problem
    assert "recorded 'pending'" in result.problem


def test_editing_a_requests_statement_is_named(store, approvals):
    request = request_write(approvals, store.start_session(user="alice", target="billing",
                                                           environment="production", host="laptop"))
    sql(store, "UPDATE cs_approval_requests SET statement = 'DELETE FROM invoices WHERE id = 1'")
    result = store.verify()
    assert (result.ok, result.table) == (False, "cs_approval_requests")
    assert (f"approval request {request.id}: its statement is 'DELETE FROM invoices WHERE id = 1' but event"
            in result.problem)


def test_editing_a_sessions_user_is_named(store, capsys):
    session = record_session(store)
    sql(store, 'UPDATE cs_sessions SET "user" = :u WHERE id = :s', u="bob", s=session)
    result = store.verify()
    assert (result.ok, result.table) == (False, "cs_sessions")
    assert result.problem == f"session {session}: its user is 'bob' but event 1 (session_start) recorded 'alice'"
    code, out = cli_verify(capsys)
    assert (code, out) == (1, [f"audit trail BROKEN: a row of cs_sessions disagrees with the trail: {result.problem}",
                               "  the 6 events of the trail are intact"])


def test_a_session_row_without_its_start_or_deleted_is_named(store):
    session = record_session(store)
    sql(store, 'INSERT INTO cs_sessions (id, "user", target, environment, host, reason, started_at) '
               "VALUES ('ghost', 'bob', 'billing', 'production', 'h', NULL, :t)",
        t=datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc))
    result = store.verify()
    assert not result.ok and "session ghost (bob) has no session_start event in the trail" in result.problem
    sql(store, "DELETE FROM cs_sessions")
    result = store.verify()
    assert not result.ok and f"session {session} is in the trail (event 1) but its row is missing" in result.problem


def snapshot_row(store: Store, sid: str, status: str, session: str | None, approval: str | None) -> None:
    sql(store, "INSERT INTO cs_snapshots (id, created_at, target, table_name, location, operation, key_columns, "
               "row_count, statement, approval_id, session_id, status) VALUES (:id, :t, 'billing', 'invoices', "
               "'cs.snap', 'delete', '[\"id\"]', 40, 'DELETE FROM invoices', :a, :s, :st)",
        id=sid, t=datetime(2026, 3, 1, tzinfo=timezone.utc), a=approval, s=session, st=status)


def test_snapshot_records_are_checked_against_the_commit_that_took_them(store):
    from audit.events import CommitEvent, SnapshotRestoredEvent
    session = store.start_session(user="alice", target="billing", environment="production", host="laptop")
    commit = store.append(session, CommitEvent(text="DELETE FROM invoices", kind="write", approval_id="a1",
                                               statements=1, rows=40, snapshot_ids=("snap-1",)))
    snapshot_row(store, "snap-1", "restored", session, "a1")
    store.append(session, SnapshotRestoredEvent(snapshot_id="snap-1", approval_id="a2"))
    assert store.verify().ok
    sql(store, "UPDATE cs_snapshots SET status = 'complete'")   # restorable again, a second time
    result = store.verify()
    assert (result.ok, result.table) == (False, "cs_snapshots")
    assert "snapshot snap-1: its status is 'complete' but event 3 (snapshot) recorded 'restored'" in result.problem
    sql(store, "UPDATE cs_snapshots SET status = 'restored', approval_id = 'a9'")
    result = store.verify()
    assert (result.ok, result.table) == (False, "cs_snapshots")
    assert (f"snapshot snap-1: its approval_id is 'a9' but event {commit.seq} (commit) recorded 'a1'"
            in result.problem)


def test_a_snapshot_record_no_commit_names_is_named(store):
    store.start_session(user="alice", target="billing", environment="production", host="laptop")
    snapshot_row(store, "snap-x", "pending", None, None)   # a write that never committed: nothing to check
    assert store.verify().ok
    sql(store, "UPDATE cs_snapshots SET status = 'complete'")
    result = store.verify()
    assert (result.ok, result.table) == (False, "cs_snapshots")
    assert "snapshot snap-x (complete) is named by no commit event in the trail" in result.problem


# -- old trails, the anchors, the files ------------------------------------------------------------------
def test_an_unkeyed_trail_from_before_keyed_links_still_verifies_and_new_events_are_keyed(new_store_url, capsys,
                                                                                           monkeypatch):
    from alembic import command
    from audit.store import _alembic_config
    old = Store._connect(new_store_url, None, None)
    with old._transaction() as conn:
        command.upgrade(_alembic_config(conn), "0002")
        prev, ts = GENESIS, datetime(2026, 1, 1, tzinfo=timezone.utc)
        for seq in (1, 2, 3):   # written as countersign wrote them before migration 0003
            digest = event_hash(prev, id=f"e{seq}", session_id=None, ts=ts, type="intent", payload={"n": seq})
            conn.execute(text("INSERT INTO cs_audit_events (seq, id, session_id, ts, type, payload, prev_hash, hash) "
                              "VALUES (:s, :i, NULL, :ts, 'intent', :p, :prev, :h)"),
                         {"s": seq, "i": f"e{seq}", "ts": ts, "p": canonical_json({"n": seq}), "prev": prev,
                          "h": digest})
            prev = digest
        conn.execute(text("UPDATE cs_audit_chain_head SET last_seq = 3, last_hash = :h"), {"h": prev})
    old.dispose()
    Store.upgrade(new_store_url)
    monkeypatch.setenv("COUNTERSIGN_STORE", new_store_url)
    store = Store.open(new_store_url)
    try:
        assert (store.verify().ok, store.verify().unkeyed) == (True, 3)
        store.append(None, "intent", {"n": 4})
        assert [e.link is None for e in store.events()] == [True, True, True, False]
        assert cli_verify(capsys) == (0, ["audit trail intact: 4 events (the first 3 predate keyed links: only "
                                          "their unkeyed hashes were checked)"])
        sql(store, "UPDATE cs_audit_events SET link = NULL WHERE seq = 4")
        result = store.verify()
        assert (result.ok, result.first_broken_seq) == (False, 4) and "has no keyed link" in result.problem
    finally:
        store.dispose()


def test_the_head_is_anchored_every_so_many_events_and_when_forced(tmp_path):
    sink = FileAnchors(tmp_path / "anchors.jsonl")
    anchoring = Anchoring(sink, every_events=3, every_seconds=60)
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
    for seq in range(1, 9):
        anchoring.head_moved("s1", seq, f"link{seq}", t0 + timedelta(seconds=seq))
    anchoring.head_moved("s1", 9, "link9", t0 + timedelta(seconds=9), force=True)
    anchoring.head_moved("s1", 10, "link10", t0 + timedelta(seconds=200))   # a quiet minute passed
    assert [a.seq for a in sink.anchors()] == [1, 4, 7, 9, 10]
    assert sink.anchors()[0] == Anchor("s1", 1, "link1", t0 + timedelta(seconds=1))


def test_a_sink_plugs_in_behind_the_anchor_interface(store_url, tmp_path):
    class Channel:   # the shape a Slack audit channel takes: publish and read back
        where = "#audit"

        def __init__(self) -> None:
            self.posted: list[Anchor] = []

        def publish(self, anchor: Anchor) -> None:
            self.posted.append(anchor)

        def anchors(self) -> list[Anchor]:
            return list(self.posted)

    channel = Channel()
    store = Store.open(store_url, clock=Clock(), anchors=channel)
    try:
        record_session(store)
        assert [a.seq for a in channel.posted] == [1, 6]
        sql(store, "DELETE FROM cs_audit_events WHERE seq > 4")
        rewrite_head_to(store, 4)
        result = store.verify()
        assert not result.ok and "anchored at event 6" in result.problem and "(in #audit)" in result.problem
    finally:
        store.dispose()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_key_and_anchor_files_are_created_0600(tmp_path, state):
    previous = os.umask(0o022)   # the usual umask, under which files come out world-readable
    try:
        url = f"sqlite:///{tmp_path / 'store.db'}"
        Store.upgrade(url)
        store = Store.open(url)
        try:
            record_session(store)
            files = [tmp_path / "store.db", tmp_path / "store.db-wal", tmp_path / "store.db-shm",
                     state / "audit.key", *(state / "anchors").iterdir()]
            assert all(f.exists() for f in files) and len(files) == 5
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
            assert mode(state) == 0o700
        finally:
            store.dispose()
    finally:
        os.umask(previous)


def test_a_missing_key_for_a_keyed_trail_refuses_to_record_and_verify_warns(store, state, capsys):
    record_session(store)
    (state / "audit.key").unlink()
    fresh = Store.open(store.url)
    try:
        with pytest.raises(StoreUnavailable, match="audit key .* is missing, but this trail's links were made"):
            fresh.append(None, "intent", {"text": "SELECT 1"})
    finally:
        fresh.dispose()
    code, out = cli_verify(capsys)
    assert code == 0 and out[0] == "audit trail intact: 6 events"
    assert out[1].startswith("  warning: the keyed links were NOT checked: there is no audit key at ")
