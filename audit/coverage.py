"""Rows outside the chain, checked against what the chain recorded (pure).

Sessions, approval requests and votes, and snapshot records live in their own tables so the gate can
read and lock them; each change to one of them is also an audit event. `row_problems` compares the
tables' current rows with those events, so editing a row (a vote's verdict, a session's user),
adding one, or deleting a session is named by `audit verify`, even though the row carries no link.
An approval's row and its event are written in two transactions today, so a verify that runs in
between reports the row; run it again.

What is compared: a session's user, target, environment, host, reason and times; an approval
request's requester, statement, target, environment, reason, approvers, row estimate, expiry and
status; each vote's verdict, comment and source; a snapshot record's status, session and approval.
Not compared, because no event records them: a request's binding hash (the gate recomputes it), a
vote's time, and a snapshot's row count, size and location. A request or vote the trail records but
the table lacks is not reported: without its row nothing can run on it.

Each check takes rows as mappings of column name to value (SQLAlchemy's `row._mapping`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping

Row = Mapping[str, object]

SESSION_FIELDS = ("user", "target", "environment", "host", "reason")
REQUEST_FIELDS = ("statement", "target", "environment", "reason", "required_approvals", "estimated_rows",
                  "rows_exact")
VOTE_FIELDS = ("verdict", "comment", "source")
SNAPSHOT_STATUS_EVENTS = {"restored": "restored", "pruned": "pruned"}   # row status -> the event it needs
COMMITTED_STATUSES = ("complete", "restored", "pruned")   # the write that took the snapshot committed


@dataclass(frozen=True)
class RowProblem:
    table: str
    text: str               # what is wrong, naming the row and the event it contradicts
    seq: int | None = None  # that event, when there is one


def row_problems(events, *, sessions: Iterable[Row], requests: Iterable[Row], votes: Iterable[Row],
                 snapshots: Iterable[Row]) -> list[RowProblem]:
    """Every disagreement between the tables and the trail, table by table."""
    events = list(events)
    return (session_problems(events, sessions) + request_problems(events, requests)
            + vote_problems(events, votes) + snapshot_problems(events, snapshots))


def session_problems(events, rows: Iterable[Row]) -> list[RowProblem]:
    """A session row must be the one its session_start recorded, and ended exactly when session_end says.

    >>> from audit.chain import AuditEvent
    >>> ts = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
    >>> start = AuditEvent(1, "e1", "s1", ts, "session_start", {"user": "alice", "target": "t",
    ...                    "environment": "prod", "host": "h", "reason": None}, "", "")
    >>> row = {"id": "s1", "user": "mallory", "target": "t", "environment": "prod", "host": "h",
    ...        "reason": None, "started_at": ts, "ended_at": None}
    >>> session_problems([start], [row])[0].text
    "session s1: its user is 'mallory' but event 1 (session_start) recorded 'alice'"
    """
    starts = _first_by(events, "session_start", lambda e: e.session_id)
    ends = _first_by(events, "session_end", lambda e: e.session_id)
    problems, seen = [], set()
    for row in rows:
        sid = row["id"]
        seen.add(sid)
        start = starts.get(sid)
        if start is None:
            problems.append(RowProblem("cs_sessions", f"session {sid} ({row['user']}) has no session_start event "
                                                      "in the trail: the row was written outside countersign"))
            continue
        problems += _differences("cs_sessions", f"session {sid}", row, start, SESSION_FIELDS)
        end = ends.get(sid)
        # A row still open while the trail has ended it is left alone: the trail is the stronger claim.
        for column, event, expected in (("started_at", start, start.ts),
                                        ("ended_at", end, end.ts if end else None)):
            if _utc(row[column]) != expected and row[column] is not None:
                problems.append(RowProblem("cs_sessions", f"session {sid}: its {column} is {_show(row[column])} but "
                                           + (f"event {event.seq} ({event.type}) recorded {_show(expected)}"
                                              if event else "the trail has no session_end for it"),
                                           event.seq if event else start.seq))
    problems += [RowProblem("cs_sessions", f"session {sid} is in the trail (event {e.seq}) but its row is missing "
                                           "from cs_sessions", e.seq) for sid, e in starts.items() if sid not in seen]
    return problems


def request_problems(events, rows: Iterable[Row]) -> list[RowProblem]:
    """An approval request row must match its `requested` event, and its status the newest event's."""
    requested = _first_by(events, "approval", _request_id, sub="requested")
    latest = _last_by(events, "approval", _request_id)
    problems = []
    for row in rows:
        rid = row["id"]
        event = requested.get(rid)
        if event is None:
            problems.append(RowProblem("cs_approval_requests", f"approval request {rid} has no `requested` event "
                                                               "in the trail: the row was written outside countersign"))
            continue
        what = f"approval request {rid}"
        problems += _differences("cs_approval_requests", what, row, event, REQUEST_FIELDS)
        checks = (("requester", row["requester"], event.payload.get("actor"), event),
                  ("allowed_approvers", _approvers(row["allowed_approvers"]),
                   tuple(event.payload.get("allowed_approvers") or ()) or None, event),
                  ("expires_at", _utc(row["expires_at"]).isoformat(), event.payload.get("expires_at"), event),
                  ("target_identity", row.get("target_identity"), event.payload.get("target_identity"), event),
                  ("status", row["status"], latest[rid].payload.get("status"), latest[rid]))
        problems += [_mismatch("cs_approval_requests", what, column, have, want, source)
                     for column, have, want, source in checks if have != want]
    # A request the trail records but the table lacks is not reported: without its row nothing can
    # run on it (the gate reads the table), and a trail may record requests of a store it was copied from.
    return problems


def vote_problems(events, rows: Iterable[Row]) -> list[RowProblem]:
    """Each vote row must be a `vote` event by the same person on the same request, with the same verdict."""
    recorded = _first_by(events, "approval", lambda e: (_request_id(e), e.payload.get("actor")), sub="vote")
    problems = []
    for row in rows:
        key = (row["request_id"], row["approver"])
        what = f"the vote by {row['approver']} on approval request {row['request_id']}"
        event = recorded.get(key)
        if event is None:
            problems.append(RowProblem("cs_approval_votes", f"{what} has no `vote` event in the trail: the row was "
                                                            "written or edited outside countersign"))
            continue
        problems += _differences("cs_approval_votes", what, row, event, VOTE_FIELDS)
    return problems   # a deleted vote only takes an approval away; the gate recounts votes from the table


def snapshot_problems(events, rows: Iterable[Row]) -> list[RowProblem]:
    """A snapshot record's status must agree with the trail: restored or pruned only when an event says
    so, and never back to complete after one did. A record of a write that committed must be named by
    that write's commit event, in the same session and under the same approval."""
    changes = _last_by(events, "snapshot", lambda e: e.payload.get("snapshot_id"))
    commits = {sid: e for e in events if _matches(e, "commit", None)
               for sid in (e.payload.get("snapshot_ids") or ())}
    problems = []
    for row in rows:
        sid, status = row["id"], row["status"]
        if status in COMMITTED_STATUSES:
            problems += _commit_problems(sid, row, commits.get(sid))
        change = changes.get(sid)
        recorded = change.payload.get("event") if change else None
        needed = SNAPSHOT_STATUS_EVENTS.get(status)
        if needed is not None and recorded != needed:
            problems.append(RowProblem("cs_snapshots", f"snapshot {sid}: its status is {status!r} but the trail has "
                                                       f"no `{needed}` event for it" + (
                                                           f" (event {change.seq} recorded {recorded!r})"
                                                           if change else ""), change.seq if change else None))
        elif needed is None and change is not None:
            problems.append(_mismatch("cs_snapshots", f"snapshot {sid}", "status", status, recorded, change))
    return problems


def _commit_problems(sid: str, row: Row, commit) -> list[RowProblem]:
    if commit is None:
        return [RowProblem("cs_snapshots", f"snapshot {sid} ({row['status']}) is named by no commit event in the "
                                           "trail: the record was written outside countersign")]
    checks = (("session_id", row["session_id"], commit.session_id),
              ("approval_id", row["approval_id"], commit.payload.get("approval_id")))
    return [_mismatch("cs_snapshots", f"snapshot {sid}", column, have, want, commit)
            for column, have, want in checks if have != want]


# -- helpers ---------------------------------------------------------------------------------------
def _request_id(e):
    return e.payload.get("request_id")


def _matches(e, type: str, sub: str | None) -> bool:
    return e.type == type and isinstance(e.payload, dict) and (sub is None or e.payload.get("event") == sub)


def _first_by(events, type: str, key, sub: str | None = None) -> dict:
    found: dict = {}
    for e in events:
        if _matches(e, type, sub):
            found.setdefault(key(e), e)
    return found


def _last_by(events, type: str, key, sub: str | None = None) -> dict:
    return {key(e): e for e in events if _matches(e, type, sub)}


def _differences(table: str, what: str, row: Row, event, fields: tuple[str, ...]) -> list[RowProblem]:
    return [_mismatch(table, what, f, row[f], event.payload.get(f), event) for f in fields
            if row[f] != event.payload.get(f)]


def _mismatch(table: str, what: str, column: str, have, want, event) -> RowProblem:
    return RowProblem(table, f"{what}: its {column} is {_show(have)} but event {event.seq} ({event.type}) "
                             f"recorded {_show(want)}", event.seq)


def _approvers(stored) -> tuple | None:
    return tuple(json.loads(stored)) or None if stored else None


def _utc(value):
    if not isinstance(value, datetime):
        return value
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _show(value) -> str:
    return _utc(value).isoformat() if isinstance(value, datetime) else repr(value)
