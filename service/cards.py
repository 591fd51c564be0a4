"""An approval request as the reviewer's card, and how it ended. PURE.

>>> from datetime import datetime, timedelta, timezone
>>> from approvals import models
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> r = models.new_request(id="r1", now=t0, lifetime=timedelta(minutes=30), requester="alice", target="db",
...                        environment="production", statement="DELETE FROM t WHERE id = 1", kind="write",
...                        reason="writes need approval", required_approvals=1, estimated_rows=1, rows_exact=True)
>>> decided_for(r) is None
True
>>> r = models.vote(r, models.Vote("bob", "reject", "too broad", t0, "slack"), t0)
>>> decided_for(r)
Decided(status='rejected', by=('bob',), at=datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc), reason='too broad')
"""
from __future__ import annotations

from approvals.models import ApprovalRequest, Status, Verdict
from approvals.slack.blocks import Card, Decided
from config.settings import Policy

SNAPSHOT_KINDS = frozenset({"write", "ddl", "batch", "unknown"})


def card_for(request: ApprovalRequest, policy: Policy | None) -> Card:
    r = request
    return Card(request_id=r.id, requester=r.requester, target=r.target, environment=r.environment,
                statement=r.statement, kind=r.kind, reason=r.reason, rows=r.estimated_rows,
                rows_exact=r.rows_exact, approvals=r.approvals, required=r.required_approvals,
                approvers=r.allowed_approvers, expires_at=r.expires_at, identity=r.target_identity,
                snapshot=snapshot_note(r.kind, r.estimated_rows, policy),
                policy=policy.name if policy is not None else None)


def snapshot_note(kind: str, rows: int | None, policy: Policy | None) -> str | None:
    """What the snapshot will hold, in words (None for statements that change no rows).

    >>> snapshot_note("write", 25, Policy()), snapshot_note("write", 1, Policy(snapshot_above_rows=1))
    ('the 25 rows it touches are copied before it runs', 'none: 1 row(s), at or under snapshot_above_rows (1)')
    >>> snapshot_note("write", None, Policy()), snapshot_note("privilege", 3, Policy())
    ('the rows it touches are copied before it runs (their number is not known yet)', None)
    """
    if kind not in SNAPSHOT_KINDS:
        return None
    limit = policy.snapshot_above_rows if policy is not None else 0
    if rows is None:
        return "the rows it touches are copied before it runs (their number is not known yet)"
    if rows <= limit:
        return f"none: {rows} row(s), at or under snapshot_above_rows ({limit})"
    return f"the {rows} rows it touches are copied before it runs"


def decided_for(request: ApprovalRequest) -> Decided | None:
    """How the request ended; None while it is still open to votes."""
    r = request
    approvers = tuple(v.approver for v in r.votes if v.verdict == Verdict.APPROVE)
    last = r.votes[-1].ts if r.votes else r.created_at
    if r.status == Status.PENDING:
        return None
    if r.status == Status.REJECTED:
        no = [v for v in r.votes if v.verdict == Verdict.REJECT]
        return Decided("rejected", tuple(v.approver for v in no), no[-1].ts,
                       "; ".join(v.comment for v in no if v.comment) or None)
    if r.status == Status.EXPIRED:
        return Decided("expired", (), r.expires_at)
    if r.status == Status.USED:
        return Decided("used", approvers, r.used_at or last)
    if r.status == Status.CANCELLED:
        return Decided("cancelled", (r.requester,), last)
    return Decided("approved", approvers, last)
