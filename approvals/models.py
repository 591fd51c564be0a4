"""Approval requests and the rules that move them. PURE: no I/O, the clock is always passed in.

An approval binds to one exact statement on one target for one requester (`binding`), and to the
target's identity as its server reported it when the request was made (which database, on which
server, with which meaning-changing session settings), so the same target name pointed elsewhere runs
nothing. Everything that can happen to a request is a function here that returns the new request or
raises an `ApprovalError` saying what to do next; the service only loads, calls these, and stores the
result.

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
import shlex
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from approvals.names import looks_like


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
    """What is about to run is not what was approved (statement text, target, requester or the
    target's identity differ)."""


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
    target_identity: str | None = None   # what the server said the target was; None: made before 0004

    @property
    def approvals(self) -> int:
        return sum(v.verdict == Verdict.APPROVE for v in self.votes)

    @property
    def rejections(self) -> tuple[Vote, ...]:
        return tuple(v for v in self.votes if v.verdict == Verdict.REJECT)


def binding(statement: str, target: str, requester: str, target_identity: str | None = None) -> str:
    """sha256 over a JSON list of the exact text, target, requester and the target's identity: no two
    inputs encode alike. Without an identity it is the binding of a request made before identities
    were recorded (v1), so such a stored request still checks as unaltered, and can never match a
    gate that knows the identity.

    >>> binding("DELETE FROM t", "prod", "alice") == binding("DELETE FROM t ", "prod", "alice")
    False
    >>> binding("a", "bc", "d") == binding("ab", "c", "d")
    False
    >>> binding("a", "b", "c", "postgresql db=x") == binding("a", "b", "c", "postgresql db=y")
    False
    """
    fields = (["countersign-approval-v1", statement, target, requester] if target_identity is None else
              ["countersign-approval-v2", statement, target, requester, target_identity])
    encoded = json.dumps(fields, ensure_ascii=True)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def identity_differences(approved: str | None, now: str | None) -> list[str]:
    """The parts of a target's identity that differ, each as ``part: approved -> now`` (an identity is
    ``engine key=value ...``, values shell-quoted; see engines.base.identity_text).

    >>> identity_differences("postgresql host=h db=a search_path=public", "postgresql host=h db=b search_path=app")
    ['db: a -> b', 'search_path: public -> app']
    >>> identity_differences("sqlite path=/a dev=1 ino=2", "mysql host=h")
    ['engine: sqlite -> mysql', 'path: /a -> (none)', 'dev: 1 -> (none)', 'ino: 2 -> (none)', 'host: (none) -> h']
    """
    if approved == now:
        return []
    old, new = _identity_parts(approved), _identity_parts(now)
    if old is None or new is None:
        return [f"identity: {approved or '(none)'} -> {now or '(none)'}"]
    return [f"{key}: {old.get(key, '(none)')} -> {new.get(key, '(none)')}"
            for key in dict.fromkeys([*old, *new]) if old.get(key) != new.get(key)]


def _identity_parts(identity: str | None) -> dict[str, str] | None:
    """``engine key=value ...`` -> {"engine": ..., key: value}; None when it does not read that way."""
    try:
        words = shlex.split(identity or "")
    except ValueError:   # an unbalanced quote: an edited value, compared whole
        return None
    if not words or any("=" not in word for word in words[1:]):
        return None
    return {"engine": words[0], **dict(word.split("=", 1) for word in words[1:])}


# -- creation ----------------------------------------------------------------------------------
def new_request(*, id: str, now: datetime, lifetime: timedelta, requester: str, target: str,
                environment: str, statement: str, kind: str, reason: str, required_approvals: int,
                allowed_approvers: tuple[str, ...] | list[str] | None = None,
                estimated_rows: int | None = None, rows_exact: bool | None = None,
                session_id: str | None = None, target_identity: str | None = None) -> ApprovalRequest:
    """A pending request, refused up front if nobody could ever approve it. ``target_identity`` is what
    the target's server said it was (Driver.server_identity); the binding covers it."""
    approvers = None if allowed_approvers is None else tuple(dict.fromkeys(allowed_approvers))
    _check_new(requester, statement, required_approvals, approvers, lifetime)
    return ApprovalRequest(
        id=id, created_at=now, expires_at=now + lifetime, requester=requester, target=target,
        environment=environment, statement=statement,
        binding=binding(statement, target, requester, target_identity),
        kind=kind, reason=reason, required_approvals=required_approvals, allowed_approvers=approvers,
        estimated_rows=estimated_rows, rows_exact=rows_exact, status=Status.PENDING,
        session_id=session_id, target_identity=target_identity)


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
        others = [a for a in approvers if not looks_like(a, requester)]
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
    approvers = people(v.approver for v in votes if v.verdict == Verdict.APPROVE)
    return Status.APPROVED if len(approvers) >= required else Status.PENDING


def people(names) -> list[str]:
    """The distinct people among `names`: a name that looks like one already counted is the same person
    (the rules refuse such a vote; a row written around them still never counts twice).

    >>> people(["alice", "a1ice", "bob", "bob"])
    ['alice', 'bob']
    """
    counted: list[str] = []
    for name in names:
        if not any(looks_like(name, seen) for seen in counted):
            counted.append(name)
    return counted


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
    if looks_like(approver, request.requester):
        raise SelfApprovalError(
            f"{approver!r} looks like {request.requester!r}, who made request {rid}: one person cannot review "
            "their own request under another spelling; a second, distinct person must review it", rid)
    if request.allowed_approvers is not None and approver not in request.allowed_approvers:
        raise NotAnApproverError(
            f"{approver} is not an approver for request {rid}; ask one of: "
            f"{', '.join(request.allowed_approvers)}", rid)
    if any(v.approver == approver for v in request.votes):
        raise DuplicateVoteError(f"{approver} has already voted on request {rid}; each person votes once "
                                 "— ask another approver", rid)
    twin = next((v.approver for v in request.votes if looks_like(v.approver, approver)), None)
    if twin is not None:
        raise DuplicateVoteError(f"{approver!r} looks like {twin!r}, who has already voted on request {rid}: "
                                 "one person votes once, under one name — ask another approver", rid)


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
            now: datetime, target_identity: str | None = None) -> ApprovalRequest:
    """The single-use check right before execution: approved, unexpired, unused, and the same thing,
    on the same database: ``target_identity`` is what the target's server says NOW, read by the
    caller from its live connection, never copied from the request.

    The status column is not trusted on its own: the binding is recomputed from the stored text and
    identity, and the approval is recounted from votes cast on that binding, so an edited row is refused.
    ``now`` is the store's clock (the service passes its own), never a caller's.
    """
    rid = request.id
    _refuse_unusable(request, now)
    if binding(request.statement, request.target, request.requester, request.target_identity) != request.binding:
        raise BindingMismatchError(f"request {rid} was altered after it was made (its text or target "
                                   "identity no longer matches its binding); nothing runs — submit the "
                                   "statement again", rid)
    if binding(statement, target, requester, target_identity) != request.binding:
        raise BindingMismatchError(_mismatch(request, statement, target, requester, target_identity), rid)
    valid = tuple(v for v in request.votes if v.binding == request.binding and not looks_like(v.approver, request.requester)
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


def _mismatch(request: ApprovalRequest, statement: str, target: str, requester: str,
              target_identity: str | None) -> str:
    what = [name for name, ok in (("statement text", statement == request.statement),
                                  ("target", target == request.target),
                                  ("requester", requester == request.requester)) if not ok]
    if what or target_identity == request.target_identity:
        return (f"request {request.id} approved a different {' and '.join(what) or 'statement'}; an approval "
                "covers exactly the text, target and requester it was given — submit this one for approval")
    if request.target_identity is None:
        return (f"request {request.id} was approved before approvals named the database they run on; "
                "nothing ran — submit the statement again for an approval bound to it")
    differs = "; ".join(identity_differences(request.target_identity, target_identity))
    return (f"request {request.id} was approved for {request.target} as its server then described it, and "
            f"the server now says otherwise ({differs}); "
            "nothing ran — an approval covers exactly the database and session settings the reviewers saw, "
            "so submit the statement again here for a fresh approval")
