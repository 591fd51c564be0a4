"""Run one parsed mongosh command with pymongo, in a MongoTransaction's session.

Each mongosh method maps to one pymongo call. Options are translated by name, and an option this
module does not know is refused rather than dropped: silently ignoring ``upsert`` or ``collation``
would run something other than what was approved.
"""
from __future__ import annotations

from typing import Any, Callable

from pymongo import DeleteMany, DeleteOne, IndexModel, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo import read_preferences

from engines.base import ConcurrentChange, DriverError, ResultSet
from classify.mongosh.shell import (CURSOR_READ_MODIFIERS, EXPLAIN_VERBOSITIES, MongoCommand, WRITING_STAGES,
                                    keys_anywhere)

# mongosh option name -> pymongo keyword, per family of methods.
_READ_OPTIONS = {"sort": "sort", "limit": "limit", "skip": "skip", "hint": "hint", "collation": "collation",
                 "comment": "comment", "batchSize": "batch_size", "maxTimeMS": "max_time_ms",
                 "allowDiskUse": "allow_disk_use", "min": "min", "max": "max", "returnKey": "return_key",
                 "showRecordId": "show_record_id", "projection": "projection"}
_COUNT_OPTIONS = {"limit": "limit", "skip": "skip", "hint": "hint", "collation": "collation",
                  "maxTimeMS": "maxTimeMS", "comment": "comment"}
_AGGREGATE_OPTIONS = {"allowDiskUse": "allowDiskUse", "collation": "collation", "hint": "hint",
                      "comment": "comment", "let": "let", "batchSize": "batchSize", "maxTimeMS": "maxTimeMS"}
_UPDATE_OPTIONS = {"upsert": "upsert", "arrayFilters": "array_filters", "hint": "hint", "collation": "collation",
                   "let": "let", "sort": "sort", "comment": "comment",
                   "bypassDocumentValidation": "bypass_document_validation"}
_DELETE_OPTIONS = {"hint": "hint", "collation": "collation", "let": "let", "comment": "comment"}
_INSERT_OPTIONS = {"ordered": "ordered", "bypassDocumentValidation": "bypass_document_validation",
                   "comment": "comment"}
_FIND_AND_MODIFY_OPTIONS = {"sort": "sort", "projection": "fields", "upsert": "upsert", "hint": "hint",
                            "collation": "collation", "arrayFilters": "arrayFilters", "let": "let",
                            "comment": "comment", "bypassDocumentValidation": "bypassDocumentValidation"}


def run(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    handler = _HANDLERS.get(command.method)
    if handler is None:
        raise DriverError(f"{command.method} is not supported by Countersign's MongoDB driver; "
                          "db.runCommand({...}) runs any server command")
    if command.collection is None and command.method in _NEEDS_COLLECTION:
        raise DriverError(f"{command.method} needs a collection: db.<collection>.{command.method}(...)")
    return handler(tx, command, max_rows)


# -- helpers ----------------------------------------------------------------------------------------
def _options(command: MongoCommand, index: int, names: dict[str, str]) -> dict[str, Any]:
    given = command.arg(index, {})
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise DriverError(f"argument {index + 1} of {command.method} must be an options document")
    unknown = [key for key in given if key not in names]
    if unknown:
        raise DriverError(f"{command.method} option {unknown[0]!r} is not supported here; supported: "
                          f"{', '.join(sorted(names))}")
    return {names[key]: value for key, value in given.items()}


def _document(command: MongoCommand, index: int, what: str, default: Any = None) -> Any:
    value = command.arg(index, default)
    if not isinstance(value, dict):
        raise DriverError(f"the {what} of {command.method} must be a document {{...}}")
    return value


def _sort(value: Any) -> list | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DriverError("a sort must be a document like {field: 1}")
    return list(value.items())


def _collection(tx, command: MongoCommand, preference: Any = None):
    collection = tx.collection(command.database, command.collection)
    return collection.with_options(read_preference=preference) if preference is not None else collection


# mongosh read preference modes -> pymongo's.
_READ_PREFERENCES = {"primary": read_preferences.Primary, "primaryPreferred": read_preferences.PrimaryPreferred,
                     "secondary": read_preferences.Secondary,
                     "secondaryPreferred": read_preferences.SecondaryPreferred,
                     "nearest": read_preferences.Nearest}
# pymongo find() keywords -> the find command's fields (for explain).
_FIND_FIELDS = {"projection": "projection", "sort": "sort", "limit": "limit", "skip": "skip", "hint": "hint",
                "collation": "collation", "comment": "comment", "max_time_ms": "maxTimeMS",
                "batch_size": "batchSize", "allow_disk_use": "allowDiskUse", "min": "min", "max": "max",
                "return_key": "returnKey", "show_record_id": "showRecordId"}


def cursor_options(command: MongoCommand) -> tuple[str | None, Any]:
    """What .explain() and .readPref() ask of a find or aggregate: the explain verbosity (None: run
    the read itself) and the read preference (None: the client's)."""
    verbosity, preference = None, None
    for name, args in command.modifiers:
        if name == "explain":
            verbosity = _verbosity(args)
        elif name == "readPref":
            preference = _read_preference(args)
    return verbosity, preference


def _verbosity(args: tuple) -> str:
    value = args[0] if args else "queryPlanner"
    if isinstance(value, bool):
        return "allPlansExecution" if value else "queryPlanner"
    if len(args) > 1 or value not in EXPLAIN_VERBOSITIES:
        raise DriverError(f"explain() takes one of {', '.join(sorted(EXPLAIN_VERBOSITIES))}, or true/false")
    return value


def _read_preference(args: tuple) -> Any:
    mode = _READ_PREFERENCES.get(args[0]) if args and isinstance(args[0], str) else None
    if mode is None or len(args) > 2:
        raise DriverError(f"readPref() takes a mode ({', '.join(_READ_PREFERENCES)}) and optional tag sets")
    try:
        return mode() if len(args) == 1 else mode(tag_sets=args[1])
    except (TypeError, ValueError) as err:
        raise DriverError(f"readPref() was given arguments it cannot use ({err})") from None


def _explain(tx, command: MongoCommand, spec: dict, verbosity: str, preference: Any) -> ResultSet:
    """The plan, as the explain command returns it (outside any transaction: MongoDB refuses it inside)."""
    reply = tx.db(command.database).command({"explain": spec, "verbosity": verbosity},
                                            session=_session(tx, False), read_preference=preference)
    return documents_result([_plain(reply)])


def _session(tx, transactional: bool = True):
    """MongoDB refuses metadata commands (listIndexes, collStats, ...) inside a transaction."""
    return tx.session if transactional or not tx.in_transaction else None


def documents_result(docs: list[dict], truncated: bool = False) -> ResultSet:
    columns: dict[str, None] = {}
    if any("_id" in doc for doc in docs):
        columns["_id"] = None
    for doc in docs:
        for key in doc:
            columns.setdefault(key, None)
    names = tuple(columns)
    return ResultSet(names, tuple(tuple(doc.get(name) for name in names) for doc in docs), len(docs), truncated)


def _count_result(count: int) -> ResultSet:
    return ResultSet(("count",), ((count,),), 1)


def _written(rowcount: int, rows: ResultSet | None = None) -> ResultSet:
    if rows is not None:
        return ResultSet(rows.columns, rows.rows, rowcount)
    return ResultSet((), (), rowcount)


def _take(cursor, max_rows: int | None) -> ResultSet:
    docs = []
    try:
        for doc in cursor:
            docs.append(doc)
            if max_rows is not None and len(docs) > max_rows:
                break
    finally:
        cursor.close()
    truncated = max_rows is not None and len(docs) > max_rows
    return documents_result(docs[:max_rows] if truncated else docs, truncated)


# -- reads ------------------------------------------------------------------------------------------
def find_arguments(command: MongoCommand) -> tuple[dict, dict[str, Any], str | None]:
    """find's filter, its pymongo keywords (options and cursor methods merged), and a counting mode
    ("count" ignores skip/limit as mongosh's cursor.count() does; "size" applies them)."""
    filter_ = _document(command, 0, "filter", {})
    kwargs = _options(command, 2, _READ_OPTIONS)
    projection = command.arg(1)
    if projection is not None:
        kwargs["projection"] = projection
    counting = None
    for name, args in command.modifiers:
        if name in ("toArray", "pretty") or name in CURSOR_READ_MODIFIERS:   # see cursor_options
            continue
        if name in ("count", "size", "itcount"):
            counting = "count" if name == "count" else "size"
            continue
        if len(args) != 1:
            raise DriverError(f".{name}() takes one argument")
        kwargs[_READ_OPTIONS[name]] = args[0]
    if "sort" in kwargs:
        kwargs["sort"] = _sort(kwargs["sort"])
    for name in ("limit", "skip"):
        if name in kwargs and (isinstance(kwargs[name], bool) or not isinstance(kwargs[name], int)):
            raise DriverError(f"{name} takes a whole number")
    if "limit" in kwargs:
        kwargs["limit"] = abs(kwargs["limit"])          # mongosh: a negative limit is one batch of n
    return filter_, kwargs, counting


def _find(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    filter_, kwargs, counting = find_arguments(command)
    verbosity, preference = cursor_options(command)
    collection = _collection(tx, command, preference)
    if verbosity is not None:
        if counting is not None:
            raise DriverError("explain() of a count is not supported; explain the find itself")
        spec = {"find": collection.name, "filter": filter_,
                **{_FIND_FIELDS[k]: dict(v) if k == "sort" else v for k, v in kwargs.items()}}
        return _explain(tx, command, spec, verbosity, preference)
    if counting is not None:
        options = {k: kwargs[k] for k in ("hint", "collation") if k in kwargs}
        if counting == "size":
            options.update({k: kwargs[k] for k in ("skip", "limit") if kwargs.get(k)})
        return _count_result(collection.count_documents(filter_, session=tx.session, **options))
    if max_rows is not None:
        wanted = max_rows + 1
        kwargs["limit"] = min(kwargs.get("limit") or wanted, wanted)
    return _take(collection.find(filter_, session=tx.session, **kwargs), max_rows)


def _find_one(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    filter_ = _document(command, 0, "filter", {})
    kwargs = _options(command, 2, _READ_OPTIONS)
    if command.arg(1) is not None:
        kwargs["projection"] = command.arg(1)
    if "sort" in kwargs:
        kwargs["sort"] = _sort(kwargs["sort"])
    doc = _collection(tx, command).find_one(filter_, session=tx.session, **kwargs)
    return documents_result([doc] if doc is not None else [])


def _count_documents(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    filter_ = _document(command, 0, "filter", {})
    options = _options(command, 1, _COUNT_OPTIONS)
    return _count_result(_collection(tx, command).count_documents(filter_, session=tx.session, **options))


def _estimated_count(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    options = _options(command, 0, {"maxTimeMS": "maxTimeMS", "comment": "comment"})
    return _count_result(_collection(tx, command).estimated_document_count(**options))


def _distinct(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    field = command.arg(0)
    if not isinstance(field, str):
        raise DriverError("distinct takes a field name first, e.g. distinct(\"status\")")
    filter_ = _document(command, 1, "filter", {})
    options = _options(command, 2, {"collation": "collation", "maxTimeMS": "maxTimeMS", "comment": "comment"})
    values = _collection(tx, command).distinct(field, filter_, session=tx.session, **options)
    truncated = max_rows is not None and len(values) > max_rows
    values = values[:max_rows] if truncated else values
    return ResultSet((field,), tuple((v,) for v in values), len(values), truncated)


def _aggregate(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    pipeline = command.arg(0, [])
    if not isinstance(pipeline, list):
        raise DriverError("aggregate takes a pipeline: a list of stages [{...}, ...]")
    options = _options(command, 1, _AGGREGATE_OPTIONS)
    verbosity, preference = cursor_options(command)
    if verbosity is not None:
        spec = {"aggregate": command.collection or 1, "pipeline": pipeline, "cursor": {}, **options}
        return _explain(tx, command, spec, verbosity, preference)
    writes = bool(set(keys_anywhere(pipeline)) & WRITING_STAGES)
    # $out / $merge are refused inside a transaction: they run on their own, outside it.
    session = None if writes else tx.session
    target = _collection(tx, command, preference) if command.collection else tx.db(command.database)
    result = _take(target.aggregate(pipeline, session=session, **options), None if writes else max_rows)
    return ResultSet((), (), -1) if writes else result


def _get_indexes(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    return documents_result([dict(i) for i in _collection(tx, command).list_indexes(session=_session(tx, False))])


def _stats(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    database = tx.db(command.database)
    session = _session(tx, False)
    if command.collection is None:
        return documents_result([_plain(database.command("dbStats", session=session))])
    return documents_result([_plain(database.command("collStats", command.collection, session=session))])


def _version(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    return ResultSet(("version",), ((tx.driver.client.admin.command("buildInfo").get("version"),),), 1)


def _database_name(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    return ResultSet(("name",), ((command.database or tx.database,),), 1)


def _collection_statistic(field: str) -> Callable[[Any, MongoCommand, int | None], ResultSet]:
    """mongosh's collection helpers that report one number of collStats (dataSize: its "size")."""
    def handler(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
        stats = tx.db(command.database).command("collStats", command.collection, session=_session(tx, False))
        return ResultSet((command.method,), ((stats.get(field),),), 1)
    return handler


def _latency_stats(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    options = _options(command, 0, {"histograms": "histograms"})
    stage = {"$collStats": {"latencyStats": options}}
    return _take(_collection(tx, command).aggregate([stage], session=_session(tx, False)), max_rows)


def _collection_names(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    names = sorted(tx.db(command.database).list_collection_names(session=_session(tx, False)))
    return ResultSet(("name",), tuple((n,) for n in names), len(names))


def _show(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    what = command.arg(0)
    if what in ("dbs", "databases"):
        dbs = [_plain(d) for d in tx.driver.client.list_databases(session=_session(tx, False))]
        return documents_result(dbs)
    if what in ("collections", "tables"):
        return _collection_names(tx, MongoCommand(command.text, None, None, "getCollectionNames"), max_rows)
    raise DriverError(f"show {what} is not supported; show dbs and show collections are")


def _use(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    tx.driver.use(command.arg(0))
    return ResultSet((), (), 0)


def _plain(doc: dict) -> dict:
    return {k: v for k, v in dict(doc).items() if k not in ("$clusterTime", "operationTime")}


# -- writes -----------------------------------------------------------------------------------------
def _insert_one(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    doc = _document(command, 0, "document")
    options = _options(command, 1, _INSERT_OPTIONS)
    options.pop("ordered", None)
    result = _collection(tx, command).insert_one(doc, session=tx.session, **options)
    tx.written_ids = (result.inserted_id,)
    return _written(1)


def _insert_many(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    docs = command.arg(0)
    if not isinstance(docs, list) or not docs or not all(isinstance(d, dict) for d in docs):
        raise DriverError("insertMany takes a non-empty list of documents [{...}, ...]")
    result = _collection(tx, command).insert_many(docs, session=tx.session, **_options(command, 1, _INSERT_OPTIONS))
    tx.written_ids = tuple(result.inserted_ids)
    return _written(len(result.inserted_ids))


def _update(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    filter_ = _document(command, 0, "filter")
    change = command.arg(1)
    if not isinstance(change, (dict, list)):
        raise DriverError(f"the second argument of {command.method} must be an update document or pipeline")
    options = _options(command, 2, _UPDATE_OPTIONS)
    if "sort" in options and command.method == "updateMany":
        raise DriverError("updateMany takes no sort")
    collection = _collection(tx, command)
    if command.method == "replaceOne":
        if "array_filters" in options:
            raise DriverError("replaceOne does not take arrayFilters")
        result = collection.replace_one(filter_, change, session=tx.session, **options)
    elif command.method == "updateOne":
        result = collection.update_one(filter_, change, session=tx.session, **options)
    else:
        result = collection.update_many(filter_, change, session=tx.session, **options)
    tx.written_ids = (result.upserted_id,) if result.upserted_id is not None else ()
    # Matched documents: what the snapshot count measured, so the row guard compares like with like.
    return _written(result.matched_count)


def _delete(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    filter_ = _document(command, 0, "filter")
    options = _options(command, 1, _DELETE_OPTIONS)
    collection = _collection(tx, command)
    delete = collection.delete_one if command.method == "deleteOne" else collection.delete_many
    result = delete(filter_, session=tx.session, **options)
    tx.written_ids = ()
    return _written(result.deleted_count)


def _find_and_modify(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    method = command.method
    filter_ = _document(command, 0, "filter")
    spec: dict[str, Any] = {"findAndModify": command.collection, "query": filter_}
    option_index = 1
    if method == "findOneAndDelete":
        spec["remove"] = True
    else:
        change = command.arg(1)
        if not isinstance(change, (dict, list)):
            raise DriverError(f"the second argument of {method} must be an update document or replacement")
        spec["update"] = change
        option_index = 2
    given = dict(command.arg(option_index, {}) or {})
    returned = given.pop("returnDocument", None)
    new = given.pop("returnNewDocument", False)
    if returned not in (None, "before", "after") or not isinstance(new, bool):
        raise DriverError('returnDocument must be "before" or "after"')
    spec["new"] = returned == "after" or new
    spec.update(_options(MongoCommand(command.text, None, None, method, (given,)), 0, _FIND_AND_MODIFY_OPTIONS))
    reply = tx.db(command.database).command(spec, session=tx.session)
    last = reply.get("lastErrorObject") or {}
    upserted = last.get("upserted")
    tx.written_ids = (upserted,) if upserted is not None else ()
    value = reply.get("value")
    matched = int(last.get("n", 0)) - (1 if upserted is not None else 0)
    return _written(matched, documents_result([value] if value is not None else []))


_BULK = {"insertOne", "updateOne", "updateMany", "replaceOne", "deleteOne", "deleteMany"}


def bulk_operations(command: MongoCommand) -> list[tuple[str, dict]]:
    """bulkWrite's operations as (name, body) pairs, checked."""
    operations = command.arg(0)
    if not isinstance(operations, list) or not operations:
        raise DriverError("bulkWrite takes a non-empty list of operations [{insertOne: {...}}, ...]")
    pairs = []
    for op in operations:
        if not isinstance(op, dict) or len(op) != 1:
            raise DriverError("each bulkWrite operation is a document with one key, e.g. {deleteOne: {...}}")
        (name, body), = op.items()
        if name not in _BULK or not isinstance(body, dict):
            raise DriverError(f"bulkWrite operation {name!r} is not supported; use one of {', '.join(sorted(_BULK))}")
        pairs.append((name, body))
    return pairs


def _bulk_request(name: str, body: dict):
    allowed = {"insertOne": {"document"}, "deleteOne": {"filter", "collation", "hint"},
               "deleteMany": {"filter", "collation", "hint"},
               "replaceOne": {"filter", "replacement", "upsert", "collation", "hint", "sort"},
               "updateOne": {"filter", "update", "upsert", "collation", "arrayFilters", "hint", "sort"},
               "updateMany": {"filter", "update", "upsert", "collation", "arrayFilters", "hint"}}[name]
    unknown = set(body) - allowed
    if unknown:
        raise DriverError(f"bulkWrite {name} field {sorted(unknown)[0]!r} is not supported")
    if name == "insertOne":
        return InsertOne(body["document"])
    kwargs = {"collation": body.get("collation"), "hint": body.get("hint")}
    if name in ("deleteOne", "deleteMany"):
        return (DeleteOne if name == "deleteOne" else DeleteMany)(body["filter"], **kwargs)
    kwargs["upsert"] = body.get("upsert")
    if name == "replaceOne":
        return ReplaceOne(body["filter"], body["replacement"], sort=body.get("sort"), **kwargs)
    kwargs["array_filters"] = body.get("arrayFilters")
    if name == "updateOne":
        return UpdateOne(body["filter"], body["update"], sort=body.get("sort"), **kwargs)
    return UpdateMany(body["filter"], body["update"], **kwargs)


def _bulk_write(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    operations = bulk_operations(command)
    try:
        requests = [_bulk_request(name, body) for name, body in operations]
    except KeyError as err:
        raise DriverError(f"a bulkWrite operation lacks its {err.args[0]!r} field") from None
    options = _options(command, 1, {"ordered": "ordered", "bypassDocumentValidation": "bypass_document_validation",
                                    "comment": "comment"})
    result = _collection(tx, command).bulk_write(requests, session=tx.session, **options)
    # pymongo gives every inserted document its _id in place; BulkWriteResult lists only upserts.
    inserted = [body["document"]["_id"] for name, body in operations if name == "insertOne"]
    tx.written_ids = tuple(inserted) + tuple(result.upserted_ids.values())
    return _written(result.inserted_count + result.matched_count + result.deleted_count)


# -- DDL and administration ------------------------------------------------------------------------
def _create_index(tx, command: MongoCommand) -> None:
    # (MongoDB builds indexes inside a transaction only on a collection created in it: after the commit.)
    keys = _document(command, 0, "key specification")
    _collection(tx, command).create_index(list(keys.items()), **(command.arg(1, {}) or {}))


def _create_indexes(tx, command: MongoCommand) -> None:
    specs = command.arg(0)
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise DriverError("createIndexes takes a list of key specifications")
    options = command.arg(1, {}) or {}
    _collection(tx, command).create_indexes([IndexModel(list(spec.items()), **options) for spec in specs])


def _create_collection(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    name = command.arg(0)
    if not isinstance(name, str):
        raise DriverError("createCollection takes the collection name first")
    tx.db(command.database).create_collection(name, session=tx.session, **(command.arg(1, {}) or {}))
    return ResultSet((), (), 0)


def _after_commit(action: Callable[[Any, MongoCommand], None]):
    """DDL MongoDB refuses inside a transaction: queued to run right after the commit."""
    def handler(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
        tx.after_commit(lambda: action(tx, command))
        return ResultSet((), (), 0)
    return handler


def _drop(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    collection = _collection(tx, command)
    seen = collection.count_documents({}, session=tx.session)

    def drop() -> None:
        if collection.count_documents({}) != seen:
            raise ConcurrentChange(f"documents were added to or removed from {command.namespace} while the "
                                   "drop waited for its transaction to commit; nothing was dropped, run it again")
        collection.drop()
    tx.after_commit(drop)
    return _written(seen)


def _drop_index(tx, command: MongoCommand) -> None:
    index = command.arg(0)
    if isinstance(index, dict):
        index = list(index.items())
    _collection(tx, command).drop_index(index)


def _drop_indexes(tx, command: MongoCommand) -> None:
    names = command.arg(0)
    collection = _collection(tx, command)
    if names is None or names == "*":
        collection.drop_indexes()
    else:
        for name in names if isinstance(names, list) else [names]:
            collection.drop_index(list(name.items()) if isinstance(name, dict) else name)


def _rename(tx, command: MongoCommand) -> None:
    target = command.arg(0)
    if not isinstance(target, str):
        raise DriverError("renameCollection takes the new name")
    _collection(tx, command).rename(target, dropTarget=bool(command.arg(1, False)))


def _drop_database(tx, command: MongoCommand) -> None:
    tx.driver.client.drop_database(command.database or tx.database)


def _command_result(reply: dict) -> ResultSet:
    return documents_result([_plain(reply)])


def _run_command(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    spec = _document(command, 0, "command")
    database = tx.driver.client.admin if command.method == "adminCommand" else tx.db(command.database)
    # Outside the transaction: MongoDB runs (or refuses) most commands only on their own.
    return _command_result(database.command(spec))


_ADMIN_HELPERS: dict[str, Callable[[tuple], dict]] = {
    "killOp": lambda a: {"killOp": 1, "op": a[0]},
    "currentOp": lambda a: {"currentOp": 1, **(a[0] if a and isinstance(a[0], dict) else {})},
    "serverStatus": lambda a: {"serverStatus": 1},
    "hostInfo": lambda a: {"hostInfo": 1},
    "fsyncLock": lambda a: {"fsync": 1, "lock": True},
    "fsyncUnlock": lambda a: {"fsyncUnlock": 1},
    "shutdownServer": lambda a: {"shutdown": 1, **(a[0] if a and isinstance(a[0], dict) else {})},
    "setProfilingLevel": lambda a: {"profile": a[0], **(a[1] if len(a) > 1 and isinstance(a[1], dict) else {})},
    "getProfilingStatus": lambda a: {"profile": -1},
}


def _admin_helper(tx, command: MongoCommand, max_rows: int | None) -> ResultSet:
    try:
        spec = _ADMIN_HELPERS[command.method](command.args)
    except (IndexError, TypeError):
        raise DriverError(f"{command.method} was given arguments it does not take") from None
    database = tx.driver.client.admin if command.method != "setProfilingLevel" else tx.db(command.database)
    return _command_result(database.command(spec))


_NEEDS_COLLECTION = frozenset({"find", "findOne", "countDocuments", "estimatedDocumentCount", "distinct",
                               "getIndexes", "insertOne", "insertMany", "updateOne", "updateMany", "replaceOne",
                               "deleteOne", "deleteMany", "bulkWrite", "findOneAndUpdate", "findOneAndReplace",
                               "findOneAndDelete", "drop", "createIndex", "createIndexes", "dropIndex",
                               "dropIndexes", "renameCollection", "dataSize", "totalIndexSize", "latencyStats"})
_HANDLERS: dict[str, Callable[[Any, MongoCommand, int | None], ResultSet]] = {
    "find": _find, "findOne": _find_one, "countDocuments": _count_documents,
    "estimatedDocumentCount": _estimated_count, "distinct": _distinct, "aggregate": _aggregate,
    "getIndexes": _get_indexes, "stats": _stats, "getCollectionNames": _collection_names, "show": _show,
    "use": _use, "version": _version, "getName": _database_name, "dataSize": _collection_statistic("size"),
    "totalIndexSize": _collection_statistic("totalIndexSize"), "latencyStats": _latency_stats,
    "insertOne": _insert_one, "insertMany": _insert_many, "updateOne": _update, "updateMany": _update,
    "replaceOne": _update, "deleteOne": _delete, "deleteMany": _delete, "bulkWrite": _bulk_write,
    "findOneAndUpdate": _find_and_modify, "findOneAndReplace": _find_and_modify,
    "findOneAndDelete": _find_and_modify,
    "createIndex": _after_commit(_create_index), "createIndexes": _after_commit(_create_indexes),
    "createCollection": _create_collection,
    "drop": _drop, "dropIndex": _after_commit(_drop_index), "dropIndexes": _after_commit(_drop_indexes),
    "renameCollection": _after_commit(_rename), "dropDatabase": _after_commit(_drop_database),
    "runCommand": _run_command, "adminCommand": _run_command,
    **{name: _admin_helper for name in _ADMIN_HELPERS},
}
