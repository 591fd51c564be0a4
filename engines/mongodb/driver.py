"""MongoDB behind the Driver protocol, with pymongo. Statements are mongosh text, parsed by
classify.mongosh.shell; only literal values are ever sent.

MongoDB has no read-only transactions, so in ``transaction(read_only=True)`` THIS DRIVER is the guard:
it runs only whitelisted read methods (its own small check, deliberately independent of the
classifier) and raises ReadOnlyViolation for anything else before a byte is sent.

``transaction(read_only=False)`` is one multi-document transaction (snapshot read concern, majority
write concern): committed when the block ends normally, aborted when it raises. MongoDB refuses some
commands inside a transaction:
- DDL (drop, createIndex(es), dropIndex(es), renameCollection, dropDatabase) is queued and runs
  right AFTER the commit, so a snapshot copied in the same block is durable first; ``drop`` then runs only
  if the collection still holds as many documents as the transaction saw, else ConcurrentChange;
- $out/$merge aggregates and runCommand/adminCommand run at once, outside the transaction: they
  commit on their own whatever happens to the block.
"""
from __future__ import annotations

import datetime as dt
import threading
import uuid
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Iterator

import bson
import pymongo
from pymongo import errors as mongo_errors
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from engines import mask_url
from engines.base import (Catalog, Column, ConcurrentChange, ConnectionLost, DriverError,
                                  QueryCancelled, ReadOnlyViolation, ResultSet, StatementTimeout, Table)
from engines.base import identity_text
from engines.mongodb.ops import run
from classify.mongosh.shell import MongoCommand, MongoParseError, parse

SNAPSHOT_DATABASE = "countersign_snapshots"
SYSTEM_DATABASES = frozenset({"admin", "config", "local", SNAPSHOT_DATABASE})
ISOLATION_LEVELS = frozenset({"snapshot", "repeatable read", "serializable"})   # all run as snapshot
CATALOG_SAMPLE = 20                # documents read per collection to list its fields

# The driver's own read whitelist (see the module docstring): methods, cursor methods, and field
# names that make a "read" write ($out/$merge) or run JavaScript.
_READ_ONLY_METHODS = frozenset({"find", "findOne", "countDocuments", "estimatedDocumentCount", "distinct",
                                "aggregate", "getIndexes", "stats", "getCollectionNames", "show", "use",
                                "serverStatus", "currentOp", "version", "getName", "dataSize", "totalIndexSize",
                                "latencyStats"})
_READ_ONLY_MODIFIERS = frozenset({"sort", "limit", "skip", "projection", "hint", "collation", "comment",
                                  "batchSize", "maxTimeMS", "toArray", "count", "size", "itcount", "pretty",
                                  "allowDiskUse", "min", "max", "returnKey", "showRecordId", "explain", "readPref"})
# db.runCommand({...}) runs in a read-only transaction only for these commands (its first key).
_READ_ONLY_COMMANDS = frozenset({"ping", "buildInfo", "serverStatus", "dbStats", "collStats", "count", "find"})
_NOT_IN_READS = frozenset({"$out", "$merge", "$where", "$function", "$accumulator"})
_WRITE_CONFLICT = 112
_NAMESPACE_NOT_FOUND = 26
_OWN_COMMANDS = frozenset({"currentOp", "killOp", "killSessions", "hello", "isMaster", "ismaster", "ping",
                           "endSessions"})


def check_read_only(command: MongoCommand) -> None:
    """Raise ReadOnlyViolation unless ``command`` is a read this driver will run read-only."""
    if command.method == "runCommand":
        spec = command.arg(0)
        if not isinstance(spec, dict) or next(iter(spec), None) not in _READ_ONLY_COMMANDS:
            raise ReadOnlyViolation("this runCommand is not a read-only command, and this is a read-only "
                                    "transaction; nothing was sent (submit it as a write, for approval)")
    elif command.method not in _READ_ONLY_METHODS:
        raise ReadOnlyViolation(f"{command.method} can change data, and this is a read-only transaction; "
                                "nothing was sent (submit it as a write, for approval)")
    for name, _ in command.modifiers:
        if name not in _READ_ONLY_MODIFIERS:
            raise ReadOnlyViolation(f".{name}() is not a read-only cursor method; nothing was sent")
    stack: list[Any] = [command.args, [args for _, args in command.modifiers]]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            bad = _NOT_IN_READS.intersection(item)
            if bad:
                raise ReadOnlyViolation(f"{command.method} uses {sorted(bad)[0]}, which writes or runs "
                                        "JavaScript; nothing was sent (submit it for approval)")
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


class MongoDriver:
    dialect = "mongodb"

    def __init__(self, url: str, *, server_selection_timeout_ms: int = 5000, appname: str | None = None) -> None:
        self.url = mask_url(url)
        # The application name tags this driver's operations in currentOp, so cancel() finds them.
        self.appname = appname or f"countersign-{uuid.uuid4().hex[:12]}"
        try:
            self._database = pymongo.uri_parser.parse_uri(url).get("database") or "test"
            self._client = pymongo.MongoClient(
                url, serverSelectionTimeoutMS=server_selection_timeout_ms, appname=self.appname,
                tz_aware=True, uuidRepresentation="standard", datetime_conversion="DATETIME_AUTO")
            self._client.admin.command("ping")
        except mongo_errors.ConfigurationError as err:
            raise DriverError(f"{self.url} is not a usable MongoDB URL: {err}") from None
        except mongo_errors.PyMongoError as err:
            self._close_quietly()
            raise DriverError(f"MongoDB at {self.url} is not reachable ({_first_line(err)}); check the host "
                              "and port and that the server runs (a single server needs "
                              "directConnection=true in the URL)") from None
        self._lock = threading.Lock()
        self._running: MongoTransaction | None = None

    @property
    def database(self) -> str:
        """The session's current database: the URL's, until ``use x``."""
        return self._database

    def use(self, name: str) -> None:
        self._database = name

    @property
    def client(self) -> pymongo.MongoClient:
        return self._client

    @contextmanager
    def transaction(self, *, read_only: bool, timeout_ms: int | None = None,
                    isolation: str | None = None) -> Iterator["MongoTransaction"]:
        """A session (read_only) or a multi-document transaction (writes); see the module docstring."""
        if isolation is not None and " ".join(isolation.lower().split()) not in ISOLATION_LEVELS:
            raise ValueError(f"unknown isolation level {isolation!r}; MongoDB transactions run at snapshot "
                             f"isolation ({', '.join(sorted(ISOLATION_LEVELS))} are accepted)")
        session = self._client.start_session()
        tx = MongoTransaction(self, session, read_only=read_only, timeout_ms=timeout_ms)
        with self._lock:
            previous, self._running = self._running, tx
        try:
            if not read_only:
                session.start_transaction(read_concern=ReadConcern("snapshot"),
                                          write_concern=WriteConcern("majority"), max_commit_time_ms=timeout_ms)
            try:
                yield tx
            except BaseException:
                tx.abort()
                raise
            tx.finish()
        finally:
            with self._lock:
                self._running = previous
            session.end_session()

    def read(self, sql: str, *, timeout_ms: int | None = None, max_rows: int | None = None) -> ResultSet:
        """One read in its own read-only session (the driver refuses anything but a read)."""
        with self.transaction(read_only=True, timeout_ms=timeout_ms) as tx:
            return tx.execute(sql, max_rows=max_rows)

    def cancel(self) -> None:
        """Thread-safe. Kill this driver's running operations and its transaction's session; the
        running ``execute`` then raises QueryCancelled and the transaction is aborted."""
        with self._lock:
            tx = self._running
        if tx is None:
            return
        tx.cancelled.set()
        try:
            for op in self._client.admin.command({"currentOp": 1, "$ownOps": True}).get("inprog", []):
                if self._is_ours(op):
                    self._client.admin.command({"killOp": 1, "op": op["opid"]})
            self._client.admin.command({"killSessions": [tx.session.session_id]})
        except mongo_errors.PyMongoError:
            pass   # best effort: the cancelled flag alone still stops the block and aborts it

    def server_identity(self) -> str:
        """The Driver protocol's identity: the member that answers (``hello``'s ``me``, or
        serverStatus's host on a standalone server), its replica set, and the session's database
        (the URL's until ``use x``)."""
        try:
            hello = self._client.admin.command("hello")
            member = hello.get("me") or self._client.admin.command("serverStatus").get("host")
        except mongo_errors.PyMongoError as err:
            raise map_error(err, cancelled=False, timeout_ms=None) from err
        return identity_text("mongodb", [("host", member), ("set", hello.get("setName")), ("db", self.database)])

    def _is_ours(self, op: dict) -> bool:
        application = (op.get("clientMetadata") or {}).get("application") or {}
        command = op.get("command") or {}
        first = next(iter(command), None)
        return (application.get("name") == self.appname and op.get("opid") is not None
                and first is not None and first not in _OWN_COMMANDS)

    def catalog(self) -> Catalog:
        tables = []
        try:
            for name in sorted(self._client.list_database_names()):
                if name not in SYSTEM_DATABASES:
                    tables.extend(self._tables(name))
        except mongo_errors.PyMongoError as err:
            raise map_error(err, cancelled=False, timeout_ms=None) from err
        return Catalog(tuple(tables))

    def _tables(self, database: str) -> list[Table]:
        tables = []
        for collection in sorted(self._client[database].list_collection_names()):
            if collection.startswith("system."):
                continue
            fields: dict[str, set[str]] = {}
            for doc in self._client[database][collection].find({}, limit=CATALOG_SAMPLE):
                for key, value in doc.items():
                    if key != "_id":
                        fields.setdefault(key, set()).add(bson_type(value))
            columns = (Column("_id", "objectId", nullable=False),) + tuple(
                Column(key, types.pop() if len(types) == 1 else "mixed") for key, types in fields.items())
            tables.append(Table(schema=database, name=collection, columns=columns, primary_key=("_id",)))
        return tables

    def close(self) -> None:
        self._close_quietly()

    def _close_quietly(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()


class MongoTransaction:
    """What ``MongoDriver.transaction`` yields: ``execute`` plus the few document operations the
    snapshot module needs, all in this transaction's session."""

    def __init__(self, driver: MongoDriver, session, *, read_only: bool, timeout_ms: int | None) -> None:
        self.driver = driver
        self.session = session
        self.read_only = read_only
        self.timeout_ms = timeout_ms
        self.cancelled = threading.Event()
        self.written_ids: tuple = ()          # _ids the last execute inserted or upserted
        self._after_commit: list[Callable[[], None]] = []

    @property
    def database(self) -> str:
        return self.driver.database

    @property
    def in_transaction(self) -> bool:
        return not self.read_only

    def execute(self, sql: str, max_rows: int | None = None) -> ResultSet:
        try:
            command = parse(sql)
        except MongoParseError as err:
            raise DriverError(f"not run: {err}") from None
        if self.read_only:
            check_read_only(command)
        with self.guard():
            try:
                return run(self, command, max_rows)
            except (TypeError, ValueError, bson.errors.BSONError) as err:
                # pymongo checks argument shapes before sending: the statement never reached the server.
                raise DriverError(f"not run: {command.method} was given arguments it cannot use ({err})") from None

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Apply the timeout, map pymongo errors, and turn anything after cancel() into QueryCancelled."""
        if self.cancelled.is_set():
            raise QueryCancelled("cancelled; nothing more runs in this transaction")
        limit = pymongo.timeout(self.timeout_ms / 1000) if self.timeout_ms else nullcontext()
        try:
            with limit:
                yield
        except mongo_errors.PyMongoError as err:
            raise map_error(err, cancelled=self.cancelled.is_set(), timeout_ms=self.timeout_ms) from err
        if self.cancelled.is_set():
            raise QueryCancelled("cancelled; the transaction is rolled back")

    def collection(self, database: str | None, name: str):
        return self.driver.client[database or self.database][name]

    def db(self, database: str | None = None):
        return self.driver.client[database or self.database]

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the transaction has committed (commands MongoDB refuses inside one)."""
        if self.read_only:
            raise ReadOnlyViolation("this command changes data and this is a read-only transaction")
        self._after_commit.append(action)

    # -- document operations for snapshots (all inside the transaction) --------------------------
    def copy(self, source: tuple[str | None, str], target: tuple[str, str], filter_: dict, *,
             sort: dict | None = None, limit: int = 0, hint: Any = None, collation: dict | None = None,
             batch: int = 1000) -> int:
        """Copy the documents ``filter_`` selects from ``source`` into ``target``, in this transaction
        (MongoDB refuses $merge/$out inside one, so the copy goes through the client, in batches)."""
        if self.read_only:
            raise ReadOnlyViolation("copying documents writes; this is a read-only transaction")
        copied, pending = 0, []
        with self.guard():
            cursor = self.collection(*source).find(filter_, sort=list(sort.items()) if sort else None,
                                                   limit=limit, hint=hint, collation=collation,
                                                   session=self.session, batch_size=batch)
            for doc in cursor:
                pending.append(doc)
                if len(pending) >= batch:
                    copied += self._insert(target, pending)
                    pending = []
            if pending:
                copied += self._insert(target, pending)
        return copied

    def insert(self, target: tuple[str, str], documents: list[dict]) -> int:
        if self.read_only:
            raise ReadOnlyViolation("inserting writes; this is a read-only transaction")
        with self.guard():
            return self._insert(target, documents)

    def _insert(self, target: tuple[str, str], documents: list[dict]) -> int:
        if not documents:
            return 0
        self.collection(*target).insert_many(documents, ordered=True, session=self.session)
        return len(documents)

    def count(self, source: tuple[str | None, str], filter_: dict, **options: Any) -> int:
        with self.guard():
            return self.collection(*source).count_documents(filter_, session=self.session,
                                                            **{k: v for k, v in options.items() if v})

    def documents(self, source: tuple[str | None, str], filter_: dict | None = None) -> list[dict]:
        """Whole documents, in natural order, read in this transaction's session."""
        with self.guard():
            return list(self.collection(*source).find(filter_ or {}, session=self.session))

    def indexes(self, source: tuple[str | None, str]) -> list[dict]:
        """The collection's index specifications (read outside the transaction: MongoDB refuses
        listIndexes inside one)."""
        with self.guard():
            try:
                return [dict(spec) for spec in self.collection(*source).list_indexes()]
            except mongo_errors.OperationFailure as err:
                if err.code == _NAMESPACE_NOT_FOUND:
                    return []
                raise

    # -- ending ------------------------------------------------------------------------------------
    def finish(self) -> None:
        if self.cancelled.is_set():
            self.abort()
            raise QueryCancelled("cancelled; the transaction was rolled back")
        if not self.read_only:
            with self.guard():
                self.session.commit_transaction()
        for action in self._after_commit:
            with self.guard():
                action()

    def abort(self) -> None:
        if self.read_only or not self.session.in_transaction:
            return
        try:
            self.session.abort_transaction()
        except mongo_errors.PyMongoError:
            pass    # the server aborts it anyway when the session ends


def map_error(err: mongo_errors.PyMongoError, *, cancelled: bool, timeout_ms: int | None) -> DriverError:
    """One place that turns pymongo's errors into the Driver protocol's."""
    message = error_message(err)
    if cancelled:
        return QueryCancelled("cancelled; the transaction was rolled back")
    # Order matters: a failed server selection also says .timeout, but the server is gone, not slow.
    if isinstance(err, mongo_errors.ServerSelectionTimeoutError) or (
            isinstance(err, mongo_errors.ConnectionFailure) and not isinstance(err, mongo_errors.NetworkTimeout)):
        return ConnectionLost(f"lost the connection to MongoDB ({message}); nothing was committed")
    if isinstance(err, mongo_errors.ExecutionTimeout) or getattr(err, "timeout", False):
        limit = f"the {timeout_ms} ms " if timeout_ms else "the "
        return StatementTimeout(f"stopped: it ran past {limit}statement timeout ({message})")
    if _code(err) == _WRITE_CONFLICT or err.has_error_label("TransientTransactionError"):
        return ConcurrentChange(f"a concurrent change touched the same documents ({message}); nothing was "
                                "committed, run it again to see the other change")
    return DriverError(message)


def error_message(err: mongo_errors.PyMongoError) -> str:
    details = getattr(err, "details", None) or {}
    write_errors = details.get("writeErrors") if isinstance(details, dict) else None
    if write_errors:
        return str(write_errors[0].get("errmsg", err))
    if isinstance(details, dict) and details.get("errmsg"):
        name = details.get("codeName")
        return f"{details['errmsg']}{f' [{name}]' if name else ''}"
    return _first_line(err)


def _code(err: mongo_errors.PyMongoError) -> int | None:
    details = getattr(err, "details", None) or {}
    write_errors = details.get("writeErrors") if isinstance(details, dict) else None
    if write_errors:
        return write_errors[0].get("code")
    return getattr(err, "code", None)


def _first_line(err: Exception) -> str:
    text = str(err).split(", full error:")[0].split(" (configured timeouts")[0]
    return text.splitlines()[0][:300] if text else type(err).__name__


# Most specific first: bool is an int, Int64 is an int.
_TYPE_NAMES = ((bool, "bool"), (bson.Int64, "long"), (int, "int"), (float, "double"), (str, "string"),
               (dict, "object"), (list, "array"), (bson.ObjectId, "objectId"), (dt.datetime, "date"),
               (bson.Decimal128, "decimal"), (bson.Regex, "regex"), (bson.Timestamp, "timestamp"),
               (uuid.UUID, "binData"), (bytes, "binData"))


def bson_type(value: Any) -> str:
    """The BSON type alias ($type name) of a decoded value, for the catalog."""
    if value is None:
        return "null"
    return next((name for cls, name in _TYPE_NAMES if isinstance(value, cls)), type(value).__name__)
