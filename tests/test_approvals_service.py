"""The approval service on real stores (SQLite file and PostgreSQL): votes, consume, races, waiting."""
from __future__ import annotations

import itertools
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from approvals import models
from approvals.models import Status
from approvals.service import ApprovalService
from audit.events import ApprovalEvent, Event
from audit.schema import approval_requests, approval_votes, metadata

SQL = "DELETE FROM deploys WHERE site_id = 3"


class Clock:
    """A clock the test moves by hand: expiry without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> None:
        self.now += timedelta(**kwargs)


class Harness:
    """A service on a real store, with a hand-moved clock and the audit events it recorded."""

    def __init__(self, url: str, clock: Clock | None = None, poll_interval: float = 0.25) -> None:
        self.engine = sa.create_engine(url)
        metadata.create_all(self.engine)
        self.clock = clock or Clock()
        self.events: list[tuple[str | None, Event]] = []
        self.service = self.another(poll_interval)

    def another(self, poll_interval: float = 0.25, engine: sa.Engine | None = None) -> ApprovalService:
        """A second service on the same store (its own engine = its own connections)."""
        engine = engine or self.engine
        return ApprovalService(engine, clock=self.clock, new_id=lambda: uuid.uuid4().hex,
                               record=lambda *event: self.events.append(event), poll_interval=poll_interval)

    def request(self, service: ApprovalService | None = None, **overrides) -> models.ApprovalRequest:
        fields = dict(requester="alice", target="prod", environment="production", statement=SQL, kind="write",
                      reason="writes need approval", required_approvals=1, allowed_approvers=None,
                      lifetime=timedelta(minutes=30), estimated_rows=25, rows_exact=True, session_id="s-1")
        fields.update(overrides)
        return (service or self.service).request(**fields)

    def stored(self, request_id: str) -> tuple[str, int]:
        """Status and vote count as the store holds them, read past the service."""
        with self.engine.connect() as conn:
            status = conn.execute(sa.select(approval_requests.c.status)
                                  .where(approval_requests.c.id == request_id)).scalar_one()
            votes = conn.execute(sa.select(sa.func.count()).select_from(approval_votes)
                                 .where(approval_votes.c.request_id == request_id)).scalar_one()
        return status, votes

    def actions(self, request_id: str) -> list[str]:
        return [e.event for _, e in self.events if isinstance(e, ApprovalEvent) and e.request_id == request_id]


@pytest.fixture
def h(store_url):
    harness = Harness(store_url)
    yield harness
    harness.engine.dispose()


def consume(service: ApprovalService, request_id: str, statement: str = SQL, target: str = "prod",
            requester: str = "alice") -> models.ApprovalRequest:
    return service.consume(request_id, statement=statement, target=target, requester=requester)


# -- the whole flow -----------------------------------------------------------------------------
def test_request_approve_by_a_second_person_then_consume_once(h):
    created = h.request()
    assert created.status is Status.PENDING and created.binding == models.binding(SQL, "prod", "alice")
    loaded = h.service.get(created.id)
    assert loaded == created
    approved = h.service.vote(created.id, "bob", "approve", comment="looks right")
    assert approved.status is Status.APPROVED and approved.votes[0].comment == "looks right"
    used = consume(h.service, created.id)
    assert used.status is Status.USED and used.used_at == h.clock.now
    assert h.stored(created.id) == ("used", 1)
    assert h.actions(created.id) == ["requested", "vote", "approved", "used"]
    assert {session for session, _ in h.events} == {"s-1"}
    with pytest.raises(models.AlreadyUsedError, match="already used"):
        consume(h.service, created.id)


def test_self_approval_is_refused_and_nothing_is_stored(h):
    created = h.request()
    for verdict in ("approve", "reject"):
        with pytest.raises(models.SelfApprovalError, match="own request"):
            h.service.vote(created.id, "alice", verdict)
    assert h.stored(created.id) == ("pending", 0)


def test_approver_outside_the_allowed_list_is_refused(h):
    created = h.request(allowed_approvers=["bob", "carol"])
    assert h.service.get(created.id).allowed_approvers == ("bob", "carol")
    with pytest.raises(models.NotAnApproverError, match="bob, carol"):
        h.service.vote(created.id, "mallory", "approve")
    assert h.service.vote(created.id, "carol", "approve").status is Status.APPROVED


def test_double_vote_is_refused(h):
    created = h.request(required_approvals=2)
    h.service.vote(created.id, "bob", "approve")
    with pytest.raises(models.DuplicateVoteError, match="already voted"):
        h.service.vote(created.id, "bob", "approve")
    assert h.stored(created.id) == ("pending", 1)


def test_two_of_m_one_approval_is_not_enough(h):
    created = h.request(required_approvals=2)
    once = h.service.vote(created.id, "bob", "approve")
    assert once.status is Status.PENDING
    with pytest.raises(models.NotApprovedError, match="still needs 1 approval"):
        consume(h.service, created.id)
    assert h.service.vote(created.id, "carol", "approve").status is Status.APPROVED
    assert consume(h.service, created.id).status is Status.USED


def test_reject_closes_the_request(h):
    created = h.request(required_approvals=2)
    h.service.vote(created.id, "bob", "approve")
    rejected = h.service.vote(created.id, "carol", "reject", comment="wrong site")
    assert rejected.status is Status.REJECTED and rejected.rejections[0].comment == "wrong site"
    with pytest.raises(models.AlreadyDecidedError, match="already rejected"):
        h.service.vote(created.id, "dave", "approve")
    with pytest.raises(models.AlreadyDecidedError):
        consume(h.service, created.id)
    assert h.actions(created.id)[-1] == "rejected"


def test_expiry_follows_the_injected_clock_and_is_persisted(h):
    created = h.request(lifetime=timedelta(minutes=5))
    h.clock.advance(minutes=4, seconds=59)
    assert h.service.get(created.id).status is Status.PENDING
    h.clock.advance(seconds=1)
    assert h.service.get(created.id).status is Status.EXPIRED
    assert h.stored(created.id) == ("pending", 0)          # reading alone writes nothing
    with pytest.raises(models.ExpiredError, match="expired"):
        h.service.vote(created.id, "bob", "approve")
    assert h.stored(created.id) == ("expired", 0)           # the refused vote persisted the expiry
    assert h.actions(created.id) == ["requested", "expired"]


def test_an_approval_expires_before_it_is_used(h):
    created = h.request(lifetime=timedelta(minutes=5))
    h.service.vote(created.id, "bob", "approve")
    h.clock.advance(minutes=6)
    with pytest.raises(models.ExpiredError):
        consume(h.service, created.id)
    assert h.stored(created.id)[0] == "expired"


@pytest.mark.parametrize("statement, target, requester", [
    (SQL + " OR 1 = 1", "prod", "alice"),
    (SQL.lower(), "prod", "alice"),
    (SQL, "prod-eu", "alice"),
    (SQL, "prod", "bob"),
])
def test_consume_is_bound_to_the_exact_statement_target_and_requester(h, statement, target, requester):
    created = h.request()
    h.service.vote(created.id, "carol", "approve")
    with pytest.raises(models.BindingMismatchError, match="submit this one for approval"):
        consume(h.service, created.id, statement, target, requester)
    assert h.stored(created.id) == ("approved", 1)          # a refused consume does not burn the approval
    assert consume(h.service, created.id).status is Status.USED


def test_edited_row_in_the_store_is_refused(h):
    created = h.request()
    h.service.vote(created.id, "bob", "approve")
    with h.engine.begin() as conn:
        conn.execute(sa.update(approval_requests).where(approval_requests.c.id == created.id)
                     .values(statement="DELETE FROM deploys"))
    with pytest.raises(models.BindingMismatchError, match="altered"):
        consume(h.service, created.id, "DELETE FROM deploys")


def test_cancel_only_by_the_requester(h):
    created = h.request()
    with pytest.raises(models.NotRequesterError):
        h.service.cancel(created.id, "bob")
    assert h.service.cancel(created.id, "alice").status is Status.CANCELLED
    with pytest.raises(models.AlreadyDecidedError):
        h.service.vote(created.id, "bob", "approve")
    assert h.stored(created.id) == ("cancelled", 0)


def test_get_by_unique_prefix_and_list(h):
    ids = iter(["abcd-1111", "abcd-2222", "ffff-3333"])
    service = ApprovalService(h.engine, clock=h.clock, new_id=lambda: next(ids))
    first, second = h.request(service), h.request(service, requester="bob", statement="DROP TABLE t")
    third = h.request(service)
    assert service.get("abcd-2").id == second.id
    with pytest.raises(models.UnknownRequestError, match="several"):
        service.get("abcd")
    with pytest.raises(models.UnknownRequestError, match="at least 4"):
        service.get("ff")
    with pytest.raises(models.UnknownRequestError, match="no approval request"):
        service.get("zzzz")
    with pytest.raises(models.UnknownRequestError):
        service.vote("abcd", "carol", "approve")               # votes name the full id
    service.vote(third.id, "carol", "approve")
    assert [r.id for r in service.list()] == [first.id, second.id, third.id]
    assert [r.id for r in service.list(pending_only=True)] == [first.id, second.id]
    assert [r.id for r in service.list(requester="bob")] == [second.id]
    h.clock.advance(hours=1)
    assert service.list(pending_only=True) == []


# -- races --------------------------------------------------------------------------------------
def run_together(workers: list) -> list:
    """Start every worker at the same barrier; return each one's result or exception."""
    barrier = threading.Barrier(len(workers))
    results: list = [None] * len(workers)

    def run(i: int, work) -> None:
        barrier.wait(10)
        try:
            results[i] = work()
        except Exception as err:  # collected, asserted on below
            results[i] = err

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    return results


def test_concurrent_votes_are_each_counted_once(h):
    voters = [f"reviewer{i}" for i in range(6)]
    created = h.request(required_approvals=len(voters))
    services = [h.another() for _ in voters]
    results = run_together([lambda s=s, v=v: s.vote(created.id, v, "approve") for s, v in zip(services, voters)])
    assert not [r for r in results if isinstance(r, Exception)], results
    final = h.service.get(created.id)
    assert final.status is Status.APPROVED and sorted(v.approver for v in final.votes) == voters
    assert h.stored(created.id) == ("approved", len(voters))
    assert sorted(r.approvals for r in results) == list(range(1, len(voters) + 1))
    assert h.actions(created.id).count("approved") == 1


def test_the_same_person_racing_themselves_votes_once(h):
    created = h.request(required_approvals=2)
    results = run_together([lambda: h.service.vote(created.id, "bob", "approve") for _ in range(5)])
    assert sum(isinstance(r, models.ApprovalRequest) for r in results) == 1
    assert all(isinstance(r, (models.ApprovalRequest, models.DuplicateVoteError)) for r in results), results
    assert h.stored(created.id) == ("pending", 1)


def test_racing_consumers_run_it_exactly_once(h):
    created = h.request()
    h.service.vote(created.id, "bob", "approve")
    results = run_together([lambda s=h.another(): consume(s, created.id) for _ in range(5)])
    assert sum(isinstance(r, models.ApprovalRequest) for r in results) == 1
    assert all(isinstance(r, (models.ApprovalRequest, models.AlreadyUsedError)) for r in results), results


def test_a_reject_racing_the_consume_never_leaves_both_succeeding(h):
    created = h.request(required_approvals=2)
    h.service.vote(created.id, "bob", "approve")
    vote, used = run_together([lambda: h.another().vote(created.id, "carol", "reject"),
                               lambda: consume(h.another(), created.id)])
    assert isinstance(vote, models.ApprovalRequest) and vote.status is Status.REJECTED
    # Whichever wins the lock, the consume is refused: still one approval short, or already rejected.
    assert isinstance(used, (models.NotApprovedError, models.AlreadyDecidedError)), used
    assert h.stored(created.id) == ("rejected", 2)


# -- waiting ------------------------------------------------------------------------------------
class Waiter:
    """Runs service.wait on a thread; `reading` is set once the waiter has read the request."""

    def __init__(self, service: ApprovalService, request_id: str, timeout: float | None) -> None:
        self.reading = threading.Event()
        self.cancel = threading.Event()
        self.reads = itertools.count()
        sa.event.listen(service.engine, "after_cursor_execute", self._observe)
        self.thread = threading.Thread(target=self._run, args=(service, request_id, timeout), daemon=True)
        self.result: models.ApprovalRequest | None = None
        self.returned_at: float | None = None
        self.thread.start()

    def _observe(self, conn, cursor, statement, *args) -> None:
        if "FROM cs_approval_votes" in statement:     # the last query of one full read of the request
            next(self.reads)
            self.reading.set()

    def _run(self, service, request_id, timeout) -> None:
        self.result = service.wait(request_id, timeout=timeout, cancel=self.cancel)
        self.returned_at = time.monotonic()

    def join(self) -> models.ApprovalRequest:
        self.thread.join(60)
        assert not self.thread.is_alive(), "wait() did not return"
        return self.result


def test_wait_wakes_when_another_connection_votes(h):
    created = h.request()
    waiter = Waiter(h.service, created.id, timeout=60)
    assert waiter.reading.wait(30), "the waiter never read the request"
    other = h.another(engine=sa.create_engine(h.engine.url))
    other.vote(created.id, "bob", "approve")
    assert waiter.join().status is Status.APPROVED
    other.engine.dispose()


def test_wait_on_postgres_is_woken_by_notify_not_by_polling(pg_url):
    h = Harness(pg_url, poll_interval=30)                   # polling alone would take 30 s
    created = h.request()
    waiter = Waiter(h.service, created.id, timeout=60)
    assert waiter.reading.wait(30), "the waiter never read the request"
    reads_before = next(waiter.reads)
    voter = h.another(engine=sa.create_engine(pg_url))
    voted_at = time.monotonic()
    voter.vote(created.id, "bob", "approve")
    assert waiter.join().status is Status.APPROVED
    assert waiter.returned_at - voted_at < 5, "the waiter was not woken by NOTIFY"
    assert next(waiter.reads) - reads_before <= 3          # one re-read after the wake-up, no polling
    voter.engine.dispose()
    h.engine.dispose()


def test_wait_returns_on_cancel_still_pending(h):
    created = h.request()
    waiter = Waiter(h.service, created.id, timeout=60)
    assert waiter.reading.wait(30)
    cancelled_at = time.monotonic()
    waiter.cancel.set()
    assert waiter.join().status is Status.PENDING
    assert waiter.returned_at - cancelled_at < 5


def test_wait_returns_pending_when_the_timeout_passes(h):
    created = h.request()
    assert h.service.wait(created.id, timeout=0).status is Status.PENDING
    started = time.monotonic()
    assert h.service.wait(created.id, timeout=0.5).status is Status.PENDING
    assert time.monotonic() - started >= 0.5


def test_wait_notices_expiry_and_marks_it(h):
    created = h.request(lifetime=timedelta(minutes=5))
    waiter = Waiter(h.service, created.id, timeout=60)
    assert waiter.reading.wait(30)
    h.clock.advance(minutes=6)
    assert waiter.join().status is Status.EXPIRED
    assert h.stored(created.id) == ("expired", 0)
    assert h.actions(created.id) == ["requested", "expired"]


def test_wait_returns_when_the_requester_cancels(h):
    created = h.request()
    waiter = Waiter(h.service, created.id, timeout=60)
    assert waiter.reading.wait(30)
    h.another().cancel(created.id, "alice")
    assert waiter.join().status is Status.CANCELLED
