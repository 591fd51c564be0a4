"""The whole pipeline on REAL PostgreSQL, MariaDB and SQLite targets with a real store: request, a second
person's approval, guarded execution, snapshot and audit — and every way it must refuse."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from approvals import models
from approvals.service import ApprovalService
from audit.store import Store, StoreUnavailable
from gate.api import Status
from config.settings import Policy
from classify.statements import Kind, Statement
from snapshots import records
from tests.pipeline_helpers import Clock, Submission, local_gate, make_pipeline, target_driver
from tests.store_helpers import migrated

pytestmark = pytest.mark.usefixtures("gate_mode")   # in process, and through JSON

ROWS = [(i, f"site-{i % 4}", "ready") for i in range(1, 21)]     # 5 rows per site
UPDATE = "UPDATE deploys SET status = 'archived' WHERE site = 'site-1'"


@pytest.fixture(params=["postgres", "mysql", "sqlite"])
def target_url(request):
    url = request.getfixturevalue({"postgres": "pg_url", "mysql": "mysql_url", "sqlite": "sqlite_url"}[request.param])
    from engines import open_driver
    driver = open_driver(url)
    with driver.transaction(read_only=False) as tx:
        tx.execute("CREATE TABLE deploys (id INTEGER PRIMARY KEY, site VARCHAR(20) NOT NULL, status VARCHAR(20))")
        tx.execute("INSERT INTO deploys VALUES " + ", ".join(f"({i}, '{s}', '{st}')" for i, s, st in ROWS))
    driver.close()
    return url


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    opened = Store.open(migrated(f"sqlite:///{tmp_path / 'store.db'}"), clock=clock)
    yield opened
    opened.dispose()


@pytest.fixture
def reviewer(store, tmp_path, clock):
    """Bob, in his own process as far as the store can tell: his own Store and connections."""
    own = Store.open(store.url, clock=clock)
    yield ApprovalService.from_store(own)
    own.dispose()


@pytest.fixture
def pipeline(target_url, store):
    """alice's pipeline on the target; afterwards every snapshot it took is dropped again (on MariaDB
    snapshots live in a database shared by all scratch databases)."""
    from snapshots import capture
    made = []

    def build(**policy):
        p = make_pipeline(target_url, store, "alice", Policy(**policy) if policy else None)
        p.open_session("testing")
        made.append(p)
        return p
    yield build
    cleaner = make_pipeline(target_url, store, "cleanup")
    for record in records.list_snapshots(store.engine):
        capture.discard(target_driver(cleaner), record.location)
    target_driver(cleaner).close()
    for p in made:
        try:
            p.close()
        except StoreUnavailable:
            pass   # a test broke the store on purpose; the session's end cannot be recorded
        target_driver(p).close()


def table(p) -> list[tuple]:
    with target_driver(p).transaction(read_only=True) as tx:
        return sorted(tuple(r) for r in tx.execute("SELECT id, site, status FROM deploys").rows)


def events(store, session_id) -> list[tuple[str, dict]]:
    return [(e.type, e.payload) for e in store.events(session_id=session_id)]


def test_a_write_waits_for_a_second_person_then_runs_with_a_snapshot_and_is_audited(pipeline, store, reviewer):
    p = pipeline()
    before = table(p)
    run = Submission(p, UPDATE + ";").start()
    assert run.request_id
    waiting = run.events[0]
    assert waiting.estimated_rows == 5 and waiting.rows_exact is True
    assert table(p) == before                                       # nothing ran before the approval
    reviewer.vote(run.request_id, "bob", "approve")
    outcome = run.result()
    assert outcome.status is Status.OK, outcome.message
    assert outcome.result.rowcount == 5 and outcome.approval_id == run.request_id
    assert sorted(r for r in table(p) if r[2] == "archived") == [(i, "site-1", "archived") for i in (1, 5, 9, 13, 17)]
    snapshot = records.get(store.engine, outcome.snapshot_id)
    assert (snapshot.status, snapshot.row_count, snapshot.approval_id) == ("complete", 5, run.request_id)
    kinds = [t for t, _ in events(store, p.session_id)]
    assert kinds[0] == "session_start"
    assert kinds.index("intent") < kinds.index("execute") < kinds.index("commit") < kinds.index("outcome")
    outcome_event = [payload for t, payload in events(store, p.session_id) if t == "outcome"][-1]
    assert (outcome_event["status"], outcome_event["rows"], outcome_event["snapshot_id"]) == ("ok", 5, snapshot.id)
    approval_events = [e.payload["event"] for e in store.events() if e.type == "approval"]
    assert approval_events[:3] == ["requested", "vote", "approved"] and "used" in approval_events
    assert store.verify().ok


def test_the_requester_can_never_approve_their_own_request(pipeline, store):
    p = pipeline()
    run = Submission(p, UPDATE, wait=30).start()
    own = ApprovalService.from_store(store)
    with pytest.raises(models.SelfApprovalError, match="cannot vote on their own request"):
        own.vote(run.request_id, "alice", "approve")
    assert own.get(run.request_id).status is models.Status.PENDING
    run.cancel.set()
    assert run.result().status is Status.CANCELLED
    assert table(p) == sorted(ROWS)


def test_an_approval_whose_stored_text_was_edited_is_refused(pipeline, store, reviewer):
    p = pipeline()
    run = Submission(p, UPDATE).start()
    request_id = run.request_id
    # Someone with access to the store swaps the approved text for a wider write.
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE cs_approval_requests SET statement = :s WHERE id = :id"),
                     {"s": "UPDATE deploys SET status = 'archived'", "id": request_id})
    reviewer.vote(request_id, "bob", "approve")
    outcome = run.result()
    assert outcome.status is Status.BLOCKED and "altered after it was made" in outcome.message
    assert table(p) == sorted(ROWS)


def test_an_approval_covers_exactly_its_text(pipeline, store, reviewer):
    p = pipeline()
    first = Submission(p, UPDATE).start()
    reviewer.vote(first.request_id, "bob", "approve")
    assert first.result().status is Status.OK
    # The same statement again needs a fresh approval (used once), and so does a variant of it.
    for again in (UPDATE, UPDATE.replace("site-1", "site-2")):
        run = Submission(p, again, wait=0).start()
        assert run.result().status is Status.PENDING and run.request_id != first.request_id


def test_an_expired_approval_does_not_run(pipeline, store, reviewer, clock):
    p = pipeline(approval_lifetime=timedelta(minutes=5))
    run = Submission(p, UPDATE, wait=0).start()
    request_id = run.request_id
    assert run.result().status is Status.PENDING
    reviewer.vote(request_id, "bob", "approve")
    clock.advance(minutes=6)
    outcome = Submission(p, UPDATE, wait=0).start().result()
    assert outcome.status is Status.PENDING and outcome.approval_id != request_id   # a new request
    assert reviewer.get(request_id).status is models.Status.EXPIRED
    assert table(p) == sorted(ROWS)


def test_a_rejection_stops_the_write_and_carries_the_reason(pipeline, store, reviewer):
    p = pipeline()
    run = Submission(p, UPDATE).start()
    reviewer.vote(run.request_id, "bob", "reject", comment="use the migration tool")
    outcome = run.result()
    assert outcome.status is Status.REJECTED and "use the migration tool" in outcome.message
    assert table(p) == sorted(ROWS)


def test_two_of_m_runs_only_after_the_second_distinct_approval(pipeline, store, reviewer, clock):
    p = pipeline(approvals=2)
    run = Submission(p, UPDATE).start()
    reviewer.vote(run.request_id, "bob", "approve")
    assert reviewer.get(run.request_id).status is models.Status.PENDING and table(p) == sorted(ROWS)
    reviewer.vote(run.request_id, "carol", "approve")
    assert run.result().status is Status.OK


def run_as_read(p, lie: Statement):
    """The gate's own read path, handed a statement the classifier got wrong (the gate classifies
    every text itself, so no caller can hand it one: this reaches behind it to test the backstop)."""
    from gate.policy import Allow, Limits
    gate = local_gate(p)
    return gate._run_allowed(gate._sessions[p.session_id], lie, Allow("pretend read", Limits(60_000, 1000)))


def test_the_gate_classifies_the_text_itself(pipeline, store):
    p = pipeline()
    lie = Statement(0, "DELETE FROM deploys WHERE site = 'site-1'", Kind.READ, False, "pretend read",
                    ("deploys",), None)
    outcome = p.submit(lie, wait=0)
    assert outcome.status is Status.PENDING and table(p) == sorted(ROWS)


def test_a_misclassified_write_sent_as_a_read_is_refused_by_the_server(pipeline, store):
    p = pipeline()
    lie = Statement(0, "DELETE FROM deploys WHERE site = 'site-1'", Kind.READ, False, "pretend read",
                    ("deploys",), None)
    outcome = run_as_read(p, lie)
    assert outcome.status is Status.FAILED and "read-only transaction" in outcome.message
    assert table(p) == sorted(ROWS)
    recorded = [payload for t, payload in events(store, p.session_id) if t == "outcome"][-1]
    assert recorded["status"] == "failed" and "read-only" in recorded["error"]


def test_a_multi_statement_string_never_reaches_the_server_as_one(pipeline, store):
    p = pipeline()
    smuggled = Statement(0, "SELECT 1; DELETE FROM deploys", Kind.READ, False, "pretend read", (), None)
    assert run_as_read(p, smuggled).status is Status.FAILED
    assert table(p) == sorted(ROWS)


def test_when_the_audit_store_cannot_record_nothing_runs(pipeline, store):
    p = pipeline(approval_kinds=())    # writes would run without approval ...
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM cs_audit_chain_head"))   # ... but the trail cannot be extended
    statement = p.classify("DELETE FROM deploys WHERE site = 'site-1'")[0]
    outcome = p.submit(statement)
    assert outcome.status is Status.FAILED and outcome.message.startswith("not run: the audit store")
    assert table(p) == sorted(ROWS)


def test_a_write_wider_than_approved_rolls_back_with_its_snapshot(pipeline, store, reviewer):
    p = pipeline()
    run = Submission(p, UPDATE).start()
    request_id = run.request_id
    with target_driver(p).transaction(read_only=False) as tx:       # rows matching the predicate appear
        tx.execute("INSERT INTO deploys VALUES (101, 'site-1', 'ready'), (102, 'site-1', 'ready')")
    reviewer.vote(request_id, "bob", "approve")
    outcome = run.result()
    assert outcome.status is Status.ROLLED_BACK and "touched 7 rows but 5 were approved" in outcome.message
    assert [r for r in table(p) if r[2] == "archived"] == []
    snapshot = records.list_snapshots(store.engine)[0]
    assert snapshot.status == "discarded" and not snapshot.restorable


def test_policy_blocks_and_row_caps_refuse_before_any_request(pipeline, store):
    p = pipeline(blocked=(r"\bDROP\s+TABLE\b",), max_write_rows=3)
    dropped = p.submit(p.classify("DROP TABLE deploys")[0])
    assert dropped.status is Status.BLOCKED and "blocked by policy" in dropped.message
    capped = p.submit(p.classify(UPDATE)[0])
    assert capped.status is Status.BLOCKED and "over the policy's cap of 3" in capped.message
    assert ApprovalService.from_store(store).list() == []
    assert table(p) == sorted(ROWS)


def test_cancelling_the_wait_leaves_the_request_open(pipeline, store):
    p = pipeline()
    run = Submission(p, UPDATE).start()
    request_id = run.request_id
    run.cancel.set()
    outcome = run.result()
    assert outcome.status is Status.CANCELLED and "stays open" in outcome.message
    assert [r.id for r in p.pending()] == [request_id]


def test_reads_run_at_once_and_are_audited(pipeline, store):
    p = pipeline()
    outcome = p.submit(p.classify("SELECT site, count(*) AS n FROM deploys GROUP BY site ORDER BY site")[0])
    assert outcome.status is Status.OK
    assert outcome.result.columns == ("site", "n") and [tuple(r) for r in outcome.result.rows][0] == ("site-0", 5)
    kinds = [t for t, _ in events(store, p.session_id)]
    assert kinds == ["session_start", "intent", "outcome"]
    session_id = p.session_id
    p.close_session()
    assert [t for t, _ in events(store, session_id)][-1] == "session_end"


def test_a_cancel_that_lands_as_the_approval_arrives_runs_nothing(pipeline, store, reviewer):
    p = pipeline()
    first = Submission(p, UPDATE, wait=0).start()
    request_id = first.request_id
    assert first.result().status is Status.PENDING
    reviewer.vote(request_id, "bob", "approve")
    again = Submission(p, UPDATE)
    again.cancel.set()
    outcome = again.start().result()
    assert outcome.status is Status.CANCELLED and table(p) == sorted(ROWS)
    assert reviewer.get(request_id).status is models.Status.APPROVED      # still usable, not used up


def test_pending_lists_only_this_sessions_requests(pipeline, store):
    earlier = pipeline()
    Submission(earlier, UPDATE, wait=0).start().result()
    earlier.close_session()
    later = pipeline()
    assert later.pending() == []
    run = Submission(later, UPDATE.replace("site-1", "site-2"), wait=0).start()
    rid = run.request_id
    assert [r.id for r in later.pending()] == [rid]
