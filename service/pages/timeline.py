"""A session's events as the console showed them: one entry per command, with what became of it. PURE.

The trail records a command as several events: its intent (before it runs), for an approval its
request, votes and use (with the Slack clicks behind the votes), the execute and commit of an
approved write, and its outcome. `build` folds them back into one `Command` each, in the order the
commands were submitted, with the approval request and snapshot records the store keeps for them.
An outcome pairs with the earliest open intent of the same text and approval; a later outcome of
the same approved command (a wait that ended, then a resume) updates it.

>>> from audit.chain import AuditEvent
>>> from datetime import datetime, timezone
>>> ts = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
>>> ev = lambda seq, type, **p: AuditEvent(seq, f"e{seq}", "s1", ts, type, p, "", "")
>>> entries = build([ev(1, "session_start", user="alice", target="db", environment="prod", host="vm", reason=None),
...                  ev(2, "intent", text="SELECT 1", kind="read", decision="allow", approval_id=None),
...                  ev(3, "outcome", text="SELECT 1", kind="read", decision="allow", status="ok",
...                     approval_id=None, snapshot_id=None, rows=1, duration_ms=0.8, error=None)])
>>> [(e.what, e.command.status if e.command else None) for e in entries]
[('session_start', None), ('command', 'ok')]
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Mapping
from urllib.parse import quote

from audit.chain import AuditEvent
from service.pages.queries import ApprovalRow
from snapshots.records import SnapshotRecord

Redact = Callable[[str], str]


# -- values --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Approver:
    person: str
    verdict: str                      # approve | reject
    at: datetime
    source: str                       # local | slack
    slack_user: str | None            # the Slack user whose click cast it
    comment: str | None


@dataclass(frozen=True)
class Click:
    """A Slack click that did not count (an unmapped user, the requester, a late click ...)."""
    slack_user: str
    person: str | None
    action: str
    result: str
    at: datetime


@dataclass(frozen=True)
class ApprovalView:
    id: str
    status: str                       # as of now (an open request past its expiry is expired)
    requester: str
    reason: str
    required: int
    approvals: int
    requested_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    time_to_decision: timedelta | None
    approvers: tuple[Approver, ...]
    refused_clicks: tuple[Click, ...]
    slack_url: str | None


@dataclass(frozen=True)
class Change:
    what: str                         # restored | pruned
    at: datetime
    approval_id: str | None
    seq: int


@dataclass(frozen=True)
class SnapshotView:
    id: str
    status: str
    status_text: str
    table: str
    operation: str
    rows: int
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class Command:
    seq: int                          # its intent's event
    at: datetime
    text: str                         # as shown (secrets redacted)
    kind: str
    decision: str                     # allow | blocked | needs_approval
    status: str | None                # the outcome's; None: no outcome recorded (yet)
    rows: int | None
    estimated_rows: int | None
    duration_ms: float | None
    error: str | None
    finished_at: datetime | None
    approval: ApprovalView | None
    snapshots: tuple[SnapshotView, ...]
    seqs: tuple[int, ...]             # every event that recorded it


@dataclass(frozen=True)
class Entry:
    seq: int
    at: datetime
    what: str                         # session_start | session_end | command | event
    command: Command | None = None
    summary: str = ""                 # for the other events: their type and fields


# -- building --------------------------------------------------------------------------------------
@dataclass
class _Open:
    """A command being folded together from its events."""
    intent: AuditEvent
    seqs: list[int] = field(default_factory=list)
    outcome: dict | None = None
    finished_at: datetime | None = None
    snapshot_ids: list[str] = field(default_factory=list)

    @property
    def approval_id(self) -> str | None:
        return self.intent.payload.get("approval_id")

    def matches(self, payload: dict) -> bool:
        return (self.intent.payload.get("text") == payload.get("text")
                and self.approval_id == payload.get("approval_id"))


def build(events: list[AuditEvent], *, approvals: Mapping[str, ApprovalRow] | None = None,
          snapshots: Mapping[str, SnapshotRecord] | None = None,
          changes: Mapping[str, list[AuditEvent]] | None = None, slack: Mapping[str, tuple[str, str]] | None = None,
          now: datetime | None = None, redact: Redact | None = None) -> tuple[Entry, ...]:
    """The session's timeline from its events and the store's records of its approvals and snapshots."""
    approvals, snapshots, changes, slack = approvals or {}, snapshots or {}, changes or {}, slack or {}
    redact = redact or (lambda text: text)
    # An approval's request is recorded before the intents that wait for it: know the ids first.
    asked = {e.payload.get("approval_id") for e in events if e.type == "intent" and isinstance(e.payload, dict)}
    asked.discard(None)
    items: list[_Open | Entry] = []
    open_: list[_Open] = []
    by_approval: dict[str, list[_Open]] = {}
    later: list[AuditEvent] = []      # approval, execute, commit and click events of this session's commands
    for e in events:
        p = e.payload if isinstance(e.payload, dict) else {}
        if e.type == "intent":
            command = _Open(e, [e.seq])
            items.append(command)
            open_.append(command)
            if command.approval_id:
                by_approval.setdefault(command.approval_id, []).append(command)
        elif e.type == "outcome":
            _close(e, p, items, open_, by_approval)
        elif e.type in FOLDED and _about(p) in asked:
            later.append(e)
        elif e.type in ("session_start", "session_end"):
            items.append(Entry(e.seq, e.ts, e.type, summary=_session_line(e, p) or summary(e, redact)))
        else:
            items.append(Entry(e.seq, e.ts, "event", summary=summary(e, redact)))
    for e in later:
        for command in by_approval.get(_about(e.payload), []):
            command.seqs.append(e.seq)
            if e.type == "commit":
                command.snapshot_ids += [s for s in e.payload.get("snapshot_ids") or () if s not in command.snapshot_ids]
    clicks = [e for e in later if e.type == "slack_click"]
    views = _Views(approvals, snapshots, changes, slack, clicks, now, redact)
    return tuple(views.command(item) if isinstance(item, _Open) else item for item in items)


FOLDED = ("approval", "execute", "commit", "slack_click")   # events that belong to an approved command


def _about(p: dict) -> str | None:
    """The approval request an approval, execute, commit or click event is about."""
    return p.get("request_id") or p.get("approval_id")


def _close(e: AuditEvent, p: dict, items: list, open_: list[_Open], by_approval: dict) -> None:
    command = next((c for c in open_ if c.matches(p)), None)
    if command is not None:
        open_.remove(command)
    else:   # a later outcome of an approved command already answered once (it waited, then resumed)
        command = next((c for c in reversed(by_approval.get(p.get("approval_id") or "", [])) if c.matches(p)), None)
    if command is None:   # an outcome without its intent: shown on its own rather than dropped
        command = _Open(e, [])
        items.append(command)
    command.seqs.append(e.seq)
    command.outcome, command.finished_at = p, e.ts
    if p.get("snapshot_id") and p["snapshot_id"] not in command.snapshot_ids:
        command.snapshot_ids.insert(0, p["snapshot_id"])


@dataclass
class _Views:
    approvals: Mapping[str, ApprovalRow]
    snapshots: Mapping[str, SnapshotRecord]
    changes: Mapping[str, list[AuditEvent]]
    slack: Mapping[str, tuple[str, str]]
    clicks: list[AuditEvent]
    now: datetime | None
    redact: Redact

    def command(self, c: _Open) -> Entry:
        p, out = c.intent.payload, c.outcome or {}
        estimate = p.get("estimated_rows")
        command = Command(
            seq=c.intent.seq, at=c.intent.ts, text=self.redact(str(p.get("text", ""))), kind=str(p.get("kind", "?")),
            decision=str(p.get("decision", "?")), status=out.get("status"), rows=out.get("rows"),
            estimated_rows=estimate if isinstance(estimate, int) else None, duration_ms=out.get("duration_ms"),
            error=out.get("error"), finished_at=c.finished_at,
            approval=self.approval(c.approval_id) if c.approval_id else None,
            snapshots=tuple(self.snapshot(s) for s in c.snapshot_ids), seqs=tuple(sorted(c.seqs)))
        return Entry(c.intent.seq, c.intent.ts, "command", command)

    def approval(self, request_id: str) -> ApprovalView | None:
        row = self.approvals.get(request_id)
        if row is None:
            return None
        mine = [e.payload for e in self.clicks if e.payload.get("request_id") == request_id]
        slack_users = {c.get("person"): c.get("slack_user") for c in mine if c.get("accepted")}
        approvers = tuple(Approver(v.approver, v.verdict, v.at, v.source,
                                   slack_users.get(v.approver) if v.source == "slack" else None, v.comment)
                          for v in row.votes)
        refused = tuple(Click(str(e.payload.get("slack_user")), e.payload.get("person"), str(e.payload.get("action")),
                              str(e.payload.get("result")), e.ts)
                        for e in self.clicks if e.payload.get("request_id") == request_id
                        and not e.payload.get("accepted"))
        return ApprovalView(
            id=row.id, status=row.status_at(self.now) if self.now else row.status, requester=row.requester,
            reason=row.reason, required=row.required_approvals, approvals=row.approvals,
            requested_at=row.created_at, expires_at=row.expires_at, decided_at=row.decided_at,
            time_to_decision=row.time_to_decision, approvers=approvers, refused_clicks=refused,
            slack_url=slack_url(*self.slack[f"approval:{request_id}"]) if f"approval:{request_id}" in self.slack
            else None)

    def snapshot(self, snapshot_id: str) -> SnapshotView:
        record = self.snapshots.get(snapshot_id)
        changes = tuple(Change(str(e.payload.get("event")), e.ts, e.payload.get("approval_id"), e.seq)
                        for e in self.changes.get(snapshot_id, []))
        if record is None:
            return SnapshotView(snapshot_id, "missing", "no record in the store", "?", "?", 0, changes)
        return SnapshotView(record.id, record.status, record.status_text, record.table_name, record.operation,
                            record.row_count, changes)


# -- text ------------------------------------------------------------------------------------------
def summary(e: AuditEvent, redact: Redact | None = None) -> str:
    """One event this timeline does not fold into a command, as its type and fields.

    >>> from audit.chain import AuditEvent
    >>> from datetime import datetime, timezone
    >>> summary(AuditEvent(1, "e", "s", datetime(2026, 1, 1, tzinfo=timezone.utc), "session_start",
    ...                    {"user": "alice", "target": "db", "environment": "prod", "host": "vm", "reason": None}, "", ""))
    'session_start  user=alice  target=db  environment=prod  host=vm'
    """
    redact = redact or (lambda text: text)
    p = e.payload if isinstance(e.payload, dict) else {"payload": e.payload}
    fields = [f"{k}={redact(str(v)) if k in ('text', 'statement') else _flat(v)}"
              for k, v in p.items() if v is not None]
    return "  ".join([e.type, *fields])


def _session_line(e: AuditEvent, p: dict) -> str | None:
    """
    >>> from datetime import datetime, timezone
    >>> start = AuditEvent(1, "e", "s", datetime(2026, 1, 1, tzinfo=timezone.utc), "session_start", {}, "", "")
    >>> _session_line(start, {"user": "alice", "target": "db", "environment": "prod", "host": "vm", "reason": "INC-1"})
    'session opened by alice on db (prod) from vm; reason: INC-1'
    """
    if e.type == "session_end":
        return "session closed"
    if not all(isinstance(p.get(k), str) for k in ("user", "target", "environment", "host")):
        return None      # not the payload a session start records: shown field by field instead
    reason = f"; reason: {_flat(p['reason'])}" if p.get("reason") else ""
    return f"session opened by {p['user']} on {p['target']} ({p['environment']}) from {p['host']}{reason}"


def slack_url(channel: str, ts: str) -> str:
    """A link to a Slack message (Slack sends a signed-in reader to it in their workspace).

    >>> slack_url("C0AUDIT", "1700000000.000100")
    'https://slack.com/archives/C0AUDIT/p1700000000000100'
    """
    return f"https://slack.com/archives/{quote(channel, safe='')}/p{quote(ts.replace('.', ''), safe='')}"


def _flat(value) -> str:
    return _SPACES.sub(" ", str(value)).strip()


# Only these collapse: str.split() would also swallow \x1c-\x1f, NBSP and line separators, hiding them.
_SPACES = re.compile(r"[ \t\r\n]+")
