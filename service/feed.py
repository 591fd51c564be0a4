"""Which Slack posts an audit event makes. PURE: events and routing in, Post values out.

The audit trail is the source of truth and Slack gets copies: a session's start is announced in the
audit channel, each command's outcome follows in that message's thread, and its end posts a summary
there; an approval request becomes the approval message, each vote or expiry updates it, and the
outcome of the write it approved follows in its thread.

>>> from datetime import datetime, timezone
>>> from audit.store import AuditEvent
>>> from service.slack_settings import SlackConfig
>>> e = AuditEvent(7, "e7", "s1", datetime(2026, 1, 1, tzinfo=timezone.utc), "session_start",
...                {"user": "alice", "target": "db", "environment": "production", "host": "vm", "reason": None},
...                "", "")
>>> [(p.kind, p.channel, p.key) for p in posts_for(e, SlackConfig("C1", "CAUDIT"))]
[('session_start', 'CAUDIT', 'session:s1')]
"""
from __future__ import annotations

from dataclasses import dataclass

from approvals.slack.blocks import needs_file, statement_block
from approvals.slack.text import escape, one_line
from audit.store import AuditEvent
from service.slack_settings import SlackConfig
from service.outbox import Post

UPDATES = frozenset({"vote", "expired", "used", "cancelled"})   # approval events that change the message


@dataclass(frozen=True)
class Summary:
    commands: int
    ok: int
    failed: int
    blocked: int
    approvals: int


def posts_for(event: AuditEvent, config: SlackConfig, history: list[AuditEvent] | None = None) -> list[Post]:
    """The posts one audit event makes (`history`: the session's events, needed for its summary)."""
    maker = MAKERS.get(event.type)
    return [] if maker is None else [p for p in maker(event, config, history or []) if p is not None]


def _session_start(e: AuditEvent, config: SlackConfig, _history) -> list[Post | None]:
    if not config.audit_channel:
        return []
    p = e.payload
    prod = " :rotating_light: *PRODUCTION*" if p.get("environment") == "production" else ""
    why = f"\nReason: {escape(p['reason'])}" if p.get("reason") else ""
    text = (f":computer: *{one_line(p.get('user', '?'), 80)}* opened a session on "
            f"*{one_line(p.get('target', '?'), 120)}* ({escape(p.get('environment', '?'))}){prod} from "
            f"{one_line(p.get('host', '?'), 80)}{why}\nSession `{e.session_id}`; its commands follow in this thread.")
    return [Post("session_start", config.audit_channel, {"text": text}, key=f"session:{e.session_id}",
                 source_seq=e.seq)]


def _outcome(e: AuditEvent, config: SlackConfig, _history) -> list[Post | None]:
    p = e.payload
    posts: list[Post | None] = []
    if config.audit_channel and e.session_id:
        posts.append(Post("thread_reply", config.audit_channel, command_message({**p, "text": config.shown(p.get("text", ""))}),
                          thread_key=f"session:{e.session_id}", source_seq=e.seq))
    if p.get("approval_id") and p.get("decision") == "needs_approval" and p.get("status") in ("ok", "failed"):
        posts.append(Post("thread_reply", None, {"text": outcome_line(p)},
                          thread_key=f"approval:{p['approval_id']}", source_seq=e.seq))
    return posts


def _session_end(e: AuditEvent, config: SlackConfig, history: list[AuditEvent]) -> list[Post | None]:
    if not config.audit_channel or not e.session_id:
        return []
    s = summarize(history)
    text = (f":checkered_flag: Session ended: {s.commands} command(s): {s.ok} ok, {s.failed} failed, "
            f"{s.blocked} not run; {s.approvals} approval request(s).")
    return [Post("thread_reply", config.audit_channel, {"text": text}, thread_key=f"session:{e.session_id}",
                 source_seq=e.seq)]


def _approval(e: AuditEvent, config: SlackConfig, _history) -> list[Post | None]:
    p, rid = e.payload, e.payload.get("request_id")
    if p.get("event") == "requested":
        channel = config.approval_channel(p.get("target", ""))
        if not channel:
            return []
        message = Post("approval", channel, {"request_id": rid}, key=f"approval:{rid}", source_seq=e.seq)
        attach = (Post("approval_file", None, {"request_id": rid}, thread_key=f"approval:{rid}", source_seq=e.seq)
                  if needs_file(p.get("statement", "")) else None)
        return [message, attach]
    if p.get("event") in UPDATES:
        return [Post("approval_update", None, {"request_id": rid}, thread_key=f"approval:{rid}", source_seq=e.seq)]
    return []


MAKERS = {"session_start": _session_start, "outcome": _outcome, "session_end": _session_end,
          "approval": _approval}


# -- texts --------------------------------------------------------------------------------------
def command_message(p: dict) -> dict:
    """One command in its session's thread: its outcome line and its exact text.

    >>> command_message({"kind": "read", "decision": "allow", "status": "ok", "rows": 3, "duration_ms": 1.2,
    ...                  "text": "SELECT 1"})["text"]
    '`read` allow: ok, 3 row(s), 1.2 ms'
    """
    return {"text": outcome_line(p), "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                                             "text": outcome_line(p)}},
                                                statement_block(p.get("text", ""))]}


def outcome_line(p: dict) -> str:
    """What happened to one command, in one mrkdwn line.

    >>> outcome_line({"kind": "write", "decision": "needs_approval", "status": "ok", "rows": 25,
    ...               "duration_ms": 7.36, "snapshot_id": "s9", "approval_id": "a1"})
    '`write` needs_approval: ok, 25 row(s), 7.4 ms, snapshot `s9`, approval `a1`'
    >>> outcome_line({"kind": "write", "decision": "blocked", "status": "blocked", "error": "<no>"})
    '`write` blocked: blocked, error: &lt;no&gt;'
    """
    parts = [escape(str(p.get("status", "?")))]
    if p.get("rows") is not None:
        parts.append(f"{p['rows']} row(s)")
    if p.get("duration_ms") is not None:
        parts.append(f"{float(p['duration_ms']):.1f} ms")
    for label, key in (("snapshot", "snapshot_id"), ("approval", "approval_id")):
        if p.get(key):
            parts.append(f"{label} `{one_line(str(p[key]), 60)}`")
    if p.get("error"):
        parts.append(f"error: {one_line(str(p['error']), 500)}")
    return f"`{one_line(str(p.get('kind', '?')), 20)}` {escape(str(p.get('decision', '?')))}: {', '.join(parts)}"


def summarize(history: list[AuditEvent]) -> Summary:
    """Counts for a session's closing post.

    >>> from datetime import datetime, timezone
    >>> ev = lambda t, **p: AuditEvent(0, "", "s", datetime(2026, 1, 1, tzinfo=timezone.utc), t, p, "", "")
    >>> summarize([ev("outcome", status="ok"), ev("outcome", status="blocked"), ev("intent"),
    ...            ev("approval", event="requested")])
    Summary(commands=2, ok=1, failed=0, blocked=1, approvals=1)
    """
    outcomes = [e.payload.get("status") for e in history if e.type == "outcome"]
    return Summary(commands=len(outcomes), ok=outcomes.count("ok"), failed=outcomes.count("failed"),
                   blocked=len([s for s in outcomes if s not in ("ok", "failed")]),
                   approvals=sum(e.type == "approval" and e.payload.get("event") == "requested" for e in history))

