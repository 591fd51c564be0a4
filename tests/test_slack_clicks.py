"""Reviewers' clicks, the way Slack delivers them: signed HTTP requests with Slack's documented payloads
to the real Bolt app under uvicorn on 127.0.0.1; the Web API is the local emulator."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from approvals.service import ApprovalService
from tests.slack_emulator import SlackEmulator
from tests.slack_harness import (SLACK_USERS, Running, UvicornThread, add_people, block_actions,
                                 signed_headers, start, view_submission, wait_until)

BOB, CAROL, ALICE, DAVE = (SLACK_USERS[n] for n in ("bob", "carol", "alice", "dave"))


@pytest.fixture
def running(store_url):
    with SlackEmulator() as slack:
        add_people(slack)
        store, service = start(slack, store_url)
        service.poster.start()
        try:
            with UvicornThread(service.asgi) as server:
                yield Running(slack, store, service, f"http://127.0.0.1:{server.port}",
                              ApprovalService.from_store(store))
        finally:
            service.poster.stop()
            store.dispose()


def _ephemerals(slack: SlackEmulator, user: str) -> list[str]:
    return [c.args["text"] for c in slack.calls("chat.postEphemeral") if c.args.get("user") == user]


def test_a_request_is_posted_with_buttons_within_two_seconds(running):
    started = time.monotonic()
    request = running.request()
    posted = running.posted_approval(request.id)
    assert time.monotonic() - started < 2.0
    message = running.slack.message(posted.channel, posted.ts)
    actions = message["blocks"][-1]
    assert posted.channel == "CAPPROVALS"
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("countersign_approve", request.id), ("countersign_reject", request.id)]
    assert "PRODUCTION" in message["blocks"][0]["text"]["text"]


def test_approve_click_approves_and_updates_the_message(running):
    request = running.request()
    posted = running.posted_approval(request.id)
    status, _ = running.post(block_actions("countersign_approve", request.id, BOB, message_ts=posted.ts))
    assert status == 200
    assert wait_until(lambda: running.approvals.get(request.id).status == "approved")
    voted = running.approvals.get(request.id).votes
    assert [(v.approver, v.verdict, v.source) for v in voted] == [("bob", "approve", "slack")]
    wait_until(lambda: running.slack.message(posted.channel, posted.ts)["blocks"][-1]["type"] == "section")
    last = running.slack.message(posted.channel, posted.ts)["blocks"][-1]["text"]["text"]
    assert "*Approved* by bob" in last
    click = wait_until(running.clicks)[0]
    assert click == {"action": "approve", "slack_user": BOB, "request_id": request.id, "person": "bob",
                     "accepted": True, "result": "approved", "refusal": None}


def test_reject_opens_the_modal_and_the_reason_rejects(running):
    request = running.request()
    running.posted_approval(request.id)
    assert running.post(block_actions("countersign_reject", request.id, CAROL))[0] == 200
    view = wait_until(lambda: running.slack.calls("views.open"))[0].args["view"]
    assert (view["callback_id"], view["private_metadata"]) == ("countersign_reject", request.id)
    assert running.approvals.get(request.id).status == "pending"     # opening the modal decides nothing
    status, body = running.post(view_submission(request.id, CAROL, "touches every site, not just 3"))
    assert (status, body) == (200, b"")
    rejected = running.approvals.get(request.id)
    assert rejected.status == "rejected"
    assert [(v.approver, v.comment) for v in rejected.votes] == [("carol", "touches every site, not just 3")]


def test_an_empty_reason_is_refused_in_the_modal(running):
    request = running.request()
    status, body = running.post(view_submission(request.id, CAROL, "   "))
    assert status == 200 and b'"response_action":"errors"' in body.replace(b" ", b"")
    assert running.approvals.get(request.id).status == "pending"


def test_a_forged_signature_is_refused_and_changes_nothing(running):
    request = running.request()
    body = block_actions("countersign_approve", request.id, BOB)
    assert running.post(body, signed_headers(body, secret="not-the-secret"))[0] == 401
    tampered = block_actions("countersign_approve", request.id, CAROL)
    assert running.post(tampered, signed_headers(body))[0] == 401
    assert running.post(body, {"Content-Type": "application/x-www-form-urlencoded"})[0] == 401
    assert running.approvals.get(request.id).votes == ()
    assert running.clicks() == []


def test_a_stale_timestamp_is_refused(running):
    request = running.request()
    body = block_actions("countersign_approve", request.id, BOB)
    assert running.post(body, signed_headers(body, ts=int(time.time()) - 6 * 60))[0] == 401
    assert running.approvals.get(request.id).votes == ()


def test_a_replayed_click_counts_once(running):
    request = running.request(approvers=("bob", "carol"), required=2)
    body = block_actions("countersign_approve", request.id, BOB)
    headers = signed_headers(body)
    assert running.post(body, headers)[0] == 200
    assert running.post(body, headers)[0] == 200          # Bolt accepts a replay within 5 minutes
    clicks = wait_until(lambda: len(running.clicks()) == 2 and running.clicks())
    after = running.approvals.get(request.id)
    assert (after.status, after.approvals) == ("pending", 1)
    assert sorted((c["accepted"], c["refusal"]) for c in clicks) == [(False, "DuplicateVoteError"), (True, None)]
    assert "already voted" in wait_until(lambda: _ephemerals(running.slack, BOB))[0]


def test_the_requester_cannot_approve_through_slack(running):
    request = running.request(requester="alice", approvers=None)
    assert running.post(block_actions("countersign_approve", request.id, ALICE))[0] == 200
    told = wait_until(lambda: _ephemerals(running.slack, ALICE))
    assert "own request" in told[0]
    assert running.approvals.get(request.id).votes == ()
    assert running.clicks()[0]["refusal"] == "SelfApprovalError"


def test_a_non_approver_is_refused(running):
    request = running.request(approvers=("bob", "carol"))
    assert running.post(block_actions("countersign_approve", request.id, DAVE))[0] == 200
    assert "not an approver" in wait_until(lambda: _ephemerals(running.slack, DAVE))[0]
    assert running.approvals.get(request.id).votes == ()
    assert running.clicks()[0]["refusal"] == "NotAnApproverError"


def test_an_unmapped_slack_user_is_refused(running):
    running.slack.add_user("UMALLORY", "mallory@evil.example", "bob")     # Slack display name "bob"
    request = running.request()
    assert running.post(block_actions("countersign_approve", request.id, "UMALLORY"))[0] == 200
    assert "not mapped" in wait_until(lambda: _ephemerals(running.slack, "UMALLORY"))[0]
    assert running.approvals.get(request.id).votes == ()
    click = running.clicks()[0]
    assert (click["slack_user"], click["person"], click["refusal"]) == ("UMALLORY", None, "unmapped")


def test_an_expired_request_changes_nothing_and_says_why(running):
    request = running.request(lifetime=timedelta(milliseconds=50))
    wait_until(lambda: running.approvals.get(request.id).status == "expired")
    assert running.post(block_actions("countersign_approve", request.id, BOB))[0] == 200
    assert "expired" in wait_until(lambda: _ephemerals(running.slack, BOB))[0]
    assert running.approvals.get(request.id).votes == ()
    assert running.clicks()[0]["refusal"] == "ExpiredError"


def test_an_already_decided_or_unknown_request_says_why(running):
    request = running.request()
    running.approvals.vote(request.id, "carol", "reject", comment="no")
    assert running.post(block_actions("countersign_approve", request.id, BOB))[0] == 200
    assert "already rejected" in wait_until(lambda: _ephemerals(running.slack, BOB))[0]
    assert running.post(block_actions("countersign_approve", "no-such-request", BOB))[0] == 200
    wait_until(lambda: len(_ephemerals(running.slack, BOB)) == 2)
    assert "no approval request" in _ephemerals(running.slack, BOB)[1]
    assert [c["refusal"] for c in running.clicks()] == ["AlreadyDecidedError", "UnknownRequestError"]


def test_healthz_and_readyz(running):
    assert running.get("/healthz") == (200, {"ok": True})
    status, body = running.get("/readyz")
    assert status == 200 and body["ok"] is True and body["store"] in ("sqlite", "postgresql")



def test_concurrent_clicks_and_replays_count_each_person_once(running):
    from concurrent.futures import ThreadPoolExecutor
    request = running.request(approvers=("bob", "carol"), required=2)
    bodies = [block_actions("countersign_approve", request.id, user) for user in (BOB, CAROL) for _ in range(5)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda body: running.post(body)[0], bodies))
    assert statuses == [200] * 10
    clicks = wait_until(lambda: len(running.clicks()) == 10 and running.clicks(), timeout=20)
    after = running.approvals.get(request.id)
    assert (after.status, sorted(v.approver for v in after.votes)) == ("approved", ["bob", "carol"])
    accepted = sorted(c["person"] for c in clicks if c["accepted"])
    assert accepted == ["bob", "carol"]
    assert {c["refusal"] for c in clicks if not c["accepted"]} <= {"DuplicateVoteError", "AlreadyDecidedError"}


def test_a_slack_user_without_an_email_is_refused(running):
    running.slack.add_user("UNOMAIL", None, "bob")
    request = running.request()
    assert running.post(block_actions("countersign_approve", request.id, "UNOMAIL"))[0] == 200
    assert "did not share your email" in wait_until(lambda: _ephemerals(running.slack, "UNOMAIL"))[0]
    assert running.approvals.get(request.id).votes == ()
