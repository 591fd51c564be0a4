"""Typed audit events: one frozen dataclass per kind of event, each registered in EVENTS.

The trail stores an event as its `type` and a JSON payload of its fields, with exactly the keys and
values written before these classes existed, so old trails read the same and their hashes still
hold. Approval and snapshot events share one type each and name their sub-kind in the payload's
"event" key. A record this version does not know (an older or newer type, or a payload whose keys
do not fit its class) reads as an `UnknownEvent` holding the payload untouched.

>>> event = IntentEvent(text="SELECT 1", kind="read", decision="allow")
>>> to_payload(event)
{'text': 'SELECT 1', 'kind': 'read', 'decision': 'allow', 'approval_id': None}
>>> from_record("intent", to_payload(event)) == event
True
>>> from_record("deploy_hook", {"url": "https://ci.example/42"})
UnknownEvent(type='deploy_hook', payload={'url': 'https://ci.example/42'})
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar


class Absent(Enum):
    """A field the payload leaves out, which is not the same as null: an intent carries its row
    estimate only when it needs approval, and its payload must stay exactly as it always was."""
    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent.ABSENT


class Event:
    """Base of every audit event; `type` is the name stored in the trail's type column."""
    type: ClassVar[str]


# -- sessions --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SessionStartEvent(Event):
    """Someone opened a console session on a target."""
    type: ClassVar[str] = "session_start"
    user: str
    target: str                      # the target's name in the configuration
    environment: str                 # e.g. production, staging, demo
    host: str                        # the machine the session runs on
    reason: str | None               # why the session was opened (a ticket), if given


@dataclass(frozen=True, kw_only=True)
class SessionEndEvent(Event):
    """The session was closed; nothing more runs in it."""
    type: ClassVar[str] = "session_end"


# -- statements --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class IntentEvent(Event):
    """A statement was submitted, recorded before anything runs (nothing runs that this cannot record)."""
    type: ClassVar[str] = "intent"
    text: str                        # the statement exactly as submitted
    kind: str                        # read | write | ddl | session | unknown ...
    decision: str                    # allow | blocked | needs_approval
    approval_id: str | None = None   # the approval request it waits for, when it needs one
    estimated_rows: int | None | Absent = ABSENT   # needs_approval only: the measured count (None: uncountable)
    rows_exact: bool | None | Absent = ABSENT      # needs_approval only: whether that count is exact


@dataclass(frozen=True, kw_only=True)
class OutcomeEvent(Event):
    """What became of a submitted statement: ran, failed, blocked, rejected, cancelled ..."""
    type: ClassVar[str] = "outcome"
    text: str
    kind: str
    decision: str                    # the intent's decision
    status: str                      # ok | failed | blocked | rejected | expired | pending | cancelled | rolled_back
    approval_id: str | None
    snapshot_id: str | None          # the before-image of the rows it changed, if one was taken
    rows: int | None                 # rows returned or affected, when it ran
    duration_ms: float
    error: str | None                # why it did not succeed


@dataclass(frozen=True, kw_only=True)
class ExecuteEvent(Event):
    """An approved write is about to run (its approval has just been used)."""
    type: ClassVar[str] = "execute"
    text: str
    kind: str
    approval_id: str


@dataclass(frozen=True, kw_only=True)
class CommitEvent(Event):
    """An approved write's transaction is about to commit: recorded first, so a write the trail does
    not know about never commits."""
    type: ClassVar[str] = "commit"
    text: str                        # the last statement of the transaction
    kind: str
    approval_id: str
    statements: int                  # statements in the transaction
    rows: int                        # rows they touched, all together
    snapshot_ids: tuple[str, ...]    # the before-images taken in the transaction


# -- approvals -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ApprovalEvent(Event):
    """Base of every approval event: which request, its status after the event, and who acted."""
    type: ClassVar[str] = "approval"
    event: ClassVar[str]
    request_id: str
    status: str                      # pending | approved | rejected | expired | used | cancelled
    actor: str | None                # None when nobody acted (an expiry)


@dataclass(frozen=True, kw_only=True)
class ApprovalRequestedEvent(ApprovalEvent):
    """A statement needs a second person: the request reviewers see."""
    event: ClassVar[str] = "requested"
    statement: str
    target: str
    environment: str
    reason: str                      # why it needs approval
    required_approvals: int
    allowed_approvers: tuple[str, ...] | None   # None: anyone but the requester
    estimated_rows: int | None
    rows_exact: bool | None
    expires_at: str                  # ISO 8601, UTC
    # What the target's server said it was (host, database, session settings); the approval binds to
    # it. Left out of requests made before identities were recorded, so their payloads stay as they were.
    target_identity: str | Absent = ABSENT


@dataclass(frozen=True, kw_only=True)
class ApprovalVoteEvent(ApprovalEvent):
    """One person approved or rejected the request."""
    event: ClassVar[str] = "vote"
    verdict: str                     # approve | reject
    comment: str | None
    source: str                      # local | slack
    approvals: int                   # approvals counted so far
    required_approvals: int


@dataclass(frozen=True, kw_only=True)
class ApprovalApprovedEvent(ApprovalEvent):
    """The votes approved the request: it may run once, exactly as written."""
    event: ClassVar[str] = "approved"


@dataclass(frozen=True, kw_only=True)
class ApprovalRejectedEvent(ApprovalEvent):
    """A reviewer rejected the request; it can never run."""
    event: ClassVar[str] = "rejected"


@dataclass(frozen=True, kw_only=True)
class ApprovalUsedEvent(ApprovalEvent):
    """The approved statement is being run; the request cannot be used again."""
    event: ClassVar[str] = "used"
    binding: str                     # sha256 over (statement, target, requester) that was checked


@dataclass(frozen=True, kw_only=True)
class ApprovalCancelledEvent(ApprovalEvent):
    """The requester withdrew the request."""
    event: ClassVar[str] = "cancelled"


@dataclass(frozen=True, kw_only=True)
class ApprovalExpiredEvent(ApprovalEvent):
    """Nobody decided (or used) the request before it expired."""
    event: ClassVar[str] = "expired"


# -- snapshots -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SnapshotEvent(Event):
    """Base of every snapshot event (a snapshot is taken inside its write; see CommitEvent)."""
    type: ClassVar[str] = "snapshot"
    event: ClassVar[str]
    snapshot_id: str


@dataclass(frozen=True, kw_only=True)
class SnapshotRestoredEvent(SnapshotEvent):
    """A snapshot's rows were put back by an approved restore."""
    event: ClassVar[str] = "restored"
    approval_id: str | None          # the restore's own approval


@dataclass(frozen=True, kw_only=True)
class SnapshotPrunedEvent(SnapshotEvent):
    """A snapshot's rows were dropped from the target under the retention policy."""
    event: ClassVar[str] = "pruned"
    target: str
    rows: int


# -- Slack -----------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SlackClickEvent(Event):
    """A reviewer clicked Approve or Reject in Slack, whether or not the click counted."""
    type: ClassVar[str] = "slack_click"
    action: str                      # which button
    slack_user: str                  # the Slack user id that clicked
    request_id: str
    person: str | None               # the Countersign user it maps to, if any
    accepted: bool                   # whether the vote was recorded
    result: str                      # the request's status, or why the click was refused
    refusal: str | None              # the refusal's kind, when refused


# -- team mode: who may call the service -----------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TokenIssuedEvent(Event):
    """An API token was issued (its secret is never recorded)."""
    type: ClassVar[str] = "token_issued"
    token_id: str
    user: str                        # the person the token authenticates
    label: str                       # what it is for
    kind: str                        # login | automation
    issued_by: str
    expires_at: str                  # ISO 8601, on the service's clock


@dataclass(frozen=True, kw_only=True)
class TokenRevokedEvent(Event):
    """An API token was revoked; it is refused from now on."""
    type: ClassVar[str] = "token_revoked"
    token_id: str
    user: str
    revoked_by: str


@dataclass(frozen=True, kw_only=True)
class LoginEvent(Event):
    """A console login was asked for, confirmed or denied in Slack, or refused."""
    type: ClassVar[str] = "login"
    login_id: str
    user: str                        # who the console said it was (proved only once confirmed)
    host: str                        # the machine it logs in from, as the console reported it
    status: str                      # requested | confirmed | denied | refused | collected
    slack_user: str | None = None    # the Slack user asked to confirm (or who clicked)
    why: str | None = None           # why it was refused, when it was


# -- the auditor's pages ---------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class AuditorViewEvent(Event):
    """Someone signed in to, opened or exported one of the auditor's pages, or was refused it: looking
    at the trail is itself in the trail."""
    type: ClassVar[str] = "auditor_view"
    user: str                        # the authenticated person (from their token)
    token_id: str                    # which of their tokens
    path: str                        # the page, e.g. /audit/sessions/<id>
    query: str                       # its query string (filters, date range), as sent
    allowed: bool                    # False: not an auditor, refused with 403


# -- anything else ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnknownEvent(Event):
    """A record this version has no class for, kept exactly as stored (and how the untyped
    `Store.append(session_id, type, payload)` form is carried)."""
    type: str
    payload: dict


# The registry: every typed event, once. A new kind of event is a class above and a line here.
EVENTS: tuple[type[Event], ...] = (
    SessionStartEvent, SessionEndEvent,
    IntentEvent, OutcomeEvent, ExecuteEvent, CommitEvent,
    ApprovalRequestedEvent, ApprovalVoteEvent, ApprovalApprovedEvent, ApprovalRejectedEvent,
    ApprovalUsedEvent, ApprovalCancelledEvent, ApprovalExpiredEvent,
    SnapshotRestoredEvent, SnapshotPrunedEvent,
    SlackClickEvent,
    TokenIssuedEvent, TokenRevokedEvent, LoginEvent,
    AuditorViewEvent,
)


def event_name(cls: type[Event]) -> str:
    """The registry's name for an event class: its type, and its sub-kind when it has one.

    >>> event_name(IntentEvent), event_name(ApprovalVoteEvent)
    ('intent', 'approval.vote')
    """
    sub = getattr(cls, "event", None)
    return f"{cls.type}.{sub}" if sub else cls.type


def _index(classes: tuple[type[Event], ...]) -> dict[str, type[Event]]:
    by_name: dict[str, type[Event]] = {}
    for cls in classes:
        if event_name(cls) in by_name:   # two classes claiming one name would read each other's records
            raise ValueError(f"two audit event classes are named {event_name(cls)!r}")
        by_name[event_name(cls)] = cls
    return by_name


REGISTRY: dict[str, type[Event]] = _index(EVENTS)


def to_payload(event: Event) -> dict:
    """The JSON payload stored for an event: its fields (ABSENT ones left out), tuples as lists, and
    the sub-kind as "event".

    >>> to_payload(SnapshotPrunedEvent(snapshot_id="s1", target="billing", rows=25))
    {'event': 'pruned', 'snapshot_id': 's1', 'target': 'billing', 'rows': 25}
    >>> to_payload(UnknownEvent("deploy_hook", {"url": "x"}))
    {'url': 'x'}
    """
    if isinstance(event, UnknownEvent):
        return dict(event.payload)
    sub = getattr(event, "event", None)
    fields = {f.name: _thawed(getattr(event, f.name)) for f in dataclasses.fields(event)
              if getattr(event, f.name) is not ABSENT}
    return {"event": sub, **fields} if sub else fields


def from_record(type: str, payload: dict) -> Event:
    """The typed event for a stored (type, payload); an UnknownEvent unless the payload is exactly
    what its class would store, so reading never loses or invents a key.

    >>> from_record("snapshot", {"event": "pruned", "snapshot_id": "s1", "target": "billing", "rows": 25})
    SnapshotPrunedEvent(snapshot_id='s1', target='billing', rows=25)
    >>> from_record("intent", {"text": "SELECT 1"})
    UnknownEvent(type='intent', payload={'text': 'SELECT 1'})
    """
    cls = _class_for(type, payload)
    if cls is None:
        return UnknownEvent(type, payload)
    fields = {k: _frozen(v) for k, v in payload.items() if not (k == "event" and hasattr(cls, "event"))}
    try:
        event = cls(**fields)
    except TypeError:   # a key the class lacks, or a field the payload lacks
        return UnknownEvent(type, payload)
    return event if to_payload(event) == payload else UnknownEvent(type, payload)


def _class_for(type: str, payload) -> type[Event] | None:
    if not isinstance(payload, dict):   # an edited trail can hold any JSON; verify() reports it
        return None
    sub = payload.get("event")
    found = REGISTRY.get(f"{type}.{sub}") if isinstance(sub, str) else None
    return found or REGISTRY.get(type)


def _frozen(value):
    """JSON lists become tuples: events are frozen values."""
    return tuple(value) if isinstance(value, list) else value


def _thawed(value):
    return list(value) if isinstance(value, tuple) else value
