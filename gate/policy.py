"""The policy decision for one classified statement. PURE: decisions are values.

>>> from classify.statements import Statement, Kind
>>> read = Statement(0, "SELECT 1", Kind.READ, False, "a plain read", (), None)
>>> decide(read, Policy())
Allow(reason='a plain read')
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from config.settings import Policy
from classify.statements import Kind, Statement


@dataclass(frozen=True)
class Allow:
    reason: str


@dataclass(frozen=True)
class NeedsApproval:
    reason: str
    approvals: int
    approvers: tuple[str, ...]       # empty: anyone but the requester


@dataclass(frozen=True)
class Reject:
    message: str


Decision = Allow | NeedsApproval | Reject


def decide(statement: Statement, policy: Policy) -> Decision:
    for pattern in policy.blocked:
        if re.search(pattern, statement.text, re.IGNORECASE | re.DOTALL):
            return Reject(f"blocked by policy {policy.name!r} (pattern {pattern!r}); "
                          "this statement never runs through Countersign")
    if statement.kind is Kind.SESSION and re.match(r"\s*use\b", statement.text, re.IGNORECASE):
        # Reviewers approve "this statement on this target"; switching databases under them would
        # change what an approval means without anyone seeing it.
        return Reject("a target is one database, so USE is not run here; open a target for the other "
                      "database instead (a configured name, or its URL)")
    if statement.kind is Kind.TRANSACTION:
        return Reject("Countersign runs each statement in its own transaction (reads read-only, approved "
                      "writes at REPEATABLE READ); send the statements without BEGIN/COMMIT")
    if not statement.requires_approval:
        return Allow(statement.reason)
    if statement.kind is not Kind.UNKNOWN and statement.kind not in policy.approval_kinds:
        return Allow(f"{statement.reason}; policy {policy.name!r} lets {statement.kind} statements run "
                     "without approval")
    # Fail closed: everything the classifier flags, and every unknown, needs a second person.
    return NeedsApproval(statement.reason, policy.approvals, policy.approvers)


def decide_row_cap(rows: int | None, policy: Policy, approvals: NeedsApproval) -> Decision:
    """A write over the policy's row cap is refused, or needs one more approver."""
    if rows is None or policy.max_write_rows is None or rows <= policy.max_write_rows:
        return approvals
    if policy.over_row_cap == "refuse":
        return Reject(f"this write touches {rows} rows, over the policy's cap of {policy.max_write_rows}; "
                      "split it into smaller batches")
    return NeedsApproval(f"{approvals.reason}; {rows} rows is over the cap of {policy.max_write_rows}",
                         approvals.approvals + 1, approvals.approvers)
