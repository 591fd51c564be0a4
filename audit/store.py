"""The control-plane store: sessions and the hash-chained, append-only audit trail.

One SQLAlchemy engine on SQLite (the default, a file in your state directory, shared by every
terminal) or PostgreSQL (a team's shared store). Opening the store checks that its schema is the
newest; `countersign store upgrade` (Store.upgrade) migrates it.

Every event links to the one before it:

    hash = sha256(prev_hash + canonical JSON of {id, session_id, ts, type, payload})

and, since migration 0003, a keyed link over it (audit/keys.py):

    link = HMAC-SHA256(audit key, store id | seq | previous link | hash)

so recomputing the chain after an edit needs the key, not just the formula above. Events recorded
before keyed links began (seq < keyed_from) keep a NULL link and verify as before. The single row of
cs_audit_chain_head holds the last seq, hash and link. Appending reads and updates
that row in the same transaction as the insert, under a write lock (SELECT ... FOR UPDATE on
PostgreSQL, BEGIN IMMEDIATE on SQLite), so concurrent appenders from any number of threads or
processes take turns and the chain never forks. Editing an event breaks its hash, deleting one
leaves a gap in seq or a head that points past the end; `verify()` names the first such event. It
also compares the trail with anchors kept outside the store (audit/anchors.py: truncation and a
recomputed chain) and with the rows of the sessions, approvals and snapshots tables
(audit/coverage.py). A new SQLite store file is created 0600.

Any database error while recording raises StoreUnavailable: the caller must then refuse to run the
command, because a command the trail cannot record must not happen.
"""
from __future__ import annotations

import json
import os
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from audit.anchors import AnchorError, Anchoring, AnchorSink, FileAnchors, default_anchor_path
# GENESIS, AuditEvent, VerifyResult and the chain's functions are imported from here by callers too.
from audit.chain import GENESIS, AuditEvent, VerifyResult, anchor_problem, canonical_json, event_hash, verify_chain
from audit.chain_writer import ChainHeadMissing, ChainWriter, Head, ChainTx
from audit.coverage import row_problems
from audit.events import Event, SessionEndEvent, SessionStartEvent, UnknownEvent, to_payload
from audit.keys import (AuditKey, AuditKeyError, create_private_file, key_path, load_key, load_or_create_key,
                        state_dir)
from audit.schema import approval_requests as requests_t
from audit.schema import approval_votes as votes_t
from audit.schema import audit_chain_head as head_t
from audit.schema import audit_events as events_t
from audit.schema import sessions as sessions_t
from audit.schema import snapshots as snapshots_t

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


# -- opening ----------------------------------------------------------------------------------------
def default_store_url() -> str:
    """$COUNTERSIGN_STORE, else a SQLite file in the user's state directory (created if needed)."""
    if os.environ.get("COUNTERSIGN_STORE"):
        return os.environ["COUNTERSIGN_STORE"]
    return f"sqlite:///{state_dir() / 'store.db'}"


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
    if database and database != ":memory:":
        # Created 0600 before SQLite opens it: SQLite gives the -wal and -shm files the same mode.
        try:
            create_private_file(Path(database).expanduser())
        except OSError as err:
            raise StoreUnavailable(f"cannot create the store {database}: {err}") from err
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


def store_identity(url: str) -> str:
    """What names a store for its default anchor file: the SQLite file's absolute path, or the
    PostgreSQL URL without its password.

    >>> store_identity("postgresql+psycopg://cs:secret@db:5432/countersign")
    'postgresql+psycopg://cs:***@db:5432/countersign'
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:///{Path(parsed.database or ':memory:').expanduser().resolve()}"
    return parsed.render_as_string(hide_password=True)


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
                 new_id: Callable[[], str], key_file: Path | None = None,
                 anchors: AnchorSink | None = None) -> None:
        self.engine = engine
        self.url = url
        self.clock = clock
        self.new_id = new_id
        self.dialect = engine.dialect.name
        self._writer = ChainWriter(engine)
        self._dbapi_error = engine.dialect.loaded_dbapi.Error
        self._key_file = key_file             # None: $COUNTERSIGN_AUDIT_KEY_FILE or the state directory
        self._key: AuditKey | None = None
        self._sink = anchors                  # None: FileAnchors at default_anchor_path, made when first used
        self._anchoring: Anchoring | None = None
        self._store_id = ""                   # read from the head by the first append

    @classmethod
    def open(cls, url: str, *, clock: Callable[[], datetime] | None = None,
             new_id: Callable[[], str] | None = None, create: bool = False, key_file: Path | None = None,
             anchors: AnchorSink | None = None) -> "Store":
        """Connect and check that the schema is the newest; never migrate an existing store.

        Migrating needs a role that may change the schema, and Alembic's import alone costs ~190 ms, so
        opening only reads alembic_version and raises StoreOutOfDate saying what to run. ``create``
        migrates a store that has no schema at all (a brand-new file); an existing store at an older
        revision is still refused: changing a schema others use is an explicit step.
        ``key_file`` and ``anchors`` say where the audit key and the anchors are (default: the
        environment, else the user's state directory).
        """
        store = cls._connect(url, clock, new_id, key_file=key_file, anchors=anchors)
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
                 new_id: Callable[[], str] | None, **where) -> "Store":
        url = engine_url(url)
        return cls(_create_engine(url), url, clock=clock or _utcnow, new_id=new_id or _uuid, **where)

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
            started = self._append(tx, session_id, SessionStartEvent(user=user, target=target,
                                                                     environment=environment, host=host,
                                                                     reason=reason), now)
        self._anchor(started)
        return session_id

    def end_session(self, session_id: str) -> None:
        """Mark the session ended and record it; ending an ended session again does nothing."""
        now = _utc(self.clock())
        ended = None
        with self._recording("end the session") as tx:
            if tx.end_session(session_id, now):
                ended = self._append(tx, session_id, SessionEndEvent(), now)
        if ended is not None:
            self._anchor(ended, force=True)

    def append(self, session_id: str | None, event: Event | str, payload: dict | None = None) -> AuditEvent:
        """Record one typed event: `append(session_id, IntentEvent(...))`. The untyped form
        `append(session_id, type, payload)` is still accepted while callers move to typed events."""
        event = _typed(event, payload)
        with self._recording(f"record the {event.type} event") as tx:
            recorded = self._append(tx, session_id, event, _utc(self.clock()))
        self._anchor(recorded)
        return recorded

    def append_within(self, conn: Connection, session_id: str | None, event: Event) -> AuditEvent:
        """Record one event inside the caller's own transaction on this store's engine, so a row change
        and its event commit together or not at all. The caller calls ``anchor_after`` once committed.
        (Row locks first, then the chain head: every writer takes them in that order.)"""
        cursor = conn.connection.cursor()
        try:
            return self._append(ChainTx(self._writer, cursor), session_id, event, _utc(self.clock()))
        except StoreUnavailable:
            raise
        except (SQLAlchemyError, self._dbapi_error) as err:
            raise StoreUnavailable(f"the audit store at {_safe(self.url)} could not record the {event.type} "
                                   f"event: {_reason(err)}") from err

    def anchor_after(self, event: AuditEvent) -> None:
        self._anchor(event)

    def _append(self, tx, session_id: str | None, event: Event, ts: datetime) -> AuditEvent:
        try:
            head = tx.head()
        except ChainHeadMissing:
            raise StoreUnavailable("the audit chain head is missing from the store; the trail cannot be "
                                   "extended safely — ask an admin to check it with `countersign audit verify`") from None
        key = self._key_for_writing(head)
        type, body = event.type, canonical_json(to_payload(event))
        payload = json.loads(body)  # exactly what a reader will get back, and hash
        event_id, seq = self.new_id(), head.seq + 1
        digest = event_hash(head.hash, id=event_id, session_id=session_id, ts=ts, type=type, payload=payload)
        link = key.link(store_id=head.store_id or "", seq=seq, prev_link=head.link or head.hash, digest=digest)
        # seq is set here, under the lock, not by a sequence: a rolled-back append must not leave a gap.
        tx.insert_event(seq=seq, id=event_id, session_id=session_id, ts=ts, type=type, payload=body,
                        prev_hash=head.hash, hash=digest, link=link)
        tx.move_head(seq, digest, link)
        self._store_id = head.store_id or ""
        return AuditEvent(seq, event_id, session_id, ts, type, payload, head.hash, digest, link)

    # -- the key and the anchors -----------------------------------------------------------------------
    def key_path(self) -> Path:
        return self._key_file or key_path()

    def _key_for_writing(self, head: Head) -> AuditKey:
        """The audit key, created on first use; never a new key for a trail already keyed with one."""
        if self._key is None:
            path = self.key_path()
            try:
                self._key = load_key(path) if head.link is not None else load_or_create_key(path)
            except AuditKeyError as err:
                raise StoreUnavailable(str(err)) from None
            if self._key is None:
                raise StoreUnavailable(f"the audit key {path} is missing, but this trail's links were made with "
                                       "one: restore it, or set COUNTERSIGN_AUDIT_KEY_FILE to where it is")
        return self._key

    def _key_for_reading(self) -> AuditKey | None:
        if self._key is None:
            try:
                self._key = load_key(self.key_path())
            except AuditKeyError as err:
                raise StoreUnavailable(str(err)) from None
        return self._key

    def anchor_sink(self) -> AnchorSink:
        if self._sink is None:
            self._sink = FileAnchors(default_anchor_path(store_identity(self.url)))
        return self._sink

    def _anchor(self, event: AuditEvent, *, force: bool = False, now: datetime | None = None) -> None:
        """Publish the head after its transaction committed (an anchor must never name a rolled-back
        event); every so often, or now when forced."""
        if self._anchoring is None:
            self._anchoring = Anchoring(self.anchor_sink())
        try:
            self._anchoring.head_moved(self._store_id, event.seq, event.chain_link, now or event.ts, force=force)
        except AnchorError as err:
            raise StoreUnavailable(f"the trail could not be anchored at event {event.seq}: {err}; set "
                                   "COUNTERSIGN_AUDIT_ANCHOR_FILE to a writable place") from None

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

    def verify(self, *, anchor: bool = True) -> VerifyResult:
        """Check the chain and its keyed links, then the anchors, then the rows outside the chain; the
        first problem found is the result. An intact trail is anchored (unless ``anchor`` is False)."""
        sink = self.anchor_sink()
        try:   # read before the events: an anchor only ever names an event that committed before it
            anchors = sink.anchors()
        except AnchorError as err:
            raise StoreUnavailable(str(err)) from None
        head, events, tables = self._trail_and_rows()
        if head is None:
            return VerifyResult(False, 0, None, "the chain head row is missing; the trail cannot be verified")
        key = self._key_for_reading()
        result = verify_chain(events, head.last_seq, head.last_hash, key=key,
                              store_id=head.store_id, head_link=head.last_link, keyed_from=head.keyed_from)
        if not result.ok:
            return result
        anchors = [a for a in anchors if a.store_id == (head.store_id or "")]
        broken = anchor_problem(events, anchors, sink.where)
        if broken is not None:
            return VerifyResult(False, broken[0] - 1, broken[0], broken[1], result.unkeyed, anchors=len(anchors))
        rows = row_problems(events, **tables)
        if rows:
            return VerifyResult(False, result.checked, None, rows[0].text, result.unkeyed, table=rows[0].table,
                                anchors=len(anchors))
        unchecked = str(self.key_path()) if key is None and any(e.link is not None for e in events) else None
        result = replace(result, anchors=len(anchors), key_missing=unchecked)
        if anchor and events:
            try:   # the check itself is done: an anchor that cannot be written is a warning, not a failure
                self._store_id = head.store_id or ""
                self._anchor(events[-1], force=True, now=_utc(self.clock()))
            except StoreUnavailable as err:
                result = replace(result, anchor_error=str(err))
        return result

    def _trail_and_rows(self):
        """The head row, every event, and the rows of the tables the trail covers, in one read."""
        with self._reading("verify the audit trail") as conn:
            head = conn.execute(select(head_t).where(head_t.c.id == 1)).one_or_none()
            events = [_event(r) for r in conn.execute(select(events_t).order_by(events_t.c.seq))]
            tables = {name: [r._mapping for r in conn.execute(select(table))] for name, table in _COVERED.items()}
        return head, events, tables

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


# The tables outside the chain that verify() checks against it (audit/coverage.py).
_COVERED = {"sessions": sessions_t, "requests": requests_t, "votes": votes_t, "snapshots": snapshots_t}


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
                      payload=payload, prev_hash=row.prev_hash, hash=row.hash, link=row.link)


def _typed(event: Event | str, payload: dict | None) -> Event:
    """The event to record; the untyped (type, payload) form travels as an UnknownEvent, stored the same."""
    if isinstance(event, str):
        if payload is None:
            raise TypeError(f"append(session_id, {event!r}, payload) needs the payload")
        return UnknownEvent(event, payload)
    if payload is not None:
        raise TypeError(f"a typed {event.type} event carries its own payload; pass the event alone")
    return event
