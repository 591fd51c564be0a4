"""The approval message as a reviewer sees it: exact, escaped, honest about rows, within Slack's limits."""
from __future__ import annotations

import json
import unicodedata
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.slack.blocks import (MAX_INLINE, Card, Decided, decided_blocks, fallback_text, needs_file,
                                    reject_modal, request_blocks)

T = datetime(2026, 12, 1, 8, 57, tzinfo=timezone.utc)


def card(**changes) -> Card:
    values = dict(request_id="a815", requester="alice", target="deploys-prod", environment="production",
                  statement="UPDATE deploys SET metadata = NULL WHERE site_id = 3", kind="write",
                  reason="UPDATE of deploys with a WHERE clause", rows=25, rows_exact=True, approvals=0, required=1,
                  approvers=("bob", "carol"), expires_at=T, tables=("deploys",),
                  snapshot="the 25 rows it touches are copied before it runs", policy="production")
    values.update(changes)
    return Card(**values)


def mrkdwn_texts(blocks: list[dict]) -> list[str]:
    found = []
    for block in blocks:
        for part in [block.get("text")] + block.get("fields", []) + block.get("elements", []):
            if isinstance(part, dict) and part.get("type") == "mrkdwn":
                found.append(part["text"])
    return found


def statement_shown(blocks: list[dict]) -> str:
    rich = next(b for b in blocks if b["type"] == "rich_text")
    return rich["elements"][0]["elements"][0]["text"]


def test_the_message_shows_every_fact_a_reviewer_needs():
    blocks = request_blocks(card())
    text = "\n".join(mrkdwn_texts(blocks))
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                    "text": "PRODUCTION — approval needed: write on deploys-prod"}}
    for fact in ("*Requester*\nalice", "*Target*\ndeploys-prod", ":rotating_light: *PRODUCTION*", "*Kind*\nwrite",
                 "*Rows*\n25 (counted)", "*Tables*\n`deploys`", "*Approvals*\n0 of 1 (from: bob, carol)",
                 "Snapshot: the 25 rows it touches", "Policy: production", "UPDATE of deploys with a WHERE clause"):
        assert fact in text
    assert statement_shown(blocks) == "UPDATE deploys SET metadata = NULL WHERE site_id = 3"
    assert blocks[-1]["elements"][0] == {"type": "button", "action_id": "countersign_approve", "value": "a815",
                                         "style": "primary", "text": {"type": "plain_text", "text": "Approve"}}
    assert blocks[-1]["elements"][1]["action_id"] == "countersign_reject"


def test_rows_are_never_a_silent_zero():
    assert "*Rows*\n~25 (estimate)" in mrkdwn_texts(request_blocks(card(rows_exact=False)))
    assert "*Rows*\nunknown (could not be counted)" in mrkdwn_texts(request_blocks(card(rows=None)))
    assert "*Rows*\n0 (counted)" in mrkdwn_texts(request_blocks(card(rows=0)))


def test_staging_is_not_dressed_as_production():
    blocks = request_blocks(card(environment="staging"))
    assert "PRODUCTION" not in json.dumps(blocks)


def test_untrusted_text_cannot_mention_link_or_hide_characters():
    evil = card(requester="<!channel>", reason="see <https://evil.example|docs> & more",
                statement="DELETE FROM t WHERE id = 1 -- \u202e ; DROP TABLE t", target="db\u200b")
    text = "\n".join(mrkdwn_texts(request_blocks(evil)))
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt;" in text and "&lt;https://evil.example|docs&gt; &amp; more" in text
    assert "db\\u200b" in text
    assert statement_shown(request_blocks(evil)) == "DELETE FROM t WHERE id = 1 -- \\u202e ; DROP TABLE t"


def test_the_decided_message_has_no_buttons_and_says_who_when_why():
    blocks = decided_blocks(card(), Decided("rejected", ("carol",), T, "touches every site"))
    assert all(b["type"] != "actions" for b in blocks)
    assert blocks[-1]["text"]["text"] == ":x: *Rejected* by carol at 2026-12-01 08:57:00 UTC: touches every site"


def test_a_long_statement_is_cut_in_the_message_and_marked_for_a_file():
    statement = "INSERT INTO t VALUES " + ", ".join(f"({n})" for n in range(2000))
    shown = statement_shown(request_blocks(card(statement=statement)))
    assert needs_file(statement) and len(shown) < MAX_INLINE + 100 and "the full text is attached" in shown


def test_the_reject_modal():
    modal = reject_modal("a815")
    assert (modal["type"], modal["callback_id"], modal["private_metadata"]) == ("modal", "countersign_reject", "a815")
    reason = modal["blocks"][-1]
    assert reason["optional"] is False and reason["element"]["type"] == "plain_text_input"
    assert reason["element"]["action_id"] == "reason"


def test_the_notification_text_is_one_escaped_line():
    assert fallback_text(card(statement="DELETE\nFROM <t>")) == \
        "alice asks to run a write on deploys-prod (PRODUCTION): DELETE\\u000aFROM &lt;t&gt;"


HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=4000), st.text(max_size=300), st.text(max_size=4000))
def test_any_input_stays_within_slack_limits_and_hides_nothing(statement, requester, reason):
    blocks = request_blocks(card(statement=statement or "x", requester=requester or "x", reason=reason or "x",
                                 target=requester or "t"))
    assert len(blocks) <= 50 and len(blocks[0]["text"]["text"]) <= 150
    for text in mrkdwn_texts(blocks):
        assert "<" not in text and ">" not in text and len(text) <= 3000
    for field in blocks[1]["fields"]:
        assert len(field["text"]) <= 2000
    shown = statement_shown(blocks)
    assert not [c for c in shown if c not in "\n\t" and unicodedata.category(c) in HIDDEN]
