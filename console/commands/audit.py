"""`countersign audit`: list sessions, show one, verify the trail, export it for an auditor.

`verify` checks the hash chain and its keyed links (HMAC under the audit key), the anchors kept
outside the store (a truncated or recomputed trail), and the sessions, approvals and snapshots
tables against the events that recorded them; it names the first problem.

Exit codes: 0 done (for `verify`: the trail is intact); 1 `verify` found the trail broken; 2 the
store cannot be opened, the session is unknown or an argument is malformed.

`export --format jsonl` writes one object per event with its seq, id, session_id, ts (UTC ISO 8601),
type, payload, prev_hash, hash and link, so the chain can be re-checked without Countersign (the
keyed link needs the audit key; see audit/keys.py):

    hash == sha256(prev_hash + json.dumps({"id", "session_id", "ts", "type", "payload"},
                                          sort_keys=True, separators=(",", ":")))

So `export` carries the statements exactly as recorded. `export --redact` (for sharing, not for
re-verification) and `show` replace the literals that match the secret patterns (`[history]
secret_patterns`, or the defaults) with '<redacted>'; `show` also prints control and bidirectional
characters as visible escapes. The store, and the hashes, always keep the real text.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import datetime, timezone

from audit.events import (ApprovalApprovedEvent, ApprovalCancelledEvent, ApprovalExpiredEvent, ApprovalRejectedEvent,
                          ApprovalRequestedEvent, ApprovalUsedEvent, ApprovalVoteEvent, CommitEvent, Event,
                          ExecuteEvent, IntentEvent, OutcomeEvent, SessionEndEvent, SessionStartEvent,
                          SlackClickEvent, SnapshotPrunedEvent, SnapshotRestoredEvent, LoginEvent,
                          TokenIssuedEvent, TokenRevokedEvent, AuditorViewEvent, UnknownEvent)
from audit.events import to_payload
from audit.serialize import event_json, export_line, json_document, json_line, session_json
from audit.store import (AuditEvent, SessionInfo, Store, StoreUnavailable, UnknownSession, VerifyResult,
                         default_store_url)
from console.commands import exit_codes
from audit.redact import compile_patterns, redact_payload, secret_patterns
from console.render import visible

BROKEN = exit_codes.TRAIL_BROKEN
REFUSED = exit_codes.USAGE


class BadArgument(Exception):
    """An argument argparse could not check itself (e.g. a malformed time)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("sessions", help="list sessions, newest first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="every event of one session")
    show.add_argument("session", help="session id or a unique prefix of it")
    show.add_argument("--json", action="store_true")
    actions.add_parser("verify", help="check the chain, its anchors and the rows it covers: exit 0 intact, 1 broken")
    export = actions.add_parser("export", help="the events with their hashes, for re-verification elsewhere")
    export.add_argument("--format", choices=["jsonl"], default="jsonl", help="one JSON object per event")
    export.add_argument("--since", help="only events at or after this ISO 8601 time (UTC unless it says)")
    export.add_argument("--redact", action="store_true",
                        help="replace secret literals in statements (for sharing; the hashes then no longer "
                             "match the payloads)")


def run(args: argparse.Namespace) -> int:
    from console.wiring import console_for, team_server_url
    try:
        store = ServiceTrail(console_for(args).gate) if team_server_url(args) else \
            Store.open(getattr(args, "store_url", None) or default_store_url())
    except StoreUnavailable as err:
        return _refuse(f"{err}; check COUNTERSIGN_STORE or store_url in the configuration")
    try:
        return ACTIONS[args.action](store, args)
    except (StoreUnavailable, UnknownSession, BadArgument) as err:
        return _refuse(str(err))
    finally:
        store.dispose()


def _refuse(message: str) -> int:
    print(f"countersign audit: {message}", file=sys.stderr)
    return REFUSED


class ServiceTrail:
    """Team mode: the trail as the service reads it from its store, for people with the auditor role
    (the service verifies it with its own key and anchors; a console has neither)."""

    PAGE = 1000

    def __init__(self, gate) -> None:
        self.gate = gate

    def sessions(self) -> list[SessionInfo]:
        return self.gate.audit_sessions()

    def session(self, id_or_prefix: str) -> SessionInfo:
        return self.gate.audit_session(id_or_prefix)

    def events(self, *, session_id: str | None = None, since: datetime | None = None) -> list[AuditEvent]:
        found: list[AuditEvent] = []
        while True:   # in pages: one response stays bounded however long the trail is
            page = self.gate.audit_events(session_id=session_id, since=since,
                                          after_seq=found[-1].seq if found else 0, limit=self.PAGE)
            found += page
            if len(page) < self.PAGE:
                return found

    def event(self, seq: int) -> AuditEvent | None:
        return self.gate.audit_event(seq)

    def verify(self) -> VerifyResult:
        return self.gate.audit_verify()

    def dispose(self) -> None:
        pass


# -- actions ---------------------------------------------------------------------------------------
def _sessions(store: Store, args) -> int:
    sessions = store.sessions()
    if args.json:
        for session in sessions:
            print(json_line(session_json(session)))
    elif not sessions:
        print("No sessions recorded.")
    else:
        print("\n".join(visible(line) for line in session_table(sessions)))
    return 0


def _show(store: Store, args) -> int:
    session = store.session(args.session)
    patterns = _patterns(args)
    events = [redacted(e, patterns) for e in store.events(session_id=session.id)]
    if args.json:
        print(json_document({"session": session_json(session), "events": [event_json(e) for e in events]}))
    else:
        print("\n".join(visible(line) for line in session_lines(session) + [""] + [event_line(e) for e in events]))
    return 0


def _verify(store: Store, args) -> int:
    result = store.verify()
    if result.ok:
        print("\n".join(intact_lines(result)))
        return 0
    broken = store.event(result.first_broken_seq) if result.first_broken_seq else None
    print("\n".join(broken_lines(result, broken)))
    return BROKEN


def _export(store: Store, args) -> int:
    patterns = _patterns(args) if args.redact else None
    for e in store.events(since=parse_since(args.since)):
        print(export_line(event_json(redacted(e, patterns) if patterns else e)))
    return 0


def _patterns(args) -> tuple:
    from console.wiring import settings_from_args
    return compile_patterns(secret_patterns(settings_from_args(args).secret_patterns))


ACTIONS = {"sessions": _sessions, "show": _show, "verify": _verify, "export": _export}


# -- presentation (pure) ----------------------------------------------------------------------------
def redacted(e: AuditEvent, patterns: tuple) -> AuditEvent:
    """The event as shown: secret literals in its statement text redacted (its hashes stay those of
    the real text, so a redacted event no longer verifies: display and sharing only).

    >>> ts = datetime(2026, 3, 1, 9, 0, 5, tzinfo=timezone.utc)
    >>> event = AuditEvent(3, "e3", "s1", ts, "intent", {"text": "UPDATE u SET pwd = 'x'"}, "p", "h")
    >>> redacted(event, ("pwd",)).payload
    {'text': "UPDATE u SET pwd = '<redacted>'"}
    """
    return replace(e, payload=redact_payload(e.payload, patterns))


def intact_lines(result: VerifyResult) -> list[str]:
    """What `verify` says of an intact trail: one line, and a warning for what it could not do.

    >>> intact_lines(VerifyResult(True, 8, None, None))
    ['audit trail intact: 8 events']
    >>> intact_lines(VerifyResult(True, 8, None, None, unkeyed=3))[0]
    'audit trail intact: 8 events (the first 3 predate keyed links: only their unkeyed hashes were checked)'
    """
    first = f"audit trail intact: {result.checked} events"
    if result.unkeyed:
        first += f" (the first {result.unkeyed} predate keyed links: only their unkeyed hashes were checked)"
    lines = [first]
    if result.key_missing:
        lines.append(f"  warning: the keyed links were NOT checked: there is no audit key at {result.key_missing} "
                     "(set COUNTERSIGN_AUDIT_KEY_FILE to the key the trail was written with)")
    if result.anchor_error:
        lines.append(f"  warning: {result.anchor_error}")
    return lines


def broken_lines(result: VerifyResult, broken: AuditEvent | None) -> list[str]:
    """What `verify` says of a broken trail: where, what is wrong, and how much before it is intact.

    >>> row = VerifyResult(False, 8, None, "session s1: its user is 'bob'", table="cs_sessions")
    >>> for line in broken_lines(row, None):
    ...     print(line)
    audit trail BROKEN: a row of cs_sessions disagrees with the trail: session s1: its user is 'bob'
      the 8 events of the trail are intact
    """
    if result.table is not None:
        return [f"audit trail BROKEN: a row of {result.table} disagrees with the trail: {result.problem}",
                f"  the {result.checked} events of the trail are intact"]
    lines = [f"audit trail BROKEN at event {result.first_broken_seq}: {result.problem}"]
    if broken is not None:
        lines.append(f"  event {broken.seq}: {broken.id} at {_when(broken.ts)}, {broken.type}, "
                     f"session {broken.session_id or '-'}")
    lines.append(f"  the {result.checked} events before it are intact")
    return lines


SESSION_COLUMNS = ("id", "user", "target", "env", "started", "ended", "commands")

# The payload fields of an event this version has no class for worth a glance, in reading order.
SUMMARY = (("event", "{}"), ("user", "{}"), ("target", "on {}"), ("host", "from {}"), ("kind", "[{}]"),
           ("decision", "{}"), ("status", "{}"), ("rows", "rows={}"), ("approval_id", "approval {}"),
           ("request_id", "approval {}"), ("snapshot_id", "snapshot {}"), ("actor", "by {}"),
           ("reason", "reason: {}"), ("error", "error: {}"), ("text", "{}"), ("statement", "{}"),
           ("token_id", "token {}"), ("issued_by", "issued by {}"), ("revoked_by", "revoked by {}"),
           ("label", "label: {}"), ("why", "why: {}"))


def session_table(sessions: list[SessionInfo]) -> list[str]:
    """A fixed-width table, one session per line."""
    rows = [SESSION_COLUMNS] + [
        (s.id, s.user, s.target, s.environment, _when(s.started_at), _when(s.ended_at) if s.ended_at else "open",
         str(s.commands)) for s in sessions]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SESSION_COLUMNS))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def session_lines(s: SessionInfo) -> list[str]:
    return [f"session   {s.id}", f"user      {s.user}", f"target    {s.target} ({s.environment})",
            f"host      {s.host}", f"reason    {s.reason or '-'}", f"started   {_when(s.started_at)}",
            f"ended     {_when(s.ended_at) if s.ended_at else 'still open'}", f"commands  {s.commands}"]


def event_line(e: AuditEvent) -> str:
    """One event, readable, from its typed view.

    >>> ts = datetime(2026, 3, 1, 9, 0, 5, tzinfo=timezone.utc)
    >>> event_line(AuditEvent(4, "e4", "s1", ts, "outcome", {"kind": "write", "decision": "needs_approval",
    ...            "status": "ok", "rows": 3, "approval_id": "a1", "snapshot_id": None, "duration_ms": 2.5,
    ...            "error": None, "text": "DELETE FROM t\\n WHERE id < 4"}, "p", "h"))
    '2026-03-01 09:00:05  outcome        [write]  needs_approval  ok  rows=3  approval a1  DELETE FROM t WHERE id < 4'
    """
    return f"{_when(e.ts)}  {e.type:<13}  {event_summary(e.event)}".rstrip()


def event_summary(event: Event) -> str:
    """The fields of one event worth a glance, in reading order; the rest stays in --json.

    >>> event_summary(SnapshotPrunedEvent(snapshot_id="s1", target="billing", rows=25))
    'pruned  on billing  rows=25  snapshot s1'
    >>> event_summary(UnknownEvent("deploy_hook", {"user": "ci", "url": "https://ci.example/42"}))
    'ci'
    """
    return "  ".join(part for part in VIEWS.get(type(event), _unknown)(event) if part is not None)


def payload_summary(payload) -> list[str]:
    """The SUMMARY fields of a payload, for events without a class (and as the typed views' yardstick)."""
    if not isinstance(payload, dict):   # an edited trail can hold any JSON
        return [_flat(payload)]
    return [template.format(_flat(payload[key])) for key, template in SUMMARY if payload.get(key) is not None]


def _unknown(e: UnknownEvent) -> list[str]:
    return payload_summary(e.payload)


def _as_payload(e) -> list[str]:
    return payload_summary(to_payload(e))


def _shown(template: str, value) -> str | None:
    return None if value is None else template.format(_flat(value))


def _approval(e) -> list[str | None]:
    return [_shown("{}", e.event), _shown("{}", e.status), _shown("approval {}", e.request_id),
            _shown("by {}", e.actor)]


# What `audit show` prints of each typed event, in reading order; the rest stays in --json.
VIEWS = {
    SessionStartEvent: lambda e: [_shown("{}", e.user), _shown("on {}", e.target), _shown("from {}", e.host),
                                  _shown("reason: {}", e.reason)],
    SessionEndEvent: lambda e: [],
    IntentEvent: lambda e: [_shown("[{}]", e.kind), _shown("{}", e.decision), _shown("approval {}", e.approval_id),
                            _shown("{}", e.text)],
    OutcomeEvent: lambda e: [_shown("[{}]", e.kind), _shown("{}", e.decision), _shown("{}", e.status),
                             _shown("rows={}", e.rows), _shown("approval {}", e.approval_id),
                             _shown("snapshot {}", e.snapshot_id), _shown("error: {}", e.error), _shown("{}", e.text)],
    ExecuteEvent: lambda e: [_shown("[{}]", e.kind), _shown("approval {}", e.approval_id), _shown("{}", e.text)],
    CommitEvent: lambda e: [_shown("[{}]", e.kind), _shown("rows={}", e.rows), _shown("approval {}", e.approval_id),
                            _shown("{}", e.text)],
    ApprovalRequestedEvent: lambda e: [_shown("{}", e.event), _shown("on {}", e.target), _shown("{}", e.status),
                                       _shown("approval {}", e.request_id), _shown("by {}", e.actor),
                                       _shown("reason: {}", e.reason), _shown("{}", e.statement)],
    ApprovalVoteEvent: _approval, ApprovalApprovedEvent: _approval, ApprovalRejectedEvent: _approval,
    ApprovalUsedEvent: _approval, ApprovalCancelledEvent: _approval, ApprovalExpiredEvent: _approval,
    SnapshotRestoredEvent: lambda e: [_shown("{}", e.event), _shown("approval {}", e.approval_id),
                                      _shown("snapshot {}", e.snapshot_id)],
    SnapshotPrunedEvent: lambda e: [_shown("{}", e.event), _shown("on {}", e.target), _shown("rows={}", e.rows),
                                    _shown("snapshot {}", e.snapshot_id)],
    SlackClickEvent: lambda e: [_shown("approval {}", e.request_id)],
    TokenIssuedEvent: _as_payload, TokenRevokedEvent: _as_payload, LoginEvent: _as_payload,
    AuditorViewEvent: _as_payload,
}


def parse_since(text: str | None) -> datetime | None:
    """An ISO 8601 time; one without a zone is UTC.

    >>> parse_since("2026-03-01T09:00"), parse_since(None)
    (datetime.datetime(2026, 3, 1, 9, 0, tzinfo=datetime.timezone.utc), None)
    """
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadArgument(f"--since {text!r} is not an ISO 8601 time (e.g. 2026-03-01T09:00:00Z)") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _flat(value) -> str:
    return " ".join(str(value).split())


def _when(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
