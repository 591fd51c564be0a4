"""Building real pipelines for tests: a real target database, a real store, real approvals."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import os

from approvals.service import ApprovalService
from audit.store import Store
from config.settings import Policy, Target, dialect_of
from console.session import ConsoleSession
from gate.api import Awaiting, Outcome
from gate.local import LocalGate


class Clock:
    """A clock the test moves by hand (expiry without sleeping)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> None:
        self.now += timedelta(**kwargs)


def gate_mode() -> str:
    """How the tests reach the gate: "local" (in process), "json" (every call and every returned value
    round-tripped through JSON, as a network would) or "http" (through the team API and a RemoteGate, over
    a real socket). The pipeline fixtures run all three."""
    return os.environ.get("COUNTERSIGN_TEST_GATE", "local")


def make_gate(store: Store, targets: dict[str, Target], mode: str | None = None, user: str = "alice"):
    from gate.codec import JsonRoundTrip
    gate = LocalGate(store=store, approvals=ApprovalService.from_store(store), resolve_target=targets.__getitem__)
    mode = mode or gate_mode()
    if mode == "http":   # the service takes the user from the token: the token is the session's user's
        from tests.team_harness import http_gate
        return http_gate(gate, targets, user)
    return JsonRoundTrip(gate) if mode == "json" else gate


def target_for(url: str, policy: Policy | None = None, name: str = "target") -> Target:
    return Target(name=name, url=url, dialect=dialect_of(url), environment="production", policy=policy or Policy())


def make_pipeline(target_url: str, store: Store, user: str, policy: Policy | None = None,
                  name: str = "target", mode: str | None = None) -> ConsoleSession:
    """A console session for ``user`` on the target, through the gate (open it with open_session)."""
    target = target_for(target_url, policy, name)
    session = ConsoleSession(make_gate(store, {name: target}, mode, user), user=user, target=name,
                             dialect=target.dialect, environment=target.environment)
    session.test_url = target_url
    return session


def local_gate(pipeline: ConsoleSession) -> LocalGate:
    """The in-process gate behind a test's session (white-box checks only)."""
    return getattr(pipeline.gate, "inner", pipeline.gate)


def target_driver(pipeline: ConsoleSession):
    """A connection of the test's own to the session's target, to set up and inspect data."""
    from engines import open_driver
    if getattr(pipeline, "_test_driver", None) is None:
        pipeline._test_driver = open_driver(pipeline.test_url)
    return pipeline._test_driver


def driver_of(pipeline: ConsoleSession):
    """The target's driver behind a test's session (white-box checks only)."""
    return local_gate(pipeline)._sessions[pipeline.session_id].driver


@dataclass
class Submission:
    """Runs pipeline.submit on a thread and lets the test act when the statement waits for approval."""
    pipeline: ConsoleSession
    text: str
    waiting: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    events: list = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    wait: float | None = 30
    batch: tuple | None = None        # statements to submit as ONE batch instead of `text`
    purpose: str | None = None

    def start(self) -> "Submission":
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            if self.batch is not None:
                self.outcomes.extend(self.pipeline.submit_batch(self.batch, wait=self.wait, cancel=self.cancel,
                                                                notify=self._notify, purpose=self.purpose))
                return
            for statement in self.pipeline.classify(self.text):
                self.outcomes.append(self.pipeline.submit(statement, wait=self.wait, cancel=self.cancel,
                                                          notify=self._notify))
        finally:
            self.waiting.set()  # never leave the test hanging if no approval was needed

    def _notify(self, event) -> None:
        self.events.append(event)
        if isinstance(event, Awaiting):
            self.waiting.set()

    @property
    def request_id(self) -> str:
        assert self.waiting.wait(30), "the statement never asked for approval"
        waits = [e for e in self.events if isinstance(e, Awaiting)]
        assert waits, f"no approval was requested; outcomes: {self.outcomes}"
        return waits[-1].request_id

    def result(self) -> Outcome:
        self.thread.join(60)
        assert not self.thread.is_alive(), "submit did not return"
        assert self.outcomes, "submit produced no outcome"
        return self.outcomes[-1]
