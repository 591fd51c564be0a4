"""Approval requests and the rules that move them. PURE: no I/O, the clock is always passed in.

An approval binds to one exact statement on one target for one requester (`binding`). Everything that
can happen to a request is a function here that returns the new request or raises an `ApprovalError`
saying what to do next; the service only loads, calls these, and stores the result.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> r = new_request(id="r1", now=t0, lifetime=timedelta(minutes=30), requester="alice", target="prod",
...                 environment="production", statement="DELETE FROM t WHERE id = 1", kind="write",
...                 reason="writes need approval", required_approvals=1)
>>> r = vote(r, Vote("bob", "approve", None, t0, "local"), t0)
>>> r.status
<Status.APPROVED: 'approved'>
>>> consume(r, statement="DELETE FROM t WHERE id = 1", target="prod", requester="alice", now=t0).status
<Status.USED: 'used'>
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    USED = "used"
    CANCELLED = "cancelled"


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


# Statuses a request never leaves.
FINAL = frozenset({Status.REJECTED, Status.EXPIRED, Status.USED, Status.CANCELLED})
# Statuses a console waiting for a decision stops on.
DECIDED = frozenset({Status.APPROVED}) | FINAL


# -- errors ------------------------------------------------------------------------------------
class ApprovalError(Exception):
    """Root of every refusal in the approval flow; the message says what to do next."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class InvalidRequestError(ApprovalError):
    """The request itself is malformed or can never be approved."""


class UnknownRequestError(ApprovalError):
    """No request has this id (or the prefix matches none, or several)."""


class SelfApprovalError(ApprovalError):
    """The requester tried to vote on their own request."""


class NotAnApproverError(ApprovalError):
    """The voter is not in the request's list of allowed approvers."""


class DuplicateVoteError(ApprovalError):
    """This person has already voted on this request."""


class ExpiredError(ApprovalError):
    """The request's lifetime has passed."""


class AlreadyDecidedError(ApprovalError):
    """The request is no longer open to this action (approved, rejected, used or cancelled)."""


class NotApprovedError(ApprovalError):
    """Consume was asked for a request that has not (validly) been approved."""


class AlreadyUsedError(ApprovalError):
    """An approval is good for exactly one execution."""


class BindingMismatchError(ApprovalError):
    """What is about to run is not what was approved (statement text, target or requester differ)."""


class NotRequesterError(ApprovalError):
    """Only the requester may cancel a request."""


# -- values ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Vote:
    approver: str
    verdict: Verdict
    comment: str | None
    ts: datetime
    source: str                      # local | slack
    binding: str | None = None       # the binding the voter saw; filled in by `vote`


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    created_at: datetime
    expires_at: datetime
    requester: str
    target: str
    environment: str
    statement: str
    binding: str
    kind: str
    reason: str
    required_approvals: int
    allowed_approvers: tuple[str, ...] | None   # None: anyone but the requester
    estimated_rows: int | None
    rows_exact: bool | None
    status: Status
    used_at: datetime | None = None
    session_id: str | None = None
    votes: tuple[Vote, ...] = ()

    @property
    def approvals(self) -> int:
        return sum(v.verdict == Verdict.APPROVE for v in self.votes)

    @property
    def rejections(self) -> tuple[Vote, ...]:
        return tuple(v for v in self.votes if v.verdict == Verdict.REJECT)


def binding(statement: str, target: str, requester: str) -> str:
    """sha256 over a JSON list of the exact text, target and requester: no two inputs encode alike.

    >>> binding("DELETE FROM t", "prod", "alice") == binding("DELETE FROM t ", "prod", "alice")
    False
    >>> binding("a", "bc", "d") == binding("ab", "c", "d")
    False
    """
    encoded = json.dumps(["countersign-approval-v1", statement, target, requester], ensure_ascii=True)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


# -- creation ----------------------------------------------------------------------------------
def new_request(*, id: str, now: datetime, lifetime: timedelta, requester: str, target: str,
                environment: str, statement: str, kind: str, reason: str, required_approvals: int,
                allowed_approvers: tuple[str, ...] | list[str] | None = None,
                estimated_rows: int | None = None, rows_exact: bool | None = None,
                session_id: str | None = None) -> ApprovalRequest:
    """A pending request, refused up front if nobody could ever approve it."""
    approvers = None if allowed_approvers is None else tuple(dict.fromkeys(allowed_approvers))
    _check_new(requester, statement, required_approvals, approvers, lifetime)
    return ApprovalRequest(
        id=id, created_at=now, expires_at=now + lifetime, requester=requester, target=target,
        environment=environment, statement=statement, binding=binding(statement, target, requester),
        kind=kind, reason=reason, required_approvals=required_approvals, allowed_approvers=approvers,
        estimated_rows=estimated_rows, rows_exact=rows_exact, status=Status.PENDING,
        session_id=session_id)


def _check_new(requester: str, statement: str, required: int, approvers: tuple[str, ...] | None,
               lifetime: timedelta) -> None:
    if not requester.strip():
        raise InvalidRequestError("a request needs a requester; set COUNTERSIGN_USER")
    if not statement.strip():
        raise InvalidRequestError("there is no statement to approve")
    if required < 1:
        raise InvalidRequestError(f"required_approvals must be at least 1, not {required}")
    if lifetime <= timedelta(0):
        raise InvalidRequestError("an approval lifetime must be positive; check approval_lifetime")
    if approvers is not None:
        others = [a for a in approvers if a != requester]
        if len(others) < required:
            raise InvalidRequestError(
                f"{required} approval(s) needed but only {len(others)} allowed approver(s) other than "
                f"{requester} ({', '.join(others) or 'none'}); ask an admin to add approvers to the policy")


# -- reading state -----------------------------------------------------------------------------
def status_at(request: ApprovalRequest, now: datetime) -> Status:
    """The status as of `now`: an open request past its expiry counts as expired."""
    if request.status in (Status.PENDING, Status.APPROVED) and now >= request.expires_at:
        return Status.EXPIRED
    return request.status


def expire(request: ApprovalRequest, now: datetime) -> ApprovalRequest:
    """The request with its expiry applied (unchanged when it is not due)."""
    status = status_at(request, now)
    return request if status == request.status else replace(request, status=status)


def decided_by_votes(votes: tuple[Vote, ...], required: int) -> Status:
    """N-of-M: any reject rejects; `required` distinct approvals approve; otherwise still pending."""
    if any(v.verdict == Verdict.REJECT for v in votes):
        return Status.REJECTED
    approvers = {v.approver for v in votes if v.verdict == Verdict.APPROVE}
    return Status.APPROVED if len(approvers) >= required else Status.PENDING


# -- transitions -------------------------------------------------------------------------------
def vote(request: ApprovalRequest, ballot: Vote, now: datetime) -> ApprovalRequest:
    """Add one person's vote and recompute the status; every refusal says why and what next."""
    verdict = _verdict(ballot.verdict, request.id)
    _refuse_closed(request, now, "vote on")
    _check_voter(request, ballot.approver)
    votes = request.votes + (replace(ballot, verdict=verdict, binding=request.binding),)
    return replace(request, votes=votes, status=decided_by_votes(votes, request.required_approvals))


def _verdict(value: str, request_id: str) -> Verdict:
    try:
        return Verdict(value)
    except ValueError:
        raise ApprovalError(f"a vote is 'approve' or 'reject', not {value!r}", request_id) from None


def _check_voter(request: ApprovalRequest, approver: str) -> None:
    rid = request.id
    if not approver.strip():
        raise ApprovalError("a vote needs the approver's name; set COUNTERSIGN_USER", rid)
    if approver == request.requester:
        raise SelfApprovalError(
            f"{approver} cannot vote on their own request {rid}: a second person must review it "
            f"(you may cancel it with `countersign approvals cancel {rid}`)", rid)
    if request.allowed_approvers is not None and approver not in request.allowed_approvers:
        raise NotAnApproverError(
            f"{approver} is not an approver for request {rid}; ask one of: "
            f"{', '.join(request.allowed_approvers)}", rid)
    if any(v.approver == approver for v in request.votes):
        raise DuplicateVoteError(f"{approver} has already voted on request {rid}; each person votes once "
                                 "— ask another approver", rid)


def _refuse_closed(request: ApprovalRequest, now: datetime, action: str) -> None:
    """Only a pending, unexpired request takes votes."""
    status = status_at(request, now)
    rid = request.id
    if status == Status.EXPIRED:
        raise ExpiredError(f"request {rid} expired at {request.expires_at:%Y-%m-%d %H:%M:%S %Z}; "
                           "the requester must submit the statement again", rid)
    if status != Status.PENDING:
        raise AlreadyDecidedError(f"cannot {action} request {rid}: it is already {status}; "
                                  "`countersign approvals list` shows the open ones", rid)


def cancel(request: ApprovalRequest, by: str, now: datetime) -> ApprovalRequest:
    """The requester withdraws a request that has not been used or closed."""
    rid = request.id
    if by != request.requester:
        raise NotRequesterError(f"only {request.requester} can cancel request {rid}; to stop it, "
                                f"reject it with `countersign approvals reject {rid} --reason ...`", rid)
    status = status_at(request, now)
    if status == Status.EXPIRED:
        raise ExpiredError(f"request {rid} has already expired; nothing to cancel", rid)
    if status not in (Status.PENDING, Status.APPROVED):
        raise AlreadyDecidedError(f"request {rid} is already {status}; nothing to cancel", rid)
    return replace(request, status=Status.CANCELLED)


def consume(request: ApprovalRequest, *, statement: str, target: str, requester: str,
            now: datetime) -> ApprovalRequest:
    """The single-use check right before execution: approved, unexpired, unused, and the same thing.

    The status column is not trusted on its own: the binding is recomputed from the stored text and
    the approval is recounted from votes cast on that binding, so an edited row is refused.
    """
    rid = request.id
    _refuse_unusable(request, now)
    if binding(request.statement, request.target, request.requester) != request.binding:
        raise BindingMismatchError(f"request {rid} was altered after it was made (its text no longer "
                                   "matches its binding); nothing runs — submit the statement again", rid)
    if binding(statement, target, requester) != request.binding:
        raise BindingMismatchError(_mismatch(request, statement, target, requester), rid)
    valid = tuple(v for v in request.votes if v.binding == request.binding and v.approver != request.requester
                  and (request.allowed_approvers is None or v.approver in request.allowed_approvers))
    if decided_by_votes(valid, request.required_approvals) != Status.APPROVED:
        raise NotApprovedError(f"request {rid} is marked approved but its votes do not add up to "
                               f"{request.required_approvals} valid approval(s); nothing runs — ask for "
                               "a fresh approval", rid)
    return replace(request, status=Status.USED, used_at=now)


def _refuse_unusable(request: ApprovalRequest, now: datetime) -> None:
    rid = request.id
    status = status_at(request, now)
    if status == Status.APPROVED:
        return
    if status == Status.EXPIRED:
        raise ExpiredError(f"approval {rid} expired at {request.expires_at:%Y-%m-%d %H:%M:%S %Z}; "
                           "submit the statement again for a fresh approval", rid)
    if status == Status.USED:
        raise AlreadyUsedError(f"approval {rid} was already used at {request.used_at}; an approval runs "
                               "one statement once — submit it again for a new approval", rid)
    if status == Status.PENDING:
        missing = request.required_approvals - request.approvals
        raise NotApprovedError(f"request {rid} still needs {missing} approval(s); wait for a reviewer", rid)
    raise AlreadyDecidedError(f"request {rid} is {status}; it cannot run — submit it again if it "
                              "should", rid)


def _mismatch(request: ApprovalRequest, statement: str, target: str, requester: str) -> str:
    what = [name for name, ok in (("statement text", statement == request.statement),
                                  ("target", target == request.target),
                                  ("requester", requester == request.requester)) if not ok]
    return (f"request {request.id} approved a different {' and '.join(what) or 'statement'}; an approval "
            "covers exactly the text, target and requester it was given — submit this one for approval")
