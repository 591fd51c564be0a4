"""The outbox: sessions and commands in Slack threads, in order, nothing lost while Slack is down,
Retry-After honoured, and each request posted once by several posters on one store."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from approvals.service import ApprovalService
from tests.slack_emulator import SlackEmulator
from tests.slack_harness import AUDIT_CHANNEL, CHANNEL, Running, add_people, start, wait_until


@pytest.fixture
def slack():
    with SlackEmulator() as emulator:
        add_people(emulator)
        yield emulator


@pytest.fixture
def running(slack, store_url):
    store, service = start(slack, store_url)
    service.poster.start()
    yield Running(slack, store, service, "", ApprovalService.from_store(store))
    service.poster.stop()
    store.dispose()


def _session(store, commands: int) -> str:
    """A console session as the pipeline records it: start, intent + outcome per command, end."""
    sid = store.start_session(user="alice", target="deploys-prod", environment="production", host="vm",
                              reason="incident 42")
    for n in range(commands):
        text = f"SELECT {n}"
        store.append(sid, "intent", {"text": text, "kind": "read", "decision": "allow", "approval_id": None})
        store.append(sid, "outcome", {"text": text, "kind": "read", "decision": "allow", "status": "ok",
                                      "approval_id": None, "snapshot_id": None, "rows": 1, "duration_ms": 0.5,
                                      "error": None})
    store.end_session(sid)
    return sid


def _posts(slack: SlackEmulator, channel: str):
    return [c for c in slack.calls("chat.postMessage") if c.args["channel"] == channel]


def _statement(call) -> str:
    return call.args["blocks"][1]["elements"][0]["elements"][0]["text"]


def _assert_session_thread(posts, commands: int) -> None:
    head, replies = posts[0], posts[1:]
    assert "opened a session on *deploys-prod*" in head.args["text"] and "PRODUCTION" in head.args["text"]
    assert "thread_ts" not in head.args
    assert {r.args["thread_ts"] for r in replies} == {head.response["ts"]}
    assert [_statement(r) for r in replies[:-1]] == [f"SELECT {n}" for n in range(commands)]
    assert f"Session ended: {commands} command(s): {commands} ok" in replies[-1].args["text"]


def test_a_session_is_announced_and_its_commands_follow_in_its_thread(running):
    _session(running.store, 3)
    posts = wait_until(lambda: len(_posts(running.slack, AUDIT_CHANNEL)) == 5 and _posts(running.slack, AUDIT_CHANNEL))
    _assert_session_thread(posts, 3)


def test_slack_down_for_a_whole_session_loses_nothing_and_posts_in_order_once_back(running):
    running.slack.fail(status=503)                                   # every method, until recover()
    started = time.monotonic()
    sid = _session(running.store, 6)
    request = running.request()
    recorded = time.monotonic() - started
    events = running.store.events(session_id=sid)
    assert [e.type for e in events][:1] + [e.type for e in events][-1:] == ["session_start", "session_end"]
    assert len(events) == 14 and recorded < 5                        # the trail did not wait for Slack
    wait_until(lambda: len(running.slack.calls(only_200=False)) >= 3)  # the poster kept trying
    assert running.slack.calls("chat.postMessage") == []
    assert running.service.outbox.waiting() == 9
    running.slack.recover()
    wait_until(lambda: running.service.outbox.waiting() == 0, timeout=30)
    _assert_session_thread(_posts(running.slack, AUDIT_CHANNEL), 6)    # every post, each thread in order
    assert [c.args["blocks"][-1]["elements"][0]["value"] for c in _posts(running.slack, CHANNEL)] == [request.id]


def test_a_rate_limited_audit_channel_does_not_hold_up_approval_requests(running):
    running.slack.fail("chat.postMessage", status=429, retry_after=30, channel=AUDIT_CHANNEL)
    _session(running.store, 3)
    wait_until(lambda: running.slack.calls("chat.postMessage", only_200=False))   # the audit channel said 429
    started = time.monotonic()
    request = running.request()
    running.posted_approval(request.id)
    assert time.monotonic() - started < 2.0
    assert _posts(running.slack, AUDIT_CHANNEL) == []
    running.slack.recover()


def test_retry_after_is_honoured_on_429(running):
    running.slack.fail("chat.postMessage", status=429, retry_after=1, times=1)
    request = running.request()
    running.posted_approval(request.id)
    limited, posted = running.slack.calls("chat.postMessage", only_200=False)
    assert (limited.status, limited.response["error"], posted.status) == (429, "ratelimited", 200)
    assert posted.at - limited.at >= 1.0


def test_a_permanent_error_is_given_up_and_does_not_block_the_rest(running):
    running.slack.delete_channel(CHANNEL)
    request = running.request()
    _session(running.store, 1)
    wait_until(lambda: len(_posts(running.slack, AUDIT_CHANNEL)) == 3)
    refused = running.slack.calls("chat.postMessage", only_200=True)[0]
    assert refused.response == {"ok": False, "error": "channel_not_found"}
    assert running.service.outbox.posted(f"approval:{request.id}") is None
    wait_until(lambda: running.service.outbox.waiting() == 0)   # the last post is marked sent after Slack answers


def test_a_long_statement_is_attached_whole_in_the_request_thread(running):
    statement = "INSERT INTO t VALUES " + ", ".join(f"({n})" for n in range(1500))
    request = running.request(statement)
    posted = running.posted_approval(request.id)
    done = wait_until(lambda: running.slack.calls("files.completeUploadExternal"))[0]
    assert (done.args["channel_id"], done.args["thread_ts"]) == (posted.channel, posted.ts)
    upload = running.slack.calls("files.getUploadURLExternal")[0]
    assert int(upload.args["length"]) == len(statement.encode())
    sent = next(c for c in running.slack.calls() if c.method.startswith("upload/"))
    assert sent.args["_raw"] == statement.encode()


def test_a_request_nobody_answers_loses_its_buttons_when_it_expires(running):
    request = running.request(lifetime=timedelta(seconds=1))
    posted = running.posted_approval(request.id)
    assert running.slack.message(posted.channel, posted.ts)["blocks"][-1]["type"] == "actions"
    wait_until(lambda: running.slack.message(posted.channel, posted.ts)["blocks"][-1]["type"] == "section")
    assert ":hourglass: *Expired*" in running.slack.message(posted.channel, posted.ts)["blocks"][-1]["text"]["text"]
    assert running.approvals.get(request.id).status == "expired"
