"""The write side of the audit trail: one dedicated DB-API connection that appends chained events.

Appending is on the path of every statement anyone runs (an intent before it, an outcome after), so
it skips SQLAlchemy's per-call machinery (pool checkout, statement compilation, events), which cost
about seven times the work itself here. The SQL is still built once from the same Table objects the
readers and the migrations use, so column names and value encodings cannot drift apart.

A failed append closes the connection: the next one starts on a fresh connection, so a store that went
away and came back is used again, and a half-done transaction is never reused.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from sqlalchemy import Engine, Table, bindparam, insert, select, update
from sqlalchemy.sql import ClauseElement

from audit.schema import audit_chain_head as head_t
from audit.schema import audit_events as events_t
from audit.schema import sessions as sessions_t


class ChainHeadMissing(Exception):
    """The single row of cs_audit_chain_head is gone: the trail cannot be extended safely."""


@dataclass(frozen=True)
class Head:
    """The chain head row: the last event's seq, hash and keyed link, and what keys the chain."""
    seq: int
    hash: str
    link: str | None        # None until the first keyed event (a trail from before migration 0003)
    keyed_from: int | None
    store_id: str | None


class _Statement:
    """A Core statement compiled once for the engine's dialect, bound positionally in DB-API style."""

    def __init__(self, engine: Engine, statement: ClauseElement, table: Table | None = None) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.names = list(compiled.positiontup or []) if compiled.positional else None
        self.defaults = dict(compiled.params)     # literal binds such as `id = 1`; unset ones are None
        processors = {}
        if table is not None:
            for column in table.columns:
                processor = column.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
                if processor is not None:
                    processors[column.key] = processor
        self.processors = processors

    def params(self, values: dict) -> tuple | dict:
        merged = {**self.defaults, **values}
        bound = {k: self.processors[k](v) if k in self.processors else v for k, v in merged.items()}
        return tuple(bound[n] for n in self.names) if self.names is not None else bound


class ChainWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._lock = threading.Lock()          # one appender per process at a time on this connection
        self._raw = None
        lock_head = select(head_t.c.last_seq, head_t.c.last_hash, head_t.c.last_link, head_t.c.keyed_from,
                           head_t.c.store_id).where(head_t.c.id == 1)
        if self.dialect == "postgresql":
            lock_head = lock_head.with_for_update()   # SQLite: BEGIN IMMEDIATE already holds the lock
        self._lock_head = _Statement(engine, lock_head)
        self._insert_event = _Statement(engine, insert(events_t), events_t)
        self._move_head = _Statement(engine, update(head_t).where(head_t.c.id == 1).values(
            last_seq=bindparam("last_seq"), last_hash=bindparam("last_hash"), last_link=bindparam("last_link")))
        self._insert_session = _Statement(engine, insert(sessions_t), sessions_t)
        self._end_session = _Statement(engine, update(sessions_t).where(
            sessions_t.c.id == bindparam("session_id"), sessions_t.c.ended_at.is_(None)).values(
            ended_at=bindparam("ended_at")), sessions_t)

    # -- transactions ------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["ChainTx"]:
        with self._lock:
            raw = self._connection()
            try:
                cursor = raw.cursor()
                cursor.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
                yield ChainTx(self, cursor)
                raw.commit() if self.dialect != "sqlite" else cursor.execute("COMMIT")
            except BaseException:
                self._reset()
                raise

    def _connection(self):
        if self._raw is None:
            raw = self.engine.raw_connection()
            if self.dialect == "postgresql":
                raw.driver_connection.autocommit = True   # we send BEGIN ourselves, as on SQLite
            self._raw = raw
        return self._raw

    def _reset(self) -> None:
        raw, self._raw = self._raw, None
        if raw is None:
            return
        try:
            raw.invalidate()   # never back into the pool: it may hold a half-done transaction
        except Exception:  # noqa: BLE001 - already broken; dropping it is all that is left
            pass

    def close(self) -> None:
        with self._lock:
            self._reset()


class ChainTx:
    """One locked append transaction: read the head, insert events, move the head."""

    def __init__(self, writer: ChainWriter, cursor) -> None:
        self.writer = writer
        self.cursor = cursor

    def run(self, statement: _Statement, values: dict) -> int:
        self.cursor.execute(statement.sql, statement.params(values))
        return self.cursor.rowcount

    def head(self) -> Head:
        w = self.writer
        self.cursor.execute(w._lock_head.sql, w._lock_head.params({}))
        row = self.cursor.fetchone()
        if row is None:
            raise ChainHeadMissing()
        return Head(int(row[0]), str(row[1]), row[2], None if row[3] is None else int(row[3]), row[4])

    def insert_event(self, **values) -> None:
        self.run(self.writer._insert_event, values)

    def move_head(self, seq: int, digest: str, link: str) -> None:
        self.run(self.writer._move_head, {"last_seq": seq, "last_hash": digest, "last_link": link})

    def insert_session(self, **values) -> None:
        self.run(self.writer._insert_session, values)

    def end_session(self, session_id: str, ended_at: datetime) -> bool:
        return self.run(self.writer._end_session, {"session_id": session_id, "ended_at": ended_at}) == 1
