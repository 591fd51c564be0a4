"""The one JSON form of what Countersign hands to other programs: sessions, audit events, approval
requests and snapshot records, as the CLI prints them with --json and `audit export` writes them.

The `*_json` functions return plain dicts of JSON values; `json_line`, `json_document` and
`export_line` turn one into text. An exported event carries everything needed to recompute its hash:

    hash == sha256(prev_hash + json.dumps({"id", "session_id", "ts", "type", "payload"},
                                          sort_keys=True, separators=(",", ":")))

and its keyed `link` (null for an event from before keyed links), which only the audit key's holder
can recompute (audit/keys.py `keyed_link`).
"""
from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from audit.store import AuditEvent, SessionInfo

if TYPE_CHECKING:   # read by attribute only: audit sits below approvals and snapshots
    from approvals.models import ApprovalRequest
    from snapshots.records import SnapshotRecord


def event_json(e: AuditEvent) -> dict:
    """Everything needed to recompute the hash; ts exactly as it was hashed.

    >>> ts = datetime(2026, 3, 1, 9, 0, 5, tzinfo=timezone.utc)
    >>> event_json(AuditEvent(1, "e1", "s1", ts, "session_end", {}, "0" * 4, "ab"))["ts"]
    '2026-03-01T09:00:05+00:00'
    """
    return {**asdict(e), "ts": e.ts.isoformat()}


def session_json(s: SessionInfo) -> dict:
    return {**asdict(s), "started_at": s.started_at.isoformat(),
            "ended_at": s.ended_at.isoformat() if s.ended_at else None}


def approval_json(r: ApprovalRequest) -> dict:
    """A request with its votes; times in ISO 8601."""
    return {"id": r.id, "status": str(r.status), "requester": r.requester, "target": r.target,
            "environment": r.environment, "kind": r.kind, "reason": r.reason, "statement": r.statement,
            "binding": r.binding, "created_at": r.created_at.isoformat(), "expires_at": r.expires_at.isoformat(),
            "used_at": r.used_at.isoformat() if r.used_at else None, "required_approvals": r.required_approvals,
            "approvals": r.approvals, "allowed_approvers": list(r.allowed_approvers) if r.allowed_approvers
            is not None else None, "estimated_rows": r.estimated_rows, "rows_exact": r.rows_exact,
            "session_id": r.session_id, "target_identity": r.target_identity,
            "votes": [{"approver": v.approver, "verdict": str(v.verdict), "comment": v.comment,
                       "ts": v.ts.isoformat(), "source": v.source} for v in r.votes]}


def snapshot_json(r: SnapshotRecord) -> dict:
    """A snapshot's record (not its rows); created_at in UTC."""
    return {"id": r.id, "created_at": _utc(r.created_at).isoformat(), "target": r.target, "table": r.table_name,
            "location": r.location, "operation": r.operation, "key_columns": list(r.key_columns),
            "row_count": r.row_count, "size_bytes": r.size_bytes, "statement": r.statement,
            "approval_id": r.approval_id, "session_id": r.session_id, "status": r.status}


def json_line(value: dict) -> str:
    """One object per line, for listings (`--json` of list and sessions).

    >>> json_line({"b": 1, "a": None})
    '{"a": null, "b": 1}'
    """
    return json.dumps(value, sort_keys=True)


def json_document(value: dict) -> str:
    """One indented object, for `show --json`; values JSON cannot hold (a sampled row's dates) as text.

    >>> print(json_document({"b": datetime(2026, 1, 2), "a": [1]}))
    {
      "a": [
        1
      ],
      "b": "2026-01-02 00:00:00"
    }
    """
    return json.dumps(value, sort_keys=True, indent=2, default=str)


def export_line(value: dict) -> str:
    """One compact object per line, for `audit export --format jsonl`.

    >>> export_line({"b": 1, "a": [True, None]})
    '{"a":[true,null],"b":1}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; the store holds UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
