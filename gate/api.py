"""The one interface the REPL and `countersign run` talk to, and the values that flow out of it.

Everything that decides or executes sits behind ``Pipeline``; the front ends only render what comes
back. A later front end (the approvals service, where only the service holds credentials) can
implement the same protocol without the REPL changing.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Callable, Protocol

from engines.base import Catalog, ResultSet
from classify.statements import Statement


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
class Outcome:
    statement: Statement
    status: Status
    message: str = ""
    result: ResultSet | None = None
    approval_id: str | None = None
    snapshot_id: str | None = None
    duration_ms: float = 0.0


@dataclass(frozen=True)
class ApprovalWaiting:
    """Told to the front end while a statement waits for a second person."""
    request_id: str
    statement: Statement
    reason: str
    estimated_rows: int | None
    rows_exact: bool | None
    required: int
    approve_hint: str              # the command a reviewer runs


@dataclass(frozen=True)
class Notice:
    text: str


Notify = Callable[[Any], None]


class Pipeline(Protocol):
    user: str
    target_name: str
    environment: str
    dialect: str

    def open_session(self, reason: str | None = None) -> str: ...
    def close_session(self) -> None: ...
    def classify(self, text: str) -> tuple[Statement, ...]: ...
    def submit(self, statement: Statement, *, wait: float | None = None,
               cancel: threading.Event | None = None, notify: Notify | None = None) -> Outcome: ...
    def submit_batch(self, statements: tuple[Statement, ...], *, wait: float | None = None,
                     cancel: threading.Event | None = None, notify: Notify | None = None,
                     purpose: str | None = None) -> tuple[Outcome, ...]: ...
    def cancel_running(self) -> None: ...
    def catalog(self) -> Catalog: ...
    def pending(self) -> list: ...
    def close(self) -> None: ...
