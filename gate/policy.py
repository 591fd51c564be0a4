"""The policy decision. PURE: decisions are values, and there is exactly one per submission.

``decide(statements, policy, measured)`` is a function of the classified statements, the target's
policy and the write's measured estimate (counted on the target before it is called), and returns
one of ``Allow``, ``NeedsApproval`` or ``Reject``. Everything execution needs from the policy (row
limit, snapshot threshold, timeout, display cap) travels inside the decision: execution never reads
the policy again.

>>> from classify.statements import Statement, Kind
>>> read = Statement(0, "SELECT 1", Kind.READ, False, "a plain read", (), None)
>>> decide((read,), Policy()).reason
'a plain read'
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import timedelta

from classify.normalize import normal_forms   # blocked patterns see the text as written and normalised
from classify.statements import Kind, Statement
from config.settings import Policy


@dataclass(frozen=True)
class Estimate:
    rows: int | None                 # None: could not be counted (never a silent zero)
    exact: bool
    note: str


@dataclass(frozen=True)
class Measured:
    """What was measured on the target before deciding: the rows the write touches, and why a
    snapshot cannot be planned for it (None when it can)."""
    estimate: Estimate
    unsnapshottable: str | None = None


@dataclass(frozen=True)
class Limits:
    timeout_ms: int
    max_display_rows: int


@dataclass(frozen=True)
class Allow:
    reason: str
    limits: Limits


@dataclass(frozen=True)
class NeedsApproval:
    reason: str
    approvals: int
    approvers: tuple[str, ...]       # empty: anyone but the requester
    limits: Limits
    lifetime: timedelta
    row_tolerance: int = 0           # rows a write may exceed its approved exact count by
    max_write_rows: int | None = None  # the limit when the count is not exact
    snapshot_above_rows: int = 0     # snapshot writes that touch more rows than this (0: every write)


@dataclass(frozen=True)
class Reject:
    message: str

    @property
    def reason(self) -> str:
        return self.message


Decision = Allow | NeedsApproval | Reject


def decide(statements: tuple[Statement, ...], policy: Policy, measured: Measured | None = None,
           purpose: str | None = None) -> Decision:
    """The one decision for statements submitted together (one, or a batch run as one transaction)."""
    judged = [judge(s, policy) for s in statements]
    rejected = next((d for d in judged if isinstance(d, Reject)), None)
    if rejected is not None:
        return rejected
    gated = [d for d in judged if isinstance(d, NeedsApproval)]
    if len(statements) == 1 and not gated:
        return judged[0]
    decision = _batch(gated, statements, policy)
    if purpose:
        decision = replace(decision, reason=f"{purpose}: {decision.reason}")
    return _measured(decision, policy, measured)


def judge(statement: Statement, policy: Policy) -> Decision:
    """One statement on its own, before anything is measured."""
    limits = Limits(policy.statement_timeout_ms, policy.max_display_rows)
    for pattern in policy.blocked:
        if any(re.search(pattern, form, re.IGNORECASE | re.DOTALL) for form in normal_forms(statement.text)):
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
        return Allow(statement.reason, limits)
    if statement.kind is not Kind.UNKNOWN and statement.kind not in policy.approval_kinds:
        return Allow(f"{statement.reason}; policy {policy.name!r} lets {statement.kind} statements run "
                     "without approval", limits)
    # Fail closed: everything the classifier flags, and every unknown, needs a second person.
    return _needs(statement.reason, policy)


def _needs(reason: str, policy: Policy) -> NeedsApproval:
    return NeedsApproval(reason, policy.approvals, policy.approvers,
                         Limits(policy.statement_timeout_ms, policy.max_display_rows),
                         policy.approval_lifetime, policy.row_tolerance, policy.max_write_rows,
                         policy.snapshot_above_rows)


def _batch(gated: list[NeedsApproval], statements: tuple[Statement, ...], policy: Policy) -> NeedsApproval:
    # A batch runs as one approved unit, even when policy would let each statement run alone.
    decision = gated[0] if gated else _needs("runs as one batch in one transaction", policy)
    if len(statements) > 1:
        decision = replace(decision, reason=f"{len(statements)} statements in one transaction; "
                                            f"the first: {decision.reason}")
    return decision


def _measured(decision: NeedsApproval, policy: Policy, measured: Measured | None) -> Decision:
    if measured is None:
        return decision
    if measured.unsnapshottable and not policy.allow_unsnapshotted:
        return Reject(measured.unsnapshottable)
    rows = measured.estimate.rows
    capped = decide_row_cap(rows, policy, decision)
    if isinstance(capped, Reject):
        return capped
    return snapshot_cap(rows, policy, capped)


def decide_row_cap(rows: int | None, policy: Policy, approvals: NeedsApproval) -> Decision:
    """A write over the policy's row cap is refused, or needs one more approver."""
    if rows is None or policy.max_write_rows is None or rows <= policy.max_write_rows:
        return approvals
    if policy.over_row_cap == "refuse":
        return Reject(f"this write touches {rows} rows, over the policy's cap of {policy.max_write_rows}; "
                      "split it into smaller batches")
    return replace(approvals, reason=f"{approvals.reason}; {rows} rows is over the cap of {policy.max_write_rows}",
                   approvals=approvals.approvals + 1)


def snapshot_cap(rows: int | None, policy: Policy, decision: NeedsApproval) -> NeedsApproval:
    """A snapshot over the policy's size cap needs one more approver."""
    if rows is not None and rows > policy.snapshot_max_rows:
        return replace(decision, reason=f"{decision.reason}; its snapshot of {rows} rows is over the cap of "
                                        f"{policy.snapshot_max_rows}", approvals=decision.approvals + 1)
    return decision


def allowed_rows(rows: int | None, exact: bool, decision: NeedsApproval) -> int | None:
    """The approved count: an exact count binds (plus the tolerance); otherwise only the row cap does.

    >>> needs = _needs("w", Policy(row_tolerance=2))
    >>> allowed_rows(10, True, needs), allowed_rows(None, False, needs)
    (12, 100000)
    """
    if exact and rows is not None:
        return rows + decision.row_tolerance
    return decision.max_write_rows
