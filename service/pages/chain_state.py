"""The chain's state as every page shows it: intact up to event N and anchored at T, or broken at event
N with what is wrong.

Verifying reads the whole trail (Store.verify: every link, keyed link, anchor and covered row), far
too slow to do per page on a large trail. So `ChainWatch` keeps the last verification and re-runs it
in a background thread once it is older than `ttl` seconds; a page shows the cached result, when it
was checked, and how many events were recorded since (the head's seq, one indexed read). Only the
very first page after start waits for a verification (at most `first_wait` seconds). With `ttl` 0
every page verifies before it is drawn (tests).

Pages verify without anchoring (`anchor=False`): looking at the trail changes nothing outside it.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy.exc import SQLAlchemyError

from audit.anchors import AnchorError
from audit.chain import VerifyResult
from audit.store import Store, StoreUnavailable
from service.pages import queries


@dataclass(frozen=True)
class ChainState:
    verdict: str                      # intact | broken | unverified
    checked: int = 0                  # events found intact (before the first problem)
    broken_seq: int | None = None     # the first broken event, when an event is
    problem: str | None = None        # what is wrong (or why it could not be verified)
    table: str | None = None          # a row of this table disagrees with the trail
    unkeyed: int = 0                  # intact events from before keyed links
    key_missing: str | None = None    # no audit key here: keyed links were not checked
    anchor_seq: int | None = None     # the newest anchor the trail was checked against
    anchor_at: datetime | None = None
    checked_at: datetime | None = None
    head_seq: int | None = None       # the chain's head when the page was drawn

    @property
    def intact(self) -> bool:
        return self.verdict == "intact"

    @property
    def unchecked_since(self) -> int:
        """Events recorded after this verification (not yet checked)."""
        return max(0, (self.head_seq or 0) - self.checked) if self.intact else 0

    def headline(self) -> str:
        """
        >>> ChainState("intact", checked=12, anchor_seq=10,
        ...            anchor_at=datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)).headline()
        'Audit chain intact up to event 12, anchored at event 10 on 2026-03-01 09:00:00 UTC'
        >>> ChainState("broken", checked=4, broken_seq=5, problem="event 5 (intent) was altered").headline()
        'Audit chain BROKEN at event 5: event 5 (intent) was altered'
        """
        if self.verdict == "intact":
            anchored = (f", anchored at event {self.anchor_seq} on {self.anchor_at:%Y-%m-%d %H:%M:%S} UTC"
                        if self.anchor_seq is not None and self.anchor_at is not None else ", not yet anchored")
            return f"Audit chain intact up to event {self.checked}{anchored}"
        if self.verdict == "broken" and self.table is not None:
            return f"Audit chain BROKEN: a row of {self.table} disagrees with the trail: {self.problem}"
        if self.verdict == "broken":
            return f"Audit chain BROKEN at event {self.broken_seq}: {self.problem}"
        return f"Audit chain not verified: {self.problem or 'verification has not finished yet'}"


def state_of(result: VerifyResult, anchors: list, store_id: str | None, now: datetime) -> ChainState:
    """The page's view of a verification, with the newest anchor at or below what it checked."""
    if not result.ok:
        return ChainState("broken", result.checked, result.first_broken_seq, result.problem, result.table,
                          result.unkeyed, result.key_missing, checked_at=now)
    mine = [a for a in anchors if a.store_id == (store_id or "") and a.seq <= result.checked]
    newest = max(mine, key=lambda a: (a.seq, a.at), default=None)
    return ChainState("intact", result.checked, None, None, None, result.unkeyed, result.key_missing,
                      newest.seq if newest else None, newest.at if newest else None, now)


class ChainWatch:
    def __init__(self, store: Store, *, ttl: float = 60.0, first_wait: float = 10.0,
                 verify: Callable[[], ChainState] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self.first_wait = first_wait
        self._verify = verify or self._verify_store
        self._clock = clock
        self._lock = threading.Lock()
        self._state: ChainState | None = None
        self._at = 0.0
        self._running = False
        self._first = threading.Event()

    def state(self) -> ChainState:
        """The newest verification (re-run in the background when stale), with the head as it is now."""
        if self.ttl <= 0:
            return self._with_head(self.refresh())
        with self._lock:
            current, stale = self._state, self._state is None or self._clock() - self._at >= self.ttl
            if stale and not self._running:
                self._running = True
                threading.Thread(target=self._background, name="countersign-chain-watch", daemon=True).start()
        if current is None:
            self._first.wait(self.first_wait)
            current = self._state or ChainState("unverified", problem="the first verification is still running")
        return self._with_head(current)

    def refresh(self) -> ChainState:
        """Verify now (in the caller's thread) and keep the result."""
        try:
            fresh = self._verify()
        except StoreUnavailable as err:
            fresh = ChainState("unverified", problem=str(err), checked_at=_now())
        with self._lock:
            self._state, self._at = fresh, self._clock()
        self._first.set()
        return fresh

    def _background(self) -> None:
        try:
            self.refresh()
        finally:
            with self._lock:
                self._running = False

    def _verify_store(self) -> ChainState:
        result = self.store.verify(anchor=False)
        with self.store.engine.connect() as conn:
            head = queries.chain_head(conn)
        try:
            anchors = self.store.anchor_sink().anchors()
        except AnchorError:   # verify just read them; a file gone since only loses the anchor's time
            anchors = []
        return state_of(result, anchors, head.store_id if head else None, _now())

    def _with_head(self, state: ChainState) -> ChainState:
        try:
            with self.store.engine.connect() as conn:
                head = queries.chain_head(conn)
        except SQLAlchemyError:   # the page still shows the verification it has
            return state
        return replace(state, head_seq=head.seq if head else None)


def _now() -> datetime:
    return datetime.now(timezone.utc)
