"""Several `serve` processes on one PostgreSQL store: each request is posted exactly once, and a
standby takes over when the holder dies."""
from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.service import ApprovalService
from service.outbox import Outbox
from tests.slack_emulator import SlackEmulator
from tests.slack_harness import CHANNEL, add_people, start, wait_until


@pytest.fixture
def slack():
    with SlackEmulator() as emulator:
        add_people(emulator)
        yield emulator


def _request(approvals: ApprovalService, n: int):
    return approvals.request(requester="alice", target="deploys-prod", environment="production",
                             statement=f"DELETE FROM deploys WHERE id = {n}", kind="write", reason="a write",
                             required_approvals=1, allowed_approvers=None, lifetime=timedelta(minutes=30))


def _posted_ids(slack: SlackEmulator) -> list[str]:
    return [c.args["blocks"][-1]["elements"][0]["value"] for c in slack.calls("chat.postMessage")
            if c.args["channel"] == CHANNEL]


def test_two_posters_on_one_store_post_each_request_once(slack, pg_url):
    (store_a, a), (store_b, b) = (start(slack, pg_url, holder=h) for h in ("serve-a", "serve-b"))
    a.poster.start()
    b.poster.start()
    try:
        approvals = ApprovalService.from_store(store_a)
        ids = [_request(approvals, n).id for n in range(30)]
        wait_until(lambda: len(_posted_ids(slack)) >= 30)
        wait_until(lambda: a.outbox.waiting() == 0)
        assert sorted(_posted_ids(slack)) == sorted(ids) and len(_posted_ids(slack)) == 30
        assert _posted_ids(slack) == ids                          # and in the order they were made
    finally:
        a.poster.stop()
        b.poster.stop()
        store_a.dispose()
        store_b.dispose()


def test_a_standby_takes_over_when_the_holder_dies(slack, pg_url):
    (store_a, a), (store_b, b) = (start(slack, pg_url, holder=h, lease=1.0) for h in ("serve-a", "serve-b"))
    a.poster.start()
    wait_until(lambda: a.outbox.holder() == "serve-a")
    b.poster.start()
    try:
        approvals = ApprovalService.from_store(store_a)
        first = _request(approvals, 1).id
        wait_until(lambda: _posted_ids(slack) == [first])
        a.poster.stop(release=False)                              # killed: the lease lapses on its own
        second = _request(approvals, 2).id
        wait_until(lambda: _posted_ids(slack) == [first, second], timeout=10)
        assert b.outbox.holder() == "serve-b"
    finally:
        b.poster.stop()
        store_a.dispose()
        store_b.dispose()


def test_a_row_is_claimed_by_one_sender_only(slack, pg_url):
    (store_a, a), (store_b, b) = (start(slack, pg_url, holder=h) for h in ("serve-a", "serve-b"))
    try:
        _request(ApprovalService.from_store(store_a), 1)
        a.poster.feed()
        row = a.outbox.next_due()
        claims = [Outbox(s.engine, s.clock).claim(row.id, h) for s, h in ((store_a, "serve-a"), (store_b, "serve-b"))]
        assert claims == [True, False]
    finally:
        store_a.dispose()
        store_b.dispose()
