"""One console session on the gate, as the terminal front ends (the REPL, `run`, `snapshots restore`)
use it: submit a statement, show who must approve it, wait (Ctrl-C friendly), then run it.

Everything here is front-end logic over the gate's verbs; nothing decides or executes. The wait is a
long-poll in slices, so it works the same whether the gate is in this process or across a network.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from classify.statements import Statement
from gate.api import Awaiting, Gate, Outcome, SessionInfo, Status, script_text

WAIT_SLICE_S = 30.0      # one long-poll; a cancel wakes it at once, so this only bounds a lost wake-up
CANCEL_CHECK_S = 0.1     # how soon a Ctrl-C during an approval wait reaches the gate


class ConsoleSession:
    def __init__(self, gate: Gate, *, user: str, target: str, dialect: str, environment: str) -> None:
        self.gate = gate
        self.user = user
        self.target_name = target
        self.dialect = dialect
        self.environment = environment
        self.info: SessionInfo | None = None

    @property
    def session_id(self) -> str | None:
        return self.info.id if self.info else None

    def open_session(self, reason: str | None = None) -> str:
        self.info = self.gate.open_session(self.user, self.target_name, reason)
        self.target_name, self.environment, self.dialect = self.info.target, self.info.environment, self.info.dialect
        return self.info.id

    def close(self) -> None:
        if self.info is not None:
            session_id, self.info = self.info.id, None
            self.gate.close_session(session_id)

    close_session = close

    def classify(self, text: str) -> tuple[Statement, ...]:
        from classify.statements import classify
        if self.info is None:
            return classify(text, self.dialect)
        return self.gate.classify(self.info.id, text)

    def catalog(self):
        return self.gate.catalog(self._id())

    def pending(self) -> list:
        return list(self.gate.pending(self._id())) if self.info else []

    def cancel_running(self) -> None:
        if self.info is not None:
            self.gate.cancel(self.info.id)

    # -- statements ------------------------------------------------------------------------------
    def submit(self, statement: Statement, *, wait: float | None = None, cancel: threading.Event | None = None,
               notify: Callable[[Awaiting], None] | None = None) -> Outcome:
        return self._run(statement.text, False, None, wait, cancel, notify)[0]

    def submit_batch(self, statements: tuple[Statement, ...], *, wait: float | None = None,
                     cancel: threading.Event | None = None, notify: Callable[[Awaiting], None] | None = None,
                     purpose: str | None = None, restores: str | None = None) -> tuple[Outcome, ...]:
        """Several statements approved as ONE request and run in ONE transaction."""
        if not statements:
            return ()
        return self._run(script_text(statements), True, purpose, wait, cancel, notify, restores)

    def restore_plan(self, snapshot_id: str):
        return self.gate.restore_plan(self._id(), snapshot_id)

    def prune_snapshot(self, snapshot_id: str) -> None:
        self.gate.prune_snapshot(self._id(), snapshot_id)

    def snapshot_sample(self, snapshot_id: str, limit: int) -> Outcome:
        return self.gate.snapshot_sample(self._id(), snapshot_id, limit)

    def _run(self, text: str, as_one: bool, purpose: str | None, wait: float | None,
             cancel: threading.Event | None, notify, restores: str | None = None) -> tuple[Outcome, ...]:
        cancel = cancel or threading.Event()
        replies = self.gate.submit(self._id(), text, as_one=as_one, purpose=purpose, restores=restores)
        awaiting = next((r for r in replies if isinstance(r, Awaiting)), None)
        if awaiting is None:
            return tuple(replies)
        if awaiting.status == "pending":
            (notify or _ignore)(awaiting)
            self._wait(awaiting.request_id, wait, cancel)
        if self.info is None:   # the session was closed while it waited
            return tuple(Outcome(s, Status.CANCELLED, f"the session ended while approval {awaiting.request_id} "
                                 "was pending; the request stays open", approval_id=awaiting.request_id)
                         for s in awaiting.statements)
        if cancel.is_set():   # Ctrl-C as the approval arrived: the user asked for nothing to run
            return self.gate.stop_waiting(self._id(), awaiting.request_id)
        return self.gate.resume(self._id(), awaiting.request_id)

    def _wait(self, request_id: str, wait: float | None, cancel: threading.Event) -> None:
        deadline = None if wait is None else time.monotonic() + wait
        waited = threading.Event()
        threading.Thread(target=self._relay_cancel, args=(cancel, waited), daemon=True,
                         name="countersign-cancel-relay").start()
        try:
            while not cancel.is_set():
                remaining = WAIT_SLICE_S if deadline is None else min(WAIT_SLICE_S, deadline - time.monotonic())
                if remaining <= 0:
                    return
                if self.gate.wait(request_id, remaining).status != "pending":
                    return
        finally:
            waited.set()

    def _relay_cancel(self, cancel: threading.Event, waited: threading.Event) -> None:
        """A local Ctrl-C (the caller's Event) becomes the gate's ``cancel``, which wakes its wait."""
        while not waited.is_set():
            if cancel.wait(CANCEL_CHECK_S):
                self.gate.cancel(self._id())
                return

    def _id(self) -> str:
        if self.info is None:
            raise RuntimeError("the session is not open")
        return self.info.id


def _ignore(_event) -> None:
    pass
