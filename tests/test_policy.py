"""Policy decisions are values, one per submission; the last branch fails closed."""
from datetime import timedelta

import pytest

from classify.statements import Kind, Statement
from config.settings import Policy
from gate.policy import (Allow, Estimate, Measured, NeedsApproval, Reject, allowed_rows, decide,
                         decide_row_cap)


def stmt(kind: Kind, text: str = "x", requires_approval: bool = True) -> Statement:
    return Statement(0, text, kind, requires_approval, f"a {kind}", (), None)


def one(statement: Statement, policy: Policy, measured: Measured | None = None):
    return decide((statement,), policy, measured)


def counted(rows: int | None, exact: bool = True, refusal: str | None = None) -> Measured:
    return Measured(Estimate(rows, exact, "test"), refusal)


def test_reads_are_allowed():
    assert isinstance(one(stmt(Kind.READ, requires_approval=False), Policy()), Allow)


@pytest.mark.parametrize("kind", [Kind.WRITE, Kind.DDL, Kind.PRIVILEGE, Kind.ADMIN, Kind.SESSION, Kind.UNKNOWN])
def test_everything_the_classifier_flags_needs_approval(kind):
    decision = one(stmt(kind), Policy(approvals=2, approvers=("a", "b")))
    assert isinstance(decision, NeedsApproval)
    assert (decision.reason, decision.approvals, decision.approvers) == ("a " + kind, 2, ("a", "b"))


def test_unknown_needs_approval_even_when_policy_exempts_everything():
    assert isinstance(one(stmt(Kind.UNKNOWN), Policy(approval_kinds=())), NeedsApproval)


def test_policy_can_exempt_a_kind():
    assert isinstance(one(stmt(Kind.DDL), Policy(approval_kinds=(Kind.WRITE,))), Allow)


def test_blocked_pattern_rejects_before_anything_else():
    decision = one(stmt(Kind.DDL, "drop  DATABASE prod"), Policy(blocked=(r"\bdrop\s+database\b",)))
    assert isinstance(decision, Reject) and "blocked by policy" in decision.message


def test_transaction_control_is_refused_with_advice():
    decision = one(stmt(Kind.TRANSACTION, "BEGIN", requires_approval=False), Policy())
    assert isinstance(decision, Reject) and "without BEGIN/COMMIT" in decision.message


def test_row_cap_refuses_or_asks_for_one_more_approval():
    needs = one(stmt(Kind.WRITE), Policy())
    assert decide_row_cap(10, Policy(max_write_rows=10), needs) is needs
    assert isinstance(decide_row_cap(11, Policy(max_write_rows=10), needs), Reject)
    more = decide_row_cap(11, Policy(max_write_rows=10, over_row_cap="extra-approval"), needs)
    assert isinstance(more, NeedsApproval) and more.approvals == 2
    assert decide_row_cap(None, Policy(max_write_rows=10), needs) is needs


@pytest.mark.parametrize("text, dialect", [("USE other_db", "mysql"), ("use shop", "mongodb")])
def test_switching_databases_under_a_target_is_refused_with_advice(text, dialect):
    from classify.statements import classify
    [statement] = classify(text, dialect)
    decision = one(statement, Policy())
    assert isinstance(decision, Reject) and "open a target for the other database" in decision.message


# -- the one decision, with the write's measured estimate ---------------------------------------------
def test_the_measured_count_decides_the_row_cap_in_the_same_decision():
    policy = Policy(max_write_rows=10)
    assert isinstance(one(stmt(Kind.WRITE), policy, counted(10)), NeedsApproval)
    refused = one(stmt(Kind.WRITE), policy, counted(11))
    assert isinstance(refused, Reject) and "over the policy's cap of 10" in refused.message


def test_a_write_that_cannot_be_snapshotted_is_refused_unless_the_policy_allows_it():
    measured = counted(None, False, refusal="no snapshot can be taken before this write")
    assert isinstance(one(stmt(Kind.WRITE), Policy(), measured), Reject)
    assert isinstance(one(stmt(Kind.WRITE), Policy(allow_unsnapshotted=True), measured), NeedsApproval)


def test_a_snapshot_over_its_cap_needs_one_more_approval():
    decision = one(stmt(Kind.WRITE), Policy(snapshot_max_rows=5, max_write_rows=None), counted(6))
    assert isinstance(decision, NeedsApproval) and decision.approvals == 2 and "over the cap of 5" in decision.reason


def test_the_decision_carries_everything_execution_needs():
    policy = Policy(row_tolerance=3, snapshot_above_rows=0, statement_timeout=timedelta(seconds=7),
                    approval_lifetime=timedelta(minutes=5), max_display_rows=50)
    decision = one(stmt(Kind.WRITE), policy, counted(4))
    assert (decision.limits.timeout_ms, decision.limits.max_display_rows) == (7000, 50)
    assert (decision.snapshot_above_rows, decision.lifetime) == (0, timedelta(minutes=5))
    assert allowed_rows(4, True, decision) == 7 and allowed_rows(None, False, decision) == policy.max_write_rows


def test_a_batch_is_one_approved_unit_even_when_each_statement_could_run_alone():
    reads = (stmt(Kind.READ, "SELECT 1", False), stmt(Kind.READ, "SELECT 2", False))
    decision = decide(reads, Policy(), counted(0), purpose="restore of snapshot s1")
    assert isinstance(decision, NeedsApproval)
    assert decision.reason.startswith("restore of snapshot s1: 2 statements in one transaction")


def test_one_blocked_statement_blocks_the_whole_batch():
    batch = (stmt(Kind.WRITE, "UPDATE t SET a = 1"), stmt(Kind.DDL, "DROP TABLE t"))
    assert isinstance(decide(batch, Policy(blocked=(r"\bdrop\s+table\b",)), counted(1)), Reject)
