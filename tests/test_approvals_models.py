"""The pure approval rules: binding, who may vote, N-of-M, expiry, single use."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals import models
from approvals.models import Status, Vote

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
SQL = "UPDATE deploys SET status = 'archived' WHERE site_id = 3"


def make(**overrides) -> models.ApprovalRequest:
    fields = dict(id="req-1", now=T0, lifetime=timedelta(minutes=30), requester="alice", target="prod",
                  environment="production", statement=SQL, kind="write", reason="writes need approval",
                  required_approvals=1, allowed_approvers=None)
    fields.update(overrides)
    return models.new_request(**fields)


def ballot(who: str, verdict: str = "approve", at: datetime = T0) -> Vote:
    return Vote(who, verdict, None, at, "local")


def approved(**overrides) -> models.ApprovalRequest:
    return models.vote(make(**overrides), ballot("bob"), T0)


# -- binding ------------------------------------------------------------------------------------
def test_binding_is_sha256_hex_of_exact_inputs():
    value = models.binding(SQL, "prod", "alice")
    assert len(value) == 64 and int(value, 16) >= 0
    assert value == models.binding(SQL, "prod", "alice")
    assert value != models.binding(SQL + " ", "prod", "alice")
    assert value != models.binding(SQL, "prod2", "alice")
    assert value != models.binding(SQL, "prod", "bob")


@given(st.text(), st.text(), st.text(), st.text(), st.text(), st.text())
def test_binding_never_collides_for_different_triples(s1, t1, r1, s2, t2, r2):
    if (s1, t1, r1) != (s2, t2, r2):
        assert models.binding(s1, t1, r1) != models.binding(s2, t2, r2)
    else:
        assert models.binding(s1, t1, r1) == models.binding(s2, t2, r2)


def test_field_boundaries_are_unambiguous():
    assert models.binding("ab", "c", "d") != models.binding("a", "bc", "d")
    assert models.binding("a", "b\", \"c", "d") != models.binding("a\", \"b", "c", "d")


# -- creation -----------------------------------------------------------------------------------
def test_new_request_is_pending_and_bound():
    request = make()
    assert request.status is Status.PENDING
    assert request.expires_at == T0 + timedelta(minutes=30)
    assert request.binding == models.binding(SQL, "prod", "alice")


@pytest.mark.parametrize("overrides, fragment", [
    ({"required_approvals": 0}, "at least 1"),
    ({"allowed_approvers": ("alice",)}, "only 0 allowed approver"),
    ({"allowed_approvers": ("alice", "bob"), "required_approvals": 2}, "only 1 allowed approver"),
    ({"lifetime": timedelta(0)}, "positive"),
    ({"statement": "  "}, "no statement"),
    ({"requester": ""}, "COUNTERSIGN_USER"),
])
def test_requests_nobody_could_approve_are_refused_up_front(overrides, fragment):
    with pytest.raises(models.InvalidRequestError, match=fragment):
        make(**overrides)


# -- who may vote -------------------------------------------------------------------------------
@pytest.mark.parametrize("verdict", ["approve", "reject"])
def test_requester_never_votes_on_their_own_request(verdict):
    with pytest.raises(models.SelfApprovalError, match="own request.*second person.*cancel"):
        models.vote(make(), ballot("alice", verdict), T0)


def test_approver_outside_the_allowed_list_is_refused():
    request = make(allowed_approvers=("bob", "carol"))
    with pytest.raises(models.NotAnApproverError, match="ask one of: bob, carol"):
        models.vote(request, ballot("mallory"), T0)
    assert models.vote(request, ballot("carol"), T0).status is Status.APPROVED


def test_one_vote_per_person():
    request = models.vote(make(required_approvals=2), ballot("bob"), T0)
    with pytest.raises(models.DuplicateVoteError, match="already voted"):
        models.vote(request, ballot("bob"), T0)


def test_unknown_verdict_is_refused():
    with pytest.raises(models.ApprovalError, match="'approve' or 'reject'"):
        models.vote(make(), ballot("bob", "maybe"), T0)


# -- N-of-M and reject --------------------------------------------------------------------------
def test_two_of_m_needs_two_distinct_approvals():
    request = make(required_approvals=2)
    once = models.vote(request, ballot("bob"), T0)
    assert once.status is Status.PENDING and once.approvals == 1
    twice = models.vote(once, ballot("carol"), T0)
    assert twice.status is Status.APPROVED and twice.approvals == 2


def test_any_reject_rejects():
    once = models.vote(make(required_approvals=2), ballot("bob"), T0)
    rejected = models.vote(once, Vote("carol", "reject", "wrong site", T0, "local"), T0)
    assert rejected.status is Status.REJECTED
    assert [v.comment for v in rejected.rejections] == ["wrong site"]


@pytest.mark.parametrize("status", ["approved", "rejected", "used", "cancelled"])
def test_decided_requests_take_no_more_votes(status):
    request = replace(make(required_approvals=2), status=Status(status))
    with pytest.raises(models.AlreadyDecidedError, match=f"already {status}"):
        models.vote(request, ballot("bob"), T0)


def test_votes_record_the_binding_the_voter_saw():
    request = models.vote(make(), ballot("bob"), T0)
    assert request.votes[0].binding == request.binding


# -- expiry -------------------------------------------------------------------------------------
def test_expiry_comes_from_the_clock():
    request = make()
    assert models.status_at(request, T0 + timedelta(minutes=29)) is Status.PENDING
    assert models.status_at(request, T0 + timedelta(minutes=30)) is Status.EXPIRED
    assert models.status_at(approved(), T0 + timedelta(hours=1)) is Status.EXPIRED
    used = models.consume(approved(), statement=SQL, target="prod", requester="alice", now=T0)
    assert models.status_at(used, T0 + timedelta(hours=1)) is Status.USED


def test_voting_on_an_expired_request_is_refused():
    with pytest.raises(models.ExpiredError, match="expired.*submit the statement again"):
        models.vote(make(), ballot("bob"), T0 + timedelta(minutes=31))


def test_expire_returns_the_same_request_when_not_due():
    request = make()
    assert models.expire(request, T0) is request
    assert models.expire(request, T0 + timedelta(days=1)).status is Status.EXPIRED


# -- cancel -------------------------------------------------------------------------------------
def test_only_the_requester_cancels_and_only_open_requests():
    with pytest.raises(models.NotRequesterError, match="only alice can cancel"):
        models.cancel(make(), "bob", T0)
    assert models.cancel(approved(), "alice", T0).status is Status.CANCELLED
    with pytest.raises(models.AlreadyDecidedError):
        models.cancel(replace(make(), status=Status.USED), "alice", T0)
    with pytest.raises(models.ExpiredError):
        models.cancel(make(), "alice", T0 + timedelta(hours=1))


# -- consume ------------------------------------------------------------------------------------
def test_consume_marks_used_once():
    used = models.consume(approved(), statement=SQL, target="prod", requester="alice", now=T0)
    assert used.status is Status.USED and used.used_at == T0
    with pytest.raises(models.AlreadyUsedError, match="already used"):
        models.consume(used, statement=SQL, target="prod", requester="alice", now=T0)


@pytest.mark.parametrize("statement, target, requester, what", [
    (SQL.replace("3", "4"), "prod", "alice", "statement text"),
    (SQL + ";", "prod", "alice", "statement text"),
    (SQL, "staging", "alice", "target"),
    (SQL, "prod", "mallory", "requester"),
])
def test_consume_refuses_anything_but_what_was_approved(statement, target, requester, what):
    with pytest.raises(models.BindingMismatchError, match=f"different {what}"):
        models.consume(approved(), statement=statement, target=target, requester=requester, now=T0)


@pytest.mark.parametrize("request_, error", [
    (make(), models.NotApprovedError),
    (models.vote(make(), ballot("bob", "reject"), T0), models.AlreadyDecidedError),
    (models.cancel(make(), "alice", T0), models.AlreadyDecidedError),
])
def test_consume_refuses_requests_that_are_not_approved(request_, error):
    with pytest.raises(error):
        models.consume(request_, statement=SQL, target="prod", requester="alice", now=T0)


def test_consume_refuses_an_expired_approval():
    with pytest.raises(models.ExpiredError):
        models.consume(approved(), statement=SQL, target="prod", requester="alice",
                       now=T0 + timedelta(minutes=30))


def test_consume_distrusts_an_edited_row():
    """A row whose text was edited, or marked approved without valid votes, never runs."""
    edited = replace(approved(), statement="DELETE FROM deploys")
    with pytest.raises(models.BindingMismatchError, match="altered"):
        models.consume(edited, statement="DELETE FROM deploys", target="prod", requester="alice", now=T0)
    forged = replace(make(), status=Status.APPROVED)
    with pytest.raises(models.NotApprovedError, match="do not add up"):
        models.consume(forged, statement=SQL, target="prod", requester="alice", now=T0)
    self_voted = replace(make(), status=Status.APPROVED, votes=(replace(ballot("alice"), binding=make().binding),))
    with pytest.raises(models.NotApprovedError):
        models.consume(self_voted, statement=SQL, target="prod", requester="alice", now=T0)


def test_module_examples_hold():
    import doctest
    result = doctest.testmod(models)
    assert result.attempted > 0 and result.failed == 0
