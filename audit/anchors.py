"""Anchors: copies of the chain's head (seq and link) kept outside the store.

Whoever can write the store can delete its newest events and rewrite the head row, or recompute a
chain whose key they hold; the trail alone cannot show either. An anchor written earlier, somewhere
the store's writer does not control, can: `audit verify` reports a trail that ends before an anchored
event (truncation) or whose link at an anchored seq differs (a recomputed chain).

A sink is anything with `publish(anchor)` and `anchors()`; `FileAnchors` appends JSON lines to a 0600
file. A Slack audit channel or a bucket is another sink behind the same two methods. `Anchoring` says
when to publish: every EVERY_EVENTS events or EVERY_SECONDS seconds, on the first append a process
makes, and whenever asked (session end, a successful verify).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

from audit.keys import state_dir

ANCHOR_FILE_ENV = "COUNTERSIGN_AUDIT_ANCHOR_FILE"
EVERY_EVENTS = 100
EVERY_SECONDS = 300


class AnchorError(Exception):
    """An anchor could not be written or read; the message names the sink."""


@dataclass(frozen=True)
class Anchor:
    store_id: str          # which store's chain (one sink may be shared)
    seq: int               # the head's seq when anchored
    link: str              # that event's keyed link (its hash for an event from before keyed links)
    at: datetime           # when it was anchored (UTC)

    def line(self) -> str:
        """
        >>> Anchor("s1", 4, "ab", datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)).line()
        '{"at":"2026-03-01T09:00:00+00:00","link":"ab","seq":4,"store":"s1"}'
        """
        return json.dumps({"store": self.store_id, "seq": self.seq, "link": self.link, "at": self.at.isoformat()},
                          sort_keys=True, separators=(",", ":"))


class AnchorSink(Protocol):
    where: str             # for messages: the file, channel or bucket

    def publish(self, anchor: Anchor) -> None: ...

    def anchors(self) -> list[Anchor]: ...


class FileAnchors:
    """Anchors as append-only JSON lines in one file, created 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def publish(self, anchor: Anchor) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (anchor.line() + "\n").encode("utf-8"))   # one write: lines never interleave
            finally:
                os.close(fd)
        except OSError as err:
            raise AnchorError(f"cannot append to the anchor file {self.path}: {err}") from err

    def anchors(self) -> list[Anchor]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except OSError as err:
            raise AnchorError(f"cannot read the anchor file {self.path}: {err}") from err
        return [a for a in map(_parse, lines) if a is not None]


def _parse(line: str) -> Anchor | None:
    """One line; None for a line that is not an anchor (a torn last line after a crash).

    >>> _parse('{"at":"2026-03-01T09:00:00+00:00","link":"ab","seq":4,"store":"s1"}').seq
    4
    >>> _parse('{"seq": 4') is None
    True
    """
    try:
        value = json.loads(line)
        return Anchor(str(value["store"]), int(value["seq"]), str(value["link"]),
                      datetime.fromisoformat(value["at"]).astimezone(timezone.utc))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def default_anchor_path(store_identity: str) -> Path:
    """$COUNTERSIGN_AUDIT_ANCHOR_FILE, else one file per store in the state directory's anchors/."""
    configured = os.environ.get(ANCHOR_FILE_ENV)
    if configured:
        return Path(configured).expanduser()
    name = hashlib.sha256(store_identity.encode("utf-8")).hexdigest()[:24]
    return state_dir() / "anchors" / f"{name}.jsonl"


class Anchoring:
    """When to publish the head: the first append, then every ``every_events`` events or
    ``every_seconds`` seconds, and whenever forced."""

    def __init__(self, sink: AnchorSink, *, every_events: int = EVERY_EVENTS,
                 every_seconds: float = EVERY_SECONDS) -> None:
        self.sink = sink
        self.every_events = every_events
        self.every = timedelta(seconds=every_seconds)
        self._last: tuple[int, datetime] | None = None
        self._lock = threading.Lock()          # one Store is shared by threads that append

    def due(self, seq: int, now: datetime) -> bool:
        if self._last is None:
            return True
        last_seq, last_at = self._last
        return seq - last_seq >= self.every_events or now - last_at >= self.every

    def head_moved(self, store_id: str, seq: int, link: str, now: datetime, *, force: bool = False) -> None:
        with self._lock:
            if force or self.due(seq, now):
                self.sink.publish(Anchor(store_id, seq, link, now))
                self._last = (seq, now)
