"""The poster: a thread that turns new audit events into outbox rows and sends them to Slack in order.

Only the process holding the lease works; the others stand by and take over when it lapses. A
failure of Slack or of the store never stops the loop: it waits and tries again.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Callable

from audit.store import AuditEvent, Store
from service.feed import posts_for
from service.outbox import Outbox
from service.sender import Delivered, GiveUp, RetryLater, Sender, backoff
from service.slack_settings import SlackConfig

log = logging.getLogger("countersign.serve.poster")
INTERVAL = 0.2        # seconds between looks at the store (a request is posted well within 2 s)
LEASE = 10.0          # seconds a silent holder keeps the lease
BATCH = 200           # audit events fed per look
SENDS = 50            # rows sent per look, so the lease is renewed between batches
EXPIRY_EVERY = 2.0    # seconds between sweeps for requests that expired with nobody watching


class Poster:
    def __init__(self, store: Store, outbox: Outbox, sender: Sender, config: SlackConfig, *,
                 holder: str | None = None, interval: float = INTERVAL, lease: float = LEASE,
                 expire: Callable[[], object] = lambda: None) -> None:
        self.store, self.outbox, self.sender, self.config = store, outbox, sender, config
        self.expire, self._swept = expire, 0.0
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.interval, self.lease = interval, lease
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._held_at = 0.0

    # -- running --------------------------------------------------------------------------------
    def start(self) -> "Poster":
        self._thread = threading.Thread(target=self._run, name="countersign-poster", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, release: bool = True) -> None:
        """Stop the loop; `release=False` leaves the lease to lapse, as a killed process would."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if release:
            self.outbox.release(self.holder)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the store or Slack failing must not end the service
                log.exception("poster: this round failed; trying again")
            self._wake.wait(self.interval)
            self._wake.clear()

    def tick(self) -> None:
        """One round: hold the lease, feed new audit events, send what is due."""
        if not self._hold():
            return
        self._sweep()
        self.feed()
        self.send_due()

    def _sweep(self) -> None:
        if time.monotonic() - self._swept >= EXPIRY_EVERY:
            self._swept = time.monotonic()
            self.expire()

    def _hold(self) -> bool:
        held = self.outbox.hold(self.holder, self.lease)
        self._held_at = time.monotonic() if held else 0.0
        return held

    def _still_holding(self) -> bool:
        """Re-take the lease once half of it has passed, so a lapsed holder never sends."""
        return time.monotonic() - self._held_at < self.lease / 2 or self._hold()

    # -- feeding --------------------------------------------------------------------------------
    def feed(self) -> None:
        last, events = self.outbox.unfed(BATCH)
        if events:
            posts = [p for e in events for p in posts_for(e, self.config, self._history(e))]
            self.outbox.feed(last, events[-1].seq, posts)

    def _history(self, event: AuditEvent) -> list[AuditEvent] | None:
        if event.type != "session_end" or event.session_id is None:
            return None
        return self.store.events(session_id=event.session_id)

    # -- sending --------------------------------------------------------------------------------
    def send_due(self) -> None:
        for _ in range(SENDS):
            row = self.outbox.next_due()
            if row is None or not self._still_holding() or not self.outbox.claim(row.id, self.holder):
                return
            self._record(row, self._deliver(row))

    def _deliver(self, row):
        try:
            return self.sender.deliver(row)
        except Exception as err:  # noqa: BLE001 - an unexpected failure is retried, never dropped
            log.exception("poster: delivering outbox row %s failed", row.id)
            return RetryLater(f"{type(err).__name__}: {err}", None)

    def _record(self, row, result) -> None:
        if isinstance(result, Delivered):
            self.outbox.sent(row.id, result.posted)
        elif isinstance(result, RetryLater):
            wait = result.after if result.after is not None else backoff(row.attempts)
            log.warning("poster: Slack refused outbox row %s (%s); retrying in %.1fs", row.id, result.error, wait)
            self.outbox.retry(row.id, result.error, wait)
        else:
            assert isinstance(result, GiveUp)
            log.error("poster: giving up on outbox row %s: %s", row.id, result.error)
            self.outbox.give_up(row.id, result.error)
