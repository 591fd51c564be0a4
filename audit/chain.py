"""The audit chain, pure: how an event is hashed and linked, and how a trail is checked.

    hash = sha256(prev_hash + canonical JSON of {id, session_id, ts, type, payload})
    link = HMAC-SHA256(audit key, store id | seq | previous link | hash)      (audit/keys.py)

`verify_chain` walks a trail in seq order (gaps, links, hashes, keyed links, the head);
`anchor_problem` compares an intact trail with the anchors kept outside the store (audit/anchors.py).
Events from before keyed links (seq < keyed_from) carry no link and are checked by their hash alone.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from audit.anchors import Anchor
from audit.events import Event, from_record
from audit.keys import AuditKey

GENESIS = "0" * 64                 # prev_hash of the first event


@dataclass(frozen=True)
class AuditEvent:
    """One stored record of the trail: the chain's fields around the event's type and payload."""
    seq: int
    id: str
    session_id: str | None
    ts: datetime
    type: str
    payload: dict
    prev_hash: str
    hash: str
    link: str | None = None        # keyed link; None for an event from before keyed links

    @property
    def chain_link(self) -> str:
        """What the next event's keyed link chains from, and what an anchor records."""
        return self.link if self.link is not None else self.hash

    @property
    def event(self) -> Event:
        """The typed event (an UnknownEvent for a type or payload this version has no class for)."""
        return from_record(self.type, self.payload)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int                    # events found intact before the first problem
    first_broken_seq: int | None
    problem: str | None
    unkeyed: int = 0                # intact events from before keyed links began
    table: str | None = None        # a row of this table disagrees with the trail (the events are intact)
    anchors: int = 0                # anchors the trail was checked against
    key_missing: str | None = None  # no audit key here (this path): the keyed links were not checked
    anchor_error: str | None = None # an intact trail that could not be anchored, and why


def canonical_json(value) -> str:
    """The one serialisation that is hashed.

    >>> canonical_json({"b": 1, "a": [True, None]})
    '{"a":[true,null],"b":1}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def event_hash(prev_hash: str, *, id: str, session_id: str | None, ts: datetime, type: str,
               payload: dict) -> str:
    """sha256 over the previous hash and the event's canonical JSON (ts in UTC ISO 8601).

    >>> ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    >>> event_hash(GENESIS, id="e1", session_id="s1", ts=ts, type="intent", payload={})[:16]
    'ce73a02d321898da'
    """
    body = canonical_json({"id": id, "session_id": session_id, "ts": _utc(ts).isoformat(), "type": type,
                           "payload": payload})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def verify_chain(events: Iterable[AuditEvent], head_seq: int, head_hash: str, *, key: AuditKey | None = None,
                 store_id: str | None = None, head_link: str | None = None,
                 keyed_from: int | None = None) -> VerifyResult:
    """Walk events in seq order: no gaps, every link, every hash, every keyed link, and the head at
    the end. Events before ``keyed_from`` may lack a keyed link (they predate it); none after may.
    Without a ``key`` the keyed links themselves are not checked (Store.verify then says so)."""
    chain = _Walk(key, store_id, keyed_from)
    for e in events:
        problem = chain.problem(e)
        if problem is not None:
            broken = chain.seq + 1 if e.seq != chain.seq + 1 else e.seq
            return VerifyResult(False, chain.checked, broken, problem, chain.unkeyed)
        chain.accept(e)
    prev_seq, prev_hash, checked = chain.seq, chain.hash, chain.checked
    if head_seq > prev_seq:
        return VerifyResult(False, checked, prev_seq + 1,
                            f"events {prev_seq + 1} to {head_seq} are missing: the chain head records "
                            f"{head_seq} events but the trail ends at {prev_seq} (the newest events were deleted)",
                            chain.unkeyed)
    if (head_seq, head_hash) != (prev_seq, prev_hash):
        return VerifyResult(False, checked, head_seq or None,
                            f"the chain head (seq {head_seq}, hash {head_hash[:12]}) does not match the last "
                            f"event (seq {prev_seq}, hash {prev_hash[:12]})", chain.unkeyed)
    if chain.keyed and head_link != chain.link:
        return VerifyResult(False, checked, head_seq or None,
                            f"the chain head's keyed link ({(head_link or 'none')[:12]}) does not match the last "
                            f"event's (seq {prev_seq}, link {chain.link[:12]})", chain.unkeyed)
    return VerifyResult(True, checked, None, None, chain.unkeyed)


class _Walk:
    """Where a walk along the chain is: the last intact event's seq, hash and link."""

    def __init__(self, key: AuditKey | None, store_id: str | None, keyed_from: int | None) -> None:
        self.key, self.store_id, self.keyed_from = key, store_id, keyed_from
        self.seq, self.hash, self.link = 0, GENESIS, GENESIS
        self.checked = self.unkeyed = 0
        self.keyed = False                  # a keyed event was seen: every later one must be keyed too

    def accept(self, e: AuditEvent) -> None:
        self.seq, self.hash, self.link = e.seq, e.hash, e.chain_link
        self.checked += 1
        self.keyed = self.keyed or e.link is not None
        self.unkeyed += e.link is None

    def problem(self, e: AuditEvent) -> str | None:
        return _link_problem(e, self.seq, self.hash) or self._keyed_problem(e)

    def _keyed_problem(self, e: AuditEvent) -> str | None:
        if e.link is None:
            start = self.keyed_from if self.keyed_from is not None and e.seq >= self.keyed_from else None
            if self.keyed or start is not None:
                since = f"from event {start}" if start is not None else "after the first keyed event"
                return (f"event {e.seq} ({e.type}) has no keyed link, but every event {since} must carry one: "
                        "its link was stripped, or it was written by something without the audit key")
            return None
        if self.key is None:
            return None
        expected = self.key.link(store_id=self.store_id or "", seq=e.seq, prev_link=self.link, digest=e.hash)
        if e.link != expected:
            return (f"event {e.seq} ({e.type}) does not match its keyed link: the event (or one before it) was "
                    "altered and the chain recomputed without the audit key, or the trail was written with "
                    f"another key than {self.key.path}")
        return None


def _link_problem(e: AuditEvent, prev_seq: int, prev_hash: str) -> str | None:
    if e.seq != prev_seq + 1:
        return (f"event {prev_seq + 1} is missing (the next event is {e.seq}): "
                "events were deleted from the middle of the trail")
    if e.prev_hash != prev_hash:
        return (f"event {e.seq} does not link to the event before it: its prev_hash is {e.prev_hash[:12]} "
                f"but the previous hash is {prev_hash[:12]}")
    expected = event_hash(e.prev_hash, id=e.id, session_id=e.session_id, ts=e.ts, type=e.type,
                          payload=e.payload)
    if e.hash != expected:
        return f"event {e.seq} ({e.type}) was altered after it was recorded: its content no longer matches its hash"
    return None


def anchor_problem(events: list[AuditEvent], anchors: list[Anchor], where: str) -> tuple[int, str] | None:
    """The first way the (otherwise intact) trail contradicts its anchors: (the broken seq, what).

    An anchored seq must still hold the anchored link (else the chain was recomputed), and the trail
    must reach the newest anchored seq (else its newest events were deleted).
    """
    by_seq = {e.seq: e for e in events}
    last = events[-1].seq if events else 0
    for a in sorted(anchors, key=lambda a: a.seq):
        e = by_seq.get(a.seq)
        if e is not None and e.chain_link != a.link:
            return a.seq, (f"event {a.seq}'s link ({e.chain_link[:12]}) differs from the one anchored at {_iso(a.at)} "
                           f"({a.link[:12]}, in {where}): the chain was recomputed from event {a.seq} or earlier")
    newest = max(anchors, key=lambda a: a.seq, default=None)
    if newest is not None and newest.seq > last:
        return last + 1, (f"the trail ends at event {last} but was anchored at event {newest.seq} at "
                          f"{_iso(newest.at)} (in {where}): events {last + 1} to {newest.seq} were deleted")
    return None


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes and PostgreSQL its session's zone; everything here is UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
