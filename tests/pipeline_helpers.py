"""Building real pipelines for tests: a real target database, a real store, real approvals."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from approvals.service import ApprovalService
from audit.store import Store
from engines import open_driver
from gate.local import LocalPipeline
from gate.api import ApprovalWaiting, Outcome
from config.settings import Policy, Target, dialect_of


class Clock:
    """A clock the test moves by hand (expiry without sleeping)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> None:
        self.now += timedelta(**kwargs)


def make_pipeline(target_url: str, store: Store, user: str, policy: Policy | None = None,
                  name: str = "target") -> LocalPipeline:
    target = Target(name=name, url=target_url, dialect=dialect_of(target_url), environment="production",
                    policy=policy or Policy())
    return LocalPipeline(target=target, driver=open_driver(target_url), store=store,
                         approvals=ApprovalService.from_store(store), user=user)


@dataclass
class Submission:
    """Runs pipeline.submit on a thread and lets the test act when the statement waits for approval."""
    pipeline: LocalPipeline
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
        if isinstance(event, ApprovalWaiting):
            self.waiting.set()

    @property
    def request_id(self) -> str:
        assert self.waiting.wait(30), "the statement never asked for approval"
        waits = [e for e in self.events if isinstance(e, ApprovalWaiting)]
        assert waits, f"no approval was requested; outcomes: {self.outcomes}"
        return waits[-1].request_id

    def result(self) -> Outcome:
        self.thread.join(60)
        assert not self.thread.is_alive(), "submit did not return"
        assert self.outcomes, "submit produced no outcome"
        return self.outcomes[-1]
