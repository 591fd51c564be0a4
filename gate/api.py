"""The gate: the ONE interface every front end calls (the console, the Slack service, the team API,
the auditor pages), and the values that cross it.

Everything that decides or executes sits behind ``Gate``. Every value that crosses it is a plain,
frozen, JSON-serialisable dataclass (``gate.codec`` proves it by round-tripping every call in the
tests) and carries no terminal text: front ends render. Nothing here blocks for a whole approval
wait or shares objects with the caller, so the same verbs work over a network:

    submit(session, text)      -> Outcome (it ran, failed, or was blocked) | Awaiting (a request id)
    wait(request_id, timeout)  -> RequestState       a long-poll the caller may drop and call again
    resume(session, request)   -> tuple[Outcome, ...] runs what was approved, exactly as approved
    cancel(session)            -> None               stops a running statement and wakes a waiter
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from classify.statements import Statement
from engines.base import Catalog, ResultSet


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"              # the database (or the store) failed; nothing was committed
    BLOCKED = "blocked"            # policy refused it; it never ran
    REJECTED = "rejected"          # a reviewer rejected it
    EXPIRED = "expired"            # the approval expired
    PENDING = "pending"            # still waiting for approval when the wait ended
    CANCELLED = "cancelled"        # the user cancelled (Ctrl-C)
    ROLLED_BACK = "rolled_back"    # the blast-radius guard rolled it back


@dataclass(frozen=True)
class SessionInfo:
    id: str
    user: str
    target: str
    environment: str
    dialect: str                   # which classifier, lexer and renderer the front end uses


@dataclass(frozen=True)
class Outcome:
    """What happened to one statement: it ran (ok or failed), or it never will (blocked, rejected...)."""
    statement: Statement
    status: Status
    message: str = ""
    result: ResultSet | None = None
    approval_id: str | None = None
    snapshot_id: str | None = None
    snapshot_rows: int | None = None   # rows the snapshot holds (restore puts them back)
    duration_ms: float = 0.0


@dataclass(frozen=True)
class Awaiting:
    """The statements wait for a second person. Nothing has run; ``resume`` runs them once approved."""
    request_id: str
    statements: tuple[Statement, ...]
    reason: str
    estimated_rows: int | None     # None: could not be counted (never a silent zero)
    rows_exact: bool
    required: int                  # approvals needed
    status: str                    # "pending", or "approved" when an earlier approval already covers it
    reviewers: str                 # where reviewers see it: "local" (the approvals CLI) or a Slack channel


@dataclass(frozen=True)
class RequestState:
    """Where an approval request stands, as a waiting front end sees it."""
    request_id: str
    status: str                    # pending | approved | rejected | expired | used | cancelled
    approvals: int
    required: int
    reason: str = ""               # a rejection's reason, when there is one


@dataclass(frozen=True)
class RestorePlan:
    """What putting a snapshot back runs, shown before it is submitted as one batch."""
    snapshot_id: str
    table: str
    rows: int | None
    statements: tuple[str, ...]
    notes: tuple[str, ...]


Reply = Outcome | Awaiting


def script_text(statements: tuple[Statement, ...]) -> str:
    """What a request approves: one statement's exact text, or a batch's statements each ended by ';'.

    >>> from classify.statements import classify
    >>> script_text(classify("DELETE FROM a WHERE id = 1; DELETE FROM b WHERE id = 2", "sqlite"))
    'DELETE FROM a WHERE id = 1;\\nDELETE FROM b WHERE id = 2;'
    """
    if len(statements) == 1:
        return statements[0].text
    return "\n".join(f"{s.text};" for s in statements)


class Gate(Protocol):
    def open_session(self, user: str, target: str, reason: str | None = None) -> SessionInfo: ...
    def close_session(self, session_id: str) -> None: ...
    def classify(self, session_id: str, text: str) -> tuple[Statement, ...]: ...
    def submit(self, session_id: str, text: str, *, as_one: bool = False, purpose: str | None = None,
               restores: str | None = None) -> tuple[Reply, ...]: ...
    def wait(self, request_id: str, timeout: float) -> RequestState: ...
    def resume(self, session_id: str, request_id: str) -> tuple[Outcome, ...]: ...
    def stop_waiting(self, session_id: str, request_id: str) -> tuple[Outcome, ...]: ...
    def cancel(self, session_id: str) -> None: ...
    def catalog(self, session_id: str) -> Catalog: ...
    def restore_plan(self, session_id: str, snapshot_id: str) -> RestorePlan: ...
    def snapshot_sample(self, session_id: str, snapshot_id: str, limit: int) -> Outcome: ...
    def prune_snapshot(self, session_id: str, snapshot_id: str) -> None: ...
    # approvals: the same rules whichever front end (terminal, Slack, web) casts the vote
    def requests(self, pending_only: bool = False) -> tuple[Any, ...]: ...
    def request(self, id_or_prefix: str) -> Any: ...
    def vote(self, request_id: str, person: str, verdict: str, comment: str | None = None,
             source: str = "local") -> Any: ...
    def check_vote(self, request_id: str, person: str) -> Any: ...
    def expire_due(self) -> tuple[str, ...]: ...
    def withdraw(self, request_id: str, person: str) -> Any: ...
    def pending(self, session_id: str) -> tuple[Any, ...]: ...
