"""The approval message, its decided version, and the reject modal, as Block Kit. PURE.

Action and callback ids are the contract with the Slack listeners (service/slack_app.py):

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
>>> c = Card(request_id="r1", requester="alice", target="deploys", environment="production",
...          statement="DELETE FROM t WHERE id = 1", kind="write", reason="a write", rows=1,
...          rows_exact=True, approvals=0, required=1, approvers=("bob",), expires_at=t)
>>> [e["action_id"] for e in request_blocks(c)[-1]["elements"]]
['countersign_approve', 'countersign_reject']
>>> {e["value"] for e in request_blocks(c)[-1]["elements"]}
{'r1'}
>>> reject_modal("r1")["callback_id"], reject_modal("r1")["private_metadata"]
('countersign_reject', 'r1')
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from approvals.slack.text import escape, one_line, plain, visible

APPROVE = "countersign_approve"
REJECT = "countersign_reject"           # the button's action_id and the modal's callback_id
REASON_BLOCK = "reason_block"
REASON = "reason"                       # the modal's plain_text_input action_id
MAX_INLINE = 2500                       # longer statements are cut here and attached whole as a file


@dataclass(frozen=True)
class Card:
    """What a reviewer must see to decide one request."""
    request_id: str
    requester: str
    target: str
    environment: str
    statement: str
    kind: str
    reason: str
    rows: int | None
    rows_exact: bool | None
    approvals: int
    required: int
    approvers: tuple[str, ...] | None       # None: anyone but the requester
    expires_at: datetime
    tables: tuple[str, ...] | None = None   # None: not known to the service
    snapshot: str | None = None             # what will be snapshotted, in words
    policy: str | None = None
    identity: str | None = None             # the target as its server reported it; the approval binds to it


@dataclass(frozen=True)
class Decided:
    """How a request ended, for the message that replaces the buttons."""
    status: str                             # approved | rejected | expired | used | cancelled
    by: tuple[str, ...]
    at: datetime
    reason: str | None = None


def rows_text(rows: int | None, exact: bool | None) -> str:
    """Exact when counted, labelled as an estimate otherwise, never a silent 0.

    >>> rows_text(25, True), rows_text(25, False), rows_text(0, True), rows_text(None, None)
    ('25 (counted)', '~25 (estimate)', '0 (counted)', 'unknown (could not be counted)')
    """
    if rows is None:
        return "unknown (could not be counted)"
    return f"{rows} (counted)" if exact else f"~{rows} (estimate)"


def environment_text(environment: str) -> str:
    """Production is unmistakable.

    >>> environment_text("production"), environment_text("staging")
    (':rotating_light: *PRODUCTION* :rotating_light:', 'staging')
    """
    if environment == "production":
        return ":rotating_light: *PRODUCTION* :rotating_light:"
    return escape(environment)


def fallback_text(card: Card) -> str:
    """The notification text (shown where blocks are not).

    >>> from datetime import datetime, timezone
    >>> fallback_text(Card("r1", "alice", "db", "production", "DELETE FROM t", "write", "x", None, None,
    ...                    0, 1, None, datetime(2026, 1, 1, tzinfo=timezone.utc)))
    'alice asks to run a write on db (PRODUCTION): DELETE FROM t'
    """
    where = f"{card.target} ({card.environment.upper() if card.environment == 'production' else card.environment})"
    return f"{one_line(card.requester, 80)} asks to run a {one_line(card.kind, 20)} on {one_line(where, 100)}: " \
           f"{one_line(card.statement, 120)}"


# -- the request message -----------------------------------------------------------------------
def request_blocks(card: Card) -> list[dict]:
    """The open request: facts, the statement, and the two buttons."""
    return _facts(card) + [_actions(card.request_id)]


def decided_blocks(card: Card, decided: Decided) -> list[dict]:
    """The same facts, the outcome instead of the buttons."""
    return _facts(card) + [_section(decided_text(decided))]


def decided_text(decided: Decided) -> str:
    """One mrkdwn line: who, when, why.

    >>> from datetime import datetime, timezone
    >>> decided_text(Decided("rejected", ("bob",), datetime(2026, 1, 1, 9, 30, tzinfo=timezone.utc), "<no>"))
    ':x: *Rejected* by bob at 2026-01-01 09:30:00 UTC: &lt;no&gt;'
    """
    icon = {"approved": ":white_check_mark:", "rejected": ":x:", "used": ":white_check_mark:",
            "expired": ":hourglass:", "cancelled": ":no_entry_sign:"}.get(decided.status, ":grey_question:")
    label = {"used": "Approved and run"}.get(decided.status, decided.status.capitalize())
    who = f" by {', '.join(one_line(p, 80) for p in decided.by)}" if decided.by else ""
    why = f": {one_line(decided.reason, 500)}" if decided.reason else ""
    return f"{icon} *{escape(label)}*{who} at {_when(decided.at)}{why}"


def _facts(card: Card) -> list[dict]:
    header = {"type": "header", "text": {"type": "plain_text", "emoji": True, "text": plain(
        f"{'PRODUCTION — ' if card.environment == 'production' else ''}approval needed: {card.kind} on "
        f"{card.target}")}}
    fields = [("Requester", one_line(card.requester, 100)), ("Target", one_line(card.target, 200)),
              ("Environment", environment_text(card.environment)), ("Kind", one_line(card.kind, 40)),
              ("Rows", rows_text(card.rows, card.rows_exact)), ("Tables", _tables(card.tables)),
              ("Approvals", _approvals(card)), ("Expires", _when(card.expires_at))]
    blocks = [header, {"type": "section", "fields": [_mrkdwn(f"*{k}*\n{v}") for k, v in fields]},
              _section(f"*Why it needs approval*\n{one_line(card.reason, 2800)}"), statement_block(card.statement)]
    if card.identity is not None:
        blocks.append(identity_block(card.identity))
    notes = [f"Snapshot: {escape(card.snapshot)}" if card.snapshot else None,
             f"Policy: {one_line(card.policy, 80)}" if card.policy else None,
             f"Request `{one_line(card.request_id, 60)}`"]
    return blocks + [{"type": "context", "elements": [_mrkdwn(n) for n in notes if n]}]


def statement_block(statement: str) -> dict:
    """The exact statement in a preformatted rich-text block: Slack renders it verbatim (no mrkdwn), and
    hidden characters are shown. Text over MAX_INLINE is cut here; the full text goes in a file.

    >>> statement_block("SELECT '\u202e'")["elements"][0]["elements"][0]["text"]
    "SELECT '\\\\u202e'"
    """
    shown = visible(statement)
    if len(shown) > MAX_INLINE:
        shown = shown[:MAX_INLINE] + f"\n… ({len(statement)} characters in all; the full text is attached)"
    return {"type": "rich_text", "elements": [
        {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": shown}]}]}


def identity_block(identity: str) -> dict:
    r"""Where it runs, as the target's server reported it when the request was made: the approval runs
    only while the server still says exactly this (so the same target name pointed at another
    database, or a changed search_path, runs nothing).

    >>> print(identity_block("postgresql host=10.0.0.5 db=app search_path='\"$user\", public'")["text"]["text"])
    *Runs on* (as its server reports it; the approval holds only there)
    `postgresql host=10.0.0.5 db=app search_path='"$user", public'`
    >>> print(identity_block("mysql db=a`b <@U1>")["text"]["text"].splitlines()[1])
    `mysql db=a\u0060b &lt;@U1&gt;`
    """
    shown = one_line(identity, 1000).replace("`", "\\u0060")   # a backtick would end the code span
    return _section(f"*Runs on* (as its server reports it; the approval holds only there)\n`{shown}`")


def needs_file(statement: str) -> bool:
    """Whether the statement is too long to show whole in the message.

    >>> needs_file("SELECT 1"), needs_file("x" * (MAX_INLINE + 1))
    (False, True)
    """
    return len(visible(statement)) > MAX_INLINE


def _actions(request_id: str) -> dict:
    return {"type": "actions", "block_id": "countersign_decide", "elements": [
        {"type": "button", "action_id": APPROVE, "value": request_id, "style": "primary",
         "text": {"type": "plain_text", "text": "Approve"}},
        {"type": "button", "action_id": REJECT, "value": request_id, "style": "danger",
         "text": {"type": "plain_text", "text": "Reject"}}]}


def _tables(tables: tuple[str, ...] | None) -> str:
    if tables is None:
        return "not known"
    return ", ".join(f"`{one_line(t, 100)}`" for t in tables) or "none"


def _approvals(card: Card) -> str:
    who = (", ".join(one_line(a, 60) for a in card.approvers) if card.approvers is not None
           else f"anyone but {one_line(card.requester, 60)}")
    return f"{card.approvals} of {card.required} (from: {who})"


# -- the reject modal --------------------------------------------------------------------------
def reject_modal(request_id: str, statement: str | None = None) -> dict:
    """The modal Reject opens; its submission carries the request id in private_metadata."""
    blocks = [] if statement is None else [_section("*Rejecting*"), statement_block(statement)]
    blocks.append({"type": "input", "block_id": REASON_BLOCK, "optional": False,
                   "label": {"type": "plain_text", "text": "Why? The requester sees this."},
                   "element": {"type": "plain_text_input", "action_id": REASON, "multiline": True,
                               "min_length": 1, "max_length": 2000}})
    return {"type": "modal", "callback_id": REJECT, "private_metadata": request_id,
            "title": {"type": "plain_text", "text": "Reject request"},
            "submit": {"type": "plain_text", "text": "Reject"},
            "close": {"type": "plain_text", "text": "Cancel"}, "blocks": blocks}


def submitted_reason(view: dict) -> str:
    """The reason typed into the modal ('' when missing).

    >>> submitted_reason({"state": {"values": {REASON_BLOCK: {REASON: {"type": "plain_text_input",
    ...                                                                "value": " too broad "}}}}})
    'too broad'
    """
    values = view.get("state", {}).get("values", {})
    for block in values.values():
        if REASON in block:
            return (block[REASON].get("value") or "").strip()
    return ""


# -- small pieces ------------------------------------------------------------------------------
def _section(text: str) -> dict:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text}


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")
