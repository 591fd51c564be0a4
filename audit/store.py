"""The control-plane store: sessions and the hash-chained, append-only audit trail.

One SQLAlchemy engine on SQLite (the default, a file in your state directory, shared by every
terminal) or PostgreSQL (a team's shared store). Opening the store checks that its schema is the
newest; `countersign store upgrade` (Store.upgrade) migrates it.

Every event links to the one before it:

    hash = sha256(prev_hash + canonical JSON of {id, session_id, ts, type, payload})

and the single row of cs_audit_chain_head holds the last seq and hash. Appending reads and updates
that row in the same transaction as the insert, under a write lock (SELECT ... FOR UPDATE on
PostgreSQL, BEGIN IMMEDIATE on SQLite), so concurrent appenders from any number of threads or
processes take turns and the chain never forks. Editing an event breaks its hash, deleting one
leaves a gap in seq or a head that points past the end; `verify()` names the first such event.

Any database error while recording raises StoreUnavailable: the caller must then refuse to run the
command, because a command the trail cannot record must not happen.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from audit.chain_writer import ChainHeadMissing, ChainWriter
from audit.events import Event, SessionEndEvent, SessionStartEvent, UnknownEvent, from_record, to_payload
from audit.schema import audit_chain_head as head_t
from audit.schema import audit_events as events_t
from audit.schema import sessions as sessions_t

GENESIS = "0" * 64                 # prev_hash of the first event
BUSY_TIMEOUT_MS = 30_000           # SQLite: wait this long for another terminal's write to finish
PG_CONNECT_TIMEOUT_S = 10          # a store that does not answer is unavailable, not a hang
MIGRATION_LOCK = 0x63735F6D6967    # pg_advisory_xact_lock key ("cs_mig") held while migrating
WRITE_LOCK = "countersign_write_lock"  # execution option: this connection's transactions write
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIN_PREFIX = 4                     # shorter session id prefixes are too easy to mistype

# Alembic's `context` and `op` are module-level proxies, so two threads of one process must not
# migrate at the same time; other processes are kept apart by the database lock instead.
_migrating = threading.Lock()


class StoreUnavailable(Exception):
    """The store cannot record (or be read); the message says what failed and what to check."""


class StoreOutOfDate(StoreUnavailable):
    """The store's schema is not the one this countersign needs; the message says what to run."""


class UnknownSession(LookupError):
    """No session matches the id or prefix (or several do)."""


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

    @property
    def event(self) -> Event:
        """The typed event (an UnknownEvent for a type or payload this version has no class for)."""
        return from_record(self.type, self.payload)


@dataclass(frozen=True)
class SessionInfo:
    id: str
    user: str
    target: str
    environment: str
    host: str
    reason: str | None
    started_at: datetime
    ended_at: datetime | None
    commands: int          # intent events: statements that were submitted


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int                    # events found intact before the first problem
    first_broken_seq: int | None
    problem: str | None


# -- the chain (pure) ----------------------------------------------------------------------------
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


def verify_chain(events: Iterable[AuditEvent], head_seq: int, head_hash: str) -> VerifyResult:
    """Walk events in seq order: no gaps, every link, every hash, and the head at the end."""
    prev_seq, prev_hash, checked = 0, GENESIS, 0
    for e in events:
        problem = _link_problem(e, prev_seq, prev_hash)
        if problem is not None:
            broken = prev_seq + 1 if e.seq != prev_seq + 1 else e.seq
            return VerifyResult(False, checked, broken, problem)
        prev_seq, prev_hash, checked = e.seq, e.hash, checked + 1
    if head_seq > prev_seq:
        return VerifyResult(False, checked, prev_seq + 1,
                            f"events {prev_seq + 1} to {head_seq} are missing: the chain head records "
                            f"{head_seq} events but the trail ends at {prev_seq} (the newest events were deleted)")
    if (head_seq, head_hash) != (prev_seq, prev_hash):
        return VerifyResult(False, checked, head_seq or None,
                            f"the chain head (seq {head_seq}, hash {head_hash[:12]}) does not match the last "
                            f"event (seq {prev_seq}, hash {prev_hash[:12]})")
    return VerifyResult(True, checked, None, None)


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


# -- opening ----------------------------------------------------------------------------------------
def default_store_url() -> str:
    """$COUNTERSIGN_STORE, else a SQLite file in the user's state directory (created if needed)."""
    if os.environ.get("COUNTERSIGN_STORE"):
        return os.environ["COUNTERSIGN_STORE"]
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "countersign"
    state.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{state / 'store.db'}"


def engine_url(url: str) -> str:
    """The SQLAlchemy URL for a store URL: plain PostgreSQL URLs use psycopg 3.

    >>> engine_url("postgresql://cs@db/countersign"), engine_url("sqlite:///s.db")
    ('postgresql+psycopg://cs@db/countersign', 'sqlite:///s.db')
    """
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnavailable(f"{url!r} is not a database URL; use sqlite:///PATH or postgresql://...") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S})
    raise StoreUnavailable(f"the store must be SQLite or PostgreSQL, not {parsed.get_backend_name()!r} ({_safe(url)})")


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:" and not Path(database).expanduser().parent.is_dir():
        raise StoreUnavailable(f"the store's directory {Path(database).parent} does not exist; create it or "
                               "point COUNTERSIGN_STORE at another place")
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # The pysqlite recipe: stop the driver's own BEGIN handling so ours (below) is the only one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")  # first: switching to WAL may wait
        cursor.execute("PRAGMA journal_mode = WAL")  # readers in one terminal never block a writer in another
        # In WAL mode NORMAL still survives a crash of any process; only a power loss can undo the
        # last few commits. FULL would fsync on every audit event (~0.4 ms each here).
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front; a deferred transaction that reads and then writes can
        # fail with SQLITE_BUSY in WAL mode instead of waiting its turn.
        immediate = conn.get_execution_options().get(WRITE_LOCK, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _alembic_config(conn: Connection):
    from alembic.config import Config
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes and PostgreSQL its session's zone; everything here is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _uuid() -> str:
    return str(uuid.uuid4())


# -- the store ----------------------------------------------------------------------------------------
class Store:
    def __init__(self, engine: Engine, url: str, *, clock: Callable[[], datetime],
                 new_id: Callable[[], str]) -> None:
        self.engine = engine
        self.url = url
        self.clock = clock
        self.new_id = new_id
        self.dialect = engine.dialect.name
        self._writer = ChainWriter(engine)
        self._dbapi_error = engine.dialect.loaded_dbapi.Error

    @classmethod
    def open(cls, url: str, *, clock: Callable[[], datetime] | None = None,
             new_id: Callable[[], str] | None = None, create: bool = False) -> "Store":
        """Connect and check that the schema is the newest; never migrate an existing store.

        Migrating needs a role that may change the schema, and Alembic's import alone costs ~190 ms, so
        opening only reads alembic_version and raises StoreOutOfDate saying what to run. ``create``
        migrates a store that has no schema at all (a brand-new file); an existing store at an older
        revision is still refused: changing a schema others use is an explicit step.
        """
        store = cls._connect(url, clock, new_id)
        try:
            store._check_schema(create)
        except BaseException:
            store.dispose()
            raise
        return store

    @classmethod
    def upgrade(cls, url: str) -> tuple[str | None, str]:
        """Migrate the store at ``url`` to the newest schema: (revision before, revision after).
        Idempotent, and safe when several processes upgrade at once."""
        store = cls._connect(url, None, None)
        try:
            before = store.schema_revisions()
            store.migrate()
            return (before[0] if len(before) == 1 else None), store.schema_revisions()[0]
        finally:
            store.dispose()

    @classmethod
    def _connect(cls, url: str, clock: Callable[[], datetime] | None,
                 new_id: Callable[[], str] | None) -> "Store":
        url = engine_url(url)
        return cls(_create_engine(url), url, clock=clock or _utcnow, new_id=new_id or _uuid)

    def schema_revisions(self) -> tuple[str, ...]:
        """The revisions alembic_version records (one, normally); () for a store with no schema."""
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return ()
                return tuple(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        except SQLAlchemyError as err:
            raise StoreUnavailable(f"cannot open the store at {_safe(self.url)}: {_reason(err)}") from err

    def _check_schema(self, create: bool) -> None:
        from audit.revisions import UPGRADE_HINT, RevisionScriptError, schema_problem, script_revisions
        try:
            chain = script_revisions()
            current = self.schema_revisions()
            if create and not current:
                self.migrate()
                current = self.schema_revisions()
            problem = schema_problem(current, chain)
        except RevisionScriptError as err:
            raise StoreUnavailable(f"cannot check the store at {_safe(self.url)}: {err}") from err
        if problem is not None:
            hint = f"; {UPGRADE_HINT}" if problem.upgradable else ""
            raise StoreOutOfDate(f"the audit store at {_safe(self.url)} {problem.text}{hint}")

    def migrate(self) -> None:
        from alembic import command
        from alembic.util import CommandError
        try:
            with _migrating, self._transaction() as conn:
                if self.dialect == "postgresql":  # released at commit; concurrent upgrades wait here
                    conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
                command.upgrade(_alembic_config(conn), "head")
        except (SQLAlchemyError, CommandError) as err:
            raise StoreUnavailable(f"cannot migrate the store at {_safe(self.url)}: {_reason(err)}") from err

    def dispose(self) -> None:
        self._writer.close()
        self.engine.dispose()

    # -- writing ---------------------------------------------------------------------------------------
    def start_session(self, *, user: str, target: str, environment: str, host: str,
                      reason: str | None = None) -> str:
        session_id, now = self.new_id(), _utc(self.clock())
        with self._recording("start the session") as tx:
            tx.insert_session(id=session_id, user=user, target=target, environment=environment, host=host,
                              reason=reason, started_at=now, ended_at=None)
            self._append(tx, session_id, SessionStartEvent(user=user, target=target, environment=environment,
                                                           host=host, reason=reason), now)
        return session_id

    def end_session(self, session_id: str) -> None:
        """Mark the session ended and record it; ending an ended session again does nothing."""
        now = _utc(self.clock())
        with self._recording("end the session") as tx:
            if tx.end_session(session_id, now):
                self._append(tx, session_id, SessionEndEvent(), now)

    def append(self, session_id: str | None, event: Event | str, payload: dict | None = None) -> AuditEvent:
        """Record one typed event: `append(session_id, IntentEvent(...))`. The untyped form
        `append(session_id, type, payload)` is still accepted while callers move to typed events."""
        event = _typed(event, payload)
        with self._recording(f"record the {event.type} event") as tx:
            return self._append(tx, session_id, event, _utc(self.clock()))

    def _append(self, tx, session_id: str | None, event: Event, ts: datetime) -> AuditEvent:
        try:
            last_seq, last_hash = tx.head()
        except ChainHeadMissing:
            raise StoreUnavailable("the audit chain head is missing from the store; the trail cannot be "
                                   "extended safely — ask an admin to check it with `countersign audit verify`") from None
        type, body = event.type, canonical_json(to_payload(event))
        payload = json.loads(body)  # exactly what a reader will get back, and hash
        event_id, seq = self.new_id(), last_seq + 1
        digest = event_hash(last_hash, id=event_id, session_id=session_id, ts=ts, type=type, payload=payload)
        # seq is set here, under the lock, not by a sequence: a rolled-back append must not leave a gap.
        tx.insert_event(seq=seq, id=event_id, session_id=session_id, ts=ts, type=type, payload=body,
                        prev_hash=last_hash, hash=digest)
        tx.move_head(seq, digest)
        return AuditEvent(seq, event_id, session_id, ts, type, payload, last_hash, digest)

    # -- reading -----------------------------------------------------------------------------------------
    def events(self, *, session_id: str | None = None, since: datetime | None = None) -> list[AuditEvent]:
        query = select(events_t).order_by(events_t.c.seq)
        if session_id is not None:
            query = query.where(events_t.c.session_id == session_id)
        if since is not None:
            query = query.where(events_t.c.ts >= _utc(since))
        with self._reading("read the audit trail") as conn:
            return [_event(row) for row in conn.execute(query)]

    def event(self, seq: int) -> AuditEvent | None:
        with self._reading("read the audit trail") as conn:
            row = conn.execute(select(events_t).where(events_t.c.seq == seq)).one_or_none()
        return None if row is None else _event(row)

    def sessions(self) -> list[SessionInfo]:
        """Newest first."""
        with self._reading("list sessions") as conn:
            return [_session(r) for r in conn.execute(_sessions_query()
                                                      .order_by(sessions_t.c.started_at.desc(), sessions_t.c.id))]

    def session(self, id_or_prefix: str) -> SessionInfo:
        """One session by id or a unique prefix of at least MIN_PREFIX characters."""
        key = id_or_prefix.strip()
        with self._reading("read the session") as conn:
            exact = conn.execute(_sessions_query().where(sessions_t.c.id == key)).all()
            if exact or len(key) < MIN_PREFIX:
                found = exact
            else:
                pattern = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                found = conn.execute(_sessions_query().where(sessions_t.c.id.like(pattern, escape="\\"))
                                     .limit(5)).all()
        if len(found) == 1:
            return _session(found[0])
        if not found:
            raise UnknownSession(f"no session matches {key!r}; `countersign audit sessions` lists them "
                                 f"(give the full id or at least {MIN_PREFIX} characters)")
        raise UnknownSession(f"{key!r} matches several sessions ({', '.join(r.id for r in found)}); "
                             "give more of the id")

    def verify(self) -> VerifyResult:
        with self._reading("verify the audit trail") as conn:
            head = conn.execute(select(head_t).where(head_t.c.id == 1)).one_or_none()
            if head is None:
                return VerifyResult(False, 0, None, "the chain head row is missing; the trail cannot be verified")
            rows = conn.execute(select(events_t).order_by(events_t.c.seq))
            return verify_chain((_event(r) for r in rows), head.last_seq, head.last_hash)

    # -- transactions --------------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One write transaction holding the write lock from its first statement (SQLite)."""
        with self.engine.connect() as conn:
            conn.execution_options(**{WRITE_LOCK: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _recording(self, what: str) -> Iterator:
        try:
            with self._writer.transaction() as tx:
                yield tx
        except StoreUnavailable:
            raise
        except (SQLAlchemyError, self._dbapi_error) as err:
            raise StoreUnavailable(f"the audit store at {_safe(self.url)} could not {what}: {_reason(err)}") from err

    @contextmanager
    def _reading(self, what: str) -> Iterator[Connection]:
        with self._unavailable_on_error(what), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _unavailable_on_error(self, what: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as err:
            raise StoreUnavailable(f"the audit store at {_safe(self.url)} could not {what}: {_reason(err)}") from err


def _reason(err: Exception) -> str:
    """The driver's own message, first line: SQLAlchemy's wrapper repeats the SQL and a docs link."""
    orig = getattr(err, "orig", None) or err
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def _sessions_query():
    intents = (select(events_t.c.session_id, func.count().label("n")).where(events_t.c.type == "intent")
               .group_by(events_t.c.session_id).subquery())
    return (select(sessions_t, func.coalesce(intents.c.n, 0).label("commands"))
            .outerjoin(intents, intents.c.session_id == sessions_t.c.id))


def _session(row) -> SessionInfo:
    return SessionInfo(id=row.id, user=row.user, target=row.target, environment=row.environment, host=row.host,
                       reason=row.reason, started_at=_utc(row.started_at), ended_at=_utc(row.ended_at),
                       commands=int(row.commands))


def _event(row) -> AuditEvent:
    try:
        payload = json.loads(row.payload)
    except ValueError:  # edited into non-JSON: keep it readable; verify() reports the hash mismatch
        payload = {"unreadable_payload": row.payload}
    return AuditEvent(seq=row.seq, id=row.id, session_id=row.session_id, ts=_utc(row.ts), type=row.type,
                      payload=payload, prev_hash=row.prev_hash, hash=row.hash)


def _typed(event: Event | str, payload: dict | None) -> Event:
    """The event to record; the untyped (type, payload) form travels as an UnknownEvent, stored the same."""
    if isinstance(event, str):
        if payload is None:
            raise TypeError(f"append(session_id, {event!r}, payload) needs the payload")
        return UnknownEvent(event, payload)
    if payload is not None:
        raise TypeError(f"a typed {event.type} event carries its own payload; pass the event alone")
    return event
