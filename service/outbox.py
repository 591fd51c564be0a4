"""The Slack outbox in the store: what is to be posted, in order, and what already was.

Several `serve` processes may share one store. Exactly one of them feeds and sends at a time: it
holds the lease (one row, taken and renewed with a conditional UPDATE, so no two can hold it), and
it still claims each row with a conditional UPDATE before sending it. Feeding moves the cursor over
the audit trail with a conditional UPDATE in the same transaction as the rows it inserts, so each
audit event becomes its posts exactly once whoever feeds.

Order matters within a thread, not across threads: each row belongs to a lane (one session's
announcement and thread, one approval request's message, updates and thread), a lane's rows go out
oldest first, and a lane waiting to retry holds up only itself. So a busy or rate-limited audit
channel never keeps an approval request from being posted.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from sqlalchemy import Connection, Engine, func, insert, or_, select, update

from audit.schema import audit_events
from audit.schema import slack_cursor as cursor_t
from audit.schema import slack_lease as lease_t
from audit.schema import slack_outbox as outbox_t
from audit.store import WRITE_LOCK, AuditEvent

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"


@dataclass(frozen=True)
class Post:
    """One Slack post to make; `key` names the message it becomes, `thread_key` the one it replies to."""
    kind: str
    channel: str | None
    payload: dict
    key: str | None = None
    thread_key: str | None = None
    source_seq: int | None = None

    @property
    def lane(self) -> str:
        """The thread this post belongs to: the message it replies to or updates, else itself.

        >>> Post("thread_reply", "C1", {}, thread_key="session:s1").lane, Post("approval", "C1", {}, key="approval:r1").lane
        ('session:s1', 'approval:r1')
        """
        return self.thread_key or self.key or f"{self.kind}:{self.source_seq}"


@dataclass(frozen=True)
class Row:
    id: int
    kind: str
    channel: str | None
    payload: dict
    key: str | None
    thread_key: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str


class Outbox:
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def now(self) -> datetime:
        return _utc(self.clock())

    # -- the lease ------------------------------------------------------------------------------
    def hold(self, holder: str, seconds: float) -> bool:
        """Take or renew the sender lease; False while another live process holds it. A new holder
        re-queues rows a dead holder had claimed (they may have been sent: at least once, then)."""
        now = self.now()
        with self._writing() as conn:
            before = conn.execute(select(lease_t.c.holder).where(lease_t.c.id == 1)).scalar()
            taken = conn.execute(update(lease_t).where(
                lease_t.c.id == 1, or_(lease_t.c.holder.is_(None), lease_t.c.holder == holder,
                                       lease_t.c.until < now))
                .values(holder=holder, until=now + timedelta(seconds=seconds))).rowcount == 1
            if taken and before != holder:
                conn.execute(update(outbox_t).where(outbox_t.c.status == SENDING, outbox_t.c.claimed_by != holder)
                             .values(status=PENDING, claimed_by=None))
        return taken

    def release(self, holder: str) -> None:
        with self._writing() as conn:
            conn.execute(update(lease_t).where(lease_t.c.id == 1, lease_t.c.holder == holder)
                         .values(holder=None, until=None))

    def holder(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(lease_t).where(lease_t.c.id == 1)).one()
        return row.holder if row.until is not None and _utc(row.until) > self.now() else None

    # -- feeding from the audit trail -----------------------------------------------------------
    def unfed(self, limit: int) -> tuple[int, list[AuditEvent]]:
        """The cursor and up to `limit` audit events after it, oldest first."""
        with self.engine.connect() as conn:
            last = conn.execute(select(cursor_t.c.last_seq).where(cursor_t.c.id == 1)).scalar_one()
            rows = conn.execute(select(audit_events).where(audit_events.c.seq > last)
                                .order_by(audit_events.c.seq).limit(limit)).all()
        return last, [_event(r) for r in rows]

    def feed(self, last: int, upto: int, posts: list[Post]) -> bool:
        """Move the cursor from `last` to `upto` and queue `posts`, atomically; False when another
        process moved it first (then nothing is queued)."""
        with self._writing() as conn:
            moved = conn.execute(update(cursor_t).where(cursor_t.c.id == 1, cursor_t.c.last_seq == last)
                                 .values(last_seq=upto)).rowcount == 1
            if not moved:
                return False
            now = self.now()
            for post in posts:
                conn.execute(insert(outbox_t).values(
                    created_at=now, kind=post.kind, channel=post.channel, key=post.key, lane=post.lane,
                    thread_key=post.thread_key, payload=json.dumps(post.payload), source_seq=post.source_seq,
                    status=PENDING, attempts=0))
        return True

    # -- sending --------------------------------------------------------------------------------
    def next_due(self) -> Row | None:
        """The oldest row that heads its lane and whose retry time (if any) has come."""
        open_ = outbox_t.c.status.in_((PENDING, SENDING))
        heads = select(func.min(outbox_t.c.id)).where(open_).group_by(outbox_t.c.lane)
        due = or_(outbox_t.c.next_attempt_at.is_(None), outbox_t.c.next_attempt_at <= self.now())
        with self.engine.connect() as conn:
            row = conn.execute(select(outbox_t).where(outbox_t.c.id.in_(heads), due)
                               .order_by(outbox_t.c.id).limit(1)).one_or_none()
        return None if row is None else _row(row)

    def claim(self, row_id: int, holder: str) -> bool:
        """Mark the row as being sent by `holder`; a row this holder left half-sent (its store write
        failed after the post) is claimed again."""
        mine = (outbox_t.c.status == SENDING) & (outbox_t.c.claimed_by == holder)
        with self._writing() as conn:
            return conn.execute(update(outbox_t).where(outbox_t.c.id == row_id, (outbox_t.c.status == PENDING) | mine)
                                .values(status=SENDING, claimed_by=holder)).rowcount == 1

    def sent(self, row_id: int, posted: Posted | None) -> None:
        self._finish(row_id, status=SENT, sent_at=self.now(), last_error=None,
                     slack_channel=posted.channel if posted else None, slack_ts=posted.ts if posted else None)

    def retry(self, row_id: int, error: str, after: float) -> None:
        self._finish(row_id, status=PENDING, last_error=error, attempts=outbox_t.c.attempts + 1,
                     next_attempt_at=self.now() + timedelta(seconds=after))

    def give_up(self, row_id: int, error: str) -> None:
        self._finish(row_id, status=FAILED, last_error=error, attempts=outbox_t.c.attempts + 1)

    def _finish(self, row_id: int, **values) -> None:
        with self._writing() as conn:
            conn.execute(update(outbox_t).where(outbox_t.c.id == row_id).values(claimed_by=None, **values))

    # -- reading --------------------------------------------------------------------------------
    def posted(self, key: str) -> Posted | None:
        """Where the message named `key` went, once it has been sent."""
        with self.engine.connect() as conn:
            row = conn.execute(select(outbox_t.c.slack_channel, outbox_t.c.slack_ts)
                               .where(outbox_t.c.key == key, outbox_t.c.status == SENT)).one_or_none()
        return None if row is None or row.slack_ts is None else Posted(row.slack_channel, row.slack_ts)

    def waiting(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(outbox_t)
                                .where(outbox_t.c.status.in_((PENDING, SENDING)))).scalar_one()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE)."""
        with self.engine.connect() as conn:
            conn.execution_options(**{WRITE_LOCK: True})
            with conn.begin():
                yield conn


def _row(r) -> Row:
    return Row(id=r.id, kind=r.kind, channel=r.channel, payload=json.loads(r.payload), key=r.key,
               thread_key=r.thread_key, status=r.status, attempts=r.attempts,
               next_attempt_at=_utc(r.next_attempt_at))


def _event(r) -> AuditEvent:
    return AuditEvent(seq=r.seq, id=r.id, session_id=r.session_id, ts=_utc(r.ts), type=r.type,
                      payload=json.loads(r.payload), prev_hash=r.prev_hash, hash=r.hash)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
