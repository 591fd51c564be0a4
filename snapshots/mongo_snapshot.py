"""Snapshots for mongosh writes: plan (PURE), capture inside the write's transaction, restore (PURE).

The same API as the SQL module (snapshots.capture), so the gate reaches both the same way:
``plan_snapshot`` -> ``prepare_outside_transaction`` -> ``capture`` -> the write -> ``capture_after``,
``discard`` after a rollback, and ``restore_statements`` to put documents back.

- The before-image query is a mongosh ``find`` with the write's own filter (and, for the one-document
  forms, its sort and ``limit(1)``), run in the write's transaction: snapshot isolation makes it see
  exactly the documents the write then changes, and a concurrent change aborts the write
  (WriteConflict -> ConcurrentChange) instead of widening it.
- Where snapshots live: database ``countersign_snapshots``, collection ``s_<id>`` (whole documents),
  ``s_<id>_keys`` (``{_id}`` of documents the write inserted or upserted) and, for ``drop``,
  ``s_<id>_indexes``. MongoDB refuses $merge/$out inside a transaction, so documents are copied
  through the client in the same session; the collections are created implicitly by that copy and
  vanish with the transaction when it aborts.
- Restore statements embed the documents (see ``restore_statements``): a $merge from the snapshot
  collection would run outside any transaction, so it could neither take its own snapshot atomically
  nor be rolled back by the row guard.

>>> plan_snapshot('db.deploys.deleteMany({site: "a"})', database="app").before_sql
'db.getSiblingDB("app").getCollection("deploys").find({"site": "a"})'
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engines.base import Catalog, Driver, DriverError
from engines.mongodb.ops import find_arguments
from classify.mongosh.shell import MongoCommand, MongoParseError, keys_anywhere, parse, to_shell
from snapshots.capture import Captured
from snapshots.plan import SnapshotPlan, SnapshotUnsupported, TableInfo
from snapshots.records import SnapshotRecord
from snapshots.restore import RestoreImpossible, RestorePlan

SNAPSHOT_DATABASE = "countersign_snapshots"
KEY = ("_id",)
_LOCATION = re.compile(rf"^{SNAPSHOT_DATABASE}\.s_[0-9a-f]{{1,40}}$")
# Filters whose matches change between the snapshot's find and the write itself.
_VOLATILE_KEYS = frozenset({"$where", "$function", "$accumulator", "$rand", "$sampleRate"})
_VOLATILE_VARIABLES = ("$$NOW", "$$CLUSTER_TIME")
_FILTERED = {  # method -> (operation, index of its options argument, one document?)
    "updateMany": ("update", 2, False), "updateOne": ("update", 2, True), "replaceOne": ("update", 2, True),
    "deleteMany": ("delete", 1, False), "deleteOne": ("delete", 1, True),
    "findOneAndUpdate": ("update", 2, True), "findOneAndReplace": ("update", 2, True),
    "findOneAndDelete": ("delete", 1, True),
}
_ONE_OPS = frozenset({"updateOne", "replaceOne", "deleteOne"})


class SnapshotAmbiguous(DriverError):
    """A one-document write without a total sort matched several documents: which one it changes
    cannot be known, so the write is stopped before it runs."""


@dataclass(frozen=True)
class SnapshotContents:
    """What a snapshot holds, read back for restore."""
    documents: tuple[dict, ...]
    inserted_ids: tuple = ()
    indexes: tuple[dict, ...] = ()


def snapshot_location(snapshot_id: str) -> str:
    hex_id = snapshot_id.replace("-", "").lower()
    if not re.fullmatch(r"[0-9a-f]{1,40}", hex_id):
        raise ValueError(f"snapshot id {snapshot_id!r} is not a hex id")
    return f"{SNAPSHOT_DATABASE}.s_{hex_id}"


def keys_location(location: str) -> str:
    return f"{location}_keys"


def indexes_location(location: str) -> str:
    return f"{location}_indexes"


# ================================================================ planning (PURE)

def plan_snapshot(text: str, tables: dict[str, TableInfo] | None = None, *,
                  database: str | None = None) -> SnapshotPlan:
    """The before-image of one mongosh write. ``database`` is the session's current database, used
    when the statement does not name one with getSiblingDB (``tables`` only supplies field names:
    ``db.x`` always means the CURRENT database, whatever the catalog holds elsewhere)."""
    try:
        command = parse(text)
    except MongoParseError as err:
        raise SnapshotUnsupported(f"the statement could not be parsed ({err})") from None
    if command.collection is None:
        raise SnapshotUnsupported(f"{command.method} is not a write on one collection, so it has no "
                                  "documents to snapshot")
    ns = (command.database or database, command.collection)
    columns = _columns(ns, tables or {})
    method = command.method
    if method in _FILTERED:
        return _plan_filtered(command, ns, columns)
    if method in ("insertOne", "insertMany"):
        return _plan_insert(command, ns, columns)
    if method == "bulkWrite":
        return _plan_bulk(command, ns, columns)
    if method == "drop":
        return _plan(ns, columns, "table", _find_text(ns, {}), _count_text(ns, {}), count_is_table_size=True)
    if method == "aggregate":
        raise SnapshotUnsupported("an aggregate with $out/$merge replaces documents chosen by its pipeline's "
                                  "output, which cannot be selected beforehand (and MongoDB runs it outside "
                                  "any transaction)")
    if method in ("insert", "update", "remove", "save", "findAndModify"):
        raise SnapshotUnsupported(f"{method} is the legacy shell API; write it as insertOne/insertMany/"
                                  "updateOne/updateMany/deleteOne/deleteMany/findOneAndUpdate")
    raise SnapshotUnsupported(f"{method} changes no documents Countersign can snapshot")


def _columns(ns: tuple[str | None, str], tables: dict[str, TableInfo]) -> tuple[str, ...]:
    info = tables.get(f"{ns[0]}.{ns[1]}".lower()) if ns[0] else None
    return info.columns if info else ()


def _plan(ns: tuple[str | None, str], columns: tuple[str, ...], operation: str, before: str | None,
          count: str, *, upsert: bool = False, count_is_table_size: bool = False) -> SnapshotPlan:
    return SnapshotPlan(table=ns[1], schema=ns[0], operation=operation, key_columns=KEY, columns=columns,
                        before_sql=before, count_sql=count, after_sql=None, dialect="mongodb",
                        count_is_table_size=count_is_table_size, upsert=upsert)


def _plan_filtered(command: MongoCommand, ns, columns) -> SnapshotPlan:
    operation, options_at, one = _FILTERED[command.method]
    filter_ = _filter(command.arg(0), command.method)
    options = command.arg(options_at, {}) or {}
    if not isinstance(options, dict):
        raise SnapshotUnsupported(f"the options of {command.method} are not a document")
    if "let" in options:
        raise SnapshotUnsupported("a filter with let variables is not supported; write the values in the filter")
    shape = {k: options[k] for k in ("hint", "collation") if k in options}
    sort, limit = None, 0
    if one:
        sort = options.get("sort")
        if sort is not None and (not isinstance(sort, dict) or "_id" not in sort):
            raise SnapshotUnsupported(f"{command.method} with a sort that does not include _id may pick any of "
                                      "several tied documents; add _id to the sort so the snapshot picks "
                                      "the same one")
        limit = 0 if sort is None and _pins_id(filter_) else 1
    count_options = {**shape, **({"limit": 1} if one else {})}
    return _plan(ns, columns, operation, _find_text(ns, filter_, sort=sort, limit=limit, **shape),
                 _count_text(ns, filter_, count_options), upsert=bool(options.get("upsert")))


def _filter(value: Any, method: str) -> dict:
    if not isinstance(value, dict):
        raise SnapshotUnsupported(f"the filter of {method} is not a document")
    volatile = set(keys_anywhere(value)) & _VOLATILE_KEYS
    if volatile or _mentions(value, _VOLATILE_VARIABLES):
        what = ", ".join(sorted(volatile)) or "$$NOW / $$CLUSTER_TIME"
        raise SnapshotUnsupported(f"the filter uses {what}, so a snapshot query would not select the same "
                                  "documents as the write")
    return value


def _mentions(value: Any, words: tuple[str, ...]) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and any(word in item for word in words):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def _pins_id(filter_: dict) -> bool:
    """Does the filter name one _id by equality (so at most one document can match)?"""
    if "_id" not in filter_:
        return False
    value = filter_["_id"]
    if isinstance(value, dict):
        return set(value) == {"$eq"} and not isinstance(value["$eq"], (dict, list))
    return not isinstance(value, (list, dict)) and type(value).__name__ != "Regex"


def _pinned_id(filter_: dict) -> Any:
    value = filter_["_id"]
    return value["$eq"] if isinstance(value, dict) else value


def _plan_insert(command: MongoCommand, ns, columns) -> SnapshotPlan:
    docs = command.arg(0)
    docs = [docs] if command.method == "insertOne" else docs
    if not isinstance(docs, list) or not docs or not all(isinstance(d, dict) for d in docs):
        raise SnapshotUnsupported(f"{command.method} needs documents {{...}} to insert")
    # Inserting never changes an existing document: no before-image, only the new _ids afterwards.
    return _plan(ns, columns, "insert", None, _constant_count(ns, len(docs)))


def _plan_bulk(command: MongoCommand, ns, columns) -> SnapshotPlan:
    operations = command.arg(0)
    if not isinstance(operations, list) or not operations:
        raise SnapshotUnsupported("bulkWrite needs a list of operations")
    filters, kinds, upsert, inserts = [], set(), False, 0
    for op in operations:
        if not isinstance(op, dict) or len(op) != 1 or not isinstance(next(iter(op.values())), dict):
            raise SnapshotUnsupported("each bulkWrite operation must be one {name: {...}} document")
        (name, body), = op.items()
        if name == "insertOne":
            inserts += 1
            continue
        if name not in ("updateOne", "updateMany", "replaceOne", "deleteOne", "deleteMany"):
            raise SnapshotUnsupported(f"bulkWrite operation {name} cannot be snapshotted")
        if "collation" in body or "hint" in body:
            raise SnapshotUnsupported("bulkWrite operations with their own collation or hint cannot share "
                                      "one snapshot query; split them into separate statements")
        filter_ = _filter(body.get("filter"), f"bulkWrite {name}")
        if name in _ONE_OPS and not _pins_id(filter_):
            raise SnapshotUnsupported(f"in a bulkWrite, {name} must filter on one _id, so the document each "
                                      "operation changes is known before it runs")
        filters.append(filter_)
        kinds.add("delete" if name.startswith("delete") else "update")
        upsert = upsert or bool(body.get("upsert"))
    if not filters:
        return _plan(ns, columns, "insert", None, _constant_count(ns, inserts))
    union = _union(filters)
    operation = "delete" if kinds == {"delete"} and not inserts else "update"
    return _plan(ns, columns, operation, _find_text(ns, union),
                 _bulk_count(ns, [(n, b) for op in operations for n, b in op.items()], inserts),
                 upsert=upsert)


def _union(filters: list[dict]) -> dict:
    """One filter matching every document any of ``filters`` matches (before the write runs; each
    document a bulkWrite changes first matches its operation's filter in its original state)."""
    if any(f == {} for f in filters):
        return {}
    if all(_pins_id(f) and len(f) == 1 for f in filters):
        return {"_id": {"$in": _distinct(_pinned_id(f) for f in filters)}}
    unique = _distinct(filters)
    return unique[0] if len(unique) == 1 else {"$or": unique}


# -- mongosh text ---------------------------------------------------------------------------------
def _target(ns: tuple[str | None, str]) -> str:
    database, collection = ns
    where = f"db.getSiblingDB({to_shell(database)})" if database else "db"
    return f"{where}.getCollection({to_shell(collection)})"


def _find_text(ns, filter_: dict, *, sort: dict | None = None, limit: int = 0, hint: Any = None,
               collation: dict | None = None) -> str:
    text = f"{_target(ns)}.find({to_shell(filter_)})"
    if sort is not None:
        text += f".sort({to_shell(sort)})"
    if limit:
        text += f".limit({limit})"
    if hint is not None:
        text += f".hint({to_shell(hint)})"
    if collation is not None:
        text += f".collation({to_shell(collation)})"
    return text


def _count_text(ns, filter_: dict, options: dict | None = None) -> str:
    extra = f", {to_shell(options)}" if options else ""
    return f"{_target(ns)}.countDocuments({to_shell(filter_)}{extra})"


def _database_target(ns) -> str:
    return f"db.getSiblingDB({to_shell(ns[0])})" if ns[0] else "db"


def _constant_count(ns, count: int) -> str:
    # A read that returns one row holding one number, like SQL's "SELECT 3".
    return f"{_database_target(ns)}.aggregate([{{$documents: [{{n: {count}}}]}}])"


def _bulk_count(ns, operations: list[tuple[str, dict]], inserts: int) -> str:
    """Documents each operation matches (one-document operations at most one), plus the inserts, as
    one read: a $lookup per operation. ($size of the _ids, since secantusdb cannot read "$a.n"
    through an array of documents.)"""
    changes = [(name, body["filter"]) for name, body in operations if name != "insertOne"]
    ids = [_pinned_id(f) for name, f in changes if name in _ONE_OPS and len(f) == 1 and _pins_id(f)]
    if len(ids) == len(changes) and len(_distinct(ids)) == len(ids):
        # One-document operations on distinct _ids (e.g. a restore): one lookup counts them all.
        if not inserts:
            return _count_text(ns, _union([f for _, f in changes]))
        changes = [("updateMany", _union([f for _, f in changes]))]
    stages, sizes = ["{$documents: [{}]}"], []
    for index, (name, filter_) in enumerate(changes):
        limit = ", {$limit: 1}" if name in _ONE_OPS else ""
        stages.append(f'{{$lookup: {{from: {to_shell(ns[1])}, pipeline: [{{$match: {to_shell(filter_)}}}'
                      f'{limit}, {{$project: {{_id: 1}}}}], as: "o{index}"}}}}')
        sizes.append(f'{{$size: "$o{index}"}}')
    stages.append(f"{{$project: {{_id: 0, n: {{$add: [{', '.join(sizes)}, {inserts}]}}}}}}")
    return f"{_database_target(ns)}.aggregate([{', '.join(stages)}])"


# ================================================================ capture (inside the write's transaction)

def prepare_outside_transaction(driver: Driver, plan: SnapshotPlan, snapshot_id: str) -> str:
    """Nothing to create beforehand: the copy inside the transaction creates the collections."""
    return snapshot_location(snapshot_id)


def capture(tx, plan: SnapshotPlan, snapshot_id: str) -> Captured:
    """Before the write, in its transaction: copy the documents it will change."""
    location = snapshot_location(snapshot_id)
    if plan.before_sql is None:
        return Captured(location, 0, None)
    command = parse(plan.before_sql)
    filter_, kwargs, _ = find_arguments(command)
    source = (command.database or tx.database, command.collection)
    if kwargs.get("limit") == 1 and "_id" not in dict(kwargs.get("sort") or []):
        _check_one_match(tx, source, filter_, kwargs)
    # In the write's own transaction: this document exists exactly when the write committed.
    tx.insert(COMMITS, [{"_id": _hex(snapshot_id)}])
    copied = tx.copy(source, _split(location), filter_, sort=dict(kwargs["sort"]) if kwargs.get("sort") else None,
                     limit=kwargs.get("limit", 0), hint=kwargs.get("hint"), collation=kwargs.get("collation"))
    if plan.operation == "table":
        specs = [{"_id": i, "spec": spec} for i, spec in enumerate(tx.indexes(source))]
        tx.insert(_split(indexes_location(location)), specs)
    return Captured(location, copied, None)


def _check_one_match(tx, source, filter_: dict, kwargs: dict) -> None:
    matches = tx.count(source, filter_, limit=2, hint=kwargs.get("hint"), collation=kwargs.get("collation"))
    if matches > 1:
        raise SnapshotAmbiguous("this one-document write has no sort and its filter matches several "
                                "documents, so which one it would change cannot be known; nothing was "
                                "changed: filter on _id, or add a sort that includes _id")


def capture_after(tx, plan: SnapshotPlan, snapshot_id: str, captured: Captured) -> Captured:
    """After the write, in its transaction: the _ids it inserted (inserts, upserts), which restore removes."""
    unique = [{"_id": value} for value in _distinct(tx.written_ids)]
    if not unique:
        return captured
    tx.insert(_split(keys_location(captured.location)), unique)
    return Captured(captured.location, captured.row_count + len(unique), captured.size_bytes)


def _distinct(values) -> list:
    """Distinct BSON values in order. (Python's == would merge 1, 1.0 and True, which BSON keeps apart.)"""
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(to_shell(value), value)
    return list(seen.values())


def discard(driver: Driver, location: str | None) -> None:
    """Drop a snapshot's collections (after a rollback they do not exist; this is then a no-op)."""
    if location is None:
        return
    if not _LOCATION.match(location):
        raise ValueError(f"{location!r} is not a MongoDB snapshot location")
    with driver.transaction(read_only=False) as tx:
        for name in (location, keys_location(location), indexes_location(location)):
            tx.execute(f"{_target(_split(name))}.drop()")


COMMITS = (SNAPSHOT_DATABASE, "commits")


def _hex(snapshot_id: str) -> str:
    return snapshot_id.replace("-", "").lower()


def hold_writer(driver: Driver, snapshot_ids: list[str]) -> None:
    """MongoDB has no advisory locks: reconcile waits out a grace period instead."""


def release_writer(driver: Driver, snapshot_ids: list[str]) -> None:
    pass


def writer_alive(driver: Driver, snapshot_id: str) -> bool | None:
    return None


def committed(driver: Driver, location: str, snapshot_id: str) -> bool:
    """Whether the snapshot's write committed, as the server says (its document in the commits collection)."""
    with driver.transaction(read_only=True) as tx:
        return bool(tx.documents(COMMITS, {"_id": _hex(snapshot_id)}))


def measure(driver: Driver, location: str) -> tuple[int, int | None]:
    with driver.transaction(read_only=True) as tx:
        return len(tx.documents(_split(location))) + len(tx.documents(_split(keys_location(location)))), None


def locations(driver: Driver) -> tuple[str, ...]:
    return ()   # strays are found from the store's pending records only


def read_snapshot(driver: Driver, record: SnapshotRecord) -> SnapshotContents:
    """The documents, inserted _ids and (for drop) index specifications a snapshot holds."""
    if not _LOCATION.match(record.location):
        raise RestoreImpossible(f"{record.location!r} is not a MongoDB snapshot location")
    with driver.transaction(read_only=True) as tx:
        docs = tx.documents(_split(record.location))
        ids = [d["_id"] for d in tx.documents(_split(keys_location(record.location)))]
        indexes = [d["spec"] for d in tx.documents(_split(indexes_location(record.location)))]
    return SnapshotContents(tuple(docs), tuple(ids), tuple(indexes))


def _split(location: str) -> tuple[str, str]:
    database, _, collection = location.partition(".")
    return database, collection


# ================================================================ restore (PURE)

def restore_statements(record: SnapshotRecord, catalog: Catalog, contents: SnapshotContents) -> RestorePlan:
    """mongosh statements that put the snapshot's documents back, by _id. Each is a write that goes
    through classification, approval and its own snapshot like any other."""
    if not record.restorable:
        raise RestoreImpossible(f"snapshot {record.id} is {record.status_text}; only a complete snapshot "
                                "can be restored")
    ns = _namespace(record.table_name)
    exists = catalog.table(record.table_name) is not None
    if record.operation == "table":
        if exists:
            raise RestoreImpossible(f"a collection {record.table_name} exists again; drop or rename it before "
                                    "restoring the dropped one")
        return _recreate(ns, contents)
    if not exists:
        raise RestoreImpossible(f"collection {record.table_name} no longer exists; recreate it first")
    statements, notes = [], []
    if record.operation in ("update", "insert") and contents.documents:
        upsert = _restores_deleted(record.statement)
        statements.append(_replace_all(ns, contents.documents, upsert))
        notes.append(f"reverts the {len(contents.documents)} changed documents to their old values, by _id"
                     + ("; documents the write deleted are inserted again" if upsert
                        else "; documents deleted since stay deleted"))
    if record.operation == "delete" and contents.documents:
        statements.append(f"{_target(ns)}.insertMany({to_shell(list(contents.documents))}, {{ordered: true}})")
        notes.append(f"re-inserts the {len(contents.documents)} deleted documents; fails, changing nothing, "
                     "if a document with the same _id exists again")
    if contents.inserted_ids:
        statements.insert(0, f"{_target(ns)}.deleteMany({to_shell({'_id': {'$in': list(contents.inserted_ids)}})})")
        notes.append(f"deletes the {len(contents.inserted_ids)} documents the write inserted, by _id, "
                     "including any changes made to them since")
    if statements:
        notes.append(_EMBEDDED)
    else:
        notes.append("the write changed no documents: there is nothing to restore")
    return RestorePlan(tuple(statements), tuple(notes))


_EMBEDDED = ("the documents are written into the statement text (MongoDB cannot run $merge inside a "
             "transaction, and a restore must run in one to take its own snapshot), so a large snapshot "
             "makes a large statement")


def _namespace(table_name: str) -> tuple[str | None, str]:
    database, dot, collection = table_name.partition(".")
    return (database, collection) if dot else (None, table_name)


def _replace_all(ns, documents: tuple[dict, ...], upsert: bool) -> str:
    extra = ", upsert: true" if upsert else ""
    ops = [{"replaceOne": {"filter": {"_id": doc["_id"]}, "replacement": doc}} for doc in documents]
    body = ", ".join(f"{{replaceOne: {{filter: {to_shell(op['replaceOne']['filter'])}, replacement: "
                     f"{to_shell(op['replaceOne']['replacement'])}{extra}}}}}" for op in ops)
    return f"{_target(ns)}.bulkWrite([{body}], {{ordered: true}})"


def _restores_deleted(statement: str) -> bool:
    """A bulkWrite that both deleted and changed documents: restoring it must re-insert the deleted
    ones too, so its replacements upsert."""
    try:
        command = parse(statement)
    except MongoParseError:
        return False
    if command.method != "bulkWrite" or not isinstance(command.arg(0), list):
        return False
    return any(isinstance(op, dict) and any(name.startswith("delete") for name in op) for op in command.arg(0))


def _recreate(ns, contents: SnapshotContents) -> RestorePlan:
    statements, notes = [], []
    if contents.documents:
        statements.append(f"{_target(ns)}.insertMany({to_shell(list(contents.documents))}, {{ordered: true}})")
        notes.append(f"recreates the collection with its {len(contents.documents)} documents")
        notes.append(_EMBEDDED)
    else:
        statements.append(f"{_database_target(ns)}.createCollection({to_shell(ns[1])})")
        notes.append("recreates the (empty) collection; createCollection is DDL and has no snapshot of its own")
    for spec in contents.indexes:
        if spec.get("name") == "_id_":
            continue
        options = {k: v for k, v in spec.items() if k not in ("key", "v", "ns")}
        statements.append(f"{_target(ns)}.createIndex({to_shell(dict(spec['key']))}, {to_shell(options)})")
    if len(statements) > 1 and any(".createIndex(" in s for s in statements):
        notes.append("recreates its indexes (DDL: no snapshot of their own); collection options such as "
                     "validators, collation and capped size are NOT restored")
    else:
        notes.append("collection options such as validators, collation and capped size are NOT restored")
    return RestorePlan(tuple(statements), tuple(notes))


# -- the backend's uniform entry points (the same as snapshots.capture's) ------------------------
def plan(text: str, dialect: str, tables, database: str | None = None) -> SnapshotPlan:
    return plan_snapshot(text, tables, database=database)


def restore(driver: Driver, record: SnapshotRecord) -> RestorePlan:
    return restore_statements(record, driver.catalog(), read_snapshot(driver, record))


def sample_text(record: SnapshotRecord, dialect: str, limit: int) -> str:
    collection = record.location.split(".", 1)[1]
    return f'db.getSiblingDB("countersign_snapshots").getCollection("{collection}").find({{}}).limit({int(limit)})'

