"""Policy decisions are values; the last branch fails closed."""
import pytest

from gate.policy import Allow, NeedsApproval, Reject, decide, decide_row_cap
from config.settings import Policy
from classify.statements import Kind, Statement


def stmt(kind: Kind, text: str = "x", requires_approval: bool = True) -> Statement:
    return Statement(0, text, kind, requires_approval, f"a {kind}", (), None)


def test_reads_are_allowed():
    assert isinstance(decide(stmt(Kind.READ, requires_approval=False), Policy()), Allow)


@pytest.mark.parametrize("kind", [Kind.WRITE, Kind.DDL, Kind.PRIVILEGE, Kind.ADMIN, Kind.SESSION, Kind.UNKNOWN])
def test_everything_the_classifier_flags_needs_approval(kind):
    decision = decide(stmt(kind), Policy(approvals=2, approvers=("a", "b")))
    assert decision == NeedsApproval("a " + kind, 2, ("a", "b"))


def test_unknown_needs_approval_even_when_policy_exempts_everything():
    assert isinstance(decide(stmt(Kind.UNKNOWN), Policy(approval_kinds=())), NeedsApproval)


def test_policy_can_exempt_a_kind():
    assert isinstance(decide(stmt(Kind.DDL), Policy(approval_kinds=(Kind.WRITE,))), Allow)


def test_blocked_pattern_rejects_before_anything_else():
    decision = decide(stmt(Kind.DDL, "drop  DATABASE prod"), Policy(blocked=(r"\bdrop\s+database\b",)))
    assert isinstance(decision, Reject) and "blocked by policy" in decision.message


def test_transaction_control_is_refused_with_advice():
    decision = decide(stmt(Kind.TRANSACTION, "BEGIN", requires_approval=False), Policy())
    assert isinstance(decision, Reject) and "without BEGIN/COMMIT" in decision.message


def test_row_cap_refuses_or_asks_for_one_more_approval():
    needs = NeedsApproval("a write", 1, ())
    assert decide_row_cap(10, Policy(max_write_rows=10), needs) is needs
    assert isinstance(decide_row_cap(11, Policy(max_write_rows=10), needs), Reject)
    more = decide_row_cap(11, Policy(max_write_rows=10, over_row_cap="extra-approval"), needs)
    assert isinstance(more, NeedsApproval) and more.approvals == 2
    assert decide_row_cap(None, Policy(max_write_rows=10), needs) is needs


@pytest.mark.parametrize("text, dialect", [("USE other_db", "mysql"), ("use shop", "mongodb")])
def test_switching_databases_under_a_target_is_refused_with_advice(text, dialect):
    from classify.statements import classify
    [statement] = classify(text, dialect)
    decision = decide(statement, Policy())
    assert isinstance(decision, Reject) and "open a target for the other database" in decision.message
